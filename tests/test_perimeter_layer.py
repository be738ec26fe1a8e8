"""Perimeters as arrays for the engine at scale, and ``ort classify`` without pandas.

A plain GeoPackage of perimeters (one layer in Lambert-93: ``id``, ``type``, ``nom``) is read
with SQLite (:mod:`geo.gpkg`) into what :func:`geo.perimeters.read_perimeter_file` gives; any
other file — several layers, another CRS, a duplicated id, an invalid polygon… — is read by
that reader and gets its French problems. ``ort classify`` of a real GeoParquet file with such
a GeoPackage, run as a user runs it, imports neither pandas, geopandas, GDAL's readers nor
pydantic, and writes the verdicts of the general path.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal
from pyproj import CRS, Transformer

from geo import perimeter_layer, perimeters, projection
from geo.errors import ValidationReport
from geo.perimeter_layer import PerimeterLayer, read_perimeter_layer
from geo.scale import run as scale

#: Modules a plain ``ort classify FILE.parquet --perimeters-file P.gpkg`` never imports.
HEAVY = ("pandas", "geopandas", "pyogrio", "fiona", "pydantic", "pyproj")


@pytest.fixture(scope="module")
def epinay(epinay_ort, tmp_path_factory):
    """The real parcels of Épinay-sur-Orge as GeoParquet, and the avenant's three perimeters
    (a disc, a box, an OPAH-RU box cutting parcel AC 100) as a plain GeoPackage."""
    folder = tmp_path_factory.mktemp("epinay-scale")
    parcels = epinay_ort["parcels"]
    parquet = folder / "parcelles.parquet"
    parcels.to_parquet(parquet, row_group_size=2000)
    source = epinay_ort["folder"] / "perimetres-avenant-1.geojson"
    perims = gpd.read_file(source).to_crs(projection.LAMBERT93)
    gpkg = folder / "perimetres.gpkg"
    perims[["id", "type", "nom", "geometry"]].to_file(gpkg, driver="GPKG")
    geojson = _geojson(folder / "perimetres-l93.geojson", perims[["id", "type", "nom", "geometry"]])
    return {"parquet": parquet, "gpkg": gpkg, "geojson": geojson, "perims": perims, "folder": folder}


def _both(path, metric_crs=projection.LAMBERT93):
    """The layer read by read_perimeter_layer and the GeoDataFrame of read_perimeter_file, with
    their reports."""
    fast_report, full_report = ValidationReport(str(path)), ValidationReport(str(path))
    layer = read_perimeter_layer(path, metric_crs=metric_crs, report=fast_report)
    frame = perimeters.read_perimeter_file(path, metric_crs=metric_crs, report=full_report)
    return layer, fast_report, frame, full_report


def test_a_plain_geopackage_is_read_fast_as_the_full_reader_reads_it(epinay):
    assert perimeter_layer._plain_gpkg(epinay["gpkg"], projection.LAMBERT93) is not None  # the fast path
    layer, fast_report, frame, full_report = _both(epinay["gpkg"])
    assert fast_report.problems == full_report.problems == []
    assert layer.table is None and len(layer) == 3 and layer.crs == "EPSG:2154"
    assert layer.ids == ["centre-ville", "gare", "opah-ru"]
    assert layer.types == ["secteur", "secteur", "opah_ru"]
    assert_geodataframe_equal(layer.frame(), frame)
    assert (shapely.to_wkb(layer.geoms) == shapely.to_wkb(frame.geometry.to_numpy())).all()


def test_the_types_are_the_formats(epinay):
    assert perimeter_layer.PERIMETER_TYPES == perimeters.PERIMETER_TYPES


def _gpkg(path, gdf, **kwargs):
    gdf.to_file(path, driver="GPKG", **kwargs)
    return path


@pytest.mark.parametrize(
    "case",
    [
        "duplicate-id",
        "bad-type",
        "blank-id",
        "integer-id",
        "invalid-polygon",
        "point",
        "cc50",
        "no-crs",
        "two-layers",
        "other-column",
        "centre-ville",
        "blank-nom",
        "outside-france",
    ],
)
def test_other_files_are_read_by_the_full_reader(epinay, tmp_path, case):
    """Anything but the plainest file gets the full reader's answer: same problems, same layer."""
    base = epinay["perims"][["id", "type", "nom", "geometry"]].copy()
    path = tmp_path / "p.gpkg"
    if case == "duplicate-id":
        base.loc[1, "id"] = base.loc[0, "id"]
    elif case == "bad-type":
        base.loc[1, "type"] = "sectuer"
    elif case == "blank-id":
        base.loc[1, "id"] = "  "
    elif case == "integer-id":
        base["id"] = range(len(base))
    elif case == "invalid-polygon":
        x0, y0, x1, y1 = base.geometry[1].bounds
        base.loc[1, "geometry"] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])  # a bow tie
    elif case == "point":
        base.loc[1, "geometry"] = base.geometry[1].centroid
    elif case == "cc50":
        base = base.to_crs(3949)
    elif case == "no-crs":
        base = base.set_crs(None, allow_override=True)
    elif case == "two-layers":
        _gpkg(path, base.iloc[:1], layer="autre")
    elif case == "other-column":
        base["surface"] = 1.5
    elif case == "centre-ville":
        base["centre_ville"] = [True, False, False]
    elif case == "blank-nom":
        base["nom"] = ["  ", None, "OPAH"]
    elif case == "outside-france":
        base["geometry"] = base.geometry.translate(-2_000_000, 0)
    _gpkg(path, base, **({"layer": "perimetres"} if case == "two-layers" else {}))
    if case not in ("blank-nom",):
        assert perimeter_layer._plain_gpkg(path, projection.LAMBERT93) is None
    layer, fast_report, frame, full_report = _both(path)
    assert fast_report.problems == full_report.problems
    assert_geodataframe_equal(layer.frame(), frame)


