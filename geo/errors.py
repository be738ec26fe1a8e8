"""Errors a planner can act on.

Every error raised on purpose by ``geo`` derives from :class:`OrtError`. Its message says
what is wrong, shows the bad value, and how to fix it; the CLI prints it on one line and exits
with a non-zero code, never with a traceback.

Each error also derives from the built-in exception it specialises, so a caller can catch what
it already knows (osmnx ``ValidationError(ValueError)``): a bad input is a :class:`ValueError`,
a missing input file a :class:`FileNotFoundError`, an output that exists a
:class:`FileExistsError`, a failed download an :class:`OSError`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

#: Longest message shown, in characters: a value echoed from an input (a 10 000-character name, a
#: binary file read as text) is cut in its middle, so the message keeps its start (what and
#: where) and its end (the fix).
MAX_MESSAGE_CHARS = 400


def one_line(text: object, *, limit: int | None = MAX_MESSAGE_CHARS) -> str:
    r"""``text`` on one line and of bounded length: the one place where values echoed from
    inputs are made safe to show.

    Newlines, tabs and other control or format characters (bidi overrides included) are shown
    escaped; spaces of every kind stay as they are (the no-break spaces of French numbers,
    ``5 635 m²``). Beyond ``limit`` characters the middle is replaced by ``…[N caractères
    omis]…``.

    >>> one_line("a\nb")
    'a\\nb'
    >>> one_line("5\u202f635\u00a0m²") == "5\u202f635\u00a0m²"
    True
    >>> one_line("x" * 1000, limit=40)
    'xxxxxxxxxx…[984 caractères omis]…xxxxxx'
    """
    value = str(text)
    if not value.isprintable():
        value = "".join(
            ch if ch.isprintable() or unicodedata.category(ch) == "Zs" else _escaped(ch) for ch in value
        )
    if limit is not None and len(value) > limit:
        room = max(0, limit - len(f"…[{len(value)} caractères omis]…"))
        head, tail = room * 2 // 3, room - room * 2 // 3
        omitted = len(value) - head - tail
        value = value[:head] + f"…[{omitted} caractères omis]…" + value[len(value) - tail :]
    return value


def _escaped(ch: str) -> str:
    return ch.encode("unicode_escape").decode("ascii")


def shown(value: object, limit: int = 80) -> str:
    """A value from an input, quoted for a message: one line, at most ``limit`` characters.

    >>> shown("AB" * 100, limit=30)
    "'ABAB…[193 caractères omis]…BAB'"
    """
    return "'" + one_line(value, limit=limit) + "'"


class OrtError(Exception):
    """Base class of the project's errors. ``str(err)`` is a complete, one-line message,
    bounded (:func:`one_line`) however the error was built."""

    exit_code = 1

    def __str__(self) -> str:
        return one_line(super().__str__(), limit=2 * MAX_MESSAGE_CHARS + 100)


class InputError(OrtError, ValueError):
    """A file or value given by the user cannot be used as it is (also a :class:`ValueError`).

    Parameters
    ----------
    message : str
        What is wrong, with the bad value.
    source : str, optional
        The file (or option) the problem comes from.
    feature : str, optional
        The feature, row or id inside ``source``.
    fix : str, optional
        What the user can do about it.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        feature: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.message = one_line(message)
        self.source = one_line(source, limit=200) if source else source
        self.feature = one_line(feature, limit=100) if feature else feature
        self.fix = one_line(fix, limit=300) if fix else fix
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.source and self.feature:
            where = f"{self.source} [{self.feature}]: "
        elif self.source:
            where = f"{self.source}: "
        elif self.feature:
            where = f"[{self.feature}]: "
        fix = f" — {self.fix}" if self.fix else ""
        return f"{where}{self.message}{fix}"


class MissingFileError(InputError, FileNotFoundError):
    """A file or folder the user named does not exist (also a :class:`FileNotFoundError`)."""


class CRSError(InputError):
    """Missing, mismatched or implausible coordinate reference system."""


class ParcelIdError(InputError):
    """A parcel identifier (IDU) that cannot be parsed or does not exist."""


class PerimeterError(InputError):
    """A convention or perimeter definition that cannot be used."""


class DownloadError(OrtError, OSError):
    """A download failed, or the file is not in the cache in offline mode (also an :class:`OSError`).

    ``reason`` is the short cause alone (``"délai total de 20 s dépassé"``), for a caller that
    words its own message.
    """

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(one_line(message))
        self.reason = one_line(reason, limit=200) if reason else None


class OutputExistsError(OrtError, FileExistsError):
    """An output file already exists and ``force`` was not given (also a :class:`FileExistsError`)."""


class OutputNotOursError(OutputExistsError):
    """``force`` was given, but the existing output was not written by ort (no manifest of its own)."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(one_line(message) + (f" — {one_line(fix)}" if fix else ""))


class OutputError(OrtError, OSError):
    """An output cannot be written: disk full, read-only file system, a parent that is a file,
    a path leaving its output folder. The message names the file and the fix."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.message = one_line(message)
        self.fix = one_line(fix, limit=300) if fix else None
        text = self.message + (f" — {self.fix}" if self.fix else "")
        Exception.__init__(self, text)

    def __str__(self) -> str:
        return one_line(
            self.message + (f" — {self.fix}" if self.fix else ""), limit=2 * MAX_MESSAGE_CHARS + 100
        )


