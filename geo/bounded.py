"""Files people edit read within bounds: refused *before* parsing when too large or too deep.

:func:`read_toml` / :func:`read_json` refuse a file over a size (``settings.max_toml_bytes``,
``settings.max_json_bytes``) or a nesting depth (``settings.max_nesting``) with a cheap scan: a
few hundred kilobytes of deeply dotted TOML keys otherwise make the parser use gigabytes, and
deeply nested JSON arrays exhaust the stack. Errors are one French line with the file and the
fix. The first half of :mod:`geo.schema` (which validates what is read, with pydantic), here
on its own so that a reader of JSON need not import pydantic.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from geo import settings
from geo.errors import InputError, MissingFileError, one_line

_TOML_STRINGS = re.compile(
    r'"""(?:[^"\\]|\\.|"(?!""))*"""|\'\'\'.*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*', re.S
)
_JSON_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_DOTTED = re.compile(r"[^\s.\[\]{}=,\"']+(?:[ \t]*\.[ \t]*[^\s.\[\]{}=,\"']+)+")
_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


def _bracket_depth(data: bytes) -> int:
    """Deepest nesting of ``[`` / ``{`` in ``data`` (strings already blanked), vectorised."""
    if not data:
        return 0
    steps = _OPEN[np.frombuffer(data, dtype=np.uint8)]
    return int(np.cumsum(steps, dtype=np.int64).max(initial=0))


def toml_depth(text: str) -> int:
    """Upper bound of the nesting of a TOML text: dotted key parts plus brackets.

    Strings and comments are blanked first, so dots and brackets inside them do not count.

    >>> toml_depth('a.b.c = [[1, 2]]  # x.y.z.w')
    3
    """
    code = _TOML_STRINGS.sub("_", text)  # a key part, so that "a"."b" still counts as dotted
    dotted = max((m.group().count(".") + 1 for m in _DOTTED.finditer(code)), default=1)
    return max(dotted, _bracket_depth(code.encode("utf-8", "replace")))


def json_depth(data: bytes) -> int:
    """Deepest nesting of arrays and objects in a JSON text (strings blanked first).

    >>> json_depth(b'{"a": [[1], "[[[["]}')
    3
    """
    return _bracket_depth(_JSON_STRINGS.sub(b'""', data))


def _read_bounded(path: Path, limit: int, what: str, fix: str) -> bytes:
    src = str(path)
    try:
        if path.is_dir():
            raise InputError(f"{path.name} est un dossier, pas un fichier", source=src, fix=fix)
        with open(path, "rb") as stream:
            data = stream.read(limit + 1)  # a device or a growing file is read no further
    except FileNotFoundError:
        raise MissingFileError(f"{what} introuvable", source=src, fix=fix) from None
    except OSError as err:
        raise InputError(
            f"{what} illisible ({err.strerror or err})", source=src, fix="vérifiez le fichier et ses droits"
        ) from None
    if len(data) > limit:
        raise InputError(
            f"{what} trop gros : plus de {limit:,} octets".replace(",", "\u202f"),
            source=src,
            fix="vérifiez que c'est le bon fichier ; la limite se règle dans geo.settings "
            "(ou les variables ORT_MAX_TOML_OCTETS / ORT_MAX_JSON_OCTETS)",
        )
    return data


def _too_deep(depth: int, src: str, fix: str) -> InputError:
    return InputError(
        f"imbrication trop profonde ({depth} niveaux de tables, listes ou clés pointées ; "
        f"au plus {settings.max_nesting}) : fichier refusé avant lecture",
        source=src,
        fix=fix + " ; la limite se règle avec ORT_MAX_IMBRICATION",
    )


def read_toml(path: str | Path, *, what: str = "fichier", fix: str = "corrigez la syntaxe") -> dict:
    """Parse a hand-edited TOML file, refusing it before parsing when too large or too deep.

    Parameters
    ----------
    path : str or Path
        The file.
    what : str
        How to name the file in messages (``"registre des actions"``).
    fix : str
        What to do about a syntax error (the line is given by the parser).

    Raises
    ------
    geo.errors.MissingFileError
        The file does not exist (also a ``FileNotFoundError``).
    geo.errors.InputError
        Too large, nested too deeply, not UTF-8, or not valid TOML (with the line).
    """
    path = Path(path)
    src = str(path)
    data = _read_bounded(path, int(settings.max_toml_bytes), what, fix)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(
            "le fichier n'est pas en UTF-8", source=src, fix="réenregistrez-le en UTF-8"
        ) from None
    depth = toml_depth(text)
    if depth > settings.max_nesting:
        raise _too_deep(depth, src, "écrivez les tables et les listes à plat")
    try:
        return tomllib.loads(text)
    except ValueError as err:  # TOMLDecodeError, or an integer of more than 4300 digits
        raise InputError(
            f"TOML invalide : {toml_error_fr(err)}", source=src, fix=f"{fix} à la ligne indiquée"
        ) from None
    except RecursionError:  # defence in depth: the scan above should have refused it
        raise _too_deep(depth, src, "écrivez les tables et les listes à plat") from None


_TOML_ERRORS = {
    "Invalid value": "valeur illisible (texte sans guillemets ?)",
    "Invalid statement": "ligne illisible",
    "Expected '=' after a key in a key/value pair": "« = » attendu après la clé",
    "Cannot overwrite a value": "clé déjà définie",
    "Unclosed array": "liste non fermée (« ] » manquant)",
    "Unclosed inline table": "table non fermée (« } » manquant)",
    "Unterminated string": "texte non fermé (guillemet manquant)",
    "Expected newline or end of document after a statement": "fin de ligne attendue après la valeur",
    "Invalid initial character for a key part": "caractère interdit au début d'une clé",
    "Illegal character": "caractère interdit",
    "Invalid date or datetime": "date illisible",
    "Invalid number": "nombre illisible",
    "Cannot declare": "table déclarée deux fois",
}


def toml_error_fr(err: Exception) -> str:
    """A tomllib error in French: what, at which line and column (tomllib speaks English).

    >>> toml_error_fr(ValueError("Invalid value (at line 3, column 7)"))
    'valeur illisible (texte sans guillemets ?), ligne 3, colonne 7'
    """
    text = " ".join(str(err).split())
    where = ""
    m = re.search(r"\(at line (\d+), column (\d+)\)", text)
    if m:
        where = f", ligne {m.group(1)}, colonne {m.group(2)}"
    elif "(at end of document)" in text:
        where = ", en fin de fichier"
    what = re.sub(r"\s*\(at [^)]*\)$", "", text)
    found = next((fr for en, fr in _TOML_ERRORS.items() if what.startswith(en)), None)
    if found is None:
        found = "entier de plus de 4300 chiffres" if "4300" in what else "erreur de syntaxe"
    return found + where


_JSON_FIX = "vérifiez le fichier (exporté en GeoJSON UTF-8, p. ex. depuis QGIS)"


def check_json(data: bytes, *, source: str, what: str = "fichier JSON") -> None:
    """Refuse JSON ``data`` over ``settings.max_json_bytes`` or nested deeper than ``settings.max_nesting``.

    For readers that parse JSON themselves (after decompressing it, say): call it first.
    """
    limit = int(settings.max_json_bytes)
    if len(data) > limit:
        raise InputError(
            f"{what} trop gros : plus de {limit:,} octets".replace(",", "\u202f"),
            source=source,
            fix=_JSON_FIX + " ; la limite se règle avec ORT_MAX_JSON_OCTETS",
        )
    depth = json_depth(data)
    if depth > settings.max_nesting:
        raise _too_deep(depth, source, _JSON_FIX)


def read_json(path: str | Path, *, what: str = "fichier JSON", data: bytes | None = None) -> Any:
    """Parse a JSON or GeoJSON file, refusing it before parsing when too large or too deep.

    Parameters
    ----------
    data : bytes, optional
        The content when already read (e.g. decompressed); ``path`` then only names it.

    Raises
    ------
    geo.errors.MissingFileError, geo.errors.InputError
        Missing, too large, nested too deeply, not UTF-8, or not valid JSON.
    """
    path = Path(path)
    src = str(path)
    fix = _JSON_FIX
    if data is None:
        data = _read_bounded(path, int(settings.max_json_bytes), what, fix)
    check_json(data, source=src, what=what)
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError(
            "le fichier n'est pas en UTF-8", source=src, fix="réenregistrez-le en UTF-8"
        ) from None
    except json.JSONDecodeError as err:
        raise InputError(
            f"JSON invalide : {err.msg} (ligne {err.lineno}, colonne {err.colno})", source=src, fix=fix
        ) from None
    except (ValueError, RecursionError) as err:  # an integer of more than 4300 digits
        raise InputError(f"JSON illisible ({one_line(err)[:160]})", source=src, fix=fix) from None
