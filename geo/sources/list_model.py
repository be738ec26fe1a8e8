"""The national lists as one object: what each list is (:data:`LISTS`), its provenance
(:class:`ListInfo`) and the tables read (:class:`NationalLists`).

The lowest floor of the lists: :mod:`geo.sources.list_store` (the dated Parquet copies) and
:mod:`geo.sources.lists` (reading a folder, downloading) build on it; it imports neither.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from geo import fmt
from geo.errors import ValidationReport
from geo.sources import denormandie
from geo.sources.list_readers import derive_acv_arrete

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
#: The list of the arrêté of 26 March 2019 (Denormandie). Its table keeps the key
#: ``acv_arrete`` for the code that reads it, but it is not derived from the ACV programme any
#: more: it is the simulator's list of 244 communes (:mod:`geo.sources.denormandie`). It does
#: not change: no download address (a ``--lists`` folder without it uses the embedded copy).
ARRETE = "acv_arrete"
LISTS[ARRETE] = ListSpec(
    ARRETE,
    denormandie.TITLE,
    ("denormandie-zonage-sp/communes-denormandie.yaml", "communes-denormandie.yaml"),
    None,
    ("yaml",),
)
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
        """Communes of the arrêté of 26 March 2019 (the 244 communes of the service-public.fr
        simulator's list, :mod:`geo.sources.denormandie`), the list behind Denormandie's first
        route: ``code_insee`` (after the known corrections), ``code_actuel, ligne, commune``
        (name as written), ``code_ecrit`` (code as written), ``fichier``. Its provenance is
        ``info["acv_arrete"]``; :meth:`rows` works with ``"acv_arrete"`` as for any list. (The
        name is historical: the list is not the ACV programme's.)"""
        return self.tables[ARRETE]

    @property
    def arrete(self) -> pd.DataFrame:
        """Same table as :attr:`acv_arrete`, under a name that does not suggest ACV."""
        return self.tables[ARRETE]

    def derived_arrete(self) -> pd.DataFrame | None:
        """The former reconstruction of the arrêté's list from the ACV conventions acv-001 to
        acv-222 (:func:`~geo.sources.list_readers.derive_acv_arrete`), for cross-checks only
        (``ort communes --report``): never used to answer. ``None`` without the ACV list."""
        if "acv" not in self.tables:
            return None
        acv_file = self.info["acv"].origin if "acv" in self.info else ""
        prog_file = self.info["programmes"].origin if "programmes" in self.info else ""
        return derive_acv_arrete(
            self.tables["acv"],
            self.tables.get("programmes"),
            report=ValidationReport("reconstruction de la liste de l'arrêté"),
            acv_source=acv_file or "liste ACV",
            programmes_source=prog_file or "programmes ANCT",
        )

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
        if table is None:
            return None
        made = self._index.setdefault("commune_records", {})  # read once per commune, then copied
        if code not in made:
            made[code] = {"code_insee": code, **table.loc[code].to_dict()} if code in table.index else None
        return dict(made[code]) if made[code] is not None else None

    def profile(self, code: str) -> dict:
        """What the lists say about a commune besides eligibility: name, EPCI, programmes, QPV 2024."""
        current, how = self.resolve(code)
        rec = self.commune(current) if current else None
        found = self._programmes(code)
        if not found and current and current != code:
            # A delegated or former commune: the programmes are those of its current commune.
            found = self._programmes(current)
            if found:
                how = f"{how} ; programmes de la commune actuelle {current}".lstrip(" ;")
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

    def _programmes(self, code: str) -> dict[str, list[str]]:
        """Programme ids (ACV, PVD, ACV 2) written under ``code`` in the lists."""
        found: dict[str, list[str]] = {}
        for r in self.rows("acv", code):
            found.setdefault("ACV", []).append(r["id_acv"])
        for r in self.rows("pvd", code):
            found.setdefault("PVD", []).append(r["id_pvd"])
        for r in self.rows("programmes", code):
            for col, name in (("id_pvd", "PVD"), ("id_acv", "ACV"), ("id_acv2", "ACV 2")):
                if r.get(col):
                    found.setdefault(name, []).append(r[col])
        return found

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
