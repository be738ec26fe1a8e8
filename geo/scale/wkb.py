"""Polygons read straight from their WKB: bounding boxes and areas without GEOS.

A GeoParquet column holds each parcel as WKB. Building a GEOS geometry for each of a million
parcels costs more than classifying them, and most parcels are decided by their bounding box
alone (:func:`geo.classify.overlaps_of_bounds`). :func:`scan` reads the one-ring polygons
(nearly every parcel) from the Arrow buffers in one compiled pass (numba), in place (the
buffer is viewed as doubles from each of its first 8 bytes, so that no row is copied): their
bounding boxes and their areas, bit for bit those of GEOS. Anything else (holes, several parts, 3D,
big-endian, null, unclosed or non-finite ring) is left to GEOS by the caller.

:func:`rings_valid` is the validity test of those polygons, run on the rows the caller asks
for (the parcels near a perimeter, whether its grid decides them or not): whether each ring is
certainly a valid polygon (:func:`geo.kernels.ring_is_simple`), read in place too; the others
go to GEOS.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa

from geo.kernels import ring_is_simple, scratch
from geo.scale.jit import jit

_HEADER = 13  # byte order (1), type (4), rings (4), points (4)


class Scan(NamedTuple):
    """What :func:`scan` found in each row of a WKB column.

    ``simple`` rows are one-ring polygons, with their ``bounds`` (minx, miny, maxx, maxy) and
    ``area`` (m², as GEOS computes it); the other rows hold NaN.
    """

    simple: np.ndarray
    bounds: np.ndarray
    area: np.ndarray


@jit
def _u32(data, at):
    return (
        np.uint32(data[at])
        | (np.uint32(data[at + 1]) << 8)
        | (np.uint32(data[at + 2]) << 16)
        | (np.uint32(data[at + 3]) << 24)
    )


@jit
def _ring(v, k, points, r, bounds, area):
    """Row ``r``: a closed ring of ``points`` points from ``v[k]`` on; False if not closed or finite."""
    x0, y0 = v[k], v[k + 1]
    last = k + 2 * points - 2
    if v[last] != x0 or v[last + 1] != y0:
        return False
    minx, miny, maxx, maxy = x0, y0, x0, y0
    for i in range(points):
        x, y = v[k + 2 * i], v[k + 2 * i + 1]
        if not (np.isfinite(x) and np.isfinite(y)):
            return False
        minx, maxx = min(minx, x), max(maxx, x)
        miny, maxy = min(miny, y), max(maxy, y)
    # GEOS Area::ofRingSigned, same operations in the same order: the same bits.
    total = 0.0
    for i in range(1, points - 1):
        total += (v[k + 2 * i] - x0) * (v[k + 2 * i - 1] - v[k + 2 * i + 3])
    bounds[r, 0], bounds[r, 1], bounds[r, 2], bounds[r, 3] = minx, miny, maxx, maxy
    area[r] = abs(total / 2.0)
    return True


@jit
def _scan(data, offsets, valid, simple, bounds, area, aligned, unaligned):
    # The doubles of a row start at any byte: ``aligned`` views the buffer as doubles from its
    # first byte, ``unaligned[a - 1]`` from byte a (1 … 7), so no row is copied.
    for r in range(len(simple)):
        simple[r] = False
        s = offsets[r]
        size = offsets[r + 1] - s
        if not valid[r] or size < 13 or data[s] != 1:  # null, short, big-endian
            continue
        if _u32(data, s + 1) != 3 or _u32(data, s + 5) != 1:  # 2D polygon of one ring
            continue
        points = np.int64(_u32(data, s + 9))
        if points < 4 or size != 13 + 16 * points:
            continue
        a = (s + 13) % 8
        k = (s + 13 - a) // 8
        if a == 0:
            simple[r] = _ring(aligned, k, points, r, bounds, area)
        else:
            simple[r] = _ring(unaligned[a - 1], k, points, r, bounds, area)


@jit
def _rings_valid(data, offsets, rows, out, aligned, unaligned):
    order, seg, box = scratch(64)  # grown for long rings
    for i in range(len(rows)):
        s = offsets[rows[i]]
        points = np.int64(_u32(data, s + 9))
        if points > len(order):
            order, seg, box = scratch(2 * points)
        a = (s + 13) % 8
        k = (s + 13 - a) // 8
        if a == 0:
            out[i] = ring_is_simple(aligned, k, points, order, seg, box)
        else:
            out[i] = ring_is_simple(unaligned[a - 1], k, points, order, seg, box)


def _buffers(column: pa.Array | pa.ChunkedArray):
    """The column as one binary array, its offsets, bytes and views as doubles from each byte."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if column.type == pa.large_binary():
        column = column.cast(pa.binary())
    n = len(column)
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)[column.offset : column.offset + n + 1]
    buffer = column.buffers()[2]
    data = np.frombuffer(buffer, dtype=np.uint8) if buffer is not None else np.zeros(0, np.uint8)
    views = [np.frombuffer(buffer, dtype="<f8", offset=a, count=(len(data) - a) // 8) for a in range(8)]
    return column, offsets.astype(np.int64), data, views


def rings_valid(column: pa.Array | pa.ChunkedArray, rows: np.ndarray) -> np.ndarray:
    """Whether the ring of each row in ``rows`` — rows :func:`scan` found ``simple`` — is
    certainly a valid polygon: False means *not certain*, and GEOS decides
    (:func:`geo.kernels.ring_is_simple`)."""
    rows = np.asarray(rows, dtype=np.int64)
    out = np.zeros(len(rows), dtype=bool)
    if len(rows):
        _, offsets, data, views = _buffers(column)
        _rings_valid(data, offsets, rows, out, views[0], tuple(views[1:]))
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
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if column.type == pa.large_binary():
        column = column.cast(pa.binary())
    n = len(column)
    simple = np.zeros(n, dtype=bool)
    bounds = np.full((n, 4), np.nan)
    area = np.full(n, np.nan)
    if n == 0:
        return Scan(simple, bounds, area)
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)[column.offset : column.offset + n + 1]
    buffer = column.buffers()[2]
    data = np.frombuffer(buffer, dtype=np.uint8) if buffer is not None else np.zeros(0, np.uint8)
    valid = column.is_valid().to_numpy(zero_copy_only=False) if column.null_count else np.ones(n, dtype=bool)
    if len(data) < _HEADER + 4 * 16:  # not even one ring of 4 points: nothing to read here
        return Scan(simple, bounds, area)
    views = [np.frombuffer(buffer, dtype="<f8", offset=a, count=(len(data) - a) // 8) for a in range(8)]
    _scan(data, offsets.astype(np.int64), valid, simple, bounds, area, views[0], tuple(views[1:]))
    return Scan(simple, bounds, area)
