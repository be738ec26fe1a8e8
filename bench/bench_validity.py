"""What the validity test costs at scale (issue 26): the 1M real parcels of bench_scale.py.

The test (:mod:`geo.validity`) runs on every parcel in a pair with a perimeter — decided by
the grid or tested — inside :func:`geo.classify.overlaps_of_bounds`. This script times the
callback itself (``validity.Tracker.__call__``) within a run, and whole runs with it and with
it replaced by "all valid", interleaved: end to end (:func:`geo.scale.run.classify_dataset`,
one worker, so the callback is timed in this process) and in memory
(:func:`geo.scale.run.classify_frame`, both cores). Not a test; figures depend on the load,
printed at the end. Run::

    python3 bench/bench_validity.py --etalab ../shared/data/cadastre-etalab-sample --n 1000000
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--etalab", type=Path, required=True)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    spec = importlib.util.spec_from_file_location("bench_scale", Path(__file__).with_name("bench_scale.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    from geo import validity
    from geo.scale import run as scale

    work = Path(tempfile.mkdtemp(prefix="bench-validity-"))
    parcels = bench.real_parcels(args.n, args.etalab)
    perims = bench.synthetic_perimeters(parcels, 50, seed=0)
    parcels.to_parquet(work / "parcels.parquet", row_group_size=100_000)
    spent = {"s": 0.0, "n": 0}
    real_call = validity.Tracker.__call__

    def timed(self, idx):
        t = time.perf_counter()
        ok = real_call(self, idx)
        spent["s"] += time.perf_counter() - t
        spent["n"] += len(idx)
        return ok

    def skipped(self, idx):
        return np.ones(len(idx), dtype=bool)

    def end_to_end():
        return scale.classify_dataset(
            work / "parcels.parquet", perims, work / "out", workers=1, force=True
        ).rows

    def in_memory():
        return len(scale.classify_frame(parcels, perims))

    for name, job in (("end to end, 1 worker", end_to_end), ("in memory, classify_frame", in_memory)):
        job()  # warm: compiled code, grids
        runs = {"with": [], "without": []}
        for _ in range(args.rounds):
            for mode in runs:
                validity.Tracker.__call__ = timed if mode == "with" else skipped
                spent.update(s=0.0, n=0)
                t = time.perf_counter()
                rows = job()
                runs[mode].append((time.perf_counter() - t, spent["s"], spent["n"], rows))
        validity.Tracker.__call__ = real_call
        w, wo = runs["with"], runs["without"]
        with_s, without_s = [round(r[0], 2) for r in w], [round(r[0], 2) for r in wo]
        inside = [round(r[1], 3) for r in w]
        print(
            f"{name}: runs with the test {with_s} s, without {without_s} s; time in the test {inside} s "
            f"for {w[0][2]} parcels tested of {len(parcels)}; pairs {w[0][3]} = {wo[0][3]}"
        )
    print(f"load average {os.getloadavg()}, {os.cpu_count()} cores")


if __name__ == "__main__":
    gpd.options.io_engine = "pyogrio"
    main()
