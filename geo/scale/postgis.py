"""PostGIS as a backend: parcels and perimeters read from tables, verdicts written back.

For GIS departments that keep the cadastre in PostgreSQL/PostGIS: ``ort classify
cadastre.parcelles --db postgresql://… --perimeters-table ort.perimetres -o ort.verdicts``
streams the parcels out of the database in chunks (a server-side cursor, so memory stays
bounded), classifies them with the project's engine (:mod:`geo.classify`) and writes the
verdicts into a new table. The table appears at once, complete, or not at all: rows go to a
staging table that is renamed in the final transaction.

:func:`sql_classify` is the same check written in plain PostGIS SQL (GiST index,
``ST_Subdivide`` pieces, ``ST_Intersects`` + ``ST_Area(ST_Intersection)`` computed once per pair,
a ``ST_ContainsProperly`` shortcut):
the benchmark's baseline, and a cross-check of the engine in the tests.

SQL is composed with :mod:`psycopg.sql` (identifiers quoted, values bound), never with
f-strings.
"""

from __future__ import annotations

import contextlib
import io
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from geo import classify, projection, settings
from geo.errors import (
    InputError,
    OrtError,
    OrtWarning,
    OutputExistsError,
    OutputNotOursError,
    geometry_problem,
)

#: Columns of a verdict table (those of :data:`geo.classify.RESULT_COLUMNS`).
VERDICT_TYPES = {
    "idu": "text",
    "perimeter_id": "text",
    "perimeter_type": "text",
    "perimeter_nom": "text",
    "status": "text",
    "share": "double precision",
    "area_inside_m2": "double precision",
    "parcel_area_m2": "double precision",
    "distance_m": "double precision",
}
_STAGING_SUFFIX = "__ort_partiel"


def _sql():
    try:
        import psycopg
        from psycopg import sql
    except ImportError:  # pragma: no cover - optional dependency
        raise OrtError("le moteur PostGIS a besoin de psycopg 3 — pip install 'psycopg[binary]'") from None
    return psycopg, sql


def connect(dsn: str):
    """Open a psycopg connection, turning failures into one clear line."""
    psycopg, _ = _sql()
    try:
        return psycopg.connect(dsn, connect_timeout=10)
    except psycopg.OperationalError as err:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(
            f"connexion à la base impossible ({detail})",
            source=_redact(dsn),
            fix="vérifiez --db postgresql://utilisateur@hôte:port/base et que le serveur tourne",
        ) from None


def _redact(dsn: str) -> str:
    """The DSN without its password, for messages."""
    if "://" in dsn and "@" in dsn:
        scheme, rest = dsn.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}@{host}"
    return dsn


def _ident(name: str):
    """``schema.table`` or ``table`` as a quoted SQL identifier."""
    _, sql = _sql()
    parts = name.split(".")
    if not 1 <= len(parts) <= 2 or not all(parts):
        raise InputError(
            f"nom de table {name!r} : ni 'table' ni 'schema.table'", fix="ex. cadastre.parcelles"
        )
    return sql.Identifier(*parts)


def _staging_name(table: str) -> str:
    parts = table.split(".")
    parts[-1] = f"{parts[-1]}{_STAGING_SUFFIX}"
    return ".".join(parts)


def table_exists(conn, table: str) -> bool:
    """Whether ``table`` (``schema.table`` or ``table``) exists."""
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (_qualified_text(table),)).fetchone()
    return bool(row[0])


#: Comment ort puts on every table it creates: how ``force`` knows a table is its own.
_MARK = "produit par ort"


def is_ours(conn, table: str) -> bool:
    """Whether ``table`` was created by ort (its comment starts with :data:`_MARK`)."""
    row = conn.execute(
        "SELECT obj_description(to_regclass(%s), 'pg_class')", (_qualified_text(table),)
    ).fetchone()
    return bool(row and row[0] and str(row[0]).startswith(_MARK))


