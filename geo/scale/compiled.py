"""Building the compiled code shipped in the wheel, and checking that a process compiled nothing.

``ORT_BUILD_COMPILED=1 python -m geo.scale.compiled`` (run by ``setup.py`` when the wheel is
built) compiles every loop of :mod:`geo.kernels` and :mod:`geo.scale.wkb`, for the signatures
the engine calls, into ``geo/scale/numba_cache/`` (:data:`geo.scale.jit.SHIPPED`).
"""

from __future__ import annotations

import sys

import numba.core.registry

from geo import kernels
from geo.scale import wkb
from geo.scale.jit import _BUILDING, SHIPPED


def dispatchers() -> list:
    """Every compiled function of the engine (for the build and the tests)."""
    return [
        obj
        for module in (kernels, wkb)
        for obj in vars(module).values()
        if isinstance(obj, numba.core.registry.CPUDispatcher)
    ]


def compile_all() -> None:
    """Compile (or load) every loop for the signatures the engine calls.

    Needs numba, numpy, shapely and pyarrow only (the wheel's build requirements).
    """
    import numpy as np
    import pyarrow as pa
    import shapely

    kernels.warm()
    square, bow = shapely.box(0.0, 0.0, 1.0, 1.0), shapely.from_wkt("POLYGON ((0 0, 2 2, 2 0, 0 2, 0 0))")
    column = pa.array([shapely.to_wkb(square), shapely.to_wkb(bow)], type=pa.binary())
    wkb.rings_valid(column, np.flatnonzero(wkb.scan(column).simple))
    # The validity test's loop (geo.validity), on a square and a bow tie.
    xy = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [0, 0], [2, 2], [2, 0], [0, 2], [0, 0]])
    kernels.rings_simple(xy, np.array([0, 4, 9]))


def compiled_signatures() -> dict[str, list]:
    """Each compiled function's signatures loaded or compiled in this process."""
    return {d.py_func.__qualname__: list(d.signatures) for d in dispatchers()}


def compiles() -> dict[str, int]:
    """How many signatures each function had to compile here (0 everywhere: all loaded)."""
    return {d.py_func.__qualname__: sum(d.stats.cache_misses.values()) for d in dispatchers()}


def main(argv: list[str]) -> int:
    """``python -m geo.scale.compiled``: build the shipped code (``ORT_BUILD_COMPILED=1``)."""
    if not _BUILDING:
        print("usage: ORT_BUILD_COMPILED=1 python -m geo.scale.compiled", file=sys.stderr)
        return 2
    SHIPPED.mkdir(exist_ok=True)
    compile_all()
    built = sorted(p.name for p in SHIPPED.iterdir())
    print(f"{len(built)} fichiers de code compilé dans {SHIPPED}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
