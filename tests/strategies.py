"""Hypothesis strategies shared by the tests of the engine's loops (``test_kernels``, ``test_native``)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

#: Lambert-93 numbers: products of them must not lose precision.
X0, Y0 = 650_000.0, 6_860_000.0


@st.composite
def rings(draw, max_points: int = 14):
    """Closed rings likely to be invalid: few points on a small integer grid (repeated points,
    spikes, touches, bow ties), or points in any order around a centre, at Lambert-93 numbers."""
    n = draw(st.integers(3, max_points))
    if draw(st.booleans()):
        pts = draw(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=n, max_size=n))
        xy = np.array(pts, dtype=float) * draw(st.sampled_from([1.0, 0.1, 1e-6]))
    else:
        ang = np.sort(np.array(draw(st.lists(st.floats(0, 2 * np.pi), min_size=n, max_size=n))))
        rad = np.array(draw(st.lists(st.floats(0.05, 30.0), min_size=n, max_size=n)))
        xy = np.c_[rad * np.cos(ang), rad * np.sin(ang)]
        if draw(st.booleans()):  # two points swapped: often a crossing
            i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
            xy[[i, j]] = xy[[j, i]]
    xy = xy + (X0, Y0)
    return np.vstack([xy, xy[:1]])
