"""Classifying a département or France: streamed by partition, on both cores or on Dask.

The input — a folder of Etalab files, a GeoParquet file, a GeoPackage or any file GDAL
reads — is cut into *units* of work of bounded size, each within one partition and
classified on its own; finding, cutting and reading the input is :mod:`geo.scale.partitions`'
job (:func:`geo.scale.partitions.plan`, :func:`geo.scale.partitions.read_unit`), running the
units this module's, the output folder :mod:`geo.scale.output`'s.

Units are classified with the project's engine (:mod:`geo.classify`) by threads of this
process or a pool of processes (``engine="local"``, both cores by default; ``ort classify``
uses the threads: nothing to start) or by a Dask cluster (``engine="dask"``: a
``distributed.LocalCluster``, or an existing scheduler ``tcp://host:8786`` whose workers can
read the input paths). Memory stays bounded: a unit at a time per worker, a few units in
flight, and results written as they are done — by the local workers themselves, into the run's
hidden temporary folder; with Dask, by the process that runs ``classify_dataset``. The local
workers are forked from a server that has loaded the compiled code once
(:mod:`geo.scale._warm`). Only inside and straddling pairs are written (pairs not listed are
outside), in the metric CRS of each partition (Lambert-93, or the
overseas one).

The output is a folder (a Parquet dataset, ``departement=62/part-00000.parquet`` …) built in
a hidden temporary folder and renamed into place at the end, with ``_manifest.json`` (what
was done, what failed and where, the files written) and, when every parcel has its verdict,
``_SUCCESS``. An invalid parcel near a perimeter is set aside (or repaired with ``fix``) and
listed in ``invalides.parquet`` (:mod:`geo.validity`), never classified as it is nor its
partition refused; a partition with unusable input (bad ids, a wrong CRS…) is reported with
its location and left out whole; the others are done. A crash leaves only the hidden
``.<name>.partiel-*`` folder, never an output that looks complete.
"""

from __future__ import annotations

import atexit
import os
import pickle
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import shapely

from geo import classify, projection, validity
from geo.errors import InputError, OrtError, OrtWarning, cause
from geo.io import check_output_folder
from geo.perimeter_layer import PerimeterLayer
from geo.scale import forkserver
from geo.scale.output import INVALID_FILE as INVALID_FILE
from geo.scale.output import INVALID_PARTS, finish, write_part
from geo.scale.output import MANIFEST as MANIFEST
from geo.scale.output import SUCCESS as SUCCESS
from geo.scale.output import read_results as read_results
from geo.scale.partitions import CHUNK_ROWS, Unit, plan, read_unit

# Cutting and reading the input live in geo.scale.partitions; ``X as X`` keeps names read from here.
from geo.scale.partitions import FILES_PER_UNIT as FILES_PER_UNIT
from geo.scale.partitions import PARTITION_BY as PARTITION_BY

if TYPE_CHECKING:  # imported where a unit needs them (GeoParquet batches do without)
    from concurrent.futures import ProcessPoolExecutor

    import geopandas as gpd
    import pandas as pd

# --- reading and classifying one unit (in a worker) ------------------------------------------


@dataclass
class UnitResult:
    """What a worker sends back: the verdicts of a unit, or the problem that stopped it."""

    key: str
    seq: int
    location: str
    parcels: int = 0
    table: pa.Table | None = None
    rows: int = 0
    written: bool = False  # the worker wrote ``table`` itself (then dropped it)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    #: Invalid parcels set aside or repaired (:data:`geo.validity.INVALID_COLUMNS`).
    invalid: pd.DataFrame | None = None


_WORKER: dict[str, object] = {}


def _init_worker(perimeters: PerimeterLayer, options: dict) -> None:
    _WORKER.clear()
    _WORKER.update(perimeters=perimeters, options=options, by_crs={})


def _run_shared(unit: Unit, token: str, blob: bytes, tmp: str, partition_by: str) -> UnitResult:
    """:func:`run_unit` in a pool worker, the run's perimeters and options unpacked once; the
    verdicts are written by the worker into the run's temporary folder (``tmp``)."""
    if _WORKER.get("token") != token:
        _init_worker(*pickle.loads(blob))
        _WORKER["token"] = token
    result = run_unit(unit)
    if result.error is None:
        write_part(result, Path(tmp), partition_by)
    return result


