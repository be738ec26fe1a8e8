"""Cutting a large parcel input into units of work, and reading the parcels of one unit.

:func:`plan` finds the parcel files of an input and cuts it, lazily, into :class:`Unit` of
bounded size, each within one partition (département, commune, or fixed-size batches):

- Etalab files (``cadastre-XXXXX-parcelles.json.gz``, one per commune, or one sub-folder per
  département): units are groups of at most :data:`FILES_PER_UNIT` communes of one
  partition, read by the workers through :func:`geo.sources.cadastre.read_parcels`;
- a GeoParquet file, a GeoPackage (or any file GDAL reads) or a folder of them: the file is
  streamed in batches of ``chunk_rows`` rows (Arrow) — whole Parquet row groups, read by the
  workers themselves (memory-mapped), when they are small enough — and each batch is split by
  partition; consecutive row groups of one partition make units that keep every row, so a
  file sorted by commune is read once.

:func:`read_unit` (run in a worker) returns a unit's parcels with checked 14-character IDUs
and valid geometries, in the metric CRS of their communes, or raises an error naming the
unit's location (file, partition, rows). :mod:`geo.scale.run` runs the units and writes results.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from geo import projection, validity
from geo.errors import InputError, OrtWarning, cause, geometry_problem

if TYPE_CHECKING:  # (imported where a unit needs them: not for GeoParquet batches)
    import geopandas as gpd
    import pandas as pd

#: How an input can be partitioned.
PARTITION_BY = ("departement", "commune", "rows")
#: Rows per batch read from a large file, and parcels per unit of work at most.
CHUNK_ROWS = 200_000
#: Etalab commune files per unit of work (a commune has a few thousand parcels).
FILES_PER_UNIT = 48

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
    #: Every row of the row groups is in this partition (the plan saw it): nothing to filter.
    whole: bool = False

    @property
    def location(self) -> str:
        """Where the unit comes from, for messages."""
        if self.paths:
            names = ", ".join(Path(p).name for p in self.paths[:3])
            more = f" et {len(self.paths) - 3} autre(s)" if len(self.paths) > 3 else ""
            return f"partition {self.key} ({names}{more})"
        last = self.first_row + self.batch_rows - 1
        return f"partition {self.key} ({Path(self.source).name}, lot des lignes {self.first_row}–{last})"


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
        f"pas de colonne de commune ni d'identifiant de parcelle (colonnes : {', '.join(names)})",
        fix="donnez des parcelles avec une colonne 'idu' (14 caractères) ou 'code_insee'",
    )


def _keys(table: pa.Table, partition_by: str) -> pa.Array:
    """Partition key of each row: département (``62``, ``2A``, ``974``) or commune (Arrow, fast)."""
    import pyarrow.compute as pc

    (column,) = _key_columns(table.column_names)
    values = table[column]
    if column.lower() not in _COMMUNE_COLUMNS:
        return _keys_of(values, commune=False, partition_by=partition_by)
    # A few communes per batch: the key of each distinct code, then one take.
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    coded = pc.dictionary_encode(values)
    keys = _keys_of(coded.dictionary, commune=True, partition_by=partition_by)
    unknown = "?????" if partition_by == "commune" else "??"  # as _keys_of names a missing code
    return pc.fill_null(pc.take(keys, coded.indices), unknown)


def _keys_of(values: pa.Array, *, commune: bool, partition_by: str) -> pa.Array:
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(pc.cast(values, pa.string()))
    if commune:
        codes = pc.utf8_upper(pc.utf8_lpad(text, 5, padding="0"))
    else:
        codes = pc.utf8_upper(pc.utf8_slice_codeunits(text, 0, 5))
    codes = pc.fill_null(codes, "?????")
    if partition_by == "commune":
        return codes
    overseas = pc.starts_with(codes, "97")
    return pc.if_else(overseas, pc.utf8_slice_codeunits(codes, 0, 3), pc.utf8_slice_codeunits(codes, 0, 2))


#: Codes whose partition key is plain string work (no whitespace, no case beyond ASCII).
_PLAIN_CODE = re.compile(r"[0-9A-Za-z]{1,16}")
#: Distinct codes per row group above which :func:`_plain_keys` leaves the work to Arrow.
_PLAIN_MAX = 4096


def _plain_keys(column: pa.ChunkedArray, partition_by: str) -> tuple[str, ...] | None:
    """The distinct partition keys of a commune column read as a dictionary, computed in Python
    when every code used is plain ASCII letters and digits — where :func:`_keys_of`'s trimming,
    padding and upper-casing are those of Python's strings; None otherwise (nulls, other text,
    too many codes), for :func:`_keys` to do it."""
    keys: set[str] = set()
    for chunk in column.chunks:
        if not pa.types.is_dictionary(chunk.type) or chunk.null_count or len(chunk.dictionary) > _PLAIN_MAX:
            return None
        if not len(chunk):
            continue
        indices = chunk.indices
        if indices.type != pa.int32():
            return None
        at = np.frombuffer(indices.buffers()[1], dtype=np.int32)[
            indices.offset : indices.offset + len(indices)
        ]
        used = np.flatnonzero(np.bincount(at, minlength=len(chunk.dictionary)))
        codes = chunk.dictionary.to_pylist()
        for i in used.tolist():
            code = codes[i]
            if code is None or not _PLAIN_CODE.fullmatch(code):
                return None
            code = code.rjust(5, "0").upper()
            if partition_by == "departement":
                code = code[:3] if code.startswith("97") else code[:2]
            keys.add(code)
    return tuple(sorted(keys))


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

    Yields
    ------
    Unit
        Numbered in order (``seq``); Etalab files first, then the other files batch by batch.

    Raises
    ------
    geo.errors.InputError
        Unknown ``partition_by``, input not found, no parcel file in it, unreadable file.
    """
    if partition_by not in PARTITION_BY:
        raise InputError(
            f"--partition-by {partition_by!r} inconnu", fix=f"choisissez parmi {', '.join(PARTITION_BY)}"
        )
    source = Path(source)
    if not source.exists():
        raise InputError(
            "entrée introuvable",
            source=str(source),
            fix="donnez un fichier ou un dossier de fichiers du cadastre",
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
            "aucun fichier de parcelles trouvé",
            source=str(source),
            fix="donnez des fichiers cadastre-XXXXX-parcelles.json.gz, un GeoParquet ou un GeoPackage",
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
        raise InputError(f"fichier Parquet illisible ({cause(err)})", source=str(path)) from None
    meta = json.loads((pf.schema_arrow.metadata or {}).get(b"geo", b"{}"))
    column = meta.get("primary_column", "geometry")
    if column not in pf.schema_arrow.names:
        raise InputError(
            "ce n'est pas un GeoParquet (pas de colonne de géométrie)",
            source=str(path),
            fix="écrivez-le avec GeoDataFrame.to_parquet",
        )
    info = meta.get("columns", {}).get(column, {})
    # GeoParquet: a column without "crs" is OGC:CRS84; "crs": null means unknown.
    crs = info.get("crs", "OGC:CRS84") if info else None
    crs = projection.crs_of_projjson(crs) if isinstance(crs, dict) else crs
    return pf, column, crs


def _parquet_units(path: Path, *, partition_by: str, chunk_rows: int, seq: int) -> Iterator[Unit] | None:
    """Units of whole row groups, read by the workers themselves; None if row groups are too big.

    Row groups of one partition are grouped (up to ``chunk_rows`` rows) into units that keep
    every row; row groups holding several partitions are grouped apart, and each of their
    partitions is a unit that reads them and keeps its rows. A file sorted by commune is thus
    read once, only the row group at a change of partition twice.
    """
    pf, column, crs = _geoparquet(path)
    sizes = [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)]
    if sizes and max(sizes) > 2 * chunk_rows:
        return None
    key_columns = None if partition_by == "rows" else _key_columns(pf.schema_arrow.names)
    starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
    # A commune column of text is read as a dictionary (a few codes per row group): the keys of
    # its codes are found without Arrow's compute functions, whose import (30 ms) would else
    # hold back the first unit; the workers read meanwhile.
    coded = None
    if key_columns and key_columns[0].lower() in _COMMUNE_COLUMNS:
        field = pf.schema_arrow.field(key_columns[0])
        if field.type in (pa.string(), pa.large_string()):
            coded = pq.ParquetFile(path, read_dictionary=key_columns, metadata=pf.metadata)

    def keys_of(group: int) -> tuple[str, ...]:
        if key_columns is None:
            return ()
        if coded is not None:
            keys = _plain_keys(
                coded.read_row_group(group, columns=key_columns, use_threads=False)[0], partition_by
            )
            if keys is not None:
                return keys
        import pyarrow.compute as pc

        table = pf.read_row_group(group, columns=key_columns, use_threads=False)
        return tuple(sorted(pc.unique(_keys(table, partition_by)).to_pylist()))

    def chunks() -> Iterator[tuple[list[int], tuple[str, ...]]]:
        """Consecutive row groups: all of one same partition, or all mixed (keys: their union)."""
        current: list[int] = []
        keys: set[str] = set()
        single = None  # the key of a chunk of one partition; None for a mixed chunk
        for i, size in enumerate(sizes):
            if current and starts[i] - starts[current[0]] + size > chunk_rows:
                yield current, tuple(sorted(keys))  # full: sent before the next keys are read
                current, keys = [], set()
            mine = keys_of(i)
            one = mine[0] if len(mine) == 1 else None
            if current and one != single:
                yield current, tuple(sorted(keys))
                current, keys = [], set()
            if not current:
                single = one
            current.append(i)
            keys.update(mine)
        if current:
            yield current, tuple(sorted(keys))

    def units() -> Iterator[Unit]:
        nonlocal seq
        for groups, keys in chunks():
            first, n = int(starts[groups[0]]), int(starts[groups[-1] + 1] - starts[groups[0]])
            for key in keys or (f"part-{seq:05d}",):
                yield Unit(
                    key,
                    seq,
                    str(path),
                    (),
                    None,
                    first,
                    n,
                    crs,
                    tuple(groups),
                    partition_by,
                    column,
                    len(keys) <= 1,
                )
                seq += 1

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
        raise InputError(f"fichier illisible ({cause(err)})", source=str(path)) from None
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
                part = table.filter(pc.equal(keys, pa.scalar(key, keys.type)))
                yield Unit(str(key), seq, source, (), part, first, n, crs, (), partition_by)
                seq += 1
        first += n


