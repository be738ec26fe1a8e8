"""Parcels' validity at scale: a cheap ring test, and invalid parcels set aside or repaired.

An invalid parcel — a ring that crosses or touches itself (a bow tie), a spike, a hole outside
its shell — has no meaningful area: GEOS gives the two lobes of a bow tie opposite signs, so a
bow tie well inside a sector would have an area near zero and be called outside, and one on a
perimeter line makes the intersection fail. The engine therefore never classifies an invalid
parcel as it is. Each one near a perimeter (its box meets a perimeter's box and the grid does
not put it outside) is either:

- set aside (``traitement`` "écartée"): no verdict, listed with the reason, the result says
  it is incomplete; or
- with ``fix``, repaired with ``make_valid`` and classified, and listed as "réparée".

An invalid parcel far from every perimeter is outside whatever its repair (``make_valid``
keeps it within its own bounding box), so it needs no test. The test is cheap where it can
be: a one-ring polygon — nearly every parcel — is checked by :func:`geo.kernels.ring_is_simple`
on its coordinates (compiled), and only a ring it cannot vouch for, or a parcel with holes or
parts, goes to GEOS (``shapely.is_valid``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import shapely

from geo.errors import geometry_problem

if TYPE_CHECKING:
    import pandas as pd

#: Columns of the table of invalid parcels (``invalides.parquet`` beside the verdicts, or
#: ``result.attrs["invalides"]`` in memory).
INVALID_COLUMNS = ["idu", "raison", "traitement"]
#: ``traitement`` of an invalid parcel left without verdict.
SET_ASIDE = "écartée"
#: ``traitement`` of an invalid parcel repaired with ``make_valid`` and classified.
REPAIRED = "réparée (make_valid)"


def _kernels():
    try:
        from geo import kernels  # the C library, else numba
    except ImportError:  # an unusual platform: GEOS decides every parcel
        return None
    return kernels


#: Below this many one-ring polygons GEOS tests them all: where the C library is missing, loading
#: numba's code (about a second per process) costs more than it saves, and ``ort check`` of a few
#: parcels stays light.
COMPILED_MIN_RINGS = 5_000


def valid_geoms(geoms: np.ndarray) -> np.ndarray:
    """Whether each geometry is valid (as ``shapely.is_valid`` says), cheaply.

    One-ring polygons are tested on their coordinates by :func:`geo.kernels.ring_is_simple`
    (from :data:`COMPILED_MIN_RINGS` of them); GEOS decides the rings it cannot vouch for and
    every other polygon. Points are valid; missing geometries are not.
    """
    geoms = np.asarray(geoms, dtype=object)
    out = np.zeros(len(geoms), dtype=bool)
    if len(geoms) == 0:
        return out
    kind = shapely.get_type_id(geoms)
    out[kind == 0] = True
    ring = (kind == 3) & (shapely.get_num_interior_rings(geoms) == 0)
    kernels = _kernels() if np.count_nonzero(ring) >= COMPILED_MIN_RINGS else None
    if kernels is not None:
        which = np.flatnonzero(ring)
        xy, owner = shapely.get_coordinates(geoms[which], return_index=True)
        starts = np.zeros(len(which) + 1, dtype=np.int64)
        np.cumsum(np.bincount(owner, minlength=len(which)), out=starts[1:])
        out[which] = kernels.rings_simple(xy, starts)
    rest = np.flatnonzero((kind != 0) & ~out)  # GEOS decides what the ring test cannot
    if len(rest):
        out[rest] = shapely.is_valid(geoms[rest])
    return out


class Tracker:
    """The ``valid`` callback of :func:`geo.classify.overlaps_of_bounds`, remembering the
    parcels it found invalid (``invalid``: sorted indices)."""

    def __init__(self, check: Callable[[np.ndarray], np.ndarray]) -> None:
        self.check = check
        self.found: list[np.ndarray] = []

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        ok = np.asarray(self.check(idx), dtype=bool)
        if not ok.all():
            self.found.append(np.asarray(idx)[~ok])
        return ok

    @property
    def invalid(self) -> np.ndarray:
        if not self.found:
            return np.zeros(0, dtype=np.intp)
        return np.unique(np.concatenate(self.found))


def reasons(geoms: np.ndarray) -> list[str]:
    """Why each (invalid) geometry is invalid, in French."""
    geoms = np.asarray(geoms, dtype=object)
    texts = shapely.is_valid_reason(geoms)
    return ["sans géométrie" if g is None else geometry_problem(t) for g, t in zip(geoms, texts, strict=True)]


def invalid_table(ids, geoms: np.ndarray, *, repaired: bool) -> pd.DataFrame:
    """The table of invalid parcels (:data:`INVALID_COLUMNS`): id, reason, what was done."""
    import pandas as pd  # (only when there are some)

    ids = np.asarray(ids, dtype=object)
    return pd.DataFrame(
        {
            "idu": ids,
            "raison": reasons(geoms),
            "traitement": np.full(len(ids), REPAIRED if repaired else SET_ASIDE, dtype=object),
        },
        columns=INVALID_COLUMNS,
    )


def repair(geoms: np.ndarray) -> np.ndarray:
    """``make_valid`` keeping only the polygonal part (a bow tie: its two triangles)."""
    fixed = shapely.make_valid(np.asarray(geoms, dtype=object))
    kind = shapely.get_type_id(fixed)
    mixed = np.flatnonzero(kind == 7)  # a collection: lines or points beside the polygons
    for i in mixed:
        parts = shapely.get_parts(fixed[i])
        polys = parts[np.isin(shapely.get_type_id(parts), (3, 6))]
        fixed[i] = shapely.union_all(polys) if len(polys) else shapely.Polygon()
    return fixed
