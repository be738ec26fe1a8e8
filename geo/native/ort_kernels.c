/* The engine's inner loops in plain C, called through ctypes (geo/native/__init__.py).
 *
 * The same loops as the numba reference (geo/kernels_numba.py, geo/scale/wkb_numba.py), with
 * the same floating-point operations in the same order: built without -ffast-math and with
 * -ffp-contract=off (no fused multiply-add), they give the same bits. min/max are Python's
 * (the first argument unless the second is strictly smaller / greater), as numba's.
 *
 * No Python C-API: every array comes as a pointer and a length. Scratch memory is the
 * library's own (malloc, freed before returning); a function that could not allocate it
 * returns -1 (the caller raises MemoryError). Coordinates are float64, indices int64,
 * booleans one byte (numpy's bool), WKB offsets int32 (Arrow's binary offsets).
 */

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The ring test's all-pairs loop vectorises four boxes at a time with AVX2 (as numba compiles for
 * the processor it runs on): built twice, the processor picks at load (comparisons only: the
 * same answers either way). */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(ORT_NO_CLONES)
#define VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VECTOR_CLONES
#endif

/* Tests build the library with ORT_SMALL_SCRATCH too: every growable buffer then starts too
 * small, so that each one grows (tests/test_native.py). */
#ifdef ORT_SMALL_SCRATCH
#define SCRATCH(n) 8
#else
#define SCRATCH(n) (n)
#endif

#define MIN(a, b) ((b) < (a) ? (b) : (a))
#define MAX(a, b) ((b) > (a) ? (b) : (a))

/* The version of this interface: geo/native/__init__.py refuses a library of another one. */
int64_t ort_abi_version(void) { return 1; }

/* --- boundary areas ------------------------------------------------------------------------ */

/* Scratch rings of the clips (grown when a ring could outgrow them). */
typedef struct {
    double *x1, *y1, *x2, *y2;
    int64_t cap;
    int failed;
} Work;

static int work_init(Work *w, int64_t cap) {
    w->x1 = malloc(sizeof(double) * cap);
    w->y1 = malloc(sizeof(double) * cap);
    w->x2 = malloc(sizeof(double) * cap);
    w->y2 = malloc(sizeof(double) * cap);
    w->cap = cap;
    w->failed = 0;
    return w->x1 && w->y1 && w->x2 && w->y2;
}

static void work_free(Work *w) {
    free(w->x1);
    free(w->y1);
    free(w->x2);
    free(w->y2);
}

/* Bigger buffers; the ring (*x, *y)[:n], when held in the old ones, is moved to the new. */
static int work_grow(Work *w, int64_t cap, const double **x, const double **y, int64_t n) {
    Work g;
    if (!work_init(&g, cap)) {
        work_free(&g);
        return 0;
    }
    if (*x == w->x1) {
        memcpy(g.x1, w->x1, sizeof(double) * n);
        memcpy(g.y1, w->y1, sizeof(double) * n);
        *x = g.x1;
        *y = g.y1;
    } else if (*x == w->x2) {
        memcpy(g.x2, w->x2, sizeof(double) * n);
        memcpy(g.y2, w->y2, sizeof(double) * n);
        *x = g.x2;
        *y = g.y2;
    }
    work_free(w);
    *w = g;
    return 1;
}

/* The part of ring (ix, iy)[:n] left of (or on) the line a->b, written to out. */
static int64_t clip_into(const double *ix, const double *iy, int64_t n, double ax, double ay, double bx,
                         double by, double *outx, double *outy) {
    if (n == 0) return 0;
    int64_t m = 0;
    double ex = bx - ax, ey = by - ay;
    double px = ix[n - 1], py = iy[n - 1];
    double sp = ex * (py - ay) - ey * (px - ax);
    for (int64_t k = 0; k < n; k++) {
        double qx = ix[k], qy = iy[k];
        double sq = ex * (qy - ay) - ey * (qx - ax);
        if (sq >= 0.0) {
            if (sp < 0.0) {
                double t = sp / (sp - sq);
                outx[m] = px + t * (qx - px);
                outy[m] = py + t * (qy - py);
                m++;
            }
            outx[m] = qx;
            outy[m] = qy;
            m++;
        } else if (sp > 0.0) {
            double t = sp / (sp - sq);
            outx[m] = px + t * (qx - px);
            outy[m] = py + t * (qy - py);
            m++;
        }
        px = qx;
        py = qy;
        sp = sq;
    }
    return m;
}