def _refuse_foreign(conn, table: str) -> None:
    """With ``force``: an existing table is replaced only when ort created it."""
    if table_exists(conn, table) and not is_ours(conn, table):
        raise OutputNotOursError(
            f"la table {table} existe et n'a pas été créée par ort (pas de commentaire « {_MARK} ») : "
            "--force ne remplace que les tables qu'ort a lui-même écrites",
            fix="choisissez une autre table de sortie (-o schema.table), ou supprimez-la vous-même",
        )


def _mark(conn, table: str) -> None:
    _, sql = _sql()
    conn.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(_ident(table), sql.Literal(_MARK)))


def _qualified_text(table: str) -> str:
    return ".".join(f'"{p}"' for p in table.split("."))


def geometry_column(conn, table: str) -> tuple[str, int]:
    """The geometry column of ``table`` and its SRID (from PostGIS's ``geometry_columns``)."""
    parts = table.split(".")
    schema, name = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])
    rows = conn.execute(
        "SELECT f_geometry_column, srid FROM geometry_columns "
        "WHERE f_table_name = %s AND (%s::text IS NULL OR f_table_schema = %s) "
        "ORDER BY f_geometry_column",
        (name, schema, schema),
    ).fetchall()
    if not rows:
        raise InputError(
            "pas de colonne de géométrie (est-ce une table PostGIS ?)",
            source=table,
            fix="donnez une table avec une colonne de géométrie (créée par ogr2ogr ou write_layer)",
        )
    column, srid = rows[0]
    if not srid:
        srid = conn.execute(
            _sql()[1]
            .SQL("SELECT ST_SRID({}) FROM {} LIMIT 1")
            .format(_sql()[1].Identifier(column), _ident(table))
        ).fetchone()
        srid = srid[0] if srid else 0
    if not srid:
        raise projection.CRSError(
            "la colonne de géométrie n'a pas de SRID",
            source=table,
            fix="déclarez-le : SELECT UpdateGeometrySRID('schema', 'table', 'geom', 2154)",
        )
    return column, int(srid)


def _columns(conn, table: str) -> list[str]:
    _, sql = _sql()
    cur = conn.execute(sql.SQL("SELECT * FROM {} LIMIT 0").format(_ident(table)))
    return [d.name for d in cur.description]


def _pick(columns: list[str], *names: str) -> str | None:
    lower = {c.lower(): c for c in columns}
    return next((lower[n] for n in names if n in lower), None)


# --- reading ---------------------------------------------------------------------------------


def read_parcels(
    conn,
    table: str,
    *,
    chunk_rows: int = 200_000,
    metric_crs: str | None = None,
) -> Iterator[gpd.GeoDataFrame]:
    """Stream the parcels of a table, ``chunk_rows`` at a time, in a metric CRS.

    Parameters
    ----------
    conn : psycopg.Connection
        An open connection (see :func:`connect`).
    table : str
        ``schema.table`` with an id column (``idu``, ``id`` or ``id_par``) and a geometry
        column (any SRID declared in ``geometry_columns``).
    chunk_rows : int
        Rows per chunk (a server-side cursor keeps the rest in the database).
    metric_crs : str, optional
        Target CRS (metres); default the table's own if metric, else the one of its communes.

    Yields
    ------
    GeoDataFrame
        Columns ``idu`` (and ``code_insee`` when the table has it) and ``geometry``.
    """
    _, sql = _sql()
    geom, srid = geometry_column(conn, table)
    cols = _columns(conn, table)
    id_col = _pick(cols, "idu", "id", "id_par", "idpar")
    if id_col is None:
        raise InputError(
            f"pas de colonne d'identifiant de parcelle (colonnes : {', '.join(cols)})",
            source=table,
            fix="nommez la colonne d'identifiant 'idu'",
        )
    crs = CRS.from_epsg(srid)
    query = sql.SQL("SELECT {}::text, ST_AsBinary({}) FROM {} ORDER BY 1").format(
        sql.Identifier(id_col), sql.Identifier(geom), _ident(table)
    )
    with conn.transaction(), conn.cursor(name="ort_parcels", binary=True) as cur:
        cur.itersize = chunk_rows
        cur.execute(query)
        while True:
            rows = cur.fetchmany(chunk_rows)
            if not rows:
                break
            ids = np.array([r[0] for r in rows], dtype=object)
            geoms = shapely.from_wkb([bytes(r[1]) if r[1] is not None else None for r in rows])
            gdf = gpd.GeoDataFrame({"idu": ids}, geometry=geoms, crs=crs)
            gdf["code_insee"] = gdf["idu"].str[:5]
            gdf = gdf[["idu", "code_insee", "geometry"]]
            target = metric_crs or (crs.to_string() if projection._is_metric(crs) else None)
            target = target or projection.metric_crs_for(sorted(set(gdf["code_insee"])))
            yield gdf if crs.equals(CRS.from_user_input(target)) else gdf.to_crs(target)


