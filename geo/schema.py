"""The files people edit: read within bounds, then validated by typed models.

Two jobs, shared by the convention (``convention.toml``, perimeter GeoJSON properties), the
action register (``actions.toml``) and any other hand-edited file:

- :func:`read_toml` / :func:`read_json` (:mod:`geo.bounded`) refuse a file over a size
  (``settings.max_toml_bytes``, ``settings.max_json_bytes``) or a nesting depth
  (``settings.max_nesting``) *before* parsing, with a cheap scan: a few hundred kilobytes of
  deeply dotted TOML keys otherwise make the parser use gigabytes, and deeply nested JSON
  arrays exhaust the stack.
- :func:`validate` checks parsed data against a pydantic v2 model in strict mode
  (:class:`Model`): ``"non"`` is not a boolean, ``true`` is not a number, a quoted date is
  not a date. Every problem is added at once to a :class:`~geo.errors.ValidationReport`, in
  French, with the file, the feature and the fix; pydantic's English never reaches the user.

A model states its own vocabulary: a field's ``examples`` give the value shown in the fix
(``écrivez duree_ans = 5``); a validator that refuses a value raises :func:`problem` with a
project code (``bad-amount``), a French message and a fix.

>>> from pydantic import Field
>>> class Demo(Model):
...     fictif: bool = Field(False, examples=[True])
>>> report = ValidationReport("demo.toml")
>>> validate(Demo, {"fictif": "non"}, report=report, source="demo.toml") is None
True
>>> print(report.problems[0].message)
fictif = "non" est un texte, pas un booléen — écrivez fictif = false (sans guillemets)
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import json
import re
import typing
from collections.abc import Callable, Iterable
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

from geo.bounded import check_json as check_json
from geo.bounded import json_depth as json_depth
from geo.bounded import read_json as read_json
from geo.bounded import read_toml as read_toml
from geo.bounded import toml_depth as toml_depth
from geo.bounded import toml_error_fr as toml_error_fr
from geo.errors import ValidationReport, one_line
from geo.idu import is_insee_code

M = TypeVar("M", bound=BaseModel)

__all__ = [
    "InseeCode",
    "IsoDate",
    "Model",
    "choice",
    "problem",
    "check_json",
    "read_json",
    "read_toml",
    "shown",
    "validate",
]


class Model(BaseModel):
    """Base of the models of hand-edited files: strict types, unknown fields reported, frozen."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, hide_input_in_errors=False)


def problem(code: str, message: str, fix: str = "") -> PydanticCustomError:
    """The error a validator raises: a project ``code``, a French ``message`` and its ``fix``.

    ``message`` may hold ``{`` and ``}``: it is shown as written (values are put in it by the
    caller, e.g. with :func:`shown`).
    """
    return PydanticCustomError(code, "{text}", {"text": message, "fix": fix})


# --------------------------------------------------------------------------------------------
# Validation and French messages


def validate(
    model: type[M],
    data: object,
    *,
    report: ValidationReport,
    source: str,
    feature: str = "",
    syntax: str = "toml",
    fallback: dict | None = None,
    context: dict | None = None,
) -> M | None:
    """Validate ``data`` against ``model``; add every problem to ``report`` in French.

    Parameters
    ----------
    model : type of pydantic model
        Usually a :class:`Model` (strict, unknown fields forbidden).
    report : ValidationReport
        Problems are appended here (unknown fields as warnings ``unknown-field``).
    source, feature : str
        The file and the feature (``"action A1"``) the problems are about. Without ``feature``
        the feature is the location of each problem (``"versions[1]"``).
    syntax : ``"toml"`` or ``"json"``
        How the fixes write values (``fictif = false`` or ``"centre_ville": false``).
    fallback : dict, optional
        When given and the data has errors, the fields in error are dropped, replaced by
        ``fallback`` where it has them, and the model built from what remains (for readers
        that carry on with what they could read); otherwise None is returned.
    context : dict, optional
        Passed to the model's validators.

    Returns
    -------
    model instance or None
        None when the data has errors and no ``fallback`` could build it.
    """
    try:
        return model.model_validate(data, context=context)
    except ValidationError as err:
        errors = err.errors(include_url=False)
    for e in errors:
        _add(report, model, e, source=source, feature=feature, syntax=syntax)
    if fallback is None or not isinstance(data, dict):
        return None
    return _salvage(model, data, errors, fallback, context)


