"""Perimeter grids: which cells of a perimeter's box lie wholly inside, wholly outside it.

The shared floor of :mod:`geo.classify` (numpy) and :mod:`geo.kernels` (compiled): a coarse
grid over each perimeter decides most parcels from their bounding box alone. Each grid is built
once per process, even when several threads ask for it at once (:func:`perimeter_grids` lets
them share the building), kept by the perimeter's WKB (equal geometries share a grid), and
:class:`ByIdentity` remembers it for the geometry object itself, batch after batch.
:class:`Once` is that cache, for anything derived from a perimeter's WKB.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import shapely

#: Cells along the longer side of a perimeter's grid.
GRID_CELLS = 256
#: Margin of every cell test, in cells: rounding can only make a cell 'boundary', never wrong.
GRID_MARGIN = 1e-6


class PerimeterGrid:
    """A coarse grid over one perimeter: cells wholly inside, wholly outside, or on the boundary.

    A cell (closed square) that no boundary segment comes near is entirely in the
    perimeter's interior or entirely outside it; its centre says which. Cells are marked
    'boundary' conservatively (by the bounding boxes of boundary segments shorter than a
    cell, with a margin), so 'inside' and 'outside' are exact. The grid has one cell of
    margin around the perimeter's bounding box: its outer cells are outside.

    ``inside`` and ``outside`` are summed-area tables (``(ny + 1, nx + 1)``, int32): the
    number of such cells in any rectangle of cells is four lookups (:meth:`decide`).
    """

    def __init__(self, geom) -> None:
        bx0, by0, bx1, by1 = shapely.bounds(geom)
        size = max(bx1 - bx0, by1 - by0) / (GRID_CELLS - 2)
        if not size > 0:
            size = 1.0
        self.size = size
        self.x0, self.y0 = bx0 - size, by0 - size
        self.nx = int(np.ceil((bx1 - self.x0) / size)) + 1
        self.ny = int(np.ceil((by1 - self.y0) / size)) + 1
        rings = shapely.get_parts(shapely.boundary(geom))
        xy, ring = shapely.get_coordinates(shapely.segmentize(rings, size / 2), return_index=True)
        same = ring[1:] == ring[:-1]
        a, b = xy[:-1][same], xy[1:][same]
        i0, i1 = self._cols(np.minimum(a[:, 0], b[:, 0]), np.maximum(a[:, 0], b[:, 0]))
        j0, j1 = self._rows(np.minimum(a[:, 1], b[:, 1]), np.maximum(a[:, 1], b[:, 1]))
        edge = _covered(self.ny, self.nx, i0, i1, j0, j1)
        # Runs of free cells along each row share one state: test the first cell of each run.
        free = ~edge
        start = free.copy()
        start[:, 1:] &= edge[:, :-1]
        run = np.cumsum(start.ravel(), dtype=np.int32) - 1
        first = np.flatnonzero(start.ravel())
        rows, cols = np.divmod(first, self.nx)
        state = shapely.contains_xy(geom, self.x0 + (cols + 0.5) * size, self.y0 + (rows + 0.5) * size)
        inside = free & state[run].reshape(free.shape)
        outside = free & ~inside
        self.inside = self._table(inside)
        self.outside = self._table(outside)

    def _cols(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        i0 = np.floor((lo - self.x0) / self.size - GRID_MARGIN)
        i1 = np.floor((hi - self.x0) / self.size + GRID_MARGIN)
        return np.clip(i0, 0, self.nx - 1).astype(np.intp), np.clip(i1, 0, self.nx - 1).astype(np.intp)

    def _rows(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        j0 = np.floor((lo - self.y0) / self.size - GRID_MARGIN)
        j1 = np.floor((hi - self.y0) / self.size + GRID_MARGIN)
        return np.clip(j0, 0, self.ny - 1).astype(np.intp), np.clip(j1, 0, self.ny - 1).astype(np.intp)

    @staticmethod
    def _table(cells: np.ndarray) -> np.ndarray:
        out = np.zeros((cells.shape[0] + 1, cells.shape[1] + 1), dtype=np.int32)
        out[1:, 1:] = _summed(cells)
        return out

    def decide(
        self, minx: np.ndarray, miny: np.ndarray, maxx: np.ndarray, maxy: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Which boxes lie over inside cells only, and which over outside cells only.

        Parts of a box beyond the grid are beyond the perimeter's bounding box: outside.
        """
        i0, i1 = self._cols(minx, maxx)
        j0, j1 = self._rows(miny, maxy)
        cells = (i1 - i0 + 1) * (j1 - j0 + 1)

        def count(table: np.ndarray) -> np.ndarray:
            return table[j1 + 1, i1 + 1] - table[j0, i1 + 1] - table[j1 + 1, i0] + table[j0, i0]

        return count(self.inside) == cells, count(self.outside) == cells