def _perimeters_in(perimeters: PerimeterLayer, crs, cache: dict) -> PerimeterLayer:
    code = projection.epsg_code(crs)
    key = f"EPSG:{code}" if code is not None else projection.CRS.from_user_input(crs).to_string()
    if key not in cache:
        cache[key] = perimeters.in_crs(crs)
    return cache[key]


def run_unit(
    unit: Unit,
    perimeters: PerimeterLayer | None = None,
    options: dict | None = None,
    cache: dict | None = None,
) -> UnitResult:
    """Read and classify one unit; problems are returned, not raised, so others go on.

    Parameters
    ----------
    unit : Unit
        From :func:`geo.scale.partitions.plan`.
    perimeters : PerimeterLayer or GeoDataFrame, optional
        Perimeters in any CRS, reprojected to the unit's metric CRS; default the ones the
        worker process was started with.
    options : dict, optional
        ``tolerance_m2``, ``tolerance_pct``, ``fix``; default the worker's.
    cache : dict, optional
        What the caller keeps from unit to unit with these perimeters (reprojections, checks).

    Returns
    -------
    UnitResult
        The inside and straddling pairs, or the error that stopped the unit (and its location).
    """
    perimeters = _WORKER["perimeters"] if perimeters is None else PerimeterLayer.of(perimeters)
    options = _WORKER.get("options", {}) if options is None else options
    if cache is None:
        cache = _WORKER.setdefault("by_crs", {}) if perimeters is _WORKER.get("perimeters") else {}
    result = UnitResult(unit.key, unit.seq, unit.location)
    fix = bool(options.get("fix", False))
    try:
        if not unit.paths:
            fast = _classify_wkb(unit, perimeters, options, cache)
            if fast is not None:
                result.parcels, result.table, result.invalid = fast
                return result
        import pandas as pd

        parcels, result.warnings, unreadable = read_unit(unit, fix=fix, invalid=True)
        result.parcels = len(parcels) + len(unreadable)
        perims = _perimeters_in(perimeters, parcels.crs, cache)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OrtWarning)  # the invalid parcels are listed instead
            frame = classify.classify_parcels(
                parcels,
                perims.frame(),
                tolerance_m2=options.get("tolerance_m2"),
                tolerance_pct=options.get("tolerance_pct"),
                with_distance=False,
                only_intersecting=True,
                compiled=True,
                fix=fix,
            )
        found = pd.DataFrame(frame.attrs.get("invalides") or [], columns=validity.INVALID_COLUMNS)
        listed = [t for t in (unreadable, found) if len(t)]
        result.invalid = pd.concat(listed, ignore_index=True) if listed else None
        frame.attrs = {}
        result.table = pa.Table.from_pandas(frame, preserve_index=False)
    except OrtError as err:
        result.error = str(err)
    return result


