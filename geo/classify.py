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

The work is vectorised: a spatial index gives the candidate pairs, parcels lying properly
inside a perimeter need no intersection, and only boundary pairs are intersected.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import projection, settings
from geo.errors import InputError

INSIDE, STRADDLING, OUTSIDE = "inside", "straddling", "outside"
STATUSES = (INSIDE, STRADDLING, OUTSIDE)
#: French labels for what users read.
STATUS_LABELS = {INSIDE: "inclus", STRADDLING: "à cheval", OUTSIDE: "hors périmètre"}

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


def classify_parcels(
    parcels: gpd.GeoDataFrame,
    perimeters: gpd.GeoDataFrame,
    *,
    tolerance_m2: float | None = None,
    tolerance_pct: float | None = None,
    with_distance: bool = True,
    only_intersecting: bool = False,
    id_column: str = "idu",
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

    Returns
    -------
    DataFrame
        One row per parcel × perimeter (:data:`RESULT_COLUMNS`), ordered as the inputs;
        ``share`` in [0, 1]; ``distance_m`` is 0 for inside and straddling parcels.

    Raises
    ------
    geo.errors.CRSError
        A layer without CRS, in degrees, or the two layers in different CRSs.
    """
    tol_m2 = settings.tolerance_m2 if tolerance_m2 is None else float(tolerance_m2)
    tol_pct = settings.tolerance_pct if tolerance_pct is None else float(tolerance_pct)
    if tol_m2 < 0 or not 0 <= tol_pct < 50:
        raise InputError(
            f"tolerances must be ≥ 0 m² and between 0 and 50 % (got {tol_m2} m², {tol_pct} %)",
            fix="e.g. --tolerance-m2 1 --tolerance-pct 0.5",
        )
    projection.require_same_crs(("parcels", parcels), ("perimeters", perimeters))
    projection.require_metric(parcels, source="parcels")
    for col, layer, name in ((id_column, parcels, "parcels"), ("perimeter_id", perimeters, "perimeters")):
        if col not in layer.columns:
            raise InputError(f"column '{col}' is missing", source=name)

    pgeom = parcels.geometry.to_numpy()
    mgeom = perimeters.geometry.to_numpy()
    n, m = len(pgeom), len(mgeom)
    is_point = shapely.get_type_id(pgeom) == 0
    parcel_area = shapely.area(pgeom)

    inter = np.zeros((n, m))
    point_inside = np.zeros((n, m), dtype=bool)
    # Candidate pairs from the spatial index: only these can have area in common.
    qi, pi = perimeters.sindex.query(pgeom, predicate="intersects")
    if len(qi):
        shapely.prepare(mgeom)
        pts = is_point[qi]
        # A point on the boundary counts as inside: the perimeter covers it.
        covered = shapely.covers(mgeom[pi[pts]], pgeom[qi[pts]])
        point_inside[qi[pts][covered], pi[pts][covered]] = True
        qi, pi = qi[~pts], pi[~pts]
        fast = shapely.contains_properly(mgeom[pi], pgeom[qi])
        inter[qi[fast], pi[fast]] = parcel_area[qi[fast]]
        qr, pr = qi[~fast], pi[~fast]
        inter[qr, pr] = shapely.area(shapely.intersection(pgeom[qr], mgeom[pr]))

    area_col = parcel_area[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(area_col > 0, inter / area_col, 0.0)
    share = np.clip(share, 0.0, 1.0)
    inter = np.minimum(inter, area_col)
    noise = np.maximum(tol_m2, tol_pct / 100.0 * area_col)
    status = np.full((n, m), STRADDLING, dtype=object)
    status[inter <= noise] = OUTSIDE
    status[(area_col - inter) <= noise] = INSIDE
    status[(area_col <= noise) & (share <= 0.5)] = OUTSIDE  # tiny parcels: majority decides
    status[(area_col <= noise) & (share > 0.5)] = INSIDE
    status[is_point, :] = np.where(point_inside[is_point, :], INSIDE, OUTSIDE)
    share[is_point, :] = point_inside[is_point, :].astype(float)

    distance = np.zeros((n, m))
    outside = status == OUTSIDE
    if with_distance and outside.any():
        oi, oj = np.nonzero(outside)
        distance[oi, oj] = shapely.distance(pgeom[oi], mgeom[oj])
    elif not with_distance:
        distance[:] = np.nan

    ptype = perimeters["type"].to_numpy() if "type" in perimeters.columns else np.full(m, None)
    pnom = (
        perimeters["nom"].to_numpy() if "nom" in perimeters.columns else perimeters["perimeter_id"].to_numpy()
    )
    result = pd.DataFrame(
        {
            "idu": np.repeat(parcels[id_column].to_numpy(), m),
            "perimeter_id": np.tile(perimeters["perimeter_id"].to_numpy(), n),
            "perimeter_type": np.tile(ptype, n),
            "perimeter_nom": np.tile(pnom, n),
            "status": status.ravel(),
            "share": share.ravel(),
            "area_inside_m2": inter.ravel(),
            "parcel_area_m2": np.repeat(parcel_area, m),
            "distance_m": distance.ravel(),
        }
    )
    if only_intersecting:
        result = result[result["status"] != OUTSIDE].reset_index(drop=True)
    result.attrs.update(perimeters.attrs)
    result.attrs["tolerance_m2"] = tol_m2
    result.attrs["tolerance_pct"] = tol_pct
    return result


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
