"""The parcel check: is each parcel inside, straddling or outside each perimeter?

For every parcel × perimeter pair the engine computes the share of the parcel's area inside
the perimeter, in the metric CRS, and classifies it:

- ``inside``: the area left outside is within the tolerance;
- ``straddling``: part inside, part outside, both beyond the tolerance (the share says how much);
- ``outside``: the area inside is within the tolerance — contact along the boundary only has
  no area and is therefore outside.

No legal rule decides a parcel that straddles a perimeter line: the share is reported so the
planner can decide. A tolerance (``tolerance_m2`` *or* ``tolerance_pct`` of the parcel's area,
whichever is larger) absorbs digitising noise. Points (a building, a dwelling) are inside
when the perimeter covers them.

The work is vectorised and sparse: a coarse grid over each perimeter (cells wholly inside,
wholly outside, or on the boundary) decides most parcels from their bounding box alone, with
no GEOS call; the others are tested exactly — parcels lying properly inside a (prepared)
perimeter need no intersection, and only boundary pairs are intersected, each against the
perimeter clipped to a box around the parcel (or against small pieces of it, like PostGIS
``ST_Subdivide``, for a perimeter of many thousand vertices), so the cost of a pair does not
grow with the perimeter's length. Large batches (the scale engine, or from
:data:`COMPILED_MIN_PAIRS` boundary pairs on) run the grid and those areas in compiled loops
(:mod:`geo.kernels`): the same decisions, areas within 1e-9 of GEOS's.
Pairs that are not found are outside with nothing inside: :func:`overlaps` lists the others.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import shapely

from geo import projection, settings, validity
from geo._lazy import later
from geo.errors import InputError, OrtWarning

# The grids live a floor down (geo.grid), shared with geo.kernels; named here for callers.
from geo.grid import GRID_CELLS as GRID_CELLS
from geo.grid import GRID_MARGIN as GRID_MARGIN
from geo.grid import ByIdentity as ByIdentity
from geo.grid import PerimeterGrid as PerimeterGrid
from geo.grid import perimeter_grid as perimeter_grid
from geo.grid import perimeter_grids as perimeter_grids

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd
else:  # imported at first use: the array functions (the engine at scale) do without them
    gpd, pd = later("geopandas"), later("pandas")

INSIDE, STRADDLING, OUTSIDE = "inside", "straddling", "outside"
STATUSES = (INSIDE, STRADDLING, OUTSIDE)
#: French labels for what users read.
STATUS_LABELS = {INSIDE: "incluse", STRADDLING: "à cheval", OUTSIDE: "hors périmètre"}

#: Columns of the result, in order.
RESULT_COLUMNS = [
    "idu",
    "perimeter_id",
    "perimeter_type",
    "perimeter_nom",
    "status",
    "share",
    "area_inside_m2",
    "parcel_area_m2",
    "distance_m",
]

_INSIDE, _STRADDLING, _OUTSIDE = 0, 1, 2
_STATUS_NAMES = np.array(STATUSES, dtype=object)  # by status code
#: Perimeters with more vertices than this are cut into pieces for the intersections. Below,
#: GEOS clips the perimeter to the parcel's envelope itself, and cutting would cost more than
#: it saves unless the same perimeters served many batches.
SUBDIVIDE_ABOVE = 5000
#: From this many boundary pairs in a batch, their areas are computed by :mod:`geo.kernels`
#: (compiled, ~5× faster than GEOS; below it GEOS, whose areas differ in the last bits, keeps
#: the answers of small checks as they always were, and spares numba's start-up where the C
#: library is missing). The large-scale engine (:mod:`geo.scale`) always uses it, so that a parcel gets
#: the same area in any batch.
COMPILED_MIN_PAIRS = 20_000
_PIECE_VERTICES = 64


class Overlaps(NamedTuple):
    """Parcel × perimeter pairs that may have something in common (all others are disjoint).

    ``parcel`` and ``perimeter`` index the input arrays; ``area`` is the parcel's area inside
    the perimeter (m², 0 for points); ``covered`` is True for points the perimeter covers.
    """

    parcel: np.ndarray
    perimeter: np.ndarray
    area: np.ndarray
    covered: np.ndarray


def overlaps(
    parcel_geoms: np.ndarray,
    perimeter_geoms: np.ndarray,
    *,
    compiled: bool | None = None,
    valid: Callable[[np.ndarray], np.ndarray] | bool | None = None,
) -> Overlaps:
    """Find the parcel × perimeter pairs that intersect and the area each parcel has inside.

    Parameters
    ----------
    parcel_geoms : array of shapely geometries
        Polygons or points, in a metric CRS (metres).
    perimeter_geoms : array of shapely geometries
        Polygons or multipolygons, same CRS (left as they are: see :func:`overlaps_of_bounds`).
    compiled : bool, optional
        Areas of boundary pairs by :mod:`geo.kernels` (True) or GEOS (False); default: compiled
        from :data:`COMPILED_MIN_PAIRS` boundary pairs on.
    valid : callable or bool, optional
        The validity test of :func:`overlaps_of_bounds` (e.g. a :class:`geo.validity.Tracker`
        that lists the parcels it sets aside); default :func:`geo.validity.valid_geoms`, the
        invalid parcels set aside with a warning; False: the parcels are known valid.

    Returns
    -------
    Overlaps
        Pairs ordered by parcel then perimeter; pairs not listed share no point (or belong to
        an invalid parcel set aside).
    """
    pgeom = np.asarray(parcel_geoms, dtype=object)
    tracker = None
    if valid is None:
        valid = tracker = validity.Tracker(lambda idx: validity.valid_geoms(pgeom[idx]))
    bounds = shapely.bounds(pgeom)
    found = overlaps_of_bounds(
        bounds,
        perimeter_geoms,
        geoms=lambda idx: pgeom[idx],
        areas=lambda idx: shapely.area(pgeom[idx]),
        exact=_points(pgeom, bounds),
        compiled=compiled,
        valid=valid or None,
    )
    if tracker is not None and len(tracker.invalid):
        bad = tracker.invalid
        warnings.warn(
            f"{len(bad)} parcelle(s) invalide(s) écartée(s), sans verdict (première : position {bad[0]}, "
            f"{validity.reasons(pgeom[bad[:1]])[0]}) — classify_parcels(..., fix=True) les répare",
            OrtWarning,
            stacklevel=2,
        )
    return found


def _points(geoms: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Which geometries are points (``shapely.get_type_id(geoms) == 0``), asked of GEOS only
    for those whose box is a point or empty (NaN): a point's always is."""
    flat = ((bounds[:, 0] == bounds[:, 2]) & (bounds[:, 1] == bounds[:, 3])) | np.isnan(bounds[:, 0])
    out = np.zeros(len(geoms), dtype=bool)
    which = np.flatnonzero(flat)
    if len(which):
        out[which] = shapely.get_type_id(geoms[which]) == 0
    return out


