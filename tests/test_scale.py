"""Classification at scale: streamed, on two processes and on Dask, gives the in-memory result.

The data is generated from a seed by the benchmark's generator (a tiling of irregular parcels
over two départements, perimeters with holes and multipolygons), plus real Etalab files and
the demo commune. Broken partitions are reported and left out; a crash leaves nothing that
looks complete.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import shapely
from click.testing import CliRunner
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from shapely.geometry import Polygon

from geo.classify import INSIDE, RESULT_COLUMNS, STRADDLING, classify_parcels
from geo.errors import InputError, OrtWarning, OutputExistsError
from geo.scale import output
from geo.scale import run as scale

ROOT = Path(__file__).resolve().parent.parent
KEY = ["idu", "perimeter_id"]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_scale", ROOT / "bench" / "bench_scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        reason = f"{module} is not installed (pip install dask-geopandas distributed)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def territory():
    """3,000 seeded parcels over départements 62 and 59, and 12 perimeters over them."""
    bench = _bench()
    parcels = bench.synthetic_parcels(3000, seed=7)
    perims = bench.synthetic_perimeters(parcels, 12, seed=7)
    return parcels, perims


@pytest.fixture(scope="module")
def expected(territory):
    """The in-memory result: inside and straddling pairs (compiled areas, like the scale engine)."""
    parcels, perims = territory
    return _sorted(
        classify_parcels(parcels, perims, only_intersecting=True, with_distance=False, compiled=True)
    )


@pytest.fixture(scope="module")
def parquet(territory, tmp_path_factory):
    """The parcels as GeoParquet in row groups of 400 rows."""
    path = tmp_path_factory.mktemp("in") / "parcelles.parquet"
    territory[0].to_parquet(path, row_group_size=400)
    return path


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(KEY).reset_index(drop=True)


def _assert_same(got: pd.DataFrame, want: pd.DataFrame, *, share_tol: float = 0.0) -> None:
    got = _sorted(got)
    assert list(got["idu"]) == list(want["idu"])
    assert list(got["perimeter_id"]) == list(want["perimeter_id"])
    assert list(got["status"]) == list(want["status"])
    assert np.abs(got["share"].to_numpy() - want["share"].to_numpy()).max() <= share_tol
    assert (
        np.abs(got["area_inside_m2"].to_numpy() - want["area_inside_m2"].to_numpy()).max() <= share_tol * 1e4
    )


def test_the_seeded_data_is_what_the_tests_need(territory, expected):
    """Both statuses, both départements, perimeters with holes and in several parts."""
    parcels, perims = territory
    assert set(parcels["code_insee"].str[:2]) == {"59", "62"}
    assert (shapely.get_num_interior_rings(shapely.get_parts(perims.geometry.to_numpy())) > 0).any()
    assert (perims.geom_type == "MultiPolygon").any()
    counts = expected["status"].value_counts()
    assert counts[INSIDE] > 100 and counts[STRADDLING] > 50
    assert set(expected["idu"].str[:2]) == {"59", "62"}


def test_streamed_by_departement_is_identical(parquet, territory, expected, tmp_path):
    """Row groups of 400, batches of 700 rows, one process: same pairs, bit for bit."""
    out = tmp_path / "verdicts"
    report = scale.classify_dataset(parquet, territory[1], out, workers=1, chunk_rows=700)
    assert report.complete and report.parcels == 3000 and report.rows == len(expected)
    assert sorted(report.partitions) == ["59", "62"]
    assert sorted(p.name for p in out.iterdir()) == [
        "_SUCCESS",
        "_manifest.json",
        "departement=59",
        "departement=62",
    ]
    assert len(list((out / "departement=62").glob("part-*.parquet"))) > 1
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["complete"] is True and manifest["failed"] == []
    _assert_same(scale.read_results(out), expected)
    # Every row of a département's folder belongs to it.
    in_62 = pd.read_parquet(next((out / "departement=62").glob("part-*.parquet")))
    assert set(in_62["idu"].str[:2]) == {"62"}


@pytest.mark.parametrize("columns", ["all", "one type missing", "no type nor nom"])
def test_the_fast_path_writes_the_table_classify_parcels_gives(parquet, territory, expected, columns):
    """The verdict table built in Arrow is the one pandas gives (``classify_parcels`` then
    ``Table.from_pandas``), perimeter names and types included, also when they are missing."""
    from geo.scale import partitions

    perims = territory[1].copy()
    if columns == "one type missing":
        perims.loc[perims.index[3], "type"] = None
    elif columns == "no type nor nom":
        perims = perims.drop(columns=["type", "nom"])
    got = [scale.run_unit(u, perims, {}) for u in partitions.plan(parquet, chunk_rows=700)]
    assert all(r.error is None for r in got)
    table = pa.concat_tables([r.table for r in got])
    assert table.schema.names == RESULT_COLUMNS
    want = classify_parcels(
        territory[0], perims, only_intersecting=True, with_distance=False, compiled=True
    ).sort_values(KEY)
    got_frame = table.to_pandas().sort_values(KEY)
    assert len(got_frame) == len(want) == len(expected)
    for name in ("idu", "perimeter_id", "perimeter_type", "perimeter_nom", "status"):
        text = [None if pd.isna(v) else v for v in got_frame[name]]
        assert text == [None if pd.isna(v) else v for v in want[name]], name
    assert table["perimeter_type"].type == pa.large_string() and table["status"].type == pa.large_string()
    assert np.array_equal(got_frame["share"].to_numpy(), want["share"].to_numpy())
    assert got_frame["distance_m"].isna().all()


def test_a_file_sorted_by_commune_is_read_once(territory, expected, tmp_path):
    """Sorted rows: row groups of one département are units that keep every row; only the row
    group where 59 turns into 62 is read by two units, each keeping its own rows."""
    from geo.scale import partitions

    parcels = territory[0].sort_values("idu").reset_index(drop=True)
    path = tmp_path / "tri.parquet"
    parcels.to_parquet(path, row_group_size=300)  # 59 ends inside a row group: 3000 rows, 1 mixed
    n59 = int((parcels["code_insee"].str[:2] == "59").sum())
    assert n59 % 300 != 0
    units = list(partitions.plan(path, chunk_rows=700))
    mixed = n59 // 300
    assert [u.row_groups for u in units if not u.whole] == [(mixed,), (mixed,)]
    assert [u.key for u in units if not u.whole] == ["59", "62"]
    whole = [u for u in units if u.whole]
    assert all(max(u.row_groups) < mixed or min(u.row_groups) > mixed for u in whole)
    assert sorted(g for u in whole for g in u.row_groups) == [g for g in range(10) if g != mixed]
    assert all(len(u.row_groups) * 300 <= 700 for u in units)
    assert [u.seq for u in units] == list(range(len(units)))
    rows = {u.key: 0 for u in units}
    for u in units:
        rows[u.key] += partitions._table_of(u).num_rows
    assert rows == {"59": n59, "62": 3000 - n59}
    report = scale.classify_dataset(path, territory[1], tmp_path / "out", workers=1, chunk_rows=700)
    assert report.complete and report.parcels == 3000
    _assert_same(scale.read_results(tmp_path / "out"), expected)


def test_two_processes_and_a_geopackage_in_wgs84(territory, expected, tmp_path):
    """A GeoPackage in WGS84, by commune, on two worker processes: same verdicts (shares 1e-6)."""
    gpkg = tmp_path / "parcelles.gpkg"
    territory[0].to_crs(4326).to_file(gpkg)
    out = tmp_path / "verdicts"
    report = scale.classify_dataset(
        gpkg, territory[1], out, workers=2, partition_by="commune", chunk_rows=1000
    )
    assert report.complete and len(report.partitions) == territory[0]["code_insee"].nunique()
    assert all(p.name.startswith("commune=") for p in out.iterdir() if p.is_dir())
    _assert_same(scale.read_results(out), expected, share_tol=1e-6)


def test_classify_frame_on_two_threads(territory, expected, monkeypatch):
    """The in-memory fast path runs two threads over slices: same result as one thread."""
    monkeypatch.setattr(scale, "PARALLEL_MIN_PARCELS", 0)
    parcels, perims = territory
    got = scale.classify_frame(parcels, perims, workers=2)
    _assert_same(got, expected)


def test_dask_local_cluster_is_identical(parquet, territory, expected, tmp_path):
    """engine='dask' on a distributed LocalCluster of two workers: same output, bit for bit."""
    _require("distributed")
    out = tmp_path / "verdicts"
    report = scale.classify_dataset(parquet, territory[1], out, engine="dask", workers=2, chunk_rows=1000)
    assert report.complete and report.engine == "dask"
    _assert_same(scale.read_results(out), expected)


def test_dask_geopandas_frame_is_identical(territory, expected):
    """classify_dask over a dask_geopandas GeoDataFrame of 4 partitions."""
    _require("dask_geopandas")
    import dask
    import dask_geopandas

    parcels, perims = territory
    ddf = dask_geopandas.from_geopandas(parcels[["idu", "geometry"]], npartitions=4)
    with dask.config.set(scheduler="synchronous"):
        got = scale.classify_dask(ddf, perims).compute()
    _assert_same(got, expected)


# --- bad input ---------------------------------------------------------------------------------


def _etalab_feature(idu: str, ring) -> dict:
    return {
        "type": "Feature",
        "id": idu,
        "properties": {
            "id": idu,
            "commune": idu[:5],
            "prefixe": idu[5:8],
            "section": idu[8:10],
            "numero": idu[10:],
            "contenance": 100,
        },
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def test_an_invalid_parcel_is_listed_and_its_partition_done(epinay_parcelles, tmp_path):
    """Real parcels of Épinay-sur-Orge (91) beside a commune of the 62 with a self-crossing parcel:
    both partitions done, the bow tie listed in invalides.parquet (set aside: no _SUCCESS,
    read_results refuses but with allow_partial), repaired and classified with --fix."""
    folder = tmp_path / "cadastre"
    (folder / "91").mkdir(parents=True)
    (folder / "62").mkdir()
    (folder / "91" / epinay_parcelles.name).write_bytes(epinay_parcelles.read_bytes())
    x, y = 2.62, 50.50
    bowtie = [[x, y], [x + 0.001, y + 0.001], [x + 0.001, y], [x, y + 0.001], [x, y]]
    square = [[x + 0.002, y], [x + 0.003, y], [x + 0.003, y + 0.001], [x + 0.002, y + 0.001], [x + 0.002, y]]
    features = [_etalab_feature("62998000AB0001", square), _etalab_feature("62998000AB0002", bowtie)]
    (folder / "62" / "cadastre-62998-parcelles.json").write_text(
        json.dumps({"type": "FeatureCollection", "features": features})
    )
    from geo.sources.cadastre import read_parcels

    parcels = read_parcels(epinay_parcelles)
    minx, miny, maxx, maxy = parcels.total_bounds
    perims = gpd.GeoDataFrame(
        {"perimeter_id": ["centre"], "type": ["secteur"], "nom": ["Centre"]},
        geometry=[shapely.box(minx + 500, miny + 500, (minx + maxx) / 2, (miny + maxy) / 2)],
        crs=parcels.crs,
    )
    out = tmp_path / "verdicts"
    report = scale.classify_dataset(folder, perims, out, workers=1)
    assert report.failed == [] and sorted(report.partitions) == ["62", "91"]
    assert not report.complete and not (out / "_SUCCESS").exists()
    assert report.invalides["ecartees"] == 1 and report.invalides["reparees"] == 0
    listed = pd.read_parquet(out / scale.INVALID_FILE)
    assert list(listed["idu"]) == ["62998000AB0002"] and list(listed["traitement"]) == ["écartée"]
    assert "se recoupe" in listed["raison"].iloc[0] and "cadastre-62998" in listed["emplacement"].iloc[0]
    want = _sorted(
        classify_parcels(parcels, perims, only_intersecting=True, with_distance=False, compiled=True)
    )
    _assert_same(scale.read_results(out, allow_partial=True), want)
    with pytest.raises(InputError, match="écartée"):
        scale.read_results(out)
    # With --fix the bow tie is repaired, classified and listed as such; the run is complete.
    fixed = scale.classify_dataset(folder, perims, tmp_path / "fixed", workers=1, fix=True)
    assert fixed.complete and sorted(fixed.partitions) == ["62", "91"]
    assert fixed.invalides["reparees"] == 1 and fixed.invalides["ecartees"] == 0
    assert list(pd.read_parquet(tmp_path / "fixed" / scale.INVALID_FILE)["traitement"]) == [
        "réparée (make_valid)"
    ]


def _bowtie_over(geom, hole: bool = False) -> Polygon:
    """A bow tie over the bounding box of ``geom`` (optionally with a hole: read by GEOS, not by
    the WKB scan)."""
    x0, y0, x1, y1 = geom.bounds
    w, h = (x1 - x0) / 10, (y1 - y0) / 10
    inner = [[(x0 + w, y0 + 4 * h), (x0 + 2 * w, y0 + 4 * h), (x0 + 2 * w, y0 + 6 * h), (x0 + w, y0 + 6 * h)]]
    return Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)], inner if hole else None)


@pytest.mark.parametrize("where", ["inside", "across"])
@pytest.mark.parametrize("hole", [False, True])
def test_an_invalid_parcel_never_vanishes(territory, expected, tmp_path, hole, where):
    """A bow tie well inside a perimeter (decided by the grid from its box alone) or across a
    perimeter line, in the 59 of a GeoParquet: before, the first vanished (exit 0, outside)
    and the second failed the whole 59. Now both partitions are done and the parcel is listed;
    with fix it is repaired (its two triangles) and classified: inside, or straddling."""
    parcels, perims = territory
    broken = parcels.copy()
    wanted = (
        (expected["status"] == INSIDE) & (expected["share"] == 1.0)
        if where == "inside"
        else expected["status"] == STRADDLING
    )
    target_idu = expected.loc[wanted & expected["idu"].str.startswith("59"), "idu"].iloc[5]
    target = int(np.flatnonzero(broken["idu"] == target_idu)[0])
    broken.loc[broken.index[target], "geometry"] = _bowtie_over(broken.geometry.iloc[target], hole)
    path = tmp_path / "france.parquet"
    broken.to_parquet(path, row_group_size=500)
    report = scale.classify_dataset(path, perims, tmp_path / "out", workers=1, chunk_rows=1000)
    assert report.failed == [] and sorted(report.partitions) == ["59", "62"]
    assert report.invalides["ecartees"] == 1 and not report.complete
    listed = pd.read_parquet(tmp_path / "out" / scale.INVALID_FILE)
    assert list(listed["idu"]) == [target_idu] and listed["partition"].tolist() == ["59"]
    assert (
        "france.parquet" in listed["emplacement"].iloc[0]
        and "lot des lignes" in listed["emplacement"].iloc[0]
    )
    assert "se recoupe" in listed["raison"].iloc[0]
    got = scale.read_results(tmp_path / "out", allow_partial=True)
    assert target_idu not in set(got["idu"])  # no verdict, rather than "outside"
    _assert_same(got, expected[expected["idu"] != target_idu].reset_index(drop=True))
    # In memory: the same parcel set aside, listed, with a warning.
    with pytest.warns(OrtWarning, match="invalide"):
        memory = classify_parcels(broken, perims, only_intersecting=True, with_distance=False, compiled=True)
    assert [r["idu"] for r in memory.attrs["invalides"]] == [target_idu]
    _assert_same(memory, expected[expected["idu"] != target_idu].reset_index(drop=True))
    # Repaired: classified, and flagged.
    fixed = scale.classify_dataset(path, perims, tmp_path / "fixed", workers=1, chunk_rows=1000, fix=True)
    assert fixed.complete and fixed.invalides["reparees"] == 1
    mine = scale.read_results(tmp_path / "fixed")
    mine = mine[mine["idu"] == target_idu]
    assert len(mine) >= 1 and set(mine["status"]) <= {INSIDE, STRADDLING}
    if where == "inside":
        assert mine["share"].tolist() == [1.0]


def test_degrees_declared_as_lambert93_in_a_parquet_are_refused(territory, tmp_path):
    """Parcels in degrees whose GeoParquet says Lambert-93: every partition fails with the
    coordinates seen and the fix, nothing classified (the WKB fast path checks the extent)."""
    parcels, perims = territory
    wrong = parcels.to_crs(4326).set_crs(2154, allow_override=True)
    path = tmp_path / "degres.parquet"
    wrong.to_parquet(path, row_group_size=500)
    report = scale.classify_dataset(path, perims, tmp_path / "out", workers=1, chunk_rows=1000)
    assert {f["partition"] for f in report.failed} == {"59", "62"}
    for failure in report.failed:
        assert "degres.parquet" in failure["location"] + failure["error"]
        assert "ressemblent à des degrés" in failure["error"] and "EPSG:4326" in failure["error"]
    assert report.partitions == {} and report.rows == 0


def test_refuses_an_existing_output(parquet, territory, tmp_path):
    out = tmp_path / "verdicts"
    out.mkdir()
    with pytest.raises(OutputExistsError, match="existe déjà"):
        scale.classify_dataset(parquet, territory[1], out, workers=1)


def test_a_crash_leaves_no_output_that_looks_complete(parquet, territory, tmp_path, monkeypatch):
    """An error after the first unit: no output, no temporary folder; an old output is kept."""
    calls = {"n": 0}
    real = scale._record

    def crash_on_second(res, tmp, report):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full (injected)")
        real(res, tmp, report)

    monkeypatch.setattr(scale, "_record", crash_on_second)
    out = tmp_path / "verdicts"
    with pytest.raises(RuntimeError, match="injected"):
        scale.classify_dataset(parquet, territory[1], out, workers=1, chunk_rows=500)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
    # Over an existing output with --force: the old one stays as it was.
    out.mkdir()
    (out / "_SUCCESS").write_text("")
    (out / "_manifest.json").write_text('{"producteur": "ort"}')  # a previous run: --force may replace it
    calls["n"] = 0
    with pytest.raises(RuntimeError, match="injected"):
        scale.classify_dataset(parquet, territory[1], out, workers=1, chunk_rows=500, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["_SUCCESS", "_manifest.json"]


def test_a_killed_run_leaves_only_a_hidden_partial_folder(parquet, territory, tmp_path):
    """A process killed mid-run (os._exit after two parts): no output folder, no manifest anywhere."""
    perims_path = tmp_path / "perimetres.parquet"
    territory[1].to_parquet(perims_path)
    out = tmp_path / "verdicts"
    script = textwrap.dedent(
        f"""
        import os, geopandas as gpd
        from geo.scale import run as scale
        real, seen = scale._record, []
        def record(res, tmp, report):
            real(res, tmp, report)
            seen.append(res)
            if len(seen) == 2:
                os._exit(9)
        scale._record = record
        scale.classify_dataset({str(parquet)!r}, gpd.read_parquet({str(perims_path)!r}), {str(out)!r},
                               workers=1, chunk_rows=500)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 9, done.stderr
    assert not out.exists()
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".verdicts.partiel-")]
    assert len(leftovers) == 1
    assert len(list(leftovers[0].rglob("part-*.parquet"))) == 2
    assert not list(leftovers[0].rglob("_manifest.json")) and not list(leftovers[0].rglob("_SUCCESS"))
    with pytest.raises(Exception, match="pas allé au bout"):
        scale.read_results(leftovers[0])


