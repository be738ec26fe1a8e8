"""Reading tables from raw bytes and text: gzip and CSV, with errors a planner can act on.

Shared plumbing of the readers of lists, friches, social housing and parcel-id spreadsheets.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import warnings
import zlib
from pathlib import Path

import pandas as pd

from geo import settings

#: Name of the fallback encoding of :func:`decode_text` (what spreadsheets on Windows write).
WINDOWS_1252 = "Windows-1252"


def _mb(n: int) -> str:
    return f"{n / 2**20:.0f} Mo"


def gunzip(raw: bytes, *, limit: int | None = None) -> bytes:
    """The content of gzip bytes, at most ``limit`` bytes (default ``settings.max_table_bytes``).

    The content is decompressed as a stream and refused as soon as it passes the limit: a
    few megabytes of gzip cannot expand to gigabytes in memory.

    Raises
    ------
    ValueError
        Not gzip, truncated or corrupt, or larger than the limit (``gzip : …`` and the
        reason), instead of the several exception types of :mod:`gzip`.
    """
    limit = settings.max_table_bytes if limit is None else limit
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
            out = stream.read(limit + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"gzip : {err}") from None
    if len(out) > limit:
        raise ValueError(
            f"gzip : contenu décompressé de plus de {_mb(limit)} (limite geo.settings.max_table_bytes) — "
            "fichier trop gros pour ort ou archive piégée"
        )
    return out


def read_limited(path: str | Path, *, limit: int | None = None) -> bytes:
    """The bytes of a file given by a user, refused beyond ``limit`` (``settings.max_table_bytes``).

    Raises
    ------
    ValueError
        The file is larger than the limit.
    OSError
        It cannot be read.
    """
    limit = settings.max_table_bytes if limit is None else limit
    path = Path(path)
    size = path.stat().st_size
    if size > limit:
        raise ValueError(
            f"fichier de {_mb(size)}, au-delà de la limite de {_mb(limit)} (geo.settings.max_table_bytes)"
        )
    with path.open("rb") as f:
        return f.read(limit + 1)[:limit]


def decode_text(raw: bytes) -> tuple[str, str | None]:
    """Bytes of a text file: UTF-8 (with or without BOM), UTF-16 (BOM, or the zero bytes of
    ASCII text in UTF-16), else Windows-1252 (Latin-1 for the five bytes it leaves undefined).

    Windows-1252 rather than Latin-1: spreadsheets on Windows write ``€``, ``–`` and curly
    quotes as bytes 0x80–0x9F, which Latin-1 would turn into control characters.

    Returns the text and the fallback encoding's name (truthy, worth a warning) or None.
    """
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16"), None
        except UnicodeDecodeError:
            pass
    head = raw[:4000]
    if len(head) >= 4 and head.count(0) >= len(head) // 4:
        odd_zeros, even_zeros = head[1::2].count(0), head[0::2].count(0)
        encoding = "utf-16-le" if odd_zeros > even_zeros else "utf-16-be"
        try:
            return raw[: len(raw) // 2 * 2].decode(encoding), None
        except UnicodeDecodeError:
            pass
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        pass
    # The five bytes Windows-1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) read as Latin-1.
    return raw.decode("cp1252", errors="ort-latin1"), WINDOWS_1252


def _latin1_for_undefined(err: UnicodeDecodeError) -> tuple[str, int]:
    return err.object[err.start : err.end].decode("latin-1"), err.end


codecs.register_error("ort-latin1", _latin1_for_undefined)


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
                    f"ligne {reader.line_num} : {len(row)} champs pour {n_columns} colonnes"
                )
    except csv.Error as err:
        raise pd.errors.ParserError(str(err)) from None
    finally:
        csv.field_size_limit(limit)


def read_csv_file(path: Path, report, *, fix: str) -> pd.DataFrame:
    """A CSV file (``.csv`` or ``.csv.gz``) of places, bounded in size before and after gunzip.

    Shared by the friches and social housing readers. The encoding fallback is reported as a
    warning in ``report`` (a :class:`~geo.errors.ValidationReport`); a file too large, a
    damaged gzip or an unparsable CSV raise one :class:`~geo.errors.InputError` whose fix ends
    with ``fix``.
    """
    from geo.errors import InputError, cause

    src = str(path)
    try:
        raw = read_limited(path)
    except ValueError as err:
        raise InputError(f"CSV trop volumineux ({err})", source=src, fix="découpez-le par commune") from None
    if path.suffix.lower() == ".gz":
        try:
            raw = gunzip(raw)
        except ValueError as err:
            raise InputError(  # gunzip's own message is French (size bound or damage)
                f"CSV illisible ({' '.join(str(err).split())})",
                source=src,
                fix="décompressez-le (gunzip) et vérifiez-le, ou " + fix,
            ) from None
    text, fallback = decode_text(raw)
    if fallback:
        report.add("warning", "encoding", f"fichier non UTF-8 : lu en {fallback}", source=src)
    try:
        return csv_frame(text, guess_separator(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        raise InputError(f"CSV illisible ({cause(err)})", source=src, fix=fix) from None


def read_user_table(path) -> pd.DataFrame:
    """A CSV or XLSX file typed by a person, as a table of strings (empty cells ``""``).

    CSV: UTF-8 with or without BOM, UTF-16, else Windows-1252; separator ``,``, ``;`` or tab,
    whichever the header line uses most. Damaged workbooks, unparsable CSV and files over
    ``settings.max_table_bytes`` become one :class:`~geo.errors.InputError` naming the file.
    """
    from geo.errors import InputError, cause

    path = Path(path)
    if not path.is_file():
        raise InputError("fichier introuvable", source=str(path), fix="vérifiez le chemin")
    try:
        raw = read_limited(path)
        if path.suffix.lower() == ".gz":
            raw = gunzip(raw)
    except (OSError, ValueError) as err:
        raise InputError(
            f"fichier illisible ({' '.join(str(err).split())})",
            source=str(path),
            fix="donnez un fichier plus petit (par commune), ou augmentez geo.settings.max_table_bytes",
        ) from None
    if path.suffix.lower() in (".xlsx", ".xls"):
        try:
            return pd.read_excel(io.BytesIO(raw), dtype=str).fillna("")
        except Exception as err:  # noqa: BLE001 - openpyxl/xlrd/zipfile raise many kinds
            raise InputError(
                f"classeur illisible ({cause(err)})",
                source=str(path),
                fix="ouvrez-le dans un tableur et enregistrez-le à nouveau en .xlsx ou .csv (UTF-8)",
            ) from None
    text, _ = decode_text(raw)
    try:
        return csv_frame(text, guess_separator(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        raise InputError(
            f"tableau illisible ({cause(err)})",
            source=str(path),
            fix="enregistrez-le en CSV (UTF-8) avec une ligne d'en-tête",
        ) from None
