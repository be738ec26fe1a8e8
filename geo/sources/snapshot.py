"""Converting the official files of the national lists into the dated copies the package ships.

The package ships one copy of each list (``geo.data/listes``, reached through
:func:`geo.embedded.lists_dir`), converted by this module from the official files: the
tables the readers of :mod:`geo.sources.list_readers` return (same columns, same ``ligne``
of the official file, same problems), one Parquet file per list, and ``manifeste.json``
with each list's title, vintage (the list's own date, not a file date), source, licence,
row count and the sha256 of the official file. Where they are kept and which copy is in use
is :mod:`geo.sources.list_store` (its names are re-exported here).

Regenerate the embedded copies from a folder laid out like ``../shared/data``::

    python -m geo.sources.snapshot ../shared/data data/listes
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from geo.errors import InputError, OrtError, ValidationReport
from geo.sources import denormandie
from geo.sources.list_model import ARRETE, LISTS, NationalLists
from geo.sources.list_store import (  # noqa: F401 - re-exported: the store's names, as before
    EMBEDDED,
    FORMAT,
    MANIFEST,
    UPDATED,
    InUse,
    cache_folder,
    in_use,
    info_of,
    known_vintage,
    read_manifest,
    read_snapshots,
    read_table,
    sha256,
    write_manifest,
    write_table,
)
from geo.sources.lists import locate_lists, read_lists

_write_manifest = write_manifest  # former private name, still used by list updates and tests

#: The lists kept as snapshots, in reading order (the communes first: they resolve the codes).
SNAPSHOT_LISTS = ("communes", "ort", "acv", "acv_arrete", "pvd", "qpv", "programmes")
#: Lists refreshed by ``ort listes --mettre-a-jour`` (the arrêté of 2019 does not change; the
#: ANCT programmes referential has no documented download address).
UPDATABLE = ("communes", "ort", "acv", "pvd", "qpv")
#: Columns kept from the ANCT programmes referential (the others are not used by the tool).
_PROGRAMME_IDS = ("id_pvd", "id_acv", "id_acv2")


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
    ARRETE: Source(
        ("denormandie-zonage-sp/communes-denormandie.yaml",),
        denormandie.DATASET,
        denormandie.LICENCE,
        denormandie.DATE,
        denormandie.DATE_BASIS,
        "liste des communes de l'arrêté du 26 mars 2019 (NOR LOGL1903826A, JO du 27/03/2019, "
        "CGI annexe IV art. 18-0 bis D) telle que la donne le simulateur officiel service-public.fr "
        "(données de référence de la DILA), copiée par betagouv/reno le 10/09/2024 ; le texte de "
        "l'arrêté lui-même n'a pas été lu. Correction : " + denormandie.CORRECTION_NOTE + " (77335 "
        "est Chauconin-Neufmontiers). Ne suit pas les conventions ACV : la reconstruction à partir "
        "des conventions acv-001 à acv-222 ne sert plus que de contrôle (ort communes --report)",
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


def title(name: str, rows: int | None = None) -> str:
    if name == ARRETE and rows:
        return denormandie.title(rows)
    return LISTS[name].title


# --------------------------------------------------------------------------------------------
# Tables ↔ Parquet


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


def _problems_of(report: ValidationReport, sources: list[str]) -> list[list[str]]:
    names = {Path(s).name for s in sources}
    return [
        [p.severity, p.code, p.message, Path(p.source).name, p.feature]
        for p in report.problems
        if Path(p.source).name in names
    ]


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
    origin = files[0] + "".join(f" (+ {f})" for f in files[1:]) if files else ""
    if name == ARRETE:
        origin = f"{origin} ({denormandie.ORIGIN} ; {denormandie.CORRECTION_NOTE})"
    entry = {
        "titre": title(name, len(df)),
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
        A list missing from ``source_dir``, or the arrêté's list without its 244 communes.
    """
    source_dir, dest = Path(source_dir), Path(dest)
    paths = locate_lists(source_dir)
    needed = set(SNAPSHOT_LISTS)
    for name in sorted(needed):
        expected = SOURCES[name].files[0]
        if name not in paths or paths[name] != source_dir / expected:
            raise InputError(
                f"fichier officiel de la liste « {name} » absent", source=str(source_dir / expected)
            )
    paths = {n: p for n, p in paths.items() if n in needed or n == "epci"}
    lists = read_lists(paths, embedded_arrete=False)
    arrete = lists[ARRETE]
    if len(arrete) != denormandie.COUNT or arrete["code_actuel"].isna().any():
        raise InputError(
            f"liste de l'arrêté du 26 mars 2019 : {len(arrete)} communes lues "
            f"({int(arrete['code_actuel'].isna().sum())} codes inconnus) au lieu de {denormandie.COUNT}",
            source=str(paths[ARRETE]),
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
