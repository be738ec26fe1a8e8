"""National lists behind commune-level eligibility: ORT follow-up, ACV (and the arrêté of 26 March
2019), PVD, communes, QPV, Anah.

Each reader validates and normalises one list into a DataFrame with the same leading columns:

- ``code_insee``: the code as written in the list, normalised to 5 characters (``"2A004"`` kept),
  or ``None`` when it cannot be read as a code;
- ``code_actuel``: the current commune of the official list (COG) it resolves to, or ``None``;
- ``ligne``: where the row is in the file (``"ligne 113"`` as a spreadsheet shows it, or
  ``"entité 12"`` in a GeoJSON), so every problem and every answer can name its row.

Nothing is dropped: a row whose code is unreadable, unknown, a former commune's, or duplicated
stays in the table and is reported in :attr:`NationalLists.report`. A missing or renamed column
stops the reading with a message that names the file, the column and the columns found.

By default the lists are the dated copies shipped in the package (:mod:`geo.sources.snapshot`),
each replaced by the copy ``ort listes --mettre-a-jour`` downloaded into the cache when that one
is at least as recent. ``--lists DIR`` reads the official files of a folder laid out like
``../shared/data`` (or flat) instead. Nothing is downloaded while answering.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from geo import fmt
from geo.errors import InputError, ValidationFailed, ValidationReport
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
    "LISTS",
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
    "read_lists",
    "read_ort",
    "read_programmes",
    "read_pvd",
    "read_qpv",
]

_DATAGOUV_API = "https://www.data.gouv.fr/api/1/datasets/"
#: The latest @etalab/decoupage-administratif (the embedded copy says which version it was made
#: from): a new COG is published each year, and a format change is refused by the reader.
_DECOUPAGE = "https://unpkg.com/@etalab/decoupage-administratif/data/"


@dataclass(frozen=True)
class ListSpec:
    """Where a national list is found: candidate files in a lists folder and its download URL.

    ``url`` is a direct file URL, or a data.gouv.fr dataset API URL (``…/api/1/datasets/<slug>/``)
    whose first resource in ``formats`` is downloaded.
    """

    name: str
    title: str
    files: tuple[str, ...]
    url: str | None
    formats: tuple[str, ...] = ("csv",)


LISTS: dict[str, ListSpec] = {
    s.name: s
    for s in (
        ListSpec(
            "communes",
            "Communes (COG, @etalab/decoupage-administratif)",
            ("decoupage-administratif/communes.json", "communes.json"),
            _DECOUPAGE + "communes.json",
        ),
        ListSpec(
            "epci",
            "EPCI (@etalab/decoupage-administratif)",
            ("decoupage-administratif/epci.json", "epci.json"),
            _DECOUPAGE + "epci.json",
        ),
        ListSpec(
            "ort",
            "Suivi national des ORT (DGALN/ANCT)",
            ("ort-anct/ort-suivi-anct-national.csv", "ort-suivi-anct-national.csv", "ort.csv"),
            _DATAGOUV_API
            + "liste-des-communes-couvertes-par-des-operations-de-revitalisation-de-territoire/",
            ("csv", "xlsx"),
        ),
        ListSpec(
            "acv",
            "Programme Action cœur de ville (ANCT)",
            (
                "action-coeur-de-ville/acv-communes-2024-09-with-signature-dates.geojson",
                "action-coeur-de-ville/acv-communes-2024.geojson",
                "acv.csv",
                "acv.geojson",
            ),
            _DATAGOUV_API + "programme-action-coeur-de-ville/",
            ("csv", "geojson", "json"),
        ),
        ListSpec(
            "pvd",
            "Programme Petites villes de demain (ANCT)",
            ("petites-villes-de-demain/pvd-communes-2021-01-22.csv", "pvd.csv"),
            "https://www.data.gouv.fr/fr/datasets/r/1fa831ec-d912-4277-8b95-a8b998bf951e",
        ),
        ListSpec(
            "qpv",
            "Quartiers prioritaires 2024 par commune (ANCT)",
            ("qpv-2024-communes/qpv2024-communes-centroides-national.geojson", "qpv.csv", "qpv.geojson"),
            "https://www.data.gouv.fr/api/1/datasets/r/4c6bb7f3-97b6-4834-8a3a-f5f8b3e6735b",
        ),
        ListSpec(
            "programmes",
            "Programmes ANCT par commune (ngeo)",
            ("anct-programmes-communes/ngeo-anct-cog2023-national.csv", "ngeo.csv"),
            None,
        ),
        ListSpec(
            "anah",
            "Communes couvertes par une opération programmée (Anah)",
            ("anah/operations-programmees.csv", "anah.csv"),
            None,  # data.gouv dataset 66d87a775750052e4c80b6b6: read only when given (--lists DIR)
        ),
    )
}
#: Lists without which Denormandie cannot be answered.
REQUIRED = ("ort", "acv")


@dataclass(frozen=True)
class ListInfo:
    """Provenance of one list, quoted in every answer that used it.

    ``date`` is the list's own vintage (ISO date) and ``date_basis`` what that date is
    (« dernière actualisation », « arrêté du »…); ``copy`` says which copy was read
    (« intégrée », « mise à jour le … », or empty for a folder given with ``--lists``) and
    ``origin`` the official file it was read or converted from.
    """

    name: str
    title: str
    path: str
    date: str
    date_basis: str
    rows: int
    copy: str = ""
    origin: str = ""
    source: str = ""
    licence: str = ""

    def label(self) -> str:
        copy = f" (copie {self.copy})" if self.copy else ""
        name = self.origin or Path(self.path).name
        day = self.date or ""
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):  # prose: French order (JSON keeps ISO)
            day = fmt.date_fr(day)
        return f"{self.title} — {name}, {self.date_basis} {day}".rstrip(", ") + copy

    def to_dict(self) -> dict:
        """The provenance as printed in JSON answers (French keys)."""
        return {
            "nom": self.name,
            "titre": self.title,
            "fichier": self.path,
            "fichier_officiel": self.origin or Path(self.path).name,
            "date": self.date,
            "base_date": self.date_basis,
            "copie": self.copy or "dossier --lists",
            "source": self.source,
            "licence": self.licence,
            "lignes": self.rows,
        }


@dataclass
class NationalLists:
    """The lists read, their provenance and every problem found in them."""

    tables: dict[str, pd.DataFrame]
    info: dict[str, ListInfo]
    report: ValidationReport
    former: dict[str, tuple[str, str]] = field(default_factory=dict)
    _index: dict = field(default_factory=dict, repr=False)

    def __contains__(self, name: str) -> bool:
        return name in self.tables

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.tables[name]

    @property
    def acv_arrete(self) -> pd.DataFrame:
        """Communes of the arrêté of 26 March 2019 (the 222 ACV conventions of 2018), the list
        behind Denormandie's ACV route: ``code_insee, code_actuel, ligne, commune, id_acv,
        lib_acv, date_signature`` (of the ACV convention), ``fichier``. Its vintage is
        ``info["acv_arrete"]``; :meth:`rows` works with ``"acv_arrete"`` as for any list."""
        return self.tables["acv_arrete"]

    def rows(self, name: str, code: str, *, absorbed: bool = False) -> list[dict]:
        """Rows of list ``name`` for commune ``code`` (with ``absorbed``: rows of former communes
        now part of ``code`` instead)."""
        if name not in self.tables:
            return []
        key = (name, absorbed)
        if key not in self._index:
            # Index positions by code from the code columns only (plain Python strings); rows
            # become dicts when asked for: a commune's answer touches a handful of rows.
            table = self.tables[name]
            codes = table["code_insee"].tolist()
            keys = table["code_actuel"].tolist() if absorbed else codes
            index: dict[str, list[int]] = {}
            for i, (c, own) in enumerate(zip(keys, codes, strict=True)):
                if isinstance(c, str) and (not absorbed or c != own):
                    index.setdefault(c, []).append(i)
            self._index[key] = (index, {})
        positions, made = self._index[key]
        if code not in made:
            found = positions.get(code, [])
            made[code] = self.tables[name].iloc[found].to_dict("records") if found else []
        return made[code]

    def commune(self, code: str) -> dict | None:
        """The official record of a current commune (``nom``, ``departement``, ``epci_nom``…)."""
        table = self.tables.get("communes")
        if table is None or code not in table.index:
            return None
        return {"code_insee": code, **table.loc[code].to_dict()}

    def profile(self, code: str) -> dict:
        """What the lists say about a commune besides eligibility: name, EPCI, programmes, QPV 2024."""
        current, how = self.resolve(code)
        rec = self.commune(current) if current else None
        found: dict[str, list[str]] = {}
        for r in self.rows("acv", code):
            found.setdefault("ACV", []).append(r["id_acv"])
        for r in self.rows("pvd", code):
            found.setdefault("PVD", []).append(r["id_pvd"])
        for r in self.rows("programmes", code):
            for col, name in (("id_pvd", "PVD"), ("id_acv", "ACV"), ("id_acv2", "ACV 2")):
                if r.get(col):
                    found.setdefault(name, []).append(r[col])
        programmes = []
        for name, ids in found.items():
            ids = list(dict.fromkeys(i.lower() for i in ids if i))
            programmes.append(f"{name} ({', '.join(ids)})" if ids else name)
        qpv = [
            f"{c} {n}".strip()
            for r in self.rows("qpv", current or code)
            for c, n in zip(r["codes_qp"], r["libs_qp"] + [""] * len(r["codes_qp"]), strict=False)
        ]
        return {
            "code_insee": code,
            "code_actuel": current,
            "nom": rec["nom"] if rec else None,
            "departement": rec["departement"] if rec else None,
            "epci": rec["epci_nom"] if rec else None,
            "population": None if not rec or pd.isna(rec["population"]) else int(rec["population"]),
            "programmes": programmes,
            "qpv_2024": qpv,
            "remarque": how,
        }

    def resolve(self, code: str) -> tuple[str | None, str]:
        """Current commune of ``code`` and how it was found ('' when ``code`` is current)."""
        if "communes" not in self.tables:
            return code, "liste officielle des communes absente : code non vérifié"
        if "current" not in self._index:
            self._index["current"] = set(self.tables["communes"].index.tolist())
        if code in self._index["current"]:
            return code, ""
        if code in self.former:
            current, kind = self.former[code]
            return current, f"{code} est {kind} de {current}"
        return None, f"code {code} absent de la liste officielle des communes"


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
                    path = _fetch(str(res["url"]), refresh=refresh)
                    return path, {"url": str(res["url"]), "jeu_de_donnees": url, "publie_le": published}
        raise InputError(
            f"aucune ressource {'/'.join(spec.formats)} dans le jeu de données",
            source=url,
            fix="téléchargez la liste à la main et donnez son dossier avec --lists",
        )
    return _fetch(url, refresh=refresh), {"url": url, "jeu_de_donnees": "", "publie_le": ""}


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
    (:func:`geo.sources.snapshot.read_snapshots`); nothing is downloaded here.

    Parameters
    ----------
    folder : str or Path, optional
        Folder holding the official files (``--lists``), laid out like ``../shared/data`` or flat.
    strict : bool
        Raise :class:`~geo.errors.ValidationFailed` when any list holds an error-level problem.
    """
    if folder is None:
        from geo.sources.snapshot import in_use, read_snapshots

        chosen, _ = in_use()
        key = tuple(sorted((n, str(u.path), u.path.stat().st_mtime_ns) for n, u in chosen.items()))
        if key not in _LOADED:
            _LOADED.clear()
            _LOADED[key] = read_snapshots()
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


