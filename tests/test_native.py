"""The engine's loops in C (geo.native) give the same bits as the numba loops, their reference.

Areas, grid decisions, ring validity and WKB scans, both ways, on the embedded demo commune,
on real Etalab parcels (../shared/data) and on odd shapes drawn by hand (holes, several parts,
bow ties, repeated points, spikes, rings long enough for the sweep, collinear touches). Then
the process level: a classification that runs on C never imports numba, ``ORT_NATIVE=0``
runs numba, and the build without a C compiler still installs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pytest
import shapely
from fresh_install import copy_sources
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from shapely import Polygon, box
from strategies import X0, Y0, rings

from geo import embedded, kernels, native
from geo.grid import GRID_MARGIN, perimeter_grid
from geo.scale import wkb

kernels_numba = pytest.importorskip("geo.kernels_numba", reason="numba is the reference of the C loops")
from geo.scale import wkb_numba  # noqa: E402 - after the skip: numba needed

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def _library():
    """The C library of this checkout (built by ``pip install -e .``): a missing one fails
    under CI, where .ci/run installs a C compiler."""
    if native.library() is None:
        reason = "the C library is not built here (pip install -e . with a C compiler)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def _same_everything(parcels, perimeters) -> int:
    """Every loop, C and numba, on these parcels against these perimeters: the same bits.
    Returns how many boundary pairs had an area."""
    parcels = np.asarray(parcels, dtype=object)
    perimeters = np.asarray(perimeters, dtype=object)
    # Areas of every intersecting pair.
    which, idx = shapely.STRtree(parcels).query(perimeters, predicate="intersects")
    c = kernels._intersection_areas(native, parcels[idx], perimeters, which)
    n = kernels._intersection_areas(kernels_numba, parcels[idx], perimeters, which)
    assert c.tobytes() == n.tobytes(), np.abs(c - n).max()
    # Grid decisions (every parcel free, then every other one).
    bounds, boxes = shapely.bounds(parcels), shapely.bounds(perimeters)
    grids = [perimeter_grid(g) for g in perimeters]
    for free in (np.ones(len(parcels), bool), np.arange(len(parcels)) % 2 == 0):
        got = kernels._grid_pairs(native, bounds, boxes, grids, free, GRID_MARGIN)
        want = kernels._grid_pairs(kernels_numba, bounds, boxes, grids, free, GRID_MARGIN)
        for a, b in zip(got, want, strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b)
    # Validity of every ring (exteriors and holes), and the WKB scan of every parcel.
    rings = shapely.get_rings(shapely.get_parts(parcels))
    xy, owner = shapely.get_coordinates(rings, return_index=True)
    starts = np.r_[0, np.cumsum(np.bincount(owner, minlength=len(rings)))]
    assert np.array_equal(
        kernels._rings_simple(native, xy, starts), kernels._rings_simple(kernels_numba, xy, starts)
    )
    _same_scan(pa.array(shapely.to_wkb(parcels), type=pa.binary()))
    return int((c > 0).sum())


def _same_simple(xy, starts) -> np.ndarray:
    got = kernels._rings_simple(native, xy, starts)
    assert np.array_equal(got, kernels._rings_simple(kernels_numba, xy, starts))
    return got


def _same_scan(column) -> None:
    got, want = wkb._scan(native, column), wkb._scan(wkb_numba, column)
    assert np.array_equal(got.simple, want.simple)
    assert got.bounds.tobytes() == want.bounds.tobytes() and got.area.tobytes() == want.area.tobytes()
    rows = np.flatnonzero(got.simple)
    assert np.array_equal(wkb._rings_valid(native, column, rows), wkb._rings_valid(wkb_numba, column, rows))


def test_demo_commune():
    """The embedded demo commune's parcels against its perimeters (both versions)."""
    from geo.sources.cadastre import read_parcels

    parcels = read_parcels(embedded.demo_dir() / "cadastre-62999-parcelles.json.gz")
    geoms = parcels.geometry.to_numpy()
    perimeters = []
    for name in ("perimetres-initiale.geojson", "perimetres-avenant-1.geojson"):
        layer = gpd.read_file(embedded.convention_dir("demo") / name).to_crs(parcels.crs)
        perimeters += list(layer.geometry)
    assert _same_everything(geoms, perimeters) > 100