def _table_of(unit: Unit) -> pa.Table:
    """The rows of a unit: carried with it, or read from its Parquet row groups."""
    if unit.table is not None:
        return unit.table
    # Mapped, read as decoded: the pages are not copied into buffers first.
    pf = pq.ParquetFile(unit.source, pre_buffer=False, memory_map=True)
    # Only what the ids, the partition keys and the geometry are made of: a wide file reads fast.
    wanted = {*_COMMUNE_COLUMNS, *_ID_COLUMNS, "prefixe", "section", "numero"}
    names = pf.schema_arrow.names
    lower = {c.lower() for c in names}
    if unit.whole and lower & set(_ID_COLUMNS) and not {"section", "numero"} <= lower:
        # Nothing to filter, and no id to build from the commune: the ids and the geometry.
        wanted -= set(_COMMUNE_COLUMNS)
    columns = [c for c in names if c.lower() in wanted or c == unit.column]
    table = pf.read_row_groups(list(unit.row_groups), columns=columns, use_threads=False)  # one core each
    table = table.rename_columns(["geometry" if c == unit.column else c for c in table.column_names])
    if unit.partition_by != "rows" and not unit.whole:
        import pyarrow.compute as pc  # (after the read: a fresh process's first units read meanwhile)

        keys = _keys(table, unit.partition_by)
        # (a typed scalar: inferring a Python value's type makes pyarrow import pandas)
        mine = pc.equal(keys, pa.scalar(unit.key, keys.type))
        if not pc.all(mine).as_py():  # a batch of one partition is kept as it is (no copy)
            table = table.filter(mine)
    return table


