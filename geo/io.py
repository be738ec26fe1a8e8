"""Writing outputs: atomically, deterministically, never over an existing file unless asked.

Every writer renders into a temporary file in the destination folder, then renames it over
the target (an atomic step on POSIX), so an interrupted run leaves either the old file or
nothing — never a half-written one that looks complete.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geo import settings
from geo.errors import InputError, OutputExistsError

#: Output formats by file suffix.
TABLE_SUFFIXES = {
    ".csv": "csv",
    ".xlsx": "xlsx",
    ".gpkg": "gpkg",
    ".parquet": "parquet",
    ".geojson": "geojson",
    ".json": "json",
}


def check_writable(path: str | os.PathLike, *, force: bool = False) -> Path:
    """Refuse an existing output unless ``force``; return the path."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path} already exists — add --force to replace it (force=True from Python)")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    path = check_writable(path, force=force)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{path.suffix}", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # writers such as GDAL want to create the file themselves
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if not tmp_path.exists():
            raise OSError(f"nothing was written to {path}")
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(text: str, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write UTF-8 text atomically."""
    with atomic_path(path, force=force) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(data: bytes, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write bytes atomically."""
    with atomic_path(path, force=force) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _writer_for(path: Path, sheet: dict | None = None) -> Callable[[pd.DataFrame, Path], None]:
    """The writer for ``path``'s suffix; ``sheet`` holds the XLSX layout (title, source, labels)."""
    from geo import formats  # CSV dialect, XLSX annex layout, GeoPackage styles

    sheet = sheet or {}
    suffix = path.suffix
    kind = TABLE_SUFFIXES.get(suffix.lower())
    if kind is None:
        raise InputError(
            f"unknown output format '{suffix}'",
            fix=f"use one of {', '.join(sorted(TABLE_SUFFIXES))}",
        )

    def csv(df: pd.DataFrame, tmp: Path) -> None:
        formats.write_csv(df, tmp)

    def xlsx(df: pd.DataFrame, tmp: Path) -> None:
        options = {k: v for k, v in sheet.items() if k in ("title", "labels", "kinds")}
        options.setdefault("title", path.stem)
        formats.write_xlsx([(sheet.get("name") or path.stem, df, options)], tmp, source=sheet.get("source"))

    def vector(driver: str) -> Callable[[pd.DataFrame, Path], None]:
        def write(df: pd.DataFrame, tmp: Path) -> None:
            if not isinstance(df, gpd.GeoDataFrame):
                raise InputError("this table has no geometry", fix="write it as .csv or .xlsx instead")
            # The layer is named after the final file, not the temporary one: same bytes every run.
            df.to_file(tmp, driver=driver, layer=path.stem, engine=settings.io_engine)
            if driver == "GPKG":  # opens styled in QGIS, with the colours of the web map
                formats.add_layer_style(tmp, path.stem, df)

        return write

    def parquet(df: pd.DataFrame, tmp: Path) -> None:
        # pandas stores df.attrs as JSON in the file; ours may hold reports and dates.
        out = df.copy(deep=False)
        out.attrs = {}
        out.to_parquet(tmp, index=False)

    return {
        "csv": csv,
        "xlsx": xlsx,
        "gpkg": vector("GPKG"),
        "geojson": vector("GeoJSON"),
        "json": vector("GeoJSON"),
        "parquet": parquet,
    }[kind]


def write_table(
    df: pd.DataFrame,
    path: str | os.PathLike,
    *,
    force: bool = False,
    layout=None,
    title: str | None = None,
    source: str | None = None,
) -> Path:
    """Write a table or GeoDataFrame by suffix (.csv, .xlsx, .gpkg, .geojson, .parquet).

    CSV and XLSX drop the geometry column. CSV is written for French Excel unless
    ``settings.csv_format`` says otherwise; XLSX is laid out as an annex (``title``, ``source``
    and the date above the table); a GeoPackage carries its QGIS style (:mod:`geo.formats`).
    ``layout`` (a :class:`geo.columns.Layout`) renames and converts the columns to the
    documented French schema first. The write is atomic and refuses an existing file
    unless ``force``.
    """
    path = Path(path)
    sheet: dict = {"title": title, "source": source}
    if layout is not None:
        df = layout.apply(df)
        sheet.update(name=layout.sheet, labels=layout.labels(), kinds=layout.kinds())
        sheet["title"] = title or layout.title
    writer = _writer_for(path, sheet)
    with atomic_path(path, force=force) as tmp:
        writer(df, tmp)
    return path
