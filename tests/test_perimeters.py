"""Conventions as files: metadata, versions by avenant, geometry, and their validation."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import Point, box, mapping

from geo.errors import InputError, PerimeterError, ValidationFailed
from geo.perimeters import ORT_ID, perimeter_from_parcels, perimeters_to_geojson, read_convention
from geo.validate import validate_convention

L93 = "EPSG:2154"
X0, Y0 = 700_000.0, 7_040_000.0


def _b(x1, y1, x2, y2):
    return box(X0 + x1, Y0 + y1, X0 + x2, Y0 + y2)


def _features(*specs):
    """specs: (id, type, nom, centre_ville, Lambert-93 geometry, extra props)."""
    gdf = gpd.GeoDataFrame(
        [
            {"id": s[0], "type": s[1], "nom": s[2], "centre_ville": s[3], **(s[5] if len(s) > 5 else {})}
            for s in specs
        ],
        geometry=[s[4] for s in specs],
        crs=L93,
    )
    return perimeters_to_geojson(gdf)


TOML = """\
nom = "ORT de Testville"
programme = "PVD"
communes = ["62907"]
date_signature = 2023-01-18
duree_ans = 5

[[versions]]
id = "initiale"
libelle = "Convention initiale"
date_effet = 2023-01-18
fichier = "v1.geojson"