/* Twice the signed area of the open ring (x, y)[:n] (positive counter-clockwise). */
static double twice_area(const double *x, const double *y, int64_t n) {
    if (n < 3) return 0.0;
    double s = 0.0;
    double x0 = x[0];
    for (int64_t i = 1; i < n - 1; i++) s += (x[i] - x0) * (y[i + 1] - y[i - 1]);
    s += (x[n - 1] - x0) * (y[0] - y[n - 2]);
    return s;
}

/* Ring s clipped by each edge of the convex counter-clockwise window c: its length (< 3:
 * nothing left), the ring in (*rx, *ry), held in the work buffers. */
static int64_t clip_window(const double *cx, const double *cy, int64_t nc, const double *sx, const double *sy,
                           int64_t ns, Work *w, const double **rx, const double **ry) {
    const double *x = sx, *y = sy;
    int64_t n = ns;
    for (int64_t i = 0; i < nc; i++) {
        int64_t j = i + 1 < nc ? i + 1 : 0;
        if (2 * n + 2 > w->cap && !work_grow(w, 4 * n + 8, &x, &y, n)) {
            w->failed = 1;
            *rx = x;
            *ry = y;
            return 0;
        }
        if (i % 2 == 0) {
            n = clip_into(x, y, n, cx[i], cy[i], cx[j], cy[j], w->x1, w->y1);
            x = w->x1;
            y = w->y1;
        } else {
            n = clip_into(x, y, n, cx[i], cy[i], cx[j], cy[j], w->x2, w->y2);
            x = w->x2;
            y = w->y2;
        }
        if (n < 3) {
            *rx = x;
            *ry = y;
            return 0;
        }
    }
    *rx = x;
    *ry = y;
    return n;
}

/* Twice the signed area of ring s within the convex counter-clockwise window c. */
static double inside_window(const double *cx, const double *cy, int64_t nc, const double *sx, const double *sy,
                            int64_t ns, Work *w) {
    const double *x, *y;
    int64_t n = clip_window(cx, cy, nc, sx, sy, ns, w, &x, &y);
    return twice_area(x, y, n);
}

/* Every turn of the open ring (x, y)[:n] goes the way of sign, and it winds once. */
static int is_convex(const double *x, const double *y, int64_t n, double sign) {
    for (int64_t i = 0; i < n; i++) {
        int64_t a = i > 0 ? i - 1 : n - 1;
        int64_t b = i + 1 < n ? i + 1 : 0;
        double cross = (x[i] - x[a]) * (y[b] - y[i]) - (y[i] - y[a]) * (x[b] - x[i]);
        if (cross * sign < 0.0) return 0;
    }
    for (int axis = 0; axis < 2; axis++) {
        const double *v = axis == 0 ? x : y;
        int64_t changes = 0;
        double first = 0.0, last = 0.0;
        for (int64_t i = 0; i < n; i++) {
            int64_t b = i + 1 < n ? i + 1 : 0;
            double d = v[b] - v[i];
            if (d != 0.0) {
                if (last == 0.0)
                    first = d;
                else if ((d > 0.0) != (last > 0.0))
                    changes++;
                last = d;
            }
        }
        if (first != 0.0 && (first > 0.0) != (last > 0.0)) changes++;
        if (changes > 2) return 0;
    }
    return 1;
}

