"""Perimeter grids: which cells of a perimeter's box lie wholly inside, wholly outside it.

The shared floor of :mod:`geo.classify` (numpy) and :mod:`geo.kernels` (compiled): a coarse
grid over each perimeter decides most parcels from their bounding box alone, and
:class:`ByIdentity` remembers what is computed per perimeter object, batch after batch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

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
        edge = np.zeros((self.ny, self.nx), dtype=bool)
        span_i = int((i1 - i0).max(initial=0))
        span_j = int((j1 - j0).max(initial=0))
        for di in range(span_i + 1):
            for dj in range(span_j + 1):
                ok = (i0 + di <= i1) & (j0 + dj <= j1)
                edge[j0[ok] + dj, i0[ok] + di] = True
        # Runs of free cells along each row share one state: test the first cell of each run.
        free = ~edge
        start = free.copy()
        start[:, 1:] &= edge[:, :-1]
        run = np.cumsum(start.ravel()) - 1
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
        out[1:, 1:] = cells.cumsum(0).cumsum(1)
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


def perimeter_grid(geom) -> PerimeterGrid | None:
    """The grid of a polygonal perimeter (cached by its WKB), or None for other geometries."""
    if geom is None or shapely.is_empty(geom) or shapely.get_type_id(geom) not in (3, 6):
        return None
    return _grid_of(geom)


class ByIdentity:
    """``fn(WKB of a geometry)``, remembered for the geometry object itself.

    ``fn`` caches by WKB (equal geometries share a result); the same object again — batch
    after batch of a large run — then needs no WKB made and hashed. The object is kept with
    its result, so its ``id`` cannot be reused by another while the entry lives.
    """

    def __init__(self, fn: Callable[[bytes], object], size: int = 256) -> None:
        self.fn, self.size, self.seen = fn, size, {}

    def __call__(self, geom):
        seen = self.seen.get(id(geom))
        if seen is not None and seen[0] is geom:
            return seen[1]
        if len(self.seen) >= self.size:
            self.seen.clear()
        value = self.fn(shapely.to_wkb(geom))
        self.seen[id(geom)] = (geom, value)
        return value


#: Grids kept (about 0.4 MB each): enough for the perimeters near a few batches (a département
#: has a few dozen), not all of a national layer — a batch builds those near it again.
GRIDS_KEPT = 128


@functools.lru_cache(maxsize=GRIDS_KEPT)
def _grid(wkb: bytes) -> PerimeterGrid:
    geom = shapely.from_wkb(wkb)
    shapely.prepare(geom)
    return PerimeterGrid(geom)


_grid_of = ByIdentity(_grid, GRIDS_KEPT)