def test_a_blank_name_is_the_id_as_the_full_reader_says(epinay, tmp_path):
    base = epinay["perims"][["id", "type", "nom", "geometry"]].copy()
    base["nom"] = ["  ", None, " OPAH "]
    path = _gpkg(tmp_path / "p.gpkg", base)
    assert perimeter_layer._plain_gpkg(path, projection.LAMBERT93) is not None
    layer, _, frame, _ = _both(path)
    assert layer.names == ["centre-ville", "gare", "OPAH"] == list(frame["nom"])


def test_an_odd_geopackage_blob_goes_to_gdal(epinay, tmp_path):
    """A geometry with the empty flag, or an envelope code out of range, is GDAL's to read."""
    path = _gpkg(tmp_path / "p.gpkg", epinay["perims"][["id", "type", "nom", "geometry"]], SPATIAL_INDEX="NO")
    assert perimeter_layer._plain_gpkg(path, projection.LAMBERT93) is not None
    with sqlite3.connect(path) as con:
        (blob,) = con.execute("SELECT geom FROM p WHERE fid = 2").fetchone()
        odd = blob[:3] + bytes([blob[3] | 0b1110]) + blob[4:]  # envelope code 7: not in the standard
        con.execute("UPDATE p SET geom = ? WHERE fid = 2", (odd,))
    assert perimeter_layer._plain_gpkg(path, projection.LAMBERT93) is None


def _geojson(path, gdf, *, crs_name="urn:ogc:def:crs:EPSG::2154", extra=None):
    """A GeoJSON FeatureCollection as QGIS writes it in Lambert-93 (a ``crs`` member)."""
    data = json.loads(gdf.to_json(drop_id=True))
    if crs_name is None:
        data.pop("crs", None)
    else:
        data["crs"] = {"type": "name", "properties": {"name": crs_name}}
    for feature in data["features"]:
        feature["properties"].update(extra or {})
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("crs_name", ["urn:ogc:def:crs:EPSG::2154", "EPSG:2154"])
def test_a_plain_geojson_in_lambert93_is_read_fast(epinay, tmp_path, crs_name):
    """A GeoJSON in Lambert-93 (other properties ignored, as the typed reader ignores them)."""
    base = epinay["perims"][["id", "type", "nom", "geometry"]]
    path = _geojson(tmp_path / "p.geojson", base, crs_name=crs_name, extra={"surface": 1.5, "x": [1]})
    assert perimeter_layer._plain_geojson(path, projection.LAMBERT93) is not None
    layer, fast_report, frame, full_report = _both(path)
    assert fast_report.problems == full_report.problems == []
    assert_geodataframe_equal(layer.frame(), frame)
    assert (shapely.to_wkb(layer.geoms) == shapely.to_wkb(frame.geometry.to_numpy())).all()


@pytest.mark.parametrize(
    "case", ["other-crs", "centre-ville", "integer-id", "bad-type", "not-json", "wgs84-outside", "3d"]
)
def test_other_geojson_files_are_read_by_the_full_reader(epinay, tmp_path, case):
    base = epinay["perims"][["id", "type", "nom", "geometry"]].copy()
    path = tmp_path / "p.geojson"
    if case == "wgs84-outside":  # Lambert-93 numbers in a file without crs member (so WGS 84)
        _geojson(path, base, crs_name=None)
    elif case == "3d":
        _geojson(path, base.assign(geometry=shapely.force_3d(base.geometry.to_numpy())))
    elif case == "other-crs":
        _geojson(path, base.to_crs(3949), crs_name="EPSG:3949")
    elif case == "centre-ville":
        _geojson(path, base, extra={"centre_ville": True})
    elif case == "integer-id":
        _geojson(path, base.assign(id=range(len(base))))
    elif case == "bad-type":
        _geojson(path, base.assign(type="sectuer"))
    else:
        path.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    assert perimeter_layer._plain_geojson(path, projection.LAMBERT93) is None
    layer, fast_report, frame, full_report = _both(path)
    assert fast_report.problems == full_report.problems
    assert_geodataframe_equal(layer.frame(), frame)