def read_perimeters(conn, table: str, *, metric_crs: str) -> gpd.GeoDataFrame:
    """Read a perimeter table (``perimeter_id`` or ``id``, optional ``type``, ``nom``) in ``metric_crs``."""
    _, sql = _sql()
    geom, srid = geometry_column(conn, table)
    cols = _columns(conn, table)
    pid = _pick(cols, "perimeter_id", "id")
    if pid is None:
        raise InputError(
            f"pas de colonne d'identifiant de périmètre (colonnes : {', '.join(cols)})",
            source=table,
            fix="nommez-la 'perimeter_id'",
        )
    extra = [c for c in (_pick(cols, "type"), _pick(cols, "nom")) if c]
    fields = [sql.SQL("{}::text").format(sql.Identifier(c)) for c in [pid, *extra]]
    query = sql.SQL("SELECT {}, ST_AsBinary({}) FROM {} ORDER BY 1").format(
        sql.SQL(", ").join(fields), sql.Identifier(geom), _ident(table)
    )
    rows = conn.execute(query, binary=True).fetchall()
    if not rows:
        raise InputError("la table des périmètres est vide", source=table)
    names = ["perimeter_id", *[c.lower() for c in extra]]
    data = {name: [r[i] for r in rows] for i, name in enumerate(names)}
    geoms = shapely.from_wkb([bytes(r[-1]) for r in rows])
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        first = data["perimeter_id"][int(np.flatnonzero(bad)[0])]
        raise InputError(
            f"{int(bad.sum())} géométrie(s) de périmètre invalide(s) "
            f"({geometry_problem(shapely.is_valid_reason(geoms[bad][0]))})",
            source=table,
            feature=f"perimeter_id={first}",
            fix="réparez-les : UPDATE … SET geom = ST_MakeValid(geom)",
        )
    gdf = gpd.GeoDataFrame(data, geometry=geoms, crs=CRS.from_epsg(srid))
    return projection.to_metric(gdf, metric_crs, source=table)


# --- writing ---------------------------------------------------------------------------------


