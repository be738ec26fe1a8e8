"""Rules as data: reading and checking ``data/regles-eligibilite.toml``.

Each rule names an effect, the level it applies at (the commune, the ORT, a perimeter, a
sector), a condition from the fixed vocabulary :data:`CONDITIONS` evaluated by
:mod:`geo.eligibility.answers`, its legal reference, its period of validity, notes, caveats and a
"to verify" flag. Dates that change by law (the end of Denormandie) are parameters of the
file, overridable at run time, and printed with every answer.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from geo import embedded
from geo.errors import InputError, ValidationFailed, ValidationReport

#: Name of the default rules file, embedded in the package (``data/`` of the repository).
RULES_NAME = "regles-eligibilite.toml"
LEVELS = ("commune", "ort", "perimeter", "sector")
#: Conditions the code knows, with the level each applies at.
CONDITIONS = {
    "acv_ou_ort_signee": "commune",
    "ort_signee": "ort",
    "ort_information": "ort",
    "opah_ru_en_vigueur": "perimeter",
    "ort_ou_opah_ru": "perimeter",
    "ort": "perimeter",
    "secteur_centre_ville": "sector",
}

# --------------------------------------------------------------------------------------------
# Rules


@dataclass(frozen=True)
class Rule:
    """One rule of the rules file (see its header for the vocabulary)."""

    id: str
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
    a_verifier: bool = False

    def in_period(self, day: dt.date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )

    def period(self) -> str:
        """The period of the rule in words, with the source of its end date."""
        src = f" ({self.valid_to_source})" if self.valid_to_source else ""
        if self.valid_from and self.valid_to:
            return f"du {self.valid_from} au {self.valid_to}{src}"
        if self.valid_to:
            return f"jusqu'au {self.valid_to}{src}"
        if self.valid_from:
            return f"depuis le {self.valid_from}"
        return "sans date de début ni de fin dans le fichier de règles"


@dataclass(frozen=True)
class Rules:
    """The rules file read: its version, parameters and rules."""

    version: str
    source: str
    rules: tuple[Rule, ...]
    parameters: dict = field(default_factory=dict)

    def __iter__(self):
        return iter(self.rules)

    def get(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        known = ", ".join(r.id for r in self.rules)
        raise InputError(f"règle inconnue « {rule_id} »", source=self.source, fix=f"règles connues : {known}")

    def label(self) -> str:
        return f"Règles : {Path(self.source).name}, version {self.version}"

    def with_parameter(self, name: str, day: dt.date, *, source: str) -> Rules:
        """The same rules with a date parameter replaced (e.g. ``denormandie_date_fin``)."""
        params = {**self.parameters, name: day, f"{name}_reference": source, f"{name}_a_verifier": False}
        params.pop(f"{name}_note", None)
        return Rules(self.version, self.source, tuple(_bind(r, params) for r in self.rules), params)


def load_rules(path: str | Path | None = None, *, denormandie_end: dt.date | None = None) -> Rules:
    """Read and check a rules file (default: the embedded :data:`RULES_NAME`), all problems at once.

    Parameters
    ----------
    path : str or Path, optional
        A TOML rules file.
    denormandie_end : date, optional
        Override the Denormandie end date of the file (printed with every answer).

    Raises
    ------
    ValidationFailed
        Missing fields, unknown level or condition, dates that are not dates.
    """
    path = Path(path) if path else embedded.path(RULES_NAME)
    src = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("fichier de règles introuvable", source=src, fix="vérifiez --rules") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"TOML invalide : {err}", source=src, fix="corrigez la syntaxe") from None
    report = ValidationReport(src)
    params = dict(data.get("parameters", {}))
    rules = []
    for i, raw in enumerate(data.get("rules", []), start=1):
        where = f"règle {i} ({raw.get('id', '?')})"
        missing = [k for k in ("id", "effect", "level", "condition", "reference") if not raw.get(k)]
        if missing:
            report.add(
                "error",
                "champ_manquant",
                f"champ(s) manquant(s) : {', '.join(missing)}",
                source=src,
                feature=where,
            )
            continue
        if CONDITIONS.get(raw["condition"]) != raw["level"]:
            report.add(
                "error",
                "condition_inconnue",
                f"condition « {raw['condition']} » au niveau « {raw['level']} » inconnue "
                f"(connues : {', '.join(f'{c}/{lv}' for c, lv in CONDITIONS.items())})",
                source=src,
                feature=where,
            )
            continue
        for key in ("valid_from", "valid_to"):
            if key in raw and not isinstance(raw[key], dt.date):
                report.add(
                    "error",
                    "date",
                    f"{key} = {raw[key]!r} n'est pas une date AAAA-MM-JJ",
                    source=src,
                    feature=where,
                )
        rules.append(raw)
    if not report.ok:
        raise ValidationFailed(report)
    version = str(data.get("version", "?"))
    out = Rules(version, src, tuple(_bind(_rule(raw), params) for raw in rules), params)
    if denormandie_end is not None:
        out = out.with_parameter("denormandie_date_fin", denormandie_end, source="option --denormandie-fin")
    return out


def _rule(raw: dict) -> Rule:
    return Rule(
        id=raw["id"],
        effect=raw["effect"],
        level=raw["level"],
        condition=raw["condition"],
        reference=raw["reference"],
        valid_from=raw.get("valid_from"),
        valid_to=raw.get("valid_to"),
        valid_to_parameter=raw.get("valid_to_parameter", ""),
        notes=raw.get("notes", ""),
        caveats=tuple(raw.get("caveats", ())),
        a_verifier=bool(raw.get("a_verifier", False)),
    )


def _bind(rule: Rule, params: dict) -> Rule:
    """Take the rule's end date from a parameter (``valid_to_parameter``), citing its source."""
    name = rule.valid_to_parameter
    if not name:
        return rule
    if not isinstance(params.get(name), dt.date):
        raise InputError(
            f"paramètre {name} absent ou qui n'est pas une date",
            feature=rule.id,
            fix=f"ajoutez {name} = AAAA-MM-JJ dans [parameters]",
        )
    flag = " ; à vérifier" if params.get(f"{name}_a_verifier") else ""
    return replace(
        rule, valid_to=params[name], valid_to_source=f"{params.get(f'{name}_reference', name)}{flag}"
    )
