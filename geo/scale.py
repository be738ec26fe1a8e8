"""Classifying a département or France: streamed by partition, on both cores or on Dask.

The input is cut into *units* of work of bounded size, each classified on its own:

- a folder of Etalab files (``cadastre-XXXXX-parcelles.json.gz``, one per commune, or one
  sub-folder per département): units are groups of communes of one département, read by
  the workers through :func:`geo.cadastre.read_parcels`;
- a GeoParquet file, a GeoPackage (or any file GDAL reads) or a folder of them: the file is
  streamed in batches of ``chunk_rows`` rows (Arrow), and each batch is split by partition.

Units are classified with the project's engine (:mod:`geo.classify`) by a pool of processes
(``engine="local"``, both cores by default) or by a Dask cluster (``engine="dask"``: a
``distributed.LocalCluster``, or an existing scheduler ``tcp://host:8786`` whose workers can
read the input paths). Memory stays bounded: a unit at a time per worker, a few units in
flight, and results written as they arrive. Only inside and straddling pairs are written
(pairs not listed are outside), in the metric CRS of each partition (Lambert-93, or the
overseas one).

The output is a folder (a Parquet dataset, ``departement=62/part-00000.parquet`` …) built in
a hidden temporary folder and renamed into place at the end, with ``_manifest.json`` (what
was done, what failed and where) and, when nothing failed, ``_SUCCESS``. A partition with
broken geometries is reported with its location and left out whole; the others are done. A
crash leaves only the hidden ``.<name>.partiel-*`` folder, never an output that looks complete.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely
from pyproj import CRS

from geo import classify, projection
from geo.errors import InputError, OrtError, OutputExistsError

#: How an input can be partitioned.
PARTITION_BY = ("departement", "commune", "rows")
#: Rows per batch read from a large file, and parcels per unit of work at most.
CHUNK_ROWS = 200_000
#: Etalab commune files per unit of work (a commune has a few thousand parcels).
FILES_PER_UNIT = 48
MANIFEST = "_manifest.json"
SUCCESS = "_SUCCESS"

_ETALAB = re.compile(
    r"cadastre-([0-9][0-9AB][0-9]{3})-parcelles\.(json|geojson|gpkg|zip)(\.gz)?$", re.IGNORECASE
)
_OTHER_LAYER = re.compile(r"cadastre-[0-9A-Z]+-[a-z_]+\.", re.IGNORECASE)
_ROW_SUFFIXES = (".parquet", ".gpkg", ".fgb", ".shp", ".geojson", ".json", ".geojson.gz", ".json.gz")


# --- units of work ---------------------------------------------------------------------------


@dataclass
class Unit:
    """One piece of work: the parcels of one partition read from files or carried as a batch.

    ``paths`` are Etalab commune files (read by the worker); ``table`` an Arrow batch of a
    large file (rows ``first_row`` … of ``source``), with the geometry as WKB.
    """

    key: str
    seq: int
    source: str
    paths: tuple[str, ...] = ()
    table: pa.Table | None = None
    first_row: int = 0
    batch_rows: int = 0
    crs: str | None = None
    row_groups: tuple[int, ...] = ()
    partition_by: str = "rows"
    column: str = "geometry"

    @property
    def location(self) -> str:
        """Where the unit comes from, for messages."""
        if self.paths:
            names = ", ".join(Path(p).name for p in self.paths[:3])
            more = f" et {len(self.paths) - 3} autre(s)" if len(self.paths) > 3 else ""
            return f"partition {self.key} ({names}{more})"
        last = self.first_row + self.batch_rows - 1
        return f"partition {self.key} ({Path(self.source).name}, lot des lignes {self.first_row}–{last})"


@dataclass
class UnitResult:
    """What a worker sends back: the verdicts of a unit, or the problem that stopped it."""

    key: str
    seq: int
    location: str
    parcels: int = 0
    frame: pd.DataFrame | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


def _key_of(code_insee: str, partition_by: str) -> str:
    if partition_by == "commune":
        return code_insee
    return projection.departement_of(code_insee)


_COMMUNE_COLUMNS = ("code_insee", "commune", "insee", "code_com")
_ID_COLUMNS = ("idu", "id", "id_par", "idpar")


def _key_columns(names: Iterable[str]) -> list[str]:
    """The columns a partition key is computed from (a commune column, else the id)."""
    lower = {c.lower(): c for c in names}
    for group in (_COMMUNE_COLUMNS, _ID_COLUMNS):
        for name in group:
            if name in lower:
                return [lower[name]]
    raise InputError(
        f"no commune or parcel id column (found: {', '.join(names)})",
        fix="give parcels with an 'idu' (14 characters) or 'code_insee' column",
    )


def _keys(table: pa.Table, partition_by: str) -> pa.Array:
    """Partition key of each row: département (``62``, ``2A``, ``974``) or commune (Arrow, fast)."""
    import pyarrow.compute as pc

    (column,) = _key_columns(table.column_names)
    text = pc.utf8_trim_whitespace(pc.cast(table[column], pa.string()))
    if column.lower() in _COMMUNE_COLUMNS:
        codes = pc.utf8_upper(pc.utf8_lpad(text, 5, padding="0"))
    else:
        codes = pc.utf8_upper(pc.utf8_slice_codeunits(text, 0, 5))
    codes = pc.fill_null(codes, "?????")
    if partition_by == "commune":
        return codes
    overseas = pc.starts_with(codes, "97")
    return pc.if_else(overseas, pc.utf8_slice_codeunits(codes, 0, 3), pc.utf8_slice_codeunits(codes, 0, 2))


def plan(
    source: str | Path, *, partition_by: str = "departement", chunk_rows: int = CHUNK_ROWS
) -> Iterator[Unit]:
    """Cut an input into units of work, lazily (large files are streamed batch by batch).

    Parameters
    ----------
    source : path
        An Etalab ``parcelles`` file, a folder of them (or of one sub-folder per
        département), a GeoParquet file, a GeoPackage or any vector file, or a folder of those.
    partition_by : str
        ``departement`` (default), ``commune`` or ``rows`` (fixed-size batches).
    chunk_rows : int
        Rows per batch of a large file.
    """
    if partition_by not in PARTITION_BY:
        raise InputError(
            f"--partition-by {partition_by!r} is unknown", fix=f"use one of {', '.join(PARTITION_BY)}"
        )
    source = Path(source)
    if not source.exists():
        raise InputError(
            "input not found", source=str(source), fix="give a file or a folder of cadastre files"
        )
    files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
    etalab = [p for p in files if _ETALAB.search(p.name)]
    # Other Etalab layers (sections, bâtiments…) lying beside the parcels are not parcels.
    rows = [
        p
        for p in files
        if p not in etalab and p.name.lower().endswith(_ROW_SUFFIXES) and not _OTHER_LAYER.search(p.name)
    ]
    if not etalab and not rows:
        raise InputError(
            "no parcel file found",
            source=str(source),
            fix="give cadastre-XXXXX-parcelles.json.gz files, a GeoParquet or a GeoPackage",
        )
    seq = 0
    if etalab:
        groups: dict[str, list[Path]] = {}
        for path in etalab:
            code = _ETALAB.search(path.name).group(1).upper()
            key = f"part-{len(groups):05d}" if partition_by == "rows" else _key_of(code, partition_by)
            groups.setdefault(key, []).append(path)
        for key in sorted(groups):
            paths = groups[key]
            for start in range(0, len(paths), FILES_PER_UNIT):
                yield Unit(
                    key, seq, str(source), paths=tuple(str(p) for p in paths[start : start + FILES_PER_UNIT])
                )
                seq += 1
    for path in rows:
        for unit in _stream_file(path, partition_by=partition_by, chunk_rows=chunk_rows, seq=seq):
            seq = unit.seq + 1
            yield unit


def _geoparquet(path: Path) -> tuple[pq.ParquetFile, str, str | None]:
    """The Parquet file, its geometry column and its CRS (GeoParquet metadata)."""
    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as err:
        raise InputError(f"cannot read this Parquet file ({err})", source=str(path)) from None
    meta = json.loads((pf.schema_arrow.metadata or {}).get(b"geo", b"{}"))
    column = meta.get("primary_column", "geometry")
    if column not in pf.schema_arrow.names:
        raise InputError(
            "not a GeoParquet file (no geometry column)",
            source=str(path),
            fix="write it with GeoDataFrame.to_parquet",
        )
    info = meta.get("columns", {}).get(column, {})
    # GeoParquet: a column without "crs" is OGC:CRS84; "crs": null means unknown.
    crs = info.get("crs", "OGC:CRS84") if info else None
    crs = CRS.from_json_dict(crs).to_string() if isinstance(crs, dict) else crs
    return pf, column, crs


def _parquet_units(path: Path, *, partition_by: str, chunk_rows: int, seq: int) -> Iterator[Unit] | None:
    """Units of whole row groups, read by the workers themselves; None if row groups are too big."""
    pf, column, crs = _geoparquet(path)
    sizes = [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)]
    if sizes and max(sizes) > 2 * chunk_rows:
        return None
    chunks, current, rows = [], [], 0
    for i, size in enumerate(sizes):
        if current and rows + size > chunk_rows:
            chunks.append(current)
            current, rows = [], 0
        current.append(i)
        rows += size
    if current:
        chunks.append(current)
    key_columns = None if partition_by == "rows" else _key_columns(pf.schema_arrow.names)

    def units() -> Iterator[Unit]:
        nonlocal seq
        first = 0
        for groups in chunks:
            n = sum(sizes[i] for i in groups)
            if key_columns is None:
                keys = [f"part-{seq:05d}"]
            else:
                keys = sorted(
                    set(_keys(pf.read_row_groups(groups, columns=key_columns), partition_by).to_pylist())
                )
            for key in keys:
                yield Unit(key, seq, str(path), (), None, first, n, crs, tuple(groups), partition_by, column)
                seq += 1
            first += n

    return units()


def _batches(path: Path, chunk_rows: int) -> Iterator[tuple[pa.Table, str, str | None]]:
    """Arrow batches of a file, geometry as WKB in column ``geometry``, and the CRS."""
    if path.suffix.lower() == ".parquet":
        pf, column, crs = _geoparquet(path)
        for batch in pf.iter_batches(batch_size=chunk_rows):
            table = pa.Table.from_batches([batch])
            yield (
                table.rename_columns(["geometry" if c == column else c for c in table.column_names]),
                str(path),
                crs,
            )
        return
    import pyogrio
    from pyogrio.raw import open_arrow

    gdal_path = f"/vsigzip/{path}" if path.name.lower().endswith(".gz") else str(path)
    try:
        info = pyogrio.read_info(gdal_path)
    except Exception as err:  # noqa: BLE001 - GDAL raises many kinds; name the file
        raise InputError(f"cannot read this file ({str(err).splitlines()[0]})", source=str(path)) from None
    crs = info.get("crs")
    with open_arrow(gdal_path, use_pyarrow=True, batch_size=chunk_rows) as (meta, reader):
        column = meta.get("geometry_name") or "wkb_geometry"
        for batch in reader:
            table = pa.Table.from_batches([batch])
            yield (
                table.rename_columns(["geometry" if c == column else c for c in table.column_names]),
                str(path),
                crs,
            )


def _stream_file(path: Path, *, partition_by: str, chunk_rows: int, seq: int) -> Iterator[Unit]:
    if path.suffix.lower() == ".parquet":
        units = _parquet_units(path, partition_by=partition_by, chunk_rows=chunk_rows, seq=seq)
        if units is not None:
            yield from units
            return
    first = 0
    for table, source, crs in _batches(path, chunk_rows):
        n = table.num_rows
        if partition_by == "rows":
            yield Unit(f"part-{seq:05d}", seq, source, (), table, first, n, crs)
            seq += 1
        else:
            try:
                keys = _keys(table, partition_by)
            except InputError as err:
                raise InputError(err.message, source=source, fix=err.fix) from None
            import pyarrow.compute as pc

            for key in sorted(set(keys.to_pylist())):
                part = table.filter(pc.equal(keys, key))
                yield Unit(str(key), seq, source, (), part, first, n, crs, (), partition_by)
                seq += 1
        first += n


def _table_of(unit: Unit) -> pa.Table:
    """The rows of a unit: carried with it, or read from its Parquet row groups."""
    if unit.table is not None:
        return unit.table
    import pyarrow.compute as pc

    table = pq.ParquetFile(unit.source).read_row_groups(list(unit.row_groups))
    table = table.rename_columns(["geometry" if c == unit.column else c for c in table.column_names])
    if unit.partition_by != "rows":
        table = table.filter(pc.equal(_keys(table, unit.partition_by), unit.key))
    return table


# --- reading and classifying one unit (in a worker) ------------------------------------------


def read_unit(unit: Unit, *, fix: bool = False) -> tuple[gpd.GeoDataFrame, list[str]]:
    """The parcels of a unit, normalised, checked and in the metric CRS of their communes.

    Returns
    -------
    (GeoDataFrame, list of str)
        Parcels (columns of :data:`geo.cadastre.PARCEL_COLUMNS`) and warnings to report.

    Raises
    ------
    geo.errors.InputError
        Broken geometries (unless ``fix``), bad ids, missing CRS — naming the unit's location.
    """
    from geo import cadastre

    caught: list[str] = []
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        if unit.paths:
            gdf = cadastre.read_parcels(list(unit.paths), fix=fix)
        else:
            gdf = _from_table(unit, fix=fix)
    caught += [str(w.message) for w in seen]
    return gdf, caught


_IDU = r"^[0-9][0-9AB][0-9]{3}[0-9A-Z]{3}[0-9A-Z]{2}[0-9]{4}$"


def _ids(table: pa.Table, source: str) -> pa.Array:
    """14-character IDUs of a batch, as Etalab writes them or built from its columns (Arrow, fast)."""
    import pyarrow.compute as pc

    names = {c.lower(): c for c in table.column_names}

    def text(name: str, width: int) -> pa.Array:
        col = pc.utf8_upper(pc.utf8_trim_whitespace(pc.cast(table[names[name]], pa.string())))
        return pc.utf8_lpad(col, width, padding="0")

    built = None
    commune = next((n for n in ("code_insee", "commune", "insee", "code_com") if n in names), None)
    if commune and "section" in names and "numero" in names:
        prefixe = text("prefixe", 3) if "prefixe" in names else pa.repeat("000", table.num_rows)
        built = pc.binary_join_element_wise(
            text(commune, 5), prefixe, text("section", 2), text("numero", 4), ""
        )
    id_col = next((n for n in ("idu", "id", "id_par", "idpar") if n in names), None)
    if id_col is None and built is None:
        raise InputError(
            f"no parcel id column (found: {', '.join(table.column_names)})",
            source=source,
            fix="give an 'idu' column (14 characters) or commune, section and numero",
        )
    ids = (
        pc.utf8_upper(pc.utf8_trim_whitespace(pc.cast(table[names[id_col]], pa.string())))
        if id_col
        else built
    )
    if built is not None and id_col:
        ids = pc.if_else(pc.equal(pc.utf8_length(ids), 14), ids, built)
    ok = pc.fill_null(pc.match_substring_regex(ids, _IDU), False)
    if not pc.all(ok).as_py():
        bad = ids[int(np.flatnonzero(~ok.to_numpy(zero_copy_only=False))[0])].as_py()
        raise InputError(
            f"{table.num_rows - pc.sum(ok).as_py()} parcel(s) with an id that is not a 14-character IDU",
            source=source,
            feature=f"id={bad!r}",
            fix="check the file's idu (or commune/section/numero) columns",
        )
    return ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids


def _from_table(unit: Unit, *, fix: bool) -> gpd.GeoDataFrame:
    """Parcels of an Arrow batch: ids checked, geometries checked, in the metric CRS."""
    table = _table_of(unit)
    last = unit.first_row + unit.batch_rows - 1
    source = f"{Path(unit.source).name} (partition {unit.key}, lot des lignes {unit.first_row}–{last})"
    if unit.crs is None:
        raise projection.CRSError("the file declares no CRS", source=source, fix="re-export it with its CRS")
    import pyarrow.compute as pc

    id_array = _ids(table, source)
    ids = id_array.to_numpy(zero_copy_only=False)
    code_arrow = pc.utf8_slice_codeunits(id_array, 0, 5)
    codes_array = code_arrow.to_numpy(zero_copy_only=False)
    try:
        geoms = shapely.from_wkb(table["geometry"].to_numpy(zero_copy_only=False), on_invalid="raise")
    except shapely.errors.GEOSException as err:
        raise InputError(
            f"unreadable geometry ({err})", source=source, fix="re-export the file (ogr2ogr, QGIS)"
        ) from None
    parcels = gpd.GeoDataFrame({"idu": ids, "code_insee": codes_array}, geometry=geoms, crs=unit.crs)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        warnings.warn(
            f"{source}: {int(missing.sum())} parcel(s) without geometry left out "
            f"(first: idu={ids[missing][0]})",
            stacklevel=2,
        )
        parcels = parcels[~missing]
    codes = sorted(pc.unique(code_arrow).to_pylist())
    parcels = projection.to_metric(
        parcels, projection.metric_crs_for(codes), source=source, code_insee=codes[0] if codes else None
    )
    geoms = parcels.geometry.to_numpy()
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        first = parcels["idu"].to_numpy()[invalid][0]
        if not fix:
            raise InputError(
                f"{int(invalid.sum())} invalid geometr{'y' if invalid.sum() == 1 else 'ies'} "
                f"({shapely.is_valid_reason(geoms[invalid][0])})",
                source=source,
                feature=f"idu={first}",
                fix="repair them at the source, or run again with --fix (make_valid)",
            )
        parcels = parcels.copy()
        parcels.loc[invalid, "geometry"] = shapely.make_valid(geoms[invalid])
        warnings.warn(
            f"{source}: {int(invalid.sum())} geometries repaired (first: idu={first})", stacklevel=2
        )
    return parcels


_WORKER: dict[str, object] = {}


def _init_worker(perimeters: gpd.GeoDataFrame, options: dict) -> None:
    _WORKER.clear()
    _WORKER.update(perimeters=perimeters, options=options, by_crs={})


def _perimeters_in(perimeters: gpd.GeoDataFrame, crs, cache: dict) -> gpd.GeoDataFrame:
    key = CRS.from_user_input(crs).to_string()
    if key not in cache:
        cache[key] = perimeters if CRS.from_user_input(perimeters.crs).equals(crs) else perimeters.to_crs(crs)
    return cache[key]


def run_unit(
    unit: Unit, perimeters: gpd.GeoDataFrame | None = None, options: dict | None = None
) -> UnitResult:
    """Read and classify one unit; problems are returned, not raised, so others go on."""
    perimeters = _WORKER["perimeters"] if perimeters is None else perimeters
    options = _WORKER.get("options", {}) if options is None else options
    cache = _WORKER.setdefault("by_crs", {}) if perimeters is _WORKER.get("perimeters") else {}
    result = UnitResult(unit.key, unit.seq, unit.location)
    try:
        parcels, result.warnings = read_unit(unit, fix=options.get("fix", False))
        result.parcels = len(parcels)
        perims = _perimeters_in(perimeters, parcels.crs, cache)
        result.frame = classify.classify_parcels(
            parcels,
            perims,
            tolerance_m2=options.get("tolerance_m2"),
            tolerance_pct=options.get("tolerance_pct"),
            with_distance=False,
            only_intersecting=True,
        )
        result.frame.attrs = {}
    except OrtError as err:
        result.error = str(err)
    return result


# --- running ---------------------------------------------------------------------------------


@dataclass
class RunReport:
    """What :func:`classify_dataset` did: written to ``_manifest.json`` beside the results."""

    output: str
    engine: str
    partition_by: str
    complete: bool = False
    parcels: int = 0
    rows: int = 0
    partitions: dict[str, dict] = field(default_factory=dict)
    failed: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    provenance: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


def _local_executor(workers: int, perimeters, options) -> tuple[Callable, Callable]:
    if workers <= 1:
        _init_worker(perimeters, options)
        return (lambda unit: _Done(run_unit(unit))), (lambda: None)
    # Not fork: the parent may run Arrow threads; forkserver starts clean workers quickly.
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["geo.scale"])
    else:
        ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=(perimeters, options)
    )
    return (lambda unit: pool.submit(run_unit, unit)), (lambda: pool.shutdown(wait=True, cancel_futures=True))


class _Done:
    """A finished 'future' for the in-process path."""

    def __init__(self, value: UnitResult) -> None:
        self._value = value

    def result(self) -> UnitResult:
        return self._value

    def done(self) -> bool:
        return True


def _dask_executor(workers: int, scheduler: str | None, perimeters, options) -> tuple[Callable, Callable]:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise OrtError(
            "the Dask engine needs dask and distributed — pip install distributed dask-geopandas"
        ) from None
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as err:
            raise InputError(
                f"cannot reach the Dask scheduler ({err})",
                source=scheduler,
                fix="check --scheduler tcp://host:8786",
            ) from None
        cluster = None
    else:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    shared = client.scatter(perimeters, broadcast=True)

    def submit(unit: Unit):
        return client.submit(run_unit, unit, shared, options, pure=False)

    def close() -> None:
        client.close()
        if cluster is not None:
            cluster.close()

    return submit, close


def classify_dataset(
    source: str | Path,
    perimeters: gpd.GeoDataFrame,
    output: str | Path,
    *,
    partition_by: str = "departement",
    engine: str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    tolerance_m2: float | None = None,
    tolerance_pct: float | None = None,
    fix: bool = False,
    force: bool = False,
    chunk_rows: int = CHUNK_ROWS,
    provenance: dict | None = None,
    progress: Callable[[UnitResult], None] | None = None,
) -> RunReport:
    """Classify every parcel of a large input against perimeters, partition by partition.

    Parameters
    ----------
    source : path
        See :func:`plan`.
    perimeters : GeoDataFrame
        Perimeters (``perimeter_id``, ``type``, ``nom``) in any CRS; reprojected to each
        partition's metric CRS.
    output : path
        Output folder (a Parquet dataset); refused if it exists, unless ``force``.
    engine : str
        ``local`` (a process pool) or ``dask`` (``scheduler`` or a LocalCluster).
    workers : int, optional
        Worker processes; default the number of cores.
    fix : bool
        Repair invalid parcel geometries with ``make_valid`` instead of failing the partition.

    Returns
    -------
    RunReport
        Also written to ``output/_manifest.json``.
    """
    start = time.perf_counter()
    output = Path(output)
    if output.exists() and not force:
        raise OutputExistsError(f"{output} already exists — pass --force (force=True) to overwrite it")
    if engine not in ("local", "dask"):
        raise InputError(f"--engine {engine!r} is unknown", fix="use local or dask")
    if perimeters.empty:
        raise InputError("no perimeter to classify against", fix="check the convention's date and versions")
    projection.require_crs(perimeters, source="perimeters")
    workers = workers or os.cpu_count() or 1
    options = {"tolerance_m2": tolerance_m2, "tolerance_pct": tolerance_pct, "fix": fix}
    report = RunReport(str(output), engine, partition_by, provenance=dict(provenance or {}))
    units = plan(source, partition_by=partition_by, chunk_rows=chunk_rows)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.partiel-", dir=output.parent))
    if engine == "dask":
        submit, close = _dask_executor(workers, scheduler, perimeters, options)
    else:
        submit, close = _local_executor(workers, perimeters, options)
    try:
        for res in _run_all(units, submit, in_flight=2 * workers):
            _record(res, tmp, report)
            if progress:
                progress(res)
        _finish(tmp, output, report, force=force, seconds=time.perf_counter() - start)
    finally:
        close()
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def _run_all(units: Iterable[Unit], submit: Callable, *, in_flight: int) -> Iterator[UnitResult]:
    """Submit units, a few at a time (bounded memory), and yield results as they finish."""
    pending: set = set()
    for unit in units:
        pending.add(submit(unit))
        while len(pending) >= in_flight:
            done, pending = _wait_some(pending)
            yield from (f.result() for f in done)
    while pending:
        done, pending = _wait_some(pending)
        yield from (f.result() for f in done)


def _wait_some(pending: set) -> tuple[set, set]:
    if all(isinstance(f, _Done) for f in pending):
        return set(pending), set()
    first = next(iter(pending))
    if type(first).__module__.startswith("distributed"):
        from distributed import wait as dask_wait

        res = dask_wait(list(pending), return_when="FIRST_COMPLETED")
        return set(res.done), set(res.not_done)
    done, not_done = wait(pending, return_when=FIRST_COMPLETED)
    return set(done), set(not_done)


def _record(res: UnitResult, tmp: Path, report: RunReport) -> None:
    part = report.partitions.setdefault(res.key, {"parcels": 0, "rows": 0, "parts": 0})
    report.warnings += [f"{res.location}: {w}" for w in res.warnings]
    if res.error is not None:
        report.failed.append({"partition": res.key, "location": res.location, "error": res.error})
        return
    if any(f["partition"] == res.key for f in report.failed):
        return
    folder = tmp / _partition_folder(report.partition_by, res.key)
    folder.mkdir(parents=True, exist_ok=True)
    res.frame.to_parquet(folder / f"part-{res.seq:05d}.parquet", index=False)
    part["parcels"] += res.parcels
    part["rows"] += len(res.frame)
    part["parts"] += 1


def _partition_folder(partition_by: str, key: str) -> str:
    return key if partition_by == "rows" else f"{partition_by}={key}"


def _finish(tmp: Path, output: Path, report: RunReport, *, force: bool, seconds: float) -> None:
    failed_keys = {f["partition"] for f in report.failed}
    for key in failed_keys:
        # A partition with a broken unit is left out whole: no half département in the output.
        shutil.rmtree(tmp / _partition_folder(report.partition_by, key), ignore_errors=True)
        report.partitions.pop(key, None)
    report.parcels = sum(p["parcels"] for p in report.partitions.values())
    report.rows = sum(p["rows"] for p in report.partitions.values())
    report.complete = not report.failed
    report.seconds = round(seconds, 3)
    report.provenance.setdefault("date_run", dt.datetime.now().isoformat(timespec="seconds"))
    (tmp / MANIFEST).write_text(json.dumps(asdict(report), ensure_ascii=False, indent=2), encoding="utf-8")
    if report.complete:
        (tmp / SUCCESS).write_text("", encoding="utf-8")
    if output.exists():
        if not force:
            raise OutputExistsError(f"{output} already exists — pass --force (force=True) to overwrite it")
        old = output.with_name(f".{output.name}.ancien-{os.getpid()}")
        os.replace(output, old)
        os.replace(tmp, output)
        (shutil.rmtree if old.is_dir() else os.unlink)(old)
    else:
        os.replace(tmp, output)


def read_results(output: str | Path, *, allow_partial: bool = False) -> pd.DataFrame:
    """Read the verdicts of a finished :func:`classify_dataset` run.

    Raises
    ------
    geo.errors.InputError
        No manifest (the run did not finish), or failed partitions and not ``allow_partial``.
    """
    output = Path(output)
    manifest = output / MANIFEST
    if not manifest.is_file():
        raise InputError("no _manifest.json: this run did not finish", source=str(output), fix="run it again")
    meta = json.loads(manifest.read_text(encoding="utf-8"))
    if meta["failed"] and not allow_partial:
        keys = ", ".join(f["partition"] for f in meta["failed"])
        raise InputError(f"partitions {keys} failed", source=str(output), fix="see _manifest.json")
    parts = sorted(output.rglob("part-*.parquet"))
    if not parts:
        return pd.DataFrame(columns=classify.RESULT_COLUMNS)
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


# --- in memory, both cores -------------------------------------------------------------------

#: Below this many parcels, :func:`classify_frame` stays in one process (forking costs more).
FORK_MIN_PARCELS = 200_000
_FRAME: dict[str, np.ndarray] = {}


def _overlaps_slice(bounds: tuple[int, int]) -> classify.Overlaps:
    lo, hi = bounds
    found = classify.overlaps(_FRAME["parcels"][lo:hi], _FRAME["perimeters"])
    return found._replace(parcel=found.parcel + lo)


def classify_frame(
    parcels: gpd.GeoDataFrame,
    perimeters: gpd.GeoDataFrame,
    *,
    workers: int | None = None,
    tolerance_m2: float | None = None,
    tolerance_pct: float | None = None,
    id_column: str = "idu",
) -> pd.DataFrame:
    """:func:`geo.classify.classify_parcels` (inside and straddling pairs) on several cores.

    The parcels are split in slices classified by forked processes that share the layer
    (copy-on-write), and send back only the pairs found. Same result as
    ``classify_parcels(parcels, perimeters, only_intersecting=True, with_distance=False)``.

    Parameters
    ----------
    parcels, perimeters : GeoDataFrame
        Same metric CRS (metres).
    workers : int, optional
        Processes; default the number of cores (1: no process at all).
    """
    tol_m2, tol_pct = classify.check_layers(
        parcels, perimeters, tolerance_m2=tolerance_m2, tolerance_pct=tolerance_pct, id_column=id_column
    )
    workers = workers or os.cpu_count() or 1
    pgeom, mgeom = parcels.geometry.to_numpy(), perimeters.geometry.to_numpy()
    if workers <= 1 or len(pgeom) < FORK_MIN_PARCELS or "fork" not in multiprocessing.get_all_start_methods():
        found = classify.overlaps(pgeom, mgeom)
    else:
        _FRAME.update(parcels=pgeom, perimeters=mgeom)
        cuts = np.linspace(0, len(pgeom), 4 * workers + 1).astype(int)
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                parts = pool.map(_overlaps_slice, list(zip(cuts[:-1], cuts[1:], strict=True)), chunksize=1)
        finally:
            _FRAME.clear()
        found = classify.Overlaps(*(np.concatenate(arrays) for arrays in zip(*parts, strict=True)))
    return classify.classify_overlaps(
        parcels,
        perimeters,
        found,
        tolerance_m2=tol_m2,
        tolerance_pct=tol_pct,
        with_distance=False,
        only_intersecting=True,
        id_column=id_column,
    )


# --- Dask DataFrames -------------------------------------------------------------------------


def classify_dask(
    parcels,
    perimeters: gpd.GeoDataFrame,
    *,
    tolerance_m2: float | None = None,
    tolerance_pct: float | None = None,
):
    """Classify a ``dask_geopandas.GeoDataFrame`` of parcels, lazily, partition by partition.

    Parameters
    ----------
    parcels : dask_geopandas.GeoDataFrame
        With ``idu`` and a geometry in a metric CRS (e.g. ``dask_geopandas.read_parquet``
        then ``.to_crs("EPSG:2154")``).
    perimeters : GeoDataFrame
        Same CRS; sent once to each worker.

    Returns
    -------
    dask.dataframe.DataFrame
        Inside and straddling pairs, columns :data:`geo.classify.RESULT_COLUMNS`; compute it,
        or write it with ``.to_parquet``.
    """
    meta = pd.DataFrame(
        {
            c: pd.Series(
                dtype="float64"
                if c in ("share", "area_inside_m2", "parcel_area_m2", "distance_m")
                else "object"
            )
            for c in classify.RESULT_COLUMNS
        }
    )
    return parcels.map_partitions(
        _classify_partition, perimeters, tolerance_m2, tolerance_pct, meta=meta, align_dataframes=False
    )


def _classify_partition(part: gpd.GeoDataFrame, perimeters, tolerance_m2, tolerance_pct) -> pd.DataFrame:
    out = classify.classify_parcels(
        part,
        perimeters,
        tolerance_m2=tolerance_m2,
        tolerance_pct=tolerance_pct,
        with_distance=False,
        only_intersecting=True,
    )
    out.attrs = {}
    return out