def write_layer(conn, gdf: gpd.GeoDataFrame, table: str, *, force: bool = False, index: bool = True) -> str:
    """Write a GeoDataFrame to a new PostGIS table (COPY; GiST index; ANALYZE).

    Parameters
    ----------
    gdf : GeoDataFrame
        Any CRS with an EPSG code; text, integer, float and boolean columns.
    table : str
        ``schema.table``; an existing table is refused unless ``force``.
    """
    _, sql = _sql()
    srid = CRS.from_user_input(gdf.crs).to_epsg() if gdf.crs is not None else None
    if not srid:
        raise projection.CRSError(
            "la couche n'a pas de code EPSG", source=table, fix="faites d'abord to_crs('EPSG:2154')"
        )
    attrs = [c for c in gdf.columns if c != gdf.geometry.name]
    types = {c: _pg_type(gdf[c]) for c in attrs}
    defs = [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in types.items()]
    defs.append(sql.SQL("geom geometry(Geometry, {})").format(sql.Literal(srid)))
    geoms = shapely.set_srid(gdf.geometry.to_numpy().copy(), srid)
    frame = pd.DataFrame({c: gdf[c].to_numpy() for c in attrs})
    frame["geom"] = shapely.to_wkb(geoms, hex=True, include_srid=True)
    with conn.transaction():
        _create(conn, table, sql.SQL(", ").join(defs), force=force)
        _copy_frame(conn, table, frame)
        if index:
            conn.execute(sql.SQL("CREATE INDEX ON {} USING gist (geom)").format(_ident(table)))
    conn.execute(sql.SQL("ANALYZE {}").format(_ident(table)))
    return table


def _pg_type(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "bigint"
    if pd.api.types.is_float_dtype(series):
        return "double precision"
    return "text"


def _create(conn, table: str, definition, *, force: bool) -> None:
    _, sql = _sql()
    if table_exists(conn, table):
        if not force:
            raise OutputExistsError(
                f"la table {table} existe déjà — ajoutez --force pour la remplacer (force=True depuis Python)"
            )
        _refuse_foreign(conn, table)
        conn.execute(sql.SQL("DROP TABLE {}").format(_ident(table)))
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(_ident(table), definition))
    _mark(conn, table)


def _copy_frame(conn, table: str, frame: pd.DataFrame) -> None:
    _, sql = _sql()
    buf = io.StringIO()
    frame.to_csv(buf, index=False, header=False, lineterminator="\n")
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in frame.columns)
    with (
        conn.cursor() as cur,
        cur.copy(sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(_ident(table), cols)) as copy,
    ):
        copy.write(buf.getvalue())


def write_verdicts(conn, frames: Iterable[pd.DataFrame], table: str, *, force: bool = False) -> int:
    """Write verdict frames (:data:`geo.classify.RESULT_COLUMNS`) into a new table, atomically.

    Rows go to a staging table ``<table>__ort_partiel``; the final transaction drops the old
    table (with ``force``) and renames the staging one. A crash leaves no ``table``, only the
    staging table, which the next run replaces.

    Returns
    -------
    int
        Number of rows written.
    """
    _, sql = _sql()
    if table_exists(conn, table) and not force:
        raise OutputExistsError(
            f"la table {table} existe déjà — ajoutez --force pour la remplacer (force=True depuis Python)"
        )
    _refuse_foreign(conn, table)
    staging = _staging_name(table)
    defs = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in VERDICT_TYPES.items()
    )
    with conn.transaction():
        _create(conn, staging, defs, force=True)
    total = 0
    try:
        for frame in frames:
            with conn.transaction():
                _copy_frame(conn, staging, frame[list(VERDICT_TYPES)])
            total += len(frame)
        with conn.transaction():
            if table_exists(conn, table):
                conn.execute(sql.SQL("DROP TABLE {}").format(_ident(table)))
            conn.execute(
                sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                    _ident(staging), sql.Identifier(table.split(".")[-1])
                )
            )
    except BaseException:
        with contextlib.suppress(Exception):
            conn.rollback()
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_ident(staging)))
            conn.commit()
        raise
    return total


# --- the whole job ---------------------------------------------------------------------------


@dataclass
class DbRun:
    """What :func:`classify_db` did."""

    table: str
    parcels: int = 0
    rows: int = 0
    seconds: float = 0.0
    #: Invalid parcels near a perimeter, set aside or repaired (:mod:`geo.validity`): records
    #: of :data:`geo.validity.INVALID_COLUMNS`.
    invalides: list = field(default_factory=list)