def _salvage(model: type[M], data: dict, errors: list, fallback: dict, context: dict | None) -> M | None:
    """The model built from ``data`` without the values in error (``fallback`` for required ones)."""
    current = copy.deepcopy(data)
    for _ in range(16):
        removed = False
        for e in sorted(errors, key=lambda e: [str(p).zfill(9) for p in e["loc"]], reverse=True):
            loc = tuple(e["loc"])[:-1] if e["type"] == "missing" else tuple(e["loc"])
            removed |= _remove(current, loc)
        current.update({k: v for k, v in fallback.items() if k not in current})
        try:
            return model.model_validate(current, context=context)
        except ValidationError as err:
            errors = err.errors(include_url=False)
        if not removed:
            return None
    return None


def _remove(data: object, loc: tuple) -> bool:
    """Remove the value at ``loc`` (keys and list indexes) from nested ``data``; False if absent."""
    if not loc:
        return False
    *parents, last = loc
    for part in parents:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return False
    if isinstance(data, dict) and last in data:
        del data[last]
        return True
    if isinstance(data, list) and isinstance(last, int) and 0 <= last < len(data):
        del data[last]
        return True
    return False


# --------------------------------------------------------------------------------------------
# Types shared by several files


def _insee(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 100_000:
        raise problem(
            "insee-as-number",
            f"{value} est écrit comme un nombre : un code INSEE est un texte de 5 caractères",
            f'écrivez "{value:05d}" entre guillemets (le zéro initial compte)',
        )
    if isinstance(value, str) and is_insee_code(value.strip().upper()):
        return value.strip().upper()
    raise problem(
        "bad-insee",
        f"{shown(value)} n'est pas un code INSEE (5 chiffres, ou 2A/2B + 3 chiffres en Corse)",
        'écrivez-le entre guillemets, p. ex. "62907" ou "2A004"',
    )


#: An INSEE commune code written as a string (``"62907"``); a number is refused with the fix.
InseeCode = Annotated[str, BeforeValidator(_insee)]


def _iso_date(value: object) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise problem(
        "bad-date",
        f"{shown(value, 'json')} n'est pas une date AAAA-MM-JJ",
        'écrivez-la au format ISO entre guillemets, p. ex. "2024-01-01"',
    )


#: A date in a JSON file, written as an ISO text ``"2024-01-01"`` (JSON has no date type).
IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]


def choice(values: Iterable[str], *, code: str, key: Callable[[str], str] | None = None) -> Any:
    """A string type limited to ``values``; ``key`` (e.g. accent and case folding) maps spellings.

    A refused value gets the closest allowed one as a suggestion (« vouliez-vous dire … »).
    """
    allowed = tuple(values)
    fold = key or (lambda text: text)
    by_key = {fold(v): v for v in allowed}

    def check(value: str) -> str:
        found = by_key.get(fold(value.strip()))
        if found is not None:
            return found
        by_lower = {k.casefold(): v for k, v in by_key.items()}
        close = difflib.get_close_matches(fold(value).casefold(), list(by_lower), n=1, cutoff=0.6)
        hint = f"vouliez-vous dire « {by_lower[close[0]]} » ? " if close else ""
        raise problem(
            code,
            f"{shown(value)} n'est pas une valeur permise",
            f"{hint}valeurs possibles : {', '.join(allowed)}",
        )

    return Annotated[str, AfterValidator(check)]


_CODES = {
    "missing": "missing-field",
    "extra_forbidden": "unknown-field",
    "date_type": "bad-date",
    "date_parsing": "bad-date",
    "date_from_datetime_parsing": "bad-date",
    "date_from_datetime_inexact": "bad-date",
    "literal_error": "bad-value",
}


