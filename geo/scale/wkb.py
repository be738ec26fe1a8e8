"""Polygons read straight from their WKB: bounding boxes and areas without GEOS.

A GeoParquet column holds each parcel as WKB. Building a GEOS geometry for each of a million
parcels costs more than classifying them, and most parcels are decided by their bounding box
alone (:func:`geo.classify.overlaps_of_bounds`). :func:`decode` reads the one-ring polygons
(nearly every parcel) from the Arrow buffers with numpy: their coordinates, bounding boxes,
and — for those that need it — their areas, bit for bit those of GEOS. Anything else (holes,
several parts, 3D, big-endian) is left to GEOS by the caller.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_HEADER = 13  # byte order (1), type (4), rings (4), points (4)


class Rings(NamedTuple):
    """One-ring polygons of a WKB column.

    ``rows`` are their row numbers in the column; ring ``k`` has coordinates
    ``x[start[k]:start[k + 1]]`` (closed: first point repeated last), metres.
    """

    rows: np.ndarray
    start: np.ndarray
    x: np.ndarray
    y: np.ndarray

    def bounds(self) -> np.ndarray:
        """``minx, miny, maxx, maxy`` of each ring, shape (k, 4)."""
        if len(self.rows) == 0:
            return np.zeros((0, 4))
        first = self.start[:-1]
        return np.stack(
            [
                np.minimum.reduceat(self.x, first),
                np.minimum.reduceat(self.y, first),
                np.maximum.reduceat(self.x, first),
                np.maximum.reduceat(self.y, first),
            ],
            axis=1,
        )

    def areas(self, which: np.ndarray) -> np.ndarray:
        """Areas (m²) of rings ``which``, computed as GEOS does (same operations, same order).

        GEOS ``Area::ofRingSigned``: with ``x0`` the first x, the sum over ``i = 1 … n-2``
        of ``(x[i] - x0) * (y[i-1] - y[i+1])``, accumulated in order, halved. Summing in the
        same order matters: numpy's own sums are pairwise and differ in the last bits.
        """
        which = np.asarray(which, dtype=np.intp)
        first, count = self.start[which], self.start[which + 1] - self.start[which]
        terms = count - 2
        order = np.argsort(-terms, kind="stable")
        first, terms = first[order], terms[order]
        x0 = self.x[first]
        acc = np.zeros(len(which))
        longest = int(terms[0]) if len(terms) else 0
        # How many rings have more than k terms (terms sorted in decreasing order).
        alive = np.searchsorted(-terms, -np.arange(longest), side="left")
        for k in range(longest):
            c = alive[k]
            i = first[:c] + k + 1
            acc[:c] += (self.x[i] - x0[:c]) * (self.y[i - 1] - self.y[i + 1])
        out = np.empty(len(which))
        out[order] = np.abs(acc / 2.0)
        return out


def _headers(column: pa.Array, data: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The first 13 bytes of each row, shape (n, 13) (rows too short: garbage, masked after)."""
    head = pc.binary_slice(column, 0, _HEADER)
    if head.null_count == 0 and len(head.buffers()[2] or b"") >= _HEADER * len(head):
        offs = np.frombuffer(head.buffers()[1], dtype=np.int32)[head.offset : head.offset + len(head) + 1]
        if offs[0] == 0 and (np.diff(offs) == _HEADER).all():
            return np.frombuffer(head.buffers()[2], dtype=np.uint8, count=_HEADER * len(head)).reshape(
                -1, _HEADER
            )
    at = np.minimum(at, len(data) - _HEADER)
    return data[at[:, None] + np.arange(_HEADER)]


def _u32(head: np.ndarray, at: int) -> np.ndarray:
    return np.ascontiguousarray(head[:, at : at + 4]).view("<u4").ravel()


def decode(column: pa.Array | pa.ChunkedArray) -> Rings:
    """Read the one-ring, closed, finite 2D polygons of a WKB column (little-endian).

    Parameters
    ----------
    column : pyarrow binary array
        WKB, one geometry per row (nulls allowed).

    Returns
    -------
    Rings
        The rows it could read; every other row (null, empty, holes, several parts, 3D,
        unclosed or non-finite ring) is left to the caller.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if column.type == pa.large_binary():
        column = column.cast(pa.binary())
    n = len(column)
    if n == 0:
        return Rings(np.zeros(0, np.intp), np.zeros(1, np.intp), np.zeros(0), np.zeros(0))
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)[column.offset : column.offset + n + 1]
    data = (
        np.frombuffer(column.buffers()[2], dtype=np.uint8) if column.buffers()[2] else np.zeros(0, np.uint8)
    )
    start, length = offsets[:-1].astype(np.int64), np.diff(offsets).astype(np.int64)
    ok = length >= _HEADER
    if column.null_count:
        ok &= column.is_valid().to_numpy(zero_copy_only=False)
    if len(data) < _HEADER:
        ok[:] = False
    else:
        head = _headers(column, data, np.where(ok, start, 0))
        ok &= head[:, 0] == 1  # little-endian
        ok &= _u32(head, 1) == 3  # Polygon, 2D
        ok &= _u32(head, 5) == 1  # one ring
        points = _u32(head, 9).astype(np.int64)
        ok &= (points >= 4) & (length == _HEADER + 16 * points)
    rings = decode_subset(column, ok)
    if len(rings.rows) == 0:
        return rings
    rows, ring_start, x, y = rings
    first, last = ring_start[:-1], ring_start[1:] - 1
    good = (x[first] == x[last]) & (y[first] == y[last])
    good &= np.logical_and.reduceat(np.isfinite(x) & np.isfinite(y), first)
    if not good.all():
        keep = ok.copy()
        keep[rows[~good]] = False
        return decode_subset(column, keep)
    return rings


def decode_subset(column: pa.Array, keep: np.ndarray) -> Rings:
    """:func:`decode` of the rows ``keep`` (already known to be one-ring polygons) only."""
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        return Rings(rows, np.zeros(1, np.intp), np.zeros(0), np.zeros(0))
    body = pc.binary_slice(
        column if len(rows) == len(keep) else column.filter(pa.array(keep)), _HEADER, 1 << 30
    )
    offs = np.frombuffer(body.buffers()[1], dtype=np.int32)[body.offset : body.offset + len(body) + 1]
    count = int(offs[-1] - offs[0]) // 8
    xy = (
        np.frombuffer(body.buffers()[2], dtype="<f8", count=count, offset=int(offs[0]))
        if count
        else np.zeros(0)
    )
    return Rings(rows, ((offs - offs[0]) // 16).astype(np.intp), xy[0::2], xy[1::2])
