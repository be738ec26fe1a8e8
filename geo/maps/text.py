"""Text from data as the printed documents show it (annex, note): clean, bounded, literal.

A name comes from a data file (a perimeter, a friche, a street, a commune, a convention). On
paper it must read as written, left to right, whatever it holds: format characters go
(bidirectional controls — an U+202E would reverse the document's own text after it —,
zero-width characters, which also broke matplotlib's PDF writer), control characters become
spaces, a name longer than :data:`NAME_MAX` characters ends with "…" (a 10 000-character name
cannot run a note to 15 pages), and "$" stays a dollar sign (matplotlib would read mathtext).
The map's markup (title, legend) uses the same cleaning before HTML escaping
(:func:`html_text`).
"""

from __future__ import annotations

import html
import re
import unicodedata

__all__ = ["NAME_MAX", "cell_text", "clean_text", "html_text", "mpl_text", "no_surrogates", "short_name"]

#: Longest name printed; longer ones end with "…".
NAME_MAX = 90

_SURROGATE = re.compile("[\ud800-\udfff]")
_SPACES = re.compile(" {2,}")


def no_surrogates(text: object) -> str:
    """``text`` with each lone surrogate (it cannot be written in UTF-8) replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", str(text))


def _printable(ch: str) -> str:
    cat = unicodedata.category(ch)
    if cat == "Cc":  # control characters (tab, new line, escape…): a space
        return " "
    if cat == "Cf":  # format characters (bidi controls, zero-width, soft hyphen): nothing
        return ""
    return ch


def clean_text(text: object) -> str:
    """Text as printed: control characters become spaces and format characters (bidi controls
    such as U+202E, zero-width characters) go, runs of spaces become one space (no-break spaces
    stay), a lone surrogate becomes U+FFFD."""
    s = no_surrogates(text)
    if not s.isprintable():
        s = "".join(map(_printable, s))
    # Runs of spaces become one; no-break spaces (French numbers: 1 171, 15,0 %) are kept.
    return _SPACES.sub(" ", s).strip(" ")


def html_text(text: object) -> str:
    """Text from data as HTML: cleaned (:func:`clean_text`), then escaped (quotes too)."""
    return html.escape(clean_text(text), quote=True)


def short_name(text: object, limit: int = NAME_MAX) -> str:
    """A name from data as printed: cleaned (:func:`clean_text`), cut to ``limit`` with "…"."""
    s = clean_text("" if text is None else text)
    return s if len(s) <= limit else s[: limit - 1].rstrip() + "…"


def mpl_text(text: object) -> str:
    """Cleaned text for matplotlib, shown as it is ("$" does not start mathtext)."""
    return clean_text(text).replace("$", r"\$")


def cell_text(value) -> str:
    """A table cell as text: missing values (None, NaN, NA) empty, ``3.0`` as ``3``."""
    if value is None:
        return ""
    if not isinstance(value, (list, tuple, dict)):
        import pandas as pd  # only for its idea of a missing value; loaded by every caller

        if pd.isna(value):
            return ""
    if isinstance(value, float) and value.is_integer():
        return f"{int(value)}"
    return str(value)