def _classify_wkb(unit: Unit, perimeters: PerimeterLayer, options: dict, cache: dict):
    """Classify an Arrow batch from its WKB, building geometries only near perimeter boundaries.

    The parcels of a GeoParquet batch already in their metric CRS are read as bounding boxes
    (:mod:`geo.scale.wkb`); the grid of :func:`geo.classify.overlaps_of_bounds` decides most of
    them, and only the others become GEOS geometries. Every parcel in a pair — decided by the
    grid or tested — is checked valid first (:func:`geo.scale.wkb.rings_valid`, GEOS for what
    it cannot vouch for): an invalid one is set aside, or repaired with ``fix``, and listed
    (:mod:`geo.validity`). The verdicts are those of :func:`geo.classify.classify_parcels`,
    bit for bit.

    Returns
    -------
    (int, Table, DataFrame or None) or None
        Parcels read, their inside and straddling pairs and the invalid parcels; None when the
        batch needs the full reader (another CRS, missing or unreadable geometries, …).
    """
    from geo.scale import partitions

    try:
        from geo.scale import wkb  # compiled loops: the C library, else numba
    except ImportError:  # neither: the full reader does it all
        return None
    if unit.crs is None:
        return None
    table = partitions._table_of(unit)
    # Imported once the rows are read: in a fresh process, the first units read (without
    # Python's lock) while the first thread to need Arrow's compute functions imports them.
    import pyarrow.compute as pc

    last = unit.first_row + unit.batch_rows - 1
    source = f"{Path(unit.source).name} (partition {unit.key}, lot des lignes {unit.first_row}–{last})"
    ids = partitions._ids(table, source)
    partitions.check_unique(ids, source=source)
    codes = sorted(pc.unique(pc.utf8_slice_codeunits(ids, 0, 5)).to_pylist())
    target = projection.metric_crs_for(codes)
    if not projection.same_crs(unit.crs, target):
        return None
    column = table["geometry"]
    scanned = wkb.scan(column)
    n = table.num_rows
    bounds, simple = scanned.bounds, scanned.simple
    others = np.flatnonzero(~simple)  # built by GEOS
    other_geoms = None
    if len(others):
        other_geoms = shapely.from_wkb(column.take(pa.array(others)).to_pylist(), on_invalid="ignore")
        if (shapely.is_missing(other_geoms) | shapely.is_empty(other_geoms)).any():
            return None  # the full reader lists them
        bounds[others] = shapely.bounds(other_geoms)
    if not np.isfinite(bounds).all():
        return None
    partitions.check_kinds(other_geoms, ids.take(pa.array(others)), source=source)
    # Column by column: numpy reduces a column of a row-major array far faster than axis=0.
    extent = tuple(float(f(bounds[:, k])) for k, f in enumerate((np.min, np.min, np.max, np.max)))
    projection.check_plausible_extent(extent, unit.crs, source=source, code_insee=codes[0])
    other_at = np.full(n, -1, dtype=np.intp)
    other_at[others] = np.arange(len(others))

    def geoms(idx: np.ndarray) -> np.ndarray:
        out = np.empty(len(idx), dtype=object)
        mine = simple[idx]
        if mine.any():
            # (to_pylist: as fast as to_numpy, which makes pyarrow import pandas)
            out[mine] = shapely.from_wkb(column.take(pa.array(idx[mine])).to_pylist())
        if (~mine).any():
            out[~mine] = other_geoms[other_at[idx[~mine]]]
        return out

    def areas(idx: np.ndarray) -> np.ndarray:
        out = scanned.area[idx]
        mine = simple[idx]
        if not mine.all():
            out[~mine] = shapely.area(other_geoms[other_at[idx[~mine]]])
        return out

    def valid(idx: np.ndarray) -> np.ndarray:
        ok = np.zeros(len(idx), dtype=bool)
        mine = np.flatnonzero(simple[idx])
        ok[mine] = wkb.rings_valid(column, idx[mine])
        unsure = np.flatnonzero(~ok)  # rings the compiled test cannot vouch for, and the others
        if len(unsure):
            ok[unsure] = validity.valid_geoms(geoms(idx[unsure]))
        return ok

    perims = _perimeters_in(perimeters, unit.crs, cache)
    checked = ("tolerances", id(perims))
    if checked not in cache:  # once per perimeters and CRS
        cache[checked] = _check_layers(unit.crs, perims, options)
    tol_m2, tol_pct = cache[checked]
    exact = np.zeros(n, dtype=bool)
    if len(others):
        exact[others] = shapely.get_type_id(other_geoms) == 0  # points: covered or not
    mgeom = perims.geoms
    tracker = validity.Tracker(valid)
    found = classify.overlaps_of_bounds(
        bounds, mgeom, geoms=geoms, areas=areas, exact=exact, compiled=True, valid=tracker
    )
    bad, invalid = tracker.invalid, None
    pair_area = areas(found.parcel)
    if len(bad):
        fix = bool(options.get("fix", False))
        invalid = validity.invalid_table(ids.take(pa.array(bad)).to_pylist(), geoms(bad), repaired=fix)
        if fix:
            repaired = validity.repair(geoms(bad))
            more = classify.overlaps(repaired, mgeom, compiled=True, valid=False)
            found = classify.merge_overlaps(found, more._replace(parcel=bad[more.parcel]))
            area_of = dict(zip(bad.tolist(), shapely.area(repaired).tolist(), strict=True))
            pair_area = areas(found.parcel)
            fixed = np.isin(found.parcel, bad)
            pair_area[fixed] = [area_of[i] for i in found.parcel[fixed].tolist()]
    verdicts = classify.sparse_verdicts(found, pair_area, tol_m2, tol_pct)
    return n, _verdict_table(ids, perims, *verdicts), invalid