static void reverse(double *x, double *y, int64_t n) {
    for (int64_t i = 0; i < n / 2; i++) {
        int64_t j = n - 1 - i;
        double t = x[i];
        x[i] = x[j];
        x[j] = t;
        t = y[i];
        y[i] = y[j];
        y[j] = t;
    }
}

/* Twice the signed area of ring r within ring p, by a fan of signed triangles of p. */
static double fan(const double *px, const double *py, int64_t pn, const double *rx, const double *ry, int64_t rn,
                  double *tx, double *ty, Work *w) {
    double x0 = rx[0], y0 = ry[0], x1 = rx[0], y1 = ry[0];
    for (int64_t v = 1; v < rn; v++) {
        x0 = MIN(x0, rx[v]);
        x1 = MAX(x1, rx[v]);
        y0 = MIN(y0, ry[v]);
        y1 = MAX(y1, ry[v]);
    }
    tx[0] = px[0];
    ty[0] = py[0];
    double acc = 0.0;
    for (int64_t v = 1; v < pn - 1; v++) {
        double ax = px[v], ay = py[v], bx = px[v + 1], by = py[v + 1];
        if (MAX(MAX(tx[0], ax), bx) < x0 || MIN(MIN(tx[0], ax), bx) > x1) continue;
        if (MAX(MAX(ty[0], ay), by) < y0 || MIN(MIN(ty[0], ay), by) > y1) continue;
        double cross = (ax - tx[0]) * (by - ty[0]) - (ay - ty[0]) * (bx - tx[0]);
        if (cross == 0.0) continue;
        if (cross > 0.0) {
            tx[1] = ax;
            ty[1] = ay;
            tx[2] = bx;
            ty[2] = by;
            acc += inside_window(tx, ty, 3, rx, ry, rn, w);
        } else {
            tx[1] = bx;
            ty[1] = by;
            tx[2] = ax;
            ty[2] = ay;
            acc -= inside_window(tx, ty, 3, rx, ry, rn, w);
        }
    }
    return acc;
}

/* Area of parcel which[k] inside the perimeter given by the b rings, for each k, into out.
 * b_box and run_box: 4 columns (minx, miny, maxx, maxy) per row. Returns 0, or -1 (memory). */