#: The arrêté of 26 March 2019: its list does not change, whatever the date of the ACV file.
ACV_ARRETE_TITLE = "Arrêté du 26 mars 2019 : communes ACV de 2018 (Denormandie)"
ACV_ARRETE_DATE = "2019-03-26"


def read_lists(paths: dict[str, Path]) -> NationalLists:
    """Read the lists at ``paths`` (name → file); the official communes first, to resolve codes.

    The list of the arrêté of 26 March 2019 (``acv_arrete``) is derived from the ACV list
    (and the ANCT programmes list when given): see :func:`derive_acv_arrete`.
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
    for name, path in paths.items():
        if name in tables:
            date, basis = _vintage(name, path, tables[name])
            info[name] = ListInfo(name, LISTS[name].title, str(path), date, basis, len(tables[name]))
    if "acv" in tables:
        tables["acv_arrete"] = derive_acv_arrete(
            tables["acv"],
            tables.get("programmes"),
            report=report,
            acv_source=str(paths["acv"]),
            programmes_source=str(paths.get("programmes", "")),
        )
        used = list(dict.fromkeys(tables["acv_arrete"]["fichier"]))
        info["acv_arrete"] = ListInfo(
            "acv_arrete",
            ACV_ARRETE_TITLE,
            str(paths["acv"]),
            ACV_ARRETE_DATE,
            "arrêté du",
            len(tables["acv_arrete"]),
            origin="dérivée de " + " et ".join(used),
        )
    return lists


def _vintage(name: str, path: Path, table: pd.DataFrame) -> tuple[str, str]:
    """The date a list speaks for, and what that date is.

    The ORT follow-up says when it was last updated; a file identical (sha256) to the one an
    embedded copy was made from has that copy's vintage; a name with a date gives a millésime;
    the file's date is the last resort, said as such.
    """
    if name == "ort" and table["derniere_actualisation"].notna().any():
        return table["derniere_actualisation"].max().isoformat(), "dernière actualisation"
    from geo.sources.snapshot import known_vintage

    known = known_vintage(name, Path(path))
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
