"""Which loops a process runs (C or numba), loading them, and building numba's shipped code.

The engine's loops run in C (:mod:`geo.native`) when its library loads, else in numba
(:mod:`geo.kernels_numba`, :mod:`geo.scale.wkb_numba`): :func:`implementation` says which.
:func:`compile_all` loads them (the C library: nothing to do; numba: its compiled code, or
compiling it); :func:`compiles` checks that a process compiled nothing — trivially on C, where
numba is never imported.

``ORT_BUILD_COMPILED=1 python -m geo.scale.compiled`` (run by ``setup.py`` when the wheel is
built) compiles every numba loop, for the signatures the engine calls, into
``geo/scale/numba_cache/`` (:data:`geo.scale.jit.SHIPPED`): the fallback without the C
library starts without compiling.
"""

from __future__ import annotations

import os
import sys

from geo import kernels
from geo.scale import wkb


def implementation() -> str:
    """``"native"`` (the C library) or ``"numba"``: the loops this process runs."""
    return kernels.IMPLEMENTATION


def _exercise(kernel_loops, wkb_loops) -> None:
    """Call every loop once, for the signatures the engine calls."""
    import numpy as np
    import pyarrow as pa
    import shapely

    kernels._warm(kernel_loops)
    square, bow = shapely.box(0.0, 0.0, 1.0, 1.0), shapely.from_wkt("POLYGON ((0 0, 2 2, 2 0, 0 2, 0 0))")
    column = pa.array([shapely.to_wkb(square), shapely.to_wkb(bow)], type=pa.binary())
    wkb._rings_valid(wkb_loops, column, np.flatnonzero(wkb._scan(wkb_loops, column).simple))
    # The validity test's loop (geo.validity), on a square and a bow tie.
    xy = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [0, 0], [2, 2], [2, 0], [0, 2], [0, 0]])
    kernels._rings_simple(kernel_loops, xy, np.array([0, 4, 9]))


def compile_all() -> None:
    """Load the loops this process runs: the C library (already loaded), or numba's compiled
    code (shipped in the wheel, or numba's cache, or compiling it). The C library was loaded
    with :mod:`geo.kernels`: nothing more to do (nor to hold Python's lock for, in the thread
    that ``ort classify`` starts beside its imports)."""
    if kernels.IMPLEMENTATION != "native":
        _exercise(kernels.LOOPS, wkb.LOOPS)


def compile_numba() -> None:
    """Compile (or load) every numba loop, whichever loops the process runs (the build, the
    tests). Needs numba, numpy, shapely and pyarrow only (the wheel's build requirements)."""
    from geo import kernels_numba
    from geo.scale import wkb_numba

    _exercise(kernels_numba, wkb_numba)


def dispatchers() -> list:
    """Every numba function of the engine's loops (imports numba)."""
    import numba.core.registry

    from geo import kernels_numba
    from geo.scale import wkb_numba

    found = {
        id(obj): obj
        for module in (kernels_numba, wkb_numba)
        for obj in vars(module).values()
        if isinstance(obj, numba.core.registry.CPUDispatcher)
    }
    return list(found.values())


def compiled_signatures() -> dict[str, list]:
    """Each numba function's signatures loaded or compiled in this process."""
    if "geo.kernels_numba" not in sys.modules:
        return {}  # numba's loops never loaded here
    return {d.py_func.__qualname__: list(d.signatures) for d in dispatchers()}


def compiles() -> dict[str, int]:
    """How many signatures each numba function had to compile here (0 everywhere: all loaded;
    empty: numba's loops were not even loaded, the process runs the C library)."""
    if "geo.kernels_numba" not in sys.modules:
        return {}
    return {d.py_func.__qualname__: sum(d.stats.cache_misses.values()) for d in dispatchers()}


def main(argv: list[str]) -> int:
    """``python -m geo.scale.compiled``: build the shipped code (``ORT_BUILD_COMPILED=1``)."""
    if os.environ.get("ORT_BUILD_COMPILED") != "1":
        print("usage: ORT_BUILD_COMPILED=1 python -m geo.scale.compiled", file=sys.stderr)
        return 2
    from geo.scale.jit import SHIPPED

    SHIPPED.mkdir(exist_ok=True)
    compile_numba()
    built = sorted(p.name for p in SHIPPED.iterdir())
    print(f"{len(built)} fichiers de code compilé dans {SHIPPED}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
