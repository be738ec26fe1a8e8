"""PostGIS as a backend, against a throwaway server started on 127.0.0.1 by the tests.

Skipped with the reason when PostgreSQL/PostGIS or psycopg are absent; a failure under
CI=true (CI installs them with .ci/install-postgis).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pgserver
import pytest
from click.testing import CliRunner
from shapely.geometry import Polygon

from geo.classify import classify_parcels
from geo.errors import OutputExistsError, OutputNotOursError
from geo.scale import postgis

ROOT = Path(__file__).resolve().parent.parent
KEY = ["idu", "perimeter_id"]


@pytest.fixture(scope="module")
def cluster():
    """A PostGIS server in a temporary folder, for this module."""
    reason = pgserver.missing_reason()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but PostGIS cannot be started: {reason}")
        pytest.skip(reason)
    server = pgserver.start_temp_cluster()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def territory():
    """2,000 seeded parcels (62 and 59) and 10 perimeters, from the benchmark's generator."""
    spec = importlib.util.spec_from_file_location("bench_scale", ROOT / "bench" / "bench_scale.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    parcels = bench.synthetic_parcels(2000, seed=11)
    return parcels, bench.synthetic_perimeters(parcels, 10, seed=11)


@pytest.fixture(scope="module")
def loaded(cluster, territory):
    """The parcels (Lambert-93) and the perimeters (WGS84) as PostGIS tables."""
    parcels, perims = territory
    with postgis.connect(cluster.dsn) as conn:
        conn.execute("CREATE SCHEMA cadastre")
        postgis.write_layer(conn, parcels, "cadastre.parcelles")
        postgis.write_layer(conn, perims.to_crs(4326), "perimetres_wgs84")
        postgis.write_layer(conn, perims, "perimetres")
        conn.commit()
    return cluster


@pytest.fixture(scope="module")
def expected(territory):
    parcels, perims = territory
    return _sorted(classify_parcels(parcels, perims, only_intersecting=True, with_distance=False))


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(KEY).reset_index(drop=True)


def _assert_same(got: pd.DataFrame, want: pd.DataFrame, *, tol: float) -> None:
    got = _sorted(got)
    assert list(got["idu"]) == list(want["idu"]) and list(got["perimeter_id"]) == list(want["perimeter_id"])
    assert list(got["status"]) == list(want["status"])
    assert np.abs(got["share"].to_numpy(float) - want["share"].to_numpy()).max() <= tol


def test_server_is_loopback_and_has_postgis(loaded):
    with postgis.connect(loaded.dsn) as conn:
        version = conn.execute("SELECT postgis_lib_version()").fetchone()[0]
        address = conn.execute("SELECT inet_server_addr()::text").fetchone()[0]
        count = conn.execute("SELECT count(*) FROM cadastre.parcelles").fetchone()[0]
    assert version.startswith("3.") and address.startswith("127.0.0.1") and count == 2000
    with postgis.connect(loaded.dsn) as conn:
        assert postgis.geometry_column(conn, "perimetres_wgs84") == ("geom", 4326)


def test_cli_db_backend_writes_identical_verdicts(loaded, expected):
    """`ort classify TABLE --db … --perimeters-table …`: the verdict table is the in-memory result."""
    import geo.cli

    args = ["classify", "cadastre.parcelles", "--db", loaded.dsn, "--perimeters-table", "perimetres_wgs84"]
    result = CliRunner().invoke(geo.cli.main, [*args, "-o", "cadastre.verdicts", "--chunk-rows", "700"])
    assert result.exit_code == 0, result.output
    assert f"{len(expected)} couple(s)" in result.output and "2000 parcelle(s)" in result.output
    with postgis.connect(loaded.dsn) as conn:
        got = postgis.read_verdicts(conn, "cadastre.verdicts")
        staging = postgis.table_exists(conn, "cadastre.verdicts__ort_partiel")
    assert not staging
    # Perimeters stored in WGS84 and brought back to Lambert-93: shares to 1e-6.
    _assert_same(got, expected, tol=1e-6)
    again = CliRunner().invoke(geo.cli.main, [*args, "-o", "cadastre.verdicts"])
    assert again.exit_code == 1 and "existe déjà" in again.output


def test_db_backend_with_perimeters_from_a_file(loaded, territory, expected, tmp_path):
    """Parcels in the database, perimeters from a GeoJSON file: bit-for-bit the in-memory result."""
    perims_file = tmp_path / "perimetres.geojson"
    territory[1].rename(columns={"perimeter_id": "id"}).to_file(perims_file)
    from geo.errors import ValidationReport
    from geo.perimeters import read_perimeter_file

    perims = read_perimeter_file(perims_file, declared_crs="EPSG:2154", report=ValidationReport("x"))
    run = postgis.classify_db(loaded.dsn, "cadastre.parcelles", perims, "verdicts_fichier", chunk_rows=500)
    assert run.parcels == 2000 and run.rows == len(expected)
    with postgis.connect(loaded.dsn) as conn:
        _assert_same(postgis.read_verdicts(conn, "verdicts_fichier"), expected, tol=0.0)


def test_plain_postgis_sql_agrees(loaded, expected):
    """The benchmark's baseline (ST_Intersects + ST_Area(ST_Intersection), ST_ContainsProperly)."""
    with postgis.connect(loaded.dsn) as conn:
        n = postgis.sql_classify(conn, "cadastre.parcelles", "perimetres", "verdicts_sql")
        got = postgis.read_verdicts(conn, "verdicts_sql")
    assert n == len(expected)
    _assert_same(got, expected, tol=1e-6)


def test_broken_parcel_in_the_database(loaded, territory, expected):
    """An invalid parcel well inside a perimeter: before, the whole table refused; now it is set
    aside and listed (``DbRun.invalides``), the others classified; repaired with ``fix``."""
    parcels = territory[0].copy()
    target_idu = expected.loc[(expected["status"] == "inside") & (expected["share"] == 1.0), "idu"].iloc[0]
    i = int(np.flatnonzero(parcels["idu"] == target_idu)[0])
    x0, y0, x1, y1 = parcels.geometry.iloc[i].bounds
    parcels.loc[parcels.index[i], "geometry"] = Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    with postgis.connect(loaded.dsn) as conn:
        postgis.write_layer(conn, parcels, "parcelles_cassees")
        conn.commit()
    run = postgis.classify_db(
        loaded.dsn, "parcelles_cassees", "perimetres", "verdicts_casses", chunk_rows=700
    )
    assert [r["idu"] for r in run.invalides] == [target_idu]
    assert run.invalides[0]["traitement"] == "écartée" and "se recoupe" in run.invalides[0]["raison"]
    with postgis.connect(loaded.dsn) as conn:
        got = postgis.read_verdicts(conn, "verdicts_casses")
    assert target_idu not in set(got["idu"]) and len(got) == len(expected) - 1
    fixed = postgis.classify_db(
        loaded.dsn, "parcelles_cassees", "perimetres", "verdicts_repares", chunk_rows=700, fix=True
    )
    assert [r["traitement"] for r in fixed.invalides] == ["réparée (make_valid)"]
    with postgis.connect(loaded.dsn) as conn:
        got = postgis.read_verdicts(conn, "verdicts_repares")
    assert got.loc[got["idu"] == target_idu, "status"].tolist() == ["inside"]


def test_existing_table_needs_force(loaded, territory):
    with postgis.connect(loaded.dsn) as conn:
        with pytest.raises(OutputExistsError, match="perimetres existe déjà"):
            postgis.write_layer(conn, territory[1], "perimetres")
        conn.rollback()
    run = postgis.classify_db(loaded.dsn, "cadastre.parcelles", "perimetres", "verdicts_force")
    again = postgis.classify_db(loaded.dsn, "cadastre.parcelles", "perimetres", "verdicts_force", force=True)
    assert run.rows == again.rows > 0


def test_force_never_drops_a_table_ort_did_not_write(loaded):
    """`--force` over the source parcels or a user's table: refused, the table intact."""
    import geo.cli

    with postgis.connect(loaded.dsn) as conn:
        conn.execute("CREATE TABLE notes_du_maire (texte text)")
        conn.execute("INSERT INTO notes_du_maire VALUES ('précieux')")
        conn.commit()
    with pytest.raises(OutputNotOursError, match="notes_du_maire"):
        postgis.classify_db(loaded.dsn, "cadastre.parcelles", "perimetres", "notes_du_maire", force=True)
    args = ["classify", "cadastre.parcelles", "--db", loaded.dsn, "--perimeters-table", "perimetres"]
    result = CliRunner().invoke(geo.cli.main, [*args, "-o", "notes_du_maire", "--force"])
    assert result.exit_code == 1 and "n'a pas été créée par ort" in result.output, result.output
    result = CliRunner().invoke(geo.cli.main, [*args, "-o", "cadastre.parcelles", "--force"])
    assert result.exit_code == 1 and "une table lue par ce calcul" in result.output, result.output
    with postgis.connect(loaded.dsn) as conn:
        assert conn.execute("SELECT texte FROM notes_du_maire").fetchone()[0] == "précieux"
        assert conn.execute("SELECT count(*) FROM cadastre.parcelles").fetchone()[0] == 2000
        assert postgis.is_ours(conn, "cadastre.parcelles")  # written by write_layer: ort's own


def test_unreachable_database_is_one_line():
    """A closed port: the DSN (without password) and the fix, no traceback."""
    import geo.cli

    if importlib.util.find_spec("psycopg") is None:
        pytest.skip("psycopg is not installed")
    result = CliRunner().invoke(
        geo.cli.main,
        [
            "classify",
            "parcelles",
            "--db",
            "postgresql://u:secret@127.0.0.1:1/x",
            "--perimeters-table",
            "p",
            "-o",
            "v",
        ],
    )
    assert result.exit_code == 1
    assert "connexion à la base impossible" in result.output and "secret" not in result.output
    assert "Traceback" not in result.output


def test_plain_sql_computes_each_intersection_once(loaded):
    """EXPLAIN VERBOSE: ST_Intersection appears in one plan node's output only (not re-evaluated
    by each status test, as when the planner inlines a plain CTE)."""
    with postgis.connect(loaded.dsn) as conn:
        query = postgis.sql_classify_query("cadastre.parcelles", "perimetres")
        plan = "\n".join(r[0] for r in conn.execute(b"EXPLAIN (VERBOSE, COSTS OFF) " + query.as_bytes(conn)))
    assert plan.count("st_intersection(") == 1, plan
    assert "st_subdivide(" in plan
