"""The perimeter grids (geo.grid): the same cells as the first, loop-built grid, exact and
conservative on real boundaries, and each grid built once when threads ask at once."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from conftest import at_once

from geo import grid
from geo.perimeters import read_convention

ROOT = Path(__file__).resolve().parent.parent


def _reference_tables(geom) -> tuple[np.ndarray, np.ndarray]:
    """The summed-area tables of the grid as first written (a Python loop over the cells each
    boundary segment spans, int64 sums): the new grid must give these, cell for cell."""
    g = grid.PerimeterGrid.__new__(grid.PerimeterGrid)
    bx0, by0, bx1, by1 = shapely.bounds(geom)
    size = max(bx1 - bx0, by1 - by0) / (grid.GRID_CELLS - 2)
    if not size > 0:
        size = 1.0
    g.size, g.x0, g.y0 = size, bx0 - size, by0 - size
    g.nx = int(np.ceil((bx1 - g.x0) / size)) + 1
    g.ny = int(np.ceil((by1 - g.y0) / size)) + 1
    rings = shapely.get_parts(shapely.boundary(geom))
    xy, ring = shapely.get_coordinates(shapely.segmentize(rings, size / 2), return_index=True)
    same = ring[1:] == ring[:-1]
    a, b = xy[:-1][same], xy[1:][same]
    i0, i1 = g._cols(np.minimum(a[:, 0], b[:, 0]), np.maximum(a[:, 0], b[:, 0]))
    j0, j1 = g._rows(np.minimum(a[:, 1], b[:, 1]), np.maximum(a[:, 1], b[:, 1]))
    edge = np.zeros((g.ny, g.nx), dtype=bool)
    for di in range(int((i1 - i0).max(initial=0)) + 1):
        for dj in range(int((j1 - j0).max(initial=0)) + 1):
            ok = (i0 + di <= i1) & (j0 + dj <= j1)
            edge[j0[ok] + dj, i0[ok] + di] = True
    free = ~edge
    start = free.copy()
    start[:, 1:] &= edge[:, :-1]
    run = np.cumsum(start.ravel()) - 1
    rows, cols = np.divmod(np.flatnonzero(start.ravel()), g.nx)
    state = shapely.contains_xy(geom, g.x0 + (cols + 0.5) * size, g.y0 + (rows + 0.5) * size)
    inside = free & state[run].reshape(free.shape)

    def table(cells):
        out = np.zeros((cells.shape[0] + 1, cells.shape[1] + 1), dtype=np.int64)
        out[1:, 1:] = cells.cumsum(0).cumsum(1)
        return out

    return table(inside), table(free & ~inside)


def _cells(g: grid.PerimeterGrid, table: np.ndarray) -> np.ndarray:
    """The cells (row, column) a summed-area table counts."""
    one = np.diff(np.diff(table, axis=0), axis=1)
    return np.argwhere(one == 1)


def _check(geoms, *, sample: int = 400, seed: int = 0, both: bool = True) -> int:
    """Each grid equals the reference; sampled inside cells lie in the interior, sampled outside
    cells outside (GEOS, on the closed cells). Returns the number of grids checked."""
    rng = np.random.default_rng(seed)
    done = 0
    for geom in geoms:
        shapely.prepare(geom)
        new = grid.PerimeterGrid(geom)
        inside, outside = _reference_tables(geom)
        assert new.inside.dtype == np.int32 and new.outside.dtype == np.int32
        assert np.array_equal(new.inside, inside) and np.array_equal(new.outside, outside)
        for table, wanted in ((new.inside, "inside"), (new.outside, "outside")):
            cells = _cells(new, table)
            assert len(cells) or not both, wanted  # every real perimeter has both
            if not len(cells):
                continue
            cells = cells[rng.choice(len(cells), min(sample, len(cells)), replace=False)]
            j, i = cells[:, 0], cells[:, 1]
            s = new.size
            boxes = shapely.box(new.x0 + i * s, new.y0 + j * s, new.x0 + (i + 1) * s, new.y0 + (j + 1) * s)
            if wanted == "inside":  # in the interior: the closed cell touches no boundary
                assert shapely.contains_properly(geom, boxes).all()
            else:
                assert shapely.disjoint(geom, boxes).all()
        done += 1
    return done


def _bench():
    spec = importlib.util.spec_from_file_location("bench_scale", ROOT / "bench" / "bench_scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_perimeters():
    """The demo convention's perimeters, every version."""
    conv = read_convention(ROOT / "perimeters" / "demo")
    geoms = [g for v in conv.versions for g in conv.perimeters(version=v.id).geometry]
    assert _check(geoms) >= 4


def test_real_communes_around_libercourt(shared_data):
    """Libercourt (62907) and its neighbours' real boundaries (the Libercourt convention has no
    digitised perimeter yet: its commune stands for it), and a sample of the 62's communes."""
    folder = shared_data / "communes-62-france-geojson"
    near = gpd.read_file(folder / "communes-libercourt-cahc-voisines.geojson").to_crs(2154)
    assert _check(list(near.geometry)) == len(near)
    communes = gpd.read_file(folder / "communes-62-pas-de-calais.geojson").to_crs(2154)
    assert _check(list(communes.geometry.iloc[::40])) > 10