def test_real_parcels(epinay_parcelles, saint_marcel_dir):
    """Real Etalab parcels against perimeters drawn along their boundaries (a block, the block
    with a hole, a disc, a box): every loop gives the same bits."""
    from geo.sources.cadastre import read_parcels

    for path in (epinay_parcelles, saint_marcel_dir / "cadastre-73253-parcelles.json"):
        geoms = read_parcels(path).geometry.to_numpy()
        centre = shapely.centroid(shapely.union_all(geoms[:: max(1, len(geoms) // 200)]))
        block = shapely.union_all(geoms[shapely.distance(geoms, centre) < 400])
        hole = shapely.union_all(geoms[shapely.distance(geoms, centre) < 60])
        perims = [block, block.difference(hole), centre.buffer(250), box(*centre.buffer(300).bounds)]
        assert _same_everything(geoms, perims) > 300


def _at(geom):
    return shapely.affinity.translate(geom, X0, Y0)


def _saw(teeth: int, width: float = 40.0) -> Polygon:
    """A ring of 2 × teeth + 2 points: a saw whose teeth cross a line many times."""
    xs = np.linspace(0.0, width, 2 * teeth + 1)
    ys = np.where(np.arange(len(xs)) % 2 == 0, -5.0, 5.0)
    return Polygon(list(zip(xs, ys, strict=True)) + [(width, -20.0), (0.0, -20.0)])


def _gear(teeth: int, inner: float, outer: float) -> Polygon:
    """A gear around (5, 5): against a disc between its radii, the clipped ring has twice the
    points of either ring."""
    angle = np.linspace(0.0, 2 * np.pi, 2 * teeth, endpoint=False)
    radius = np.where(np.arange(2 * teeth) % 2 == 0, inner, outer)
    return Polygon(np.c_[5 + radius * np.cos(angle), 5 + radius * np.sin(angle)])


#: Odd parcels, and odd perimeters, all at Lambert-93 numbers.
ODD = [
    box(0, 0, 20, 10),
    box(0, 0, 40, 40).difference(box(10, 10, 30, 30)),  # a hole
    shapely.union(box(0, 0, 20, 10), box(0, 20, 20, 30)),  # two parts
    Polygon([(0, 0), (10, 10), (10, 0), (0, 10)]),  # a bow tie
    Polygon([(0, 0), (10, 0), (10, 0), (10, 10), (0, 10), (0, 10)]),  # repeated points
    Polygon([(0, 0), (10, 0), (10, 5), (20, 5), (10, 5), (10, 10), (0, 10)]),  # a spike
    Polygon([(0, 0), (10, 0), (10, 10), (5, 10), (5, 0.0), (5, 10), (0, 10)]),  # a spike inwards
    Polygon([(0, 0), (10, 0), (10, 10), (0, 10), (0, 5), (10, 5), (0, 5)]),  # collinear touch
    Polygon([(0, 0), (30, 0), (30, 10), (10, 10), (10, 30), (0, 30)]),  # not convex
    _saw(40),  # 82 points: the sweep, and clipped rings that grow
    _saw(200, 5.0),  # 402 points, narrow teeth
    shapely.Point(5, 5).buffer(8, quad_segs=64),  # 257 points
    _gear(128, 7.9, 8.6),  # 256 points around that disc
    Polygon([(i % 2, i) for i in range(100)] + [(-5, 99), (-5, 0)]),  # 100 segments of one west end
]


def test_odd_shapes():
    """Each odd shape as a parcel against each as a perimeter (and a big box), both ways."""
    shapes = [_at(g) for g in ODD]
    perims = shapes + [_at(box(-5, -25, 45, 45)), _at(shapely.Point(15, 5).buffer(12))]
    for shift in (0.0, 3.3):
        parcels = [shapely.affinity.translate(g, shift, shift / 2) for g in shapes]
        _same_everything(parcels, perims)


def test_odd_rings_validity():
    """The ring test on rings GEOS calls invalid or touchy, including NaN points and ties of
    the sweep's sort (segments of one west end): the same answers."""
    rings = [np.asarray(g.exterior.coords) + (X0, Y0) for g in ODD if g.geom_type == "Polygon"]
    long = np.c_[np.arange(130) % 2, np.arange(130)].astype(float)
    nan = long.copy()
    nan[7] = np.nan
    for ring in (long, nan, long[::-1]):
        rings.append(np.vstack([ring, ring[:1]]) + (X0, Y0))
    xy = np.vstack(rings)
    starts = np.r_[0, np.cumsum([len(r) for r in rings])]
    got = kernels._rings_simple(native, xy, starts)
    assert np.array_equal(got, kernels._rings_simple(kernels_numba, xy, starts))
    assert got.any() and not got.all()


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rings(max_points=90), min_size=1, max_size=4))
def test_random_rings(ring_list):
    """Random rings: the same validity answers; as parcels against each other, the same areas."""
    xy = np.vstack(ring_list)
    starts = np.r_[0, np.cumsum([len(r) for r in ring_list])]
    assert np.array_equal(
        kernels._rings_simple(native, xy, starts), kernels._rings_simple(kernels_numba, xy, starts)
    )
    polys = shapely.make_valid(np.array([shapely.polygons(r) for r in ring_list]))
    polys = polys[np.isin(shapely.get_type_id(polys), (3, 6)) & ~shapely.is_empty(polys)]
    if len(polys):
        which = np.arange(len(polys)) % len(polys)
        parcels = np.roll(polys, 1)
        c = kernels._intersection_areas(native, parcels, polys, which)
        assert c.tobytes() == kernels._intersection_areas(kernels_numba, parcels, polys, which).tobytes()
    column = pa.array([shapely.to_wkb(shapely.polygons(r)) for r in ring_list] + [None], type=pa.binary())
    _same_scan(column)


def test_grid_pairs_beyond_the_first_buffer():
    """More pairs than parcels (the first buffer's size): the C loop goes on where it stopped,
    as numba's buffer grows; the same pairs in the same order."""
    parcels = np.array([_at(box(i, 0, i + 1, 1)) for i in range(20)])
    perims = np.array([_at(box(-1, -1, 30, 2 + k * 0.1)) for k in range(9)] + [_at(box(5.5, 0.2, 6.5, 0.8))])
    bounds, boxes = shapely.bounds(parcels), shapely.bounds(perims)
    grids = [perimeter_grid(g) for g in perims]
    free = np.ones(len(parcels), bool)
    got = kernels._grid_pairs(native, bounds, boxes, grids, free, GRID_MARGIN)
    want = kernels._grid_pairs(kernels_numba, bounds, boxes, grids, free, GRID_MARGIN)
    assert sum(len(a) for a in got[::2]) > 16 * 4
    for a, b in zip(got, want, strict=True):
        assert np.array_equal(a, b)


# --- the process -------------------------------------------------------------------------------


def _python(script: str, **env) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ORT_NATIVE")}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True, text=True, timeout=600, env={**environ, **env},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_classification_on_c_never_imports_numba(tmp_path):
    """``ort classify`` in a fresh process, on the demo commune: the C loops, numba never
    imported (not even by the warm-up thread), nothing compiled; with ``ORT_NATIVE=0``, the
    numba loops and the same Parquet."""
    from geo.sources.cadastre import read_parcels

    parcels = read_parcels(embedded.demo_dir() / "cadastre-62999-parcelles.json.gz")
    parcels[["idu", "geometry"]].to_parquet(tmp_path / "parcelles.parquet")
    layer = gpd.read_file(embedded.convention_dir("demo") / "perimetres-avenant-1.geojson")
    layer[["id", "type", "nom", "geometry"]].to_crs(parcels.crs).to_file(tmp_path / "perimetres.gpkg")
    script = """
        import runpy, sys
        sys.argv = ["test-ort", "classify", "parcelles.parquet", "--perimeters-file", "perimetres.gpkg",
                    "-o", sys.argv[1]]
        try:
            runpy.run_module("geo", run_name="__main__")
        except SystemExit as stop:
            assert not stop.code, stop.code
        from geo.scale import compiled, run
        run._warm_compiled()
        print("implementation", compiled.implementation())
        print("numba", "numba" in sys.modules, "llvmlite" in sys.modules)
        print("compiles", sum(compiled.compiles().values()))
    """
    outputs = {}
    for name, env in (("c", {}), ("numba", {"ORT_NATIVE": "0"})):
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(script), str(tmp_path / name)],
            capture_output=True, text=True, timeout=600, cwd=tmp_path,
            env={**{k: v for k, v in os.environ.items() if k != "ORT_NATIVE"}, **env},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        outputs[name] = done.stdout
    assert "implementation native" in outputs["c"] and "numba False False" in outputs["c"]
    assert "compiles 0" in outputs["c"]
    assert "implementation numba" in outputs["numba"] and "numba True True" in outputs["numba"]
    from geo.scale.output import read_results

    c, n = read_results(tmp_path / "c"), read_results(tmp_path / "numba")
    assert len(c) > 100
    assert c.drop(columns="geometry", errors="ignore").equals(n.drop(columns="geometry", errors="ignore"))


def test_without_the_library_numba_runs():
    """``ORT_NATIVE=0`` (as an install without a C compiler): geo.kernels runs numba's loops,
    with the same results; ``non`` says the same, as for the switches of geo.settings, and a
    value they do not accept is refused with the fix."""
    out = _python(
        """
        import numpy as np, shapely
        from geo import kernels
        from geo.scale import wkb
        a = kernels.intersection_areas(
            np.array([shapely.box(0, 0, 2, 2)]), np.array([shapely.box(1, 1, 3, 3)]), np.zeros(1, np.intp)
        )
        print(kernels.IMPLEMENTATION, wkb.LOOPS.__name__, float(a[0]))
        """,
        ORT_NATIVE="0",
    )
    assert out.split() == ["numba", "geo.scale.wkb_numba", "1.0"]
    which = "from geo import kernels; print(kernels.IMPLEMENTATION)"
    assert _python(which, ORT_NATIVE="non").split() == ["numba"]
    environ = {k: v for k, v in os.environ.items() if k != "ORT_NATIVE"}
    refused = subprocess.run(
        [sys.executable, "-c", "from geo import kernels"],
        capture_output=True, text=True, timeout=600, env={**environ, "ORT_NATIVE": "peut-être"},
    )  # fmt: skip
    assert refused.returncode != 0 and "ORT_NATIVE = 'peut-être' refusée" in refused.stderr, refused.stderr


def test_a_stale_library_is_not_loaded(tmp_path):
    """A library older than its source (an editable checkout changed since its build) is left
    for numba, rather than run loops that no longer match the code."""
    import shutil

    pkg = tmp_path / "native"
    pkg.mkdir()
    for path in (ROOT / "geo" / "native").iterdir():
        if path.is_file():
            shutil.copy2(path, pkg / path.name)
    os.utime(pkg / "ort_kernels.c")  # now: newer than the library
    script = f"""
        import importlib.util
        spec = importlib.util.spec_from_file_location("copy", {str(pkg / "__init__.py")!r})
        copy = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(copy)
        print(copy.path() is not None, copy.library() is None)
    """
    assert _python(script).split() == ["True", "True"]


def test_an_install_without_a_c_compiler_runs_numba(tmp_path):
    """No C compiler at install (``CC`` names none): the wheel still builds, without the
    library, and the installed engine runs numba's loops."""
    import zipfile

    src = copy_sources(tmp_path / "src", built=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORT_", "PYTHON", "NUMBA_"))}
    env.update(CC=str(tmp_path / "no-such-cc"), ORT_SKIP_COMPILED="1")  # numba's cache: not this test's

    def run(args, **more):
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=600, env={**env, **more}, cwd=tmp_path
        )
        assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
        return done

    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist, src])
    (wheel,) = dist.glob("ort-*.whl")
    assert not [n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".so")]
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", venv])
    run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel])
    script = """
        import numpy as np, shapely
        from geo import kernels, native
        a = kernels.intersection_areas(
            np.array([shapely.box(0, 0, 2, 2)]), np.array([shapely.box(1, 1, 3, 3)]), np.zeros(1, np.intp)
        )
        print(native.path(), kernels.IMPLEMENTATION, float(a[0]))
    """
    out = run([venv / "bin" / "python", "-c", textwrap.dedent(script)], NUMBA_CACHE_DIR=str(tmp_path / "nc"))
    assert out.stdout.split() == ["None", "numba", "1.0"]


