"""Where the dated copies of the national lists are kept, and which copy is in use.

One Parquet file per list and ``manifeste.json`` (title, vintage, source, licence, row count,
sha256 of the official file, column kinds), in the package (``geo.data/listes``, the embedded
copies) and in ``{settings.cache_dir}/listes`` (the copies ``ort listes --mettre-a-jour``
downloaded). :func:`in_use` says, list by list, which copy is read (the downloaded one when at
least as recent), :func:`read_snapshots` reads them into :class:`~geo.sources.list_model.NationalLists`.

Below :mod:`geo.sources.lists` (which reads official files) and :mod:`geo.sources.snapshot`
(which converts them): it imports neither.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from geo import settings
from geo.errors import InputError, Problem, ValidationReport
from geo.sources.list_model import ListInfo, NationalLists

MANIFEST = "manifeste.json"
FORMAT = 1
EMBEDDED = "intégrée"
UPDATED = "mise à jour"


# --------------------------------------------------------------------------------------------
# Tables ↔ Parquet


def _kinds(df: pd.DataFrame) -> dict[str, str]:
    """How to restore each column after Parquet: object (None for missing), date, list, Int64…"""
    kinds = {}
    for col in df.columns:
        values = df[col].dropna()
        first = values.iloc[0] if len(values) else None
        if isinstance(first, dt.date):
            kinds[col] = "date"
        elif isinstance(first, list):
            kinds[col] = "list"
        else:
            kinds[col] = str(df[col].dtype)
    return kinds


def _restore(df: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    # The readers give some columns as Python objects with None for missing (codes, row
    # labels, dates), others as pandas strings: each column gets its own type back.
    for col, kind in kinds.items():
        if kind == "object" and str(df[col].dtype) != "object":
            values = df[col].astype(object)
            df[col] = values.where(df[col].notna(), None)
        elif kind == "list":
            df[col] = pd.Series([list(v) for v in df[col]], index=df.index, dtype=object)
        elif kind == "Int64":
            df[col] = df[col].astype("Int64")
        elif kind not in ("object", "date") and str(df[col].dtype) != kind:
            df[col] = df[col].astype(kind)
    return df


def write_table(df: pd.DataFrame, path: Path) -> dict[str, str]:
    """Write one list as Parquet (zstd); return the column kinds for the manifest."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    kinds = _kinds(df)
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata(None)  # no pandas/pyarrow version stamp: stable bytes
    pq.write_table(table, path, compression="zstd", compression_level=19)
    return kinds


def read_table(path: Path, kinds: dict[str, str]) -> pd.DataFrame:
    """Read one list written by :func:`write_table`, with its column types restored."""
    import pyarrow.parquet as pq

    # ParquetFile, not pq.read_table: the latter loads the dataset layer (twice the time here).
    df = pq.ParquetFile(path).read().to_pandas(date_as_object=True)
    df.columns = df.columns.astype("str")
    return _restore(df, kinds)


def _split_communes(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, tuple[str, str]]]:
    is_current = (df["nature"] == "commune actuelle").to_numpy()
    current = df[is_current].drop(columns=["code_actuel", "nature"]).set_index("code_insee")
    current.index = current.index.astype("str")
    current.index.name = "code"
    former_rows = df[~is_current]
    # tolist() first: iterating a pandas string column element by element is slow.
    codes, actuels, kinds = (former_rows[c].tolist() for c in ("code_insee", "code_actuel", "nature"))
    former = dict(zip(codes, zip(actuels, kinds, strict=True), strict=True))
    return current, former


# --------------------------------------------------------------------------------------------
# Manifest


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(folder: Path) -> dict:
    """The manifest of a snapshot folder (``{}`` when there is none).

    Raises
    ------
    geo.errors.InputError
        A manifest that is not the JSON this module writes.
    """
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return {}
    fix = (
        "relancez « ort listes --mettre-a-jour » (ou supprimez ce dossier pour revenir aux copies intégrées)"
    )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"manifeste des listes illisible ({err})", source=str(path), fix=fix) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("listes"), dict):
        raise InputError("manifeste des listes d'un format inconnu", source=str(path), fix=fix)
    return data


