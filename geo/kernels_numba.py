"""The engine's inner loops in numba: the reference of the C library, and its fallback.

The loops of :mod:`geo.kernels` (boundary areas, grid decisions, ring validity), compiled by
numba (:mod:`geo.scale.jit`: shipped with the wheel, else compiled once at first use). The
engine calls them only where the C library of :mod:`geo.native` is not there (built without a
C compiler, or ``ORT_NATIVE=0``); the tests compare the two. :mod:`geo.kernels` explains the
methods; the functions at the end (:func:`pair_areas`, :func:`decide`, :func:`rings_simple`)
are the interface both implementations share.
"""

from __future__ import annotations

import numpy as np

from geo.scale.jit import jit


def _jit(fn):
    # Compiled when the wheel is built (geo.scale.jit), else once at first use (numba's cache).
    return jit(fn)


@_jit
def _clip_into(ix, iy, n, ax, ay, bx, by, outx, outy):
    """The part of ring ``(ix, iy)[:n]`` left of (or on) the line a→b, written to ``out``."""
    if n == 0:
        return 0
    m = 0
    ex, ey = bx - ax, by - ay
    px, py = ix[n - 1], iy[n - 1]
    sp = ex * (py - ay) - ey * (px - ax)
    for k in range(n):
        qx, qy = ix[k], iy[k]
        sq = ex * (qy - ay) - ey * (qx - ax)
        if sq >= 0.0:
            if sp < 0.0:
                t = sp / (sp - sq)
                outx[m] = px + t * (qx - px)
                outy[m] = py + t * (qy - py)
                m += 1
            outx[m] = qx
            outy[m] = qy
            m += 1
        elif sp > 0.0:
            t = sp / (sp - sq)
            outx[m] = px + t * (qx - px)
            outy[m] = py + t * (qy - py)
            m += 1
        px, py, sp = qx, qy, sq
    return m


@_jit
def _twice_area(x, y, n):
    """Twice the signed area of the open ring ``(x, y)[:n]`` (positive counter-clockwise)."""
    if n < 3:
        return 0.0
    s = 0.0
    x0 = x[0]
    for i in range(1, n - 1):
        s += (x[i] - x0) * (y[i + 1] - y[i - 1])
    s += (x[n - 1] - x0) * (y[0] - y[n - 2])
    return s


@_jit
def _clip_window(cx, cy, nc, sx, sy, ns, x1, y1, x2, y2):
    """Ring ``s`` clipped by each edge of the convex counter-clockwise window ``c``.

    ``x1 … y2``: scratch buffers (replaced by bigger ones when a ring could outgrow them).
    Returns the clipped ring ``(x, y, n)``, held in one of the buffers; ``n`` < 3: nothing left.
    """
    x, y, n = sx, sy, ns
    for i in range(nc):
        j = i + 1 if i + 1 < nc else 0
        if 2 * n + 2 > len(x1):
            size = 4 * n + 8
            x1, y1, x2, y2 = np.empty(size), np.empty(size), np.empty(size), np.empty(size)
        if i % 2 == 0:
            n = _clip_into(x, y, n, cx[i], cy[i], cx[j], cy[j], x1, y1)
            x, y = x1, y1
        else:
            n = _clip_into(x, y, n, cx[i], cy[i], cx[j], cy[j], x2, y2)
            x, y = x2, y2
        if n < 3:
            return x, y, 0
    return x, y, n


@_jit
def _inside_window(cx, cy, nc, sx, sy, ns, x1, y1, x2, y2):
    """Twice the signed area of ring ``s`` within the convex counter-clockwise window ``c``."""
    x, y, n = _clip_window(cx, cy, nc, sx, sy, ns, x1, y1, x2, y2)
    return _twice_area(x, y, n)


@_jit
def _is_convex(x, y, n, sign):
    """Every turn of the open ring ``(x, y)[:n]`` goes the way of ``sign``, and it winds once."""
    for i in range(n):
        a = i - 1 if i > 0 else n - 1
        b = i + 1 if i + 1 < n else 0
        cross = (x[i] - x[a]) * (y[b] - y[i]) - (y[i] - y[a]) * (x[b] - x[i])
        if cross * sign < 0.0:
            return False
    # Winding once: along each axis the steps change direction at most twice around the ring.
    for axis in range(2):
        v = x if axis == 0 else y
        changes = 0
        first = 0.0
        last = 0.0
        for i in range(n):
            b = i + 1 if i + 1 < n else 0
            d = v[b] - v[i]
            if d != 0.0:
                if last == 0.0:
                    first = d
                elif (d > 0.0) != (last > 0.0):
                    changes += 1
                last = d
        if first != 0.0 and (first > 0.0) != (last > 0.0):
            changes += 1
        if changes > 2:
            return False
    return True


