"""geo.scale.wkb reads one-ring polygons from WKB as GEOS would: same boxes, same area bits."""

from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa
import shapely

from geo.scale import wkb


def _ring_wkb(coords, *, order: str = "<", kind: int = 3) -> bytes:
    body = struct.pack(f"{order}I", len(coords)) + b"".join(
        struct.pack(f"{order}dd", x, y) for x, y in coords
    )
    return bytes([1 if order == "<" else 0]) + struct.pack(f"{order}II", kind, 1) + body


def test_real_parcels_bit_for_bit(epinay_parcelles, saint_marcel_dir):
    """Every real parcel of two communes: one-ring ones read, their boxes and areas the very
    numbers GEOS gives (areas compared with ==, not approximately)."""
    from geo.sources.cadastre import read_parcels

    for path in (epinay_parcelles, saint_marcel_dir / "cadastre-73253-parcelles.json"):
        geoms = read_parcels(path).geometry.to_numpy()
        one_ring = (shapely.get_type_id(geoms) == 3) & (shapely.get_num_interior_rings(geoms) == 0)
        column = pa.array(shapely.to_wkb(geoms, byte_order=1), type=pa.binary())
        got = wkb.scan(column)
        assert (got.simple == one_ring).all() and one_ring.mean() > 0.95
        assert np.array_equal(got.bounds[one_ring], shapely.bounds(geoms[one_ring]))
        assert np.array_equal(got.area[one_ring], shapely.area(geoms[one_ring]))
        assert np.isnan(got.area[~one_ring]).all()


def test_rows_left_to_geos():
    """Holes, several parts, 3D, big-endian, null, empty, unclosed, NaN, truncated: not read."""
    square = [(0, 0), (4, 0), (4, 4), (0, 4), (0, 0)]
    good = _ring_wkb(square)
    rows = [
        good,
        shapely.to_wkb(shapely.box(0, 0, 9, 9).difference(shapely.box(1, 1, 2, 2))),  # hole
        shapely.to_wkb(shapely.union(shapely.box(0, 0, 1, 1), shapely.box(5, 5, 6, 6))),  # two parts
        shapely.to_wkb(shapely.Polygon([(0, 0, 1), (4, 0, 1), (4, 4, 1), (0, 0, 1)])),  # 3D
        _ring_wkb(square, order=">"),  # big-endian
        None,
        shapely.to_wkb(shapely.Polygon()),
        _ring_wkb([(0, 0), (4, 0), (4, 4), (0, 4), (0, 1)]),  # unclosed
        _ring_wkb([(0, 0), (4, 0), (float("nan"), 4), (0, 4), (0, 0)]),
        good[:-8],  # truncated
        _ring_wkb(square, kind=2),  # a linestring's type
        good,
    ]
    got = wkb.scan(pa.array(rows, type=pa.binary()))
    assert got.simple.tolist() == [True] + [False] * 10 + [True]
    assert got.area[0] == got.area[-1] == 16.0
    assert got.bounds[0].tolist() == [0.0, 0.0, 4.0, 4.0]
    # A slice of a column (Arrow offset) and a chunked column read the same.
    sliced = wkb.scan(pa.chunked_array([pa.array(rows, type=pa.binary()).slice(5)]))
    assert sliced.simple.tolist() == got.simple[5:].tolist()
    assert wkb.scan(pa.array([], type=pa.binary())).simple.shape == (0,)
    assert wkb.scan(pa.array([b"\x01", None, good[:20]], type=pa.binary())).simple.tolist() == [False] * 3