def _add(
    report: ValidationReport, model: type[BaseModel], e: dict, *, source: str, feature: str, syntax: str
):
    loc = tuple(e["loc"])
    last = max((i for i, p in enumerate(loc) if isinstance(p, str)), default=0)
    container, leaf = loc_text(loc[:last]), loc_text(loc[last:])
    name = next((p for p in reversed(loc) if isinstance(p, str)), leaf)
    if feature:  # the caller names the feature: the message names the field inside it
        container, leaf = feature, loc_text(loc)
    ctx = e.get("ctx") or {}
    kind = e["type"]
    holder, field = _walk(model, loc)
    siblings = list((holder or model).model_fields)
    message, fix = _french(kind, e.get("input"), ctx, leaf, name, field, siblings, syntax)
    severity = "warning" if kind == "extra_forbidden" else "error"
    code = _CODES.get(kind, kind if "-" in kind else "bad-type")
    report.add(severity, code, f"{message} — {fix}" if fix else message, source=source, feature=container)


def loc_text(loc: Iterable[object]) -> str:
    """``("versions", 1, "date_effet")`` → ``"versions[1].date_effet"``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def shown(value: object, syntax: str = "toml") -> str:
    """A value as the user wrote it, short: ``"non"``, ``true``, ``12``, a 900-digit number by its size."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and value.bit_length() > 64:
        digits = len(str(abs(value))) if value.bit_length() < 14_000 else None
        return f"(nombre de {digits} chiffres)" if digits else "(nombre de plus de 4300 chiffres)"
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return f"{value:.6g}" if abs(value) >= 1e9 else repr(value)
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "…"
        return one_line(json.dumps(text, ensure_ascii=False))
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if value is None:
        return "null" if syntax == "json" else "(vide)"
    if isinstance(value, dict):
        return "une table" if syntax == "toml" else "un objet"
    if isinstance(value, list):
        return "une liste"
    return one_line(repr(value))[:60]