def write_manifest(data: dict, folder: Path) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".manifeste.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the manifest is read by every user
        os.replace(tmp, folder / MANIFEST)
    finally:
        Path(tmp).unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# Reading: the embedded copies, or the downloaded ones when at least as recent


@dataclass(frozen=True)
class InUse:
    """One list as it will be read: its manifest entry, folder and copy (embedded or updated)."""

    name: str
    entry: dict
    folder: Path
    copy: str
    note: str = ""

    @property
    def path(self) -> Path:
        return self.folder / self.entry["fichier"]


def in_use(embedded: Path | None = None, cache: Path | None = None) -> tuple[dict[str, InUse], list[str]]:
    """Which copy of each list is in use, and notes about the cache (unreadable, older…)."""
    from geo import embedded as embedded_data

    embedded = Path(embedded) if embedded is not None else Path(embedded_data.lists_dir())
    cache = Path(cache) if cache is not None else cache_folder()
    base = read_manifest(embedded)
    if not base:
        raise InputError(
            "copies intégrées des listes nationales absentes",
            source=str(embedded),
            fix="réinstallez le paquet ort, ou donnez un dossier de listes avec --lists",
        )
    notes: list[str] = []
    try:
        updated = read_manifest(cache).get("listes", {})
    except InputError as err:
        updated = {}
        notes.append(f"{err} — copies intégrées utilisées")
    out: dict[str, InUse] = {}
    for name, entry in base["listes"].items():
        new = updated.get(name)
        if new and (cache / new["fichier"]).is_file():
            if new["millesime"] >= entry["millesime"]:
                out[name] = InUse(name, new, cache, UPDATED)
                continue
            notes.append(
                f"{name} : copie téléchargée ({new['base_millesime']} {new['millesime']}) plus ancienne "
                f"que la copie intégrée ({entry['base_millesime']} {entry['millesime']}) : ignorée"
            )
        out[name] = InUse(name, entry, embedded, EMBEDDED)
    return out, notes


def known_vintage(name: str, path: Path) -> tuple[str, str] | None:
    """The vintage of an embedded copy made from a file identical to ``path`` (sha256), if any.

    Lets ``--lists DIR`` date a file whose name and contents carry no date (``communes.json``)
    by what is known of it, rather than by its modification date.
    """
    from geo import embedded

    try:
        entry = read_manifest(Path(embedded.lists_dir())).get("listes", {}).get(name)
    except InputError:
        return None
    files = (entry or {}).get("source", {}).get("fichiers", [])
    if not files or files[0]["fichier"] != Path(path).name:
        return None
    if sha256(Path(path)) != files[0]["sha256"]:
        return None
    return entry["millesime"], entry["base_millesime"]


def cache_folder() -> Path:
    """Where ``ort listes --mettre-a-jour`` keeps the converted lists."""
    return Path(settings.cache_dir) / "listes"


def read_snapshots(embedded: Path | None = None, cache: Path | None = None) -> NationalLists:
    """The national lists from their snapshots: the embedded copies, each replaced by its
    downloaded copy (``ort listes --mettre-a-jour``) when that one is at least as recent."""
    chosen, notes = in_use(embedded, cache)
    report = ValidationReport("listes nationales")
    tables: dict[str, pd.DataFrame] = {}
    info: dict[str, ListInfo] = {}
    former: dict[str, tuple[str, str]] = {}
    for name, use in chosen.items():
        entry = use.entry
        df = read_table(use.path, entry["colonnes"])
        if name == "communes":
            df, former = _split_communes(df)
        tables[name] = df
        info[name] = info_of(use)
        report.problems += [Problem(*p) for p in entry.get("problemes", [])]
    for note in notes:
        report.add("warning", "copie_listes", note)
    return NationalLists(tables, info, report, former)


def info_of(use: InUse) -> ListInfo:
    entry = use.entry
    source = entry["source"]
    origin = entry.get("origine") or entry["fichier"]
    copy = use.copy if use.copy == EMBEDDED else f"{use.copy} le {entry.get('mise_a_jour', '?')}"
    return ListInfo(
        use.name,
        entry["titre"],
        str(use.path),
        entry["millesime"],
        entry["base_millesime"],
        entry["lignes"],
        copy=copy,
        origin=origin,
        source=source.get("jeu_de_donnees") or source.get("url") or "",
        licence=entry.get("licence", ""),
    )