def _covered(ny: int, nx: int, i0: np.ndarray, i1: np.ndarray, j0: np.ndarray, j1: np.ndarray) -> np.ndarray:
    """The cells (``ny × nx`` bools) covered by any of the rectangles of cells ``[i0, i1] × [j0, j1]``.

    A rectangle of at most 2 × 2 cells (a boundary segment shorter than half a cell: nearly
    all) is its four corners; the others add +1 at two corners and −1 at the two others of a
    difference table, whose summed-area table counts the rectangles over each cell. No loop
    over rectangles or cells.
    """
    edge = np.zeros(ny * nx, dtype=bool)
    for row, col in ((j0, i0), (j0, i1), (j1, i0), (j1, i1)):
        edge[row * nx + col] = True
    wide = np.flatnonzero((i1 - i0 > 1) | (j1 - j0 > 1))
    edge = edge.reshape(ny, nx)
    if len(wide):
        i0, i1, j0, j1 = i0[wide], i1[wide], j0[wide], j1[wide]
        w = nx + 1
        plus = np.concatenate([j0 * w + i0, (j1 + 1) * w + (i1 + 1)])
        minus = np.concatenate([j0 * w + (i1 + 1), (j1 + 1) * w + i0])
        size = (ny + 1) * w
        diff = np.bincount(plus, minlength=size) - np.bincount(minus, minlength=size)
        edge |= _summed(diff.reshape(ny + 1, w)[:ny, :nx]) > 0
    return edge


def _summed(cells: np.ndarray) -> np.ndarray:
    """``cells.cumsum(0).cumsum(1)`` in int32, both sums along rows (numpy sums along a row
    several times faster than down a column: the second on the transpose)."""
    rows = np.cumsum(cells, axis=1, dtype=np.int32)
    cols = np.ascontiguousarray(rows.T)
    np.cumsum(cols, axis=1, out=cols)
    return cols.T


class ByIdentity:
    """``fn(WKB of a geometry)``, remembered for the geometry object itself.

    ``fn`` caches by WKB (equal geometries share a result); the same object again — batch
    after batch of a large run — then needs no WKB made and hashed. The object is kept with
    its result, so its ``id`` cannot be reused by another while the entry lives.
    """

    def __init__(self, fn: Callable[[bytes], object], size: int = 256) -> None:
        self.fn, self.size, self.seen = fn, size, {}

    def __call__(self, geom):
        value = self.known(geom)
        if value is None:
            value = self.fn(shapely.to_wkb(geom))
            self.remember(geom, value)
        return value

    def known(self, geom):
        """The value remembered for this very object, or None."""
        seen = self.seen.get(id(geom))
        return seen[1] if seen is not None and seen[0] is geom else None

    def remember(self, geom, value) -> None:
        if len(self.seen) >= self.size:
            self.seen.clear()
        self.seen[id(geom)] = (geom, value)


