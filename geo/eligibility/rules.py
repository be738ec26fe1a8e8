"""Rules as data: reading and checking ``data/regles-eligibilite.toml``.

Each rule names an effect, the level it applies at (the commune, the ORT, a perimeter, a sector,
outside the sectors, a perimeter set by local deliberation), a condition named in the registry
of :mod:`geo.eligibility.conditions`, its legal reference,
its period of validity, notes, caveats and the points still to verify. Dates that change by law
(the end of Denormandie) are parameters of the file, overridable at run time, and printed with
every answer.

The file is read within bounds and validated by strict pydantic models through the project's
shared helper (:mod:`geo.schema`: French messages, the fix with an example, close-match hints),
one part at a time (header, ``[parametres]``, each rule) so that every problem names its rule.
The checks across fields are validators of the models (a condition unknown to the registry of
:mod:`geo.eligibility.conditions` or at the wrong level, a duplicated id, a period that ends
before it starts, an unknown parameter). Every problem is reported at once; an unknown field is
an error here (a misspelt ``mises_en_garde`` would silently lose caveats).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, ValidationInfo, field_validator

from geo import fmt, schema
from geo.eligibility.conditions import REGISTRY, levels
from geo.errors import InputError, ValidationFailed, ValidationReport

#: The default rules file's name among the embedded data (:func:`geo.embedded.path`).
RULES_NAME = "regles-eligibilite.toml"

Level = Literal["commune", "ort", "perimetre", "secteur", "hors_secteurs", "deliberation"]
LEVELS: tuple[str, ...] = Level.__args__  # type: ignore[attr-defined]
#: Levels decided by the parcel's place (geometry), not by the commune's lists.
PLACE_LEVELS = ("perimetre", "secteur", "hors_secteurs", "deliberation")

#: Conditions the code knows (the registry of :mod:`geo.eligibility.conditions`), with their level.
CONDITIONS: dict[str, str] = levels()

_ID = r"^[a-z][a-z0-9_]*$"


def _identifier(value: str) -> str:
    if not re.fullmatch(_ID, value):
        raise schema.problem(
            "bad-id",
            f"{schema.shown(value)} n'est pas un identifiant",
            "lettres minuscules, chiffres et _ (ex. dispense_aec)",
        )
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]


# --------------------------------------------------------------------------------------------
# The file's model (strict: types as TOML gives them, no unknown field)


class RuleModel(schema.Model):
    """One ``[[regles]]`` table."""

    id: Identifier = Field(examples=["dispense_aec"])
    nom: str = Field(min_length=1, examples=["VIR"])
    effet: str = Field(min_length=1, examples=["Vente d'immeuble à rénover (VIR) aidée par l'Anah"])
    niveau: Level
    condition: str = Field(min_length=1, examples=["secteurs_ort"])
    reference: str = Field(min_length=1, examples=["CCH L262-1"])
    bofip: str = ""
    libelle_oui: str = ""
    du: dt.date | None = None
    au: dt.date | None = None
    au_parametre: str = ""
    notes: str = ""
    mises_en_garde: list[str] = Field([], examples=[["conditions fixées par l'Anah"]])
    a_verifier: list[str] = Field([], examples=[["date d'entrée en vigueur"]])
    sources: list[str] = Field([], examples=[["texte consolidé au 25/08/2021"]])

    # Checks across fields. Each field validator sees the fields validated before it
    # (``info.data``), so every problem of a rule is reported at once, even with other errors.

    @field_validator("id")
    @classmethod
    def _unique(cls, value: str, info: ValidationInfo) -> str:
        seen = (info.context or {}).get("ids")
        if seen is not None:
            if value in seen:
                raise schema.problem("id-double", f"id « {value} » déjà utilisé", "donnez un id unique")
            seen.add(value)
        return value

    @field_validator("condition")
    @classmethod
    def _known_condition(cls, value: str, info: ValidationInfo) -> str:
        if value not in REGISTRY:
            raise schema.problem(
                "condition-inconnue",
                f"condition « {value} » inconnue",
                f"conditions connues : {', '.join(REGISTRY)}",
            )
        level, wanted = info.data.get("niveau"), REGISTRY[value].level
        if level is not None and level != wanted:
            raise schema.problem(
                "niveau-condition",
                f"la condition « {value} » se décide au niveau « {wanted} », pas « {level} »",
                f'écrivez niveau = "{wanted}"',
            )
        return value

    @field_validator("au")
    @classmethod
    def _after_start(cls, value: dt.date | None, info: ValidationInfo) -> dt.date | None:
        start = info.data.get("du")
        if value is not None and start is not None and value < start:
            raise schema.problem(
                "periode-inversee", f"au = {value} est avant du = {start}", "corrigez les dates"
            )
        return value

    @field_validator("au_parametre")
    @classmethod
    def _known_parameter(cls, value: str, info: ValidationInfo) -> str:
        if value and info.data.get("au") is not None:
            raise schema.problem("fin-double", "au et au_parametre donnés ensemble", "gardez l'un des deux")
        params = (info.context or {}).get("parametres", {})
        if value and not isinstance(params.get(value), dt.date):
            raise schema.problem(
                "parametre-inconnu",
                f"au_parametre = « {value} » : pas de date de ce nom dans [parametres]",
                f"ajoutez {value} = AAAA-MM-JJ",
            )
        return value


class NonEffectModel(schema.Model):
    """One ``[[non_effets]]`` table: what people ask about that is not an ORT effect."""

    id: Identifier = Field(examples=["loc_avantages"])
    nom: str = Field(min_length=1, examples=["Loc'Avantages"])
    explication: str = Field(min_length=1, examples=["… n'est pas un effet de l'ORT."])


class ParametersModel(schema.Model):
    """The ``[parametres]`` table."""

    denormandie_date_fin: dt.date = Field(examples=[dt.date(2027, 12, 31)])
    denormandie_date_fin_reference: str = Field(min_length=1, examples=["loi n° 2024-322, art. 42"])
    denormandie_historique: list[str] = []
    denormandie_tout_le_territoire_depuis: dt.date = Field(examples=[dt.date(2020, 1, 1)])
    denormandie_coproprietes_depuis: dt.date = Field(examples=[dt.date(2024, 4, 11)])
    #: C. com. L752-1-2 in the loi 3DS's wording (outside the sectors including a centre-ville).
    cdac_centre_ville_depuis: dt.date | None = Field(None, examples=[dt.date(2022, 2, 23)])
    #: CGCT L2255-1 no longer limited to the communes signatory of an ORT (loi 3DS, art. 156).
    fermeture_service_toutes_communes_depuis: dt.date | None = Field(None, examples=[dt.date(2022, 2, 23)])


class HeaderModel(schema.Model):
    """The top of the file (without its tables)."""

    version: str = Field(min_length=1, examples=["2026-12-03"])
    titre: str = ""
    verifie_le: dt.date = Field(examples=[dt.date(2026, 12, 3)])
    avertissement: str = Field(min_length=1, examples=["Information indicative : …"])


_TABLES = {"parametres": "[parametres]", "regles": "[[regles]]", "non_effets": "[[non_effets]]"}


class TablesModel(schema.Model):
    """The tables of the file, each then validated by its own model (so problems name their rule)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    parametres: dict = Field(examples=[{"denormandie_date_fin": dt.date(2027, 12, 31)}])
    regles: list[dict] = Field(min_length=1, examples=[[{"id": "vir"}]])
    non_effets: list[dict] = []