@_jit
def _reverse(x, y, n):
    """Reverse the first ``n`` points in place (a clockwise ring made counter-clockwise)."""
    for i in range(n // 2):
        j = n - 1 - i
        x[i], x[j] = x[j], x[i]
        y[i], y[j] = y[j], y[i]


@_jit
def _fan(px, py, pn, rx, ry, rn, tx, ty, w1, w2, w3, w4):
    """Twice the signed area of ring ``r`` within ring ``p``, by a fan of triangles of ``p``.

    The triangles from ``p``'s first vertex, each counted with the sign of its turn, have
    winding numbers that add up to ``p``'s: their windows over ring ``r`` add up to it. A
    triangle away from ring ``r``'s box holds none of it.
    """
    x0, y0, x1, y1 = rx[0], ry[0], rx[0], ry[0]
    for v in range(1, rn):
        x0, x1 = min(x0, rx[v]), max(x1, rx[v])
        y0, y1 = min(y0, ry[v]), max(y1, ry[v])
    tx[0], ty[0] = px[0], py[0]
    acc = 0.0
    for v in range(1, pn - 1):
        ax, ay, bx, by = px[v], py[v], px[v + 1], py[v + 1]
        if max(tx[0], ax, bx) < x0 or min(tx[0], ax, bx) > x1:
            continue
        if max(ty[0], ay, by) < y0 or min(ty[0], ay, by) > y1:
            continue
        cross = (ax - tx[0]) * (by - ty[0]) - (ay - ty[0]) * (bx - tx[0])
        if cross == 0.0:
            continue
        if cross > 0.0:
            tx[1], ty[1], tx[2], ty[2] = ax, ay, bx, by
            acc += _inside_window(tx, ty, 3, rx, ry, rn, w1, w2, w3, w4)
        else:
            tx[1], ty[1], tx[2], ty[2] = bx, by, ax, ay
            acc -= _inside_window(tx, ty, 3, rx, ry, rn, w1, w2, w3, w4)
    return acc


@_jit
def _pair_areas(
    which, ax, ay, a_start, a_lo, a_hi, a_w, bx, by, b_start, b_w, b_box, b_run, run_start, run_box
):
    """Area of parcel ``which[k]`` inside the perimeter given by the ``b_*`` rings, for each k."""
    out = np.zeros(len(which))
    # Scratch arrays made once for all pairs (a pair costs a few µs: allocations would show).
    longest_a = 3
    for k in range(len(which)):
        for ra in range(a_lo[which[k]], a_hi[which[k]]):
            longest_a = max(longest_a, a_start[ra + 1] - a_start[ra])
    longest_b = 3
    for rb in range(len(b_w)):
        longest_b = max(longest_b, b_start[rb + 1] - b_start[rb])
    lx, ly = np.empty(longest_a), np.empty(longest_a)
    sx, sy = np.empty(longest_b), np.empty(longest_b)
    qx, qy = np.empty(4), np.empty(4)
    tx, ty = np.zeros(3), np.zeros(3)
    buf = 4 * max(longest_a, longest_b) + 16
    w1, w2, w3, w4 = np.empty(buf), np.empty(buf), np.empty(buf), np.empty(buf)
    cx, cy = np.empty(buf), np.empty(buf)
    for k in range(len(which)):
        i = which[k]
        total = 0.0
        for ra in range(a_lo[i], a_hi[i]):
            s = a_start[ra]
            n = a_start[ra + 1] - s - 1  # the closing point repeats the first
            if n < 3:
                continue
            ox, oy = ax[s], ay[s]
            x0, y0, x1, y1 = np.inf, np.inf, -np.inf, -np.inf
            for v in range(n):
                lx[v] = ax[s + v] - ox
                ly[v] = ay[s + v] - oy
                x0 = min(x0, ax[s + v])
                y0 = min(y0, ay[s + v])
                x1 = max(x1, ax[s + v])
                y1 = max(y1, ay[s + v])
            twice = _twice_area(lx, ly, n)
            if twice == 0.0:
                continue
            sign = 1.0 if twice > 0.0 else -1.0
            convex = _is_convex(lx, ly, n, sign)
            if convex and sign < 0.0:
                _reverse(lx, ly, n)
            qx[0], qx[1], qx[2], qx[3] = x0 - ox, x1 - ox, x1 - ox, x0 - ox
            qy[0], qy[1], qy[2], qy[3] = y0 - oy, y0 - oy, y1 - oy, y1 - oy
            for rb in range(len(b_w)):
                if b_box[rb, 0] > x1 or b_box[rb, 2] < x0 or b_box[rb, 1] > y1 or b_box[rb, 3] < y0:
                    continue
                end = b_start[rb + 1] - 1
                m = 0
                # A run of ring b wholly on one side of the box becomes its chord: the chord
                # stays on that side, so nothing changes over the box.
                for c in range(b_run[rb], b_run[rb + 1]):
                    cs = run_start[c]
                    ce = run_start[c + 1] if c + 1 < b_run[rb + 1] else end
                    if run_box[c, 0] > x1 or run_box[c, 2] < x0 or run_box[c, 1] > y1 or run_box[c, 3] < y0:
                        sx[m] = bx[cs] - ox
                        sy[m] = by[cs] - oy
                        m += 1
                    else:
                        for v in range(cs, ce):
                            sx[m] = bx[v] - ox
                            sy[m] = by[v] - oy
                            m += 1
                # Ring b over the parcel ring's box (the only part that matters).
                bx_, by_, cn = _clip_window(qx, qy, 4, sx, sy, m, w1, w2, w3, w4)
                if cn < 3:
                    continue
                if cn > len(cx):
                    cx, cy = np.empty(2 * cn), np.empty(2 * cn)
                cx[:cn] = bx_[:cn]
                cy[:cn] = by_[:cn]
                twice_c = _twice_area(cx, cy, cn)
                if twice_c == 0.0:
                    continue
                sc = 1.0 if twice_c > 0.0 else -1.0
                if convex:
                    # The parcel ring (counter-clockwise now) is the window.
                    total += a_w[ra] * b_w[rb] * _inside_window(lx, ly, n, cx, cy, cn, w1, w2, w3, w4)
                elif _is_convex(cx, cy, cn, sc):
                    # Ring b over the box is convex: it is the window, the parcel ring is clipped.
                    if sc < 0.0:
                        _reverse(cx, cy, cn)
                    acc = sc * sign * _inside_window(cx, cy, cn, lx, ly, n, w1, w2, w3, w4)
                    total += a_w[ra] * b_w[rb] * acc
                else:
                    # Neither is convex: a fan of signed triangles, of whichever ring has fewer.
                    if cn < n:
                        acc = _fan(cx, cy, cn, lx, ly, n, tx, ty, w1, w2, w3, w4)
                    else:
                        acc = _fan(lx, ly, n, cx, cy, cn, tx, ty, w1, w2, w3, w4)
                    total += a_w[ra] * b_w[rb] * sign * acc
        out[k] = total / 2.0
    return out


@_jit
def _cell_range(lo, hi, origin, size, count, margin):
    # The same operations as PerimeterGrid._cols / _rows: the same cells.
    a = np.floor((lo - origin) / size - margin)
    b = np.floor((hi - origin) / size + margin)
    a = min(max(a, 0.0), count - 1.0)
    b = min(max(b, 0.0), count - 1.0)
    return int(a), int(b)


@_jit
def _decide(
    minx, miny, maxx, maxy, extent, free, box, grid, x0, y0, size, nx, ny, at, inside, outside, margin
):
    """Pairs (parcel, perimeter) the grids decide inside, and those left to the exact tests."""
    n, m = len(minx), len(box)
    cap = max(16, n)
    pq = np.empty(cap, dtype=np.intp)  # pairs: parcel, perimeter, decided inside (else: to test)
    pp = np.empty(cap, dtype=np.intp)
    whole = np.empty(cap, dtype=np.bool_)
    k = 0
    for j in range(m):
        bx0, by0, bx1, by1 = box[j, 0], box[j, 1], box[j, 2], box[j, 3]
        if not (bx0 <= extent[2] and bx1 >= extent[0] and by0 <= extent[3] and by1 >= extent[1]):
            continue  # no parcel of the batch near this perimeter
        for r in range(n):
            if not (minx[r] <= bx1 and maxx[r] >= bx0 and miny[r] <= by1 and maxy[r] >= by0):
                continue
            verdict = 0  # 1: inside cells only, -1: outside cells only, 0: to test
            if grid[j] and free[r]:
                i0, i1 = _cell_range(minx[r], maxx[r], x0[j], size[j], nx[j], margin)
                j0, j1 = _cell_range(miny[r], maxy[r], y0[j], size[j], ny[j], margin)
                cells = (i1 - i0 + 1) * (j1 - j0 + 1)
                w = nx[j] + 1
                base = at[j]
                k00, k01 = base + j0 * w + i0, base + j0 * w + i1 + 1
                k10, k11 = base + (j1 + 1) * w + i0, base + (j1 + 1) * w + i1 + 1
                if inside[k11] - inside[k01] - inside[k10] + inside[k00] == cells:
                    verdict = 1
                elif outside[k11] - outside[k01] - outside[k10] + outside[k00] == cells:
                    verdict = -1
            if verdict == -1:
                continue
            if k == len(pq):
                pq = np.concatenate((pq, np.empty(len(pq), dtype=np.intp)))
                pp = np.concatenate((pp, np.empty(len(pp), dtype=np.intp)))
                whole = np.concatenate((whole, np.empty(len(whole), dtype=np.bool_)))
            pq[k], pp[k], whole[k] = r, j, verdict == 1
            k += 1
    pq, pp, whole = pq[:k], pp[:k], whole[:k]
    return pq[whole], pp[whole], pq[~whole], pp[~whole]


# --- is a ring simple? (the validity test of the WKB scan) -----------------------------------

#: Relative bound on the rounding of an orientation test (Shewchuk's is 3.3e-16): a result
#: within it of zero is not trusted, and the ring goes to GEOS.
_ORIENT_TOL = 1e-12
#: Rings of more segments than this are swept (segments sorted by x) rather than compared
#: pairwise.
_PAIRWISE_MAX = 64


@_jit
def _apart(v, a, b):
    """Segments from ``v[a]`` and ``v[b]`` (x, y interleaved), whose boxes meet, certainly share
    no point: the ends of one strictly on one side of the other's line."""
    px, py, qx, qy = v[a], v[a + 1], v[a + 2], v[a + 3]
    rx, ry, sx, sy = v[b], v[b + 1], v[b + 2], v[b + 3]
    ux, uy = qx - px, qy - py
    t1, t2 = ux * (ry - py), uy * (rx - px)
    t3, t4 = ux * (sy - py), uy * (sx - px)
    d1, d2 = t1 - t2, t3 - t4
    e1 = _ORIENT_TOL * (abs(t1) + abs(t2))
    e2 = _ORIENT_TOL * (abs(t3) + abs(t4))
    if (d1 > e1 and d2 > e2) or (d1 < -e1 and d2 < -e2):
        return True
    wx, wy = sx - rx, sy - ry
    t1, t2 = wx * (py - ry), wy * (px - rx)
    t3, t4 = wx * (qy - ry), wy * (qx - rx)
    d1, d2 = t1 - t2, t3 - t4
    e1 = _ORIENT_TOL * (abs(t1) + abs(t2))
    e2 = _ORIENT_TOL * (abs(t3) + abs(t4))
    return (d1 > e1 and d2 > e2) or (d1 < -e1 and d2 < -e2)


@_jit
def ring_is_simple(v, k, points, order, seg, box):
    """The closed ring of ``points`` points from ``v[k]`` (x, y interleaved) is certainly a
    valid polygon shell: no two segments meet but consecutive ones, at their common point.

    False means *not certain*: a crossing, a touch, a spike, too few distinct points — or a
    test too close to call in floating point; GEOS then decides (``shapely.is_valid``).
    Segments of zero length (a repeated point, valid for GEOS) are skipped. ``order``,
    ``seg`` (int) and ``box`` (4 rows) are scratch arrays of at least ``points`` columns.

    Each segment is compared with those whose box meets its own: pairwise (without branches)
    for a parcel's ring of a few dozen segments, by a sweep over the segments sorted by their
    west end for longer rings.
    """
    m = 0
    for s in range(points - 1):
        a = k + 2 * s
        x0, y0, x1, y1 = v[a], v[a + 1], v[a + 2], v[a + 3]
        if x0 == x1 and y0 == y1:
            continue  # a repeated point
        seg[m] = a
        order[m] = m
        box[0, m] = x0 if x0 < x1 else x1
        box[1, m] = x1 if x0 < x1 else x0
        box[2, m] = y0 if y0 < y1 else y1
        box[3, m] = y1 if y0 < y1 else y0
        m += 1
    if m < 3:
        return False  # "too few points" for GEOS, or a degenerate ring
    # Consecutive segments meet at their common point only, unless the ring turns back on
    # itself along one line (a spike).
    for i in range(m):
        a = seg[i]
        b = seg[i + 1] if i + 1 < m else seg[0]
        ux, uy = v[a + 2] - v[a], v[a + 3] - v[a + 1]
        wx, wy = v[b + 2] - v[b], v[b + 3] - v[b + 1]
        c1, c2 = ux * wy, uy * wx
        if abs(c1 - c2) <= _ORIENT_TOL * (abs(c1) + abs(c2)):
            if not ux * wx + uy * wy > _ORIENT_TOL * (abs(ux * wx) + abs(uy * wy)):
                return False
    if m > _PAIRWISE_MAX:
        return _sweep(v, m, order, seg, box)
    # Each segment against all, in a loop without branches (vectorised): its box meets its own
    # and its two neighbours' boxes, and in a parcel's ring rarely any other.
    for i in range(m):
        x0, x1, y0, y1 = box[0, i], box[1, i], box[2, i], box[3, i]
        meets = 0
        for j in range(m):
            meets += (box[0, j] <= x1) & (box[1, j] >= x0) & (box[2, j] <= y1) & (box[3, j] >= y0)
        if meets <= 3:
            continue
        for j in range(m):
            d = i - j
            if d == 0 or d == 1 or d == -1 or d == m - 1 or d == 1 - m:
                continue  # itself, or consecutive: checked above
            if box[0, j] <= x1 and box[1, j] >= x0 and box[2, j] <= y1 and box[3, j] >= y0:
                if not _apart(v, seg[i], seg[j]):
                    return False
    return True


@_jit
def _sweep(v, m, order, seg, box):
    """The pairwise test of :func:`ring_is_simple` for long rings: each segment against those
    whose box meets its own, found by a sweep over the segments sorted by their west end."""
    order[:m] = np.argsort(box[0, :m], kind="mergesort")
    for i in range(m):
        r = order[i]
        east, south, north = box[1, r], box[2, r], box[3, r]
        for j in range(i + 1, m):
            q = order[j]
            if box[0, q] > east:
                break
            if box[2, q] > north or box[3, q] < south:
                continue
            d = r - q
            if d == 1 or d == -1 or d == m - 1 or d == 1 - m:
                continue  # consecutive: checked already
            if not _apart(v, seg[r], seg[q]):
                return False
    return True


@_jit
def scratch(points):
    """Scratch arrays of :func:`ring_is_simple` for rings of up to ``points`` points."""
    return np.empty(points, dtype=np.int64), np.empty(points, dtype=np.int64), np.empty((4, points))


@_jit
def _rings_simple(v, starts, out):
    longest = 4
    for r in range(len(out)):
        longest = max(longest, starts[r + 1] - starts[r])
    order, seg, box = scratch(longest)
    for r in range(len(out)):
        points = starts[r + 1] - starts[r]
        out[r] = points >= 4 and ring_is_simple(v, 2 * starts[r], points, order, seg, box)


# --- the interface shared with geo.native ------------------------------------------------------


def pair_areas(which, parcels, perimeter):
    """Area of each parcel ``which[k]`` inside one perimeter: :func:`_pair_areas` on the arrays
    of the parcels' rings and of the perimeter's (see geo.native.pair_areas)."""
    return _pair_areas(which, *parcels, *perimeter)


#: Pairs decided inside, and pairs left to the exact tests (see geo.kernels.grid_pairs).
decide = _decide
#: :func:`ring_is_simple` of each ring ``v[2 starts[r] : 2 starts[r + 1]]``, into ``out``.
rings_simple = _rings_simple
