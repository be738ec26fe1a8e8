"""The ASGI application: :func:`create_app` loads the catalogue once and mounts the routers.

``uvicorn`` with several workers imports :func:`from_environment` in each worker: the options of
``ort serve`` travel in the ``ORT_SERVE_OPTIONS`` variable (JSON), so every worker loads the same
conventions folder and answers from its own memory (no state shared between workers or machines).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from fastapi import FastAPI

from geo.server import answers, api, ogc, page, problems
from geo.server.catalogue import load_catalogue
from geo.server.limits import BodyLimit

OPTIONS_VARIABLE = "ORT_SERVE_OPTIONS"

DESCRIPTION = """\
Réponses d'**ort** sur le web : statut d'une parcelle dans les périmètres d'ORT en vigueur à une
date, éligibilité aux dispositifs (Denormandie, Anah, VIR, DIIF, AEC…), note de renseignement en
PDF, vérification d'un fichier de parcelles, et les périmètres en **OGC API – Features** pour QGIS
(`OAPIF:http://hôte:port/ogc`).

Données publiques en lecture seule : pas d'authentification. Les réponses sont indicatives (ni
rescrit fiscal, ni décision de l'Anah ou de la CDAC). Les erreurs sont des *problem details*
(RFC 9457, `application/problem+json`) avec le message (`detail`) et la correction (`correction`).
"""


def create_app(
    conventions: Iterable[str | Path] = (),
    *,
    conventions_dirs: Iterable[str | Path] = (),
    address_file: str | Path | None = None,
    lists_dir: str | Path | None = None,
    rules_path: str | Path | None = None,
    prepare: bool = True,
) -> FastAPI:
    """The server's application, with everything it answers from loaded now.

    Parameters
    ----------
    conventions : iterable of str or Path
        Names of conventions shipped with ort (``demo``) or convention folders; empty (and no
        ``conventions_dirs``): every shipped convention.
    conventions_dirs : iterable of str or Path
        Folders of convention folders.
    address_file : str or Path, optional
        BAN/BAL CSV to geocode addresses offline (else the BAN API).
    lists_dir, rules_path : optional
        National lists and rules, as ``ort eligibility --lists`` and ``--rules``.
    prepare : bool
        Prepare every parcel's answers now (:func:`geo.server.answers.prepare`); False for an
        application that only checks the options (``ort serve --workers N``'s supervisor).
    """
    import geo

    catalogue = load_catalogue(
        conventions,
        conventions_dirs=conventions_dirs,
        address_file=address_file,
        lists_dir=lists_dir,
        rules_path=rules_path,
    )
    for item in catalogue.conventions.values():
        if item.parcels is not None:
            item.parcels.sindex  # noqa: B018 - built now, never concurrently by two requests
    if prepare:  # every parcel's rows per set of perimeters in force: requests look them up
        answers.prepare(catalogue)
        import gc

        gc.collect()
        gc.freeze()  # what was loaded stays: the collector no longer walks it at each request
    app = FastAPI(
        title="ort — ORT, parcelles et éligibilité",
        version=geo.__version__,
        description=DESCRIPTION,
        docs_url=None,  # served by geo.server.page from local files (no CDN)
        redoc_url=None,
        license_info={"name": "MIT"},
    )
    app.state.catalogue = catalogue
    app.state.ogc_layers = ogc.build_layers(catalogue)
    problems.install(app)
    app.add_middleware(BodyLimit, limit=api.MAX_UPLOAD_BYTES + 64 * 1024)
    page.mount_static(app)
    app.include_router(api.router)
    app.include_router(ogc.router)
    app.include_router(page.router)
    return app


def options_from_environment() -> dict:
    text = os.environ.get(OPTIONS_VARIABLE, "")
    return json.loads(text) if text else {}


def from_environment() -> FastAPI:
    """The application of one uvicorn worker, from the options ``ort serve`` put in the environment."""
    opts = options_from_environment()
    return create_app(
        opts.get("perimeters", ()),
        conventions_dirs=opts.get("conventions_dirs", ()),
        address_file=opts.get("address_file"),
        lists_dir=opts.get("lists_dir"),
        rules_path=opts.get("rules_path"),
    )
