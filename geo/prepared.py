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
from typing import Any

_lock = threading.Lock()
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
            ref = weakref.ref(frame, lambda _r, fid=fid: _forget(fid, _r))
            slot = (ref, {})
            _by_frame[fid] = slot
        return slot[1].setdefault(full, value)


def _forget(fid: int, ref: weakref.ref) -> None:
    with _lock:
        slot = _by_frame.get(fid)
        if slot is not None and slot[0] is ref:
            del _by_frame[fid]


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
    rows = parcels.iloc[found]
    if len(rows) and not rows[column].isin(wanted).all():  # the layer changed since: scan it
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