# --- the command -------------------------------------------------------------------------------


def test_cli_classify_demo_commune(tmp_path):
    """`ort classify` on the demo's Etalab files and its convention, against `classify_parcels`."""
    import geo.cli
    from geo.demo.commune import build_demo
    from geo.perimeters import read_convention
    from geo.sources.cadastre import read_parcels

    demo = build_demo(data_dir=tmp_path / "data" / "demo", perimeters_dir=tmp_path / "perimeters" / "demo")
    out = tmp_path / "verdicts"
    args = [
        "classify",
        str(demo.data_dir),
        "-p",
        str(demo.perimeters_dir),
        "--date",
        "2024-09-01",
        "-o",
        str(out),
    ]
    result = CliRunner().invoke(geo.cli.main, [*args, "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "COMMUNE FICTIVE" in result.output and "Résultat écrit" in result.output
    perims = read_convention(demo.perimeters_dir).perimeters("2024-09-01", in_force_only=True)
    parcels = read_parcels(demo.layers["parcelles"])
    want = _sorted(
        classify_parcels(parcels, perims, only_intersecting=True, with_distance=False, compiled=True)
    )
    _assert_same(scale.read_results(out), want)
    assert json.loads((out / "_manifest.json").read_text())["provenance"]["version"] == "avenant-1"
    again = CliRunner().invoke(geo.cli.main, args)
    assert again.exit_code == 1 and "existe déjà" in again.output and "--force" in again.output


def test_cli_in_its_own_process_on_threads(parquet, territory, expected, tmp_path):
    """`ort classify` as a user runs it (``python -m geo``, its own process): two threads of
    that process, no worker process started, the in-memory verdicts, its whole output printed
    although it ends without the interpreter's teardown."""
    perims_file = tmp_path / "perimetres.gpkg"
    territory[1].rename(columns={"perimeter_id": "id"}).to_file(perims_file)
    out = tmp_path / "out"
    args = ["classify", str(parquet), "--perimeters-file", str(perims_file), "-o", str(out)]
    run = subprocess.Popen(
        [sys.executable, "-m", "geo", *args, "--workers", "2", "--chunk-rows", "700"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    import psutil

    children = set()
    while run.poll() is None:
        try:
            children |= {p.pid for p in psutil.Process(run.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            break
        time.sleep(0.02)
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr
    assert "3000 parcelle(s) classée(s)" in stdout and stdout.rstrip().endswith(f"Résultat écrit : {out}")
    assert "Traceback" not in stderr
    assert not children  # (no fork server: it would be a child)
    _assert_same(scale.read_results(out), expected, share_tol=1e-12)
    assert (out / "_SUCCESS").exists()


def test_the_compiled_code_loads_without_numba_registries():
    """A fresh process on numba's loops (``ORT_NATIVE=0``: no C library) loads the engine's
    compiled code (in a background thread) without numba's compiler registries nor SciPy's
    linear algebra (a third of that load); the loaded loops give their results, and numba
    still compiles afterwards (``np.dot`` on matrices, which loads the registries and SciPy
    then). (On the C library numba is not imported at all: tests/test_native.py.)"""
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        from geo.scale import run
        run.warm_in_background()
        run._warm_compiled()  # waits for the background thread
        assert run._WARMED.is_set()
        print("registries", "numba.np.arraymath" in sys.modules, "scipy.linalg" in sys.modules)
        import shapely
        from geo import kernels
        area = kernels.intersection_areas(
            np.array([shapely.box(0, 0, 2, 2)]), np.array([shapely.box(1, 1, 3, 3)]), np.zeros(1, np.intp)
        )
        print("area", float(area[0]))
        import numba
        dot = numba.njit(lambda a, b: np.dot(a, b))
        print("dot", float(dot(np.eye(2), np.ones((2, 2))).sum()))
        """
    )
    numba_only = dict(os.environ, ORT_NATIVE="0")
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=numba_only
    )
    assert done.returncode == 0, done.stderr
    assert "registries False False" in done.stdout
    assert "area 1.0" in done.stdout and "dot 4.0" in done.stdout


def test_classify_dataset_on_threads_is_identical(parquet, territory, expected, tmp_path):
    report = scale.classify_dataset(
        parquet, territory[1], tmp_path / "out", workers=2, chunk_rows=500, processes=False
    )
    assert report.complete and report.parcels == 3000
    _assert_same(scale.read_results(tmp_path / "out"), expected, share_tol=1e-12)


def _forkservers() -> set[int]:
    import psutil

    found = set()
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if "forkserver" in " ".join(proc.info["cmdline"] or []):
            found.add(proc.info["pid"])
    return found


def test_cli_partial_result_exit_code(territory, tmp_path):
    """A broken partition: exit code 2, the failure named on one line, the others written."""
    import geo.cli

    parcels, perims = territory
    broken = parcels.copy()
    first_62 = int(np.flatnonzero(broken["code_insee"].str.startswith("62"))[0])
    # Neither the id nor the columns it could be rebuilt from make a valid IDU.
    broken.loc[broken.index[first_62], ["idu", "numero"]] = ["62ABC", "12X"]
    path = tmp_path / "parcelles.parquet"
    broken.to_parquet(path)
    perims_file = tmp_path / "perimetres.geojson"
    perims.rename(columns={"perimeter_id": "id"}).to_crs(4326).to_file(perims_file)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        geo.cli.main,
        ["classify", str(path), "--perimeters-file", str(perims_file), "-o", str(out), "--workers", "1"],
    )
    assert result.exit_code == 2, result.output
    assert "Partition en échec (62) — parcelles.parquet" in result.output and "12X" in result.output
    assert sorted(json.loads((out / "_manifest.json").read_text())["partitions"]) == ["59"]
    # The same from the shell (``python -m geo``, which ends without the interpreter's
    # teardown): the exit code and the messages are kept.
    shell = [sys.executable, "-m", "geo", "classify", str(path), "--perimeters-file", str(perims_file)]
    again = subprocess.run(
        [*shell, "-o", str(out), "--force"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 2, again.stderr
    assert "Partition en échec (62)" in again.stderr and "Résultat partiel écrit" in again.stderr


def test_unreachable_scheduler_leaves_nothing(parquet, territory, tmp_path, monkeypatch):
    """The executor fails before any work (e.g. no Dask scheduler): no hidden partial folder stays."""

    def unreachable(*args, **kwargs):
        raise InputError("tcp://127.0.0.1:9: cannot reach the Dask scheduler", fix="check --scheduler")

    monkeypatch.setattr(scale, "_dask_executor", unreachable)
    out = tmp_path / "verdicts"
    with pytest.raises(InputError, match="cannot reach the Dask scheduler"):
        scale.classify_dataset(parquet, territory[1], out, engine="dask", scheduler="tcp://127.0.0.1:9")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# --- a real Dask cluster: a scheduler and two workers, separate processes over TCP --------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dask_cluster(tmp_path):
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1, always stopped after."""
    _require("distributed")
    import signal
    import time

    from distributed import Client

    address = f"tcp://127.0.0.1:{_free_port()}"
    common = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True}
    procs = []
    try:
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dask",
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    address.rsplit(":", 1)[1],
                    "--no-dashboard",
                ],
                cwd=tmp_path,
                **common,
            )
        )
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "dask",
                        "worker",
                        address,
                        "--nworkers",
                        "1",
                        "--nthreads",
                        "1",
                        "--no-dashboard",
                        "--local-directory",
                        str(tmp_path),
                    ],
                    cwd=tmp_path,
                    **common,
                )
            )
        deadline = time.monotonic() + 120
        while True:
            try:
                with Client(address, timeout="5s") as client:
                    client.wait_for_workers(2, timeout=60)
                    break
            except OSError:
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    pytest.fail("the Dask scheduler or a worker did not start")
                time.sleep(0.5)
        yield address
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_cli_on_a_dask_cluster_over_tcp(dask_cluster, parquet, territory, tmp_path):
    """`ort classify --engine dask --scheduler tcp://…` on two worker processes: the verdicts of
    the local engine, bit for bit; each worker reads the input file itself."""
    import geo.cli

    perims_file = tmp_path / "perimetres.gpkg"
    territory[1].rename(columns={"perimeter_id": "id"}).to_file(perims_file)
    base = ["classify", str(parquet), "--perimeters-file", str(perims_file), "--chunk-rows", "1000"]
    local = CliRunner().invoke(geo.cli.main, [*base, "-o", str(tmp_path / "local"), "--workers", "1"])
    assert local.exit_code == 0, local.output
    dask = CliRunner().invoke(
        geo.cli.main, [*base, "-o", str(tmp_path / "dask"), "--engine", "dask", "--scheduler", dask_cluster]
    )
    assert dask.exit_code == 0, dask.output
    manifest = json.loads((tmp_path / "dask" / "_manifest.json").read_text())
    assert manifest["engine"] == "dask" and manifest["complete"]
    got, want = scale.read_results(tmp_path / "dask"), scale.read_results(tmp_path / "local")
    assert len(want) > 100
    pd.testing.assert_frame_equal(_sorted(got), _sorted(want))


