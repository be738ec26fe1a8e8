"""National lists behind commune-level eligibility: ORT follow-up, ACV, the arrêté of 26 March 2019
(Denormandie, :mod:`geo.sources.denormandie`), PVD, communes, QPV, Anah: reading a folder of official
files, downloading one, loading the copies in use.

Each reader validates and normalises one list into a DataFrame with the same leading columns:

- ``code_insee``: the code as written in the list, normalised to 5 characters (``"2A004"`` kept),
  or ``None`` when it cannot be read as a code;
- ``code_actuel``: the current commune of the official list (COG) it resolves to, or ``None``;
- ``ligne``: where the row is in the file (``"ligne 113"`` as a spreadsheet shows it, or
  ``"entité 12"`` in a GeoJSON), so every problem and every answer can name its row.

Nothing is dropped: a row whose code is unreadable, unknown, a former commune's, or duplicated
stays in the table and is reported in :attr:`NationalLists.report`. A missing or renamed column
stops the reading with a message that names the file, the column and the columns found.

By default the lists are the dated copies shipped in the package (:mod:`geo.sources.list_store`),
each replaced by the copy ``ort listes --mettre-a-jour`` downloaded into the cache when that one
is at least as recent. ``--lists DIR`` reads the official files of a folder laid out like
``../shared/data`` (or flat) instead. Nothing is downloaded while answering.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd

from geo.errors import InputError, ValidationFailed, ValidationReport
from geo.sources import denormandie, list_store
from geo.sources.denormandie import read_denormandie
from geo.sources.list_model import ARRETE, LISTS, REQUIRED, ListInfo, ListSpec, NationalLists
from geo.sources.list_readers import (
    derive_acv_arrete,
    normalise_code,
    parse_list_date,
    read_acv,
    read_anah,
    read_communes,
    read_ort,
    read_programmes,
    read_pvd,
    read_qpv,
)

__all__ = [
    "ARRETE",
    "LISTS",
    "REQUIRED",
    "ListInfo",
    "ListSpec",
    "NationalLists",
    "check_consistency",
    "derive_acv_arrete",
    "fetch_list",
    "load_lists",
    "locate_lists",
    "normalise_code",
    "parse_list_date",
    "read_acv",
    "read_anah",
    "read_communes",
    "read_denormandie",
    "read_lists",
    "read_ort",
    "read_programmes",
    "read_pvd",
    "read_qpv",
]

# --------------------------------------------------------------------------------------------
# Locating, downloading, loading


def _fetch(url: str, *, refresh: bool = False) -> Path:
    """Local copy of ``url`` from the download cache (one place to swap the downloader)."""
    from geo.sources.http import cached_download

    return cached_download(url, refresh=refresh)


def fetch_list(name: str, *, url: str | None = None, refresh: bool = False) -> Path:
    """Download list ``name`` (or ``url``) into the cache and return its path.

    A data.gouv.fr dataset API URL is resolved to its first resource of the expected format.

    Raises
    ------
    geo.errors.DownloadError
        Offline and not cached, or the download failed (no partial file is left in the cache).
    """
    return download_list(name, url=url, refresh=refresh)[0]


def download_list(name: str, *, url: str | None = None, refresh: bool = True) -> tuple[Path, dict]:
    """Download list ``name`` (or ``url``); return its cached path and where it came from.

    The provenance holds ``url`` (the file downloaded), ``jeu_de_donnees`` (the dataset API
    URL, when one was resolved) and ``publie_le`` (the resource's ``last_modified`` date on
    data.gouv.fr, when given).

    Raises
    ------
    geo.errors.DownloadError
        Offline and not cached, or the download failed (no partial file is left in the cache).
    geo.errors.InputError
        No documented address, an unreadable API answer, or no resource of the expected format.
    """
    spec = LISTS[name]
    url = url or spec.url
    if not url:
        raise InputError(
            f"la liste « {spec.title} » n'a pas d'adresse de téléchargement documentée",
            fix=f"placez le fichier dans le dossier de --lists sous le nom {spec.files[-1]}",
        )
    _check_scheme(spec, url)
    if "/api/1/datasets/" in url and "/r/" not in url:
        meta = _fetch(url, refresh=refresh)
        try:
            resources = json.loads(meta.read_text(encoding="utf-8"))["resources"]
            if not isinstance(resources, list):
                raise TypeError(f"« resources » est un {type(resources).__name__}")
        except (ValueError, KeyError, TypeError) as err:
            raise InputError(f"réponse de l'API data.gouv.fr illisible ({err})", source=url) from None
        for fmt in spec.formats:
            for res in resources:
                if isinstance(res, dict) and str(res.get("format", "")).lower() == fmt and res.get("url"):
                    published = str(res.get("last_modified") or "")[:10]
                    try:
                        published = dt.date.fromisoformat(published).isoformat()
                    except ValueError:
                        published = ""
                    _check_scheme(spec, str(res["url"]), api=url)
                    path = _fetch(str(res["url"]), refresh=refresh)
                    return path, {"url": str(res["url"]), "jeu_de_donnees": url, "publie_le": published}
        raise InputError(
            f"aucune ressource {'/'.join(spec.formats)} dans le jeu de données",
            source=url,
            fix="téléchargez la liste à la main et donnez son dossier avec --lists",
        )
    return _fetch(url, refresh=refresh), {"url": url, "jeu_de_donnees": "", "publie_le": ""}


def _check_scheme(spec: ListSpec, url: str, *, api: str = "") -> None:
    """Refuse an address that is not http(s): a list is downloaded, never read from a local
    path (``file://``) or another scheme an API answer or a setting could slip in."""
    if urlsplit(url).scheme.lower() in ("http", "https") and urlsplit(url).netloc:
        return
    shown = url if len(url) <= 120 else url[:117] + "…"
    given = f", donnée par {api}" if api else ""
    raise InputError(
        f"adresse de la liste « {spec.title} » refusée : {shown!r}{given} n'est pas une adresse http(s)",
        source=api or None,
        fix="une liste se télécharge en http(s) ; un fichier local se donne avec --lists DOSSIER",
    )


def locate_lists(folder: str | Path) -> dict[str, Path]:
    """Files of the known lists found in ``folder`` (laid out like ``../shared/data`` or flat)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("dossier des listes introuvable", source=str(folder), fix="vérifiez --lists")
    found = {}
    for spec in LISTS.values():
        for rel in spec.files:
            if (folder / rel).is_file():
                found[spec.name] = folder / rel
                break
    return found


_LOADED: dict[tuple, NationalLists] = {}


def load_lists(folder: str | Path | None = None, *, strict: bool = False) -> NationalLists:
    """The national lists: the official files of ``folder``, else the dated copies in use.

    Without ``folder``, each list is the copy shipped in the package, or the one
    ``ort listes --mettre-a-jour`` downloaded when it is at least as recent
    (:func:`geo.sources.list_store.read_snapshots`); nothing is downloaded here.

    Parameters
    ----------
    folder : str or Path, optional
        Folder holding the official files (``--lists``), laid out like ``../shared/data`` or flat.
    strict : bool
        Raise :class:`~geo.errors.ValidationFailed` when any list holds an error-level problem.
    """
    if folder is None:
        chosen, _ = list_store.in_use()
        key = tuple(sorted((n, str(u.path), u.path.stat().st_mtime_ns) for n, u in chosen.items()))
        if key not in _LOADED:
            _LOADED.clear()
            _LOADED[key] = list_store.read_snapshots()
    else:
        paths = locate_lists(folder)
        missing = [n for n in REQUIRED if n not in paths]
        if missing:
            wanted = "; ".join(f"{LISTS[n].title}: {' ou '.join(LISTS[n].files)}" for n in missing)
            raise InputError(
                f"listes manquantes ({wanted})", source=str(folder), fix="complétez le dossier --lists"
            )
        key = tuple(sorted((n, str(p), p.stat().st_mtime_ns, p.stat().st_size) for n, p in paths.items()))
        if key not in _LOADED:
            _LOADED.clear()
            _LOADED[key] = read_lists(paths)
    lists = _LOADED[key]
    if strict and not lists.report.ok:
        raise ValidationFailed(lists.report)
    return lists


def read_lists(paths: dict[str, Path], *, embedded_arrete: bool = True) -> NationalLists:
    """Read the lists at ``paths`` (name → file); the official communes first, to resolve codes.

    The list of the arrêté of 26 March 2019 (``acv_arrete``, :mod:`geo.sources.denormandie`) is
    read from its file when ``paths`` holds it; otherwise, with ``embedded_arrete``, from the
    copy shipped in the package (the list does not change), said in its provenance.
    """
    report = ValidationReport("listes nationales")
    tables: dict[str, pd.DataFrame] = {}
    info: dict[str, ListInfo] = {}
    former: dict[str, tuple[str, str]] = {}
    if "communes" in paths:
        tables["communes"], former = read_communes(paths["communes"], epci=paths.get("epci"))
    lists = NationalLists(tables, info, report, former)
    readers = {"ort": read_ort, "acv": read_acv, "pvd": read_pvd, "qpv": read_qpv}
    readers.update(programmes=read_programmes, anah=read_anah)
    for name, reader in readers.items():
        if name in paths:
            tables[name] = reader(paths[name], report=report, resolve=lists.resolve)
    if ARRETE in paths:
        names = tables["communes"]["nom"].to_dict() if "communes" in tables else None
        tables[ARRETE] = read_denormandie(paths[ARRETE], report=report, resolve=lists.resolve, names=names)
    for name, path in paths.items():
        if name in tables:
            date, basis = _vintage(name, path, tables[name])
            info[name] = ListInfo(name, LISTS[name].title, str(path), date, basis, len(tables[name]))
    if ARRETE in info:
        found, table = info[ARRETE], tables[ARRETE]
        fixed = (table["code_ecrit"] != table["code_insee"]).any()
        origin = Path(found.path).name + (f" ({denormandie.CORRECTION_NOTE})" if fixed else "")
        title = denormandie.title(found.rows)
        info[ARRETE] = ListInfo(
            ARRETE, title, found.path, found.date, found.date_basis, found.rows, origin=origin
        )
    elif embedded_arrete:
        _embedded_arrete(lists)
    return lists


def _embedded_arrete(lists: NationalLists) -> None:
    """Add the embedded copy of the arrêté's list (a ``--lists`` folder without it)."""
    chosen, _ = list_store.in_use()
    use = chosen.get(ARRETE)
    if use is None:
        return
    table = list_store.read_table(use.path, use.entry["colonnes"])
    if "communes" in lists.tables:  # resolve again against the communes of the folder
        table["code_actuel"] = [lists.resolve(c)[0] if c else None for c in table["code_insee"]]
    lists.tables[ARRETE] = table
    lists.info[ARRETE] = list_store.info_of(use)


def _vintage(name: str, path: Path, table: pd.DataFrame) -> tuple[str, str]:
    """The date a list speaks for, and what that date is.

    The ORT follow-up says when it was last updated; a file identical (sha256) to the one an
    embedded copy was made from has that copy's vintage; a name with a date gives a millésime;
    the file's date is the last resort, said as such.
    """
    if name == "ort" and table["derniere_actualisation"].notna().any():
        return table["derniere_actualisation"].max().isoformat(), "dernière actualisation"
    known = list_store.known_vintage(name, Path(path))
    if known:
        return known
    modified = dt.date.fromtimestamp(path.stat().st_mtime).isoformat()
    m = re.search(r"(?:^|[-_.])(?:cog|qpv)?(20\d\d-\d\d-\d\d|20\d\d-\d\d|20\d\d)(?=[-_.]|$)", path.name)
    if m:
        return m.group(1), "millésime"
    return modified, "fichier du"


# --------------------------------------------------------------------------------------------
# Consistency between the lists


def check_consistency(lists: NationalLists) -> ValidationReport:
    """Every problem of the lists, plus what the lists say differently about the same commune.

    Cross-list checks: ACV communes without a row in the ORT follow-up; the ACV flag of the
    ORT follow-up against the ACV list; communes flagged both ACV and PVD; ORT rows flagged PVD
    but absent from the PVD list.
    """
    report = ValidationReport("cohérence des listes nationales")
    report.problems += lists.report.problems
    if "ort" not in lists or "acv" not in lists:
        return report
    ort, acv = lists["ort"], lists["acv"]
    ort_src, acv_src = lists.info["ort"].path, lists.info["acv"].path

    def codes(table: pd.DataFrame, mask=None) -> set[str]:
        sub = table if mask is None else table[mask]
        return set(sub["code_actuel"].dropna())

    ort_codes, acv_codes = codes(ort), codes(acv)
    for row in acv[acv["code_actuel"].notna()].itertuples():
        if row.code_actuel not in ort_codes:
            report.add(
                "warning",
                "acv_sans_ort",
                f"commune ACV {row.code_actuel} {row.commune} absente du "
                "suivi des ORT (convention ACV homologuée en ORT ?)",
                source=acv_src,
                feature=row.ligne,
            )
    for row in ort[ort["code_actuel"].notna()].itertuples():
        on_list = row.code_actuel in acv_codes
        if row.acv != on_list:
            said = "marquée ACV mais absente de" if row.acv else "non marquée ACV mais présente dans"
            report.add(
                "warning",
                "acv_divergent",
                f"{row.code_insee} {row.commune} : {said} la liste ACV",
                source=ort_src,
                feature=row.ligne,
            )
        if row.acv and row.pvd:
            report.add(
                "warning",
                "acv_et_pvd",
                f"{row.code_insee} {row.commune} marquée ACV et PVD",
                source=ort_src,
                feature=row.ligne,
            )
    pvd_codes = codes(lists["pvd"]) if "pvd" in lists else set()
    if "programmes" in lists:
        prog = lists["programmes"]
        pvd_codes |= codes(prog, prog["id_pvd"] != "") if "id_pvd" in prog else set()
    for code in sorted(acv_codes & pvd_codes):
        report.add(
            "warning",
            "acv_et_pvd",
            f"commune {code} présente dans la liste ACV et dans une liste PVD",
            source=acv_src,
            feature=code,
        )
    if pvd_codes:
        for row in ort[(ort["programme"] == "PVD") & ort["code_actuel"].notna()].itertuples():
            if row.code_actuel not in pvd_codes:
                report.add(
                    "warning",
                    "pvd_divergent",
                    f"{row.code_insee} {row.commune} : statut « Commune PVD » "
                    "mais absente des listes PVD lues",
                    source=ort_src,
                    feature=row.ligne,
                )
    return report