[[versions]]
id = "avenant-1"
libelle = "Avenant n°1"
date_effet = 2024-07-01
fichier = "v2.geojson"
"""


def _write(folder: Path, toml: str = TOML, v1: str | None = None, v2: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "convention.toml").write_text(toml, encoding="utf-8")
    cv = ("centre-ville", "secteur", "Centre-ville", True, _b(0, 0, 100, 100))
    gare = ("gare", "secteur", "Gare", False, _b(200, 0, 300, 100))
    opah = (
        "opah",
        "opah_ru",
        "OPAH-RU",
        False,
        _b(10, 10, 60, 60),
        {"date_debut": "2024-01-01", "date_fin": "2028-12-31"},
    )
    (folder / "v1.geojson").write_text(v1 if v1 is not None else _features(cv, gare, opah), encoding="utf-8")
    big_gare = ("gare", "secteur", "Gare", False, _b(200, 0, 400, 100))
    (folder / "v2.geojson").write_text(
        v2 if v2 is not None else _features(cv, big_gare, opah), encoding="utf-8"
    )
    return folder


@pytest.fixture
def conv_dir(tmp_path):
    return _write(tmp_path / "testville")


def test_versions_by_date(conv_dir):
    conv = read_convention(conv_dir)
    assert conv.communes == ("62907",)
    assert conv.metric_crs == "EPSG:2154"
    assert conv.date_fin == dt.date(2028, 1, 18)
    assert conv.version_at("2023-01-18").id == "initiale"
    assert conv.version_at("2024-06-30").id == "initiale"
    assert conv.version_at("2024-07-01").id == "avenant-1"
    with pytest.raises(PerimeterError, match="aucune version des périmètres n'est en vigueur le 17/01/2023"):
        conv.version_at("2023-01-17")


def test_perimeters_in_force(conv_dir):
    conv = read_convention(conv_dir)
    before = conv.perimeters("2023-06-01")
    after = conv.perimeters("2024-08-01")
    assert before.crs == "EPSG:2154"
    assert list(before["perimeter_id"]) == ["centre-ville", "gare", "opah", ORT_ID]
    gare = lambda g: g.set_index("perimeter_id").geometry["gare"].area  # noqa: E731
    assert gare(before) == pytest.approx(10_000, rel=1e-4)  # round trip through WGS84 7 decimals
    assert gare(after) == pytest.approx(20_000, rel=1e-4)
    assert after.attrs["version"] == "avenant-1" and after.attrs["version_date"] == "2024-07-01"
    # the ORT row is the union of the sectors
    ort = after.set_index("perimeter_id").geometry[ORT_ID]
    assert ort.area == pytest.approx(30_000, rel=1e-4)
    # OPAH-RU not yet in force in 2023 (its own period starts 2024-01-01)
    assert not before.set_index("perimeter_id").loc["opah", "en_vigueur"]
    assert "opah" not in set(conv.perimeters("2023-06-01", in_force_only=True)["perimeter_id"])
    assert "opah" in set(conv.perimeters("2024-06-01", in_force_only=True)["perimeter_id"])


def test_lambert93_geojson_with_crs_member(tmp_path):
    """A GeoJSON written in Lambert-93 with its crs member is read as such."""
    gdf = gpd.GeoDataFrame(
        {"id": ["cv"], "type": ["secteur"], "nom": ["CV"], "centre_ville": [True]},
        geometry=[_b(0, 0, 100, 100)],
        crs=L93,
    )
    folder = tmp_path / "l93"
    _write(folder)
    gdf.to_file(folder / "v1.geojson", driver="GeoJSON")
    assert '"crs"' in (folder / "v1.geojson").read_text()
    per = read_convention(folder).perimeters("2023-02-01")
    assert per.set_index("perimeter_id").geometry["cv"].area == pytest.approx(10_000)


def test_lambert93_numbers_read_as_degrees(tmp_path):
    """Lambert-93 coordinates in a GeoJSON without crs member (so WGS84): refused with the fix."""
    feat = {
        "type": "Feature",
        "properties": {"id": "cv", "type": "secteur", "nom": "CV", "centre_ville": True},
        "geometry": mapping(_b(0, 0, 100, 100)),
    }
    text = json.dumps({"type": "FeatureCollection", "features": [feat]})
    folder = _write(tmp_path / "bad", v1=text)
    report = validate_convention(folder)
    crs = [p for p in report.errors if p.code == "crs"]
    assert crs and "mètres Lambert-93" in crs[0].message and "EPSG:2154" in crs[0].message
    with pytest.raises(ValidationFailed, match="Lambert-93"):
        read_convention(folder).perimeters("2023-02-01")


def test_swapped_axes(tmp_path):
    feat = {
        "type": "Feature",
        "properties": {"id": "cv", "type": "secteur", "nom": "CV", "centre_ville": True},
        "geometry": mapping(box(50.48, 2.99, 50.49, 3.0)),
    }
    folder = _write(tmp_path / "swap", v1=json.dumps({"type": "FeatureCollection", "features": [feat]}))
    assert any("inversées" in p.message for p in validate_convention(folder).errors)


def test_gpkg_without_crs(tmp_path):
    folder = _write(tmp_path / "gpkg", toml=TOML.replace("v1.geojson", "v1.gpkg"))
    gdf = gpd.GeoDataFrame(
        {"id": ["cv"], "type": ["secteur"], "nom": ["CV"], "centre_ville": [True]},
        geometry=[_b(0, 0, 100, 100)],
        crs=L93,
    )
    gdf.to_file(folder / "v1.gpkg", driver="GPKG")
    assert validate_convention(folder).ok
    with sqlite3.connect(folder / "v1.gpkg") as db:  # strip the SRS as a careless export would
        db.execute("UPDATE gpkg_geometry_columns SET srs_id = 0")
        db.execute("UPDATE gpkg_contents SET srs_id = 0")
    report = validate_convention(folder)
    assert "missing-crs" in report.codes()


def test_validation_reports_everything_at_once(tmp_path):
    """One file with many problems: each is reported, naming its feature."""
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[3.0, 50.0], [3.01, 50.01], [3.01, 50.0], [3.0, 50.01], [3.0, 50.0]]],
    }
    feats = [
        {
            "type": "Feature",
            "properties": {"id": "a", "type": "secteur", "nom": "A", "centre_ville": False},
            "geometry": mapping(box(3.0, 50.0, 3.002, 50.002)),
        },
        {
            "type": "Feature",
            "properties": {"id": "b", "type": "secteur", "nom": "B", "centre_ville": False},
            "geometry": mapping(box(3.001, 50.001, 3.003, 50.003)),
        },
        {"type": "Feature", "properties": {"id": "c", "type": "zone", "nom": "C"}, "geometry": bowtie},
        {
            "type": "Feature",
            "properties": {"id": "d", "type": "secteur"},
            "geometry": {"type": "Point", "coordinates": [3, 50]},
        },
        {
            "type": "Feature",
            "properties": {"id": "e", "type": "opah_ru", "nom": "E", "commune": "59350"},
            "geometry": mapping(box(3.01, 50.0, 3.012, 50.002)),
        },
        {"type": "Feature", "properties": {"id": "a", "type": "autre", "nom": "A bis"}, "geometry": None},
    ]
    folder = _write(tmp_path / "many", v1=json.dumps({"type": "FeatureCollection", "features": feats}))
    report = validate_convention(folder)
    codes = report.codes()
    for code in (
        "no-centre-ville",
        "overlapping-sectors",
        "invalid-geometry",
        "bad-type",
        "geometry-type",
        "duplicate-id",
        "empty-geometry",
        "opah-ru-outside-ort",
        "foreign-commune",
    ):
        assert code in codes, f"{code} not reported: {report}"
    assert any(p.feature == "id=d" and p.code == "geometry-type" for p in report.problems)
    assert any(p.code == "opah-ru-outside-ort" and p.severity == "warning" for p in report.problems)
    assert not report.ok


def test_metadata_problems(tmp_path):
    toml = (
        TOML.replace('communes = ["62907"]', "communes = [1004]")
        .replace("date_effet = 2024-07-01", "date_effet = 2022-07-01")
        .replace('programme = "PVD"', 'programme = "XYZ"')
    )
    report = validate_convention(_write(tmp_path / "meta", toml=toml))
    messages = str(report)
    assert "insee-as-number" in report.codes() and '"01004"' in messages
    assert "bad-programme" in report.codes()
    assert "version-dates" in report.codes() and "est avant la signature (2023-01-18)" in messages
    with pytest.raises(ValidationFailed):
        read_convention(tmp_path / "meta")


def test_missing_things(tmp_path):
    with pytest.raises(FileNotFoundError, match="dossier de convention introuvable") as err:
        read_convention(tmp_path / "nope")
    assert isinstance(err.value, InputError)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="pas de convention.toml dans le dossier"):
        read_convention(tmp_path / "empty")
    folder = _write(tmp_path / "nofeat", v1='{"type": "FeatureCollection", "features": []}')
    assert "empty-layer" in validate_convention(folder).codes()
    folder = _write(tmp_path / "badjson", v1='{"type": "FeatureCollection", "features": [')
    assert "invalid-json" in validate_convention(folder).codes()
    (folder / "v2.geojson").unlink()
    assert "missing-file" in validate_convention(folder).codes()
    bad = _write(tmp_path / "badtoml", toml="nom = ")
    with pytest.raises(InputError, match="TOML invalide : valeur illisible.*en fin de fichier — corrigez"):
        read_convention(bad)


def test_path_like_fichier_is_refused(tmp_path):
    folder = _write(
        tmp_path / "evil", toml=TOML.replace('fichier = "v1.geojson"', 'fichier = "../../etc/passwd"')
    )
    report = validate_convention(folder)
    assert "bad-path" in report.codes()


def test_parcels_cut_and_communes(tmp_path, conv_dir):
    parcels = gpd.GeoDataFrame(
        {"idu": ["62907000AB0001", "62907000AB0002"]},
        geometry=[_b(90, 10, 110, 20), _b(10, 70, 20, 80)],
        crs=L93,
    )
    communes = gpd.GeoDataFrame({"code_insee": ["62907"]}, geometry=[_b(-10, -10, 250, 110)], crs=L93)
    report = validate_convention(conv_dir, parcels=parcels, communes=communes)
    cut = [p for p in report.problems if p.code == "parcels-cut"]
    assert cut and "62907000AB0001 (50\u00a0%)" in cut[0].message
    outside = [p for p in report.problems if p.code == "outside-communes"]
    assert outside and outside[0].feature == "id=gare"  # v2's gare reaches x=400
    assert report.errors


def test_perimeter_from_parcels():
    parcels = gpd.GeoDataFrame(
        {"idu": ["62907000AB0001", "62907000AB0002", "62907000AB0003"]},
        geometry=[_b(0, 0, 10, 10), _b(10, 0, 20, 10), _b(50, 50, 60, 60)],
        crs=L93,
    )
    per = perimeter_from_parcels(
        parcels, ["62907000AB0001", "62907000AB0002"], perimeter_id="ilot", nom="Îlot"
    )
    geom = per.geometry.iloc[0]
    assert geom.geom_type == "Polygon" and geom.area == pytest.approx(200, rel=1e-6)
    assert geom.contains(Point(X0 + 10, Y0 + 5))  # no hairline gap along the shared edge
    from geo.errors import ParcelIdError

    with pytest.raises(ParcelIdError, match="62907000AB0009"):
        perimeter_from_parcels(parcels, ["62907000AB0009"], perimeter_id="x", nom="X")
    text = perimeters_to_geojson(per)
    assert '"nom":"Îlot"' in text and text == perimeters_to_geojson(per)


def test_libercourt_convention_without_digitised_perimeters():
    """The real Libercourt convention: signed 2023-01-18 for 5 years, sectors not published as maps."""
    from geo.perimeters import read_convention
    from geo.validate import validate_convention

    folder = Path(__file__).resolve().parent.parent / "perimeters" / "libercourt"
    conv = read_convention(folder)
    assert tuple(conv.communes) == ("62907",) and conv.programme == "PVD" and not conv.fictif
    assert conv.date_signature.isoformat() == "2023-01-18" and conv.date_fin.isoformat() == "2028-01-18"
    report = validate_convention(folder)
    assert report.ok and report.codes() == {"no-version"}
    with pytest.raises(PerimeterError, match="pas encore de périmètre numérisé"):
        conv.perimeters("2024-01-01")
