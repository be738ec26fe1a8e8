"""numba's ``njit`` for the engine's loops, their compiled code looked up in the wheel first.

numba compiles a function at its first call (about 12 s for the engine's loops on this
machine) and keeps the result in its cache (``__pycache__`` beside the source, or
``NUMBA_CACHE_DIR``): a new installation paid that at its first ``ort classify``. The wheel now
ships the compiled code: building it (``pip install .``, ``pip wheel .``) runs
``ORT_BUILD_COMPILED=1 python -m geo.scale.compiled`` (``setup.py``), which compiles every
loop of :mod:`geo.kernels` and :mod:`geo.scale.wkb` for the signatures the engine calls, into
``geo/scale/numba_cache/`` inside the package.

A leaf module (numba only): :mod:`geo.kernels` and :mod:`geo.scale.wkb` import it.

At run time each compiled function (:func:`jit`) looks there first, read-only, then in numba's
usual cache, where it writes what it had to compile. numba accepts a shipped entry only when
it matches: same numba version, same source (hash of the file's contents), same bytecode,
same processor (name and features, as LLVM sees it). A wheel built on the machine that
installs it (``pip install .``) matches; a wheel built elsewhere, or a numba upgraded after the
build, falls back to compiling once at first use, as before — never to wrong code.
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager
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


#: numba imports SciPy's BLAS when its CPU target first loads its registries, to decide
#: whether ``np.dot`` on 1-D arrays may call BLAS: about 0.3 s of a fresh ``ort classify``
#: (SciPy, then NumPy's f2py), for loops that never call it. Held while that happens.
_REGISTRIES = threading.RLock()
_BLAS = "scipy.linalg.cython_blas"


@contextmanager
def _without_scipy_blas():
    """numba's registries loaded without importing SciPy (only the first time, in this process).

    numba's ``np.dot``-style inner products then use its own loop instead of BLAS (same
    results); ``np.linalg`` and ``np.dot`` on matrices still import SciPy when a caller compiles
    them. Nothing changes if SciPy's BLAS is already imported or the registries loaded.
    """
    with _REGISTRIES:
        if "numba.np.arraymath" in sys.modules or _BLAS in sys.modules:
            yield
            return
        sys.modules[_BLAS] = None  # an import of it fails at once, its parents not imported
        try:
            yield
        finally:
            if sys.modules.get(_BLAS, 0) is None:
                del sys.modules[_BLAS]


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
        with _without_scipy_blas():
            found = self.shipped.load_overload(sig, target_context)
            if found is None and self.usual is not self.shipped:
                found = self.usual.load_overload(sig, target_context)
        return found

    def save_overload(self, sig, data):
        self.usual.save_overload(sig, data)

    @property
    def cache_path(self):
        return getattr(self.usual, "cache_path", None)

    def flush(self):
        pass


def jit(fn):
    """``numba.njit(nogil=True)``, its compiled code looked up in the wheel first."""
    dispatcher = numba.njit(nogil=True)(fn)
    # What Dispatcher.enable_caching() does (cache=True), with the shipped code looked up first.
    dispatcher._cache = _Cache(fn)
    return dispatcher