int64_t ort_pair_areas(int64_t count, const int64_t *which, const double *ax, const double *ay,
                       const int64_t *a_start, const int64_t *a_lo, const int64_t *a_hi, const double *a_w,
                       const double *bx, const double *by, const int64_t *b_start, int64_t nb, const double *b_w,
                       const double *b_box, const int64_t *b_run, const int64_t *run_start, const double *run_box,
                       double *out) {
    int64_t longest_a = 3, longest_b = 3;
    for (int64_t k = 0; k < count; k++)
        for (int64_t ra = a_lo[which[k]]; ra < a_hi[which[k]]; ra++)
            longest_a = MAX(longest_a, a_start[ra + 1] - a_start[ra]);
    for (int64_t rb = 0; rb < nb; rb++) longest_b = MAX(longest_b, b_start[rb + 1] - b_start[rb]);
    int64_t buf = SCRATCH(4 * MAX(longest_a, longest_b) + 16), ccap = buf;
    double *lx = malloc(sizeof(double) * longest_a), *ly = malloc(sizeof(double) * longest_a);
    double *sx = malloc(sizeof(double) * longest_b), *sy = malloc(sizeof(double) * longest_b);
    double *cx = malloc(sizeof(double) * ccap), *cy = malloc(sizeof(double) * ccap);
    double qx[4], qy[4], tx[3] = {0.0, 0.0, 0.0}, ty[3] = {0.0, 0.0, 0.0};
    Work w;
    int ok = work_init(&w, buf) && lx && ly && sx && sy && cx && cy;
    for (int64_t k = 0; ok && k < count; k++) {
        int64_t i = which[k];
        double total = 0.0;
        for (int64_t ra = a_lo[i]; ok && ra < a_hi[i]; ra++) {
            int64_t s = a_start[ra];
            int64_t n = a_start[ra + 1] - s - 1; /* the closing point repeats the first */
            if (n < 3) continue;
            double ox = ax[s], oy = ay[s];
            double x0 = INFINITY, y0 = INFINITY, x1 = -INFINITY, y1 = -INFINITY;
            for (int64_t v = 0; v < n; v++) {
                lx[v] = ax[s + v] - ox;
                ly[v] = ay[s + v] - oy;
                x0 = MIN(x0, ax[s + v]);
                y0 = MIN(y0, ay[s + v]);
                x1 = MAX(x1, ax[s + v]);
                y1 = MAX(y1, ay[s + v]);
            }
            double twice = twice_area(lx, ly, n);
            if (twice == 0.0) continue;
            double sign = twice > 0.0 ? 1.0 : -1.0;
            int convex = is_convex(lx, ly, n, sign);
            if (convex && sign < 0.0) reverse(lx, ly, n);
            qx[0] = x0 - ox;
            qx[1] = x1 - ox;
            qx[2] = x1 - ox;
            qx[3] = x0 - ox;
            qy[0] = y0 - oy;
            qy[1] = y0 - oy;
            qy[2] = y1 - oy;
            qy[3] = y1 - oy;
            for (int64_t rb = 0; rb < nb; rb++) {
                const double *bb = b_box + 4 * rb;
                if (bb[0] > x1 || bb[2] < x0 || bb[1] > y1 || bb[3] < y0) continue;
                int64_t end = b_start[rb + 1] - 1;
                int64_t m = 0;
                /* A run of ring b wholly on one side of the box becomes its chord. */
                for (int64_t c = b_run[rb]; c < b_run[rb + 1]; c++) {
                    int64_t cs = run_start[c];
                    int64_t ce = c + 1 < b_run[rb + 1] ? run_start[c + 1] : end;
                    const double *rbx = run_box + 4 * c;
                    if (rbx[0] > x1 || rbx[2] < x0 || rbx[1] > y1 || rbx[3] < y0) {
                        sx[m] = bx[cs] - ox;
                        sy[m] = by[cs] - oy;
                        m++;
                    } else {
                        for (int64_t v = cs; v < ce; v++) {
                            sx[m] = bx[v] - ox;
                            sy[m] = by[v] - oy;
                            m++;
                        }
                    }
                }
                const double *bx_, *by_;
                int64_t cn = clip_window(qx, qy, 4, sx, sy, m, &w, &bx_, &by_);
                if (w.failed) {
                    ok = 0;
                    break;
                }
                if (cn < 3) continue;
                if (cn > ccap) {
                    free(cx);
                    free(cy);
                    ccap = 2 * cn;
                    cx = malloc(sizeof(double) * ccap);
                    cy = malloc(sizeof(double) * ccap);
                    if (!cx || !cy) {
                        ok = 0;
                        break;
                    }
                }
                memcpy(cx, bx_, sizeof(double) * cn);
                memcpy(cy, by_, sizeof(double) * cn);
                double twice_c = twice_area(cx, cy, cn);
                if (twice_c == 0.0) continue;
                double sc = twice_c > 0.0 ? 1.0 : -1.0;
                if (convex) {
                    /* The parcel ring (counter-clockwise now) is the window. */
                    total += a_w[ra] * b_w[rb] * inside_window(lx, ly, n, cx, cy, cn, &w);
                } else if (is_convex(cx, cy, cn, sc)) {
                    /* Ring b over the box is convex: it is the window, the parcel ring is clipped. */
                    if (sc < 0.0) reverse(cx, cy, cn);
                    double acc = sc * sign * inside_window(cx, cy, cn, lx, ly, n, &w);
                    total += a_w[ra] * b_w[rb] * acc;
                } else {
                    /* Neither is convex: a fan of signed triangles, of whichever ring has fewer. */
                    double acc;
                    if (cn < n)
                        acc = fan(cx, cy, cn, lx, ly, n, tx, ty, &w);
                    else
                        acc = fan(lx, ly, n, cx, cy, cn, tx, ty, &w);
                    total += a_w[ra] * b_w[rb] * sign * acc;
                }
                if (w.failed) {
                    ok = 0;
                    break;
                }
            }
        }
        out[k] = total / 2.0;
    }
    free(lx);
    free(ly);
    free(sx);
    free(sy);
    free(cx);
    free(cy);
    work_free(&w);
    return ok ? 0 : -1;
}

