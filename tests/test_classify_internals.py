"""The engine's shortcuts (geo.classify): each gives what the plain numpy or GEOS call gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from geo import classify


def test_points_found_from_their_boxes():
    """Points, empty points, missing geometries, a vertical segment, a polygon reduced to a
    point-sized box: the same answer as ``get_type_id == 0``."""
    geoms = np.array(
        [
            shapely.Point(1, 2),
            shapely.from_wkt("POINT EMPTY"),
            None,
            shapely.LineString([(0, 0), (0, 5)]),
            shapely.Polygon([(3, 3), (3, 3), (3, 3), (3, 3)]),
            shapely.box(0, 0, 1, 1),
            shapely.MultiPoint([(4, 4), (4, 4)]),
            shapely.Point(7, 7),
        ],
        dtype=object,
    )
    got = classify._points(geoms, shapely.bounds(geoms))
    assert np.array_equal(got, shapely.get_type_id(geoms) == 0)
    assert got.tolist() == [True, True, False, False, False, False, False, True]


@pytest.mark.parametrize("length", [0, 1, 5, 400, 3000])
def test_unique_by_table_is_numpy_unique(length):
    rng = np.random.default_rng(length)
    idx = rng.integers(0, 1000, length).astype(np.intp)
    ids, inv = classify._unique(idx, 1000)
    want_ids, want_inv = np.unique(idx, return_inverse=True)
    assert np.array_equal(ids, want_ids) and np.array_equal(inv, want_inv)
    assert ids.dtype == want_ids.dtype and inv.dtype == want_inv.dtype


@pytest.mark.parametrize("codes", [[0, 2, 1, 1, 0], [2], []])
def test_status_column_is_what_pandas_makes_of_the_names(codes):
    """The same column (values and dtype) as the object array of names pandas is given."""
    status = np.array(codes, dtype=np.int8)
    got = pd.DataFrame({"status": classify._status_column(status)})
    want = pd.DataFrame({"status": classify._STATUS_NAMES[status]})
    pd.testing.assert_frame_equal(got, want, check_exact=True)