def test_a_call_releases_pythons_lock():
    """ctypes releases the GIL during a call: while one thread spends a long call in the C area
    loop, another thread keeps running Python (the engine's two threads run at once). Held,
    the other thread would stop for the whole call."""
    import threading
    import time

    from geo.sources.cadastre import read_parcels

    geoms = read_parcels(embedded.demo_dir() / "cadastre-62999-parcelles.json.gz").geometry.to_numpy()
    perimeter = shapely.union_all(geoms[:600]).buffer(5.0)
    pairs = np.flatnonzero(shapely.intersects(geoms, perimeter) & ~shapely.within(geoms, perimeter))
    rings = native.Arrays(kernels._rings(geoms, oriented=False))
    which = np.tile(pairs, max(1, 400_000 // len(pairs)))  # one call, many pairs (repeated)
    span = {}

    def call():
        span["start"] = time.perf_counter()
        native.pair_areas(which, rings, kernels._perimeter_of(perimeter))
        span["end"] = time.perf_counter()

    worker = threading.Thread(target=call)
    ticks = []
    worker.start()
    while worker.is_alive():
        ticks.append(time.perf_counter())
    worker.join()
    during = np.array([t for t in ticks if span["start"] <= t <= span["end"]])
    length = span["end"] - span["start"]
    assert length > 0.05, length  # long enough to tell
    gaps = np.diff(np.r_[span["start"], during, span["end"]])
    assert gaps.max() < 0.5 * length, (gaps.max(), length)


def test_every_buffer_grows_alike(tmp_path):
    """The library built with ``ORT_SMALL_SCRATCH`` (every growable scratch buffer starts at 8
    slots: the clipped rings, the ring test's arrays) gives the same bits on the odd shapes and
    the demo's long rings: the paths that grow a buffer, rare with the real sizes, are right."""
    import importlib.machinery
    import importlib.util
    import shutil

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no C compiler (.ci/install-compiler)")
        pytest.skip("no C compiler")
    folder = tmp_path / "small"
    folder.mkdir()
    shutil.copy2(ROOT / "geo" / "native" / "__init__.py", folder / "__init__.py")
    library = folder / f"{native.NAME}{importlib.machinery.EXTENSION_SUFFIXES[0]}"
    build = [cc, "-O2", "-std=c99", "-ffp-contract=off", "-DORT_SMALL_SCRATCH", "-shared", "-fPIC", "-o",
             library, ROOT / "geo" / "native" / "ort_kernels.c", "-lm"]  # fmt: skip
    done = subprocess.run(build, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    spec = importlib.util.spec_from_file_location("ort_native_small", folder / "__init__.py")
    small = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(small)
    assert small.library() is not None and small.path() == library

    shapes = [_at(g) for g in ODD]
    perims = np.array(shapes + [_at(box(-5, -25, 45, 45))], dtype=object)
    parcels = np.array(shapes, dtype=object)
    which, idx = shapely.STRtree(parcels).query(perims, predicate="intersects")
    got = kernels._intersection_areas(small, parcels[idx], perims, which)
    assert got.tobytes() == kernels._intersection_areas(kernels_numba, parcels[idx], perims, which).tobytes()
    assert (got > 0).sum() > 20
    column = pa.array(shapely.to_wkb(parcels), type=pa.binary())
    rows = np.flatnonzero(wkb._scan(small, column).simple)
    assert np.array_equal(wkb._rings_valid(small, column, rows), wkb._rings_valid(wkb_numba, column, rows))
