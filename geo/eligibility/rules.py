"""Rules as data: reading and checking ``data/regles-eligibilite.toml``.

Each rule names an effect, the level it applies at (the commune, the ORT, a perimeter, a sector,
outside the sectors, a perimeter set by local deliberation), a condition from the fixed
vocabulary :data:`CONDITIONS` evaluated by :mod:`geo.eligibility.answers`, its legal reference,
its period of validity, notes, caveats and the points still to verify. Dates that change by law
(the end of Denormandie) are parameters of the file, overridable at run time, and printed with
every answer.

The file is validated by a strict pydantic model: every problem (missing or unknown field, a
date that is not a date, an unknown condition, a condition at the wrong level, a duplicated id,
a period that ends before it starts) is reported at once, each naming the file, the rule and the
fix, in French.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError

from geo import fmt
from geo.errors import InputError, ValidationFailed, ValidationReport

#: The default rules file's name among the embedded data (:func:`geo.embedded.path`).
RULES_NAME = "regles-eligibilite.toml"

Level = Literal["commune", "ort", "perimetre", "secteur", "hors_secteurs", "deliberation"]
LEVELS: tuple[str, ...] = Level.__args__  # type: ignore[attr-defined]
#: Levels decided by the parcel's place (geometry), not by the commune's lists.
PLACE_LEVELS = ("perimetre", "secteur", "hors_secteurs", "deliberation")

#: Conditions the code knows, with the level each applies at.
CONDITIONS: dict[str, str] = {
    "arrete_acv_ou_ort": "commune",
    "ort_ou_acv_2018": "ort",
    "ort_conclue": "ort",
    "ort_information": "ort",
    "opah_ru": "perimetre",
    "secteurs_ort_ou_opah_ru": "perimetre",
    "secteurs_ort": "secteur",
    "secteur_centre_ville": "secteur",
    "hors_secteurs_centre_ville": "hors_secteurs",
    "dpu_renforce": "deliberation",
    "preemption_commerciale": "deliberation",
}

_ID = r"^[a-z][a-z0-9_]*$"


# --------------------------------------------------------------------------------------------
# The file's model (strict: types as TOML gives them, no unknown field)


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class RuleModel(_Strict):
    id: str = Field(pattern=_ID)
    nom: str = Field(min_length=1)
    effet: str = Field(min_length=1)
    niveau: Level
    condition: str = Field(min_length=1)
    reference: str = Field(min_length=1)
    bofip: str = ""
    libelle_oui: str = ""
    du: dt.date | None = None
    au: dt.date | None = None
    au_parametre: str = ""
    notes: str = ""
    mises_en_garde: list[str] = []
    a_verifier: list[str] = []
    sources: list[str] = []


class NonEffectModel(_Strict):
    id: str = Field(pattern=_ID)
    nom: str = Field(min_length=1)
    explication: str = Field(min_length=1)


class ParametersModel(_Strict):
    denormandie_date_fin: dt.date
    denormandie_date_fin_reference: str = Field(min_length=1)
    denormandie_historique: list[str] = []
    denormandie_tout_le_territoire_depuis: dt.date
    denormandie_coproprietes_depuis: dt.date


class RulesFileModel(_Strict):
    version: str = Field(min_length=1)
    titre: str = ""
    verifie_le: dt.date
    avertissement: str = Field(min_length=1)
    parametres: ParametersModel
    regles: list[RuleModel] = Field(min_length=1)
    non_effets: list[NonEffectModel] = []


_TYPE_WORDS = {
    "string_type": "un texte entre guillemets",
    "date_type": "une date AAAA-MM-JJ (sans guillemets)",
    "bool_type": "true ou false",
    "list_type": "une liste [ ... ]",
    "model_type": "une table",
    "dict_type": "une table",
    "int_type": "un nombre entier",
}


def _where(loc: tuple, data: dict) -> tuple[str, str]:
    """(feature, field) in French for a pydantic error location."""
    if loc[:1] == ("regles",) and len(loc) >= 2 and isinstance(loc[1], int):
        raw = (data.get("regles") or [None] * (loc[1] + 1))[loc[1]]
        rid = raw.get("id", "?") if isinstance(raw, dict) else "?"
        return f"règle {loc[1] + 1} ({rid})", ".".join(str(x) for x in loc[2:])
    if loc[:1] == ("non_effets",) and len(loc) >= 2 and isinstance(loc[1], int):
        return f"non-effet {loc[1] + 1}", ".".join(str(x) for x in loc[2:])
    if loc[:1] == ("parametres",):
        return "[parametres]", ".".join(str(x) for x in loc[1:])
    return "en-tête", ".".join(str(x) for x in loc)


def _french(err: dict, fields: dict[str, tuple[str, ...]], feature: str) -> tuple[str, str, str]:
    """(code, message, fix) in French for one pydantic error."""
    kind, name = err["type"], str(err["loc"][-1]) if err["loc"] else ""
    value = err.get("input")
    if kind == "missing":
        return "champ_manquant", f"champ « {name} » manquant", f"ajoutez {name} = …"
    if kind == "extra_forbidden":
        known = fields.get(feature.split(" ")[0], ())
        return (
            "champ_inconnu",
            f"champ « {name} » inconnu",
            f"champs connus : {', '.join(known)}" if known else "supprimez-le",
        )
    if kind in _TYPE_WORDS:
        return "type", f"{name} = {value!r} n'est pas {_TYPE_WORDS[kind]}", f"écrivez {_TYPE_WORDS[kind]}"
    if kind == "literal_error":
        return "valeur_inconnue", f"{name} = {value!r} inconnu", f"valeurs possibles : {', '.join(LEVELS)}"
    if kind == "string_pattern_mismatch":
        return (
            "identifiant",
            f"{name} = {value!r} invalide",
            "lettres minuscules, chiffres et _ (ex. dispense_aec)",
        )
    if kind in ("string_too_short", "too_short"):
        return "vide", f"« {name} » est vide", "renseignez-le"
    return "invalide", f"{name} : {err.get('msg', kind)}", "corrigez la valeur"


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
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("fichier de règles introuvable", source=src, fix="vérifiez --rules") from None
    except IsADirectoryError:
        raise InputError(
            "c'est un dossier, pas un fichier de règles", source=src, fix="vérifiez --rules"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"TOML invalide : {err}", source=src, fix="corrigez la syntaxe") from None
    except RecursionError:
        raise InputError(
            "TOML invalide : tableaux trop imbriqués", source=src, fix="corrigez la syntaxe"
        ) from None
    report = ValidationReport(src)
    model = None
    try:
        model = RulesFileModel.model_validate(data)
    except PydanticError as err:
        fields = {
            "règle": tuple(RuleModel.model_fields),
            "non-effet": tuple(NonEffectModel.model_fields),
            "[parametres]": tuple(ParametersModel.model_fields),
            "en-tête": tuple(RulesFileModel.model_fields),
        }
        for e in err.errors(include_url=False):
            feature, _ = _where(tuple(e["loc"]), data)
            code, message, fix = _french(e, fields, feature)
            report.add("error", code, f"{message} — {fix}", source=src, feature=feature)
    # Checks across fields, made even when the model failed elsewhere (everything at once).
    raw_rules = data.get("regles") if isinstance(data.get("regles"), list) else []
    params = data.get("parametres") if isinstance(data.get("parametres"), dict) else {}
    seen: set[str] = set()
    for i, raw in enumerate(raw_rules, start=1):
        if not isinstance(raw, dict):
            continue
        where = f"règle {i} ({raw.get('id', '?')})"
        rid, cond, level = raw.get("id"), raw.get("condition"), raw.get("niveau")
        if isinstance(rid, str):
            if rid in seen:
                report.add(
                    "error",
                    "id_double",
                    f"id « {rid} » déjà utilisé — donnez un id unique",
                    source=src,
                    feature=where,
                )
            seen.add(rid)
        if isinstance(cond, str) and cond not in CONDITIONS:
            report.add(
                "error",
                "condition_inconnue",
                f"condition « {cond} » inconnue — conditions connues : {', '.join(CONDITIONS)}",
                source=src,
                feature=where,
            )
        elif isinstance(cond, str) and isinstance(level, str) and CONDITIONS[cond] != level:
            report.add(
                "error",
                "niveau_condition",
                f"la condition « {cond} » se décide au niveau « {CONDITIONS[cond]} », pas « {level} » — "
                f'écrivez niveau = "{CONDITIONS[cond]}"',
                source=src,
                feature=where,
            )
        start, end = raw.get("du"), raw.get("au")
        if isinstance(start, dt.date) and isinstance(end, dt.date) and end < start:
            report.add(
                "error",
                "periode",
                f"au = {end} est avant du = {start} — corrigez les dates",
                source=src,
                feature=where,
            )
        ref = raw.get("au_parametre")
        if isinstance(ref, str) and ref and not isinstance(params.get(ref), dt.date):
            report.add(
                "error",
                "parametre_inconnu",
                f"au_parametre = « {ref} » : pas de date de ce nom dans [parametres] "
                f"— ajoutez {ref} = AAAA-MM-JJ",
                source=src,
                feature=where,
            )
        if "au" in raw and ref:
            report.add(
                "error",
                "fin_double",
                "au et au_parametre donnés ensemble — gardez l'un des deux",
                source=src,
                feature=where,
            )
    if not report.ok or model is None:
        raise ValidationFailed(report)
    p = model.parametres.model_dump()
    rules = Rules(
        version=model.version,
        source=src,
        rules=tuple(_bind(_rule(r), p) for r in model.regles),
        parameters=p,
        verified_on=model.verifie_le,
        disclaimer=model.avertissement,
        non_effects=tuple(NonEffect(n.id, n.nom, n.explication) for n in model.non_effets),
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