@hsettings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="0129ABZaz _-é", min_size=13, max_size=15), min_size=1, max_size=5))
def test_canonical_ids_are_recognised_as_the_regex_does(texts):
    """The byte check that spares the normalisation of IDUs says what the IDU regex says."""
    import re

    from geo.scale import partitions

    want = all(re.fullmatch(partitions._IDU.strip("^$"), t) for t in texts)
    assert partitions._canonical(pa.array(texts)) == want
    assert partitions._canonical(pa.array(["62907000AB0685", *texts]).slice(1)) == want
    assert partitions._canonical(pa.array(texts, type=pa.large_string())) == want


@hsettings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.text(alphabet="0129ABab97 é\t", max_size=7)), min_size=1, max_size=8),
    st.sampled_from(["departement", "commune"]),
)
def test_plan_keys_of_plain_codes_are_arrows(codes, partition_by):
    """The keys the plan finds in Python for a commune column read as a dictionary are those
    Arrow computes (:func:`geo.scale.partitions._keys`), or it leaves them to Arrow."""
    import pyarrow.compute as pc

    from geo.scale import partitions

    table = pa.table({"code_insee": pa.array(codes, pa.string())})
    want = tuple(sorted(pc.unique(partitions._keys(table, partition_by)).to_pylist()))
    coded = pa.chunked_array([pc.dictionary_encode(table["code_insee"].chunk(0))])
    got = partitions._plain_keys(coded, partition_by)
    assert got is None or got == want
    if all(c is not None and c.isascii() and c.isalnum() for c in codes):
        assert got == want
    # A dictionary holding codes no row uses: only the codes used make keys.
    extra = pa.DictionaryArray.from_arrays(
        pa.array([0] * len(codes), pa.int32()), pa.array(["59001", "97411"])
    )
    assert partitions._plain_keys(pa.chunked_array([extra]), partition_by) == (
        ("59",) if partition_by == "departement" else ("59001",)
    )


