"""The engine's inner loops: grid decisions, boundary areas, ring validity (C, else numba).

Two jobs of :mod:`geo.classify`, for batches of hundreds of thousands of parcels:

- :func:`grid_pairs`: which parcel boxes meet which perimeter's box, and which of those the
  perimeter's grid decides (:class:`geo.grid.PerimeterGrid`) — the same decisions as the
  numpy version, parcel by parcel in one loop instead of array passes per perimeter;
- :func:`intersection_areas`: the area of a parcel inside a perimeter, for the parcels on
  its boundary.

Most parcels are decided without any area computation (the grid, or containment); the ones
a perimeter line crosses need the area of their intersection. GEOS builds the intersection
polygon (an overlay, tens of µs a pair); only its area is wanted. It is computed directly:

- a ring ``b`` of the perimeter, clipped to the parcel ring's bounding box, is clipped again
  by each half-plane of a convex window (Sutherland–Hodgman). Clipping a ring by a half-plane
  replaces each excursion outside it by a segment on its line, which does not change the
  ring's winding number at any point inside: the signed area of what is left is the area of
  ring ``b``'s region inside the window, *whatever the shape of ring b*;
- the windows are the parcel ring itself when it is convex, else the clipped perimeter ring
  when *that* is convex (then the parcel ring is the one clipped), else the fan of signed
  triangles of the parcel ring from its first vertex — their winding numbers add up to the
  ring's, so their signed areas inside ring ``b`` add up to the parcel ring's;
- holes and parts: ring areas are added with a sign (exterior +, hole −).

Coordinates are taken relative to the parcel's first vertex, so products of Lambert-93
numbers (millions of metres) lose no precision. The result agrees with GEOS
(``area(intersection)``) to about 1e-9 of the parcel's area; it is not bit for bit the same,
so :mod:`geo.classify` uses one method or the other for a whole batch
(:data:`geo.classify.COMPILED_MIN_PAIRS`). The large-scale engine (:mod:`geo.scale`) always
uses it.

The loops themselves have two implementations with the same arithmetic, in the same order,
giving the same bits: C (:mod:`geo.native`, a shared library built at install, loaded through
ctypes in about a millisecond) and numba (:mod:`geo.kernels_numba`, the reference and the
fallback: about half a second per process to import numba and load the compiled code).
:data:`IMPLEMENTATION` says which one this process uses: the C library when it loads, else
numba (``ORT_NATIVE=0`` forces numba). A process on the C library never imports numba.
"""

from __future__ import annotations

import functools
import threading

import numpy as np
import shapely

from geo import native
from geo.grid import GRID_MARGIN, ByIdentity, Once, each_built, perimeter_grid

if native.library() is not None:
    #: The loops this process calls: :mod:`geo.native` (C) or :mod:`geo.kernels_numba`.
    LOOPS = native
else:  # no C library (built without a compiler, or ORT_NATIVE=0): numba (ImportError without it)
    from geo import kernels_numba as LOOPS
#: ``"native"`` or ``"numba"``: which implementation :data:`LOOPS` is.
IMPLEMENTATION = "native" if LOOPS is native else "numba"

#: Segments per run of a perimeter ring: a run far from a parcel's box counts as its chord.
_RUN = 32


def _rings(geoms: np.ndarray, *, oriented: bool):
    """Flat rings of polygons and multipolygons (one closing point per ring).

    Returns x, y, the first point of each ring (and one past the last), the rings of each
    geometry (``lo[i]`` to ``hi[i]``), and each ring's weight: +1 exterior, -1 hole — times
    the ring's orientation (+1 counter-clockwise) when ``oriented``.
    """
    geoms = np.asarray(geoms, dtype=object)
    # Polygons without holes (nearly every parcel): their ring read without making ring objects.
    plain = (shapely.get_type_id(geoms) == 3) & (shapely.get_num_interior_rings(geoms) == 0)
    if oriented:
        plain[:] = False
    xy, owner = shapely.get_coordinates(geoms[plain], return_index=True)
    counts = [np.bincount(owner, minlength=int(plain.sum()))]
    weight = [np.ones(int(plain.sum()))]
    lo = np.zeros(len(geoms), dtype=np.int64)
    hi = np.zeros(len(geoms), dtype=np.int64)
    lo[plain] = np.arange(int(plain.sum()))
    hi[plain] = lo[plain] + 1
    other = np.flatnonzero(~plain)
    if len(other):
        parts, part_of = shapely.get_parts(geoms[other], return_index=True)
        rings, ring_of = shapely.get_rings(parts, return_index=True)
        exterior = np.ones(len(rings), dtype=bool)
        exterior[1:] = ring_of[1:] != ring_of[:-1]
        w = np.where(exterior, 1.0, -1.0)
        if oriented:
            w *= np.where(shapely.is_ccw(rings), 1.0, -1.0)
        more, ring = shapely.get_coordinates(rings, return_index=True)
        xy = np.concatenate([xy, more])
        counts.append(np.bincount(ring, minlength=len(rings)))
        weight.append(w)
        per_geom = np.bincount(part_of[ring_of], minlength=len(other))
        first = int(plain.sum()) + np.concatenate([[0], np.cumsum(per_geom)[:-1]])
        lo[other], hi[other] = first, first + per_geom
    start = np.zeros(sum(len(c) for c in counts) + 1, dtype=np.int64)
    np.cumsum(np.concatenate(counts), out=start[1:])
    return (
        np.ascontiguousarray(xy[:, 0]),
        np.ascontiguousarray(xy[:, 1]),
        start,
        lo,
        hi,
        np.concatenate(weight),
    )


