"""The parcel check on hand-drawn topological situations, real parcels and random shapes."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
import shapely.affinity
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Point, Polygon, box

from geo import classify
from geo.classify import INSIDE, OUTSIDE, STRADDLING, classify_parcels, parcels_in, summarise
from geo.errors import CRSError, InputError

L93 = "EPSG:2154"
X0, Y0 = 700_000.0, 7_040_000.0  # near Libercourt, in Lambert-93 metres


def _sector(geom, pid="s1", nom="Secteur 1"):
    return gpd.GeoDataFrame(
        {"perimeter_id": [pid], "type": ["secteur"], "nom": [nom]}, geometry=[geom], crs=L93
    )


def _parcels(**geoms):
    return gpd.GeoDataFrame({"idu": list(geoms)}, geometry=list(geoms.values()), crs=L93)


def _b(x1, y1, x2, y2):
    return box(X0 + x1, Y0 + y1, X0 + x2, Y0 + y2)


@pytest.fixture
def square_sector():
    """A 100 m × 100 m sector."""
    return _sector(_b(0, 0, 100, 100))


def _status(result, idu, pid="s1"):
    row = result[(result["idu"] == idu) & (result["perimeter_id"] == pid)].iloc[0]
    return row["status"], row["share"], row["distance_m"]


def test_inside(square_sector):
    """A parcel well inside the sector."""
    r = classify_parcels(_parcels(p=_b(10, 10, 30, 30)), square_sector)
    assert _status(r, "p") == (INSIDE, 1.0, 0.0)


def test_straddling_share(square_sector):
    """A 20 × 10 parcel with its left 10 × 10 half inside: straddling at 50 %."""
    r = classify_parcels(_parcels(p=_b(90, 10, 110, 20)), square_sector)
    status, share, dist = _status(r, "p")
    assert status == STRADDLING
    assert share == pytest.approx(0.5)
    assert r["area_inside_m2"].iloc[0] == pytest.approx(100.0)
    assert dist == 0.0


def test_boundary_contact_only_is_outside(square_sector):
    """A parcel sharing only an edge with the sector has no area inside: outside, at 0 m."""
    r = classify_parcels(_parcels(p=_b(100, 0, 110, 10)), square_sector)
    assert _status(r, "p") == (OUTSIDE, 0.0, 0.0)


def test_corner_contact_only_is_outside(square_sector):
    """Touching at one corner point only."""
    r = classify_parcels(_parcels(p=_b(100, 100, 110, 110)), square_sector)
    assert _status(r, "p")[0] == OUTSIDE


def test_outside_with_distance(square_sector):
    """A parcel 100 m east of the sector."""
    r = classify_parcels(_parcels(p=_b(200, 0, 210, 10)), square_sector)
    assert _status(r, "p") == (OUTSIDE, 0.0, pytest.approx(100.0))


def test_hole():
    """A sector with a hole (a park excluded): in the hole is outside, across its edge straddles."""
    shell = [(X0, Y0), (X0 + 100, Y0), (X0 + 100, Y0 + 100), (X0, Y0 + 100)]
    hole = [(X0 + 40, Y0 + 40), (X0 + 60, Y0 + 40), (X0 + 60, Y0 + 60), (X0 + 40, Y0 + 60)]
    sector = _sector(Polygon(shell, [hole]))
    r = classify_parcels(
        _parcels(in_hole=_b(45, 45, 55, 55), across=_b(35, 45, 45, 55), ring=_b(10, 10, 20, 20)), sector
    )
    assert _status(r, "in_hole")[:2] == (OUTSIDE, 0.0)
    assert _status(r, "in_hole")[2] == pytest.approx(5.0)
    assert _status(r, "across")[0] == STRADDLING
    assert _status(r, "across")[1] == pytest.approx(0.5)
    assert _status(r, "ring")[0] == INSIDE


def test_multipolygon():
    """A sector in two parts: parcels in either part are inside, between them outside."""
    sector = _sector(MultiPolygon([_b(0, 0, 50, 50), _b(100, 0, 150, 50)]))
    r = classify_parcels(
        _parcels(a=_b(10, 10, 20, 20), b=_b(110, 10, 120, 20), gap=_b(60, 10, 90, 20)), sector
    )
    assert _status(r, "a")[0] == INSIDE
    assert _status(r, "b")[0] == INSIDE
    assert _status(r, "gap")[:2] == (OUTSIDE, 0.0)
    assert _status(r, "gap")[2] == pytest.approx(10.0)


def test_tolerance_absorbs_digitising_noise(square_sector):
    """A 400 m² parcel overhanging by 0.4 m² is inside at the default tolerance; straddling at 0."""
    parcel = _parcels(p=_b(80, 0, 100.02, 20))  # 0.02 m × 20 m = 0.4 m² outside
    assert _status(classify_parcels(parcel, square_sector), "p")[0] == INSIDE
    strict = classify_parcels(parcel, square_sector, tolerance_m2=0, tolerance_pct=0)
    assert _status(strict, "p")[0] == STRADDLING
    sliver_in = _parcels(p=_b(99.98, 0, 120, 20))  # 0.4 m² inside
    assert _status(classify_parcels(sliver_in, square_sector), "p")[0] == OUTSIDE


def test_tolerance_pct(square_sector):
    """4 % outside is straddling at 0.5 %, inside at 5 %."""
    parcel = _parcels(p=_b(76, 0, 101, 20))  # 25 m wide, 1 m outside
    assert _status(classify_parcels(parcel, square_sector), "p")[0] == STRADDLING
    assert _status(classify_parcels(parcel, square_sector, tolerance_pct=5), "p")[0] == INSIDE


def test_points(square_sector):
    """Building or dwelling points: inside, on the boundary (covered, inside) and outside."""
    pts = gpd.GeoDataFrame(
        {"idu": ["in", "edge", "out"]},
        geometry=[Point(X0 + 50, Y0 + 50), Point(X0 + 100, Y0 + 50), Point(X0 + 150, Y0 + 50)],
        crs=L93,
    )
    r = classify_parcels(pts, square_sector)
    assert _status(r, "in")[:2] == (INSIDE, 1.0)
    assert _status(r, "edge")[:2] == (INSIDE, 1.0)
    assert _status(r, "out") == (OUTSIDE, 0.0, pytest.approx(50.0))


def test_several_perimeters_and_summary():
    """Two sectors side by side and a parcel across their common line: 60/40 split."""
    sectors = gpd.GeoDataFrame(
        {"perimeter_id": ["a", "b"], "type": ["secteur", "secteur"], "nom": ["A", "B"]},
        geometry=[_b(0, 0, 100, 100), _b(100, 0, 200, 100)],
        crs=L93,
    )
    r = classify_parcels(_parcels(x=_b(90, 0, 115, 10), y=_b(10, 10, 20, 20)), sectors)
    assert _status(r, "x", "a")[1] == pytest.approx(0.4)
    assert _status(r, "x", "b")[1] == pytest.approx(0.6)
    s = summarise(r).set_index("perimeter_id")
    assert s.loc["a", "inside"] == 1 and s.loc["a", "straddling"] == 1
    assert s.loc["b", "outside"] == 1 and s.loc["b", "straddling"] == 1
    assert list(parcels_in(r, "A")["idu"]) == ["x", "y"]
    assert list(parcels_in(r, "a", include_straddling=False)["idu"]) == ["y"]
    with pytest.raises(InputError, match="unknown perimeter or sector 'zz'"):
        parcels_in(r, "zz")


def test_refuses_degrees_and_mismatch(square_sector):
    parcel = _parcels(p=_b(10, 10, 20, 20))
    expected = "CRS différents : parcels est en EPSG:4326 mais perimeters en EPSG:2154"
    with pytest.raises(CRSError, match=expected):
        classify_parcels(parcel.to_crs(4326), square_sector)
    with pytest.raises(CRSError, match="pas un CRS métrique"):
        classify_parcels(parcel.to_crs(4326), square_sector.to_crs(4326))
    with pytest.raises(CRSError, match="pas de système de coordonnées"):
        classify_parcels(parcel.set_crs(None, allow_override=True), square_sector)


def test_rejects_bad_tolerance(square_sector):
    with pytest.raises(InputError, match="tolerances must be"):
        classify_parcels(_parcels(p=_b(0, 0, 1, 1)), square_sector, tolerance_pct=80)


def test_real_parcels_against_drawn_sectors(epinay_parcelles):
    """All 4,241 real parcels of Épinay-sur-Orge against three drawn, non-overlapping sectors."""
    from geo.sources.cadastre import read_parcels

    parcels = read_parcels(epinay_parcelles)
    minx, miny, maxx, maxy = parcels.total_bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    sectors = gpd.GeoDataFrame(
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
    r = classify_parcels(parcels, sectors)
    assert len(r) == 3 * len(parcels)
    s = summarise(r).set_index("perimeter_id")
    for pid in ("centre", "est", "nord"):
        row = s.loc[pid]
        assert row["inside"] > 10 and row["straddling"] > 0
        assert row[["inside", "straddling", "outside"]].sum() == len(parcels)
        # The area inside the sector, summed over parcels, cannot exceed the sector's area.
        assert row["area_inside_m2"] <= sectors.set_index("perimeter_id").area[pid] + 1
    # Brute-force check of the shares with a plain overlay on the straddling ones.
    strad = r[r["status"] == STRADDLING].head(50)
    geoms = parcels.set_index("idu").geometry
    sec = sectors.set_index("perimeter_id").geometry
    for row in strad.itertuples():
        g = geoms[row.idu]
        expected = g.intersection(sec[row.perimeter_id]).area / g.area
        assert row.share == pytest.approx(expected, abs=1e-9)


# --- Property tests --------------------------------------------------------------------------

coords = st.floats(min_value=0, max_value=200, allow_nan=False, allow_infinity=False)


@st.composite
def rectangles(draw):
    x1, x2 = sorted((draw(coords), draw(coords)))
    y1, y2 = sorted((draw(coords), draw(coords)))
    if x2 - x1 < 0.5 or y2 - y1 < 0.5:
        x2, y2 = x1 + 1.0, y1 + 1.0
    return _b(x1, y1, x2, y2)


@st.composite
def layouts(draw):
    parcels = draw(st.lists(rectangles(), min_size=1, max_size=12))
    cut = draw(st.floats(min_value=20, max_value=180))
    # Two non-overlapping sectors split by a vertical line, the second one with a hole.
    left = _b(0, 0, cut, 200)
    right = _b(cut, 0, 200, 200).difference(_b(cut + 5, 50, cut + 10, 60))
    return parcels, left, right


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layouts())
def test_properties(layout):
    """Statuses partition the parcels, shares lie in [0, 1] and sum to at most 1 over
    non-overlapping sectors, and a 2154→4326→2154 round trip keeps the verdicts."""
    parcel_geoms, left, right = layout
    parcels = gpd.GeoDataFrame(
        {"idu": [f"p{i}" for i in range(len(parcel_geoms))]}, geometry=parcel_geoms, crs=L93
    )
    sectors = gpd.GeoDataFrame(
        {"perimeter_id": ["l", "r"], "nom": ["L", "R"]}, geometry=[left, right], crs=L93
    )
    r = classify_parcels(parcels, sectors)
    assert len(r) == 2 * len(parcels)
    assert set(r["status"]) <= {INSIDE, STRADDLING, OUTSIDE}
    assert r.groupby("perimeter_id")["idu"].count().eq(len(parcels)).all()
    assert r["share"].between(0, 1).all()
    assert (r.groupby("idu")["share"].sum() <= 1 + 1e-9).all()
    # Round trip through WGS84.
    back = parcels.to_crs(4326).to_crs(L93)
    r2 = classify_parcels(back, sectors)
    assert np.allclose(r["share"], r2["share"], atol=1e-4)
    changed = r["status"] != r2["status"]
    # A status may only flip where the share sits at a tolerance threshold.
    assert (np.abs(r.loc[changed, "share"] - r2.loc[changed, "share"]) < 1e-4).all()
    assert shapely.area(shapely.intersection(left, right)) == 0


# --- The grid shortcut decides exactly what the exact tests decide ---------------------------


def _exact_only(parcel_geoms, perimeter_geoms, compiled=False):
    """The pairs found by GEOS alone (the grid decides nothing), for comparison."""
    pgeom = np.asarray(parcel_geoms, dtype=object)
    return classify.overlaps_of_bounds(
        shapely.bounds(pgeom),
        np.asarray(perimeter_geoms, dtype=object),
        geoms=lambda idx: pgeom[idx],
        areas=lambda idx: shapely.area(pgeom[idx]),
        exact=np.ones(len(pgeom), dtype=bool),
        compiled=compiled,
    )


def _same_overlaps(a, b):
    for name in a._fields:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


@st.composite
def blobs(draw):
    """A perimeter of a few buffered points, maybe with a hole, maybe in two parts."""
    n = draw(st.integers(1, 4))
    pts = shapely.points(
        [X0 + draw(st.floats(20, 180)) for _ in range(n)], [Y0 + draw(st.floats(20, 180)) for _ in range(n)]
    )
    geom = shapely.union_all(shapely.buffer(pts, [draw(st.floats(5, 60)) for _ in range(n)], quad_segs=4))
    if draw(st.booleans()):
        geom = geom.difference(shapely.Point(X0 + 100, Y0 + 100).buffer(draw(st.floats(1, 30))))
    if draw(st.booleans()):
        geom = geom.union(_b(210, 210, 240, 230))
    return geom


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blobs(), st.lists(rectangles(), min_size=1, max_size=40), st.floats(0.2, 8), st.booleans())
def test_grid_decides_like_the_exact_tests(perimeter, rects, size, compiled):
    """Parcels of any size anywhere around a blob: same pairs, areas and flags with the grid
    (the numpy grid, or the compiled one of geo.kernels)."""
    small = [shapely.affinity.scale(r, size / 20, size / 20, origin=(X0, Y0)) for r in rects]
    parcels = np.array(rects + small + [shapely.affinity.translate(r, 40, 40) for r in small], dtype=object)
    _same_overlaps(
        classify.overlaps(parcels, np.array([perimeter]), compiled=compiled),
        _exact_only(parcels, [perimeter], compiled=compiled),
    )


@pytest.mark.parametrize("compiled", [False, True])
def test_grid_on_cell_edges(compiled):
    """Every cell of the grid as a parcel (edges exactly on grid lines), and a dot in each."""
    sector = _b(0, 0, 100, 100).difference(_b(40, 40, 60, 60)).union(Point(X0 + 30, Y0 + 130).buffer(17))
    grid = classify.perimeter_grid(sector)
    s, x0, y0 = grid.size, grid.x0, grid.y0
    i, j = (a.ravel() for a in np.meshgrid(np.arange(grid.nx), np.arange(grid.ny)))
    cells = list(shapely.box(x0 + i * s, y0 + j * s, x0 + (i + 1) * s, y0 + (j + 1) * s))
    cells += list(shapely.box(x0 + i * s, y0 + j * s, x0 + (i + 2) * s, y0 + (j + 2) * s))
    cells += list(shapely.box(x0 + (i + 0.4) * s, y0 + (j + 0.4) * s, x0 + (i + 0.6) * s, y0 + (j + 0.6) * s))
    parcels = np.array(cells + [_b(10, 10, 30, 30), _b(40, 40, 60, 60), _b(-5, 50, 5, 60)], dtype=object)
    found = classify.overlaps(parcels, np.array([sector]), compiled=compiled)
    _same_overlaps(found, _exact_only(parcels, [sector], compiled=compiled))
    assert len(found.parcel) > 100


@pytest.mark.parametrize("compiled", [False, True])
def test_a_parcel_wider_than_the_strips_is_listed_once(compiled):
    """A parcel over a kilometre wide (a forest, an airfield) near a perimeter: one row per
    perimeter, not one for its strip and one for being wide (a bug found at 1M parcels)."""
    wide = _b(-600, 40, 900, 60)  # 1.5 km wide, straddling the sector
    parcels = gpd.GeoDataFrame(
        {"idu": ["62907000AB0001", "62907000AB0002"]}, geometry=[wide, _b(10, 10, 20, 20)], crs=L93
    )
    sector = gpd.GeoDataFrame({"perimeter_id": ["s"]}, geometry=[_b(0, 0, 100, 100)], crs=L93)
    r = classify_parcels(parcels, sector, only_intersecting=True, with_distance=False, compiled=compiled)
    assert sorted(r["idu"]) == ["62907000AB0001", "62907000AB0002"]
    assert r.set_index("idu").loc["62907000AB0001", "status"] == STRADDLING


def test_sparse_verdicts_order_pairs_given_in_any_order():
    """Pairs from overlaps() come ordered; pairs computed elsewhere in any order give the same rows."""
    rng = np.random.default_rng(3)
    q = np.repeat(np.arange(40), 3)
    p = np.tile(np.arange(3), 40)
    area = rng.uniform(50, 500, len(q))
    found = classify.Overlaps(q, p, area * rng.uniform(0, 1, len(q)), np.zeros(len(q), bool))
    want = classify.sparse_verdicts(found, area, 1.0, 0.5)
    assert len(want[0]) > 50
    shuffle = rng.permutation(len(q))
    mixed = classify.Overlaps(*(a[shuffle] for a in found))
    got = classify.sparse_verdicts(mixed, area[shuffle], 1.0, 0.5)
    for a, b in zip(got, want, strict=True):
        assert np.array_equal(a, b)


# --- CRS and territory (geo.projection.check_plausible, which every reader goes through) ----------

_METRO = ("EPSG:2154", "EPSG:4326", "EPSG:3857", "EPSG:3944", "EPSG:3949", "EPSG:32631")


@hsettings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.floats(-1.0, 7.0),
    st.floats(43.5, 50.5),
    st.sampled_from(_METRO),
    st.sampled_from(_METRO),
)
def test_crs_and_territory(lon, lat, true_crs, declared):
    """Points of metropolitan France written in one CRS and declared in another: the true CRS
    is always accepted; a wrong one is accepted only when the numbers, read in it, fall in
    France, and degrees declared as metres or metres as degrees never are; the
    same coordinates with an overseas commune code are refused."""
    import geopandas as gpd

    from geo import projection
    from geo.errors import CRSError

    pts = gpd.GeoSeries.from_xy([lon, lon + 0.01], [lat, lat + 0.01], crs=4326).to_crs(true_crs)
    layer = gpd.GeoDataFrame({"id": ["a", "b"]}, geometry=pts)
    projection.check_plausible(layer, source="vrai.gpkg", code_insee="62001")
    with pytest.raises(CRSError):
        projection.check_plausible(layer, source="outre-mer.gpkg", code_insee="97411")
    lied = layer.set_crs(declared, allow_override=True)
    back = gpd.GeoSeries(lied.geometry.to_numpy(), crs=declared).to_crs(4326)
    in_france = bool(((back.x >= -6) & (back.x <= 10) & (back.y >= 41) & (back.y <= 51.6)).all())
    kinds = {projection.CRS.from_user_input(c).is_geographic for c in (true_crs, declared)}
    try:
        projection.check_plausible(lied, source="faux.gpkg", code_insee="62001")
    except CRSError as err:
        assert "faux.gpkg" in str(err)
    else:
        assert in_france and len(kinds) == 1