def _check_layers(crs, perims: PerimeterLayer, options: dict) -> tuple[float, float]:
    """:func:`geo.classify.check_layers` of a unit's parcels (in ``crs``, its partition's metric
    CRS) and its perimeters (in ``crs`` too): the tolerances, and the perimeters' ids."""
    if perims.table is None:  # read from a file: ids always, and in the unit's CRS already
        return classify.tolerances(options.get("tolerance_m2"), options.get("tolerance_pct"))
    import geopandas as gpd  # (perimeters given as a GeoDataFrame: loaded already)

    return classify.check_layers(
        gpd.GeoDataFrame({"idu": []}, geometry=[], crs=crs),
        perims.frame(),
        tolerance_m2=options.get("tolerance_m2"),
        tolerance_pct=options.get("tolerance_pct"),
    )


_TEXT = pa.large_string()


def _verdict_table(ids: pa.Array, perimeters: PerimeterLayer, rows, cols, status, share, inside, area):
    """The result table (:data:`geo.classify.RESULT_COLUMNS`) built in Arrow: no Python strings.

    The same table as ``pa.Table.from_pandas`` of :func:`geo.classify.classify_overlaps`'s
    sparse result, without the distance (not computed at scale).
    """
    import pyarrow.compute as pc

    def column(name: str) -> pa.Array:
        return perimeters.arrow(name).take(pa.array(cols))

    return pa.table(
        {
            "idu": pc.cast(ids.take(pa.array(rows)), _TEXT),
            "perimeter_id": column("perimeter_id"),
            "perimeter_type": column("type"),
            "perimeter_nom": column("nom"),
            "status": pa.array(classify.STATUSES, _TEXT).take(pa.array(status)),
            "share": share,
            "area_inside_m2": inside,
            "parcel_area_m2": area,
            "distance_m": np.full(len(rows), np.nan),
        }
    )


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
    #: Invalid parcels (:mod:`geo.validity`): how many set aside (no verdict) and repaired,
    #: the first few, and the file listing them all (:data:`INVALID_FILE`).
    invalides: dict = field(default_factory=lambda: {"ecartees": 0, "reparees": 0, "exemples": []})
    #: The files this run wrote (relative paths): all that a later ``force`` may replace.
    fichiers: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


#: Worker pools kept for the next run of this process (started once: imports cost seconds).
_POOLS: dict[int, ProcessPoolExecutor] = {}


def _pool(workers: int) -> ProcessPoolExecutor:
    from concurrent.futures import ProcessPoolExecutor  # (threads need none of multiprocessing)

    pool = _POOLS.get(workers)
    if pool is None or getattr(pool, "_broken", False):
        ctx = forkserver.context()
        if not _POOLS:
            atexit.register(_close_pools)
        pool = _POOLS[workers] = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_warm_compiled)
    return pool


_WARMED = threading.Event()
_WARMING = threading.Lock()


def _warm_compiled() -> None:
    """Load the compiled code (:mod:`geo.kernels`, :mod:`geo.scale.wkb`) once per process."""
    with _WARMING:
        if _WARMED.is_set():
            return
        try:
            from geo.scale import compiled
        except ImportError:  # neither the C library nor numba: GEOS and numpy do the work
            pass
        else:
            compiled.compile_all()
        _WARMED.set()


def warm_in_background() -> None:
    """Start loading the compiled code in a thread of this process, and return at once.

    With the C library (:mod:`geo.native`) there is nothing to load: the thread ends at once.
    On numba (the fallback), about half a second of a fresh process (numba's registries, then
    the machine code of each loop), overlapping the reading of the perimeters. A thread that
    calls a loop meanwhile waits for it (numba compiles and loads under one lock);
    :func:`_warm_compiled` waits for it too.
    """
    if not _WARMED.is_set():
        threading.Thread(target=_warm_quietly, name="ort-warm", daemon=True).start()


def _warm_quietly() -> None:
    try:
        _warm_compiled()
    except Exception:  # noqa: BLE001 - the units' own calls meet it again and report it properly
        pass


