"""The typed results of an eligibility question: what ``ort eligibility --json`` prints and what
the web API serves (the same pydantic models, French keys).

A :class:`ResultatEligibilite` holds the date evaluated, the rules file used (version, date of
verification, Denormandie's dated chain of texts), the lists used with their vintage and
provenance, the convention folder (if any), one :class:`Cible` per parcel or commune with one
:class:`Reponse` per dispositif (verdict, motif, règle, référence, dates, mises en garde), the
entries refused and the disclaimer.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Voie(_Out):
    """One way into a dispositif (Denormandie: the arrêté's list, an ORT, a copropriété)."""

    voie: str
    verdict: str
    motif: str


class Reponse(_Out):
    """One dispositif for one parcel or commune at one date, explaining itself."""

    code_insee: str
    commune: str
    idu: str | None
    regle: str = Field(description="identifiant de la règle (fichier de règles)")
    dispositif: str
    effet: str
    niveau: str
    portee: str = Field(
        description="à quel niveau vaut le verdict : « toute la commune », « hors secteurs »…"
    )
    verdict: str = Field(description="oui, non, partiellement, inconnu")
    verdict_libelle: str
    part: float | None = Field(description="part de la parcelle concernée (0 à 1)")
    motif: str
    voies: list[Voie]
    reference: str
    date_evaluee: str
    periode: str
    donnees: list[str] = Field(description="données utilisées, avec leur millésime et leur provenance")
    mises_en_garde: list[str]
    a_verifier: bool
    points_a_verifier: list[str]
    verifie_le: str | None
    avertissement: str


class Cible(_Out):
    """A parcel or a commune and its answers."""

    code_insee: str
    commune: str
    idu: str | None
    contexte: dict
    reponses: list[Reponse]


class ReglesUtilisees(_Out):
    fichier: str
    version: str
    verifie_le: str | None
    denormandie_textes: list[str]
    denormandie_fin: str | None
    denormandie_fin_source: str | None


class ListeUtilisee(_Out):
    """A national list used: its vintage and true provenance."""

    model_config = ConfigDict(extra="allow")

    nom: str
    titre: str
    fichier: str
    fichier_officiel: str = ""
    date: str
    base_date: str = ""
    copie: str = ""
    source: str = ""
    licence: str = ""
    lignes: int | None = None


class ConventionUtilisee(_Out):
    nom: str
    fictif: bool
    version: str | None
    version_date: str | None
    remarque: str | None


class Rejet(_Out):
    entree: str
    erreur: str


class ResultatEligibilite(_Out):
    """Everything answered for one question (``ort eligibility --json``)."""

    date: str
    regles: ReglesUtilisees
    listes: list[ListeUtilisee]
    convention: ConventionUtilisee | None
    resultats: list[Cible]
    rejetes: list[Rejet]
    avertissement: str
    adresses: list[dict] | None = Field(None, description="adresses géocodées, quand on en a donné")

    _answers: list = PrivateAttr(default_factory=list)
    _notices: list = PrivateAttr(default_factory=list)
    _lines: dict = PrivateAttr(default_factory=dict)

    @property
    def answers(self) -> list:
        """The :class:`geo.eligibility.answers.Answer` objects (tables, notes, maps)."""
        return self._answers

    @property
    def notices(self) -> list[str]:
        """Warnings about the question itself (a code read as a former code…)."""
        return self._notices

    @property
    def perimeters_line(self) -> str:
        """The convention and the version of its perimeters used ('' without a convention)."""
        return self._lines.get("perimetres", "")

    @property
    def source_line(self) -> str:
        """Rules, lists and perimeters used, on one line (source row of the tables written)."""
        return self._lines.get("source", "")

    def to_json(self) -> str:
        """The JSON of ``ort eligibility --json`` (``adresses`` only when addresses were asked)."""
        data = self.model_dump(mode="json", exclude={"adresses"} if self.adresses is None else None)
        return json.dumps(data, ensure_ascii=False, indent=2)
