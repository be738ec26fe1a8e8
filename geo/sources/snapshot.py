"""Compact dated copies of the national lists: Parquet files and a manifest.

The package ships one copy of each list (``geo.data/listes``, reached through
:func:`geo.embedded.lists_dir`), converted by this module from the official files: the
tables the readers of :mod:`geo.sources.list_readers` return (same columns, same ``ligne``
of the official file, same problems), one Parquet file per list, and ``manifeste.json``
with each list's title, vintage (the list's own date, not a file date), source, licence,
row count and the sha256 of the official file.

``ort listes --mettre-a-jour`` (:func:`update_lists`) downloads the current official files
into the cache, reads them with the same readers, refuses a file that does not read as the
list it should be, and writes the accepted ones in the same form under
``{settings.cache_dir}/listes``. :func:`read_snapshots` then uses, list by list, the
downloaded copy when it is at least as recent as the embedded one.

Regenerate the embedded copies from a folder laid out like ``../shared/data``::

    python -m geo.sources.snapshot ../shared/data data/listes
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from geo import settings
from geo.errors import InputError, OrtError, Problem, ValidationReport
from geo.sources.lists import ACV_ARRETE_TITLE, LISTS, ListInfo, NationalLists

MANIFEST = "manifeste.json"
FORMAT = 1
#: The lists kept as snapshots, in reading order (the communes first: they resolve the codes).
SNAPSHOT_LISTS = ("communes", "ort", "acv", "acv_arrete", "pvd", "qpv", "programmes")
#: Lists refreshed by ``ort listes --mettre-a-jour`` (the arrêté of 2019 does not change; the
#: ANCT programmes referential has no documented download address).
UPDATABLE = ("communes", "ort", "acv", "pvd", "qpv")
#: Columns kept from the ANCT programmes referential (the others are not used by the tool).
_PROGRAMME_IDS = ("id_pvd", "id_acv", "id_acv2")
#: A download with fewer rows than this share of the copy in use is refused (truncated or
#: partial list published by mistake).
MIN_ROW_SHARE = 0.5

EMBEDDED = "intégrée"
UPDATED = "mise à jour"


@dataclass(frozen=True)
class Source:
    """Where an embedded list comes from (provenance written into the manifest)."""

    files: tuple[str, ...]
    dataset: str
    licence: str
    date: str | None  # None: computed from the table (ORT: latest « Dernière actualisation »)
    basis: str
    note: str = ""


_DATAGOUV = "https://www.data.gouv.fr/fr/datasets/"
#: Provenance of the official files in a folder laid out like ``../shared/data`` (see the
#: PROVENANCE.md of each folder there).
SOURCES: dict[str, Source] = {
    "communes": Source(
        ("decoupage-administratif/communes.json", "decoupage-administratif/epci.json"),
        "https://www.npmjs.com/package/@etalab/decoupage-administratif (version 6.0.0, COG 2026)",
        "Licence Ouverte (données INSEE, La Poste, DGCL) ; paquet sous licence MIT",
        "2026-01-01",
        "COG au",
        "communes actuelles (nom, département, région, population, EPCI) et codes non actuels "
        "(anciens codes, communes déléguées ou associées, arrondissements municipaux) avec leur "
        "commune actuelle",
    ),
    "ort": Source(
        ("ort-anct/ort-suivi-anct-national.csv",),
        _DATAGOUV + "liste-des-communes-couvertes-par-des-operations-de-revitalisation-de-territoire/",
        "Licence Ouverte 2.0",
        None,
        "dernière actualisation",
        "tableau de suivi DGALN/ANCT (remontées des DDT), copie publiée par MTES-MCT/zero-logement-vacant",
    ),
    "acv": Source(
        ("action-coeur-de-ville/acv-communes-2024-09-with-signature-dates.geojson",),
        _DATAGOUV + "programme-action-coeur-de-ville/",
        "Licence Ouverte 2.0",
        "2024-09-09",
        "mise à jour ANCT du",
        "carte ACV de l'ANCT (anct-carto/action_coeur_de_ville), avec les dates de signature",
    ),
    "acv_arrete": Source(
        (
            "action-coeur-de-ville/acv-communes-2024-09-with-signature-dates.geojson",
            "anct-programmes-communes/ngeo-anct-cog2023-national.csv",
        ),
        "arrêté du 26 mars 2019 (CGI art. 199 novovicies, décret n° 2019-232) : communes des 222 "
        "conventions Action cœur de ville de 2018",
        "Licence Ouverte 2.0 (listes ANCT)",
        "2019-03-26",
        "arrêté du",
        "dérivée : communes des conventions acv-001 à acv-222 de la liste ACV de l'ANCT (numérotées "
        "dans l'ordre de 2018 ; acv-223 et suivantes sont entrées ensuite), complétées par le "
        "référentiel des programmes de l'ANCT pour une convention qui n'y figure plus (acv-163, "
        "Rambouillet) ; texte de l'arrêté non consulté : à vérifier",
    ),
    "pvd": Source(
        ("petites-villes-de-demain/pvd-communes-2021-01-22.csv",),
        _DATAGOUV + "programme-petites-villes-de-demain/",
        "Licence Ouverte 2.0",
        "2021-01-22",
        "liste ANCT du",
        "carte PVD de l'ANCT (anct-carto/pvd), colonnes personnelles retirées",
    ),
    "qpv": Source(
        ("qpv-2024-communes/qpv2024-communes-centroides-national.geojson",),
        _DATAGOUV + "quartiers-prioritaires-de-la-politique-de-la-ville-qpv/",
        "Licence Ouverte 2.0",
        "2024-01-01",
        "quartiers prioritaires en vigueur au",
        "QPV 2024 par commune (anct-carto/superposeur-V2), sans les contours des quartiers",
    ),
    "programmes": Source(
        ("anct-programmes-communes/ngeo-anct-cog2023-national.csv",),
        "référentiel ngeo de l'ANCT (COG 2023), copie publiée par MTES-MCT/zero-logement-vacant",
        "Licence Ouverte 2.0 (listes ANCT)",
        "2024-09-09",
        "référentiel ANCT (COG 2023) du",
        "communes d'un programme PVD ou ACV seulement, colonnes id_pvd, id_acv, id_acv2",
    ),
}


def title(name: str) -> str:
    return ACV_ARRETE_TITLE if name == "acv_arrete" else LISTS[name].title


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


def _communes_frame(lists: NationalLists) -> pd.DataFrame:
    """Current communes and non-current codes in one table (``nature`` tells them apart)."""
    table = lists["communes"]
    current = table.reset_index(names="code_insee")
    current.insert(1, "code_actuel", current["code_insee"])
    current.insert(2, "nature", "commune actuelle")
    former = pd.DataFrame(
        [(code, actuel, kind) for code, (actuel, kind) in lists.former.items()],
        columns=["code_insee", "code_actuel", "nature"],
    )
    out = pd.concat([current, former], ignore_index=True)
    out["population"] = out["population"].astype("Int64")
    return out


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


def _frame(lists: NationalLists, name: str) -> pd.DataFrame:
    if name == "communes":
        return _communes_frame(lists)
    table = lists[name]
    if name == "programmes":
        ids = [c for c in _PROGRAMME_IDS if c in table]
        keep = (table[ids] != "").any(axis=1).to_numpy()
        table = table.loc[keep, ["code_insee", "code_actuel", "ligne", "commune", *ids]]
    return table.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Manifest


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _problems_of(report: ValidationReport, sources: list[str]) -> list[list[str]]:
    names = {Path(s).name for s in sources}
    return [
        [p.severity, p.code, p.message, Path(p.source).name, p.feature]
        for p in report.problems
        if Path(p.source).name in names
    ]


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


def _write_manifest(data: dict, folder: Path) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".manifeste.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the manifest is read by every user
        os.replace(tmp, folder / MANIFEST)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _entry(
    name: str,
    df: pd.DataFrame,
    file: str,
    kinds: dict,
    *,
    date: str,
    basis: str,
    source: dict,
    licence: str,
    problems: list,
    note: str = "",
) -> dict:
    files = [f["fichier"] for f in source.get("fichiers", [])]
    if name == "acv_arrete":
        origin = "dérivée de " + " et ".join(files)
    else:
        origin = files[0] + "".join(f" (+ {f})" for f in files[1:]) if files else ""
    entry = {
        "titre": title(name),
        "fichier": file,
        "origine": origin,
        "lignes": int(len(df)),
        "millesime": date,
        "base_millesime": basis,
        "source": source,
        "licence": licence,
    }
    if note:
        entry["remarque"] = note
    entry["colonnes"] = kinds
    entry["problemes"] = problems
    return entry


# --------------------------------------------------------------------------------------------
# Generating the embedded copies


def generate(source_dir: str | Path, dest: str | Path) -> dict:
    """Convert the official files of ``source_dir`` (laid out like ``../shared/data``) into
    the snapshot folder ``dest``; return the manifest written.

    Raises
    ------
    geo.errors.InputError
        A list missing from ``source_dir``, or the arrêté list without its 222 conventions.
    """
    from geo.sources.lists import locate_lists, read_lists

    source_dir, dest = Path(source_dir), Path(dest)
    paths = locate_lists(source_dir)
    needed = {n for n in SNAPSHOT_LISTS if n != "acv_arrete"}
    for name in sorted(needed):
        expected = SOURCES[name].files[0]
        if name not in paths or paths[name] != source_dir / expected:
            raise InputError(
                f"fichier officiel de la liste « {name} » absent", source=str(source_dir / expected)
            )
    paths = {n: p for n, p in paths.items() if n in needed or n == "epci"}
    lists = read_lists(paths)
    arrete = lists["acv_arrete"]
    if arrete["id_acv"].nunique() != 222:
        raise InputError(
            f"liste de l'arrêté du 26 mars 2019 : {arrete['id_acv'].nunique()} conventions au lieu de 222",
            source=str(source_dir),
        )
    dest.mkdir(parents=True, exist_ok=True)
    manifest = {"format": FORMAT, "listes": {}}
    for name in SNAPSHOT_LISTS:
        src = SOURCES[name]
        df = _frame(lists, name)
        file = f"{name.replace('_', '-')}.parquet"
        kinds = write_table(df, dest / file)
        date = src.date or lists.info[name].date
        files = [{"fichier": Path(f).name, "sha256": sha256(source_dir / f)} for f in src.files]
        source = {
            "jeu_de_donnees": src.dataset,
            "url": LISTS[name].url if name in LISTS else None,
            "fichiers": files,
        }
        problems = _problems_of(lists.report, [f["fichier"] for f in files])
        if name == "acv_arrete":
            problems = [p for p in problems if p[1].startswith("acv_arrete")]
        elif name in ("acv", "programmes"):
            problems = [p for p in problems if not p[1].startswith("acv_arrete")]
        manifest["listes"][name] = _entry(
            name,
            df,
            file,
            kinds,
            date=date,
            basis=src.basis,
            source=source,
            licence=src.licence,
            problems=problems,
            note=src.note,
        )
    _write_manifest(manifest, dest)
    return manifest


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


def main(argv: list[str] | None = None) -> int:
    """``python -m geo.sources.snapshot SOURCE_DIR DEST_DIR``: regenerate the embedded copies."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage : python -m geo.sources.snapshot DOSSIER_SOURCES DOSSIER_COPIES", file=sys.stderr)
        return 2
    try:
        manifest = generate(*args)
    except OrtError as err:
        print(f"Erreur : {err}", file=sys.stderr)
        return 1
    for name, entry in manifest["listes"].items():
        vintage = f"{entry['base_millesime']} {entry['millesime']}"
        print(f"{name:11} {entry['lignes']:>6} lignes  {vintage}  {entry['fichier']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
