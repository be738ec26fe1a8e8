"""Benchmark at scale: ort against tuned PostGIS 3, DuckDB spatial and SedonaDB, same run, same data.

Two datasets of the same size, each with the same perimeters (50 blobs with holes and
multipolygons, boundaries digitised every ~8 m, about 20 % of the territory):

- ``synthetic``: a seeded tiling of irregular parcels (14 m in town cores to ~55 m outside);
- ``real``: the real Etalab parcels of Épinay-sur-Orge (91216) and Saint-Marcel (73253) from
  ``--etalab`` (../shared/data/cadastre-etalab-sample), tiled side by side to the size asked,
  ids rewritten to stay unique (communes renumbered per tile).

Every engine gets the same advantages: the perimeters cut into pieces of at most 64 vertices
(PostGIS ``ST_Subdivide`` in its query; for DuckDB and SedonaDB, which have no such
function, the pieces ort's own cutter makes, loaded beside the parcels), a containment
shortcut (``ST_ContainsProperly``; SedonaDB has only ``ST_Contains``), the intersection
computed once per pair (``MATERIALIZED`` CTEs; PostGIS's EXPLAIN is printed), both cores
allowed (PostGIS: ``max_parallel_workers_per_gather = 2``, but its plan has no ``Gather``: the
report says what the EXPLAIN shows; DuckDB and SedonaDB: 2 threads). PostGIS's ``ST_Subdivide``
runs inside its timed query. These are warm figures (2nd call and after, engines loaded):
``bench/bench_fresh.py`` measures fresh processes, preparation counted. Two tables:

- in memory: the classification alone, data already loaded (ort: :func:`geo.scale.run.
  classify_frame`; its perimeters prepared at load, like the others' pieces);
- end to end: GeoParquet file in → verdicts Parquet out (ort: :func:`geo.scale.run.
  classify_dataset` on threads, as ``ort classify`` runs it; DuckDB: one ``COPY`` statement; SedonaDB: SQL
  to Parquet; the geopandas read + write of the parcels as the I/O floor).

Engines run in their own processes, started once (loading timed apart) and then run in
rounds, interleaved, ``--repeat`` times; the median is reported. Peak memory is the peak
summed PSS of the engine's processes (PostGIS: the server's) during one more run, not timed:
reading PSS walks a process's pages, which takes CPU from the engine measured. Every output is
compared with ort's in-memory result: same pairs, same statuses, shares within 1e-9. The load
of the machine (load average, other processes' CPU) is recorded. Not a test. Run::

    python3 bench/bench_scale.py --sizes 1000000 --out bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

L93 = "EPSG:2154"
_KEEP = (8 / 9) * (10 / 11)  # share of lattice cells that are parcels, not streets
PIECE_VERTICES = 64
SHARE_TOL = 1e-9


# --- data ------------------------------------------------------------------------------------


def synthetic_parcels(
    n: int,
    *,
    seed: int = 0,
    departements: tuple[str, ...] = ("62", "59"),
    origin: tuple[float, float] = (650_000.0, 6_900_000.0),
) -> gpd.GeoDataFrame:
    """``n`` parcels tiling a territory, with Etalab-like ids, in Lambert-93 (metres).

    A jittered lattice whose spacing varies smoothly (14 m in town cores to ~55 m outside);
    each parcel is an octagon-like ring whose edge midpoints are shared with its neighbours,
    so parcels tile without gaps or overlaps; every 9th row and 11th column is a street.
    Communes are blocks of about 1,600 parcels, départements vertical bands.

    Returns
    -------
    GeoDataFrame
        ``idu``, ``code_insee``, ``prefixe``, ``section``, ``numero``, ``contenance``, geometry.
    """
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n / _KEEP / 0.97))) + 2

    def axis(k: int) -> np.ndarray:
        t = np.linspace(0, 1, k)
        width = 14 + 40 * (0.5 + 0.5 * np.sin(2 * np.pi * (t * rng.uniform(1.5, 3.0) + rng.uniform()))) ** 2
        return np.concatenate([[0.0], np.cumsum(width * rng.uniform(0.85, 1.15, k))])

    xs, ys = axis(side), axis(side)
    nx, ny = len(xs), len(ys)
    gx = xs[None, :] + rng.uniform(-2.5, 2.5, (ny, nx))
    gy = ys[:, None] + rng.uniform(-2.5, 2.5, (ny, nx))
    hx = (gx[:, :-1] + gx[:, 1:]) / 2 + rng.uniform(-1.5, 1.5, (ny, nx - 1))
    hy = (gy[:, :-1] + gy[:, 1:]) / 2 + rng.uniform(-1.5, 1.5, (ny, nx - 1))
    vx = (gx[:-1, :] + gx[1:, :]) / 2 + rng.uniform(-1.5, 1.5, (ny - 1, nx))
    vy = (gy[:-1, :] + gy[1:, :]) / 2 + rng.uniform(-1.5, 1.5, (ny - 1, nx))
    i, j = (a.ravel() for a in np.meshgrid(np.arange(ny - 1), np.arange(nx - 1), indexing="ij"))
    street = (i % 9 == 8) | (j % 11 == 10)
    i, j = i[~street], j[~street]
    keep = np.sort(rng.permutation(len(i))[:n])  # a few vacant cells
    i, j = i[keep], j[keep]
    ring = np.stack(
        [
            (gx[i, j], gy[i, j]),
            (hx[i, j], hy[i, j]),
            (gx[i, j + 1], gy[i, j + 1]),
            (vx[i, j + 1], vy[i, j + 1]),
            (gx[i + 1, j + 1], gy[i + 1, j + 1]),
            (hx[i + 1, j], hy[i + 1, j]),
            (gx[i + 1, j], gy[i + 1, j]),
            (vx[i, j], vy[i, j]),
            (gx[i, j], gy[i, j]),
        ]
    ).transpose(2, 0, 1)
    ring = ring + np.asarray(origin)
    geoms = shapely.polygons(ring)
    # Communes: blocks of 40 × 40 cells; départements: vertical bands.
    band = np.minimum(j * len(departements) // (nx - 1), len(departements) - 1)
    commune = (i // 40) * 100 + (j // 40)
    dep = np.asarray(departements, dtype=object)[band]
    num = pd.Series(commune).rank(method="dense").astype(int).to_numpy()
    code = dep + pd.Series(num % 1000).map("{:03d}".format).to_numpy(dtype=object)
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    sec_i, sec_j = (i % 40) // 10, (j % 40) // 10
    section = letters[sec_i] + letters[sec_j + 4]
    frame = pd.DataFrame({"code_insee": code, "section": section})
    numero = frame.groupby(["code_insee", "section"]).cumcount().to_numpy() + 1
    frame["prefixe"] = "000"
    frame["numero"] = pd.Series(numero).map("{:04d}".format).to_numpy(dtype=object)
    frame["idu"] = frame["code_insee"] + frame["prefixe"] + frame["section"] + frame["numero"]
    frame["contenance"] = np.round(shapely.area(geoms)).astype(float)
    cols = ["idu", "code_insee", "prefixe", "section", "numero", "contenance"]
    out = gpd.GeoDataFrame(frame[cols], geometry=geoms, crs=L93)
    # Sorted by idu, like a national extract built from the per-commune files.
    return out.sort_values("idu", ignore_index=True)


def synthetic_perimeters(
    parcels: gpd.GeoDataFrame, n: int = 50, *, seed: int = 0, cover: float = 0.2, spacing: float = 8.0
) -> gpd.GeoDataFrame:
    """``n`` perimeters over the parcels: blobs, one in three with a hole, one in five in two parts.

    Their boundaries are densified every ``spacing`` metres and wiggled (as drawn along
    streets), so a perimeter has hundreds to thousands of vertices. About ``cover`` of the
    territory lies in some perimeter; they may overlap (an OPAH-RU over a secteur).

    Returns
    -------
    GeoDataFrame
        ``perimeter_id``, ``type`` (secteur / opah_ru), ``nom``, geometry, Lambert-93.
    """
    rng = np.random.default_rng(seed + 1)
    minx, miny, maxx, maxy = parcels.total_bounds
    r0 = np.sqrt(cover * (maxx - minx) * (maxy - miny) / (n * np.pi))
    geoms = []
    for k in range(n):
        cx, cy = rng.uniform(minx + r0, maxx - r0), rng.uniform(miny + r0, maxy - r0)
        blobs = []
        for part in range(2 if k % 5 == 1 else 1):
            ox = cx + (0 if part == 0 else rng.choice([-1, 1]) * 2.6 * r0)
            oy = cy + (0 if part == 0 else rng.uniform(-r0, r0))
            pts = shapely.points(ox + rng.normal(0, r0 * 0.35, 5), oy + rng.normal(0, r0 * 0.35, 5))
            blobs.append(shapely.union_all(shapely.buffer(pts, r0 * rng.uniform(0.35, 0.6, 5), quad_segs=8)))
        geom = shapely.union_all(blobs)
        if k % 3 == 0:  # a park left out: a hole
            geom = geom.difference(shapely.Point(cx, cy).buffer(r0 * 0.15, quad_segs=6))
        geom = shapely.segmentize(geom, spacing)
        xy = shapely.get_coordinates(geom)
        ph = rng.uniform(0, 2 * np.pi, 4)
        # A smooth wiggle, a function of the position: rings stay closed.
        wiggle = np.stack(
            [
                np.sin(xy[:, 1] / 3.1 + ph[0]) + np.sin(xy[:, 0] / 7.3 + ph[1]),
                np.sin(xy[:, 0] / 2.9 + ph[2]) + np.sin(xy[:, 1] / 6.7 + ph[3]),
            ],
            1,
        )
        geom = shapely.make_valid(shapely.set_coordinates(geom, xy + 1.5 * wiggle))
        parts = shapely.get_parts(geom)
        geoms.append(shapely.union_all(parts[shapely.get_type_id(parts) == 3]))
    kinds = np.where(np.arange(n) % 4 == 3, "opah_ru", "secteur")
    return gpd.GeoDataFrame(
        {
            "perimeter_id": [f"p{k:03d}" for k in range(n)],
            "type": kinds,
            "nom": [f"Périmètre {k}" for k in range(n)],
        },
        geometry=geoms,
        crs=L93,
    )


def real_parcels(
    n: int,
    sample: Path,
    *,
    departements: tuple[str, ...] = ("62", "59"),
    origin: tuple[float, float] = (650_000.0, 6_900_000.0),
) -> gpd.GeoDataFrame:
    """``n`` real Etalab parcels: the communes of ``sample`` side by side, the pair tiled.

    Each tile holds the real parcels of Épinay-sur-Orge (91216) and Saint-Marcel (73253),
    translated; tiles form a grid, each tile's two communes get new INSEE codes (départements
    as vertical bands) and keep their real prefixe, section and numéro.
    """
    from geo.sources import cadastre

    layers = [
        cadastre.read_parcels(sample / "91216-epinay-sur-orge" / "cadastre-91216-parcelles.json"),
        cadastre.read_parcels(sample / "73253-saint-marcel" / "cadastre-73253-parcelles.json"),
    ]
    parts, x = [], 0.0
    for layer in layers:
        minx, miny, maxx, maxy = layer.total_bounds
        geoms = shapely.transform(layer.geometry.to_numpy(), lambda xy, dx=x - minx, dy=-miny: xy + [dx, dy])
        parts.append((geoms, layer["idu"].str[5:].to_numpy(dtype=object)))
        x += (maxx - minx) + 50.0
    tile_w = x
    tile_h = max(lyr.total_bounds[3] - lyr.total_bounds[1] for lyr in layers) + 50.0
    tiles = -(-n // sum(len(g) for g, _ in parts))
    cols = int(np.ceil(np.sqrt(tiles * tile_h / tile_w)))
    geoms, ids = [], []
    for t in range(tiles):
        row, col = divmod(t, cols)
        dep = departements[min(col * len(departements) // cols, len(departements) - 1)]
        dx, dy = origin[0] + col * tile_w, origin[1] + row * tile_h
        for k, (g, tail) in enumerate(parts):
            geoms.append(shapely.transform(g, lambda xy, dx=dx, dy=dy: xy + [dx, dy]))
            ids.append(f"{dep}{(2 * t + k) % 1000:03d}" + tail)
    idu = np.concatenate(ids)[:n]
    frame = pd.DataFrame({"idu": idu, "code_insee": [i[:5] for i in idu]})
    out = gpd.GeoDataFrame(frame, geometry=np.concatenate(geoms)[:n], crs=L93)
    return out.sort_values("idu", ignore_index=True)


def make_data(dataset: str, n: int, folder: Path, args) -> dict:
    """Write ``parcels.parquet``, ``perimeters.parquet`` and ``pieces.parquet`` in ``folder``."""
    from geo import classify

    folder.mkdir(parents=True, exist_ok=True)
    if dataset == "real":
        parcels = real_parcels(n, args.etalab)
    else:
        parcels = synthetic_parcels(n, seed=args.seed)[["idu", "code_insee", "geometry"]]
    if not parcels["idu"].is_unique:
        raise SystemExit(f"{dataset}: duplicate ids")
    perims = synthetic_perimeters(parcels, args.perimeters, seed=args.seed)
    parcels.to_parquet(folder / "parcels.parquet", row_group_size=100_000)
    perims.to_parquet(folder / "perimeters.parquet")
    ids, pieces = [], []
    for pid, geom in zip(perims["perimeter_id"], perims.geometry, strict=True):
        cut = classify._pieces(shapely.to_wkb(geom), PIECE_VERTICES)
        pieces.append(cut)
        ids += [pid] * len(cut)
    gpd.GeoDataFrame({"perimeter_id": ids}, geometry=np.concatenate(pieces), crs=L93).to_parquet(
        folder / "pieces.parquet"
    )
    return {
        "parcels": len(parcels),
        "vertices_per_parcel": float(shapely.get_num_coordinates(parcels.geometry.to_numpy()).mean()),
        "perimeters": len(perims),
        "perimeter_vertices": int(shapely.get_num_coordinates(perims.geometry.to_numpy()).sum()),
        "pieces": len(ids),
    }


# --- engines: each a process started once, loading its data, then running on demand ---------


def _verdict_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = df[["idu", "perimeter_id", "status", "share"]].copy()
    out["share"] = out["share"].astype(float)
    return out.sort_values(["idu", "perimeter_id"]).reset_index(drop=True)


def _tolerances() -> dict:
    from geo import settings

    return {"tol_m2": float(settings.tolerance_m2), "tol_pct": float(settings.tolerance_pct)}


# The tuned query of DuckDB and SedonaDB: the one of geo.scale.postgis.sql_classify, on pieces
# made beforehand (neither has ST_Subdivide). {parcels}/{pieces}: a table or a file reader.
_PAIRS_SQL = """
WITH pairs AS MATERIALIZED (
    SELECT p.idu, k.perimeter_id, max(ST_Area(p.geometry)) AS parcel_area,
           sum(CASE WHEN {contains}(k.geometry, p.geometry) THEN ST_Area(p.geometry)
                    ELSE ST_Area(ST_Intersection(p.geometry, k.geometry)) END) AS area_raw
    FROM {parcels} p JOIN {pieces} k ON ST_Intersects(p.geometry, k.geometry)
    GROUP BY p.idu, k.perimeter_id
), measured AS (
    SELECT *, LEAST(area_raw, parcel_area) AS inter,
           CASE WHEN parcel_area > 0 THEN LEAST(GREATEST(area_raw / parcel_area, 0), 1) ELSE 0 END AS share,
           GREATEST({tol_m2}, {tol_pct} / 100.0 * parcel_area) AS noise
    FROM pairs
), judged AS (
    SELECT idu, perimeter_id, share,
           CASE WHEN parcel_area <= noise THEN CASE WHEN share > 0.5 THEN 'inside' ELSE 'outside' END
                WHEN parcel_area - inter <= noise THEN 'inside'
                WHEN inter <= noise THEN 'outside'
                ELSE 'straddling' END AS status
    FROM measured
)
SELECT idu, perimeter_id, status, share FROM judged WHERE status <> 'outside'
"""


def _pairs_sql(
    parcels: str, pieces: str, contains: str = "ST_ContainsProperly", materialized: bool = True
) -> str:
    """The query; SedonaDB knows neither ``MATERIALIZED`` (its aggregate runs once anyway) nor
    ``ST_ContainsProperly``."""
    tol = _tolerances()
    sql = _PAIRS_SQL if materialized else _PAIRS_SQL.replace(" MATERIALIZED", "")
    # Only numbers and the benchmark's own file paths go in: no user input.
    return sql.format(
        parcels=parcels,
        pieces=pieces,
        contains=contains,
        tol_m2=repr(tol["tol_m2"]),
        tol_pct=repr(tol["tol_pct"]),
    )


def _connect_module():
    """``bench/_connect.py`` (DuckDB's connection, shared with bench_fresh.py), by its path:
    this file is also loaded by the tests, from elsewhere."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_connect", Path(__file__).with_name("_connect.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_connect = _connect_module()
_quoted = _connect.quoted
_duckdb_connect = _connect.duckdb_connect


class Engine:
    """One engine in its own process: ``load`` once, then ``run`` on demand, ``result`` at the end."""

    version = ""

    def __init__(self, data: Path, out: Path, dsn: str | None) -> None:
        self.data, self.out, self.dsn = data, out, dsn

    def load(self) -> None:
        pass

    def run(self) -> None:
        raise NotImplementedError

    def result(self) -> pd.DataFrame:
        raise NotImplementedError


class Ort(Engine):
    workers: int | None = None

    def load(self) -> None:
        from geo import classify, kernels

        self.parcels = gpd.read_parquet(self.data / "parcels.parquet", columns=["idu", "geometry"])
        self.perims = gpd.read_parquet(self.data / "perimeters.parquet")
        # Perimeters prepared once, as the SQL engines get their pieces at load; the compiled
        # areas loaded once, as DuckDB loads its spatial extension.
        for geom in self.perims.geometry:
            classify.perimeter_grid(geom)
        kernels.warm()

    def run(self) -> None:
        from geo.scale.run import classify_frame

        self.verdicts = classify_frame(self.parcels, self.perims, workers=self.workers or os.cpu_count())

    def result(self) -> pd.DataFrame:
        return _verdict_frame(self.verdicts)


class OrtOneCore(Ort):
    workers = 1


class DuckDB(Engine):
    def load(self) -> None:
        self.conn = _duckdb_connect()
        self.conn.execute(
            "CREATE TABLE parcels AS SELECT idu, geometry FROM read_parquet(?)",
            [str(self.data / "parcels.parquet")],
        )
        self.conn.execute(
            "CREATE TABLE pieces AS SELECT perimeter_id, geometry FROM read_parquet(?)",
            [str(self.data / "pieces.parquet")],
        )
        self.version = (
            "DuckDB " + self.conn.execute("SELECT library_version FROM pragma_version()").fetchone()[0]
        )

    def run(self) -> None:
        self.conn.execute("CREATE OR REPLACE TABLE verdicts AS " + _pairs_sql("parcels", "pieces"))

    def result(self) -> pd.DataFrame:
        return _verdict_frame(self.conn.execute("SELECT * FROM verdicts").df())


class Sedona(Engine):
    def load(self) -> None:
        import sedonadb

        self.ctx = sedonadb.connect()
        self.ctx.read_parquet(str(self.data / "parcels.parquet")).select(
            "idu", "geometry"
        ).to_memtable().to_view("parcels")
        self.ctx.read_parquet(str(self.data / "pieces.parquet")).to_memtable().to_view("pieces")
        self.version = f"SedonaDB {sedonadb.__version__}"

    def run(self) -> None:
        # ST_ContainsProperly does not exist in SedonaDB: ST_Contains gives the same areas.
        self.verdicts = self.ctx.sql(
            _pairs_sql("parcels", "pieces", "ST_Contains", materialized=False)
        ).to_pandas()

    def result(self) -> pd.DataFrame:
        return _verdict_frame(self.verdicts)


class PostGIS(Engine):
    def load(self) -> None:
        from geo.scale import postgis

        parcels = gpd.read_parquet(self.data / "parcels.parquet", columns=["idu", "geometry"])
        perims = gpd.read_parquet(self.data / "perimeters.parquet")
        self.conn = postgis.connect(self.dsn)
        postgis.write_layer(self.conn, parcels, "parcels", force=True)
        postgis.write_layer(self.conn, perims, "perimeters", force=True)
        self.conn.commit()
        # Vacuumed now (visibility map set, statistics fresh): no autovacuum of the million rows
        # runs later, during another engine's round.
        self.conn.autocommit = True
        for table in ("parcels", "perimeters"):
            self.conn.execute(f"VACUUM (ANALYZE) {table}")
        self.conn.autocommit = False
        full = self.conn.execute("SELECT postgis_full_version()").fetchone()[0]
        self.version = (
            " ".join(full.split()[:2]) + " " + " ".join(w for w in full.split() if w.startswith("GEOS="))
        )
        query = postgis.sql_classify_query("parcels", "perimeters")
        plan = self.conn.execute(b"EXPLAIN (VERBOSE, COSTS OFF) " + query.as_bytes(self.conn)).fetchall()
        (self.out / "postgis-explain.txt").write_text("\n".join(r[0] for r in plan) + "\n", encoding="utf-8")

    def run(self) -> None:
        from geo.scale import postgis

        self.conn.execute("DROP TABLE IF EXISTS verdicts")
        self.conn.commit()
        postgis.sql_classify(self.conn, "parcels", "perimeters", "verdicts")

    def result(self) -> pd.DataFrame:
        rows = self.conn.execute("SELECT idu, perimeter_id, status, share FROM verdicts").fetchall()
        return _verdict_frame(pd.DataFrame(rows, columns=["idu", "perimeter_id", "status", "share"]))


class Overlay(Engine):
    """geopandas.overlay of every parcel with every perimeter, then areas: the naive way."""

    def load(self) -> None:
        self.parcels = gpd.read_parquet(self.data / "parcels.parquet", columns=["idu", "geometry"])
        self.perims = gpd.read_parquet(self.data / "perimeters.parquet")

    def run(self) -> None:
        tol = _tolerances()
        pieces = gpd.overlay(self.parcels, self.perims[["perimeter_id", "geometry"]], how="intersection")
        pieces["inter"] = pieces.area
        inter = pieces.groupby(["idu", "perimeter_id"], as_index=False)["inter"].sum()
        area = pd.Series(self.parcels.area.to_numpy(), index=self.parcels["idu"].to_numpy())
        inter["area"] = area.reindex(inter["idu"]).to_numpy()
        inter["share"] = np.clip(np.where(inter["area"] > 0, inter["inter"] / inter["area"], 0), 0, 1)
        x = np.minimum(inter["inter"], inter["area"])
        noise = np.maximum(tol["tol_m2"], tol["tol_pct"] / 100 * inter["area"])
        status = np.where(x <= noise, "outside", "straddling")
        status = np.where(inter["area"] - x <= noise, "inside", status)
        tiny = inter["area"] <= noise
        inter["status"] = np.where(tiny, np.where(inter["share"] > 0.5, "inside", "outside"), status)
        self.verdicts = inter[inter["status"] != "outside"]

    def result(self) -> pd.DataFrame:
        return _verdict_frame(self.verdicts)


# End to end: GeoParquet in, verdicts Parquet out, nothing loaded beforehand.


class OrtFile(Engine):
    def load(self) -> None:
        # As `ort classify` runs (threads of its process): the compiled code is loaded once, on
        # a thousand parcels, as DuckDB loads its extension; the runs then reuse it.
        from geo.scale import run as scale

        workers = os.cpu_count() or 1
        import pyarrow.parquet as pq

        sample = self.out / "ort-warm.parquet"  # a thousand parcels, without loading the million
        pq.write_table(pq.ParquetFile(self.data / "parcels.parquet").read_row_group(0).slice(0, 1000), sample)
        perims = gpd.read_parquet(self.data / "perimeters.parquet")
        scale.classify_dataset(
            sample, perims, self.out / "ort-warm", force=True, workers=workers, processes=False
        )

    def run(self) -> None:
        from geo.scale import run as scale

        perims = gpd.read_parquet(self.data / "perimeters.parquet")
        scale.classify_dataset(
            self.data / "parcels.parquet", perims, self.out / "ort-file", force=True, processes=False
        )

    def result(self) -> pd.DataFrame:
        from geo.scale import run as scale

        return _verdict_frame(scale.read_results(self.out / "ort-file"))


class DuckDBCopy(Engine):
    def load(self) -> None:
        self.conn = _duckdb_connect()
        self.target = self.out / "duckdb-copy.parquet"

    def run(self) -> None:
        select = _pairs_sql(
            f"read_parquet({_quoted(self.data / 'parcels.parquet')})",
            f"read_parquet({_quoted(self.data / 'pieces.parquet')})",
        )
        self.conn.execute(f"COPY ({select}) TO {_quoted(self.target)} (FORMAT parquet)")

    def result(self) -> pd.DataFrame:
        return _verdict_frame(pd.read_parquet(self.target))


class SedonaFile(Engine):
    def load(self) -> None:
        import sedonadb

        self.ctx = sedonadb.connect()
        self.target = self.out / "sedona-file.parquet"

    def run(self) -> None:
        self.ctx.read_parquet(str(self.data / "parcels.parquet")).to_view("parcels", overwrite=True)
        self.ctx.read_parquet(str(self.data / "pieces.parquet")).to_view("pieces", overwrite=True)
        self.ctx.sql(_pairs_sql("parcels", "pieces", "ST_Contains", materialized=False)).to_parquet(
            str(self.target)
        )

    def result(self) -> pd.DataFrame:
        return _verdict_frame(pd.read_parquet(self.target))


class IOFloor(Engine):
    """geopandas reading the parcels and writing them back: no classification at all."""

    def run(self) -> None:
        gpd.read_parquet(self.data / "parcels.parquet").to_parquet(self.out / "floor.parquet")

    def result(self) -> pd.DataFrame | None:
        return None


IN_MEMORY = {
    "ort": Ort,
    "ort-1core": OrtOneCore,
    "duckdb": DuckDB,
    "sedonadb": Sedona,
    "postgis": PostGIS,
    "overlay": Overlay,
}
END_TO_END = {
    "ort classify": OrtFile,
    "duckdb COPY": DuckDBCopy,
    "sedonadb": SedonaFile,
    "geopandas read+write": IOFloor,
}


def serve(args: argparse.Namespace) -> None:
    """The engine process: load, say 'ready', then obey 'run' / 'result' / 'quit' on stdin."""
    table = IN_MEMORY if args.table == "memory" else END_TO_END
    engine = table[args.engine](args.data, args.work, args.dsn)
    t = time.perf_counter()
    engine.load()
    print(json.dumps({"ready": time.perf_counter() - t, "version": engine.version}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "run":
            t0, p0 = time.time(), time.perf_counter()
            engine.run()
            print(
                json.dumps({"seconds": time.perf_counter() - p0, "start": t0, "end": time.time()}), flush=True
            )
        elif command == "result":
            frame = engine.result()
            if frame is not None:
                frame.to_parquet(args.work / f"result-{args.table}-{args.engine.replace(' ', '_')}.parquet")
            print(json.dumps({"saved": frame is not None}), flush=True)
        elif command == "quit":
            return


# --- measuring ---------------------------------------------------------------------------------


def _pss(pid: int) -> int:
    """PSS of a process in bytes, from /proc/PID/smaps_rollup (cheap; 0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


class _Sampler(threading.Thread):
    """Sum the PSS of a set of processes every 50 ms while ``active`` (PSS shares shared pages
    fairly). Only during an engine's memory run (:meth:`Running.measure_memory`): reading PSS
    walks every page of a process, tens of ms for ort's three processes, CPU taken from the
    engine that runs — so never during a timed run."""

    def __init__(self, pids) -> None:
        super().__init__(daemon=True)
        self.pids, self.samples, self.stop = pids, [], threading.Event()
        self.active = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            if not self.active.wait(0.2):
                continue
            known = self.pids()
            for k in itertools.count():
                if not self.active.is_set() or self.stop.is_set():
                    break
                if k % 20 == 19:  # a worker process may have started
                    known = self.pids()
                self.samples.append((time.time(), sum(_pss(pid) for pid in known)))
                self.stop.wait(0.05)

    def peak(self, windows: list[tuple[float, float]]) -> float:
        inside = [m for t, m in self.samples if any(a - 0.06 <= t <= b + 0.06 for a, b in windows)]
        return max(inside, default=0) / 2**20


def _tree(pid: int):
    import psutil

    def pids() -> list[int]:
        try:
            root = psutil.Process(pid)
            return [root.pid, *(c.pid for c in root.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    return pids


#: CPU seconds of processes the engines started but do not wait for (ort's worker pool, forked
#: by a fork server): the kernel adds them to no one's children times, so they are read while
#: they live, before each engine quits.
_DESCENDANTS_CPU: list[float] = []


def _descendants_cpu(pid: int) -> float:
    import psutil

    total = 0.0
    try:
        for child in psutil.Process(pid).children(recursive=True):
            try:
                times = child.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
    except psutil.NoSuchProcess:
        pass
    return total


class _CpuMeter:
    """CPU used by the whole machine and by this benchmark (itself, its engines, the PostGIS server)."""

    def __init__(self, cluster) -> None:
        self.cluster = cluster
        self.start_wall, self.start_busy = time.time(), _busy_seconds()
        self.start_ours = self._ours()

    def _ours(self) -> float:
        import psutil

        t = os.times()  # this process and the engine processes it has waited for
        total = t.user + t.system + t.children_user + t.children_system + sum(_DESCENDANTS_CPU)
        pids = self.cluster.server_pids() if self.cluster is not None else []
        for k, pid in enumerate(pids):
            try:
                c = psutil.Process(pid).cpu_times()
                total += c.user + c.system
                if k == 0:  # the postmaster: with its exited backends and parallel workers
                    total += c.children_user + c.children_system
            except psutil.NoSuchProcess:
                pass
        return total

    def summary(self) -> dict:
        wall = time.time() - self.start_wall
        busy = _busy_seconds() - self.start_busy
        return {"busy_cores": busy / wall, "ours_cores": (self._ours() - self.start_ours) / wall}


def _busy_seconds() -> float:
    """Seconds of CPU used by everything on the machine since boot (from /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class Running:
    """An engine process and its memory sampler."""

    def __init__(self, table: str, engine: str, data: Path, work: Path, cluster) -> None:
        cmd = [sys.executable, __file__, "--serve", "--table", table, "--engine", engine, "--data", str(data)]
        cmd += ["--work", str(work)] + (["--dsn", cluster.dsn] if cluster is not None else [])
        self.table, self.engine = table, engine
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.sampler = _Sampler(cluster.server_pids if cluster is not None else _tree(self.proc.pid))
        self.sampler.start()
        self.cluster = cluster
        first = self._read()
        self.load_s, self.version = first["ready"], first["version"]
        self.times: list[float] = []
        self.windows: list[tuple[float, float]] = []

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"engine {self.engine} ({self.table}) stopped (exit code {self.proc.wait()})")
        return json.loads(line)

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()

    def warm_up(self) -> None:
        self.ask("run")
        os.sync()

    def run_once(self) -> float:
        done = self.ask("run")
        # What it wrote goes to disk now, not during the next engine's turn.
        os.sync()
        self.times.append(done["seconds"])
        return done["seconds"]

    def measure_memory(self) -> None:
        """One more run, not timed, its memory sampled (the sampler's reads cost CPU)."""
        self.sampler.active.set()
        try:
            done = self.ask("run")
        finally:
            self.sampler.active.clear()
        os.sync()
        self.windows.append((done["start"], done["end"]))

    def finish(self) -> None:
        self.ask("result")
        _DESCENDANTS_CPU.append(_descendants_cpu(self.proc.pid))
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=120)
        self.sampler.stop.set()
        self.sampler.join()


def compare(reference: pd.DataFrame, other: pd.DataFrame) -> str:
    """'ok' when both list the same pairs with the same statuses and shares within 1e-9."""
    merged = reference.merge(
        other, on=["idu", "perimeter_id"], how="outer", suffixes=("", "_o"), indicator=True
    )
    only = int((merged["_merge"] != "both").sum())
    both = merged[merged["_merge"] == "both"]
    status = int((both["status"] != both["status_o"]).sum())
    share = float((both["share"] - both["share_o"]).abs().max()) if len(both) else 0.0
    if only == 0 and status == 0 and share <= SHARE_TOL:
        return f"identique (écart max des parts {share:.0e})"
    return f"DIFFÈRE : {only} paires d'un seul côté, {status} statuts, écart max des parts {share:.1e}"


def bench_dataset(dataset: str, n: int, args, cluster, root: Path) -> dict:
    """Both tables for one dataset and size: engines started once, then run in rounds."""
    data = root / f"{dataset}-{n}"
    t = time.perf_counter()
    facts = make_data(dataset, n, data, args)
    print(
        f"\n== {dataset}: {n:,} parcels × {facts['perimeters']} perimeters; "
        f"data in {time.perf_counter() - t:.1f} s"
    )
    out: dict = {"dataset": dataset, "n": n, "facts": facts, "tables": {}}
    for table, names in (("memory", args.engines), ("file", args.file_engines)):
        running: list[Running] = []
        skipped: dict[str, str] = {}
        for name in names:
            if name == "overlay" and n > args.overlay_max:
                skipped[name] = f"non mesuré au-delà de {_fr(args.overlay_max, 0)} parcelles (trop lent)"
                continue
            if name == "postgis" and cluster is None:
                skipped[name] = "PostGIS indisponible ici"
                continue
            running.append(Running(table, name, data, data, cluster if name == "postgis" else None))
            print(f"   [{table}] {name} loaded in {running[-1].load_s:.1f} s")
        for eng in running:  # one run of each engine, not timed: caches, pools, memory warmed alike
            eng.warm_up()
        for r in range(args.repeat):
            # Interleaved: each round runs every engine once, in an order that rotates.
            for eng in running[r % len(running) :] + running[: r % len(running)] if running else []:
                seconds = eng.run_once()
                print(
                    f"   [{table}] round {r + 1} {eng.engine:22s} {seconds:7.2f} s  "
                    f"load {os.getloadavg()[0]:.1f}"
                )
        for eng in running:
            eng.measure_memory()
        rows = {}
        for eng in running:
            eng.finish()
            rows[eng.engine] = {
                "seconds": statistics.median(eng.times),
                "times": eng.times,
                "peak_mb": eng.sampler.peak(eng.windows),
                "load_s": eng.load_s,
                "version": eng.version,
            }
        reference = pd.read_parquet(data / "result-memory-ort.parquet")
        for name, row in rows.items():
            path = data / f"result-{table}-{name.replace(' ', '_')}.parquet"
            row["agree"] = (
                "référence"
                if (table, name) == ("memory", "ort")
                else compare(reference, pd.read_parquet(path))
                if path.exists()
                else "sans objet (aucun verdict)"
            )
        rows.update({name: {"skipped": why} for name, why in skipped.items()})
        out["tables"][table] = rows
    explain = data / "postgis-explain.txt"
    out["explain"] = explain.read_text(encoding="utf-8") if explain.exists() else ""
    return out


# --- report ------------------------------------------------------------------------------------

_LABELS = {"synthetic": "synthétique", "real": "réel (Etalab 91216 + 73253 en mosaïque)"}


def _fr(x: float, digits: int = 2) -> str:
    return f"{x:,.{digits}f}".replace(",", "\u202f").replace(".", ",")


def markdown(results: list[dict], command: str, versions: dict, machine: dict) -> str:
    lines = [
        "# Banc d'essai à grande échelle",
        "",
        f"Produit par `{command}` (une seule commande, tous les moteurs dans la même exécution), "
        f"sur la machine du projet : {os.cpu_count()} cœurs, {_total_memory_gb():.0f} Go, "
        f"Python {platform.python_version()}, " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
        "",
        "**Charge de la machine pendant l'exécution** (machine partagée : les temps varient d'une exécution "
        f"à l'autre) : charge moyenne {machine['loadavg_start']} au début, {machine['loadavg_end']} à la fin "
        f"(1, 5, 15 min) ; {_fr(machine['busy_cores'])} cœurs occupés en moyenne sur {os.cpu_count()}, dont "
        f"{_fr(machine['ours_cores'])} par ce banc et "
        f"{_fr(max(machine['busy_cores'] - machine['ours_cores'], 0))} "
        f"par d'autres processus ; pression CPU (PSI, moyenne 5 min) {machine['psi']}.",
        "",
        "Mêmes avantages pour tous : périmètres découpés en morceaux de 64 sommets au plus (PostGIS "
        "`ST_Subdivide` dans sa requête ; DuckDB et SedonaDB, qui n'ont pas cette fonction, reçoivent les "
        "morceaux du découpage d'ort, chargés avec les parcelles), raccourci d'inclusion "
        "(`ST_ContainsProperly`, `ST_Contains` pour SedonaDB), intersection calculée une seule fois "
        "par paire "
        "(CTE `MATERIALIZED`, voir l'EXPLAIN plus bas), les deux cœurs autorisés (PostGIS : "
        "`max_parallel_workers_per_gather = 2` ; " + _postgis_workers(results) + " ; "
        "ses tables passées à `VACUUM (ANALYZE)` au chargement ; son `ST_Subdivide` est dans sa requête, "
        "donc dans son temps, à chaque essai). "
        "ort, lui, n'utilise pas ces morceaux : une grille grossière par périmètre décide la plupart des "
        "parcelles par leur rectangle englobant (boucle compilée, numba), les parcelles proches d'une limite "
        "sont testées par GEOS (`contains_properly`, `intersects`), et l'aire de chaque parcelle en bordure "
        "est calculée par découpage de polygones compilé (`geo.kernels`, à 1e-9 près de GEOS) ; de bout en "
        "bout, le WKB est lu en place (rectangles et aires sans GEOS). **Chiffres à chaud** : sa "
        "préparation (grilles, code compilé chargé) est faite au chargement en mémoire, comme DuckDB charge "
        "son extension spatiale ; de bout en bout, ses processus de travail sont démarrés au chargement, "
        "et gardent d'un essai à l'autre leurs grilles des périmètres, comme DuckDB et SedonaDB reçoivent "
        "leurs morceaux déjà découpés : la préparation des périmètres n'est comptée ici pour aucun moteur "
        "sauf PostGIS — `bench/bench_fresh.py` donne les chiffres tels qu'un utilisateur les vit "
        "(processus neufs, préparation comptée pour tous). "
        "Chaque moteur tourne dans son propre processus, chargé une fois, puis les moteurs passent à tour de "
        "rôle (entrelacés), ce qu'un moteur a écrit étant vidé sur disque (`sync`) avant le tour du "
        "suivant ; chaque moteur fait d'abord un essai à blanc, non compté (caches, processus, mémoire "
        "mis en route pour tous) ; on donne la médiane des essais suivants. La mémoire (pic de la PSS "
        "des processus du moteur) est mesurée pendant un essai de plus, non chronométré : lire la PSS "
        "parcourt les pages de chaque processus et prend du calcul au moteur mesuré, d'autant plus "
        "qu'il a de gros processus (les trois d'ort). Tous les résultats sont "
        "comparés paire à paire à celui d'ort en mémoire : mêmes paires, mêmes statuts, parts à "
        f"{SHARE_TOL:.0e} près.",
        "",
    ]
    for res in results:
        f = res["facts"]
        n = res["n"]
        lines += [
            f"## {_LABELS[res['dataset']]} — {_fr(n, 0)} parcelles × {f['perimeters']} périmètres",
            "",
            f"{_fr(f['vertices_per_parcel'], 1)} sommets par parcelle en moyenne ; périmètres : "
            f"{_fr(f['perimeter_vertices'], 0)} sommets, {_fr(f['pieces'], 0)} morceaux.",
            "",
        ]
        for table, title in (
            ("memory", "En mémoire : la classification seule, données déjà chargées"),
            ("file", "De bout en bout : fichier GeoParquet lu → verdicts Parquet écrits"),
        ):
            rows = res["tables"].get(table, {})
            ref = rows.get("ort" if table == "memory" else "ort classify", {}).get("seconds")
            lines += [
                f"### {title}",
                "",
                "| moteur | secondes (médiane) | essais | parcelles/s | pic Mo | Mo par M de parcelles | "
                "× plus lent qu'ort | chargement s | accord avec ort |",
                "|---|---:|---|---:|---:|---:|---:|---:|---|",
            ]
            for name, r in rows.items():
                if "skipped" in r:
                    lines.append(f"| {name} | — | — | — | — | — | — | — | {r['skipped']} |")
                    continue
                ratio = _fr(r["seconds"] / ref, 1) if ref else "—"
                lines.append(
                    f"| {name} | {_fr(r['seconds'])} | {' ; '.join(_fr(t) for t in r['times'])} | "
                    f"{_fr(n / r['seconds'], 0)} | {_fr(r['peak_mb'], 0)} | "
                    f"{_fr(r['peak_mb'] / (n / 1e6), 0)} | "
                    f"{ratio} | {_fr(r['load_s'], 1)} | {r['agree']} |"
                )
            lines.append("")
        lines += _targets(res)
    explain = next((r["explain"] for r in results if r.get("explain")), "")
    if explain:
        lines += [
            "## EXPLAIN de la requête PostGIS (`geo.scale.postgis.sql_classify`)",
            "",
            "`ST_Intersection` n'apparaît qu'une fois, dans le CTE matérialisé `pairs` ; les tests de statut "
            "lisent ses colonnes.",
            "",
            "```",
            explain.rstrip(),
            "```",
            "",
        ]
    return "\n".join(lines) + "\n"


def _postgis_workers(results: list[dict]) -> str:
    """What PostGIS's EXPLAIN says of its parallel workers (a ``Gather`` node, or none)."""
    explain = next((r["explain"] for r in results if r.get("explain")), "")
    if not explain:
        return "PostGIS non mesuré"
    planned = [line.strip() for line in explain.splitlines() if "Workers Planned" in line]
    if "Gather" in explain:
        return "son EXPLAIN a un nœud `Gather` (" + ("; ".join(planned) or "workers") + ")"
    return "mais son EXPLAIN n'a aucun nœud `Gather` : sa requête tourne sur un seul cœur"


def _targets(res: dict) -> list[str]:
    out = []
    mem, file = res["tables"].get("memory", {}), res["tables"].get("file", {})
    n = res["n"]
    for rows, ref, label in ((mem, "ort", "en mémoire"), (file, "ort classify", "de bout en bout")):
        if ref not in rows or "seconds" not in rows[ref]:
            continue
        for name, goal in (("duckdb", 2), ("duckdb COPY", 2), ("sedonadb", None), ("postgis", None)):
            if name in rows and "seconds" in rows[name]:
                ratio = rows[name]["seconds"] / rows[ref]["seconds"]
                if goal is None:
                    aim = "SQL réglée, même run" if name == "postgis" else "même run"
                else:
                    aim = f"objectif ≥ {goal} × : {'atteint' if ratio >= goal else 'NON atteint'}"
                out.append(f"- {label} : ort {_fr(ratio, 2)} × plus rapide que {name} ({aim}).")
    if "ort" in mem and "peak_mb" in mem["ort"]:
        per_m = mem["ort"]["peak_mb"] / (n / 1e6)
        verdict = "atteint" if per_m <= 1229 else "NON atteint"
        out.append(
            f"- mémoire d'ort en mémoire : {_fr(per_m, 0)} Mo par million de parcelles "
            f"(objectif ≤ 1,2 Go : {verdict})."
        )
    if "ort classify" in file and "peak_mb" in file["ort classify"]:
        per_m = file["ort classify"]["peak_mb"] / (n / 1e6)
        out.append(
            f"- mémoire d'`ort classify` de bout en bout : {_fr(per_m, 0)} Mo par million de parcelles."
        )
    return out + [""] if out else []


def _cpu_pressure() -> str:
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return "non disponible"
    return next(
        (f"{w.split('=')[1].replace('.', ',')} %" for w in line.split() if w.startswith("avg300=")),
        "non disponible",
    )


def _total_memory_gb() -> float:
    import psutil

    return psutil.virtual_memory().total / 2**30


PG_SETTINGS = {
    "shared_buffers": "1GB",
    "work_mem": "256MB",
    "maintenance_work_mem": "1GB",
    "effective_cache_size": "8GB",
    "max_parallel_workers_per_gather": "2",
    "max_parallel_workers": "2",
    "jit": "off",
}


def _versions(results: list[dict]) -> dict:
    import geopandas
    import shapely as shp

    out = {
        "shapely": shp.__version__,
        "GEOS": ".".join(map(str, shp.geos_version)),
        "geopandas": geopandas.__version__,
    }
    for res in results:
        for rows in res["tables"].values():
            for name, r in rows.items():
                if r.get("version"):
                    out[name.split()[0]] = r["version"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--datasets", nargs="+", default=["synthetic", "real"], choices=["synthetic", "real"])
    ap.add_argument("--perimeters", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--engines", nargs="+", default=list(IN_MEMORY), help="in-memory engines (ort first)")
    ap.add_argument("--file-engines", nargs="+", default=list(END_TO_END), help="end-to-end engines")
    ap.add_argument("--overlay-max", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the median is reported")
    ap.add_argument("--etalab", type=Path, default=None, help="folder of the real Etalab samples")
    ap.add_argument("--out", type=Path, default=None, help="Markdown report to write (e.g. bench/RESULTS.md)")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--table", help=argparse.SUPPRESS)
    ap.add_argument("--engine", help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--dsn", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args)
        return
    if args.engines[0] != "ort":
        raise SystemExit("--engines must start with ort: every result is compared with it")
    if args.etalab is None:  # like the tests: ORT_SHARED_DATA, else ../shared/data beside the checkout
        shared = os.environ.get("ORT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
        args.etalab = Path(shared) / "cadastre-etalab-sample"
    command = "python3 bench/bench_scale.py " + " ".join(sys.argv[1:])
    cluster = None
    if "postgis" in args.engines:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        import pgserver  # the throwaway server of the tests

        reason = pgserver.missing_reason()
        if reason:
            print(f"PostGIS skipped: {reason}")
        else:
            cluster = pgserver.start_temp_cluster(server_settings=PG_SETTINGS)
    machine = {"loadavg_start": " / ".join(_fr(x) for x in os.getloadavg())}
    cpu = _CpuMeter(cluster)
    results: list[dict] = []
    try:
        with tempfile.TemporaryDirectory(prefix="ort-bench-") as tmp:
            for n in args.sizes:
                for dataset in args.datasets:
                    results.append(bench_dataset(dataset, n, args, cluster, Path(tmp)))
        machine.update(cpu.summary())
    finally:
        if cluster is not None:
            cluster.stop()
    machine.update(loadavg_end=" / ".join(_fr(x) for x in os.getloadavg()), psi=_cpu_pressure())
    report = markdown(results, command, _versions(results), machine)
    print("\n" + report)
    if args.out:
        args.out.write_text(report, encoding="utf-8")
        print(f"written: {args.out}")


if __name__ == "__main__":
    main()
