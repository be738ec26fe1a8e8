"""Parcel identifiers (IDU): read what planners type, normalise it, reject it precisely.

The IDU of a cadastral parcel has 14 characters::

    62907 000 AB 0685
    |     |   |  numéro: 4 digits, zero-padded
    |     |   section: 2 letters or digits, left-padded with 0 ("A" -> "0A")
    |     prefixe: 3 digits, "000" unless the parcel lies in an absorbed former commune
    INSEE code of the commune: 5 digits, or 2A/2B + 3 digits in Corsica

For a commune they know, planners write short forms (``AB 685``, ``AB0685``, ``000 AB 0685``,
``0A 12``, ``A12``, ``AB-685``): :func:`parse_idu` accepts them when ``code_insee`` is given.
Notaires also write the commune without the prefixe (``91216 AC 100``) or the full id with an
unpadded numéro (``91216000AC100``): both are read.
Anything else is refused with a :class:`~geo.errors.ParcelIdError` that shows the bad value and
the fix, including the classic letter ``O`` typed for the digit ``0``.

>>> from geo.idu import parse_idu
>>> p = parse_idu("ab 685", code_insee="62907")
>>> p.idu
'62907000AB0685'
>>> p.label
'AB 685'
>>> parse_idu(" 62907 000 0a 12 ").label
'0A 12'
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from geo.errors import ParcelIdError, one_line
from geo.errors import shown as shown_value

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "INSEE_RE",
    "ParcelId",
    "is_idu",
    "is_insee_code",
    "normalise_idu",
    "normalise_series",
    "parse_idu",
    "parse_many",
]

IDU_LENGTH = 14
_EXAMPLE = "62907000AB0685"
_LAYOUT = "INSEE 5 + prefixe 3 + section 2 + numéro 4"
_INSEE_FORM = "5 chiffres, ou 2A/2B + 3 chiffres en Corse (ex. 62907, 2A004)"

#: An INSEE commune code: 5 digits, or 2A/2B + 3 digits in Corsica. The one copy for the whole
#: package ([0-9] rather than \d: \d also matches Arabic-Indic and other Unicode digits).
INSEE_RE = re.compile(r"[0-9]{5}|2[AB][0-9]{3}")
_IDU_RE = re.compile(r"(?:[0-9]{5}|2[AB][0-9]{3})[0-9]{3}[0-9A-Z]{2}[0-9]{4}")
_SEP = r"[\s\-/._]+"
_SEP_RE = re.compile(_SEP)
# A section glued to its numéro ("AB0685", "0A12") is only recognisable when it holds a letter;
# purely numeric sections (Alsace-Moselle) must be separated ("01 12") or given in a full IDU.
_SHORT_RE = re.compile(
    rf"""
    (?:(?P<prefixe>[0-9]{{3}})(?:{_SEP})?)?
    (?:(?P<section>[0-9A-Z]{{1,2}}){_SEP} | (?P<glued>[0-9]?[A-Z]{{1,2}})(?:{_SEP})?)
    (?P<numero>[0-9O][0-9A-Z]*)  # starts like a number, so "BAD" is not section BA, numéro D
    """,
    re.VERBOSE,
)
_SHORT_MAX = 3 + 2 + 4
_SPACED_RE = re.compile(
    rf"(?P<insee>[0-9A-Z]{{5}}){_SEP}(?P<prefixe>[0-9A-Z]{{3}}){_SEP}"
    rf"(?P<section>[0-9A-Z]{{1,2}}){_SEP}(?P<numero>[0-9A-Z]{{1,4}})"
)
# How notaires write ids: the commune and the parcel without the prefixe ("91216 AC 100"),
# or the full id with its numéro unpadded ("91216000AC100"). The glued form is only read when
# the section holds a letter, so that its limits are unambiguous.
_INSEE_SHORT_RE = re.compile(
    rf"(?P<insee>[0-9]{{5}}|2[AB][0-9]{{3}}){_SEP}(?P<section>[0-9A-Z]{{1,2}}){_SEP}(?P<numero>[0-9O][0-9A-Z]{{0,3}})"
)
_GLUED_RE = re.compile(
    r"(?P<insee>[0-9]{5}|2[AB][0-9]{3})(?P<prefixe>[0-9]{3})"
    r"(?P<section>[A-Z]{1,2}|[0-9][A-Z]|[A-Z][0-9])(?P<numero>[0-9]{1,4})"
)


@dataclass(frozen=True, order=True)
class ParcelId:
    """A normalised parcel identifier.

    Fields are normalised on construction (upper case, padded), so
    ``ParcelId("62907", "000", "A", "12").idu == "629070000A0012"``; invalid values raise
    :class:`~geo.errors.ParcelIdError`. Ordering follows the IDU string.

    Attributes
    ----------
    code_insee : str
        INSEE code of the commune, 5 characters (``"62907"``, ``"2A004"``).
    prefixe : str
        3 digits, ``"000"`` unless the parcel lies in an absorbed former commune.
    section : str
        2 characters, left-padded with ``0`` (``"0A"``, ``"AB"``).
    numero : str
        4 digits, zero-padded (``"0685"``).
    """

    code_insee: str
    prefixe: str
    section: str
    numero: str

    def __post_init__(self) -> None:
        for name, norm in (
            ("code_insee", _norm_insee),
            ("prefixe", _norm_prefixe),
            ("section", _norm_section),
            ("numero", _norm_numero),
        ):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise ParcelIdError(f"{name} doit être du texte, pas {type(value).__name__} {value!r}")
            object.__setattr__(self, name, norm(value, None))

    @property
    def idu(self) -> str:
        """The 14-character identifier, e.g. ``"62907000AB0685"``."""
        return f"{self.code_insee}{self.prefixe}{self.section}{self.numero}"

    @property
    def label(self) -> str:
        """The planner's form within the commune: ``"AB 685"``, ``"0A 12"``.

        The prefixe is shown only when it is not ``"000"`` (``"123 AB 685"``), so that the label
        parsed again with ``code_insee`` gives the same parcel.
        """
        head = "" if self.prefixe == "000" else f"{self.prefixe} "
        return f"{head}{self.section} {int(self.numero)}"

    def __str__(self) -> str:
        return self.idu


@dataclass(frozen=True)
class _Options:
    code_insee: str | None
    prefixe: str
    communes: frozenset[str] | None
    sections: frozenset[str] | None

    @classmethod
    def build(
        cls,
        code_insee: str | None,
        prefixe: str,
        communes: Collection[str] | None,
        sections: Collection[str] | None,
    ) -> _Options:
        code = _as_text(code_insee).strip()
        try:
            code = _norm_insee(code, None) if code else ""
        except ParcelIdError as err:
            raise ParcelIdError(err.message, source="code_insee", fix=err.fix) from None
        try:
            pre = _norm_prefixe(_as_text(prefixe), None)
        except ParcelIdError as err:
            raise ParcelIdError(err.message, source="prefixe", fix=err.fix) from None
        return cls(
            code or None,
            pre,
            _clean_set(communes),
            # The cadastre delivers sections unpadded ("A"), the IDU padded ("0A"): accept both.
            _clean_set(sections, width=2),
        )


def parse_idu(
    text: str,
    *,
    code_insee: str | None = None,
    prefixe: str = "000",
    communes: Collection[str] | None = None,
    sections: Collection[str] | None = None,
) -> ParcelId:
    """Parse a parcel identifier as typed by a person.

    Parameters
    ----------
    text : str
        A full IDU (``"62907000AB0685"``, any case, spaces allowed: ``"62907 000 AB 0685"``,
        and unpadded when the four parts are separated: ``"62907 000 A 12"``), the notaires'
        forms ``"91216 AC 100"`` (prefixe 000) and ``"91216000AC100"`` (numéro unpadded) or,
        with ``code_insee``, a short form: ``"AB 685"``, ``"AB0685"``, ``"000 AB 0685"``,
        ``"0A 12"``, ``"A12"``, ``"AB-685"``, ``"AB/685"``.
    code_insee : str, optional
        The commune of short forms. A full IDU of another commune is still accepted (subject to
        ``communes``).
    prefixe : str, default ``"000"``
        Prefixe of short forms that do not carry one.
    communes : collection of str, optional
        The only communes accepted (e.g. those of a convention).
    sections : collection of str, optional
        Sections known in the cadastre of ``code_insee`` (padded ``"0A"`` or not ``"A"``);
        checked for parcels of that commune, or of any commune when ``code_insee`` is None.

    Returns
    -------
    ParcelId

    Raises
    ------
    geo.errors.ParcelIdError
        With the bad value and the fix: empty, wrong length, letter ``O`` for digit ``0``, bad
        INSEE code, prefixe, section or numéro, short form without commune, unknown commune
        or section.
    """
    return _parse(text, _Options.build(code_insee, prefixe, communes, sections))


def normalise_idu(
    text: str,
    *,
    code_insee: str | None = None,
    prefixe: str = "000",
    communes: Collection[str] | None = None,
    sections: Collection[str] | None = None,
) -> str:
    """Return the 14-character IDU of ``text``; options and errors as :func:`parse_idu`.

    >>> normalise_idu("A12", code_insee="2A004")
    '2A0040000A0012'
    """
    return parse_idu(text, code_insee=code_insee, prefixe=prefixe, communes=communes, sections=sections).idu


def parse_many(
    texts: Iterable[str],
    *,
    code_insee: str | None = None,
    prefixe: str = "000",
    communes: Collection[str] | None = None,
    sections: Collection[str] | None = None,
) -> tuple[list[ParcelId], list[tuple[str, str]]]:
    """Parse many identifiers, keeping the good ones and reporting every bad one.

    Never raises for the identifiers themselves: each bad one (and all of them when an option
    such as ``code_insee`` is invalid) is reported with its message.

    Returns
    -------
    valid : list of ParcelId
        Deduplicated, in first-seen order (``"AB 685"`` and ``"62907000AB0685"`` are one parcel).
    rejected : list of (str, str)
        ``(text as given, error message)``, deduplicated on the text, in first-seen order.
    """
    if isinstance(texts, str):  # a lone id would otherwise be split into characters
        texts = [texts]
    valid: dict[ParcelId, None] = {}
    rejected: dict[str, str] = {}
    try:
        opts: _Options | None = _Options.build(code_insee, prefixe, communes, sections)
        options_error = ""
    except ParcelIdError as err:
        opts, options_error = None, str(err)
    for text in texts:
        key = _as_text(text)
        if opts is None:
            rejected.setdefault(key, options_error)
            continue
        try:
            valid.setdefault(_parse(text, opts), None)
        except ParcelIdError as err:
            rejected.setdefault(key, str(err))
    # The entry as shown again to the user: one line, bounded (a pasted file is not echoed whole).
    return list(valid), [(one_line(k, limit=120), m) for k, m in rejected.items()]


def is_insee_code(text: object) -> bool:
    """Whether ``text`` is an INSEE commune code as written (a string, upper case, no spaces).

    >>> is_insee_code("62907"), is_insee_code("2A004"), is_insee_code(62907), is_insee_code("6290")
    (True, True, False, False)
    """
    return isinstance(text, str) and INSEE_RE.fullmatch(text) is not None


def is_idu(text: object) -> bool:
    """Whether ``text`` is already a normalised 14-character IDU (upper case, no spaces)."""
    return (
        isinstance(text, str)
        and _IDU_RE.fullmatch(text) is not None
        and text[8:10] != "00"
        and text[10:] != "0000"
    )


def normalise_series(
    s: pd.Series,
    *,
    code_insee: str | None = None,
    prefixe: str = "000",
    communes: Collection[str] | None = None,
    sections: Collection[str] | None = None,
) -> pd.Series:
    """Normalise a column of parcel ids; invalid or missing ones become ``pd.NA``.

    Use :func:`parse_many` to know why an id was refused.

    Returns
    -------
    pandas.Series
        ``string`` dtype, same index and name as ``s``.

    Raises
    ------
    geo.errors.ParcelIdError
        Only when an option (e.g. ``code_insee``) is invalid: every value would be NA.
    """
    import pandas as pd  # here: parsing ids one by one (`ort check ID`) never loads pandas

    opts = _Options.build(code_insee, prefixe, communes, sections)
    # CSVs repeat ids; parse each distinct value once.
    cache: dict[str, object] = {}
    out: list[object] = []
    for value in s:
        text = _as_text(value)
        if text not in cache:
            try:
                cache[text] = _parse(text, opts).idu
            except ParcelIdError:
                cache[text] = pd.NA
        out.append(cache[text])
    return pd.Series(out, index=s.index, name=s.name, dtype="string")


# --------------------------------------------------------------------------------------------
# Parsing


def _parse(text: object, opts: _Options) -> ParcelId:
    shown = _as_text(text).strip()
    if not shown:
        raise ParcelIdError(
            "identifiant de parcelle vide",
            fix=f"donnez un identifiant de 14 caractères comme {_EXAMPLE}, ou 'AB 685' avec la commune",
        )
    upper = _latin_upper(shown, shown)
    compact = _SEP_RE.sub("", upper)
    spaced = _SPACED_RE.fullmatch(upper) if len(compact) != IDU_LENGTH else None
    if spaced:  # "62907 000 A 12": the separators make the padding unambiguous
        compact = "".join(
            (spaced["insee"], spaced["prefixe"], spaced["section"].zfill(2), spaced["numero"].zfill(4))
        )
    elif len(compact) < IDU_LENGTH and (
        notary := _INSEE_SHORT_RE.fullmatch(upper) or _GLUED_RE.fullmatch(compact)
    ):  # "91216 AC 100" (prefixe 000), "91216000AC100"
        prefixe = notary.groupdict().get("prefixe") or "000"
        _norm_numero(notary["numero"], shown)  # letter O in the numéro: say so before padding
        compact = "".join((notary["insee"], prefixe, notary["section"].zfill(2), notary["numero"].zfill(4)))
        spaced = notary
    short = None if len(compact) == IDU_LENGTH else _SHORT_RE.fullmatch(upper)
    if short and len(compact) > _SHORT_MAX and INSEE_RE.match(compact):
        short = None  # "2A004AB0685" is a full id missing its prefixe, not section 2A

    if short:
        prefixe = _norm_prefixe(short["prefixe"], shown) if short["prefixe"] else opts.prefixe
        typed_section = short["section"] or short["glued"]
        section = _norm_section(typed_section, shown)
        numero = _norm_numero(short["numero"], shown)
        if opts.code_insee is None:
            raise ParcelIdError(
                f"parcelle {shown_value(shown)} : section et numéro sans commune",
                fix="donnez la commune : --commune 62907, ou l'identifiant complet de 14 caractères "
                f"comme {_EXAMPLE}",
            )
        code = opts.code_insee
    else:
        if len(compact) != IDU_LENGTH:
            raise _wrong_length(shown, upper, compact)
        if not spaced:  # positions are only meaningful in the text as typed
            _refuse_letter_o(shown, upper, compact)
        typed_section = compact[8:10]
        code = _norm_insee(compact[:5], shown)
        prefixe = _norm_prefixe(compact[5:8], shown)
        section = _norm_section(typed_section, shown)
        numero = _norm_numero(compact[10:], shown)

    pid = ParcelId(code, prefixe, section, numero)
    if opts.communes is not None and code not in opts.communes:
        raise ParcelIdError(
            f"parcelle {shown_value(shown)} : la commune {code} n'est pas l'une des communes connues "
            f"({_listing(opts.communes, 5)})",
            fix="vérifiez le code INSEE de l'identifiant",
        )
    if opts.sections is not None and opts.code_insee in (None, code) and section not in opts.sections:
        raise _unknown_section(shown, pid, typed_section, opts.sections)
    return pid


def _wrong_length(shown: str, upper: str, compact: str) -> ParcelIdError:
    without = " (sans séparateurs)" if compact != upper else ""
    if len(compact) == IDU_LENGTH - 3 and INSEE_RE.match(compact):
        fix = f"le préfixe semble manquer : {compact[:5]}000{compact[5:]}"
    else:
        fix = "ou, pour une commune connue, une section et un numéro comme 'AB 685'"
    return ParcelIdError(
        f"parcelle {shown_value(shown)} : {len(compact)} caractères{without} au lieu de {IDU_LENGTH} "
        f"({_LAYOUT}), ex. {_EXAMPLE}",
        fix=fix,
    )


def _refuse_letter_o(shown: str, upper: str, compact: str) -> None:
    """Refuse a full IDU with the letter O where a digit is expected, naming its position."""
    digits = set(range(5)) | {5, 6, 7, 10, 11, 12, 13}
    if compact[0] == "2" and compact[1] in "AB":
        digits.discard(1)  # Corsica: 2A / 2B
    bad = [i for i in sorted(digits) if compact[i] == "O"]
    if not bad:
        return
    # Count the position in the text as typed, separators included, so the person can find it.
    typed = [i for i, ch in enumerate(upper) if not _SEP_RE.fullmatch(ch)]
    fixed = "".join("0" if i in bad else ch for i, ch in enumerate(compact))
    raise ParcelIdError(
        f"parcelle {shown_value(shown)} : lettre 'O' en position {typed[bad[0]] + 1}, "
        "à la place du chiffre '0'",
        fix=f"tapez le chiffre zéro : {fixed}",
    )


def _unknown_section(shown: str, pid: ParcelId, typed: str, known: frozenset[str]) -> ParcelIdError:
    where = f"le cadastre de {pid.code_insee}"
    # Letter O and digit 0 are confused both ways in typed ids and in old deliveries.
    for swapped in (typed.replace("O", "0"), typed.replace("0", "O")):
        candidate = swapped.zfill(2)
        if candidate != pid.section and candidate in known:
            kind = "le chiffre '0'" if "O" in typed else "la lettre 'O'"
            return ParcelIdError(
                f"parcelle {shown_value(shown)} : la section '{pid.section}' n'existe pas dans {where}, "
                f"qui a une section '{candidate}' avec {kind}",
                fix=f"tapez {candidate} {int(pid.numero)}",
            )
    return ParcelIdError(
        f"parcelle {shown_value(shown)} : la section '{pid.section}' n'existe pas dans {where} "
        f"(sections connues : {_listing(known, 8)})",
        fix="vérifiez la section sur le plan cadastral",
    )


# --------------------------------------------------------------------------------------------
# Fields: each returns the normalised value or raises with the bad value shown


def _fail(raw: str | None, detail: str, fix: str | None = None) -> ParcelIdError:
    return ParcelIdError(f"parcelle {shown_value(raw)} : {detail}" if raw is not None else detail, fix=fix)


def _latin_upper(value: str, raw: str | None) -> str:
    """``value`` in NFKC form and upper case, refused if it holds a letter outside A–Z.

    Upper-casing folds other letters into Latin ones (``"ß"`` → ``"SS"``, ``"ı"`` → ``"I"``,
    ``"é"`` would stay ``"É"``): a typed id would silently name another section. NFKC first, so
    that full-width ``"ＡＢ"`` (what some Japanese or Chinese keyboards type) is ``"AB"``.

    >>> _latin_upper("ＡＢ 12", None)
    'AB 12'
    """
    text = unicodedata.normalize("NFKC", value)
    for ch in text:
        if ch.isalpha() and not ch.isascii():
            raise _fail(
                raw,
                f"lettre '{ch}' (U+{ord(ch):04X}) hors de A–Z",
                "un identifiant de parcelle ne s'écrit qu'avec les lettres A à Z, sans accent, et des "
                "chiffres : retapez la section (ex. AB)",
            )
    return text.upper()


def _norm_insee(value: str, raw: str | None) -> str:
    code = _latin_upper(value.strip(), raw)
    if INSEE_RE.fullmatch(code):
        return code
    if "O" in code and INSEE_RE.fullmatch(code.replace("O", "0")):
        raise _fail(
            raw,
            f"code INSEE '{code}' : lettre 'O' à la place du chiffre '0'",
            f"tapez {code.replace('O', '0')}",
        )
    fix = f"attendu : {_INSEE_FORM}"
    if re.fullmatch(r"[0-9]{4}", code):
        fix = f"un zéro initial a sans doute été perdu (tableur) : 0{code}"
    raise _fail(raw, f"code INSEE '{code}' invalide", fix)


def _norm_prefixe(value: str, raw: str | None) -> str:
    p = value.strip()
    if re.fullmatch(r"[0-9]{1,3}", p):
        return p.zfill(3)
    if re.fullmatch(r"[0-9oO]{1,3}", p):
        raise _fail(
            raw,
            f"préfixe '{p}' : lettre 'O' à la place du chiffre '0'",
            f"tapez {p.upper().replace('O', '0').zfill(3)}",
        )
    raise _fail(
        raw,
        f"préfixe '{p}' : il faut 3 chiffres",
        "le préfixe vaut 000, sauf pour une parcelle d'une ancienne commune absorbée",
    )


def _norm_section(value: str, raw: str | None) -> str:
    s = _latin_upper(value.strip(), raw)
    if not re.fullmatch(r"[0-9A-Z]{1,2}", s):
        raise _fail(raw, f"section '{s}' : il faut 1 ou 2 lettres ou chiffres", "ex. AB, 0A ou A")
    s = s.zfill(2)
    if s == "00":
        raise _fail(raw, "section '00' vide", "une section a une lettre ou un chiffre non nul, ex. AB, 0A")
    return s


def _norm_numero(value: str, raw: str | None) -> str:
    n = _latin_upper(value.strip(), raw)
    if not re.fullmatch(r"[0-9]+", n):
        if re.fullmatch(r"[0-9O]+", n):
            raise _fail(
                raw,
                f"numéro '{n}' : lettre 'O' à la place du chiffre '0'",
                f"tapez {n.replace('O', '0')}",
            )
        raise _fail(raw, f"numéro '{n}' : ce n'est pas un nombre", "le numéro a 1 à 4 chiffres, ex. 685")
    if len(n) > 4:
        raise _fail(raw, f"numéro '{n}' : {len(n)} chiffres, 4 au plus", "ex. 685 ou 0685")
    if int(n) == 0:
        raise _fail(raw, f"numéro '{n}' nul : les numéros de parcelle commencent à 1")
    return n.zfill(4)


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None or type(value).__name__ == "NAType" or (isinstance(value, float) and math.isnan(value)):
        return ""  # pandas' NA, without importing pandas
    return str(value)


def _clean_set(values: Collection[str] | None, *, width: int = 0) -> frozenset[str] | None:
    if values is None:
        return None
    cleaned = (_as_text(v).strip().upper() for v in values)
    return frozenset(v.zfill(width) for v in cleaned if v)


def _listing(values: Collection[str], limit: int) -> str:
    items = sorted(values)
    if not items:
        return "aucune"
    more = f", … (+{len(items) - limit} autres)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more
