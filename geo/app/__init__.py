"""The application layer: one function per user job, called by every front end.

The CLI (``ort``), the web server (``ort serve``) and notebooks only parse, call and present.
Each job takes explicit keyword arguments (convention, date, commune, files, tolerances…),
changes no global (per-call choices such as offline mode go in a frozen
:class:`~geo.settings.Settings` passed as ``settings=``), is safe to call from several threads,
and returns a typed result (:mod:`geo.app.models`, pydantic, French keys) — the CLI's
``--json`` and the API's schemas.

A server reads everything once at start and answers from memory::

    from geo import app, settings

    chosen = settings.current(offline=True)            # environment read once, frozen
    ormeval = app.open_territory("demo", settings=chosen)
    answer = app.answer_parcels(["AB 12"], territoire=ormeval, date="01/09/2024", settings=chosen)
    answer.model_dump_json()                           # what `ort check --json` prints

Jobs
----
- :func:`open_territory`   read a convention and its cadastre once (:class:`Territoire`)
- :func:`answer_parcels`   parcels as typed (``62999000AB0012``, ``AB 12``, ``62999 AB 12``) at a date
- :func:`answer_address`   an address located (file or BAN), then answered; ambiguity → candidates
- :func:`check_file`       a CSV/XLSX of ids and/or addresses → the table (:func:`verification_bytes`)
- :func:`check_entries`    all of these at once, what ``ort check`` does
- :func:`write_notes`, :func:`note_pdf`   the "note de renseignement ORT" (PDF path or bytes)
- :func:`write_map`        the offline map of a convention (HTML)
- :func:`write_annex`      the printable annex (PNG + PDF, parcel lists)
- :func:`diff_versions`    what an avenant changed (table, map, annex page)
- :func:`sector_parcels`   the parcels of a sector (the convention's annex list)
- :func:`perimeter_from_parcels`  a perimeter drawn as the union of parcels
- :func:`validate_folder`  every problem of a convention folder at once
- :func:`fetch_cadastre`   cadastre layers of communes downloaded into the cache, checked
- :func:`action_dashboard`, :func:`locate_friches`, :func:`locate_housing`   places vs sectors
- :func:`parse_date`       the one date parser: ``2024-06-01`` or ``01/06/2024``

Modules: ``models`` (the typed results), ``load`` (a convention and its cadastre, the entries
people give), ``check`` (parcels, addresses, spreadsheets), ``note``, ``maps`` (map and annex),
``diff``, ``sector`` (a sector's parcels, a perimeter from parcels), ``convention`` (validate,
fetch), ``places`` (actions, friches, social housing).
"""

from __future__ import annotations

import importlib

#: Model → module.
_MODELS = (
    "Adresse",
    "Annexe",
    "Carte",
    "Diff",
    "Note",
    "Notes",
    "Parcelle",
    "ParcellesSecteur",
    "PerimetreDessine",
    "Lieux",
    "Probleme",
    "Telechargement",
    "Validation",
    "PerimetreParcelle",
    "Rejet",
    "Validite",
    "Verification",
)

#: Job → module (imported at first use: `ort --help` and the models stay light).
_JOBS = {
    "Territoire": "load",
    "open_territory": "load",
    "convention_folder": "load",
    "answer_parcels": "check",
    "answer_address": "check",
    "check_file": "check",
    "check_entries": "check",
    "verification_bytes": "check",
    "write_verification": "check",
    "write_notes": "note",
    "note_pdf": "note",
    "write_map": "maps",
    "write_annex": "maps",
    "diff_versions": "diff",
    "sector_parcels": "sector",
    "perimeter_from_parcels": "sector",
    "validate_folder": "convention",
    "fetch_cadastre": "convention",
    "action_dashboard": "places",
    "locate_friches": "places",
    "locate_housing": "places",
}

_OTHERS = {"Settings": "geo.settings", "parse_date": "geo.perimeters"}

__all__ = [*_MODELS, *_JOBS, *_OTHERS]


def __getattr__(name: str):
    """Everything is imported at first use: ``ort --help`` stays quick."""
    if name in _JOBS:
        return getattr(importlib.import_module(f"geo.app.{_JOBS[name]}"), name)
    if name in _MODELS:
        return getattr(importlib.import_module("geo.app.models"), name)
    if name in _OTHERS:
        return getattr(importlib.import_module(_OTHERS[name]), name)
    raise AttributeError(f"module 'geo.app' has no attribute {name!r}")