/* --- which parcels a perimeter's grid decides ---------------------------------------------- */

/* The same operations as PerimeterGrid._cols / _rows: the same cells. */
static void cell_range(double lo, double hi, double origin, double size, int64_t count, double margin,
                       int64_t *first, int64_t *last) {
    double a = floor((lo - origin) / size - margin);
    double b = floor((hi - origin) / size + margin);
    a = MIN(MAX(a, 0.0), (double)count - 1.0);
    b = MIN(MAX(b, 0.0), (double)count - 1.0);
    *first = (int64_t)a;
    *last = (int64_t)b;
}

/* Pairs (parcel, perimeter) the grids decide inside (whole = 1), and those left to the exact
 * tests (whole = 0), from perimeter state[0], parcel state[1] on, into at most cap slots.
 * Returns how many were written; state then holds where to go on (state[0] == m: done). */
int64_t ort_decide(int64_t n, const double *minx, const double *miny, const double *maxx, const double *maxy,
                   const double *extent, const uint8_t *free_, int64_t m, const double *box, const uint8_t *grid,
                   const double *x0, const double *y0, const double *size, const int64_t *nx, const int64_t *ny,
                   const int64_t *at, const int32_t *inside, const int32_t *outside, double margin, int64_t *state,
                   int64_t cap, int64_t *pq, int64_t *pp, uint8_t *whole) {
    int64_t k = 0;
    int64_t j_first = state[0], r_first = state[1];
    for (int64_t j = j_first; j < m; j++) {
        double bx0 = box[4 * j], by0 = box[4 * j + 1], bx1 = box[4 * j + 2], by1 = box[4 * j + 3];
        if (!(bx0 <= extent[2] && bx1 >= extent[0] && by0 <= extent[3] && by1 >= extent[1])) continue;
        for (int64_t r = j == j_first ? r_first : 0; r < n; r++) {
            if (!(minx[r] <= bx1 && maxx[r] >= bx0 && miny[r] <= by1 && maxy[r] >= by0)) continue;
            int verdict = 0; /* 1: inside cells only, -1: outside cells only, 0: to test */
            if (grid[j] && free_[r]) {
                int64_t i0, i1, j0, j1;
                cell_range(minx[r], maxx[r], x0[j], size[j], nx[j], margin, &i0, &i1);
                cell_range(miny[r], maxy[r], y0[j], size[j], ny[j], margin, &j0, &j1);
                int64_t cells = (i1 - i0 + 1) * (j1 - j0 + 1);
                int64_t w = nx[j] + 1;
                int64_t base = at[j];
                int64_t k00 = base + j0 * w + i0, k01 = base + j0 * w + i1 + 1;
                int64_t k10 = base + (j1 + 1) * w + i0, k11 = base + (j1 + 1) * w + i1 + 1;
                if ((int64_t)inside[k11] - inside[k01] - inside[k10] + inside[k00] == cells)
                    verdict = 1;
                else if ((int64_t)outside[k11] - outside[k01] - outside[k10] + outside[k00] == cells)
                    verdict = -1;
            }
            if (verdict == -1) continue;
            if (k == cap) {
                state[0] = j;
                state[1] = r;
                return k;
            }
            pq[k] = r;
            pp[k] = j;
            whole[k] = verdict == 1;
            k++;
        }
    }
    state[0] = m;
    state[1] = 0;
    return k;
}