def _close_pools() -> None:
    while _POOLS:
        _POOLS.popitem()[1].shutdown(wait=True, cancel_futures=True)


def _thread_executor(
    workers: int, perimeters: PerimeterLayer, options, tmp: Path, partition_by: str
) -> tuple[Callable, Callable]:
    """Units on ``workers`` threads of this process: no process to start, nothing pickled.

    The compiled loops release the GIL (``nogil``), and so do GEOS (shapely), Arrow's reader
    and writer: the threads share both cores as worker processes would, without a second
    interpreter importing the engine, nor each worker preparing its own perimeters. Each
    thread has its own perimeter geometries (:meth:`PerimeterLayer.copy`: GEOS builds a
    prepared geometry's indexes lazily, and two threads building them at once crash it);
    their grids are shared.

    What ``ort classify`` uses: a fresh process starts no interpreter, imports the engine once
    (for a GeoParquet file and a plain GeoPackage of perimeters, neither pandas, geopandas
    nor pyproj: :mod:`geo.perimeter_layer`), loads the compiled code in a thread while the
    first units are read (:func:`warm_in_background`), and prepares each perimeter once. Its
    memory stays bounded
    against many perimeters now that a batch prepares and grids only the perimeters near it
    (:func:`geo.classify.overlaps_of_bounds`): 4 million real parcels in 4 files against 1,500
    perimeters peaked at 1.1 GB (it grew to 13.7 GB before that change).
    """
    warm_in_background()  # the first units are read meanwhile; their loops wait for it
    local = threading.local()

    def work(unit: Unit) -> UnitResult:
        if not hasattr(local, "perimeters"):
            local.perimeters = perimeters.copy()
            local.cache = {}
        result = run_unit(unit, local.perimeters, options, local.cache)
        if result.error is None:
            write_part(result, tmp, partition_by)
        return result

    pool = ThreadPoolExecutor(workers, thread_name_prefix="ort-classify")
    sent: list = []

    def submit(unit: Unit):
        sent.append(pool.submit(work, unit))
        return sent[-1]

    def close() -> None:
        for future in sent:
            future.cancel()
        pool.shutdown(wait=True)

    return submit, close