def classify_db(
    dsn: str,
    parcels_table: str,
    perimeters: gpd.GeoDataFrame | str,
    output_table: str,
    *,
    tolerance_m2: float | None = None,
    tolerance_pct: float | None = None,
    chunk_rows: int = 200_000,
    force: bool = False,
    fix: bool = False,
) -> DbRun:
    """Classify the parcels of a PostGIS table and write the verdicts to a new table.

    Parameters
    ----------
    dsn : str
        ``postgresql://user@host:port/base``.
    parcels_table : str
        ``schema.table`` of parcels (id column ``idu`` and a geometry column).
    perimeters : GeoDataFrame or str
        Perimeters (any CRS; reprojected to the parcels' metric CRS) or a table name.
    output_table : str
        New table for the verdicts (inside and straddling pairs; pairs not listed are outside).
    fix : bool
        Repair invalid parcels near a perimeter (``make_valid``) rather than set them aside;
        either way they are listed in ``DbRun.invalides``.

    Returns
    -------
    DbRun
    """
    start = time.perf_counter()
    run = DbRun(output_table)
    with connect(dsn) as conn, connect(dsn) as out:
        if table_exists(out, output_table) and not force:
            raise OutputExistsError(
                f"la table {output_table} existe déjà — ajoutez --force pour la remplacer"
            )
        sources = [parcels_table] + ([perimeters] if isinstance(perimeters, str) else [])
        if any(_qualified_text(output_table) == _qualified_text(t) for t in sources):
            raise InputError(
                f"la table de sortie {output_table} est une table lue par ce calcul",
                fix="donnez une nouvelle table de sortie, ex. -o ort.verdicts",
            )
        _refuse_foreign(out, output_table)  # before any work: --force never drops a user's table
        cache: dict[str, gpd.GeoDataFrame] = {}

        def frames() -> Iterator[pd.DataFrame]:
            for chunk in read_parcels(conn, parcels_table, chunk_rows=chunk_rows):
                key = CRS.from_user_input(chunk.crs).to_string()
                if key not in cache:
                    cache[key] = (
                        read_perimeters(conn, perimeters, metric_crs=key)
                        if isinstance(perimeters, str)
                        else projection.to_metric(perimeters, key, source="perimeters")
                    )
                run.parcels += len(chunk)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", OrtWarning)  # listed in run.invalides instead
                    frame = classify.classify_parcels(
                        chunk,
                        cache[key],
                        tolerance_m2=tolerance_m2,
                        tolerance_pct=tolerance_pct,
                        with_distance=False,
                        only_intersecting=True,
                        fix=fix,
                    )
                # An invalid parcel is set aside (or repaired with fix) and listed, never
                # classified as it is, nor the whole table refused for it.
                run.invalides += frame.attrs.pop("invalides", [])
                yield frame

        run.rows = write_verdicts(out, frames(), output_table, force=force)
    run.seconds = time.perf_counter() - start
    return run


def read_verdicts(conn, table: str) -> pd.DataFrame:
    """Read a verdict table back, ordered by ``idu`` and ``perimeter_id``."""
    _, sql = _sql()
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in VERDICT_TYPES)
    cur = conn.execute(sql.SQL("SELECT {} FROM {} ORDER BY idu, perimeter_id").format(cols, _ident(table)))
    return pd.DataFrame(cur.fetchall(), columns=list(VERDICT_TYPES))


