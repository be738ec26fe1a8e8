"""Benchmark: classify all real parcels of a commune against three drawn sectors.

Compares ``geo.classify.classify_parcels`` with a naive baseline in the same run (a plain
``geopandas.overlay`` of every parcel with every sector, then areas), and checks both agree.
Not a test: timings are noisy. Run::

    python3 bench/bench_classify.py [path/to/cadastre-XXXXX-parcelles.json] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import geopandas as gpd
from shapely.geometry import Point, box

from geo.classify import classify_parcels
from geo.sources.cadastre import read_parcels

#: Real open data read in place (never a product default): ORT_SHARED_DATA or ../shared/data.
SHARED_DATA = Path(os.environ.get("ORT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

DEFAULT = SHARED_DATA / "cadastre-etalab-sample/91216-epinay-sur-orge/cadastre-91216-parcelles.json"


def sectors_over(parcels: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    minx, miny, maxx, maxy = parcels.total_bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    return gpd.GeoDataFrame(
        {
            "perimeter_id": ["centre", "est", "nord"],
            "type": ["secteur"] * 3,
            "nom": ["Centre", "Est", "Nord"],
        },
        geometry=[
            Point(cx, cy).buffer(400),
            box(cx + 500, cy - 300, cx + 1100, cy + 300),
            box(cx - 300, cy + 500, cx + 300, cy + 900),
        ],
        crs=parcels.crs,
    )


def naive(parcels: gpd.GeoDataFrame, sectors: gpd.GeoDataFrame):
    pieces = gpd.overlay(
        parcels[["idu", "geometry"]], sectors[["perimeter_id", "geometry"]], how="intersection"
    )
    pieces["a"] = pieces.area
    return pieces.groupby(["idu", "perimeter_id"])["a"].sum()


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("parcels", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    t_read, parcels = timed(lambda: read_parcels(args.parcels), 1)
    sectors = sectors_over(parcels)
    t_ort, result = timed(lambda: classify_parcels(parcels, sectors), args.repeat)
    t_naive, areas = timed(lambda: naive(parcels, sectors), args.repeat)
    inside = result.set_index(["idu", "perimeter_id"])["area_inside_m2"]
    common = areas.index.intersection(inside.index)
    worst = (areas[common] - inside[common]).abs().max()
    print(f"parcels: {len(parcels)} ({args.parcels.name}), sectors: {len(sectors)}")
    print(f"read + normalise + reproject: {t_read:.2f} s")
    print(f"classify_parcels (median of {args.repeat}): {t_ort:.3f} s")
    print(f"naive geopandas.overlay baseline (median of {args.repeat}): {t_naive:.3f} s")
    print(f"speed-up: {t_naive / t_ort:.1f}x; largest area difference: {worst:.4f} m²")
    print(result.groupby(["perimeter_id", "status"]).size().unstack(fill_value=0).to_string())


if __name__ == "__main__":
    main()
