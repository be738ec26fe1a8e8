"""Text from inputs kept as text in the files people open: no live formula, no illegal XML.

Shared by :mod:`geo.formats` (the workbook writer) and :mod:`geo.io` (every table writer),
below both so neither imports the other for it:

- in CSV a cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading
  ``'`` (OWASP "CSV injection"); numbers written as text stay as they are;
- in XLSX such text is written as a string cell, never a formula (:func:`strings_not_formulas`);
- characters XML 1.0 cannot hold (control characters) are shown escaped (``\\x07``) in
  XLSX cells and GeoPackage styles.
"""

from __future__ import annotations

import re

import pandas as pd

#: First characters that make a spreadsheet read a cell as a formula (OWASP "CSV injection"),
#: with their full-width forms, which some spreadsheets fold to the ASCII ones.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
# A plain number written as text ("-12", "+3,5", "-1 234.5", "1e-3"): not a formula, left as is.
_NUMBER = re.compile(r"^[+-]?(\d[\d\u00a0\u202f ]*)?[.,]?\d+([eE][+-]?\d+)?$")
# Characters XLSX (XML 1.0) cannot hold: openpyxl refuses them.
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def is_formula_like(value: object) -> bool:
    """True for text a spreadsheet would evaluate: starts with ``= + - @``, tab or CR, and is not
    a plain number.

    >>> is_formula_like("=HYPERLINK(\\"http://x\\")"), is_formula_like("-12,5"), is_formula_like("Mairie")
    (True, False, False)
    """
    return isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.match(value)


def escape_formula(value: object) -> object:
    """``value`` with a leading ``'`` when :func:`is_formula_like` (for CSV), else unchanged.

    A carriage return inside text becomes a line feed: the CSV writer quotes a field holding
    ``\n`` but not one holding a lone ``\r``, which readers take as the end of the row.
    """
    if not isinstance(value, str):
        return value
    out = "'" + value if is_formula_like(value) else value
    return out.replace("\r\n", "\n").replace("\r", "\n") if "\r" in out else out


def _text_columns(df: pd.DataFrame) -> list:
    return [
        c
        for c in df.columns
        if pd.api.types.is_object_dtype(df[c].dtype) or pd.api.types.is_string_dtype(df[c].dtype)
    ]


def xml_safe(value: object) -> object:
    """``value`` with the characters XML 1.0 cannot hold written as escapes (``\\x07``)."""
    if isinstance(value, str) and _XML_ILLEGAL.search(value):
        return _XML_ILLEGAL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), value)
    return value


def _needs_fix(value: object) -> bool:
    return isinstance(value, str) and (
        is_formula_like(value) or "\r" in value or _XML_ILLEGAL.search(value) is not None
    )


def spreadsheet_safe(df: pd.DataFrame, *, kind: str) -> pd.DataFrame:
    """A copy of ``df`` whose text cells and column names cannot act as formulas.

    ``kind="csv"``: text starting like a formula gets a leading ``'``. ``kind="xlsx"``: the
    cells are kept as they are (written as string cells: :func:`strings_not_formulas`) but
    characters XML cannot hold are shown escaped. Numeric columns are never touched.
    """
    out = df.copy(deep=False)
    fix = escape_formula if kind == "csv" else xml_safe
    for col in _text_columns(out):
        values = out[col]
        if values.map(_needs_fix).any():
            out[col] = values.map(fix).astype(object)
    names = [fix(c) if isinstance(c, str) else c for c in out.columns]
    if names != list(out.columns):
        out.columns = names
    return out


def strings_not_formulas(workbook) -> None:
    """Make every formula cell of an openpyxl ``workbook`` a string cell, before it is saved.

    openpyxl stores any text starting with ``=`` as a formula (``<f>``); ort never writes
    formulas, so such a cell always holds text from an input (a title, a comment, a name).
    """
    for ws in workbook.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if cell.data_type == "f":
                    cell.data_type = "s"
