"""The engine's inner loops in C: ``ort_kernels.c``, a plain shared library loaded through ctypes.

What lives here: the C source of the loops of :mod:`geo.kernels` (boundary areas, grid
decisions, ring validity) and of :mod:`geo.scale.wkb` (WKB boxes and areas), the library built
from it at install (``_ort_kernels`` + the interpreter's extension suffix, by ``setup.py``,
editable installs included), and the functions below that call it. They take and return the
same arrays as the numba reference (:mod:`geo.kernels_numba`, :mod:`geo.scale.wkb_numba`),
and give the same bits: the same operations in the same order, built without fast-math nor
fused multiply-adds.

Why: a fresh process loads the library in about a millisecond, where numba costs about half
a second (importing numba, then loading its compiled code) and holds the GIL meanwhile. ctypes
releases the GIL during each call, so the engine's threads run the loops in parallel.

:func:`library` is None when the library is not there (installed without a C compiler), does
not load, is older than its source (an editable checkout changed since it was built: rebuild
with ``pip install -e .``), or when ``ORT_NATIVE=0`` (or ``non``, ``off``…, as the switches of
:mod:`geo.settings`): the engine then runs the numba loops. Imports numpy and ctypes only
(never numba).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.machinery
import os
from pathlib import Path

import numpy as np

from geo import settings

#: The library's file name without the suffix (``setup.py`` builds ``geo.native._ort_kernels``).
NAME = "_ort_kernels"
#: The interface version (``ort_abi_version`` in ort_kernels.c): another one is not loaded.
ABI = 1
_HERE = Path(__file__).resolve().parent

_P, _I, _D = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double
_SIGNATURES = {
    "ort_abi_version": ([], _I),
    "ort_pair_areas": ([_I] + [_P] * 10 + [_I] + [_P] * 6, _I),
    "ort_decide": ([_I] + [_P] * 6 + [_I] + [_P] * 10 + [_D, _P, _I, _P, _P, _P], _I),
    "ort_rings_simple": ([_P, _P, _I, _P], _I),
    "ort_scan": ([_P, _P, _P, _I, _P, _P, _P], None),
    "ort_rings_valid": ([_P, _P, _P, _I, _P], _I),
}


def _wanted() -> bool:
    """``ORT_NATIVE``, read as :mod:`geo.settings` reads its switches (unset: on; ``0``, ``non``,
    ``off``…: numba's loops); a value it does not accept is refused with the fix."""
    raw = os.environ.get("ORT_NATIVE")
    if raw is None:
        return True
    try:
        return settings.parse_bool(raw)
    except ValueError as err:
        raise settings.SettingsError(
            f"variable d'environnement ORT_NATIVE = {raw!r} refusée",
            fix=f"{err} ; corrigez-la ou supprimez-la (unset ORT_NATIVE)",
        ) from None


def path() -> Path | None:
    """The built library, if there is one."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        found = _HERE / f"{NAME}{suffix}"
        if found.is_file():
            return found
    return None


@functools.cache
def library() -> ctypes.CDLL | None:
    """The loaded library, or None (see the module's docstring)."""
    if not _wanted():
        return None
    found = path()
    if found is None:
        return None
    source = _HERE / "ort_kernels.c"
    if source.is_file() and source.stat().st_mtime > found.stat().st_mtime:
        return None  # built from an older source (an editable checkout changed since)
    try:
        lib = ctypes.CDLL(str(found))
        for name, (args, result) in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = args, result
    except (OSError, AttributeError):
        return None
    return lib if lib.ort_abi_version() == ABI else None


def _lib() -> ctypes.CDLL:
    lib = library()
    if lib is None:
        raise RuntimeError("la bibliothèque native du moteur (geo/native) n'est pas chargée")
    return lib


def _f(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def _i(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int64)


def _b(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.bool_)


def _at(a: np.ndarray) -> int:
    return a.ctypes.data


def _check(status: int) -> None:
    if status != 0:
        raise MemoryError("mémoire insuffisante pour les calculs du moteur (geo/native)")


# --- the interface shared with the numba loops --------------------------------------------------


class Arrays(tuple):
    """Arrays passed to the loops together, their addresses taken once (a tuple: numba's loops
    take them unpacked). The rings of a perimeter are kept between batches: each call then
    converts nothing and reads no address again."""


#: The element type of each array of a parcel layer's rings and of a perimeter's rings.
_PARCEL_TYPES = (np.float64, np.float64, np.int64, np.int64, np.int64, np.float64)
_PERIMETER_TYPES = (np.float64, np.float64, np.int64, np.float64, np.float64, np.int64, np.int64, np.float64)


def _addresses(arrays: Arrays, types) -> tuple:
    found = arrays.__dict__.get("native")
    if found is None:
        held = [np.ascontiguousarray(a, dtype=t) for a, t in zip(arrays, types, strict=True)]
        # The converted arrays live as long as their addresses; two threads here at once keep
        # the first one's (setdefault: one step under the GIL).
        found = arrays.__dict__.setdefault("native", (held, tuple(_at(a) for a in held)))
    return found[1]


def pair_areas(which, parcels: Arrays, perimeter: Arrays) -> np.ndarray:
    """Area of parcel ``which[k]`` inside the perimeter, for each k
    (:func:`geo.kernels_numba._pair_areas`): ``parcels`` are the rings of the parcels (x, y,
    ring starts, first and last ring of each parcel, ring weights), ``perimeter`` the rings of
    the perimeter (x, y, starts, weights, ring boxes, each ring's runs, the runs' starts and
    boxes)."""
    which = _i(which)
    a = _addresses(parcels, _PARCEL_TYPES)
    b = _addresses(perimeter, _PERIMETER_TYPES)
    out = np.zeros(len(which))
    rings = len(perimeter[3])
    _check(_lib().ort_pair_areas(len(out), _at(which), *a, *b[:3], rings, *b[3:], _at(out)))
    return out


def decide(
    minx, miny, maxx, maxy, extent, free, box, grid, x0, y0, size, nx, ny, at, inside, outside, margin
):
    """Pairs (parcel, perimeter) the grids decide inside, and those left to the exact tests
    (:func:`geo.kernels_numba._decide`): whole parcels, whole perimeters, tested parcels,
    tested perimeters."""
    cols = [_f(minx), _f(miny), _f(maxx), _f(maxy), _f(extent), _b(free)]
    box = _f(box)
    grids = [_b(grid), _f(x0), _f(y0), _f(size), _i(nx), _i(ny), _i(at)]
    tables = [np.ascontiguousarray(inside, dtype=np.int32), np.ascontiguousarray(outside, dtype=np.int32)]
    n, m = len(cols[0]), len(box)
    state = np.zeros(2, dtype=np.int64)
    cap = max(16, n)
    parts = []
    lib = _lib()
    while True:  # the pairs found so far, and room for as many again, until all are found
        pq, pp, whole = np.empty(cap, np.intp), np.empty(cap, np.intp), np.empty(cap, np.bool_)
        k = lib.ort_decide(
            n, *map(_at, cols), m, _at(box), *map(_at, grids), *map(_at, tables), float(margin),
            _at(state), cap, _at(pq), _at(pp), _at(whole),
        )  # fmt: skip
        parts.append((pq[:k], pp[:k], whole[:k]))
        if state[0] >= m:
            break
        cap = sum(len(p[0]) for p in parts)
    if len(parts) == 1:
        pq, pp, whole = parts[0]
    else:
        pq, pp, whole = (np.concatenate([p[c] for p in parts]) for c in range(3))
    return pq[whole], pp[whole], pq[~whole], pp[~whole]


def rings_simple(v, starts, out) -> None:
    """Whether each ring ``v[2 starts[r] : 2 starts[r + 1]]`` (x, y interleaved) is certainly a
    valid polygon shell, into the bool array ``out`` (:func:`geo.kernels_numba.ring_is_simple`)."""
    v, starts = _f(v), _i(starts)
    _check(_lib().ort_rings_simple(_at(v), _at(starts), len(out), _at(out)))


def scan(data, offsets, valid, simple, bounds, area) -> None:
    """The one-ring polygons of a WKB column (bytes ``data``, int32 ``offsets``, ``valid`` one
    bool per row or None): ``simple`` rows, their ``bounds`` (n, 4) and ``area``, in place
    (:func:`geo.scale.wkb_numba._scan`)."""
    offsets = np.ascontiguousarray(offsets, dtype=np.int32)
    valid = None if valid is None else _b(valid)
    _lib().ort_scan(
        _at(data), _at(offsets), None if valid is None else _at(valid), len(simple),
        _at(simple), _at(bounds), _at(area),
    )  # fmt: skip


def rings_valid(data, offsets, rows, out) -> None:
    """Whether the ring of each row in ``rows`` (rows :func:`scan` found simple) is certainly a
    valid polygon, into the bool array ``out`` (:func:`geo.scale.wkb_numba._rings_valid`)."""
    offsets, rows = np.ascontiguousarray(offsets, dtype=np.int32), _i(rows)
    _check(_lib().ort_rings_valid(_at(data), _at(offsets), _at(rows), len(out), _at(out)))