# --- reading one unit (in a worker) ---------------------------------------------------------


def read_unit(
    unit: Unit, *, fix: bool = False, invalid: bool = False
) -> tuple[gpd.GeoDataFrame, list[str]] | tuple[gpd.GeoDataFrame, list[str], pd.DataFrame]:
    """The parcels of a unit, normalised, checked and in the metric CRS of their communes.

    Parameters
    ----------
    unit : Unit
        From :func:`plan`.
    fix : bool
        Repair invalid geometries with ``make_valid`` (and warn) instead of failing.
    invalid : bool
        Keep invalid parcels in the layer, for the engine to set aside or repair and list
        (:mod:`geo.validity`); parcels without a readable geometry are then returned apart.

    Returns
    -------
    (GeoDataFrame, list of str[, DataFrame])
        Parcels (columns of :data:`geo.sources.cadastre.PARCEL_COLUMNS`), warnings to report,
        and with ``invalid`` the parcels set aside for want of a geometry
        (:data:`geo.validity.INVALID_COLUMNS`).

    Raises
    ------
    geo.errors.InputError
        Broken geometries (unless ``fix`` or ``invalid``), bad ids, missing CRS, points or
        lines given as parcels — naming the unit's location.
    """
    import pandas as pd

    caught: list[str] = []
    unreadable = pd.DataFrame(columns=validity.INVALID_COLUMNS)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        if unit.paths:
            gdf, unreadable = _etalab(unit, fix=fix, keep_invalid=invalid)
        else:
            gdf, unreadable = _from_table(unit, fix=fix, keep_invalid=invalid)
    caught += [str(w.message) for w in seen]
    if invalid:
        return gdf, caught, unreadable
    return gdf, caught