/* --- is a ring simple? ----------------------------------------------------------------------- */

#define ORIENT_TOL 1e-12
#define PAIRWISE_MAX 64

/* Segments from v[a] and v[b] (x, y interleaved), whose boxes meet, certainly share no point. */
static int apart(const double *v, int64_t a, int64_t b) {
    double px = v[a], py = v[a + 1], qx = v[a + 2], qy = v[a + 3];
    double rx = v[b], ry = v[b + 1], sx = v[b + 2], sy = v[b + 3];
    double ux = qx - px, uy = qy - py;
    double t1 = ux * (ry - py), t2 = uy * (rx - px);
    double t3 = ux * (sy - py), t4 = uy * (sx - px);
    double d1 = t1 - t2, d2 = t3 - t4;
    double e1 = ORIENT_TOL * (fabs(t1) + fabs(t2));
    double e2 = ORIENT_TOL * (fabs(t3) + fabs(t4));
    if ((d1 > e1 && d2 > e2) || (d1 < -e1 && d2 < -e2)) return 1;
    double wx = sx - rx, wy = sy - ry;
    t1 = wx * (py - ry);
    t2 = wy * (px - rx);
    t3 = wx * (qy - ry);
    t4 = wy * (qx - rx);
    d1 = t1 - t2;
    d2 = t3 - t4;
    e1 = ORIENT_TOL * (fabs(t1) + fabs(t2));
    e2 = ORIENT_TOL * (fabs(t3) + fabs(t4));
    return (d1 > e1 && d2 > e2) || (d1 < -e1 && d2 < -e2);
}

/* numpy's (and numba's) order of floats: NaN last. */
static int lt_float(double a, double b) { return a < b || (isnan(b) && !isnan(a)); }

/* idx[:n] = the stable argsort of key[:n] (numba's mergesort: ties in index order). */
static void stable_argsort(const double *key, int64_t n, int64_t *idx, int64_t *tmp) {
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    int64_t *src = idx, *dst = tmp;
    for (int64_t width = 1; width < n; width *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * width) {
            int64_t mid = MIN(lo + width, n), hi = MIN(lo + 2 * width, n);
            int64_t a = lo, b = mid, o = lo;
            while (a < mid && b < hi) dst[o++] = lt_float(key[src[b]], key[src[a]]) ? src[b++] : src[a++];
            while (a < mid) dst[o++] = src[a++];
            while (b < hi) dst[o++] = src[b++];
        }
        int64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != idx) memcpy(idx, src, sizeof(int64_t) * n);
}

/* Scratch of ring_is_simple for rings of up to cap points; box is 4 rows of cap. */
typedef struct {
    int64_t *order, *seg, *tmp;
    double *box;
    int64_t cap;
} Ring;

static int ring_init(Ring *s, int64_t cap) {
    s->order = malloc(sizeof(int64_t) * cap);
    s->seg = malloc(sizeof(int64_t) * cap);
    s->tmp = malloc(sizeof(int64_t) * cap);
    s->box = malloc(sizeof(double) * 4 * cap);
    s->cap = cap;
    return s->order && s->seg && s->tmp && s->box;
}

static void ring_free(Ring *s) {
    free(s->order);
    free(s->seg);
    free(s->tmp);
    free(s->box);
}

static int sweep(const double *v, int64_t m, Ring *s) {
    const int64_t c = s->cap;
    const double *b0 = s->box, *b1 = s->box + c, *b2 = s->box + 2 * c, *b3 = s->box + 3 * c;
    int64_t *order = s->order, *seg = s->seg;
    stable_argsort(b0, m, order, s->tmp);
    for (int64_t i = 0; i < m; i++) {
        int64_t r = order[i];
        double east = b1[r], south = b2[r], north = b3[r];
        for (int64_t j = i + 1; j < m; j++) {
            int64_t q = order[j];
            if (b0[q] > east) break;
            if (b2[q] > north || b3[q] < south) continue;
            int64_t d = r - q;
            if (d == 1 || d == -1 || d == m - 1 || d == 1 - m) continue;
            if (!apart(v, seg[r], seg[q])) return 0;
        }
    }
    return 1;
}