def literal(value: object, syntax: str = "toml") -> str:
    """A value written in the file's syntax, for a fix: ``"62907"``, ``2023-01-18``, ``false``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return f'"{value.isoformat()}"' if syntax == "json" else value.isoformat()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v, syntax) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{k} = {literal(v, syntax)}" for k, v in value.items())
        return "{ " + inner + " }"
    return str(value)


def assign(name: str, value: str, syntax: str) -> str:
    """``name = value`` in TOML, ``"name": value`` in JSON."""
    return f'"{name}": {value}' if syntax == "json" else f"{name} = {value}"


_TRUE_WORDS = {"true", "vrai", "oui", "yes", "1", "o", "y", "x"}
_FALSE_WORDS = {"false", "faux", "non", "no", "0", "n", ""}


def _french(
    kind: str, value: object, ctx: dict, path: str, name: str, field, siblings, syntax: str
) -> tuple[str, str]:
    """(message, fix) in French for one pydantic error."""
    example = _example(field)
    show = shown(value, syntax)
    eg = assign(name, literal(example, syntax), syntax) if example is not None else ""
    if "text" in ctx and "-" in kind:  # our own problem(): already French, about the value
        text = str(ctx["text"])
        if path and not text.startswith(path):
            text = f"{path} = {text}" if text.startswith(show) else f"{path} : {text}"
        return text, str(ctx.get("fix", ""))
    if kind == "missing":
        return f"champ '{path}' absent", (f"ajoutez {eg}" if eg else f"ajoutez {name}")
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(name, sorted(siblings), n=1, cutoff=0.6)
        hint = (
            f"vouliez-vous dire '{close[0]}' ?" if close else f"champs connus : {', '.join(sorted(siblings))}"
        )
        return f"champ '{path}' inconnu (ignoré)", hint
    if kind == "bool_type":
        if isinstance(value, str):
            word = value.strip().lower()
            guess = "false" if word in _FALSE_WORDS else "true" if word in _TRUE_WORDS else "true ou false"
            return (
                f"{path} = {show} est un texte, pas un booléen",
                f"écrivez {assign(name, guess, syntax)} (sans guillemets)",
            )
        return f"{path} = {show} n'est pas un booléen", f"écrivez {assign(name, 'true', syntax)} ou false"
    if kind in ("int_type", "float_type", "int_parsing", "float_parsing", "int_from_float"):
        what = "un nombre entier" if kind.startswith("int") else "un nombre"
        return (
            f"{path} = {show} n'est pas {what}",
            f"écrivez {eg or name + ' = 5'} (un nombre, sans guillemets)",
        )
    if kind == "finite_number":
        return f"{path} = {show} n'est pas un nombre fini", f"écrivez {eg or name + ' = 5'}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        sign = {"greater_than": ">", "greater_than_equal": "≥", "less_than": "<", "less_than_equal": "≤"}[
            kind
        ]
        bound = next(iter(v for k, v in ctx.items() if k in ("gt", "ge", "lt", "le")), "")
        return f"{path} = {show} doit être {sign} {bound}", (f"p. ex. {eg}" if eg else "corrigez la valeur")
    if kind in ("string_type",):
        text_eg = eg or assign(name, '"…"', syntax)
        return f"{path} = {show} n'est pas un texte", f"écrivez {text_eg} (entre guillemets)"
    if kind in ("string_too_short",):
        return f"{path} est vide", f"écrivez {eg}" if eg else "donnez une valeur"
    if kind in ("string_too_long",):
        return f"{path} est trop long (plus de {ctx.get('max_length')} caractères)", "raccourcissez-le"
    if kind in ("date_type", "date_parsing", "date_from_datetime_parsing", "date_from_datetime_inexact"):
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()) and syntax == "toml":
            return (
                f"{path} = {show} est un texte, pas une date",
                f"écrivez {name} = {value.strip()} (sans guillemets)",
            )
        sample = literal(dt.date(2023, 1, 18), syntax)
        return f"{path} = {show} n'est pas une date", f"écrivez {assign(name, sample, syntax)} (AAAA-MM-JJ)"
    if kind == "literal_error":
        allowed = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        close = (
            difflib.get_close_matches(str(value), allowed, n=1, cutoff=0.6) if isinstance(value, str) else []
        )
        hint = f"vouliez-vous dire « {close[0]} » ? " if close else ""
        return (
            f"{path} = {show} n'est pas une valeur permise",
            f"{hint}valeurs possibles : {', '.join(allowed)}",
        )
    if kind in ("list_type", "tuple_type"):
        return f"{path} doit être une liste, pas {show}", f"écrivez {eg}" if eg else "écrivez [ … ]"
    if kind == "too_short":
        return f"{path} est vide", (f"p. ex. {eg}" if eg else "ajoutez au moins un élément")
    if kind == "too_long":
        return f"{path} a trop d'éléments (au plus {ctx.get('max_length')})", "retirez-en"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        what = "une table" if syntax == "toml" else "un objet"
        return f"{path} doit être {what}, pas {show}", (f"écrivez {eg}" if eg else f"écrivez-le comme {what}")
    if kind == "value_error":
        return f"{path} = {show} refusé : {one_line(ctx.get('error', ''))}", ""
    return f"{path} = {show} refusé", (f"p. ex. {eg}" if eg else "corrigez la valeur")


def _example(field) -> object | None:
    if field is None:
        return None
    examples = getattr(field, "examples", None)
    return examples[0] if examples else None


def _models_in(annotation) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (``list[X]``, ``X | None``, ``Annotated[X, …]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out = []
    for arg in typing.get_args(annotation):
        out += _models_in(arg)
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        out += _models_in(typing.get_args(annotation)[0])
    return out


def _walk(model: type[BaseModel], loc: tuple) -> tuple[type[BaseModel] | None, object | None]:
    """(model holding the last field of ``loc``, that field's FieldInfo)."""
    current: type[BaseModel] | None = model
    field = None
    for i, part in enumerate(loc):
        if not isinstance(part, str) or current is None:
            continue
        field = current.model_fields.get(part)
        if field is None:
            return (current if i == len(loc) - 1 else None), None
        if i < len(loc) - 1:
            models = _models_in(field.annotation)
            holder = current
            current = models[0] if models else None
            if current is None:
                return holder, field
    return current, field