def _local_executor(
    workers: int, perimeters, options, tmp: Path, partition_by: str, processes: bool = True
) -> tuple[Callable, Callable]:
    if workers <= 1:
        _init_worker(perimeters, options)
        return (lambda unit: _Done(run_unit(unit))), (lambda: None)
    if not processes:
        return _thread_executor(workers, perimeters, options, tmp, partition_by)
    pool = _pool(workers)
    sent: list = []
    # The perimeters travel with each unit (a few MB at most), so the pool serves any run; a
    # worker unpacks them (and prepares their grids) once per run, by this token.
    import hashlib

    blob = pickle.dumps((perimeters, options), protocol=pickle.HIGHEST_PROTOCOL)
    token = hashlib.sha256(blob).hexdigest()

    def submit(unit: Unit):
        sent.append(pool.submit(_run_shared, unit, token, blob, str(tmp), partition_by))
        return sent[-1]

    def close() -> None:
        for future in sent:
            future.cancel()  # a run that stopped early leaves no work behind
        # The units already running end (a worker writes nothing once the staging folder is
        # gone) before that folder is removed: none is left behind by a late write.
        wait([f for f in sent if not f.cancelled()], timeout=30)

    return submit, close


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
                f"ordonnanceur Dask injoignable ({cause(err)})",
                source=scheduler,
                fix="vérifiez --scheduler tcp://hôte:8786",
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
    perimeters: gpd.GeoDataFrame | PerimeterLayer,
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
    processes: bool = True,
) -> RunReport:
    """Classify every parcel of a large input against perimeters, partition by partition.

    Parameters
    ----------
    source : path
        See :func:`geo.scale.partitions.plan`.
    perimeters : GeoDataFrame or PerimeterLayer
        Perimeters (``perimeter_id``, ``type``, ``nom``) in any CRS; reprojected to each
        partition's metric CRS. A :class:`geo.perimeter_layer.PerimeterLayer` read from a file
        (:func:`geo.perimeter_layer.read_perimeter_layer`) spares importing geopandas.
    output : path
        Output folder (a Parquet dataset); refused if it exists, unless ``force``.
    partition_by : str
        ``departement``, ``commune`` or ``rows``: unit of the output and of error reports.
    engine : str
        ``local`` (a process pool) or ``dask`` (``scheduler`` or a LocalCluster).
    workers : int, optional
        Worker processes; default the number of cores.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``), for ``engine="dask"``.
    tolerance_m2, tolerance_pct : float, optional
        Tolerances of :func:`geo.classify.classify_parcels`.
    fix : bool
        Repair invalid parcel geometries with ``make_valid`` instead of failing the partition.
    force : bool
        Replace an existing output folder (only once the new one is complete).
    chunk_rows : int
        Rows per batch read from a large file.
    provenance : dict, optional
        Written in the manifest (``date_run`` added).
    progress : callable, optional
        Called with each :class:`UnitResult` as it arrives.
    processes : bool
        ``local`` engine: worker processes forked from a fork server (default; kept for the
        next run of this process), or threads of this process (:func:`_thread_executor`:
        nothing to start, what ``ort classify`` uses).

    Returns
    -------
    RunReport
        Also written to ``output/_manifest.json``.
    """
    start = time.perf_counter()
    output = check_output_folder(output, force=force)  # --force replaces only a previous run
    if engine not in ("local", "dask"):
        raise InputError(f"--engine {engine!r} inconnu", fix="choisissez local ou dask")
    perimeters = PerimeterLayer.of(perimeters)
    if perimeters.empty:
        raise InputError(
            "aucun périmètre contre lequel classer", fix="vérifiez la date et les versions de la convention"
        )
    projection.check_declared(perimeters.crs, source="perimeters")
    workers = workers or os.cpu_count() or 1
    options = {"tolerance_m2": tolerance_m2, "tolerance_pct": tolerance_pct, "fix": fix}
    report = RunReport(str(output), engine, partition_by, provenance=dict(provenance or {}))
    units = plan(source, partition_by=partition_by, chunk_rows=chunk_rows)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.partiel-", dir=output.parent))
    close: Callable[[], None] = lambda: None  # noqa: E731 - until an executor exists
    try:
        if engine == "dask":  # may fail (scheduler unreachable): the temporary folder goes too
            submit, close = _dask_executor(workers, scheduler, perimeters, options)
        else:
            submit, close = _local_executor(workers, perimeters, options, tmp, partition_by, processes)
        for res in _run_all(units, submit, in_flight=2 * workers):
            _record(res, tmp, report)
            if progress:
                progress(res)
        finish(tmp, output, report, force=force, seconds=time.perf_counter() - start)
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
        return  # (a part a worker wrote goes with its partition's folder at the end)
    if not res.written:
        write_part(res, tmp, report.partition_by)
    part["parcels"] += res.parcels
    part["rows"] += res.rows
    part["parts"] += 1
    if res.invalid is not None and len(res.invalid):
        folder = tmp / INVALID_PARTS
        folder.mkdir(exist_ok=True)
        table = res.invalid.assign(partition=res.key, emplacement=res.location)
        table.to_parquet(folder / f"{res.seq:05d}.parquet", index=False)


# --- in memory, both cores -------------------------------------------------------------------

#: Below this many parcels, :func:`classify_frame` stays in one thread (splitting costs more).
PARALLEL_MIN_PARCELS = 100_000
#: Slices of parcels per thread: the parcels near the perimeters are not spread evenly, and
#: smaller slices, taken in turn by the threads as they finish, keep them busy to the end.
SLICES_PER_WORKER = 4


