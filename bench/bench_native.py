"""The engine's loops in C (geo.native) against numba's (geo.kernels_numba), alone, on real data.

On a GeoParquet of parcels and a GeoPackage of perimeters (e.g. the 1M tiled Etalab parcels of
``bench_fresh.py``), interleaved, ``--repeat`` rounds:

- ``areas``: the boundary-area loop (``pair_areas``) on every parcel × perimeter pair whose
  boxes meet, on 1 thread then 2 (wall time, and CPU time / wall: about 2 when the two threads
  run at once, i.e. the loop does not hold Python's lock);
- ``scan`` and ``rings_valid``: the WKB loops on every row (CPU time, one thread);
- ``load``: importing :mod:`geo.kernels` in a fresh process with each implementation.

Both give the same bits (checked here on the areas; tests/test_native.py checks everything).
Prints one line per measure with the load average, then medians.

    python bench/bench_native.py /tmp/fresh/data/real-1000000/parcels.parquet \\
        /tmp/fresh/data/real-1000000/perimetres.gpkg --repeat 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def _fresh_import(native: bool) -> float:
    script = (
        "import time, numpy, shapely; t = time.perf_counter(); from geo.scale import compiled, run; "
        "run._warm_compiled(); print(time.perf_counter() - t, compiled.implementation())"
    )
    env = dict(os.environ, ORT_NATIVE="1" if native else "0")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    seconds, which = out.stdout.split()
    assert which == ("native" if native else "numba"), which
    return float(seconds)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("parcels")
    ap.add_argument("perimeters")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    import geopandas as gpd
    import numpy as np
    import pyarrow.parquet as pq
    import shapely

    from geo import kernels, kernels_numba, native
    from geo.scale import wkb, wkb_numba

    if native.library() is None:
        print("the C library is not built here (pip install -e .)", file=sys.stderr)
        return 1
    parcels = gpd.read_parquet(args.parcels, columns=["geometry"]).geometry.to_numpy()
    perims = gpd.read_file(args.perimeters).geometry.to_numpy()
    column = wkb._column(pq.read_table(args.parcels, columns=["geometry"]).column(0))
    which, idx = shapely.STRtree(parcels).query(perims, predicate="intersects")
    tasks = []  # (parcels of one perimeter, their rings, the perimeter's rings), in slices
    for part in np.array_split(np.arange(len(idx)), 16):
        rings = native.Arrays(kernels._rings(parcels[idx[part]], oriented=False))
        for j in np.unique(which[part]):
            tasks.append((np.flatnonzero(which[part] == j), rings, kernels._perimeter_of(perims[j])))
    print(f"{len(parcels)} parcels, {len(perims)} perimeters, {len(idx)} pairs", flush=True)

    def areas(loops, threads: int) -> tuple[float, float, bytes]:
        def one(task):
            sel, rings, perimeter = task
            return loops.pair_areas(sel, rings, perimeter)

        wall, cpu = time.perf_counter(), time.process_time()
        with ThreadPoolExecutor(threads) as pool:
            got = list(pool.map(one, tasks))
        wall = time.perf_counter() - wall
        return wall, (time.process_time() - cpu) / wall, np.concatenate(got).tobytes()

    def wkb_loops(loops) -> tuple[float, float]:
        cpu = time.process_time()
        rows = np.flatnonzero(wkb._scan(loops, column).simple)
        mid = time.process_time()
        wkb._rings_valid(loops, column, rows)
        return mid - cpu, time.process_time() - mid

    implementations = {"C": (native, native), "numba": (kernels_numba, wkb_numba)}
    for loops, _ in implementations.values():  # numba: loaded (or compiled) before timing
        areas(loops, 1)
    results: dict[str, list[float]] = {}
    bits = {}
    for r in range(args.repeat):
        for name, (loops, wloops) in (
            implementations.items() if r % 2 == 0 else reversed(implementations.items())
        ):
            for threads in (1, 2):
                wall, ratio, bits[name] = areas(loops, threads)
                results.setdefault(f"areas {name} {threads} thread(s) s", []).append(wall)
                results.setdefault(f"areas {name} {threads} thread(s) cpu/wall", []).append(ratio)
                print(f"round {r + 1} load {_load()} areas {name} threads {threads}: {wall:.3f} s, "
                      f"cpu/wall {ratio:.2f}", flush=True)  # fmt: skip
            scan, valid = wkb_loops(wloops)
            results.setdefault(f"scan {name} cpu s", []).append(scan)
            results.setdefault(f"rings_valid {name} cpu s", []).append(valid)
            load = _fresh_import(name == "C")
            results.setdefault(f"load {name} s", []).append(load)
            print(f"round {r + 1} load {_load()} {name}: scan {scan:.3f} s, rings_valid {valid:.3f} s, "
                  f"fresh import + warm {load:.3f} s", flush=True)  # fmt: skip
    assert bits["C"] == bits["numba"], "the C areas differ from numba's"
    print("medians (areas: same bits in C and numba)")
    for key, values in results.items():
        print(f"  {key}: {statistics.median(values):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