def _as_list(value) -> list:
    return value if isinstance(value, list) else []


def _validate_all(data: dict, report: ValidationReport, src: str):
    """Every part of the file through :func:`geo.schema.validate`, each problem naming its part.

    Returns (header, parameters, rules, non-effects), None where a part has errors. An unknown
    field is an error here (a misspelt ``mises_en_garde`` would silently lose caveats).
    """
    header = {k: v for k, v in data.items() if k not in _TABLES}
    head = schema.validate(HeaderModel, header, report=report, source=src, feature="en-tête")
    tables = schema.validate(TablesModel, data, report=report, source=src, feature="en-tête")
    raw_params = tables.parametres if tables else data.get("parametres")
    params = None
    if isinstance(raw_params, dict):
        params = schema.validate(
            ParametersModel, raw_params, report=report, source=src, feature="[parametres]"
        )
    context = {"ids": set(), "parametres": raw_params if isinstance(raw_params, dict) else {}}  # per reading
    raw_rules = tables.regles if tables else [r for r in _as_list(data.get("regles")) if isinstance(r, dict)]
    rules = [
        schema.validate(
            RuleModel,
            raw,
            report=report,
            source=src,
            feature=f"règle {i} ({raw.get('id', '?')})",
            context=context,
        )
        for i, raw in enumerate(raw_rules, start=1)
    ]
    raw_others = tables.non_effets if tables else []
    others = [
        schema.validate(NonEffectModel, raw, report=report, source=src, feature=f"non-effet {i}")
        for i, raw in enumerate(raw_others, start=1)
    ]
    report.problems = [
        replace(p, severity="error", message=p.message.replace(" (ignoré)", ""))
        if p.code == "unknown-field"
        else p
        for p in report.problems
    ]
    return head, params, rules, others


# --------------------------------------------------------------------------------------------
# Rules as the code uses them


