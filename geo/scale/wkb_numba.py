"""The WKB loops of :mod:`geo.scale.wkb` in numba: the reference of the C library, and its fallback.

Used only where :mod:`geo.native` is not loaded (see :mod:`geo.kernels`); :func:`scan` and
:func:`rings_valid` at the end are the interface both implementations share. Each row's
doubles start at any byte: the buffer is viewed as doubles from each of its first 8 bytes, so
that no row is copied.
"""

from __future__ import annotations

import numpy as np

from geo.kernels_numba import ring_is_simple, scratch
from geo.scale.jit import jit


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


def _views(data: np.ndarray) -> list:
    """The bytes viewed as little-endian doubles from byte 0, 1 … 7."""
    return [np.frombuffer(data, dtype="<f8", offset=a, count=max(0, (len(data) - a) // 8)) for a in range(8)]


def scan(data, offsets, valid, simple, bounds, area) -> None:
    """:func:`_scan` on the bytes ``data`` (``valid``: one bool per row, or None: no null)."""
    if valid is None:
        valid = np.ones(len(simple), dtype=bool)
    views = _views(data)
    _scan(data, np.asarray(offsets, dtype=np.int64), valid, simple, bounds, area, views[0], tuple(views[1:]))


def rings_valid(data, offsets, rows, out) -> None:
    """:func:`_rings_valid` on the bytes ``data``."""
    views = _views(data)
    _rings_valid(data, np.asarray(offsets, dtype=np.int64), rows, out, views[0], tuple(views[1:]))