def _unique(idx: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(idx, return_inverse=True)`` for indices in ``range(n)``, by a table of ``n``
    rather than a sort when ``idx`` is not much shorter than ``n``."""
    if len(idx) * 16 < n:
        return np.unique(idx, return_inverse=True)
    seen = np.zeros(n, dtype=bool)
    seen[idx] = True
    ids = np.flatnonzero(seen)
    at = np.empty(n, dtype=np.intp)
    at[ids] = np.arange(len(ids))
    return ids, at[idx]


def overlaps_of_bounds(
    bounds: np.ndarray,
    perimeter_geoms: np.ndarray,
    *,
    geoms: Callable[[np.ndarray], np.ndarray],
    areas: Callable[[np.ndarray], np.ndarray],
    exact: np.ndarray | None = None,
    compiled: bool | None = None,
    valid: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Overlaps:
    """:func:`overlaps` for parcels known by their bounding boxes, built as geometries on demand.

    Each perimeter has a coarse grid (:class:`PerimeterGrid`) whose cells lie wholly inside
    it, wholly outside it, or on its boundary. A parcel whose bounding box covers only inside
    cells is contained properly (its whole area is inside); one that covers only outside
    cells is disjoint: no GEOS call decides them. Only the others — near a boundary — are
    built (``geoms``) and tested exactly. The result is the one of the exact tests alone.

    Parameters
    ----------
    bounds : array (n, 4)
        ``minx, miny, maxx, maxy`` of each parcel (NaN for an empty one), metres.
    perimeter_geoms : array of shapely geometries
        Polygons or multipolygons, same CRS. Those whose box meets the parcels' extent
        (:func:`near_perimeters`) get a grid and are prepared for this call (copies, unless
        the caller prepared them: they are not changed); the others cost nothing.
    geoms : callable
        Sorted unique parcel indices → their shapely geometries.
    areas : callable
        Sorted unique parcel indices → their areas (m², as ``shapely.area`` gives them).
    exact : bool array, optional
        Parcels the grid must not decide (points: a point on the boundary is inside).
    compiled : bool, optional
        See :func:`overlaps`.
    valid : callable, optional
        Sorted unique parcel indices → whether each is a valid geometry. Asked, after the grid,
        for every parcel in a pair — those the grid decides inside too, which are never built:
        the pairs of an invalid parcel are left out (the callback knows which). An invalid
        parcel in no pair is disjoint from every perimeter, whatever its repair.
    """
    bounds = np.asarray(bounds, dtype=float).reshape(-1, 4)
    # Only the perimeters near the batch get a grid and are prepared: what a batch holds does
    # not grow with the number of perimeters (a national layer against one département).
    used = near_perimeters(bounds, perimeter_geoms)
    if len(used) == 0:
        empty = np.zeros(0, dtype=np.intp)
        return Overlaps(empty, empty.copy(), np.zeros(0), np.zeros(0, dtype=bool))
    near_geoms = np.asarray(perimeter_geoms, dtype=object)[used]
    mgeom = _prepared_copies(near_geoms)
    free = np.ones(len(bounds), dtype=bool) if exact is None else ~np.asarray(exact, dtype=bool)
    kernels = _kernels() if compiled else None
    if kernels is not None:
        wq, wp, tq, tp = _grouped_pairs(kernels, bounds, near_geoms, free)
    else:
        wq, wp, tq, tp = _grid_pairs(bounds, near_geoms, free)
    n = len(bounds)
    if valid is not None and (len(wq) or len(tq)):
        near = _unique(np.concatenate([wq, tq]), n)[0]
        bad = near[~np.asarray(valid(near), dtype=bool)]
        if len(bad):
            invalid = np.zeros(n, dtype=bool)
            invalid[bad] = True
            keep = ~invalid[wq]
            wq, wp = wq[keep], wp[keep]
            keep = ~invalid[tq]
            tq, tp = tq[keep], tp[keep]

    # Parcels decided by the grid: contained properly, their whole area inside.
    ids, inv = _unique(wq, n)
    w_area = areas(ids)[inv] if len(ids) else np.zeros(0)

    # The others: the exact tests.
    ids, inv = _unique(tq, n)
    cand = geoms(ids)[inv] if len(ids) else np.zeros(0, dtype=object)
    perim = mgeom[tp]
    area = np.zeros(len(tq))
    keep = np.zeros(len(tq), dtype=bool)
    covered = np.zeros(len(tq), dtype=bool)
    point = shapely.get_type_id(cand) == 0
    pts = np.flatnonzero(point)
    # A point on the boundary counts as inside: the perimeter covers it.
    covered[pts] = keep[pts] = shapely.covers(perim[pts], cand[pts])
    polys = np.flatnonzero(~point)
    fast = shapely.contains_properly(perim[polys], cand[polys])
    whole = polys[fast]
    area[whole] = shapely.area(cand[whole])
    keep[whole] = True
    rest = polys[~fast]
    edge = rest[shapely.intersects(perim[rest], cand[rest])]
    keep[edge] = True
    area[edge] = _edge_areas(cand[edge], near_geoms, tp[edge], compiled=compiled)

    q = np.concatenate([wq, tq[keep]])
    p = used[np.concatenate([wp, tp[keep]])]  # the caller's perimeter indices (same order)
    a = np.concatenate([w_area, area[keep]])
    c = np.concatenate([np.zeros(len(wq), dtype=bool), covered[keep]])
    order = np.lexsort((p, q))
    return Overlaps(q[order], p[order], a[order], c[order])


def _prepared_copies(geoms: np.ndarray) -> np.ndarray:
    """The perimeters prepared (GEOS indexes) for one batch: copies, freed with it.

    Preparing the caller's geometries in place would keep the indexes of every perimeter a
    run ever came near (about 0.1 MB for a thousand vertices) as long as the perimeters live —
    a national layer's, in each worker — and threads sharing them would build the same
    indexes at once (GEOS does not allow it). Perimeters the caller prepared are used as they
    are. A copy is exact (WKB) and cheap beside the batch's work.
    """
    out = geoms.copy()
    fresh = ~shapely.is_prepared(out)
    if fresh.any():
        out[fresh] = shapely.from_wkb(shapely.to_wkb(out[fresh]))
        shapely.prepare(out[fresh])
    return out


#: Perimeters whose grids go together to the compiled loop: a batch near many perimeters holds
#: the grids (about 0.4 MB each) of this many at a time, not of all of them.
PERIMETER_GROUP = 64


def near_perimeters(bounds: np.ndarray, perimeter_geoms: np.ndarray) -> np.ndarray:
    """Indices (ascending) of the perimeters whose bounding box meets the extent of ``bounds``.

    Only they can meet a parcel of the batch. NaN boxes (empty parcels) count for nothing.
    """
    bounds = np.asarray(bounds, dtype=float).reshape(-1, 4)
    if len(bounds) == 0:
        return np.zeros(0, dtype=np.intp)
    x0, y0 = np.fmin.reduce(bounds[:, 0]), np.fmin.reduce(bounds[:, 1])
    x1, y1 = np.fmax.reduce(bounds[:, 2]), np.fmax.reduce(bounds[:, 3])
    box = shapely.bounds(np.asarray(perimeter_geoms, dtype=object)).reshape(-1, 4)
    meets = (box[:, 0] <= x1) & (box[:, 2] >= x0) & (box[:, 1] <= y1) & (box[:, 3] >= y0)
    return np.flatnonzero(meets)


def _grouped_pairs(kernels, bounds, mgeom, free):
    """:func:`geo.kernels.grid_pairs` by groups of :data:`PERIMETER_GROUP` perimeters."""
    boxes = shapely.bounds(mgeom)
    parts = []
    for lo in range(0, len(mgeom), PERIMETER_GROUP):
        hi = lo + PERIMETER_GROUP
        grids = perimeter_grids(mgeom[lo:hi])  # threads at once: each builds its share
        wq, wp, tq, tp = kernels.grid_pairs(bounds, boxes[lo:hi], grids, free, GRID_MARGIN)
        parts.append((wq, wp + lo, tq, tp + lo))
    if len(parts) == 1:
        return parts[0]
    return tuple(np.concatenate(arrays) for arrays in zip(*parts, strict=True))


def _grid_pairs(bounds, mgeom, free):
    """:func:`geo.kernels.grid_pairs` in numpy, perimeter by perimeter."""
    minx, miny, maxx, maxy = (np.ascontiguousarray(bounds[:, k]) for k in range(4))
    # Parcels sorted by their west edge: a perimeter looks at a strip of them, plus the wide ones.
    order = np.argsort(minx, kind="stable")
    west = minx[order]
    is_wide = ~(maxx - minx <= _STRIP_M)
    wide = np.flatnonzero(is_wide)
    whole_q, whole_p, test_q, test_p = [], [], [], []
    for j, (bx0, by0, bx1, by1) in enumerate(shapely.bounds(mgeom)):
        strip = order[np.searchsorted(west, bx0 - _STRIP_M) : np.searchsorted(west, bx1, side="right")]
        near = np.concatenate([strip[~is_wide[strip]], wide])  # a wide parcel once, not twice
        cand = near[(minx[near] <= bx1) & (maxx[near] >= bx0) & (miny[near] <= by1) & (maxy[near] >= by0)]
        grid = perimeter_grid(mgeom[j]) if len(cand) else None  # a grid only where it serves
        if grid is None or len(cand) == 0:
            test_q.append(cand)
            test_p.append(np.full(len(cand), j))
            continue
        inside, outside = grid.decide(minx[cand], miny[cand], maxx[cand], maxy[cand])
        inside &= free[cand]
        outside &= free[cand]
        rest = cand[~(inside | outside)]
        whole_q.append(cand[inside])
        whole_p.append(np.full(int(inside.sum()), j))
        test_q.append(rest)
        test_p.append(np.full(len(rest), j))
    empty = np.zeros(0, dtype=np.intp)
    wq = np.concatenate(whole_q) if whole_q else empty
    wp = np.concatenate(whole_p) if whole_p else empty
    tq = np.concatenate(test_q) if test_q else empty
    tp = np.concatenate(test_p) if test_p else empty
    return wq, wp, tq, tp


def _kernels():
    """:mod:`geo.kernels` (the C library, else numba), or None where neither is there."""
    try:
        from geo import kernels  # numba, where the C library is missing: only where it pays
    except ImportError:  # an unusual platform: GEOS and numpy do the work
        return None
    return kernels


#: Parcels wider than this (m) are checked against every perimeter's box, the others by strips.
_STRIP_M = 1000.0


def _edge_areas(
    parcels: np.ndarray, mgeom: np.ndarray, which: np.ndarray, *, compiled: bool | None = None
) -> np.ndarray:
    """Area of each parcel inside perimeter ``mgeom[which]``, for parcels on its boundary."""
    if compiled is None:
        compiled = len(parcels) >= COMPILED_MIN_PAIRS
    kernels = _kernels() if compiled else None
    if kernels is not None:
        return kernels.intersection_areas(parcels, mgeom, which)
    out = np.zeros(len(parcels))
    big = shapely.get_num_coordinates(mgeom) > SUBDIVIDE_ABOVE
    direct = ~big[which]
    out[direct] = _clipped_areas(parcels[direct], mgeom[which[direct]])
    heavy = np.flatnonzero(~direct)
    if len(heavy) == 0:
        return out
    owners, pieces = [], []
    for j in np.unique(which[heavy]):
        parts = _pieces(shapely.to_wkb(mgeom[j]))
        pieces.append(parts)
        owners.append(np.full(len(parts), j))
    piece_geoms, owner = np.concatenate(pieces), np.concatenate(owners)
    a, b = shapely.STRtree(piece_geoms).query(parcels[heavy])
    mine = owner[b] == which[heavy][a]
    a, b = a[mine], b[mine]
    # Sum in piece order, whatever the tree's: the same parcel gets the same bits in any batch.
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    # The pieces tile the perimeter without overlap: their areas add up.
    areas = shapely.area(shapely.intersection(parcels[heavy][a], piece_geoms[b]))
    out[heavy] = np.bincount(a, weights=areas, minlength=len(heavy))
    return out


def _clipped_areas(parcels: np.ndarray, perimeters: np.ndarray) -> np.ndarray:
    """Area of each parcel inside its perimeter, the perimeter first clipped to a box around it.

    Clipping to a rectangle is a linear scan, far cheaper than the overlay of the whole
    perimeter; the box is a metre wider than the parcel, so the intersection is the same. A
    clipped part that is not valid is not used: the whole perimeter is, then.
    """
    bounds = shapely.bounds(parcels) + np.array([-1.0, -1.0, 1.0, 1.0])
    local = np.array(
        [shapely.clip_by_rect(g, *box) for g, box in zip(perimeters, bounds, strict=True)], dtype=object
    )
    bad = ~shapely.is_valid(local)
    local[bad] = perimeters[bad]
    return shapely.area(shapely.intersection(parcels, local))


@functools.lru_cache(maxsize=1024)
def _pieces(wkb: bytes, vertices: int = _PIECE_VERTICES) -> np.ndarray:
    """Cut a perimeter (given as WKB) into pieces of at most ``vertices`` vertices."""
    done, stack = [], [shapely.from_wkb(wkb)]
    while stack:
        geom = stack.pop()
        if shapely.get_num_coordinates(geom) <= vertices:
            done.append(geom)
            continue
        minx, miny, maxx, maxy = geom.bounds
        if maxx - minx >= maxy - miny:
            mid = (minx + maxx) / 2
            halves = (
                shapely.box(minx - 1, miny - 1, mid, maxy + 1),
                shapely.box(mid, miny - 1, maxx + 1, maxy + 1),
            )
        else:
            mid = (miny + maxy) / 2
            halves = (
                shapely.box(minx - 1, miny - 1, maxx + 1, mid),
                shapely.box(minx - 1, mid, maxx + 1, maxy + 1),
            )
        for half in halves:
            parts = shapely.get_parts(shapely.intersection(geom, half))
            stack.extend(parts[(shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 0)])
    out = np.array(done, dtype=object)
    shapely.prepare(out)
    return out


def _verdicts(
    found: Overlaps, area: np.ndarray, tol_m2: float, tol_pct: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Status code, share and area inside (m²) of each pair in ``found``; ``area``: the parcels' (m²)."""
    inter = found.area
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(area > 0, inter / area, 0.0)
    share = np.clip(share, 0.0, 1.0)
    inter = np.minimum(inter, area)
    noise = np.maximum(tol_m2, tol_pct / 100.0 * area)
    status = np.full(len(inter), _STRADDLING, dtype=np.int8)
    status[inter <= noise] = _OUTSIDE
    status[(area - inter) <= noise] = _INSIDE
    tiny = area <= noise  # tiny parcels: the majority decides
    status[tiny & (share <= 0.5)] = _OUTSIDE
    status[tiny & (share > 0.5)] = _INSIDE
    status[found.covered] = _INSIDE  # points: covered or not, nothing in between
    share[found.covered] = 1.0
    return status, share, inter


def sparse_verdicts(
    found: Overlaps, pair_area: np.ndarray, tol_m2: float, tol_pct: float
) -> tuple[np.ndarray, ...]:
    """The inside and straddling pairs of ``found``, ordered by parcel then perimeter.

    Every pair not listed is outside with nothing inside (the dense result agrees).
    ``pair_area``: the area of the parcel of each pair (m²).

    Returns
    -------
    (parcel, perimeter, status code, share, area inside m², parcel area m²)
        Status codes index :data:`STATUSES`.
    """
    status, share, inter = _verdicts(found, pair_area, tol_m2, tol_pct)
    keep = status != _OUTSIDE
    q, p = found.parcel[keep], found.perimeter[keep]
    # overlaps() gives its pairs in this order already: sorted again only when they are not.
    ordered = bool(np.all((q[1:] > q[:-1]) | ((q[1:] == q[:-1]) & (p[1:] > p[:-1]))))
    order = slice(None) if ordered else np.lexsort((p, q))
    rest = (status[keep][order], share[keep][order], inter[keep][order], pair_area[keep][order])
    return (q[order], p[order], *rest)


def classify_parcels(
    parcels: gpd.GeoDataFrame,
    perimeters: gpd.GeoDataFrame,
    *,
    tolerance_m2: float | None = None,
    tolerance_pct: float | None = None,
    with_distance: bool = True,
    only_intersecting: bool = False,
    id_column: str = "idu",
    compiled: bool | None = None,
    fix: bool = False,
) -> pd.DataFrame:
    """Classify parcels (or points) against perimeters.

    Parameters
    ----------
    parcels : GeoDataFrame
        Polygons (or points) with an ``id_column``, in a metric CRS (metres).
    perimeters : GeoDataFrame
        Perimeters with ``perimeter_id`` (and optionally ``type``, ``nom``), same CRS.
    tolerance_m2, tolerance_pct : float, optional
        Area (m²) or share of the parcel (%) absorbed as digitising noise; defaults
        :data:`geo.settings.tolerance_m2` and :data:`geo.settings.tolerance_pct`.
    with_distance : bool
        Compute ``distance_m`` (metres) from outside parcels to the perimeter.
    only_intersecting : bool
        Return only the pairs whose status is not ``outside`` (for large runs).
    compiled : bool, optional
        How boundary areas are computed: see :func:`overlaps`.
    fix : bool
        Repair invalid parcels near a perimeter with ``make_valid`` and classify them, rather
        than set them aside (:mod:`geo.validity`).

    Returns
    -------
    DataFrame
        One row per parcel × perimeter (:data:`RESULT_COLUMNS`), ordered as the inputs;
        ``share`` in [0, 1]; ``distance_m`` is 0 for inside and straddling parcels. Invalid
        parcels near a perimeter are listed in ``attrs["invalides"]`` (records of
        :data:`geo.validity.INVALID_COLUMNS`, with a warning): set aside (no row) or repaired.

    Raises
    ------
    geo.errors.CRSError
        A layer without CRS, in degrees, or the two layers in different CRSs.
    """
    tol_m2, tol_pct = check_layers(
        parcels, perimeters, tolerance_m2=tolerance_m2, tolerance_pct=tolerance_pct, id_column=id_column
    )
    pgeom, mgeom = parcels.geometry.to_numpy(), perimeters.geometry.to_numpy()
    tracker = validity.Tracker(lambda idx: validity.valid_geoms(pgeom[idx]))
    found = overlaps(pgeom, mgeom, compiled=compiled, valid=tracker)
    return classify_with_invalid(
        parcels,
        perimeters,
        found,
        tracker.invalid,
        fix=fix,
        compiled=compiled,
        tolerance_m2=tol_m2,
        tolerance_pct=tol_pct,
        with_distance=with_distance,
        only_intersecting=only_intersecting,
        id_column=id_column,
    )


def classify_with_invalid(
    parcels, perimeters, found: Overlaps, invalid: np.ndarray, *, fix: bool, compiled: bool | None, **options
) -> pd.DataFrame:
    """:func:`classify_overlaps`, the invalid parcels (indices, whose pairs ``found`` left out)
    set aside or, with ``fix``, repaired and classified — and listed in ``attrs["invalides"]``."""
    if not len(invalid):
        return classify_overlaps(parcels, perimeters, found, **options)
    pgeom = parcels.geometry.to_numpy()
    table = validity.invalid_table(
        parcels[options["id_column"]].to_numpy()[invalid], pgeom[invalid], repaired=fix
    )
    if fix:
        repaired = validity.repair(pgeom[invalid])
        more = overlaps(repaired, perimeters.geometry.to_numpy(), compiled=compiled, valid=False)
        found = merge_overlaps(found, more._replace(parcel=invalid[more.parcel]))
        options["pair_area"] = None  # new pairs: the areas are taken again
        geoms = pgeom.copy()
        geoms[invalid] = repaired
        parcels = parcels.set_geometry(gpd.GeoSeries(geoms, index=parcels.index, crs=parcels.crs))
    result = classify_overlaps(parcels, perimeters, found, **options)
    if not fix and not options["only_intersecting"]:
        m = len(perimeters)
        drop = (invalid[:, None] * m + np.arange(m)).ravel()  # the parcel's rows (parcel-major)
        result = result.drop(index=result.index[drop]).reset_index(drop=True)
    result.attrs["invalides"] = table.to_dict("records")
    first = table.iloc[0]
    done = "réparée(s) (make_valid)" if fix else "écartée(s), sans verdict"
    warnings.warn(
        f"{len(table)} parcelle(s) invalide(s) {done}"
        f" (première : {options['id_column']}={first['idu']}, {first['raison']})",
        OrtWarning,
        stacklevel=3,
    )
    return result


def merge_overlaps(a: Overlaps, b: Overlaps) -> Overlaps:
    """The pairs of ``a`` and ``b`` (of other parcels), ordered by parcel then perimeter."""
    merged = Overlaps(*(np.concatenate(pair) for pair in zip(a, b, strict=True)))
    order = np.lexsort((merged.perimeter, merged.parcel))
    return Overlaps(*(x[order] for x in merged))


def check_layers(
    parcels: gpd.GeoDataFrame,
    perimeters: gpd.GeoDataFrame,
    *,
    tolerance_m2: float | None = None,
    tolerance_pct: float | None = None,
    id_column: str = "idu",
) -> tuple[float, float]:
    """Refuse layers and tolerances the engine cannot use; return the tolerances (m², %).

    Raises
    ------
    geo.errors.CRSError
        A layer without CRS, in degrees, or the two layers in different CRSs.
    geo.errors.InputError
        Tolerances out of range, or a missing id column.
    """
    tol_m2, tol_pct = tolerances(tolerance_m2, tolerance_pct)
    projection.require_same_crs(("parcels", parcels), ("perimeters", perimeters))
    projection.require_metric(parcels, source="parcels")
    for col, layer, name in ((id_column, parcels, "parcels"), ("perimeter_id", perimeters, "perimeters")):
        if col not in layer.columns:
            raise InputError(f"column '{col}' is missing", source=name)
    return tol_m2, tol_pct


def tolerances(tolerance_m2: float | None = None, tolerance_pct: float | None = None) -> tuple[float, float]:
    """The tolerances (m², %) to use, the settings' by default; refused out of range."""
    tol_m2 = settings.tolerance_m2 if tolerance_m2 is None else float(tolerance_m2)
    tol_pct = settings.tolerance_pct if tolerance_pct is None else float(tolerance_pct)
    if not (math.isfinite(tol_m2) and tol_m2 >= 0) or not 0 <= tol_pct < 50:  # nan, inf refused
        raise InputError(
            f"tolerances must be ≥ 0 m² and between 0 and 50 % (got {tol_m2} m², {tol_pct} %)",
            fix="e.g. --tolerance-m2 1 --tolerance-pct 0.5",
        )
    return tol_m2, tol_pct


def classify_overlaps(
    parcels: gpd.GeoDataFrame,
    perimeters: gpd.GeoDataFrame,
    found: Overlaps,
    *,
    tolerance_m2: float,
    tolerance_pct: float,
    with_distance: bool = True,
    only_intersecting: bool = False,
    id_column: str = "idu",
    pair_area: np.ndarray | None = None,
) -> pd.DataFrame:
    """Turn the pairs of :func:`overlaps` into the result table of :func:`classify_parcels`.

    For callers that compute the overlaps themselves (in parallel, by slices of parcels:
    see :func:`geo.scale.run.classify_frame`); the layers must have passed :func:`check_layers`.
    With ``only_intersecting``, ``pair_area`` (the area of the parcel of each pair, m², as
    ``shapely.area`` gives it) spares the parcels' geometries: ``parcels`` may then be a plain
    table with the ``id_column``.
    """
    tol_m2, tol_pct = tolerance_m2, tolerance_pct
    mgeom = perimeters.geometry.to_numpy()
    m = len(mgeom)
    if only_intersecting and pair_area is not None:
        pgeom, parcel_area = None, None
    else:
        pgeom = parcels.geometry.to_numpy()
        # Sparse results need the area of the listed parcels only.
        parcel_area = None if only_intersecting else shapely.area(pgeom)
        pair_area = shapely.area(pgeom[found.parcel]) if only_intersecting else parcel_area[found.parcel]
    n = len(parcels)
    if only_intersecting:
        rows, cols, status, share, inter, areas = sparse_verdicts(found, pair_area, tol_m2, tol_pct)
        distance = np.zeros(len(rows)) if with_distance else np.full(len(rows), np.nan)
    else:
        status, share, inter = _verdicts(found, pair_area, tol_m2, tol_pct)
        rows = np.repeat(np.arange(n), m)
        cols = np.tile(np.arange(m), n)
        flat = found.parcel * m + found.perimeter
        dense_status = np.full(n * m, _OUTSIDE, dtype=np.int8)
        dense_share, dense_inter = np.zeros(n * m), np.zeros(n * m)
        dense_status[flat], dense_share[flat], dense_inter[flat] = status, share, inter
        status, share, inter = dense_status, dense_share, dense_inter
        areas = parcel_area[rows]
        distance = np.zeros(n * m)
        outside = np.flatnonzero(status == _OUTSIDE)
        if with_distance and len(outside):
            distance[outside] = shapely.distance(pgeom[rows[outside]], mgeom[cols[outside]])
        elif not with_distance:
            distance[:] = np.nan

    ptype = perimeters["type"] if "type" in perimeters.columns else pd.Series(np.full(m, None))
    pnom = perimeters["nom"] if "nom" in perimeters.columns else perimeters["perimeter_id"]
    result = pd.DataFrame(
        {
            "idu": _take(parcels[id_column], rows),
            "perimeter_id": _take(perimeters["perimeter_id"], cols),
            "perimeter_type": _take(ptype, cols),
            "perimeter_nom": _take(pnom, cols),
            "status": _status_column(status),
            "share": share,
            "area_inside_m2": inter,
            "parcel_area_m2": areas,
            "distance_m": distance,
        }
    )
    result.attrs.update(perimeters.attrs)
    result.attrs["tolerance_m2"] = tol_m2
    result.attrs["tolerance_pct"] = tol_pct
    return result


def _status_column(status: np.ndarray):
    """The names of status codes, taken from the three names as pandas stores them (no string
    made per row); an empty column as pandas makes it of no names (object)."""
    if len(status) == 0:
        return _STATUS_NAMES[status]
    return pd.Series(STATUSES).array.take(status.astype(np.intp))


def _take(values: pd.Series, idx: np.ndarray):
    """``values`` at positions ``idx``; text stored by Arrow stays there (no Python strings)."""
    out = values.take(idx).reset_index(drop=True)
    return out.to_numpy() if out.dtype == object else out


def summarise(result: pd.DataFrame) -> pd.DataFrame:
    """Count parcels per perimeter and status, with the area inside (m²).

    Returns
    -------
    DataFrame
        One row per perimeter: ``perimeter_id``, ``perimeter_nom``, counts of ``inside``,
        ``straddling``, ``outside`` and ``area_inside_m2``.
    """
    counts = result.pivot_table(
        index=["perimeter_id", "perimeter_nom"], columns="status", values="idu", aggfunc="count", fill_value=0
    ).reindex(columns=list(STATUSES), fill_value=0)
    area = result.groupby(["perimeter_id", "perimeter_nom"])["area_inside_m2"].sum()
    out = counts.join(area).reset_index()
    out.columns.name = None
    order = {pid: i for i, pid in enumerate(dict.fromkeys(result["perimeter_id"]))}
    return out.sort_values("perimeter_id", key=lambda s: s.map(order)).reset_index(drop=True)


def parcels_in(result: pd.DataFrame, perimeter: str, *, include_straddling: bool = True) -> pd.DataFrame:
    """The rows of ``result`` for one perimeter (by id or name) that are inside or straddling."""
    match = result[
        (result["perimeter_id"] == perimeter)
        | (result["perimeter_nom"].str.casefold() == perimeter.casefold())
    ]
    if match.empty:
        known = ", ".join(
            f"{i} ({n})"
            for i, n in dict.fromkeys(zip(result["perimeter_id"], result["perimeter_nom"], strict=True))
        )
        raise InputError(f"unknown perimeter or sector '{perimeter}'", fix=f"use one of: {known}")
    wanted = (INSIDE, STRADDLING) if include_straddling else (INSIDE,)
    return match[match["status"].isin(wanted)].reset_index(drop=True)