def test_the_plan_of_a_geoparquet_needs_no_compute_functions(territory, tmp_path):
    """Planning a GeoParquet file with a commune column spares importing pyarrow.compute (30 ms
    that would hold back the first unit; the workers import it while they read)."""
    path = tmp_path / "p.parquet"
    territory[0].sort_values("idu").to_parquet(path, row_group_size=300)
    code = textwrap.dedent(
        f"""
        import sys
        from geo.scale import partitions
        units = list(partitions.plan({str(path)!r}, chunk_rows=700))
        assert [u.key for u in units if not u.whole] == ["59", "62"], units
        assert "pyarrow.compute" not in sys.modules
        print(len(units))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


# --- hardening III (issue 23) ---------------------------------------------------------------------


def test_lambert93_declared_web_mercator_is_refused(territory, tmp_path):
    """Lambert-93 numbers whose GeoParquet says EPSG:3857: before, classified (0 pairs,
    _SUCCESS, exit 0); now every partition fails, the place they would fall named and the CRS
    where they fit suggested. The same layer in memory is refused by ``to_metric``."""
    from geo import projection

    parcels, perims = territory
    wrong = parcels.set_crs(3857, allow_override=True)
    path = tmp_path / "mercator.parquet"
    wrong.to_parquet(path, row_group_size=500)
    report = scale.classify_dataset(path, perims, tmp_path / "out", workers=1, chunk_rows=1000)
    assert {f["partition"] for f in report.failed} == {"59", "62"} and report.rows == 0
    assert not (tmp_path / "out" / "_SUCCESS").exists()
    for failure in report.failed:
        assert "EPSG:3857" in failure["error"] and "hors de la France métropolitaine" in failure["error"]
        assert "EPSG:2154" in failure["error"]
    with pytest.raises(projection.CRSError, match="EPSG:3857.*hors de la France"):
        projection.to_metric(wrong, "EPSG:2154", source="mercator.parquet", code_insee="62001")


def test_a_territory_is_checked_in_any_crs(territory):
    """Overseas codes with metropolitan coordinates, in the overseas CRS or in degrees, are
    refused; true coordinates in any CRS are accepted."""
    from geo import projection

    parcels = territory[0].iloc[:50]
    for crs in ("EPSG:2154", "EPSG:4326", "EPSG:3857", "EPSG:3949"):
        projection.check_plausible(parcels.to_crs(crs), source="ok", code_insee="62001")
    with pytest.raises(projection.CRSError, match="hors de La Réunion"):
        projection.check_plausible(parcels.to_crs(4326), source="x", code_insee="97411")
    wrong = parcels.set_crs("EPSG:2975", allow_override=True)  # RGR92 / UTM 40S, of La Réunion
    with pytest.raises(projection.CRSError, match="hors de La Réunion"):
        projection.check_plausible(wrong, source="x", code_insee="97411")


def _run_into(parquet, perims, out, **kwargs):
    return scale.classify_dataset(parquet, perims, out, workers=1, chunk_rows=700, **kwargs)


def test_force_replaces_only_what_ort_wrote(parquet, territory, expected, tmp_path):
    """A notes.docx the user put beside the parts survives --force (before: gone); a forged
    _manifest.json lets --force replace only files named and listed as ort's own."""
    out = tmp_path / "verdicts"
    _run_into(parquet, territory[1], out)
    (out / "notes.docx").write_bytes(b"PK notes")
    (out / "departement=62" / "lisez-moi.txt").write_text("mes remarques")
    report = _run_into(parquet, territory[1], out, force=True)
    assert report.complete
    assert (out / "notes.docx").read_bytes() == b"PK notes"
    assert (out / "departement=62" / "lisez-moi.txt").read_text() == "mes remarques"
    _assert_same(scale.read_results(out), expected)
    manifest = json.loads((out / "_manifest.json").read_text())
    assert "notes.docx" not in manifest["fichiers"] and "_SUCCESS" in manifest["fichiers"]
    # A user's folder with a forged manifest that lists the user's files.
    home = tmp_path / "home"
    home.mkdir()
    (home / "these.docx").write_bytes(b"five years")
    (home / "departement=62").mkdir()
    ours = {p.relative_to(out).as_posix() for p in out.rglob("part-*.parquet")}
    mine = sorted(ours)[0]  # a name the new run writes: named like ort's, not listed as ort's
    (home / mine).parent.mkdir()
    (home / mine).write_bytes(b"user data named like ours")
    forged = {"producteur": "ort", "fichiers": ["these.docx", "_manifest.json"]}
    (home / "_manifest.json").write_text(json.dumps(forged))
    with pytest.raises(OutputExistsError, match="ort ne l'a pas écrit"):
        _run_into(parquet, territory[1], home, force=True)
    assert (home / "these.docx").read_bytes() == b"five years"
    assert (home / mine).read_bytes() == b"user data named like ours"
    assert json.loads((home / "_manifest.json").read_text()) == forged
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    # Without the clash: the run goes in beside the user's files, which stay.
    (home / mine).unlink()
    (home / mine).parent.rmdir()
    _run_into(parquet, territory[1], home, force=True)
    assert (home / "these.docx").read_bytes() == b"five years"
    _assert_same(scale.read_results(home), expected)


def test_duplicate_ids_are_refused_with_the_id(territory, tmp_path):
    """Two rows with one IDU (different shapes): before, two contradictory verdicts and exit
    0; now the partition is refused, the IDU named."""
    parcels, perims = territory
    twice = pd.concat([parcels, parcels.iloc[[10]].assign(geometry=parcels.geometry.iloc[[2000]].values)])
    path = tmp_path / "doublons.parquet"
    twice.to_parquet(path)
    report = scale.classify_dataset(path, perims, tmp_path / "out", workers=1)
    dup = parcels["idu"].iloc[10]
    assert [f["partition"] for f in report.failed] == [dup[:2]]
    assert "en double" in report.failed[0]["error"] and dup in report.failed[0]["error"]


def test_points_given_as_parcels_are_refused(territory, tmp_path):
    """Points in place of parcels: before, classified inside; now refused in French, naming
    the file and the feature."""
    parcels, perims = territory
    points = parcels.iloc[:300].copy()
    points["geometry"] = points.geometry.representative_point()
    path = tmp_path / "points.parquet"
    points.to_parquet(path)
    report = scale.classify_dataset(path, perims, tmp_path / "out", workers=1)
    assert report.failed and report.rows == 0
    message = report.failed[0]["location"] + report.failed[0]["error"]
    assert "points.parquet" in message and "Point" in message and "idu=" in message
    assert "parcelles (polygones)" in message


def test_cli_classify_takes_the_shipped_convention_name(tmp_path, monkeypatch):
    """`--perimeters demo`, as every other command takes it (before: refused)."""
    import geo.cli
    from geo import embedded

    monkeypatch.chdir(tmp_path)
    parcels = tmp_path / "cadastre-62999-parcelles.json.gz"
    parcels.write_bytes((embedded.demo_dir() / "cadastre-62999-parcelles.json.gz").read_bytes())
    result = CliRunner().invoke(
        geo.cli.main,
        ["classify", str(parcels), "--perimeters", "demo", "-o", "out", "--workers", "1"],
    )
    assert result.exit_code == 0, result.output
    assert "COMMUNE FICTIVE" in result.output and scale.read_results(tmp_path / "out").shape[0] > 0


def test_a_worker_never_makes_the_staging_folder_again(tmp_path):
    """A run interrupted while a worker is busy: the run removes its hidden staging folder; the
    worker's late write must not create it again (before: it did, and stayed)."""
    tmp = tmp_path / ".verdicts.partiel-x"
    res = scale.UnitResult("62", 3, "ici", table=pa.table({"idu": ["62001000AB0001"]}))
    with pytest.raises(FileNotFoundError):
        output.write_part(res, tmp, "departement")
    assert list(tmp_path.iterdir()) == []


def test_engine_modules_have_no_import_loop_even_inside_functions():
    """geo.classify → geo.kernels → geo.classify was a loop hidden by a function-level import;
    the shared grids now live a floor down (geo.grid)."""
    import ast

    import geo

    root = Path(geo.__file__).parent
    names = [
        "classify",
        "kernels",
        "kernels_numba",
        "grid",
        "validity",
        "projection",
        "scale/run",
        "scale/wkb",
        "scale/wkb_numba",
        "scale/jit",
        "scale/compiled",
        "scale/partitions",
    ]
    graph = {}
    for name in names:
        tree = ast.parse((root / f"{name}.py").read_text(encoding="utf-8"))
        found = set()
        for node in ast.walk(tree):  # every import, at any level
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("geo"):
                found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        graph["geo." + name.replace("/", ".")] = {
            m for m in found if m in {"geo." + n.replace("/", ".") for n in names}
        }

    def reaches(a: str, b: str, seen=()) -> bool:
        return any(n == b or (n not in seen and reaches(n, b, (*seen, n))) for n in graph[a])

    assert not [m for m in graph if reaches(m, m)]
    assert "geo.classify" not in graph["geo.kernels"]


def test_cli_names_the_invalid_parcels(territory, expected, tmp_path):
    """`ort classify` on a file with a bow tie inside a sector: exit 2, one warning line naming
    the parcel, the reason and invalides.parquet (before: exit 0, the parcel absent); with
    --fix: exit 0, the parcel classified inside and listed as repaired."""
    import geo.cli

    parcels, perims = territory
    broken = parcels.copy()
    target_idu = expected.loc[(expected["status"] == INSIDE) & (expected["share"] == 1.0), "idu"].iloc[7]
    target = int(np.flatnonzero(broken["idu"] == target_idu)[0])
    broken.loc[broken.index[target], "geometry"] = _bowtie_over(broken.geometry.iloc[target])
    path = tmp_path / "parcelles.parquet"
    broken.to_parquet(path)
    perims_file = tmp_path / "perimetres.gpkg"
    perims.rename(columns={"perimeter_id": "id"}).to_file(perims_file)
    args = ["classify", str(path), "--perimeters-file", str(perims_file), "--workers", "1"]
    result = CliRunner().invoke(geo.cli.main, [*args, "-o", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert f"idu={target_idu}" in result.output and "invalides.parquet" in result.output
    assert "se recoupe" in result.output and "Traceback" not in result.output
    fixed = CliRunner().invoke(geo.cli.main, [*args, "-o", str(tmp_path / "fixed"), "--fix"])
    assert fixed.exit_code == 0, fixed.output
    assert "réparée(s)" in fixed.output
    got = scale.read_results(tmp_path / "fixed")
    assert got.loc[got["idu"] == target_idu, "status"].tolist() == [INSIDE]
