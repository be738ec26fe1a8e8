"""The ``ort`` command: one module per topic, shared options in :mod:`geo.cli.options`.

A command parses its options, calls the job's function in :mod:`geo.app` (the library's
application layer, also called by ``ort serve`` and notebooks) and prints the typed result;
``--json`` prints that result's model. ``--offline``, ``--quiet`` and ``--csv-international``
hold for the run only (:func:`geo.settings.use`): no global is changed.

- :mod:`geo.cli.parcels`      check, parcels, validate, fetch, perimeter-from-parcels
- :mod:`geo.cli.demo`         demo, carnets
- :mod:`geo.cli.eligibility`  eligibility, communes
- :mod:`geo.cli.lists`        listes (national lists in use, --mettre-a-jour)
- :mod:`geo.cli.places`       friches, logements, actions
- :mod:`geo.cli.maps`         map, annex
- :mod:`geo.cli.scale`        classify
- :mod:`geo.cli.note`         note
- :mod:`geo.cli.diff`         diff
- :mod:`geo.cli.serve`        serve (the counter page, the HTTP API, OGC API – Features: geo.server)
- :mod:`geo.cli.export`       export (--zlv: perimeters for Zéro Logement Vacant)
- :mod:`geo.cli.messages`     click's own messages in French

Errors print as one French line (what, where, how to fix) with a non-zero exit code, never a
traceback (``--debug`` shows it); outputs are written atomically and an existing file is only
replaced with ``--force``. A new topic is a module exposing ``COMMANDS``, listed in ``TOPICS``.
"""

from __future__ import annotations

import importlib

import click

from geo import settings
from geo.cli import messages
from geo.cli.options import Group, csv_international_option

messages.install()  # click's own messages (usage errors, help headings) in French


@click.group("ort", cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ort", prog_name="ort", help="Afficher la version et quitter.")
@click.option("--offline", is_flag=True, help="N'utiliser que le cache de téléchargement, jamais le réseau.")
@click.option("--quiet", "-q", is_flag=True, help="Pas de barres de progression.")
@click.option("--debug", is_flag=True, help="Afficher la trace complète des erreurs (traceback).")
@click.pass_context
def main(ctx: click.Context, offline: bool, quiet: bool, debug: bool) -> None:
    """ort — Opérations de revitalisation de territoire : périmètres, parcelles, éligibilité."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    settings.check()  # an ORT_* variable with a refused value (ORT_OFFLINE=peut-être) stops every command
    chosen = {"offline": True} if offline else {}
    if quiet:
        chosen["progress"] = False
    ctx.with_resource(settings.use(**chosen))  # for this run only: no global changed


TOPICS = (
    "parcels", "demo", "eligibility", "lists", "places", "maps", "scale", "note", "diff", "serve", "export",
)

for _topic in TOPICS:
    for _command in importlib.import_module(f"geo.cli.{_topic}").COMMANDS:
        writes = any(p.name in ("output", "output_dir", "out_dir") for p in _command.params)
        if writes and _command.name not in ("map", "classify", "note"):  # HTML, Parquet, PDF: no CSV
            _command.params.append(csv_international_option)
        messages.translate_metavars(_command)
        main.add_command(_command)
