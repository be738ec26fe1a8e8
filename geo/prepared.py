"""Structures derived once from a layer that is only read afterwards: a server's parcels and
perimeters answer every request from them instead of scanning the whole layer again.

A parcel layer is read once (:func:`geo.app.open_territory`) and the perimeters of a date once
(:meth:`geo.app.Territoire.perimeters_at`); each request then asks for a few parcels. Filtering
the whole table (``parcels[parcels["idu"].isin(ids)]``, the sections of a commune, the union of
the sectors…) at each request costs milliseconds that grow with the layer. :func:`derived` keeps
what is computed from a frame for as long as that frame lives (a weak reference: nothing is kept
after it), keyed by the frame's identity, so the CLI and the server share the same code.

The frames given must not be changed in place after a structure was derived from them (the
library's layers never are: ``Territoire`` says so). As a guard, :func:`rows_with_idu` checks the
rows it finds and the number of rows is part of every key.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

# Re-entrant: a frame collected while the lock is held calls _forget in the same thread.
_lock = threading.RLock()
_by_frame: dict[int, tuple[weakref.ref, dict]] = {}


def derived(frame, key: str, compute: Callable[[], Any]) -> Any:
    """``compute()``, kept with ``frame`` under ``key`` for as long as ``frame`` lives.

    Two threads asking at once may both compute it; the first value stored is the one kept.
    """
    fid = id(frame)
    full = (key, len(frame))
    with _lock:
        slot = _by_frame.get(fid)
        if slot is not None and slot[0]() is frame and full in slot[1]:
            return slot[1][full]
    value = compute()
    with _lock:
        slot = _by_frame.get(fid)
        if slot is None or slot[0]() is not frame:
            ref = weakref.ref(frame, lambda _r, fid=fid, forget=_forget: forget(fid, _r))
            slot = (ref, {})
            _by_frame[fid] = slot
        return slot[1].setdefault(full, value)


def _forget(fid: int, ref: weakref.ref, lock=_lock, by_frame=_by_frame) -> None:
    with lock:  # the module's own objects, still there while the interpreter exits
        slot = by_frame.get(fid)
        if slot is not None and slot[0] is ref:
            del by_frame[fid]


def idu_positions(parcels, column: str = "idu") -> dict[str, list[int]]:
    """Each id of ``parcels[column]`` → its row positions (several when the layer repeats it)."""

    def build() -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for k, idu in enumerate(parcels[column].tolist()):
            out.setdefault(idu, []).append(k)
        return out

    return derived(parcels, f"positions:{column}", build)


def rows_with_idu(parcels, ids: Iterable[str], column: str = "idu"):
    """``parcels[parcels[column].isin(ids)]`` (same rows, same order, same index), by the index
    of :func:`idu_positions` rather than a scan of the layer."""
    index = idu_positions(parcels, column)
    wanted = set(ids)
    found = sorted(k for idu in wanted for k in index.get(idu, ()))
    one = len(found) == 1  # a request's one parcel: a slice is the same row, three times quicker
    rows = parcels.iloc[found[0] : found[0] + 1] if one else parcels.iloc[found]
    if not all(idu in wanted for idu in rows[column].tolist()):  # the layer changed since: scan it
        return parcels[parcels[column].isin(list(wanted))]
    return rows


def sections_of(parcels, code_insee: str) -> set:
    """The sections of commune ``code_insee`` in ``parcels`` (``code_insee`` and ``section``
    columns), as ``set(parcels[parcels["code_insee"] == code]["section"])`` gives them."""

    def build() -> dict:
        out: dict = {}
        for code, section in zip(parcels["code_insee"].tolist(), parcels["section"].tolist(), strict=True):
            out.setdefault(code, set()).add(section)
        return out

    return set(derived(parcels, "sections", build).get(code_insee, ()))


# --- a few parcels classified without building tables --------------------------------------

#: Held while GEOS works on geometries shared between threads (a layer's perimeters, prepared
#: once: GEOS builds a prepared geometry's indexes at its first use, and two threads doing so at
#: once crash the process — seen as a server worker dying under load). Shapely releases the GIL
#: in GEOS: without this lock two requests of one process run there together.
GEOMETRY_LOCK = threading.RLock()

#: Above this many parcels, :func:`classify_rows` leaves the work to the table engine.
FEW_PARCELS = 64


class Row(NamedTuple):
    """One parcel × perimeter of :func:`geo.classify.classify_parcels`, as ``itertuples`` gives it."""

    Index: int
    idu: str
    perimeter_id: str
    perimeter_type: str | None
    perimeter_nom: str
    status: str
    share: float
    area_inside_m2: float
    parcel_area_m2: float
    distance_m: float


def _perimeter_columns(perimeters) -> tuple:
    """The geometries, ids, types and names of ``perimeters``, as :func:`classify_overlaps` takes them."""
    m = len(perimeters)
    ids = perimeters["perimeter_id"].tolist()
    types = perimeters["type"].tolist() if "type" in perimeters.columns else [None] * m
    noms = perimeters["nom"].tolist() if "nom" in perimeters.columns else list(ids)
    return perimeters.geometry.to_numpy(), ids, types, noms


def _checked(parcels, perimeters, tolerance_m2, tolerance_pct) -> tuple[float, float]:
    """:func:`geo.classify.check_layers`, its answer kept with ``perimeters`` for parcels of the
    same CRS object (a layer's rows share their layer's): comparing CRSs costs more than a
    request's classification. A refusal is never kept: it is raised again at each call."""
    from geo import classify, settings

    key = (
        "checked",
        tolerance_m2,
        tolerance_pct,
        settings.tolerance_m2,
        settings.tolerance_pct,
        "idu" in parcels,
    )
    crs = parcels.crs
    kept = derived(perimeters, "checked-layers", dict)
    with _lock:
        hit = kept.get(key)
    if hit is not None and hit[0] is crs:
        return hit[1]
    tolerances = classify.check_layers(
        parcels, perimeters, tolerance_m2=tolerance_m2, tolerance_pct=tolerance_pct
    )
    with _lock:
        kept[key] = (crs, tolerances)
    return tolerances