def _etalab(unit: Unit, *, fix: bool, keep_invalid: bool) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """The parcels of a unit's Etalab files; with ``keep_invalid``, a file holding invalid
    parcels is read again, repaired, and its invalid parcels listed (set aside unless ``fix``)."""
    import geopandas as gpd
    import pandas as pd

    from geo.sources import cadastre

    none = pd.DataFrame(columns=validity.INVALID_COLUMNS)
    if not keep_invalid:
        gdf = cadastre.read_parcels(list(unit.paths), fix=fix)
        check_unique(gdf["idu"].to_numpy(dtype=object), source=unit.location)
        return gdf, none
    layers, listed = [], []
    for path in unit.paths:
        try:
            layers.append(cadastre.read_parcels(path))
            continue
        except InputError as err:
            if "invalide" not in err.message and "surface nulle" not in err.message:
                raise
        # Read again with the reader's repairs (invalid: make_valid; flat: left out), and list
        # what it repaired or left out, from the geometries as written.
        layer = cadastre.read_parcels(path, fix=True)
        raw = _raw_geometries(Path(path), layer.crs)
        geoms = raw.geometry.to_numpy()
        valid = validity.valid_geoms(geoms)
        area, length = shapely.area(geoms), shapely.length(geoms)
        flat = valid & ((area < 0.01) | (4 * np.pi * area < 1e-4 * length**2))
        bad = raw[~valid]
        listed.append(validity.invalid_table(bad["idu"].to_numpy(), bad.geometry.to_numpy(), repaired=fix))
        if flat.any():
            listed.append(
                pd.DataFrame(
                    {
                        "idu": raw["idu"].to_numpy()[flat],
                        "raison": "surface nulle (contour aplati)",
                        "traitement": validity.SET_ASIDE,
                    },
                    columns=validity.INVALID_COLUMNS,
                )
            )
        if not fix:
            layer = layer[~layer["idu"].isin(set(bad["idu"]))]
        layers.append(layer)
    gdf = (
        layers[0]
        if len(layers) == 1
        else gpd.GeoDataFrame(pd.concat(layers, ignore_index=True), crs=layers[0].crs)
    )
    check_unique(gdf["idu"].to_numpy(dtype=object), source=unit.location)
    listed = [t for t in listed if len(t)]
    return gdf, pd.concat(listed, ignore_index=True) if listed else none