@functools.lru_cache(maxsize=128)
def _perimeter(wkb: bytes):
    """A perimeter's rings, ring boxes, and runs of :data:`_RUN` segments with their boxes."""
    geom = shapely.from_wkb(wkb)
    x, y, start, _, _, weight = _rings(np.array([geom], dtype=object), oriented=True)
    run_start, run_of = [], np.zeros(len(start), dtype=np.int64)
    for r in range(len(start) - 1):
        firsts = np.arange(start[r], start[r + 1] - 1, _RUN)
        run_start.append(firsts)
        run_of[r + 1] = run_of[r] + len(firsts)
    runs = np.concatenate(run_start).astype(np.int64)
    # Each run's points, its end point (the next run's first, or the ring's closing point) included.
    stop = np.append(runs[1:], 0)
    last = run_of[1:] - 1
    stop[last] = start[1:] - 1
    seg = np.repeat(np.arange(len(runs)), stop - runs + 1)
    idx = np.concatenate([np.arange(a, b + 1) for a, b in zip(runs, stop, strict=True)])
    run_box = np.empty((len(runs), 4))
    first = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]])
    run_box[:, 0] = np.minimum.reduceat(x[idx], first)
    run_box[:, 1] = np.minimum.reduceat(y[idx], first)
    run_box[:, 2] = np.maximum.reduceat(x[idx], first)
    run_box[:, 3] = np.maximum.reduceat(y[idx], first)
    ring_box = shapely.bounds(shapely.get_rings(shapely.get_parts(geom)))
    return native.Arrays((x, y, start, weight, np.ascontiguousarray(ring_box), run_of, runs, run_box))


#: :func:`_perimeter` of a WKB, built by one thread while the others wait (or do other work).
_perimeters = Once(_perimeter, 128)
#: :func:`_perimeter` of a geometry object: the same object again needs no WKB made and hashed.
_perimeter_of = ByIdentity(_perimeters.get, 128)