def classify_rows(
    parcels,
    perimeters,
    *,
    tolerance_m2: float | None = None,
    tolerance_pct: float | None = None,
    with_distance: bool = True,
    tolerances: list | None = None,
) -> list[Row] | None:
    """The rows of :func:`geo.classify.classify_parcels` for a few parcels (at most
    :data:`FEW_PARCELS`), by the same kernels (:func:`geo.classify.overlaps` and its verdicts),
    without the tables around them: what a request for one parcel needs.

    Returns None when the table engine must answer: more parcels, or an invalid parcel near a
    perimeter (set aside with a warning there). ``tolerances``, a list, receives the tolerances
    used (m², %).
    """
    import numpy as np
    import shapely

    from geo import classify, validity

    if len(parcels) > FEW_PARCELS:
        return None
    tol_m2, tol_pct = _checked(parcels, perimeters, tolerance_m2, tolerance_pct)
    if tolerances is not None:
        tolerances[:] = [tol_m2, tol_pct]
    mgeom, ids, types, noms = derived(perimeters, "classify-columns", lambda: _perimeter_columns(perimeters))
    pgeom = parcels.geometry.to_numpy()
    tracker = validity.Tracker(lambda idx: validity.valid_geoms(pgeom[idx]))
    with GEOMETRY_LOCK:  # the perimeters' prepared geometries are shared: one thread at a time
        found = classify.overlaps(pgeom, mgeom, valid=tracker)
    if len(tracker.invalid):
        return None
    n, m = len(pgeom), len(mgeom)
    parcel_area = shapely.area(pgeom)
    status, share, inter = classify._verdicts(found, parcel_area[found.parcel], tol_m2, tol_pct)
    rows, cols = np.repeat(np.arange(n), m), np.tile(np.arange(m), n)
    flat = found.parcel * m + found.perimeter
    dense_status = np.full(n * m, classify._OUTSIDE, dtype=np.int8)
    dense_share, dense_inter = np.zeros(n * m), np.zeros(n * m)
    dense_status[flat], dense_share[flat], dense_inter[flat] = status, share, inter
    distance = np.zeros(n * m)
    outside = np.flatnonzero(dense_status == classify._OUTSIDE)
    if with_distance and len(outside):
        with GEOMETRY_LOCK:
            distance[outside] = shapely.distance(pgeom[rows[outside]], mgeom[cols[outside]])
    elif not with_distance:
        distance[:] = np.nan
    idus = parcels["idu"].tolist()
    names, areas = classify._STATUS_NAMES[dense_status], parcel_area.tolist()
    return [
        Row(k, idus[r], ids[c], types[c], noms[c], names[k], s, a, areas[r], d)
        for k, (r, c, s, a, d) in enumerate(
            zip(
                rows.tolist(),
                cols.tolist(),
                dense_share.tolist(),
                dense_inter.tolist(),
                distance.tolist(),
                strict=True,
            )
        )
    ]


def classified(parcels, perimeters, **options) -> list:
    """The rows of :func:`geo.classify.classify_parcels` (``itertuples``): by :func:`classify_rows`
    for a few parcels, else by the table engine."""
    rows = classify_rows(parcels, perimeters, **options)
    if rows is None:
        from geo.classify import classify_parcels

        rows = list(classify_parcels(parcels, perimeters, **options).itertuples())
    return rows


def classify_frame(
    parcels, perimeters, *, tolerance_m2: float | None = None, tolerance_pct: float | None = None
):
    """:func:`geo.classify.classify_parcels` (with distances) for a few parcels, from
    :func:`classify_rows`: the same table, built once from rows; None when the engine must answer."""
    import pandas as pd

    tolerances: list = []
    rows = classify_rows(
        parcels, perimeters, tolerance_m2=tolerance_m2, tolerance_pct=tolerance_pct, tolerances=tolerances
    )
    if rows is None:
        return None
    tol_m2, tol_pct = tolerances
    out = pd.DataFrame.from_records([r[1:] for r in rows], columns=list(Row._fields[1:]))
    out.attrs.update(perimeters.attrs)
    out.attrs["tolerance_m2"], out.attrs["tolerance_pct"] = tol_m2, tol_pct
    return out
