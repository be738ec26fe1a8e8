"""A GeoPackage's single feature table read with SQLite alone: no GDAL, no geopandas.

A GeoPackage is an SQLite database (OGC 12-128r18): ``gpkg_contents`` lists its tables,
``gpkg_geometry_columns`` names the geometry column of each and its ``srs_id``, which
``gpkg_spatial_ref_sys`` resolves to an organisation's code (``EPSG``, 2154). Each geometry is a
"GeoPackage binary" blob: a small header (``GP``, version, flags, ``srs_id``, an optional
envelope) followed by standard WKB, which shapely reads.

:func:`read_plain_layer` reads only the plainest case — one feature table, an integer primary
key, a CRS named by its EPSG code, 2D geometries in standard WKB — and returns None for anything
else, so that its caller reads the file with GDAL instead (and gets GDAL's answer, whatever it
is). What it returns is what GDAL reads from such a file: the same rows, in the same order,
the same values and coordinates.
"""

from __future__ import annotations

import sqlite3
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

#: Envelope sizes (bytes) by the envelope code of a geometry's flags (bits 1–3).
_ENVELOPE_BYTES = (0, 32, 48, 48, 64)


@dataclass
class PlainLayer:
    """The features of a GeoPackage's only table: attribute columns and shapely geometries."""

    table: str
    #: Attribute columns (not the key nor the geometry) and their declared SQL types.
    types: dict[str, str]
    #: Values by column, one per feature, as SQLite stores them (``str``, ``int``, ``float``, None).
    columns: dict[str, list]
    geometries: np.ndarray
    #: ``EPSG:NNNN``.
    crs: str

    def __len__(self) -> int:
        return len(self.geometries)


def read_plain_layer(path: str | Path) -> PlainLayer | None:
    """The single feature table of a GeoPackage, or None when it is not of the plainest kind.

    Parameters
    ----------
    path : path
        A ``.gpkg`` file.

    Returns
    -------
    PlainLayer or None
        None for anything unusual — not a GeoPackage, several tables, no integer key, a CRS
        that is not an EPSG code, an empty, extended or 3D geometry, unreadable WKB — to be
        read by GDAL.
    """
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    try:
        con = sqlite3.connect(uri, uri=True)
    except sqlite3.Error:
        return None
    try:
        return _read(con)
    except (sqlite3.Error, struct.error, ValueError, shapely.errors.GEOSException):
        return None
    finally:
        con.close()


def _read(con: sqlite3.Connection) -> PlainLayer | None:
    contents = con.execute("SELECT table_name, data_type FROM gpkg_contents").fetchall()
    if len(contents) != 1 or contents[0][1] != "features":
        return None
    table = contents[0][0]
    columns = con.execute(
        "SELECT column_name, srs_id, z, m FROM gpkg_geometry_columns WHERE table_name = ?", (table,)
    ).fetchall()
    if len(columns) != 1 or columns[0][2] != 0 or columns[0][3] != 0:
        return None
    geometry, srs_id = columns[0][0], columns[0][1]
    srs = con.execute(
        "SELECT organization, organization_coordsys_id FROM gpkg_spatial_ref_sys WHERE srs_id = ?", (srs_id,)
    ).fetchall()
    if len(srs) != 1 or str(srs[0][0]).upper() != "EPSG" or srs[0][1] != srs_id or srs_id <= 0:
        return None
    info = con.execute(
        f"PRAGMA table_info({_quoted(table)})"
    ).fetchall()  # cid, name, type, notnull, dflt, pk
    keys = [row for row in info if row[5]]
    if len(keys) != 1 or keys[0][2].upper() != "INTEGER":
        return None
    key = keys[0][1]
    types = {row[1]: row[2] for row in info if row[1] not in (key, geometry)}
    names = [geometry, *types]
    rows = con.execute(
        f"SELECT {', '.join(_quoted(n) for n in names)} FROM {_quoted(table)} ORDER BY {_quoted(key)}"
    ).fetchall()
    wkb = [_wkb(row[0]) for row in rows]
    if any(w is None for w in wkb):
        return None
    geoms = shapely.from_wkb(np.array(wkb, dtype=object), on_invalid="raise")
    if len(geoms) and (shapely.is_empty(geoms).any() or shapely.has_z(geoms).any()):
        return None
    values = {name: [row[k] for row in rows] for k, name in enumerate(names[1:], start=1)}
    return PlainLayer(table, types, values, geoms, f"EPSG:{srs_id}")


def _wkb(blob) -> bytes | None:
    """The WKB of a GeoPackage binary geometry; None for an empty, extended or odd one."""
    if not isinstance(blob, bytes) or len(blob) < 8 or blob[:2] != b"GP" or blob[2] != 0:
        return None
    flags = blob[3]
    envelope = (flags >> 1) & 0b111
    if flags & 0b0011_0000 or envelope >= len(_ENVELOPE_BYTES):  # extended type, or empty
        return None
    start = 8 + _ENVELOPE_BYTES[envelope]
    body = blob[start:]
    if len(body) < 5 or body[0] not in (0, 1):
        return None
    kind = struct.unpack("<I" if body[0] else ">I", body[1:5])[0]
    if kind not in (3, 6):  # 2D Polygon, MultiPolygon in standard WKB: anything else to GDAL
        return None
    return body


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
