"""The first in-memory call of issue 26, this checkout against another, interleaved.

    python bench/bench_first.py DATA --against /path/to/main --rounds 5

``DATA`` is a folder of ``bench/bench_fresh.py`` (``parcels.parquet``, ``perimeters.parquet``).
Each round starts one fresh process per checkout (the order alternates), which loads the data
untimed as GeoDataFrames and times what ``bench_fresh.py``'s ``ort-first`` child times —
``from geo.scale.run import classify_frame`` and ``classify_frame(parcels, perimeters,
workers=2)`` — then a second, warm call. The other checkout runs with its folder first on
``PYTHONPATH`` (give its own interpreter with ``--against-python`` when its build differs).
Then, in this process, the perimeter grids of ``perimeters.parquet`` built by both checkouts'
``geo/grid.py`` (each grid from its WKB, prepared, as the cache builds it), interleaved too.
The load average is printed with every round.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = """
import json, os, sys, time
import geopandas as gpd
data = sys.argv[1]
parcels = gpd.read_parquet(data + "/parcels.parquet", columns=["idu", "geometry"])
perims = gpd.read_parquet(data + "/perimeters.parquet")
t = time.perf_counter()
from geo.scale.run import classify_frame
first = classify_frame(parcels, perims, workers=2)
seconds = time.perf_counter() - t
t = time.perf_counter()
classify_frame(parcels, perims, workers=2)
warm = time.perf_counter() - t
print(json.dumps({"first": seconds, "warm": warm, "rows": len(first)}))
sys.stdout.flush()
os._exit(0)
"""


def _fresh(python: str, root: Path, data: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(root))
    out = subprocess.run(
        [python, "-c", CHILD, str(data)], env=env, cwd=root, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _grid_module(root: Path):
    spec = importlib.util.spec_from_file_location(f"grid_{abs(hash(root))}", root / "geo" / "grid.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _grids(module, wkbs) -> float:
    import shapely

    t = time.perf_counter()
    for wkb in wkbs:
        geom = shapely.from_wkb(wkb)
        shapely.prepare(geom)
        module.PerimeterGrid(geom)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--against", type=Path, required=True, help="another checkout (e.g. a worktree of main)")
    ap.add_argument("--against-python", default=sys.executable)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    here = HERE.parent
    runs: dict[str, dict[str, list]] = {"this": {}, "against": {}}
    for k in range(args.rounds):
        order = [("this", sys.executable, here), ("against", args.against_python, args.against)]
        for name, python, root in order if k % 2 == 0 else order[::-1]:
            got = _fresh(python, root, args.data)
            for key, value in got.items():
                runs[name].setdefault(key, []).append(value)
        mine, other = runs["this"], runs["against"]
        print(
            f"round {k + 1}: this first {mine['first'][-1]:.3f} s warm {mine['warm'][-1]:.3f} s"
            f" | against first {other['first'][-1]:.3f} s warm {other['warm'][-1]:.3f} s"
            f" | load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    for key in ("first", "warm"):
        a, b = statistics.median(runs["this"][key]), statistics.median(runs["against"][key])
        print(f"median {key}: this {a:.3f} s, against {b:.3f} s, ratio {b / a:.2f}x")
    if runs["this"]["rows"] != runs["against"]["rows"]:
        print(f"rows differ: {runs['this']['rows']} vs {runs['against']['rows']}")

    import geopandas as gpd
    import shapely

    wkbs = shapely.to_wkb(gpd.read_parquet(args.data / "perimeters.parquet").geometry.to_numpy())
    mods = {"this": _grid_module(here), "against": _grid_module(args.against)}
    times: dict[str, list] = {"this": [], "against": []}
    for k in range(max(args.rounds, 5)):
        for name in ("this", "against") if k % 2 == 0 else ("against", "this"):
            times[name].append(_grids(mods[name], wkbs))
    a, b = statistics.median(times["this"]), statistics.median(times["against"])
    print(
        f"grids of {len(wkbs)} perimeters: this {a * 1e3:.1f} ms, against {b * 1e3:.1f} ms,"
        f" ratio {b / a:.2f}x | load {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