#: Grids kept (about 0.5 MB each): enough for the perimeters near a few batches (a département
#: has a few dozen), not all of a national layer — a batch builds those near it again.
GRIDS_KEPT = 128


class Once:
    """``build(key)`` kept by key (bytes: a WKB), built by one thread while the others wait.

    ``functools.lru_cache`` lets two threads missing the same key build it both, and keeps
    it only once both are done; here the first claims it and the others wait for its result,
    or (:meth:`get` with ``wait=False``) do other work first: two threads asking for the
    same perimeters build them in turn, each its share, never the same one twice. The newest
    ``size`` results are kept (``build`` never returns None); a build that fails leaves no claim
    behind.
    """

    def __init__(self, build: Callable[[bytes], object], size: int) -> None:
        self.build, self.size = build, size
        self.lock = threading.Lock()
        self.done: OrderedDict[bytes, object] = OrderedDict()
        self.building: dict[bytes, threading.Event] = {}

    def get(self, key: bytes, *, wait: bool = True):
        """The value for ``key``, built here unless another thread builds it: then, with
        ``wait=False``, None at once; else once that thread is done."""
        while True:
            with self.lock:
                value = self.done.get(key)
                if value is not None:
                    self.done.move_to_end(key)
                    return value
                busy = self.building.get(key)
                if busy is None:
                    busy = self.building[key] = threading.Event()
                    break  # this thread builds it
            if not wait:
                return None
            busy.wait()  # then look again (the builder may have failed: build it here)
        try:
            value = self.build(key)
            with self.lock:
                self.done[key] = value
                while len(self.done) > self.size:
                    self.done.popitem(last=False)
            return value
        finally:
            with self.lock:
                del self.building[key]
            busy.set()

    def clear(self) -> None:
        with self.lock:
            self.done.clear()


def _grid_of_wkb(wkb: bytes) -> PerimeterGrid:
    geom = shapely.from_wkb(wkb)
    shapely.prepare(geom)
    return PerimeterGrid(geom)


_grids = Once(_grid_of_wkb, GRIDS_KEPT)
_grid_of = ByIdentity(_grids.get, GRIDS_KEPT)


def _polygonal(geom) -> bool:
    return geom is not None and not shapely.is_empty(geom) and shapely.get_type_id(geom) in (3, 6)


def perimeter_grid(geom) -> PerimeterGrid | None:
    """The grid of a polygonal perimeter (kept by its WKB), or None for other geometries."""
    return _grid_of(geom) if _polygonal(geom) else None


def each_built(geoms: Sequence, once: Once, by_identity: ByIdentity) -> Iterator[tuple[int, object]]:
    """``(k, value)`` for each geometry ``geoms[k]``, the value ``once.get(WKB)`` remembered by
    ``by_identity`` (whose ``fn`` is ``once.get``): those no other thread is building first, then
    those waited for — threads asking at once for the same geometries build their share each."""
    later = []
    for k, geom in enumerate(geoms):
        value = by_identity.known(geom)
        if value is None:
            wkb = shapely.to_wkb(geom)
            value = once.get(wkb, wait=False)
            if value is None:
                later.append((k, wkb))
                continue
            by_identity.remember(geom, value)
        yield k, value
    for k, wkb in later:
        value = once.get(wkb)
        by_identity.remember(geoms[k], value)
        yield k, value


def perimeter_grids(geoms: Sequence) -> list[PerimeterGrid | None]:
    """:func:`perimeter_grid` of each geometry; threads asking at once share the building.

    The grids nobody is building are built first; those another thread is building are
    waited for at the end: two threads given the same perimeters build half of them each.
    """
    out: list[PerimeterGrid | None] = [None] * len(geoms)
    polygonal = [k for k, geom in enumerate(geoms) if _polygonal(geom)]
    for k, grid in each_built([geoms[k] for k in polygonal], _grids, _grid_of):
        out[polygonal[k]] = grid
    return out