@dataclass(frozen=True)
class Rule:
    """One rule of the rules file (see its header for the vocabulary)."""

    id: str
    name: str
    effect: str
    level: str
    condition: str
    reference: str
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    valid_to_parameter: str = ""
    valid_to_source: str = ""
    notes: str = ""
    caveats: tuple[str, ...] = ()
    to_verify: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    bofip: str = ""
    yes_label: str = ""

    @property
    def a_verifier(self) -> bool:
        """True exactly when the rule has points to verify (the JSON flag follows the text)."""
        return bool(self.to_verify)

    def in_period(self, day: dt.date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )

    def period(self) -> str:
        """The period of the rule in words, with the source of its end date."""
        src = f" ({self.valid_to_source})" if self.valid_to_source else ""
        if self.valid_from and self.valid_to:
            return f"du {_fr(self.valid_from)} au {_fr(self.valid_to)}{src}"
        if self.valid_to:
            return f"jusqu'au {_fr(self.valid_to)}{src}"
        if self.valid_from:
            return f"depuis le {_fr(self.valid_from)}"
        return "sans date de début ni de fin dans le fichier de règles"


@dataclass(frozen=True)
class NonEffect:
    """Something people ask about that is *not* an effect of the ORT."""

    id: str
    name: str
    explanation: str


@dataclass(frozen=True)
class Rules:
    """The rules file read: its version, parameters and rules."""

    version: str
    source: str
    rules: tuple[Rule, ...]
    parameters: dict = field(default_factory=dict)
    verified_on: dt.date | None = None
    disclaimer: str = ""
    non_effects: tuple[NonEffect, ...] = ()

    def __iter__(self):
        return iter(self.rules)

    def get(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        for other in self.non_effects:
            if rule_id in (other.id, other.name.lower()):
                raise InputError(other.explanation, feature=other.name, fix="aucune règle d'ORT à évaluer")
        known = ", ".join(r.id for r in self.rules)
        raise InputError(f"règle inconnue « {rule_id} »", source=self.source, fix=f"règles connues : {known}")

    def label(self) -> str:
        verified = f", vérifié le {_fr(self.verified_on)}" if self.verified_on else ""
        return f"Règles : {Path(self.source).name}, version {self.version}{verified}"

    def disclaimer_for(self, rule: Rule) -> str:
        """The one-line disclaimer closing every answer (with BOFiP for Denormandie)."""
        return f"{self.disclaimer} ({rule.bofip})" if rule.bofip else self.disclaimer

    def with_parameter(self, name: str, day: dt.date, *, source: str) -> Rules:
        """The same rules with a date parameter replaced (e.g. ``denormandie_date_fin``)."""
        params = {**self.parameters, name: day, f"{name}_reference": source}
        return replace(self, rules=tuple(_bind(r, params) for r in self.rules), parameters=params)


def _fr(day) -> str:
    return fmt.date_fr(day)


def default_rules_path() -> Path:
    """The rules file shipped with the tool."""
    from geo import embedded

    return embedded.path(RULES_NAME)


def load_rules(path: str | Path | None = None, *, denormandie_end: dt.date | None = None) -> Rules:
    """Read and check a rules file (default: the embedded one), reporting every problem at once.

    Parameters
    ----------
    path : str or Path, optional
        A TOML rules file (``--rules``).
    denormandie_end : date, optional
        Override the Denormandie end date of the file (printed with every answer).

    Raises
    ------
    InputError
        The file is missing or is not TOML.
    ValidationFailed
        Every problem of the file: missing or unknown fields, dates that are not dates, unknown
        level or condition, a condition at the wrong level, duplicated ids, reversed periods.
    """
    path = Path(path) if path else default_rules_path()
    src = str(path)
    data = schema.read_toml(path, what="fichier de règles", fix="corrigez la syntaxe")
    report = ValidationReport(src)
    head, model_params, models, others = _validate_all(data, report, src)
    if not report.ok or head is None or model_params is None:
        raise ValidationFailed(report)
    p = model_params.model_dump()
    rules = Rules(
        version=head.version,
        source=src,
        rules=tuple(_bind(_rule(r), p) for r in models),
        parameters=p,
        verified_on=head.verifie_le,
        disclaimer=head.avertissement,
        non_effects=tuple(NonEffect(n.id, n.nom, n.explication) for n in others),
    )
    if denormandie_end is not None:
        rules = rules.with_parameter(
            "denormandie_date_fin", denormandie_end, source="option --denormandie-fin"
        )
    return rules


def _rule(m: RuleModel) -> Rule:
    return Rule(
        id=m.id,
        name=m.nom,
        effect=m.effet,
        level=m.niveau,
        condition=m.condition,
        reference=m.reference,
        valid_from=m.du,
        valid_to=m.au,
        valid_to_parameter=m.au_parametre,
        notes=m.notes,
        caveats=tuple(m.mises_en_garde),
        to_verify=tuple(m.a_verifier),
        sources=tuple(m.sources),
        bofip=m.bofip,
        yes_label=m.libelle_oui,
    )


def _bind(rule: Rule, params: dict) -> Rule:
    """Take the rule's end date from a parameter (``au_parametre``), citing its source."""
    name = rule.valid_to_parameter
    if not name:
        return rule
    return replace(rule, valid_to=params[name], valid_to_source=str(params.get(f"{name}_reference", name)))
