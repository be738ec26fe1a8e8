"""The parcel check: parcels as people type them, addresses, spreadsheets — at a date.

What ``ort check`` does and what ``GET /api/parcelles/{id}`` answers: each parcel in each
perimeter in force on the date (statut, part, surfaces), the version used and its validity,
the cadastre's millésime, the warnings of ``ort validate`` on that version. Entries that give
no answer are listed in ``rejetes``; an ambiguous address is an answer with its candidates.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from geo import settings as ort_settings
from geo.app.load import (
    Territoire,
    address_index,
    classify_with_progress,
    locate_addresses,
    read_entries_file,
    split_addresses,
)
from geo.app.models import Adresse, Verification


def check_entries(
    entries: Iterable[str] = (),
    *,
    territoire: Territoire,
    date: dt.date | str | None = None,
    commune: str | None = None,
    file: str | Path | None = None,
    address_file: str | Path | None = None,
    tolerance_m2: float | None = None,
    tolerance_pct: float | None = None,
    validate: bool = True,
    settings: ort_settings.Settings | None = None,
) -> Verification:
    """Answer parcel ids and addresses as typed, and the rows of a spreadsheet, at a date.

    Parameters
    ----------
    entries : iterable of str
        ``62999000AB0012``, ``AB 12`` (with ``commune``, or the convention's only commune),
        ``62999 AB 12``, or an address ``12 rue Jean Jaurès, 62820 Libercourt``.
    territoire : Territoire
        From :func:`geo.app.open_territory` (read once, never changed here).
    date : date or str, optional
        ``2024-06-01`` or ``01/06/2024``; default today.
    commune : str, optional
        INSEE code of short ids.
    file : path, optional
        CSV/XLSX of ids (column ``idu``…, optional ``commune``) and/or addresses (``adresse``);
        the planner's other columns follow the verdicts in :attr:`Verification.table`.
    address_file : path, optional
        BAN or BAL CSV to locate addresses offline (default: the territory's, else the BAN API).
    tolerance_m2, tolerance_pct : float, optional
        Boundary noise ignored (default ``settings.tolerance_m2`` / ``tolerance_pct``).
    validate : bool
        Add the problems ``ort validate`` finds on the version used to ``avertissements``.
    settings : Settings, optional
        Offline mode, progress bars… for this call only (default: the settings in effect).
    """
    from geo.check import check_parcels
    from geo.perimeters import parse_date

    conv, parcels = territoire.convention, territoire.parcels
    with ort_settings.use(settings):
        day = parse_date(date)
        ids, addresses = split_addresses(entries)
        default = commune or territoire.default_commune
        file_ids, file_addresses = read_entries_file(Path(file)) if file else ([], [])
        addresses += file_addresses
        located = []
        if addresses:
            index = address_index(territoire, address_file)
            located = locate_addresses(addresses, conv, parcels, index=index)
        wanted = [(t, default) for t in ids] + [(a.idu, None) for a in located if a.idu] + file_ids
        result = check_parcels(
            wanted,
            conv,
            parcels,
            when=day,
            commune=commune,
            classify=lambda p, q: classify_with_progress(p, q, tolerance_m2, tolerance_pct),
            perimeters=territoire.perimeters_at(day),
        )
    result.addresses = located
    if validate:  # the checks of `ort validate` on the version used, before answering
        result.warnings += territoire.version_warnings(result.perimeters)
    table = result.table
    if file and file_ids and len(result.parcels):  # keep the planner's own columns beside the verdicts
        table = _with_own_columns(result, Path(file), default)
    out = Verification.model_validate({**result.to_json(), "adresses": [_address(a) for a in located]})
    out._detail, out._table = result, table
    return out


def answer_parcels(
    ids: Iterable[str],
    *,
    territoire: Territoire,
    date: dt.date | str | None = None,
    commune: str | None = None,
    tolerance_m2: float | None = None,
    tolerance_pct: float | None = None,
    settings: ort_settings.Settings | None = None,
) -> Verification:
    """Each parcel, as typed (``62999000AB0012``, ``AB 12`` + ``commune``, ``62999 AB 12``),
    in each perimeter in force on ``date``. Unusable ids are in ``rejetes``."""
    return check_entries(
        list(ids), territoire=territoire, date=date, commune=commune, tolerance_m2=tolerance_m2,
        tolerance_pct=tolerance_pct, settings=settings,
    )  # fmt: skip


def answer_address(
    query: str,
    *,
    territoire: Territoire,
    date: dt.date | str | None = None,
    address_file: str | Path | None = None,
    settings: ort_settings.Settings | None = None,
) -> Verification:
    """An address located (address file, cache, else the BAN API) and its parcel answered.

    ``adresses[0]`` says what was found: ``trouvée`` (with the parcel in ``parcelles``),
    ``ambiguë`` (``candidats``, no parcel) or ``introuvable`` (``message``).
    """
    from geo.errors import InputError

    text = query.strip()
    if not text:
        raise InputError("adresse vide", fix="écrivez une adresse, ex. 12 rue Jean Jaurès, 62820 Libercourt")
    with ort_settings.use(settings):
        index = address_index(territoire, address_file)
        located = locate_addresses([text], territoire.convention, territoire.parcels, index=index)
        idus = [a.idu for a in located if a.idu]
        out = check_entries(idus, territoire=territoire, date=date, settings=settings)
    answer = out.model_copy(update={"adresses": [_address(a) for a in located]})
    answer._detail, answer._table = out.detail, out.table
    return answer


def check_file(
    path: str | Path,
    *,
    territoire: Territoire,
    date: dt.date | str | None = None,
    commune: str | None = None,
    address_file: str | Path | None = None,
    tolerance_m2: float | None = None,
    tolerance_pct: float | None = None,
    settings: ort_settings.Settings | None = None,
) -> Verification:
    """A spreadsheet of ids and/or addresses checked: the table keeps the planner's columns."""
    return check_entries(
        (), territoire=territoire, date=date, commune=commune, file=path, address_file=address_file,
        tolerance_m2=tolerance_m2, tolerance_pct=tolerance_pct, settings=settings,
    )  # fmt: skip


def write_verification(result: Verification, output: str | Path, *, force: bool = False) -> Path:
    """The table of a check in a file: ``.csv`` (French Excel unless ``settings.csv_format``),
    ``.xlsx``, or with geometries ``.gpkg``, ``.parquet``, ``.geojson``. Nothing is written
    when no parcel was found."""
    from geo.columns import PARCELS
    from geo.io import write_table

    output = Path(output)
    known, table = result.detail.parcels, result.table
    if known is None or not len(known):
        return output
    if output.suffix.lower() in (".gpkg", ".parquet", ".geojson"):
        import geopandas as gpd

        table = gpd.GeoDataFrame(
            table.merge(known[["idu", "geometry"]], on="idu"), geometry="geometry", crs=known.crs
        )
    write_table(table, output, force=force, layout=PARCELS, source=result.detail.source())
    return output


def verification_bytes(
    result: Verification,
    *,
    format: Literal["csv", "xlsx"] = "csv",
    settings: ort_settings.Settings | None = None,
) -> bytes:
    """The table of a check as the bytes of a CSV (French Excel by default) or XLSX file."""
    from geo.errors import InputError

    if format not in ("csv", "xlsx"):
        raise InputError(f"format {format!r} non pris en charge", fix="choisissez csv ou xlsx")
    with tempfile.TemporaryDirectory(prefix="ort-") as folder, ort_settings.use(settings):
        path = Path(folder) / f"verification.{format}"
        write_verification(result, path)
        return path.read_bytes() if path.exists() else b""


def _with_own_columns(result, path: Path, default: str | None):
    from geo.check import input_columns
    from geo.columns import PARCELS

    table = result.table
    own = input_columns(path, code_insee=default)
    for idu, lines in own.attrs.get("doublons", {}).items():  # every row kept, none dropped
        result.warnings.append(
            f"la parcelle {idu} figure sur les lignes {', '.join(map(str, lines))} du fichier : "
            "chaque ligne garde ses colonnes dans le résultat"
        )
    taken = {*table.columns, *PARCELS.names}
    clash = {c: f"{c} (fichier)" for c in own.columns if c != "idu" and c in taken}
    return table.merge(own.rename(columns=clash), on="idu", how="left")


def _address(located) -> Adresse:
    return Adresse.model_validate(located.to_dict())


__all__ = [
    "answer_address",
    "answer_parcels",
    "check_entries",
    "check_file",
    "verification_bytes",
    "write_verification",
]