def test_bench_perimeters_over_real_parcels(epinay_parcelles):
    """The benchmark's perimeters (blobs, holes, two parts, wiggled boundaries of thousands of
    vertices), drawn over real parcels of Épinay-sur-Orge."""
    from geo.sources.cadastre import read_parcels

    perims = _bench().synthetic_perimeters(read_parcels(epinay_parcelles), 12, spacing=2.0)
    assert shapely.get_num_coordinates(perims.geometry.to_numpy()).max() > 1000
    assert _check(list(perims.geometry)) == 12


def test_odd_shapes():
    """A sliver, a tiny square, a multipolygon with a hole, a ring along the grid lines."""
    holed = shapely.box(0, 0, 100, 100).difference(shapely.box(40, 40, 60, 60))
    shapes = [
        shapely.box(0, 0, 1000, 0.5),
        shapely.box(0, 0, 0.01, 0.01),
        shapely.union(holed, shapely.Point(300, 50).buffer(30)),
        shapely.box(0, 0, 254, 254),
    ]
    assert _check(shapes, both=False) == 4


def test_threads_asking_at_once_build_each_grid_once(monkeypatch):
    """Two threads asking for the same perimeters (their own copies, as the slices of a run
    have) share the building: each grid built once, the same grid to both."""
    built, lock = [], threading.Lock()
    init = grid.PerimeterGrid.__init__

    def counting(self, geom):
        with lock:
            built.append(shapely.to_wkb(geom))
        init(self, geom)

    monkeypatch.setattr(grid.PerimeterGrid, "__init__", counting)
    monkeypatch.setattr(grid, "_grids", grid.Once(grid._grid_of_wkb, grid.GRIDS_KEPT))
    monkeypatch.setattr(grid, "_grid_of", grid.ByIdentity(grid._grids.get, grid.GRIDS_KEPT))
    perims = [shapely.Point(k * 1000.0, 0).buffer(300.0 + k, quad_segs=64) for k in range(24)]
    wkb = shapely.to_wkb(np.array(perims, dtype=object))
    got: dict[int, list] = {}
    copies = [shapely.from_wkb(wkb) for _ in range(3)]  # each thread's own: no identity shared

    def ask(k: int) -> None:
        got[k] = grid.perimeter_grids(list(copies[k]) + [None, shapely.Point(0, 0)])

    at_once(3, ask)
    assert len(built) == len(perims) == len(set(built))
    for k in (1, 2):
        assert all(a is b for a, b in zip(got[0], got[k], strict=True))
    assert got[0][-2:] == [None, None]
    # Asked again, by object or by an equal copy: nothing built.
    assert grid.perimeter_grid(perims[3]) is got[0][3]
    assert len(built) == len(perims)


def test_a_failed_build_leaves_no_claim(monkeypatch):
    """A grid whose building failed is built again by the next caller (no thread left waiting)."""
    monkeypatch.setattr(grid, "_grids", grid.Once(grid._grid_of_wkb, grid.GRIDS_KEPT))
    square = shapely.box(0, 0, 10, 10)
    wkb = shapely.to_wkb(square)
    init = grid.PerimeterGrid.__init__

    def failing(self, geom):
        raise MemoryError("no room")

    monkeypatch.setattr(grid.PerimeterGrid, "__init__", failing)
    with pytest.raises(MemoryError):
        grid._grids.get(wkb)
    monkeypatch.setattr(grid.PerimeterGrid, "__init__", init)
    assert grid._grids.get(wkb, wait=False) is not None
    assert not grid._grids.building


def test_covered_cells_of_small_and_wide_rectangles():
    """Boundary cells marked by corners (rectangles of up to 2 × 2 cells) or by the difference
    table (wider ones): the union of the rectangles, as a loop over them marks it."""
    rng = np.random.default_rng(3)
    ny, nx, n = 40, 50, 300
    j0, i0 = rng.integers(0, ny, n), rng.integers(0, nx, n)
    wide = rng.random(n) < 0.1
    span = np.where(wide, 6, 2)
    j1 = np.minimum(j0 + rng.integers(0, span), ny - 1)
    i1 = np.minimum(i0 + rng.integers(0, span), nx - 1)
    want = np.zeros((ny, nx), dtype=bool)
    for a, b, c, d in zip(j0, j1, i0, i1, strict=True):
        want[a : b + 1, c : d + 1] = True
    assert ((i1 - i0 > 1) | (j1 - j0 > 1)).sum() > 10
    assert np.array_equal(grid._covered(ny, nx, i0, i1, j0, j1), want)
    small = ~wide
    want_small = np.zeros((ny, nx), dtype=bool)
    for a, b, c, d in zip(j0[small], j1[small], i0[small], i1[small], strict=True):
        want_small[a : b + 1, c : d + 1] = True
    got = grid._covered(ny, nx, i0[small], i1[small], j0[small], j1[small])
    assert np.array_equal(got, want_small)
