"""The compiled intersection areas (geo.kernels: C, or numba) agree with GEOS, shape by shape.

Each fixture is one topological situation, drawn by hand; then random blobs and rectangles
(Hypothesis), then real Etalab parcels against perimeters drawn along real parcel boundaries
(edges shared exactly: the case of every real ORT perimeter).
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from conftest import at_once
from fresh_install import copy_sources
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from shapely import Polygon, box
from strategies import X0, Y0, rings

from geo import classify, kernels


def _at(geom):
    return shapely.affinity.translate(geom, X0, Y0)


def _geos(parcels, perimeters, which):
    return shapely.area(shapely.intersection(parcels, perimeters[which]))


def _assert_agree(parcels, perimeters, which=None):
    parcels = np.asarray(parcels, dtype=object)
    perimeters = np.asarray(perimeters, dtype=object)
    which = np.zeros(len(parcels), dtype=np.intp) if which is None else np.asarray(which, dtype=np.intp)
    got = kernels.intersection_areas(parcels, perimeters, which)
    want = _geos(parcels, perimeters, which)
    bound = 1e-9 * np.maximum(shapely.area(parcels), 1.0)
    assert (np.abs(got - want) <= bound).all(), np.c_[got, want][np.abs(got - want) > bound]
    return got


L_SHAPE = Polygon([(0, 0), (30, 0), (30, 10), (10, 10), (10, 30), (0, 30)])
SECTOR = box(15, -50, 200, 200)


@pytest.mark.parametrize(
    ("parcel", "perimeter", "area"),
    [
        pytest.param(box(0, 0, 20, 10), SECTOR, 50.0, id="square-half-inside"),
        pytest.param(box(20, 0, 40, 10), SECTOR, 200.0, id="wholly-inside"),
        pytest.param(box(-20, 0, 0, 10), SECTOR, 0.0, id="outside"),
        pytest.param(box(0, 0, 15, 10), SECTOR, 0.0, id="touching-the-line-only"),
        pytest.param(box(15, 0, 30, 10), SECTOR, 150.0, id="edge-on-the-line-inside"),
        pytest.param(L_SHAPE, SECTOR, 150.0, id="non-convex-parcel"),
        pytest.param(L_SHAPE.reverse(), SECTOR.reverse(), 150.0, id="clockwise-rings"),
        pytest.param(box(0, 0, 40, 40).difference(box(10, 10, 30, 30)), SECTOR, 700.0, id="parcel-with-hole"),
        pytest.param(
            shapely.union(box(0, 0, 20, 10), box(0, 20, 20, 30)), SECTOR, 100.0, id="parcel-in-two-parts"
        ),
        pytest.param(box(10, 0, 30, 20), SECTOR.difference(box(18, 5, 22, 15)), 260.0, id="perimeter-hole"),
        pytest.param(box(-100, -100, 400, 400), box(0, 0, 10, 10), 100.0, id="perimeter-inside-parcel"),
        pytest.param(
            box(0, 0, 40, 10),
            shapely.union(box(5, -5, 10, 20), box(30, -5, 35, 20)),
            100.0,
            id="perimeter-in-two-parts",
        ),
        pytest.param(
            box(0, 0, 40, 40),
            Polygon([(20, -10), (50, 20), (20, 50), (25, 20)]),
            None,
            id="non-convex-both",
        ),
    ],
)
def test_one_situation(parcel, perimeter, area):
    """Each situation: the area GEOS gives, and the area worked out by hand."""
    got = _assert_agree([_at(parcel)], [_at(perimeter)])
    if area is not None:
        assert got[0] == pytest.approx(area, abs=1e-6)


def test_a_long_perimeter_line_with_excursions():
    """A perimeter of thousands of vertices winding near and far from the parcels: the runs
    that stay far become chords without changing the area."""
    t = np.linspace(0, 2 * np.pi, 5001)[:-1]
    r = 300 + 40 * np.sin(37 * t) + 15 * np.cos(101 * t)
    blob = Polygon(np.c_[X0 + r * np.cos(t), Y0 + r * np.sin(t)])
    xs, ys = np.meshgrid(np.arange(-400, 400, 23.0), np.arange(-400, 400, 17.0))
    parcels = shapely.box(X0 + xs.ravel(), Y0 + ys.ravel(), X0 + xs.ravel() + 21, Y0 + ys.ravel() + 15)
    edge = parcels[shapely.intersects(parcels, blob.boundary)]
    assert len(edge) > 200 and shapely.get_num_coordinates(blob) > 4000
    _assert_agree(edge, [blob])


coords = st.floats(min_value=0, max_value=200, allow_nan=False, allow_infinity=False)


@st.composite
def blobs(draw):
    """A few buffered points, unioned, maybe holed: a curvy non-convex perimeter."""
    n = draw(st.integers(1, 4))
    pts = shapely.points([draw(coords) for _ in range(n)], [draw(coords) for _ in range(n)])
    geom = shapely.union_all(shapely.buffer(pts, [draw(st.floats(5, 80)) for _ in range(n)], quad_segs=3))
    if draw(st.booleans()):
        geom = geom.difference(shapely.Point(draw(coords), draw(coords)).buffer(draw(st.floats(1, 30))))
    return _at(geom)


@st.composite
def parcels(draw):
    """Rectangles, triangles and stars (convex and not), rotated."""
    x, y = draw(coords), draw(coords)
    size = draw(st.floats(0.5, 60))
    kind = draw(st.sampled_from(["box", "star", "triangle"]))
    if kind == "box":
        geom = box(x, y, x + size, y + size * draw(st.floats(0.2, 3)))
    elif kind == "star":
        k = draw(st.integers(3, 9))
        a = np.linspace(0, 2 * np.pi, 2 * k, endpoint=False)
        rad = np.where(np.arange(2 * k) % 2 == 0, size, size * draw(st.floats(0.2, 1.0)))
        geom = Polygon(np.c_[x + rad * np.cos(a), y + rad * np.sin(a)])
    else:
        geom = Polygon([(x, y), (x + size, y + draw(st.floats(-size, size))), (x, y + size)])
    geom = shapely.affinity.rotate(geom, draw(st.floats(0, 360)), origin=(x, y))
    return _at(geom)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blobs(), st.lists(parcels(), min_size=1, max_size=30))
def test_random_shapes_agree_with_geos(perimeter, shapes):
    """Random parcels around a random curvy perimeter: the areas GEOS finds."""
    shapes = [s for s in shapes if s.is_valid and s.area > 0]
    if shapes:
        _assert_agree(shapes, [perimeter])


def test_real_parcels_against_perimeters_drawn_along_them(epinay_parcelles, saint_marcel_dir):
    """Real Etalab parcels (two communes) against perimeters made of real parcels — their
    boundaries shared exactly, as in every real ORT — with a hole, a disc and a box cut."""
    from geo.sources.cadastre import read_parcels

    for path in (epinay_parcelles, saint_marcel_dir / "cadastre-73253-parcelles.json"):
        layer = read_parcels(path)
        geoms = layer.geometry.to_numpy()
        centre = shapely.centroid(shapely.union_all(geoms[:: max(1, len(geoms) // 200)]))
        near = geoms[shapely.distance(geoms, centre) < 400]
        block = shapely.union_all(near)  # exactly along parcel boundaries
        hole = shapely.union_all(geoms[shapely.distance(geoms, centre) < 60])
        perims = np.array(
            [block, block.difference(hole), centre.buffer(250), box(*centre.buffer(300).bounds)], dtype=object
        )
        pairs = shapely.STRtree(geoms).query(perims, predicate="intersects")
        which, idx = pairs
        got = _assert_agree(geoms[idx], perims, which)
        assert len(idx) > 500 and (got > 0).sum() > 300


def test_the_engine_uses_it_and_agrees(epinay_parcelles):
    """classify_parcels with compiled areas and with GEOS: same statuses, shares within 1e-9."""
    from geo.sources.cadastre import read_parcels

    layer = read_parcels(epinay_parcelles)
    centre = layer.geometry.union_all().centroid
    import geopandas as gpd

    perims = gpd.GeoDataFrame(
        {"perimeter_id": ["disc", "block"]},
        geometry=[centre.buffer(500), box(centre.x - 900, centre.y - 200, centre.x + 100, centre.y + 700)],
        crs=layer.crs,
    )
    fast = classify.classify_parcels(layer, perims, compiled=True)
    slow = classify.classify_parcels(layer, perims, compiled=False)
    assert (fast["status"] == slow["status"]).all()
    assert np.abs(fast["share"] - slow["share"]).max() <= 1e-9
    assert (fast["status"] == classify.STRADDLING).sum() > 50


# --- the ring test of the WKB scan (ring_is_simple) ----------------------------------------------


@hsettings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rings())
def test_the_ring_test_never_vouches_for_an_invalid_ring(ring):
    """ring_is_simple says True only for rings GEOS finds valid (False: GEOS decides)."""
    simple = kernels.rings_simple(ring, np.array([0, len(ring)]))[0]
    if simple:
        assert shapely.is_valid(Polygon(ring)), shapely.is_valid_reason(Polygon(ring))


@pytest.mark.parametrize(
    "ring, valid",
    [
        ([(0, 0), (2, 0), (2, 2), (0, 2)], True),
        ([(0, 0), (2, 2), (2, 0), (0, 2)], False),  # bow tie
        ([(0, 0), (2, 0), (2, 1), (3, 1), (2, 1), (2, 2), (0, 2)], False),  # spike
        ([(0, 0), (2, 0), (1, 1), (2, 2), (0, 2), (1, 1)], False),  # touches itself at (1, 1)
        ([(0, 0), (1, 0), (2, 0)], False),  # flat
        ([(0, 0), (2, 0), (2, 0), (2, 2), (0, 2)], True),  # a repeated point is valid
        ([(0, 0), (1, 0), (2, 0), (2, 2), (0, 2)], True),  # collinear points on an edge
    ],
)
def test_the_ring_test_by_situation(ring, valid):
    xy = np.array(ring + ring[:1], dtype=float) + (X0, Y0)
    assert bool(shapely.is_valid(Polygon(xy))) == valid
    assert bool(kernels.rings_simple(xy, np.array([0, len(xy)]))[0]) == valid


def test_the_ring_test_vouches_for_real_parcels(epinay_parcelles, saint_marcel_dir):
    """On real Etalab parcels (all valid) it vouches for every one-ring parcel: GEOS is asked
    about none of them, so the test stays cheap."""
    from geo.sources.cadastre import read_parcels

    for path in (epinay_parcelles, saint_marcel_dir / "cadastre-73253-parcelles.json"):
        geoms = read_parcels(path).geometry.to_numpy()
        one = geoms[(shapely.get_type_id(geoms) == 3) & (shapely.get_num_interior_rings(geoms) == 0)]
        xy, owner = shapely.get_coordinates(one, return_index=True)
        starts = np.r_[0, np.cumsum(np.bincount(owner))]
        assert kernels.rings_simple(xy, starts).all() and len(one) > 1000


# --- the compiled code shipped in the wheel (geo.native, geo.scale.jit, setup.py) -----------------

#: What the wheel is built from (as tests/test_install.py, with setup.py: the build step).


def _files(folder) -> list:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_the_first_run_after_install_compiles_nothing(epinay_parcelles, tmp_path):
    """A wheel built by ``pip wheel`` from a copy of the sources carries the C library of the
    engine's loops (and not its source) and numba's compiled code of the same loops: the first
    ``ort classify`` of a fresh install, on real parcels, with an empty numba cache, runs the
    C library and never imports numba (the cache folder stays without a file); with
    ``ORT_NATIVE=0`` it runs numba's shipped code and compiles nothing either. Removing the
    shipped numba code from the install, the numba run compiles: the check sees compiles."""
    import os
    import shutil
    import subprocess
    import sys
    import zipfile
    from pathlib import Path

    import geopandas as gpd

    src = copy_sources(tmp_path / "src", built=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORT_", "PYTHON", "NUMBA_"))}

    def run(args, **kwargs):
        done = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
        assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
        return done

    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
         tmp_path / "dist", f"{src}/"], env=env)  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("ort-*.whl")
    inside = zipfile.ZipFile(wheel).namelist()
    assert [n for n in inside if n.startswith("geo/native/_ort_kernels") and n.endswith(".so")], inside
    assert "geo/native/ort_kernels.c" not in inside
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", venv])
    run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], env=env)

    parcels = gpd.read_file(epinay_parcelles).to_crs(2154)[["id", "geometry"]].rename(columns={"id": "idu"})
    parcels.to_parquet(tmp_path / "parcelles.parquet")
    perimeter = parcels.geometry.iloc[: len(parcels) // 3].union_all().buffer(15.0)
    perims = gpd.GeoDataFrame({"id": ["p1"], "type": ["secteur"], "nom": ["essai"]},
                              geometry=[perimeter], crs=2154)  # fmt: skip
    perims.to_file(tmp_path / "perimetres.gpkg")

    def first_classify(name: str, **more) -> list:
        cache = tmp_path / f"numba-{name}"
        cache.mkdir()
        args = [venv / "bin" / "ort", "classify", tmp_path / "parcelles.parquet", "--perimeters-file",
                tmp_path / "perimetres.gpkg", "-o", tmp_path / f"out-{name}", "--workers", "2"]  # fmt: skip
        done = run(args, env=dict(env, NUMBA_CACHE_DIR=str(cache), **more), cwd=tmp_path)
        assert "Résultat écrit" in done.stdout
        return _files(cache)

    which = "from geo.scale import compiled; print(compiled.implementation())"
    assert run([venv / "bin" / "python", "-c", which], env=env, cwd=tmp_path).stdout.split() == ["native"]
    assert first_classify("native") == []
    assert first_classify("shipped", ORT_NATIVE="0") == []
    where = "import geo.scale.jit as j; print(j.SHIPPED)"
    site = run([venv / "bin" / "python", "-c", where], env=env, cwd=tmp_path)
    shipped = Path(site.stdout.strip())
    assert any(p.suffix == ".nbc" for p in shipped.iterdir())
    shutil.rmtree(shipped)
    assert first_classify("native-again") == []  # the C library needs none of it
    compiled_here = first_classify("without", ORT_NATIVE="0")
    assert any(name.endswith(".nbc") for name in compiled_here), compiled_here


def test_threads_asking_at_once_build_each_perimeters_arrays_once(monkeypatch):
    """Threads computing areas against their own copies of the same perimeters (the slices of
    geo.scale.run.classify_frame) share the perimeters' arrays: each built once, the areas those
    of one thread alone."""
    import threading

    built, lock = [], threading.Lock()

    def counting(wkb):
        with lock:
            built.append(wkb)
        return kernels._perimeter.__wrapped__(wkb)

    once = kernels.Once(counting, 128)
    monkeypatch.setattr(kernels, "_perimeters", once)
    monkeypatch.setattr(kernels, "_perimeter_of", kernels.ByIdentity(once.get, 128))
    perims = [shapely.Point(k * 1000.0, 0).buffer(300.0 + k, quad_segs=64) for k in range(12)]
    wkb = shapely.to_wkb(np.array(perims + [shapely.Point(0, 0), None], dtype=object))
    parcels = np.array(
        [box(k * 1000.0 + 250, -20, k * 1000.0 + 350, 20) for k in range(12)] * 3 + [box(0, 0, 1, 1)] * 2
    )
    which = np.array(list(range(12)) * 3 + [12, 13])
    expected = _geos(parcels[:36], np.array(perims, dtype=object), which[:36])
    got: dict[int, np.ndarray] = {}
    copies = [shapely.from_wkb(wkb) for _ in range(3)]  # each thread's own: no identity shared

    def ask(k: int) -> None:
        got[k] = kernels.intersection_areas(parcels, copies[k], which)

    at_once(3, ask)
    assert len(built) == len(perims) == len(set(built))
    for k in range(3):
        np.testing.assert_allclose(got[k][:36], expected, rtol=1e-9, atol=1e-9)
        assert got[k][36:].tolist() == [0.0, 0.0]  # a point, a missing perimeter: no area
        np.testing.assert_array_equal(got[k], got[0])
