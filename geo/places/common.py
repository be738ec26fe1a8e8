"""What places (friches, social housing, actions) have in common.

One copy of the small helpers the three readers share: the pseudo-perimeters of the summaries
(*hors périmètres*, *non localisé*), accent folding for matching what people type, empty-cell
detection, and the order of the summary rows. INSEE codes are checked by
:func:`geo.idu.is_insee_code` (one regular expression for the whole package).

>>> fold("  Projetée "), fold("friche-avec_PROJET")
('projetee', 'friche avec projet')
>>> column_key("Code INSEE (commune)")
'code_insee_commune'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import numpy as np
import pandas as pd

#: Pseudo-perimeter of a summary: located, but in no perimeter.
OUTSIDE_ID, OUTSIDE_NOM = "hors-perimetres", "Hors périmètres"
#: Pseudo-perimeter of a summary: no place known (no coordinates, parcels nor address found).
UNLOCATED_ID, UNLOCATED_NOM = "non-localise", "Non localisé"
#: The same, as a status or a value in a table (``localisation``, ``status``).
UNLOCATED = UNLOCATED_NOM.lower()

#: Cell texts that mean "no value" in the files people fill in (case ignored).
NULL_TEXTS = frozenset({"", "na", "nan", "null", "none"})


def strip_accents(text: str) -> str:
    """``text`` without accents nor other combining marks (``"Hénin"`` → ``"Henin"``)."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def fold(text: str) -> str:
    """Key for matching a typed value: lower case, no accents, ``-`` / ``_`` as spaces, spaces collapsed."""
    plain = strip_accents(text).lower().replace("-", " ").replace("_", " ")
    return " ".join(plain.split())


def column_key(text: str) -> str:
    """Key of a column header: lower case, no accents, words joined by ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", strip_accents(text).lower()).strip("_")


def text_or_none(value: object, *, nulls: Iterable[str] = NULL_TEXTS) -> str | None:
    """The stripped text of a cell, or None when it is empty (None, NaN, ``""``, ``"NULL"``...).

    >>> text_or_none("  AB 12 "), text_or_none(float("nan")), text_or_none("null")
    ('AB 12', None, None)
    """
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    return None if text.lower() in nulls else text


def perimeter_order(perimeter_ids: Iterable[str]) -> dict[str, int]:
    """Rank of each perimeter in a summary: as first seen, then hors-perimetres, then non-localise."""
    order = {p: i for i, p in enumerate(dict.fromkeys(perimeter_ids))}
    order[OUTSIDE_ID], order[UNLOCATED_ID] = 10_000, 10_001
    return order