/* The closed ring of `points` points from v[k] (x, y interleaved) is certainly a valid shell. */
VECTOR_CLONES static int ring_is_simple(const double *v, int64_t k, int64_t points, Ring *s) {
    const int64_t c = s->cap;
    double *b0 = s->box, *b1 = s->box + c, *b2 = s->box + 2 * c, *b3 = s->box + 3 * c;
    int64_t *order = s->order, *seg = s->seg;
    int64_t m = 0;
    for (int64_t i = 0; i < points - 1; i++) {
        int64_t a = k + 2 * i;
        double x0 = v[a], y0 = v[a + 1], x1 = v[a + 2], y1 = v[a + 3];
        if (x0 == x1 && y0 == y1) continue; /* a repeated point */
        seg[m] = a;
        order[m] = m;
        b0[m] = x0 < x1 ? x0 : x1;
        b1[m] = x0 < x1 ? x1 : x0;
        b2[m] = y0 < y1 ? y0 : y1;
        b3[m] = y0 < y1 ? y1 : y0;
        m++;
    }
    if (m < 3) return 0;
    for (int64_t i = 0; i < m; i++) {
        int64_t a = seg[i];
        int64_t b = i + 1 < m ? seg[i + 1] : seg[0];
        double ux = v[a + 2] - v[a], uy = v[a + 3] - v[a + 1];
        double wx = v[b + 2] - v[b], wy = v[b + 3] - v[b + 1];
        double c1 = ux * wy, c2 = uy * wx;
        if (fabs(c1 - c2) <= ORIENT_TOL * (fabs(c1) + fabs(c2))) {
            if (!(ux * wx + uy * wy > ORIENT_TOL * (fabs(ux * wx) + fabs(uy * wy)))) return 0;
        }
    }
    if (m > PAIRWISE_MAX) return sweep(v, m, s);
    for (int64_t i = 0; i < m; i++) {
        double x0 = b0[i], x1 = b1[i], y0 = b2[i], y1 = b3[i];
        int64_t meets = 0;
        for (int64_t j = 0; j < m; j++) meets += (b0[j] <= x1) & (b1[j] >= x0) & (b2[j] <= y1) & (b3[j] >= y0);
        if (meets <= 3) continue;
        for (int64_t j = 0; j < m; j++) {
            int64_t d = i - j;
            if (d == 0 || d == 1 || d == -1 || d == m - 1 || d == 1 - m) continue;
            if (b0[j] <= x1 && b1[j] >= x0 && b2[j] <= y1 && b3[j] >= y0) {
                if (!apart(v, seg[i], seg[j])) return 0;
            }
        }
    }
    return 1;
}

/* ring_is_simple of each closed ring v[2 starts[r] : 2 starts[r + 1]], into out. 0, or -1. */
int64_t ort_rings_simple(const double *v, const int64_t *starts, int64_t count, uint8_t *out) {
    int64_t longest = 4;
    for (int64_t r = 0; r < count; r++) longest = MAX(longest, starts[r + 1] - starts[r]);
    Ring s;
    if (!ring_init(&s, longest)) {
        ring_free(&s);
        return -1;
    }
    for (int64_t r = 0; r < count; r++) {
        int64_t points = starts[r + 1] - starts[r];
        out[r] = points >= 4 && ring_is_simple(v, 2 * starts[r], points, &s);
    }
    ring_free(&s);
    return 0;
}

/* --- polygons read from their WKB ------------------------------------------------------------ */

static uint32_t u32(const uint8_t *data, int64_t at) {
    return (uint32_t)data[at] | ((uint32_t)data[at + 1] << 8) | ((uint32_t)data[at + 2] << 16) |
           ((uint32_t)data[at + 3] << 24);
}

