"""``ort export --zlv``: a convention's perimeters at a date as Zéro Logement Vacant imports them.

ZLV reads a zipped shapefile with shpjs (which turns it into GeoJSON, so WGS84) and keeps
each feature's ``type`` and ``nom`` (its geoController); the zip is read back here with pyogrio.
"""

from __future__ import annotations

import zipfile

import pyogrio
import pytest
from click.testing import CliRunner

from geo import embedded
from geo.cli import main
from geo.export import ZLV_FIELDS, write_zlv_zip, zlv_perimeters
from geo.perimeters import read_convention


@pytest.fixture(scope="module")
def demo():
    return read_convention(embedded.convention_dir("demo"))


def test_zip_read_back_holds_type_nom_in_wgs84(demo, tmp_path):
    path = write_zlv_zip(zlv_perimeters(demo, "2024-09-01"), tmp_path / "zlv.zip")
    assert sorted(zipfile.ZipFile(path).namelist()) == [
        f"perimetres.{ext}" for ext in ("cpg", "dbf", "prj", "shp", "shx")
    ]
    back = pyogrio.read_dataframe(path)
    assert back.crs.to_epsg() == 4326
    assert list(back.columns[: len(ZLV_FIELDS)]) == list(ZLV_FIELDS)
    by_id = back.set_index("id")
    assert by_id.loc["centre-ville", "nom"] == "Centre-ville"
    assert by_id.loc["centre-ville", "type"] == "ORT - secteur d'intervention"
    assert by_id.loc["opah-ru-centre", "type"] == "OPAH-RU"
    assert set(back["version"]) == {"avenant-1"} and set(back["date_effet"]) == {"2024-07-01"}
    # the same shapes as the convention's, to the centimetre (areas in Lambert-93)
    expected = demo.perimeters("2024-09-01", in_force_only=True).set_index("perimeter_id")
    got = back.to_crs(2154).set_index("id")
    assert set(got.index) == set(expected.index)
    for pid in expected.index:
        assert got.geometry[pid].area == pytest.approx(expected.geometry[pid].area, rel=1e-6), pid
        assert got.geometry[pid].symmetric_difference(expected.geometry[pid]).area < 1.0, pid
    faubourg = got.geometry["faubourg"]
    assert faubourg.geom_type == "MultiPolygon" and any(p.interiors for p in faubourg.geoms)  # hole kept
    assert "Quartier de la gare" in set(back["nom"])  # accents survive (UTF-8, .cpg)


def test_the_date_chooses_the_version(demo, tmp_path):
    before = pyogrio.read_dataframe(write_zlv_zip(zlv_perimeters(demo, "2023-06-01"), tmp_path / "a.zip"))
    after = pyogrio.read_dataframe(write_zlv_zip(zlv_perimeters(demo, "2024-09-01"), tmp_path / "b.zip"))
    assert set(before["version"]) == {"initiale"}
    assert "opah-ru-centre" not in set(before["id"])  # not yet in force in June 2023
    gare = [f.to_crs(2154).set_index("id").area["gare"] for f in (before, after)]
    assert gare[1] > 1.5 * gare[0]  # the avenant enlarged the gare sector


def test_same_perimeters_same_bytes_and_no_overwrite(demo, tmp_path):
    export = zlv_perimeters(demo, "2024-09-01")
    a = write_zlv_zip(export, tmp_path / "a.zip").read_bytes()
    b = write_zlv_zip(export, tmp_path / "b.zip").read_bytes()
    assert a == b
    with pytest.raises(Exception, match="existe déjà"):
        write_zlv_zip(export, tmp_path / "a.zip")
    with pytest.raises(Exception, match=r"\.zip"):
        write_zlv_zip(export, tmp_path / "a.shp")


def test_cli(tmp_path):
    runner = CliRunner()
    out = tmp_path / "zlv.zip"
    done = runner.invoke(main, ["export", "--zlv", "-p", "demo", "--date", "2024-09-01", "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert "Centre-ville (ORT - secteur d'intervention)" in done.output and out.is_file()
    no_format = runner.invoke(main, ["export", "-p", "demo", "-o", str(tmp_path / "x.zip")])
    assert no_format.exit_code == 1 and "--zlv" in no_format.output and not (tmp_path / "x.zip").exists()
    too_early = runner.invoke(
        main, ["export", "--zlv", "-p", "demo", "--date", "2020-01-01", "-o", str(tmp_path / "y.zip")]
    )
    assert too_early.exit_code == 1 and "Traceback" not in too_early.output
    assert not (tmp_path / "y.zip").exists()
