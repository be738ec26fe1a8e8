"""The typed results of the application layer: pydantic v2 models with French keys.

They are the CLI's ``--json`` (``ort check --json`` prints :class:`Verification`), the HTTP
API's schemas and what a notebook gets back. Dates are ISO (``2024-09-01``), shares between 0
and 1, areas in m². Data frames and geometries ride along as private attributes (``detail``),
never in the JSON.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

#: French label of a parcel's status in a perimeter.
Statut = Literal["incluse", "à cheval", "hors périmètre"]
#: Result of geocoding an address.
StatutAdresse = Literal["trouvée", "ambiguë", "introuvable"]


class Result(BaseModel):
    """Base of the results: French keys, unknown keys refused, no coercion surprises.

    Each model's validator is built when it is first used (``defer_build``), not at import:
    ``ort check`` builds the few it answers with, not the twenty of every job.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


class Validite(Result):
    """Whether the convention and the version of its perimeters are in force on the date."""

    convention_date_signature: dt.date
    convention_date_fin: dt.date = Field(description="signature + durée")
    convention_en_vigueur: bool
    version: str | None = Field(None, examples=["avenant-1"])
    version_date_effet: dt.date | None = None
    version_date_fin: dt.date | None = Field(
        None, description="fin propre de la version, sinon la veille de la suivante, sinon aucune"
    )
    avertissement: str = Field("", description="la convention a pris fin, le cas échéant")


class PerimetreParcelle(Result):
    """A parcel in one perimeter in force: inside, across or outside, and how much of it."""

    perimetre_id: str = Field(examples=["centre-ville"])
    nom: str = Field(examples=["Centre-ville"])
    type: str = Field(examples=["secteur"])
    statut: Statut
    part: float = Field(ge=0, le=1, description="part de la surface de la parcelle dans le périmètre")
    surface_m2: float = Field(ge=0, description="surface de la parcelle dans le périmètre, m²")
    distance_m: float | None = Field(None, description="distance au périmètre (hors périmètre), m")


class Parcelle(Result):
    """One parcel of the cadastre and its status in every perimeter in force."""

    idu: str = Field(examples=["62999000AB0012"], min_length=14, max_length=14)
    code_insee: str | None = None
    section: str | None = None
    numero: str | None = None
    contenance: float | None = Field(None, description="surface cadastrale, m²")
    perimetres: list[PerimetreParcelle] = []


class Rejet(Result):
    """An entry that gave no answer, and why (in French)."""

    entree: str
    erreur: str


class CandidatAdresse(Result):
    """One place an ambiguous address may designate."""

    libelle: str
    score: float
    code_insee: str | None = None


class Adresse(Result):
    """An address, where it was found, and the parcel holding its point (None if ambiguous)."""

    adresse: str = Field(description="l'adresse telle que tapée")
    statut: StatutAdresse
    libelle: str | None = None
    score: float | None = None
    lon: float | None = None
    lat: float | None = None
    source: str = Field("", description="données utilisées et leur date")
    idu: str | None = None
    distance_m: float | None = None
    message: str | None = None
    candidats: list[CandidatAdresse] = []


class Verification(Result):
    """The answer of ``ort check``: each parcel (or address put on its parcel) in each perimeter
    in force on ``date``, with the convention, the version and its validity, the cadastre used."""

    convention: str
    fictif: bool
    date: dt.date
    version: str | None = None
    version_date: dt.date | None = None
    validite: Validite
    avertissements: list[str] = []
    millesime_cadastre: str | None = None
    parcelles: list[Parcelle] = []
    rejetes: list[Rejet] = []
    adresses: list[Adresse] = []

    _detail: Any = PrivateAttr(default=None)
    _table: Any = PrivateAttr(default=None)

    @property
    def detail(self):
        """The :class:`geo.check.ParcelCheck` behind the answer (tables, geometries), or None."""
        return self._detail

    @property
    def table(self):
        """One row per parcel × perimeter (and the columns of the user's file), for CSV/XLSX."""
        return self._table


class ParcellesSecteur(Result):
    """The parcels of a sector on a date (``ort parcels``)."""

    perimetre_id: str
    nom: str
    date: dt.date
    parcelles: int = Field(ge=0)
    incluses: int = Field(ge=0)
    a_cheval: int = Field(ge=0)
    fichier: Path | None = None
    provenance: str = ""

    _table: Any = PrivateAttr(default=None)

    @property
    def table(self):
        """One row per parcel (``geo.columns.PARCELS``)."""
        return self._table