def _raw_geometries(path: Path, crs) -> gpd.GeoDataFrame:
    """A parcel file's ids and geometries as written (not repaired), in ``crs``."""
    import pyogrio

    gdal_path = f"/vsigzip/{path}" if path.name.lower().endswith(".gz") else str(path)
    raw = pyogrio.read_dataframe(gdal_path, columns=["id"])
    raw = raw.rename(columns={"id": "idu"})
    return raw.to_crs(crs) if raw.crs is not None else raw.set_crs(crs)


def check_unique(ids, *, source: str) -> None:
    """Refuse a batch where one IDU names two parcels: their verdicts would contradict."""
    import pyarrow.compute as pc

    ids = pa.array(ids) if not isinstance(ids, (pa.Array, pa.ChunkedArray)) else ids
    ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    width = {pa.string(): np.int32, pa.large_string(): np.int64}.get(ids.type)
    offsets = None
    if width is not None and not ids.null_count and len(ids):
        offsets = np.frombuffer(ids.buffers()[1], dtype=width)[ids.offset : ids.offset + len(ids) + 1]
    if offsets is not None and offsets[-1] - offsets[0] == 14 * len(ids) and (np.diff(offsets) == 14).all():
        # IDUs of 14 bytes, viewed in place as fixed-width strings: no hashing of strings.
        fixed = np.frombuffer(ids.buffers()[2], dtype="S14", count=len(ids), offset=int(offsets[0]))
        if not (fixed[1:] > fixed[:-1]).all():  # not sorted (Etalab files are): sorted here
            fixed = np.sort(fixed)
        if not (fixed[1:] == fixed[:-1]).any():
            return
    elif pc.count_distinct(ids).as_py() == len(ids):
        return
    counts = pc.value_counts(ids)
    twice = counts.filter(pc.greater(counts.field("counts"), 1))
    first = twice.field("values")[0].as_py()
    raise InputError(
        f"{len(twice)} identifiant(s) de parcelle en double (ex. idu={first} "
        f"× {twice.field('counts')[0].as_py()}) : leurs verdicts se contrediraient",
        source=source,
        feature=f"idu={first}",
        fix="gardez une ligne par parcelle (dédoublonnez le fichier sur l'idu)",
    )


def check_kinds(geoms: np.ndarray | None, ids, *, source: str) -> None:
    """Refuse points or lines given as parcels (only polygons have an area to share out)."""
    if geoms is None or len(geoms) == 0:
        return
    kind = shapely.get_type_id(np.asarray(geoms, dtype=object))
    wrong = np.flatnonzero(~np.isin(kind, (3, 6)) & (kind >= 0))
    if len(wrong):
        first = wrong[0]
        name = geoms[first].geom_type
        ident = ids[first] if not hasattr(ids[first], "as_py") else ids[first].as_py()
        raise InputError(
            f"{len(wrong)} objet(s) de type {name} là où des parcelles (polygones) sont attendues",
            source=source,
            feature=f"idu={ident}",
            fix="donnez la couche des parcelles (Polygon/MultiPolygon), pas des points ou des lignes",
        )


_IDU = r"^[0-9][0-9AB][0-9]{3}[0-9A-Z]{3}[0-9A-Z]{2}[0-9]{4}$"