def test_perimeters_in_wgs84_are_reprojected_as_the_full_reader_does(epinay, tmp_path):
    """GeoJSON in WGS 84 (without crs member, as RFC 7946 says; with the URN of EPSG:4326; as
    GDAL writes it, OGC CRS84) and a GeoPackage in EPSG:4326: read without geopandas, and
    reprojected by pyproj to the same bits as the full reader's ``to_crs``."""
    base = epinay["perims"][["id", "type", "nom", "geometry"]].to_crs(4326)
    base.to_file(tmp_path / "gdal.geojson")
    paths = [
        tmp_path / "gdal.geojson",
        _geojson(tmp_path / "rfc.geojson", base, crs_name=None),
        _geojson(tmp_path / "urn.geojson", base, crs_name="urn:ogc:def:crs:EPSG::4326"),
        _gpkg(tmp_path / "p.gpkg", base),
    ]
    for path in paths:
        plain = perimeter_layer._plain_gpkg if path.suffix == ".gpkg" else perimeter_layer._plain_geojson
        assert plain(path, projection.LAMBERT93) is not None
        layer, fast_report, frame, full_report = _both(path)
        assert fast_report.problems == full_report.problems == []
        assert_geodataframe_equal(layer.frame(), frame)
        assert (shapely.to_wkb(layer.geoms) == shapely.to_wkb(frame.geometry.to_numpy())).all()


def test_lambert93_lonlat_without_pyproj_is_pyproj_s():
    rng = np.random.default_rng(26)
    x, y = rng.uniform(50_000, 1_300_000, 20_000), rng.uniform(6_000_000, 7_200_000, 20_000)
    lon, lat = projection.lambert93_to_lonlat(x, y)
    want = Transformer.from_crs("EPSG:2154", "EPSG:4326", always_xy=True).transform(x, y)
    assert np.abs(lon - want[0]).max() < 1e-9 and np.abs(lat - want[1]).max() < 1e-9


def test_plausible_lambert93_boxes_and_doubtful_ones():
    paris = np.array([[650_000.0, 6_860_000.0, 655_000.0, 6_865_000.0]])
    assert projection.plausible_in_lambert93(paris)
    assert not projection.plausible_in_lambert93(paris, code_insee="97411")  # Réunion: pyproj decides
    assert not projection.plausible_in_lambert93(paris - 2_000_000)
    assert not projection.plausible_in_lambert93(np.array([[1.0, 45.0, 2.0, 46.0]]))  # degrees
    assert not projection.plausible_in_lambert93(np.array([[np.nan, 1, 2, 3]]))
    # The check of an extent keeps its message where the box is doubtful.
    with pytest.raises(projection.CRSError, match="hors de la France métropolitaine"):
        projection.check_plausible_extent((50.0, 6_000_000.0, 60.0, 8_000_000.0), "EPSG:2154", source="x")


def test_a_geoparquet_crs_of_lambert93_is_read_without_pyproj():
    assert projection.crs_of_projjson(CRS.from_epsg(2154).to_json_dict()) == "EPSG:2154"
    other = CRS.from_epsg(3949).to_json_dict()
    assert projection.crs_of_projjson(other) == "EPSG:3949"
    changed = CRS.from_epsg(2154).to_json_dict()
    changed["conversion"]["parameters"][0]["value"] = 46.0  # not Lambert-93 any more, whatever its id
    assert not projection._is_lambert93_projjson(changed)


def test_a_layer_of_a_geodataframe_keeps_it(epinay):
    frame = epinay["perims"].rename(columns={"id": "perimeter_id"})
    layer = PerimeterLayer.of(frame)
    assert layer.frame() is frame and layer.ids == list(frame["perimeter_id"])
    assert layer.names == list(frame["nom"]) and PerimeterLayer.of(layer) is layer
    moved = layer.in_crs("EPSG:4326")
    assert moved.crs == CRS.from_epsg(4326) and moved.ids == layer.ids
    copy = layer.copy()
    assert copy.geoms[0] is not layer.geoms[0] and shapely.equals_exact(copy.geoms, layer.geoms, 0).all()