class PerimetreDessine(Result):
    """A perimeter drawn as the union of parcels (``ort perimeter-from-parcels``)."""

    perimetre_id: str
    nom: str
    parcelles: int
    surface_m2: float
    fichier: Path


class Probleme(Result):
    """One problem of a convention folder (``ort validate``)."""

    gravite: Literal["error", "warning"]
    code: str
    message: str
    source: str = ""
    element: str = Field("", description="l'entité en cause (id du périmètre…)")


class Validation(Result):
    """Every problem of a convention folder, found at once."""

    dossier: Path
    ok: bool
    erreurs: int
    avertissements: int
    problemes: list[Probleme] = []

    _report: Any = PrivateAttr(default=None)

    @property
    def report(self):
        """The :class:`geo.errors.ValidationReport` (its text is what ``ort validate`` prints)."""
        return self._report


class Telechargement(Result):
    """A cadastre layer of a commune in the cache, checked."""

    code_insee: str
    couche: str
    chemin: Path


class Lieux(Result):
    """A file of places (action register, friches, social housing) placed against the sectors."""

    type: Literal["actions", "friches", "logements"]
    fichier: Path
    convention: str | None = None
    ok: bool = Field(True, description="faux : le fichier contient des erreurs (problemes), rien n'est écrit")
    problemes: list[Probleme] = []
    lignes: int = Field(0, description="actions, sites de friches ou de logements lus")
    groupes: int | None = Field(None, description="axes du registre des actions")
    logements: int | None = None
    localises: int | None = None
    communes: list[str] | None = None
    source: str = ""
    convention_ligne: str = Field("", description="la convention et la date des périmètres utilisés")
    ecrit: Path | None = None

    _report: Any = PrivateAttr(default=None)
    _data: Any = PrivateAttr(default_factory=dict)

    @property
    def report(self):
        """The :class:`geo.errors.ValidationReport` of the file (None for housing)."""
        return self._report

    @property
    def data(self) -> dict:
        """The tables behind the answer (data frames), by name."""
        return self._data


class Fichier(Result):
    """A file written by a job."""

    chemin: Path
    octets: int = Field(ge=0)


class Note(Result):
    """One "note de renseignement ORT" written for a parcel."""

    idu: str
    adresse: str | None = None
    fichiers: list[Path]
    pages: int
    secondes: float


class Notes(Result):
    """The notes of ``ort note``: written files, addresses located, entries without a note."""

    date: dt.date
    convention: str
    notes: list[Note] = []
    adresses: list[Adresse] = []
    rejetes: list[Rejet] = []
    avertissements: list[str] = []

    _located: Any = PrivateAttr(default_factory=list)

    @property
    def located(self) -> list:
        """The addresses asked (:class:`geo.sources.addresses.AddressParcel`), for their text."""
        return self._located


class Carte(Result):
    """The offline map of a convention (one HTML file)."""

    chemin: Path
    octets: int
    reseau: bool = Field(description="la page charge des tuiles depuis le réseau")
    provenance: str = Field("", description="convention, version, date, millésime du cadastre")
    resume: list[str] = Field([], description="lignes du résumé (couches, comptes)")
    avertissements: list[str] = []


class Annexe(Result):
    """The printable annex of a convention (or of an avenant): its pages and files."""

    dossier: Path
    pages: int
    papier: str
    orientation: str
    fichiers: list[Path]
    provenance: str = ""
    avertissements: list[str] = []


class ChangementsPerimetre(Result):
    """What an avenant changes in one perimeter."""

    perimetre_id: str
    perimetre_nom: str
    entrent: int
    sortent: int
    part_modifiee: int


class Diff(Result):
    """What an avenant changed between two versions of a convention's perimeters."""

    convention: str
    avant: str
    avant_libelle: str
    avant_date_effet: dt.date
    apres: str
    apres_libelle: str
    apres_date_effet: dt.date
    perimetres: list[ChangementsPerimetre] = []
    fichiers: list[Path] = []

    _changes: Any = PrivateAttr(default=None)
    _table: Any = PrivateAttr(default=None)

    @property
    def table(self):
        """The parcels that enter, leave or change share (``geo.diff.DIFF`` columns)."""
        return self._table
