"""Reading tables from raw bytes and text: gzip and CSV, with errors a planner can act on.

Shared plumbing of the readers of lists, friches, social housing and parcel-id spreadsheets.
"""

from __future__ import annotations

import csv
import gzip
import io
import warnings
import zlib

import pandas as pd


def gunzip(raw: bytes) -> bytes:
    """The content of gzip bytes.

    Raises
    ------
    ValueError
        Not gzip, truncated or corrupt (``gzip : …`` and the reason), instead of the several
        exception types of :mod:`gzip` (``BadGzipFile``, ``EOFError``, ``zlib.error``).
    """
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"gzip : {err}") from None


def decode_text(raw: bytes) -> tuple[str, bool]:
    """Bytes of a text file: UTF-8 (with or without BOM), else Latin-1.

    Returns the text and ``True`` when it fell back to Latin-1 (worth a warning).
    """
    try:
        return raw.decode("utf-8-sig"), False
    except UnicodeDecodeError:
        return raw.decode("latin-1"), True


def guess_separator(text: str) -> str:
    """``;``, ``,`` or tab: the one the header line uses most (``;`` on a tie, as French spreadsheets)."""
    first = text.split("\n", 1)[0]
    return max((";", ",", "\t"), key=first.count)


def csv_frame(text: str, sep: str) -> pd.DataFrame:
    """A CSV text as a table of strings (empty cells ``""``), every value in its column.

    ``index_col=False``: with a separator at the end of every data line (spreadsheet exports)
    pandas would otherwise take the first column as the index and move every value one
    column left, silently. pandas then drops the extra fields of longer lines, also silently:
    a line whose extra fields are not all empty is refused here, as pandas refuses it
    without ``index_col=False``.

    Raises
    ------
    pandas.errors.ParserError
        Unbalanced quotes, or a line with more (non-empty) fields than the header.
    pandas.errors.EmptyDataError
        No header.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, index_col=False)
    longer = False
    for w in caught:
        if issubclass(w.category, pd.errors.ParserWarning):
            longer = True
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if longer:
        _refuse_extra_fields(text, sep, len(df.columns))
    return df


def _refuse_extra_fields(text: str, sep: str, n_columns: int) -> None:
    limit = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)  # a WKT polygon can be longer than the default 128 KiB
    try:
        reader = csv.reader(io.StringIO(text), delimiter=sep)
        next(reader, None)  # the header
        for row in reader:
            if len(row) > n_columns and any(cell.strip() for cell in row[n_columns:]):
                raise pd.errors.ParserError(
                    f"Expected {n_columns} fields in line {reader.line_num}, saw {len(row)}"
                )
    except csv.Error as err:
        raise pd.errors.ParserError(str(err)) from None
    finally:
        csv.field_size_limit(limit)


def read_user_table(path) -> pd.DataFrame:
    """A CSV or XLSX file typed by a person, as a table of strings (empty cells ``""``).

    CSV: UTF-8 with or without BOM, else Latin-1; separator ``,``, ``;`` or tab, whichever the
    header line uses most. Damaged workbooks and unparsable CSV become one
    :class:`~geo.errors.InputError` naming the file.
    """
    from pathlib import Path

    from geo.errors import InputError

    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", source=str(path), fix="check the path")
    if path.suffix.lower() in (".xlsx", ".xls"):
        try:
            return pd.read_excel(path, dtype=str).fillna("")
        except Exception as err:  # noqa: BLE001 - openpyxl/xlrd/zipfile raise many kinds
            raise InputError(
                f"unreadable spreadsheet ({type(err).__name__}: {' '.join(str(err).split())[:160]})",
                source=str(path),
                fix="open it in a spreadsheet program and save it again as .xlsx or .csv (UTF-8)",
            ) from None
    text, _ = decode_text(path.read_bytes())
    try:
        return csv_frame(text, guess_separator(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        raise InputError(
            f"unreadable table ({' '.join(str(err).split())})",
            source=str(path),
            fix="save it as CSV (UTF-8) with a header row",
        ) from None
