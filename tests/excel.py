"""Open a CSV the way French Excel does when a planner double-clicks it.

Excel does not guess: a byte-order mark means UTF-8, anything else is read in the Windows
code page (cp1252); fields are split on the list separator of the French locale, ``;``,
and numbers are read with a decimal comma. A file that Excel would show as one column, or
with "Ã " instead of "à", fails here too.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

BOM = b"\xef\xbb\xbf"


def excel_text(path: str | Path) -> str:
    """The file's text as French Excel decodes it (BOM → UTF-8, else cp1252)."""
    raw = Path(path).read_bytes()
    if raw.startswith(BOM):
        return raw[len(BOM) :].decode("utf-8")
    return raw.decode("cp1252", errors="replace")


def read_excel_csv(path: str | Path) -> pd.DataFrame:
    """The table French Excel shows: every cell as text (empty cells as NaN)."""
    rows = list(csv.reader(io.StringIO(excel_text(path), newline=""), delimiter=";", quotechar='"'))
    if not rows:
        return pd.DataFrame()
    header, body = rows[0], rows[1:]
    frame = pd.DataFrame(body, columns=header, dtype=object)
    return frame.mask(frame == "")


def excel_number(text: str | None) -> float | None:
    """A cell's number as French Excel reads it (``1 234,5`` → 1234.5), None when empty."""
    if text is None or text == "":
        return None
    return float(str(text).replace("\u202f", "").replace(" ", "").replace(",", "."))
