"""Benchmark of the maps (not a test): HTML size, first render in chromium, annex time.

Cases: the embedded demo (2.5k parcels, with its sections and buildings), and a ~20k-parcel
commune made of the 4,241 real parcels of Épinay-sur-Orge (91216) repeated 5 times side by
side (other ``prefixe`` values keep the ids unique), with drawn sectors in the middle copy.
The 20k commune is drawn three ways in the same run: without orientation layers (the
baseline), with the default ones (section outlines dissolved from the parcels, section
names, parcel numbers), and with buildings too — one synthetic building per parcel of more
than 150 m² (the parcel shrunk by 3 m, its oriented envelope at 60 %: 5 vertices, about the
count of a commune's buildings; 91216 has no buildings file here). Targets (issues 5 and 15):
at most 3 MB and 2 s of first render for 20k parcels.

First render is ``ORT.renderedAt``: ``performance.now()`` (ms since navigation start) two
animation frames after every layer was added, i.e. once the canvas has painted. Median of
``--runs`` loads, each in a fresh tab of one headless chromium with a temporary profile.

    python3 bench/bench_maps.py [--runs 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely
import shapely.affinity
from shapely.geometry import Point, box

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from geo import settings
from geo.classify import classify_parcels  # noqa: E402
from geo.maps import annex
from geo.maps import page as maps  # noqa: E402
from geo.perimeters import add_ort_union  # noqa: E402

#: Real open data read in place (never a product default): ORT_SHARED_DATA or ../shared/data.
SHARED_DATA = Path(os.environ.get("ORT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def replicated_commune(copies: int = 5) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Épinay-sur-Orge's parcels ``copies`` times side by side, and three sectors in the middle copy."""
    from geo.sources.cadastre import read_parcels

    path = SHARED_DATA / "cadastre-etalab-sample/91216-epinay-sur-orge/cadastre-91216-parcelles.json"
    base = read_parcels(path)
    minx, miny, maxx, maxy = base.total_bounds
    step = maxx - minx + 100
    parts = []
    for k in range(copies):
        part = base.copy()
        part["geometry"] = part.geometry.translate(xoff=(k - copies // 2) * step)
        part["prefixe"] = f"{k:03d}"
        part["idu"] = part["idu"].str[:5] + part["prefixe"] + part["idu"].str[8:]
        parts.append(part)
    parcels = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=base.crs)
    parcels.attrs.update(base.attrs)
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    perims = gpd.GeoDataFrame(
        {
            "perimeter_id": ["centre-ville", "gare", "opah-ru"],
            "type": ["secteur", "secteur", "opah_ru"],
            "nom": ["Centre-ville", "Gare", "OPAH-RU"],
            "centre_ville": [True, False, False],
        },
        geometry=[
            Point(cx, cy).buffer(400),
            box(cx + 500, cy - 300, cx + 1100, cy + 300),
            Point(cx, cy).buffer(250),
        ],
        crs=base.crs,
    )
    perims = add_ort_union(perims)
    perims.attrs.update(version="bench", version_libelle="Banc d'essai", version_date="2024-01-01")
    return parcels, perims


def synthetic_buildings(parcels: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """One building per parcel of more than 150 m²: a 5-vertex rectangle inside it."""
    big = parcels[parcels.area > 150]
    inner = shapely.buffer(big.geometry.to_numpy(), -3.0)
    ok = ~shapely.is_empty(inner)
    env = shapely.oriented_envelope(inner[ok])
    geoms = [shapely.affinity.scale(g, 0.6, 0.6) for g in env]
    return gpd.GeoDataFrame({"type": ["01"] * len(geoms)}, geometry=geoms, crs=parcels.crs)


def demo_case(root: Path) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, str, bool]:
    from geo.app.load import load_parcels as _load_parcels
    from geo.demo.commune import build_demo
    from geo.perimeters import read_convention

    paths = build_demo(data_dir=root / "data" / "demo", perimeters_dir=root / "perimeters" / "demo")
    conv = read_convention(paths.perimeters_dir)
    return (
        _load_parcels(conv, None, None, False),
        conv.perimeters("2024-09-01", in_force_only=True),
        conv.nom,
        True,
    )


def render_times(pages: list[Path], runs: int) -> dict[Path, list[float]]:
    from playwright.sync_api import sync_playwright

    out: dict[Path, list[float]] = {p: [] for p in pages}
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            profile,
            executable_path="/usr/bin/chromium",
            headless=True,
            args=ARGS,
            viewport={"width": 1400, "height": 900},
        )
        requests: list[str] = []
        ctx.on("request", lambda r: requests.append(r.url))
        for page_path in pages:
            for _ in range(runs + 1):  # the first load of each page is reported apart (cold caches)
                tab = ctx.new_page()
                tab.goto(page_path.as_uri())
                tab.wait_for_function("window.ORT && window.ORT.ready === true", timeout=60_000)
                out[page_path].append(tab.evaluate("ORT.renderedAt") / 1000)
                tab.close()
        remote = [u for u in requests if not u.startswith("file://")]
        if remote:
            print(f"!! network requests: {remote[:5]}")
        ctx.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, default=None, help="Keep the HTML and annex files here.")
    args = parser.parse_args()
    settings.progress = False
    tmp = tempfile.TemporaryDirectory()
    root = args.keep or Path(tmp.name)
    root.mkdir(parents=True, exist_ok=True)

    cases = {}
    parcels, perims, title, fictif = demo_case(root)
    from geo.sources import cadastre as cad

    demo_layers = cad.load_cadastre(["62999"], ("sections", "batiments"), source_dir=root / "data" / "demo")
    demo_orient = {"sections": demo_layers["sections"], "buildings": demo_layers["batiments"]}
    cases["demo"] = (parcels, perims, title, fictif, "light", demo_orient)
    big, big_perims = replicated_commune()
    t_b = time.perf_counter()
    buildings = synthetic_buildings(big)
    print(f"{len(buildings)} synthetic buildings ({time.perf_counter() - t_b:.1f} s)")
    title = "Banc 20k parcelles"
    cases["20k light, sans repères (base)"] = (big, big_perims, title, False, "light", None)
    cases["20k light"] = (big, big_perims, title, False, "light", {})
    cases["20k light + bâtiments"] = (big, big_perims, title, False, "light", {"buildings": buildings})
    cases["20k keep + bâtiments"] = (big, big_perims, title, False, "keep", {"buildings": buildings})

    rows, pages = [], {}
    for name, (parcels, perims, title, fictif, far, orient) in cases.items():
        t0 = time.perf_counter()
        result = classify_parcels(parcels, perims, with_distance=False)
        t1 = time.perf_counter()
        m = maps.convention_map(
            perims,
            parcels=parcels,
            classification=result,
            title=title,
            fictif=fictif,
            far_parcels=far,
            orientation=orient is not None,
            **(orient or {}),
        )
        path = maps.save_offline(m, root / f"{_slug(name)}.html", force=True)
        t2 = time.perf_counter()
        pages[name] = path
        rows.append(
            {
                "case": name,
                "parcels": len(parcels),
                "far": m.ort_info["parcels_far"] if far != "keep" else 0,
                "html_MB": round(path.stat().st_size / 1e6, 2),
                "classify_s": round(t1 - t0, 2),
                "build+save_s": round(t2 - t1, 2),
            }
        )
    times = render_times(list(pages.values()), args.runs)
    for row in rows:
        cold, *warm = times[pages[row["case"]]]
        row["render_first_load_s"] = round(cold, 3)
        row["render_median_s"] = round(statistics.median(warm), 3)
        row["render_max_s"] = round(max(warm), 3)

    annex_rows = []
    for name in ("demo", "20k light"):
        parcels, perims, title, fictif, _, orient = cases[name]
        t0 = time.perf_counter()
        result = classify_parcels(parcels, perims, with_distance=False)
        layers = annex.orientation_layers(parcels, **orient)
        doc = annex.annex_pages(
            perims,
            parcels,
            classification=result,
            title=title,
            fictif=fictif,
            orient=layers,
            annex_number="1",
        )
        t1 = time.perf_counter()
        annex.write_annex(doc, root / f"annex-{_slug(name)}", force=True)
        t2 = time.perf_counter()
        annex_rows.append(
            {
                "case": name,
                "pages": len(doc.pages),
                "map_pages": sum(p.png for p in doc.pages),
                "compute_s": round(t1 - t0, 1),
                "write_png_pdf_tables_s": round(t2 - t1, 1),
                "per_page_s": round((t2 - t0) / len(doc.pages), 1),
            }
        )

    pd.set_option("display.width", 160)
    print("Interactive map (chromium first render, median of", args.runs, "loads)")
    print(pd.DataFrame(rows).to_string(index=False))
    print("\nAnnex (A4 landscape, PNG 300 dpi of the map pages + one PDF with the parcel tables + CSV/XLSX)")
    print(pd.DataFrame(annex_rows).to_string(index=False))
    print(f"\nshapely {shapely.__version__}; files in {root if args.keep else '(temporary)'}")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.encode("ascii", "ignore").decode()).strip("-")


if __name__ == "__main__":
    main()
