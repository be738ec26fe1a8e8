"""``ort serve``: the counter page, the HTTP API and the OGC API – Features (:mod:`geo.server`)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import click

from geo.cli.options import Command
from geo.errors import InputError


@click.command("serve", cls=Command)
@click.option(
    "--perimeters",
    "-p",
    "perimeters",
    multiple=True,
    help="Convention à servir : nom d'une convention fournie avec ort (demo, libercourt…) ou dossier ; "
    "répétable (défaut : toutes les conventions fournies, la démonstration comprise).",
)
@click.option(
    "--conventions",
    "conventions_dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Dossier contenant des dossiers de conventions (ex. ceux d'un département) ; répétable.",
)
@click.option(
    "--adresses",
    "address_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Fichier d'adresses (BAN adresses-{dep}.csv.gz ou BAL) pour placer les adresses hors ligne ; "
    "sans lui, l'API Adresse (BAN) est interrogée.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Adresse d'écoute (0.0.0.0 : toutes).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port d'écoute.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Processus de réponse (chacun charge les conventions en mémoire).",
)
@click.option(
    "--root-path",
    default="",
    help="Préfixe d'URL quand un proxy inverse sert ort sous un sous-chemin (ex. /ort : le proxy "
    "transmet https://exemple.fr/ort/api/… à http://127.0.0.1:8000/api/…).",
)
def serve(perimeters, conventions_dirs, address_file, host, port, workers, root_path):
    """Servir le guichet (page web), l'API HTTP et les périmètres pour QGIS.

    Tout est chargé au démarrage puis servi depuis la mémoire ; aucune requête ne modifie une
    convention. Ouvrez ensuite http://127.0.0.1:8000 (API : /docs ; QGIS : OAPIF:http://127.0.0.1:8000/ogc).

    \b
    ort serve
    ort serve --perimeters demo --perimeters libercourt --port 8080
    ort serve --conventions /srv/ort/conventions --host 0.0.0.0 --workers 4
    ort serve --root-path /ort        # derrière un proxy inverse, sous https://exemple.fr/ort/
    """
    root_path = _root_path(root_path)
    try:
        import uvicorn

        from geo.server.app import OPTIONS_VARIABLE, create_app
    except ImportError as err:
        raise InputError(
            f"ort serve a besoin de paquets absents ({err.name})",
            fix="réinstallez ort avec ses dépendances : pip install ort (ou pip install fastapi uvicorn "
            "python-multipart)",
        ) from None
    options = {
        "perimeters": [str(p) for p in perimeters],
        "conventions_dirs": [str(Path(p).resolve()) for p in conventions_dirs],
        "address_file": str(Path(address_file).resolve()) if address_file else None,
    }
    options["perimeters"] = [str(Path(p).resolve()) if Path(p).exists() else p for p in options["perimeters"]]
    # Everything is read here first: a bad folder is refused before a port is opened.
    app = create_app(
        options["perimeters"],
        conventions_dirs=options["conventions_dirs"],
        address_file=options["address_file"],
        prepare=workers == 1,  # with workers, each prepares its own answers: here, only the check
    )
    cat = app.state.catalogue
    for warning in cat.warnings:
        click.echo(f"Avertissement : {warning}", err=True)
    names = ", ".join(cat.conventions)
    click.echo(f"Conventions servies : {names}", err=True)
    click.echo(
        f"Guichet : http://{host}:{port}/ — API : /docs — QGIS : OAPIF:http://{host}:{port}/ogc", err=True
    )
    if root_path:
        click.echo(
            f"Derrière un proxy inverse, sous le préfixe {root_path} (ex. https://exemple.fr{root_path}/)",
            err=True,
        )
    log = {"log_level": "warning", "timeout_graceful_shutdown": 30, "root_path": root_path}
    if workers == 1:
        uvicorn.run(app, host=host, port=port, **log)
    else:  # each worker process builds its own app from the same options (stateless)
        os.environ[OPTIONS_VARIABLE] = json.dumps(options)
        uvicorn.run(
            "geo.server.app:from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            timeout_worker_healthcheck=30,  # a worker drawing notes answers its ping late, not never
            **log,
        )


def _root_path(value: str) -> str:
    """``/ort`` from ``ort``, ``/ort/`` or ``/ort``; a prefix with a query, spaces or ``..`` is refused."""
    text = (value or "").strip()
    if not text or text == "/":
        return ""
    path = "/" + text.strip("/")
    if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", path) or any(p in (".", "..") for p in path.split("/")):
        raise InputError(
            f"--root-path {value!r} refusé",
            fix="un chemin d'URL simple, ex. --root-path /ort ou /outils/ort",
        )
    return path


COMMANDS = [serve]