class OrtWarning(UserWarning):
    """Something the user should know, not blocking (a row dropped, a layer skipped).

    The message is one French sentence; the CLI prints it as ``Avertissement : …``.
    """


#: French names of the severities of :class:`Problem` (the values stay ``error``/``warning``).
SEVERITY_LABELS = {"error": "ERREUR", "warning": "AVERTISSEMENT"}


@dataclass(frozen=True)
class Problem:
    """One problem found while validating a file: severity, where and what.

    ``severity`` is ``"error"`` (the data cannot be used as is) or ``"warning"``
    (to review, not blocking).
    """

    severity: str
    code: str
    message: str
    source: str = ""
    feature: str = ""

    def __str__(self) -> str:
        where = one_line(self.source) + (f" [{one_line(self.feature)}]" if self.feature else "")
        severity = SEVERITY_LABELS.get(self.severity, self.severity.upper())
        return f"{severity:13} {self.code:24} {where}: {one_line(self.message)}"


@dataclass
class ValidationReport:
    """All problems of one validation run, reported at once."""

    subject: str
    problems: list[Problem] = field(default_factory=list)

    def add(self, severity: str, code: str, message: str, *, source: str = "", feature: str = "") -> None:
        self.problems.append(Problem(severity, code, message, source, feature))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def codes(self) -> set[str]:
        return {p.code for p in self.problems}

    def __str__(self) -> str:
        head = f"{self.subject}: {len(self.errors)} erreur(s), {len(self.warnings)} avertissement(s)"
        return "\n".join([head, *(str(p) for p in self.problems)])


class ValidationFailed(OrtError, ValueError):
    """A validation report holds errors and the caller asked to stop on them (a :class:`ValueError`)."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        first = report.errors[0] if report.errors else None
        more = f" (+{len(report.errors) - 1} autres)" if len(report.errors) > 1 else ""
        msg = f"{report.subject}: {first.message if first else 'invalide'}{more}"
        if first and first.feature:
            msg = f"{report.subject} [{first.feature}]: {first.message}{more}"
        msg += " — liste complète dans le rapport (`ort validate` pour une convention)"
        super().__init__(one_line(msg))


def cause(err: BaseException) -> str:
    """A short French description of a library's exception, for the parentheses of a message.

    Libraries (GDAL, json, tomllib, zipfile...) explain themselves in English; the user gets
    what kind of damage it is and where, never their sentence.

    >>> import json
    >>> try:
    ...     json.loads('{"a": ')
    ... except ValueError as err:
    ...     cause(err)
    'JSON interrompu ou mal formé, ligne 1, colonne 7'
    """
    import json
    import re
    import zipfile

    text = str(err)
    name = type(err).__name__
    if isinstance(err, json.JSONDecodeError):
        return f"JSON interrompu ou mal formé, ligne {err.lineno}, colonne {err.colno}"
    if name == "TOMLDecodeError":
        where = re.search(r"line (\d+), column (\d+)", text)
        return "syntaxe TOML" + (f", ligne {where[1]}, colonne {where[2]}" if where else "")
    if isinstance(err, zipfile.BadZipFile):
        return "ce n'est pas une archive zip valable (fichier abîmé ou mal nommé)"
    if isinstance(err, UnicodeDecodeError):
        return f"octet {err.start} illisible en {err.encoding}"
    if isinstance(err, EOFError) or "truncated" in text.lower() or "end of" in text.lower():
        return "fichier tronqué"
    if name in ("BadGzipFile",) or "gzip" in text.lower():
        return "fichier gzip abîmé"
    if "JSON" in text:
        where = re.search(r"offset (\d+)", text)
        return "JSON mal formé" + (f" (caractère {where[1]})" if where else "")
    if name in ("DataSourceError", "DataLayerError", "DriverError"):
        return "GDAL ne reconnaît pas ce fichier"
    if name == "EmptyDataError":
        return "fichier vide"
    if name == "ParserError":
        if text.startswith("ligne "):  # our own check, already French
            return text
        where = re.search(r"line (\d+)", text)
        return "tableau mal formé (guillemets ou nombre de champs)" + (f", ligne {where[1]}" if where else "")
    if isinstance(err, PermissionError):
        return "accès refusé"
    if isinstance(err, FileNotFoundError):
        return "fichier introuvable"
    return name


#: GEOS's reasons for an invalid geometry (``shapely.is_valid_reason``), in French.
_GEOS_REASONS = {
    "Ring Self-intersection": "anneau qui se recoupe",
    "Self-intersection": "contour qui se recoupe",
    "Too few points in geometry component": "trop peu de points",
    "Invalid Coordinate": "coordonnée invalide",
    "Hole lies outside shell": "trou hors du contour",
    "Holes are nested": "trous imbriqués",
    "Nested shells": "contours imbriqués",
    "Interior is disconnected": "intérieur déconnecté",
    "Duplicate Rings": "anneaux en double",
    "Ring is not closed": "anneau non fermé",
}


def geometry_problem(reason: str | None) -> str:
    """``shapely.is_valid_reason`` in French.

    ``"Self-intersection[1 2]"`` → ``"contour qui se recoupe en 1 2"``.
    """
    import re

    text = str(reason or "")
    for english, french in _GEOS_REASONS.items():
        if text.startswith(english):
            where = re.search(r"\[([^\]]*)\]", text)
            return french + (f" en {where[1]}" if where else "")
    return "géométrie invalide"