def classify_frame(
    parcels: gpd.GeoDataFrame,
    perimeters: gpd.GeoDataFrame,
    *,
    workers: int | None = None,
    tolerance_m2: float | None = None,
    tolerance_pct: float | None = None,
    id_column: str = "idu",
    fix: bool = False,
) -> pd.DataFrame:
    """:func:`geo.classify.classify_parcels` (inside and straddling pairs) on several cores.

    The parcels are split in slices classified by threads that share the layer: the work is
    done in GEOS, numpy and :mod:`geo.kernels`, which all release Python's lock, so the threads
    run at once without copying anything. Same result as ``classify_parcels(parcels,
    perimeters, only_intersecting=True, with_distance=False, compiled=True, fix=fix)``,
    invalid parcels near a perimeter set aside or repaired and listed in ``attrs["invalides"]``.

    Parameters
    ----------
    parcels, perimeters : GeoDataFrame
        Same metric CRS (metres).
    workers : int, optional
        Threads; default the number of cores (1: no thread at all).
    fix : bool
        Repair invalid parcels (``make_valid``) rather than set them aside.
    """
    tol_m2, tol_pct = classify.check_layers(
        parcels, perimeters, tolerance_m2=tolerance_m2, tolerance_pct=tolerance_pct, id_column=id_column
    )
    workers = workers or os.cpu_count() or 1
    pgeom, mgeom = parcels.geometry.to_numpy(), perimeters.geometry.to_numpy()
    trackers: list[tuple[int, validity.Tracker]] = []

    def tracker(lo: int, hi: int) -> validity.Tracker:
        mine = pgeom[lo:hi]
        trackers.append((lo, validity.Tracker(lambda idx: validity.valid_geoms(mine[idx]))))
        return trackers[-1][1]

    pair_area = None
    if workers <= 1 or len(pgeom) < PARALLEL_MIN_PARCELS:
        found = classify.overlaps(pgeom, mgeom, compiled=True, valid=tracker(0, len(pgeom)))
    else:
        # The compiled code is loaded once, here; the grids (of the perimeters near each
        # slice) are built once by the slices themselves, each thread its share.
        _warm_compiled()
        wkb = shapely.to_wkb(mgeom)
        local = threading.local()

        def one_slice(bounds: tuple[int, int]) -> tuple[classify.Overlaps, np.ndarray]:
            lo, hi = bounds
            # Each thread its own perimeters, prepared once for its slices: GEOS builds a
            # prepared geometry's indexes lazily, and two threads building them at once crash it.
            mine = getattr(local, "perimeters", None)
            if mine is None:
                mine = local.perimeters = shapely.from_wkb(wkb)
                shapely.prepare(mine)
            geoms = pgeom[lo:hi]
            part = classify.overlaps(geoms, mine, compiled=True, valid=tracker(lo, hi))
            # The area of each pair's parcel, here rather than on one thread after them.
            return part._replace(parcel=part.parcel + lo), shapely.area(geoms[part.parcel])

        cuts = np.linspace(0, len(pgeom), SLICES_PER_WORKER * workers + 1).astype(int)
        with ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(one_slice, zip(cuts[:-1], cuts[1:], strict=True)))
        found = classify.Overlaps(
            *(np.concatenate(arrays) for arrays in zip(*(f for f, _ in parts), strict=True))
        )
        pair_area = np.concatenate([a for _, a in parts])
    invalid = np.concatenate([t.invalid + lo for lo, t in trackers]) if trackers else np.zeros(0, np.intp)
    return classify.classify_with_invalid(
        parcels,
        perimeters,
        found,
        np.sort(invalid),
        fix=fix,
        compiled=True,
        tolerance_m2=tol_m2,
        tolerance_pct=tol_pct,
        with_distance=False,
        only_intersecting=True,
        id_column=id_column,
        pair_area=pair_area,
    )


# --- Dask DataFrames -------------------------------------------------------------------------


def classify_dask(
    parcels,
    perimeters: gpd.GeoDataFrame,
    *,
    tolerance_m2: float | None = None,
    tolerance_pct: float | None = None,
    fix: bool = False,
):
    """Classify a ``dask_geopandas.GeoDataFrame`` of parcels, lazily, partition by partition.

    Invalid parcels near a perimeter are set aside with a warning (or repaired with ``fix``),
    as :func:`geo.classify.classify_parcels` does.

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
    import pandas as pd

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
        _classify_partition, perimeters, tolerance_m2, tolerance_pct, fix, meta=meta, align_dataframes=False
    )


def _classify_partition(
    part: gpd.GeoDataFrame, perimeters, tolerance_m2, tolerance_pct, fix=False
) -> pd.DataFrame:
    out = classify.classify_parcels(
        part,
        perimeters,
        tolerance_m2=tolerance_m2,
        tolerance_pct=tolerance_pct,
        with_distance=False,
        only_intersecting=True,
        compiled=True,
        fix=fix,
    )
    out.attrs = {}
    return out
