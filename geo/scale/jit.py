"""numba's ``njit`` for the engine's numba loops, their compiled code looked up in the wheel first.

The engine runs its loops in C (:mod:`geo.native`) when that library is built; the numba loops
(:mod:`geo.kernels_numba`, :mod:`geo.scale.wkb_numba`) are the reference and the fallback.

numba compiles a function at its first call (about 12 s for the engine's loops on this
machine) and keeps the result in its cache (``__pycache__`` beside the source, or
``NUMBA_CACHE_DIR``): a new installation paid that at its first ``ort classify``. The wheel now
ships the compiled code: building it (``pip install .``, ``pip wheel .``) runs
``ORT_BUILD_COMPILED=1 python -m geo.scale.compiled`` (``setup.py``), which compiles every
loop of :mod:`geo.kernels_numba` and :mod:`geo.scale.wkb_numba` for the signatures the engine
calls, into ``geo/scale/numba_cache/`` inside the package.

A leaf module (numba only): :mod:`geo.kernels_numba` and :mod:`geo.scale.wkb_numba` import it.

At run time each compiled function (:func:`jit`) looks there first, read-only, then in numba's
usual cache, where it writes what it had to compile; loading compiled code does not load
numba's compiler registries (:func:`_load`: a third of the load in a fresh process). numba
accepts a shipped entry only when it matches: same numba version, same source (hash of the
file's contents), same bytecode, same processor (name and features, as LLVM sees it). A
wheel built on the machine that installs it (``pip install .``) matches; a wheel built
elsewhere, or a numba upgraded after the build, falls back to compiling once at first use,
as before — never to wrong code.
"""

from __future__ import annotations

import os
from pathlib import Path

import numba
import numba.core.registry
from numba.core.caching import CompileResultCacheImpl, FunctionCache, InTreeCacheLocator

#: Where the wheel's compiled code lives (inside the installed package).
SHIPPED = Path(__file__).with_name("numba_cache")
#: Set by the build (``python -m geo.scale.compiled``): compile into :data:`SHIPPED` only.
_BUILDING = os.environ.get("ORT_BUILD_COMPILED") == "1"


class _ShippedLocator(InTreeCacheLocator):
    """numba's in-tree locator, pointed at :data:`SHIPPED`; written only by the build."""

    def __init__(self, py_func, py_file):
        super().__init__(py_func, py_file)
        self._cache_path = str(SHIPPED)

    def ensure_cache_path(self):
        if _BUILDING:
            super().ensure_cache_path()
        elif not SHIPPED.is_dir():
            raise OSError(f"no compiled code shipped in {SHIPPED}")


class _ShippedImpl(CompileResultCacheImpl):
    _locator_classes = [_ShippedLocator]


class _ShippedCache(FunctionCache):
    _impl_class = _ShippedImpl


class _NoCache:
    def load_overload(self, sig, target_context):
        return None

    def save_overload(self, sig, data):
        pass


class _Cache:
    """The shipped code first (read-only), then numba's usual cache (where compiles are saved)."""

    def __init__(self, py_func) -> None:
        try:
            self.shipped = _ShippedCache(py_func)
        except RuntimeError:  # nothing shipped (editable install, or a build without numba)
            self.shipped = _NoCache()
        if _BUILDING:
            self.usual = self.shipped
            return
        try:
            self.usual = FunctionCache(py_func)
        except RuntimeError:  # nowhere writable: compiled in memory at each start, as numba does
            self.usual = _NoCache()

    def load_overload(self, sig, target_context):
        found = _load(self.shipped, sig, target_context)
        if found is None and self.usual is not self.shipped:
            found = _load(self.usual, sig, target_context)
        return found

    def save_overload(self, sig, data):
        self.usual.save_overload(sig, data)

    @property
    def cache_path(self):
        return getattr(self.usual, "cache_path", None)

    def flush(self):
        pass


def _load(cache, sig, target_context):
    """``cache.load_overload``, without loading every registry of numba's CPU target first.

    numba's ``Cache.load_overload`` refreshes the target context: it imports and installs all
    of numba's implementations (numpy, lists, sets, random…, and SciPy's BLAS for ``np.dot``:
    about 0.3 s of a fresh process), which only compiling needs — numba's compiler refreshes
    the context itself before it compiles. Machine code already compiled needs the context
    and numba's runtime (its memory allocator, which that refresh also starts): started here
    instead. (``_load_overload`` is numba's own, as the locator and cache classes above.)
    """
    load = getattr(cache, "_load_overload", None)
    guard = getattr(cache, "_guard_against_spurious_io_errors", None)
    if load is None or guard is None:
        return cache.load_overload(sig, target_context)
    from numba.core.runtime import rtsys

    rtsys.initialize(target_context)
    with guard():
        return load(sig, target_context)
    return None  # an I/O error numba swallowed (Windows): compiled instead


def jit(fn):
    """``numba.njit(nogil=True)``, its compiled code looked up in the wheel first."""
    dispatcher = numba.njit(nogil=True)(fn)
    # What Dispatcher.enable_caching() does (cache=True), with the shipped code looked up first.
    dispatcher._cache = _Cache(fn)
    return dispatcher