#: What each byte is (1: digit, 2: A or B, 4: capital letter), and what each of the 14 places of
#: an IDU allows (what :data:`_IDU` says): digits, then a digit, A or B (Corsica's 2A/2B), three
#: digits, five digits or capitals (prefixe and section), four digits.
_CLASS = np.zeros(256, dtype=np.uint8)
_CLASS[ord("0") : ord("9") + 1] = 1
_CLASS[[ord("A"), ord("B")]] |= 2
_CLASS[ord("A") : ord("Z") + 1] |= 4
_IDU_PLACES = np.array([1, 3, 1, 1, 1, 5, 5, 5, 5, 5, 1, 1, 1, 1], dtype=np.uint8)


def _canonical(ids: pa.Array) -> bool:
    """True when every row is already a canonical IDU (checked on the bytes, without regex)."""
    if ids.type not in (pa.string(), pa.large_string()) or ids.null_count or len(ids) == 0:
        return False
    width = np.int64 if ids.type == pa.large_string() else np.int32
    offsets = np.frombuffer(ids.buffers()[1], dtype=width)[ids.offset : ids.offset + len(ids) + 1]
    if not (np.diff(offsets) == 14).all():
        return False
    chars = np.frombuffer(ids.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]].reshape(-1, 14)
    # One lookup for all the bytes (a place at a time was three times slower; indexing is
    # faster than np.take, whose first call in a process is slow).
    return bool(np.all(_CLASS[chars] & _IDU_PLACES))


def _ids(table: pa.Table, source: str) -> pa.Array:
    """14-character IDUs of a batch, as Etalab writes them or built from its columns (Arrow, fast)."""
    import pyarrow.compute as pc

    names = {c.lower(): c for c in table.column_names}
    id_col = next((n for n in _ID_COLUMNS if n in names), None)
    if id_col is not None:
        raw = table[names[id_col]]
        raw = raw.combine_chunks() if isinstance(raw, pa.ChunkedArray) else raw
        if _canonical(raw):  # the usual case: nothing to normalise
            return raw

    def text(name: str, width: int) -> pa.Array:
        col = pc.utf8_upper(pc.utf8_trim_whitespace(pc.cast(table[names[name]], pa.string())))
        return pc.utf8_lpad(col, width, padding="0")

    built = None
    commune = next((n for n in _COMMUNE_COLUMNS if n in names), None)
    if commune and "section" in names and "numero" in names:
        prefixe = text("prefixe", 3) if "prefixe" in names else pa.repeat("000", table.num_rows)
        built = pc.binary_join_element_wise(
            text(commune, 5), prefixe, text("section", 2), text("numero", 4), ""
        )
    if id_col is None and built is None:
        raise InputError(
            f"pas de colonne d'identifiant de parcelle (colonnes : {', '.join(table.column_names)})",
            source=source,
            fix="donnez une colonne 'idu' (14 caractères) ou commune, section et numero",
        )
    ids = (
        pc.utf8_upper(pc.utf8_trim_whitespace(pc.cast(table[names[id_col]], pa.string())))
        if id_col
        else built
    )
    if built is not None and id_col:
        lengths = pc.utf8_length(ids)
        ids = pc.if_else(pc.equal(lengths, pa.scalar(14, lengths.type)), ids, built)
    ok = pc.fill_null(pc.match_substring_regex(ids, _IDU), False)
    if not pc.all(ok).as_py():
        bad = ids[int(np.flatnonzero(~ok.to_numpy(zero_copy_only=False))[0])].as_py()
        raise InputError(
            f"{table.num_rows - pc.sum(ok).as_py()} parcelle(s) dont l'identifiant n'est pas un IDU "
            "de 14 caractères",
            source=source,
            feature=f"id={bad!r}",
            fix="vérifiez les colonnes idu (ou commune/section/numero) du fichier",
        )
    return ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids


def _from_table(
    unit: Unit, *, fix: bool, keep_invalid: bool = False
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Parcels of an Arrow batch: ids checked, geometries checked, in the metric CRS.

    With ``keep_invalid``, invalid parcels stay in the layer (the engine sets them aside or
    repairs them, and lists them) and those without a readable geometry are returned apart.
    """
    table = _table_of(unit)
    last = unit.first_row + unit.batch_rows - 1
    source = f"{Path(unit.source).name} (partition {unit.key}, lot des lignes {unit.first_row}–{last})"
    if unit.crs is None:
        raise projection.CRSError(
            "le fichier ne déclare pas de CRS", source=source, fix="réexportez-le avec son CRS"
        )
    import geopandas as gpd
    import pandas as pd
    import pyarrow.compute as pc

    id_array = _ids(table, source)
    check_unique(id_array, source=source)
    ids = id_array.to_numpy(zero_copy_only=False)
    code_arrow = pc.utf8_slice_codeunits(id_array, 0, 5)
    codes_array = code_arrow.to_numpy(zero_copy_only=False)
    raw = table["geometry"].to_numpy(zero_copy_only=False)
    unreadable = pd.DataFrame(columns=validity.INVALID_COLUMNS)
    try:
        geoms = shapely.from_wkb(raw, on_invalid="raise")
    except shapely.errors.GEOSException as err:
        if not keep_invalid:
            raise InputError(
                f"géométrie illisible ({cause(err)})",
                source=source,
                fix="réexportez le fichier (ogr2ogr, QGIS)",
            ) from None
        geoms = shapely.from_wkb(raw, on_invalid="ignore")
        broken = shapely.is_missing(geoms) & np.array([w is not None for w in raw], dtype=bool)
        unreadable = pd.DataFrame(
            {"idu": ids[broken], "raison": "géométrie illisible (WKB)", "traitement": validity.SET_ASIDE},
            columns=validity.INVALID_COLUMNS,
        )
    check_kinds(geoms, ids, source=source)
    parcels = gpd.GeoDataFrame({"idu": ids, "code_insee": codes_array}, geometry=geoms, crs=unit.crs)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        if keep_invalid:
            lost = missing & ~np.isin(ids, unreadable["idu"].to_numpy())
            unreadable = pd.concat(
                [
                    t
                    for t in (
                        unreadable,
                        pd.DataFrame(
                            {"idu": ids[lost], "raison": "sans géométrie", "traitement": validity.SET_ASIDE},
                            columns=validity.INVALID_COLUMNS,
                        ),
                    )
                    if len(t)
                ],
                ignore_index=True,
            )
        else:
            warnings.warn(
                f"{source} : {int(missing.sum())} parcelle(s) sans géométrie écartée(s) "
                f"(première : idu={ids[missing][0]})",
                OrtWarning,
                stacklevel=2,
            )
        parcels = parcels[~missing]
    codes = sorted(pc.unique(code_arrow).to_pylist())
    parcels = projection.to_metric(
        parcels, projection.metric_crs_for(codes), source=source, code_insee=codes[0] if codes else None
    )
    if keep_invalid:
        return parcels, unreadable
    geoms = parcels.geometry.to_numpy()
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        first = parcels["idu"].to_numpy()[invalid][0]
        if not fix:
            raise InputError(
                f"{int(invalid.sum())} géométrie(s) invalide(s) "
                f"({geometry_problem(shapely.is_valid_reason(geoms[invalid][0]))})",
                source=source,
                feature=f"idu={first}",
                fix="réparez-les à la source, ou relancez avec --fix (make_valid)",
            )
        parcels = parcels.copy()
        parcels.loc[invalid, "geometry"] = shapely.make_valid(geoms[invalid])
        warnings.warn(
            f"{source} : {int(invalid.sum())} géométrie(s) réparée(s) (première : idu={first})",
            OrtWarning,
            stacklevel=2,
        )
    return parcels, unreadable
