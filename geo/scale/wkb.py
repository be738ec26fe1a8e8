"""Polygons read straight from their WKB: bounding boxes and areas without GEOS.

A GeoParquet column holds each parcel as WKB. Building a GEOS geometry for each of a million
parcels costs more than classifying them, and most parcels are decided by their bounding box
alone (:func:`geo.classify.overlaps_of_bounds`). :func:`scan` reads the one-ring polygons
(nearly every parcel) from the Arrow buffers in one compiled pass, in place (no row is
copied): their bounding boxes and their areas, bit for bit those of GEOS. Anything else
(holes, several parts, 3D, big-endian, null, unclosed or non-finite ring) is left to GEOS by
the caller.

:func:`rings_valid` is the validity test of those polygons, run on the rows the caller asks
for (the parcels near a perimeter, whether its grid decides them or not): whether each ring is
certainly a valid polygon (:func:`geo.kernels_numba.ring_is_simple`), read in place too; the others
go to GEOS.

Both loops run in C (:mod:`geo.native`) or, without it, in numba (:mod:`geo.scale.wkb_numba`):
the implementation :mod:`geo.kernels` chose (:data:`geo.kernels.IMPLEMENTATION`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa

from geo import kernels, native

if kernels.IMPLEMENTATION == "native":
    #: The loops this process calls: :mod:`geo.native` (C) or :mod:`geo.scale.wkb_numba`.
    LOOPS = native
else:
    from geo.scale import wkb_numba as LOOPS

_HEADER = 13  # byte order (1), type (4), rings (4), points (4)


class Scan(NamedTuple):
    """What :func:`scan` found in each row of a WKB column.

    ``simple`` rows are one-ring polygons, with their ``bounds`` (minx, miny, maxx, maxy) and
    ``area`` (m², as GEOS computes it); the other rows hold NaN.
    """

    simple: np.ndarray
    bounds: np.ndarray
    area: np.ndarray


def _column(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The column as one binary array (32-bit offsets)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if column.type == pa.large_binary():
        column = column.cast(pa.binary())
    return column


def _buffers(column: pa.Array):
    """A binary array's offsets (int32, one past the last row) and bytes."""
    n = len(column)
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)[column.offset : column.offset + n + 1]
    buffer = column.buffers()[2]
    data = np.frombuffer(buffer, dtype=np.uint8) if buffer is not None else np.zeros(0, np.uint8)
    return offsets, data


def rings_valid(column: pa.Array | pa.ChunkedArray, rows: np.ndarray) -> np.ndarray:
    """Whether the ring of each row in ``rows`` — rows :func:`scan` found ``simple`` — is
    certainly a valid polygon: False means *not certain*, and GEOS decides
    (:func:`geo.kernels_numba.ring_is_simple`)."""
    return _rings_valid(LOOPS, column, rows)


def _rings_valid(loops, column, rows) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.int64)
    out = np.zeros(len(rows), dtype=bool)
    if len(rows):
        offsets, data = _buffers(_column(column))
        loops.rings_valid(data, offsets, rows, out)
    return out


def scan(column: pa.Array | pa.ChunkedArray) -> Scan:
    """Bounding boxes and areas of the one-ring, closed, finite 2D polygons of a WKB column.

    Parameters
    ----------
    column : pyarrow binary array
        WKB (little-endian for the rows read here), one geometry per row, nulls allowed.

    Returns
    -------
    Scan
        Every row; those not ``simple`` are left to the caller (GEOS).
    """
    return _scan(LOOPS, column)


def _scan(loops, column) -> Scan:
    column = _column(column)
    n = len(column)
    simple = np.zeros(n, dtype=bool)
    bounds = np.full((n, 4), np.nan)
    area = np.full(n, np.nan)
    if n == 0:
        return Scan(simple, bounds, area)
    offsets, data = _buffers(column)
    valid = column.is_valid().to_numpy(zero_copy_only=False) if column.null_count else None
    if len(data) < _HEADER + 4 * 16:  # not even one ring of 4 points: nothing to read here
        return Scan(simple, bounds, area)
    loops.scan(data, offsets, valid, simple, bounds, area)
    return Scan(simple, bounds, area)
