"""Text from data as the printed documents show it (annex, note): clean, bounded, literal.

A name comes from a data file (a perimeter, a friche, a street, a commune, a convention). On
paper it must read as written, left to right, whatever it holds: bidirectional controls (an
U+202E would reverse the document's own text after it) and control characters become spaces,
a name longer than :data:`NAME_MAX` characters ends with "…" (a 10 000-character name cannot
run a note to 15 pages), and "$" stays a dollar sign (matplotlib would read mathtext).
"""

from __future__ import annotations

__all__ = ["NAME_MAX", "clean_text", "mpl_text", "short_name"]

#: Longest name printed; longer ones end with "…".
NAME_MAX = 90

#: Bidirectional embeddings, overrides, isolates and marks, and the C0/C1 control characters.
_UNSAFE = dict.fromkeys(
    [*range(0x00, 0x20), *range(0x7F, 0xA0), 0x061C, 0x200E, 0x200F]
    + [*range(0x202A, 0x202F), *range(0x2066, 0x206A)],
    " ",
)


def clean_text(text: object) -> str:
    """Text as printed: bidi and control characters become spaces, runs of spaces one space."""
    return " ".join(str(text).translate(_UNSAFE).split())


def short_name(text: object, limit: int = NAME_MAX) -> str:
    """A name from data as printed: cleaned (:func:`clean_text`), cut to ``limit`` with "…"."""
    s = clean_text("" if text is None else text)
    return s if len(s) <= limit else s[: limit - 1].rstrip() + "…"


def mpl_text(text: object) -> str:
    """Cleaned text for matplotlib, shown as it is ("$" does not start mathtext)."""
    return clean_text(text).replace("$", r"\$")