#: ``ort classify`` in a fresh interpreter, its modules listed once it is done (the command's
#: own code: only the exit differs, ``ort`` itself skips the interpreter's teardown).
_CLASSIFY = """
import json, sys
from geo.cli import main
try:
    main(sys.argv[1:], prog_name="ort", standalone_mode=False)
finally:
    print("MODULES", json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def _classify_in_a_fresh_process(parquet, perims, out) -> set[str]:
    """``ort classify`` as a user runs it, in a fresh process; the top-level modules it loaded."""
    args = ["classify", str(parquet), "--perimeters-file", str(perims), "-o", str(out)]
    done = subprocess.run(
        [sys.executable, "-c", _CLASSIFY, *args], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Résultat écrit" in done.stdout
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("MODULES ")]
    modules = set(json.loads(line.removeprefix("MODULES ")))
    assert {"geo", "pyarrow", "shapely"} <= modules  # (the listing works)
    return modules


@pytest.mark.parametrize("kind", ["gpkg", "geojson"])
def test_ort_classify_of_geoparquet_imports_no_pandas_and_writes_the_general_verdicts(epinay, tmp_path, kind):
    """A GeoPackage, or a GeoJSON in Lambert-93: the general path's verdicts, without pandas."""
    out = tmp_path / "verdicts"
    imported = _classify_in_a_fresh_process(epinay["parquet"], epinay[kind], out)
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["complete"] and manifest["parcels"] == len(
        epinay_parcels := pq.read_table(epinay["parquet"])
    )
    # The general path: the GeoDataFrame of read_perimeter_file, classified by the library.
    frame = perimeters.read_perimeter_file(
        epinay[kind], metric_crs=projection.LAMBERT93, report=ValidationReport("x")
    )
    scale.classify_dataset(epinay["parquet"], frame, tmp_path / "general", processes=False)
    key = ["idu", "perimeter_id"]
    got = scale.read_results(out).sort_values(key).reset_index(drop=True)
    want = scale.read_results(tmp_path / "general").sort_values(key).reset_index(drop=True)
    assert len(got) and set(got["status"]) == {"inside", "straddling"}
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert "91216000AC0100" in set(got.loc[got["status"] == "straddling", "idu"])  # cut by the OPAH-RU
    assert epinay_parcels.num_rows > 4000


def test_ort_classify_with_a_wgs84_geojson_imports_pyproj_alone(epinay, tmp_path):
    """The same perimeters in a WGS 84 GeoJSON (RFC 7946): reprojected by pyproj, nothing else
    heavy imported; the verdicts of the general path, and those of the Lambert-93 file to 1e-6."""
    geojson = tmp_path / "perimetres.geojson"
    epinay["perims"][["id", "type", "nom", "geometry"]].to_crs(4326).to_file(geojson)
    fast, l93 = tmp_path / "fast", tmp_path / "l93"
    imported = _classify_in_a_fresh_process(epinay["parquet"], geojson, fast)
    assert imported & set(HEAVY) == {"pyproj"}
    frame = perimeters.read_perimeter_file(
        geojson, metric_crs=projection.LAMBERT93, report=ValidationReport("x")
    )
    scale.classify_dataset(epinay["parquet"], frame, tmp_path / "general", processes=False)
    key = ["idu", "perimeter_id"]
    got = scale.read_results(fast).sort_values(key).reset_index(drop=True)
    want = scale.read_results(tmp_path / "general").sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    _classify_in_a_fresh_process(epinay["parquet"], epinay["gpkg"], l93)
    other = scale.read_results(l93).sort_values(key).reset_index(drop=True)
    assert list(got["idu"]) == list(other["idu"]) and list(got["status"]) == list(other["status"])
    assert np.allclose(got["share"], other["share"], rtol=0, atol=1e-6)  # (a WGS84 round trip)


_DEFERRED = """
import sys
import numpy as np
from geo._pyarrow import defer_pandas
defer_pandas()
import pyarrow as pa
import pyarrow.compute as pc
pc.equal(pa.array(np.arange(3)), pa.scalar(1, pa.int64()))
pa.table({"a": np.arange(3)}).column("a").take(pa.array(np.array([0, 2])))
print("before", "pandas" in sys.modules)
import pandas as pd
kind = pa.array(pd.Series(pd.Categorical(["a", "b", "a"]))).type  # (pyarrow's first look since)
df = pd.DataFrame({"x": [1.0, np.nan], "n": pd.array([1, None], dtype="Int64")})
back = pa.Table.from_pandas(df).to_pandas()
print("after", kind, back.equals(df), pa.array([pd.NA, 1.0], from_pandas=True).null_count)
"""


def test_pyarrow_waits_for_pandas_then_converts_it_as_always():
    """Deferred, pyarrow converts numpy and Arrow data without pandas; once Python code imports
    pandas, pyarrow converts pandas objects (categoricals, nullable integers, pd.NA) as always."""
    done = subprocess.run([sys.executable, "-c", _DEFERRED], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "before False" in done.stdout
    assert "after dictionary<values=large_string, indices=int8, ordered=0> True 1" in done.stdout