def intersection_areas(parcels: np.ndarray, perimeters: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Area (m²) of each parcel inside perimeter ``perimeters[which[k]]``.

    Parameters
    ----------
    parcels : array of shapely polygons or multipolygons
        Valid, in a metric CRS (metres).
    perimeters : array of shapely polygons or multipolygons
        Same CRS.
    which : int array
        For each parcel, its perimeter.

    Returns
    -------
    array of float
        ``shapely.area(shapely.intersection(parcels, perimeters[which]))`` to about 1e-9 of
        each parcel's area.
    """
    return _intersection_areas(LOOPS, parcels, perimeters, which)


def _intersection_areas(loops, parcels, perimeters, which) -> np.ndarray:
    """:func:`intersection_areas` by the loops of ``loops`` (:mod:`geo.native` or numba's)."""
    out = np.zeros(len(parcels))
    if len(parcels) == 0:
        return out
    rings = native.Arrays(_rings(parcels, oriented=False))
    which = np.asarray(which, dtype=np.intp)
    perimeters = np.asarray(perimeters, dtype=object)
    used = np.unique(which)
    kind = shapely.get_type_id(perimeters[used])
    used = used[((kind == 3) | (kind == 6)) & ~shapely.is_empty(perimeters[used])]  # others: no area
    # Threads at once share the perimeters' arrays: each builds its share, none twice.
    for k, arrays in each_built(perimeters[used], _perimeters, _perimeter_of):
        sel = np.flatnonzero(which == used[k])
        out[sel] = loops.pair_areas(sel, rings, arrays)
    return out


def warm() -> None:
    """Load the compiled code now: nothing to do for the C library; numba's loops are loaded
    from the wheel or numba's cache, or compiled."""
    if LOOPS is not native:
        _warm(LOOPS)


def _warm(loops) -> None:
    square = shapely.box(0.0, 0.0, 2.0, 2.0)
    _intersection_areas(
        loops, np.array([shapely.box(1.0, 1.0, 3.0, 3.0)]), np.array([square]), np.zeros(1, dtype=np.intp)
    )
    _grid_pairs(
        loops,
        np.array([[1.0, 1.0, 3.0, 3.0]]),
        np.array([[0.0, 0.0, 2.0, 2.0]]),
        [perimeter_grid(square)],
        np.ones(1, bool),
        GRID_MARGIN,
    )


# --- which parcels a perimeter's grid decides ------------------------------------------------


#: Packed grids kept for the next batch (the same perimeters, batch after batch of a file), up
#: to this many bytes: a run against many perimeters does not keep the grids of every batch.
PACKED_BYTES = 32 * 2**20
_PACKED: dict[tuple, tuple] = {}  # insertion order: the oldest first
_PACKED_LOCK = threading.Lock()


def _packed(grids: list) -> tuple:
    """The grids as flat arrays for :func:`_decide` (kept for the same grids, within
    :data:`PACKED_BYTES`)."""
    key = tuple(id(g) for g in grids)
    with _PACKED_LOCK:
        entry = _PACKED.pop(key, None)
        if entry is not None:
            _PACKED[key] = entry  # the newest now
            return entry[1:]
    ok = np.array([g is not None for g in grids], dtype=bool)
    real = [g for g in grids if g is not None]
    sizes = [g.inside.size for g in real]
    at = np.zeros(len(grids), dtype=np.int64)
    at[ok] = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if real else []

    def field(name, dtype):
        return np.array([getattr(g, name) if g is not None else 0 for g in grids], dtype=dtype)

    def flat(name):
        return np.concatenate([getattr(g, name).ravel() for g in real]) if real else np.zeros(1, np.int32)

    # The grids are kept with their arrays: their ids stay theirs while the entry lives.
    entry = (grids, ok, field("x0", float), field("y0", float), field("size", float),
             field("nx", np.int64), field("ny", np.int64), at, flat("inside"), flat("outside"))  # fmt: skip
    with _PACKED_LOCK:
        _PACKED[key] = entry
        while len(_PACKED) > 1 and sum(e[-1].nbytes + e[-2].nbytes for e in _PACKED.values()) > PACKED_BYTES:
            del _PACKED[next(iter(_PACKED))]
    return entry[1:]


def grid_pairs(bounds: np.ndarray, boxes: np.ndarray, grids: list, free: np.ndarray, margin: float):
    """Parcel × perimeter pairs whose boxes meet: those decided inside by the grids, the others.

    Parameters
    ----------
    bounds : array (n, 4)
        Parcels' ``minx, miny, maxx, maxy`` (NaN: never a pair), metres.
    boxes : array (m, 4)
        Perimeters' bounding boxes.
    grids : list of geo.grid.PerimeterGrid or None
        One per perimeter (None: every pair is tested).
    free : bool array (n,)
        Parcels the grids may decide.

    Returns
    -------
    (whole parcels, whole perimeters, tested parcels, tested perimeters)
        Pairs decided inside (the parcel contained properly), and pairs left to the exact
        tests; pairs decided outside are left out. Exactly the decisions of
        :meth:`geo.grid.PerimeterGrid.decide`.
    """
    return _grid_pairs(LOOPS, bounds, boxes, grids, free, margin)


def _grid_pairs(loops, bounds, boxes, grids, free, margin):
    """:func:`grid_pairs` by the loops of ``loops``."""
    b = np.asarray(bounds, dtype=float)
    cols = [np.ascontiguousarray(b[:, k]) for k in range(4)]
    packed = _packed(grids)
    # The batch's extent (NaN boxes left out; all NaN or none: NaN, and no pair at all).
    extent = np.full(4, np.nan)
    if len(b):
        extent = np.array(
            [np.fmin.reduce(cols[0]), np.fmin.reduce(cols[1])] + [np.fmax.reduce(c) for c in cols[2:]]
        )
    return loops.decide(
        *cols,
        extent,
        np.ascontiguousarray(free, dtype=np.bool_),
        np.ascontiguousarray(boxes, dtype=float),
        *packed,
        margin,
    )


# --- is a ring simple? (the validity test of the WKB scan and of geo.validity) ---------------


def rings_simple(xy: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Whether each closed ring ``xy[starts[r]:starts[r + 1]]`` (points, x y) is certainly a
    valid polygon shell (:func:`geo.kernels_numba.ring_is_simple`: False means *not certain*,
    and GEOS decides)."""
    return _rings_simple(LOOPS, xy, starts)


def _rings_simple(loops, xy, starts) -> np.ndarray:
    out = np.zeros(len(starts) - 1, dtype=bool)
    if len(out):
        loops.rings_simple(np.ascontiguousarray(xy, dtype=float).ravel(), np.asarray(starts, np.int64), out)
    return out


def __getattr__(name: str):
    # The numba loops' ring test and its scratch arrays, for callers that compile with numba
    # (imports numba: only when asked for).
    if name in ("ring_is_simple", "scratch"):
        from geo import kernels_numba

        return getattr(kernels_numba, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