/* The little-endian double at p (any alignment). */
static double f64(const uint8_t *p) {
    uint64_t bits = (uint64_t)p[0] | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16) | ((uint64_t)p[3] << 24) |
                    ((uint64_t)p[4] << 32) | ((uint64_t)p[5] << 40) | ((uint64_t)p[6] << 48) |
                    ((uint64_t)p[7] << 56);
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* Row r: a closed ring of `points` points from p on; 0 if not closed or not finite. */
static int ring_of_row(const uint8_t *p, int64_t points, int64_t r, double *bounds, double *area) {
#define X(i) f64(p + 16 * (i))
#define Y(i) f64(p + 16 * (i) + 8)
    double x0 = X(0), y0 = Y(0);
    if (X(points - 1) != x0 || Y(points - 1) != y0) return 0;
    double minx = x0, miny = y0, maxx = x0, maxy = y0;
    for (int64_t i = 0; i < points; i++) {
        double x = X(i), y = Y(i);
        if (!(isfinite(x) && isfinite(y))) return 0;
        minx = MIN(minx, x);
        maxx = MAX(maxx, x);
        miny = MIN(miny, y);
        maxy = MAX(maxy, y);
    }
    /* GEOS Area::ofRingSigned, same operations in the same order: the same bits. */
    double total = 0.0;
    for (int64_t i = 1; i < points - 1; i++) total += (X(i) - x0) * (Y(i - 1) - Y(i + 1));
    bounds[4 * r] = minx;
    bounds[4 * r + 1] = miny;
    bounds[4 * r + 2] = maxx;
    bounds[4 * r + 3] = maxy;
    area[r] = fabs(total / 2.0);
    return 1;
#undef X
#undef Y
}

/* Which rows of a WKB column are one-ring, closed, finite 2D polygons: their boxes and areas.
 * valid: one byte per row (0: null), or NULL (no null). */
void ort_scan(const uint8_t *data, const int32_t *offsets, const uint8_t *valid, int64_t n, uint8_t *simple,
              double *bounds, double *area) {
    for (int64_t r = 0; r < n; r++) {
        simple[r] = 0;
        int64_t s = offsets[r];
        int64_t size = (int64_t)offsets[r + 1] - s;
        if ((valid && !valid[r]) || size < 13 || data[s] != 1) continue;
        if (u32(data, s + 1) != 3 || u32(data, s + 5) != 1) continue;
        int64_t points = (int64_t)u32(data, s + 9);
        if (points < 4 || size != 13 + 16 * points) continue;
        simple[r] = (uint8_t)ring_of_row(data + s + 13, points, r, bounds, area);
    }
}

/* ring_is_simple of the ring of each row in rows (rows ort_scan found simple). 0, or -1. */
int64_t ort_rings_valid(const uint8_t *data, const int32_t *offsets, const int64_t *rows, int64_t count,
                        uint8_t *out) {
    Ring s;
    int64_t cap = SCRATCH(64);
    double *v = malloc(sizeof(double) * 2 * cap);
    if (!ring_init(&s, cap) || !v) {
        ring_free(&s);
        free(v);
        return -1;
    }
    for (int64_t i = 0; i < count; i++) {
        int64_t at = offsets[rows[i]];
        int64_t points = (int64_t)u32(data, at + 9);
        if (points > s.cap) {
            ring_free(&s);
            free(v);
            cap = 2 * points;
            v = malloc(sizeof(double) * 2 * cap);
            if (!ring_init(&s, cap) || !v) {
                ring_free(&s);
                free(v);
                return -1;
            }
        }
        const uint8_t *p = data + at + 13;
        for (int64_t j = 0; j < 2 * points; j++) v[j] = f64(p + 8 * j);
        out[i] = ring_is_simple(v, 0, points, &s);
    }
    ring_free(&s);
    free(v);
    return 0;
}