def sql_classify(
    conn,
    parcels_table: str,
    perimeters_table: str,
    output_table: str,
    *,
    tolerance_m2: float | None = None,
    tolerance_pct: float | None = None,
    piece_vertices: int = 64,
) -> int:
    """The same check in plain PostGIS SQL, into ``output_table`` (the benchmark's baseline).

    Both tables have columns ``idu`` / ``perimeter_id`` and ``geom`` in the same metric SRID,
    the parcels with a GiST index. Tuned as one would tune it by hand: the perimeters are cut
    with ``ST_Subdivide`` (pieces of at most ``piece_vertices`` vertices); a parcel that a
    piece contains properly takes its whole area, the others ``ST_Area(ST_Intersection)``;
    the pieces' areas are summed per parcel and perimeter. The intersection is computed once
    per pair: the pairs are a ``MATERIALIZED`` CTE, which the planner cannot inline into the
    ``status`` tests that follow (a plain CTE is inlined, and PostgreSQL then evaluates
    ``ST_Area(ST_Intersection(…))`` again in each test: 3 to 4 times per pair). The statuses
    follow :func:`geo.classify.classify_parcels` (polygons only); only inside and straddling
    pairs are kept.

    Returns
    -------
    int
        Number of rows of ``output_table``.
    """
    _, sql = _sql()
    conn.execute(
        sql.SQL("CREATE TABLE {out} AS ").format(out=_ident(output_table))
        + sql_classify_query(
            parcels_table,
            perimeters_table,
            tolerance_m2=tolerance_m2,
            tolerance_pct=tolerance_pct,
            piece_vertices=piece_vertices,
        )
    )
    conn.commit()
    return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(_ident(output_table))).fetchone()[0]


def sql_classify_query(
    parcels_table: str,
    perimeters_table: str,
    *,
    tolerance_m2: float | None = None,
    tolerance_pct: float | None = None,
    piece_vertices: int = 64,
):
    """The ``SELECT`` of :func:`sql_classify` (for ``EXPLAIN``)."""
    _, sql = _sql()
    tol_m2 = settings.tolerance_m2 if tolerance_m2 is None else float(tolerance_m2)
    tol_pct = settings.tolerance_pct if tolerance_pct is None else float(tolerance_pct)
    return sql.SQL(
        """
        WITH pieces AS MATERIALIZED (
            SELECT perimeter_id, ST_Subdivide(geom, {vertices}) AS geom FROM {perimeters}
        ), pairs AS MATERIALIZED (
            SELECT p.idu, k.perimeter_id, max(ST_Area(p.geom)) AS parcel_area,
                   sum(CASE WHEN ST_ContainsProperly(k.geom, p.geom) THEN ST_Area(p.geom)
                            ELSE ST_Area(ST_Intersection(p.geom, k.geom)) END) AS area_raw
            FROM pieces k JOIN {parcels} p ON ST_Intersects(p.geom, k.geom)
            GROUP BY p.idu, k.perimeter_id
        ), measured AS (
            SELECT *, LEAST(area_raw, parcel_area) AS inter,
                   CASE WHEN parcel_area > 0 THEN LEAST(GREATEST(area_raw / parcel_area, 0), 1)
                        ELSE 0 END AS share,
                   GREATEST({tol_m2}, {tol_pct} / 100.0 * parcel_area) AS noise
            FROM pairs
        ), judged AS (
            SELECT idu, perimeter_id,
                   CASE WHEN parcel_area <= noise THEN
                            CASE WHEN share > 0.5 THEN 'inside' ELSE 'outside' END
                        WHEN parcel_area - inter <= noise THEN 'inside'
                        WHEN inter <= noise THEN 'outside'
                        ELSE 'straddling' END AS status,
                   share, inter AS area_inside_m2, parcel_area AS parcel_area_m2
            FROM measured
        )
        SELECT j.idu, j.perimeter_id, m.type AS perimeter_type, m.nom AS perimeter_nom, j.status,
               j.share, j.area_inside_m2, j.parcel_area_m2, NULL::double precision AS distance_m
        FROM judged j JOIN {perimeters} m USING (perimeter_id)
        WHERE j.status <> 'outside'
        """
    ).format(
        parcels=_ident(parcels_table),
        perimeters=_ident(perimeters_table),
        vertices=sql.Literal(int(piece_vertices)),
        tol_m2=sql.Literal(tol_m2),
        tol_pct=sql.Literal(tol_pct),
    )


# --- a throwaway server ----------------------------------------------------------------------
