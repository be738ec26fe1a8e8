"""Bad inputs that used to give a misleading answer or exhaust resources.

Duplicated ids (cadastre, id file), conventions `ort validate` rejects, expired conventions in
machine outputs, unusable tolerances, one swapped feature among good ones, many versions,
overseas CRSs, text encodings, header-only files, terminal escapes, decompression bombs.
Everything is generated in code from the embedded demo.
"""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner

from geo import projection, settings
from geo.cli import main
from geo.errors import CRSError, InputError
from geo.sources.tables import decode_text, gunzip

REPO = Path(__file__).resolve().parent.parent


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def _features(folder: Path, version: str = "avenant-1") -> tuple[Path, dict]:
    path = folder / f"perimetres-{version}.geojson"
    return path, json.loads(path.read_text(encoding="utf-8"))


def _shift_feature(folder: Path, pid: str, dx: float, dy: float) -> None:
    for version in ("initiale", "avenant-1"):
        path, data = _features(folder, version)
        for feat in data["features"]:
            if feat["properties"]["id"] == pid:
                geom = shapely.affinity.translate(shapely.geometry.shape(feat["geometry"]), dx, dy)
                feat["geometry"] = shapely.geometry.mapping(geom)
        path.write_text(json.dumps(data), encoding="utf-8")


# --- duplicated ids --------------------------------------------------------------------------


def test_parcel_duplicated_in_the_cadastre_is_refused(demo_copy):
    layer = demo_copy.parent.parent / "data" / "demo" / "cadastre-62999-parcelles.json.gz"
    data = json.loads(gzip.decompress(layer.read_bytes()))
    twin = next(f for f in data["features"] if f["properties"]["id"] == "62999000AB0012")
    far = dict(twin, geometry=shapely.geometry.mapping(shapely.geometry.box(2.0, 50.0, 2.0001, 50.0001)))
    data["features"].append(far)  # same id, somewhere else: one copy inside, one outside
    layer.write_bytes(gzip.compress(json.dumps(data).encode()))
    r = run("check", "62999000AB0012", "--perimeters", demo_copy, "--date", "2024-09-01", "--json")
    # the CLI says the reader's warning as its own line (pytest.warns sees nothing of it)
    assert "Avertissement : " in r.output and "partagent un IDU" in r.output
    assert r.exit_code == 1, r.output
    assert "62999000AB0012" in r.output and "plusieurs fois dans le cadastre" in r.output


def test_duplicate_ids_in_check_file_keep_every_row(demo_copy, tmp_path):
    ids = tmp_path / "ids.csv"
    ids.write_text(
        "idu;commentaire;proprietaire\n"
        "62999000AB0012;première ligne;Mme A\n"
        "62999000AB0013;autre;M. B\n"
        "62999000AB0012;deuxième ligne;M. C\n",
        encoding="utf-8",
    )
    out = tmp_path / "r.csv"
    r = run("check", "--file", ids, "--perimeters", demo_copy, "--date", "2024-09-01", "-o", out)
    assert r.exit_code == 0, r.output
    assert "62999000AB0012 figure sur les lignes 2, 4" in r.output
    table = pd.read_csv(out, sep=None, engine="python", dtype=str, encoding="utf-8-sig")
    id_col = next(c for c in table.columns if "IDU" in c or c == "idu")
    mine = table[table[id_col] == "62999000AB0012"]
    assert set(mine["commentaire"]) == {"première ligne", "deuxième ligne"}
    assert set(mine["proprietaire"]) == {"Mme A", "M. C"}


# --- the checks of ort validate, before answering -------------------------------------------


def test_check_warns_about_a_perimeter_far_from_the_commune(demo_copy):
    _shift_feature(demo_copy, "gare", 0.0, -2.3)  # about 254 km south
    r = run("check", "62999000AB0012", "--perimeters", demo_copy, "--date", "2024-09-01")
    assert r.exit_code == 0
    assert "far-from-parcels [id=gare]" in r.output and "km des parcelles" in r.output
    r = run("check", "62999000AB0012", "--perimeters", demo_copy, "--date", "2024-09-01", "--json")
    out = json.loads(r.stdout)  # warnings in the JSON, nothing else on the terminal
    assert any("far-from-parcels" in w for w in out["avertissements"])


def test_check_warns_about_overlapping_sectors(demo_copy):
    path, data = _features(demo_copy)
    cv = next(f for f in data["features"] if f["properties"]["id"] == "centre-ville")
    copy = json.loads(json.dumps(cv))
    copy["properties"].update(id="doublon", nom="Doublon")
    data["features"].append(copy)
    path.write_text(json.dumps(data), encoding="utf-8")
    assert run("validate", demo_copy).exit_code == 1
    r = run("check", "62999000AB0012", "--perimeters", demo_copy, "--date", "2024-09-01")
    assert r.exit_code == 0 and "overlapping-sectors" in r.output and "Avertissement" in r.output


# --- validity of what the answer rests on ------------------------------------------------------


def test_expired_convention_says_so_in_json_and_csv(demo_copy, tmp_path):
    out = tmp_path / "r.csv"
    r = run("check", "62999000AB0012", "-p", demo_copy, "--date", "2099-01-01", "--json", "-o", out)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["validite"]["convention_en_vigueur"] is False
    assert data["validite"]["convention_date_fin"] == "2028-03-15"
    assert data["validite"]["version"] == "avenant-1"
    assert any("a pris fin" in w for w in data["avertissements"])
    table = pd.read_csv(out, sep=None, engine="python", dtype=str, encoding="utf-8-sig")
    assert set(table["convention_en_vigueur"]) == {"non"} and set(table["convention_date_fin"]) == {
        "2028-03-15"
    }


def test_validity_in_force(demo_copy):
    r = run("check", "62999000AB0012", "-p", demo_copy, "--date", "2024-01-01", "--json")
    data = json.loads(r.stdout)
    assert data["validite"]["convention_en_vigueur"] is True
    assert data["validite"]["version"] == "initiale" and data["validite"]["version_date_fin"] == "2024-06-30"


# --- tolerances --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "-inf"])
def test_unusable_tolerance_refused(demo_copy, value):
    r = run("check", "62999000AB0012", "-p", demo_copy, "--tolerance-m2", value)
    assert r.exit_code == 2 and "tolérance utilisable" in r.output, r.output


def test_classify_refuses_infinite_tolerance_from_python(demo_copy):
    from geo.classify import classify_parcels
    from geo.perimeters import read_convention
    from geo.sources.cadastre import read_parcels

    conv = read_convention(demo_copy)
    parcels = read_parcels(demo_copy.parent.parent / "data" / "demo" / "cadastre-62999-parcelles.json.gz")
    for bad in (float("inf"), float("nan")):
        with pytest.raises(InputError, match="tolerances"):
            classify_parcels(parcels.head(5), conv.perimeters("2024-09-01"), tolerance_m2=bad)


# --- coordinates, feature by feature -----------------------------------------------------------


def _points(*xy, crs="EPSG:4326"):
    return gpd.GeoDataFrame(
        {"site_id": [f"s{i}" for i in range(len(xy))]}, geometry=[shapely.Point(p) for p in xy], crs=crs
    )


def test_one_swapped_feature_among_good_ones_is_named():
    good = [(2.95 + i / 1000, 50.48) for i in range(20)]
    with pytest.raises(CRSError, match="inversées") as err:
        projection.check_plausible(_points(*good, (50.48, 2.96)), source="f.geojson")
    assert err.value.feature == "site_id=s20"


def test_one_feature_in_degrees_among_lambert_metres():
    good = [(700_000 + i, 7_000_000) for i in range(10)]
    with pytest.raises(CRSError, match="ressemblent à des degrés") as err:
        projection.check_plausible(_points(*good, (2.95, 50.48), crs="EPSG:2154"), source="f.gpkg")
    assert err.value.feature == "site_id=s10"


def test_one_feature_in_metres_among_degrees():
    good = [(2.95, 50.48)] * 5
    with pytest.raises(CRSError, match="mètres Lambert-93") as err:
        projection.check_plausible(_points(*good, (700_000, 7_000_000)), source="f.geojson")
    assert err.value.feature == "site_id=s5"


def test_friches_file_with_one_swapped_site(tmp_path):
    from geo.places.friches import read_friches

    feats = [
        {
            "type": "Feature",
            "properties": {
                "site_id": f"62907_{i}",
                "site_statut": "friche sans projet",
                "comm_insee": "62907",
            },
            "geometry": {"type": "Point", "coordinates": [3.01 + i / 1000, 50.48]},
        }
        for i in range(5)
    ]
    feats[3]["geometry"]["coordinates"] = [50.48, 3.013]
    path = tmp_path / "friches.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}), encoding="utf-8")
    with pytest.raises(CRSError, match="inversées") as err:
        read_friches(path)
    assert "62907_3" in str(err.value)


# --- many versions -------------------------------------------------------------------------------


def _many_versions(folder: Path, n: int) -> None:
    toml = folder / "convention.toml"
    text = toml.read_text(encoding="utf-8")
    head = text[: text.index("[[versions]]")].replace("duree_ans = 5", "duree_ans = 99")
    head = head.replace("date_signature = 2023-03-15", "date_signature = 1900-01-01")
    day = pd.Timestamp("1900-01-01")
    parts = [head]
    for i in range(n):
        d = (day + pd.Timedelta(days=i)).date().isoformat()
        parts.append(
            f'\n[[versions]]\nid = "v{i}"\ndate_effet = {d}\nfichier = "perimetres-initiale.geojson"\n'
        )
    toml.write_text("".join(parts), encoding="utf-8")


def test_validate_1000_versions_reads_the_shared_file_once(demo_copy):
    _many_versions(demo_copy, 1000)
    start = time.perf_counter()
    r = run("validate", demo_copy)
    assert time.perf_counter() - start < 10, "validate must be linear in the number of versions"
    assert r.exit_code == 0, r.output


def test_validate_bounds_the_number_of_versions(demo_copy):
    _many_versions(demo_copy, 5_000)  # under the size limit of convention.toml, over MAX_VERSIONS
    start = time.perf_counter()
    r = run("validate", demo_copy)
    assert time.perf_counter() - start < 30
    assert r.exit_code == 1 and "too-many-versions" in r.output


def test_validate_100000_versions_refused_quickly(demo_copy):
    _many_versions(demo_copy, 100_000)
    start = time.perf_counter()
    r = run("validate", demo_copy)
    assert time.perf_counter() - start < 30 and r.exit_code == 1, r.output


# --- overseas ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "epsg"),
    [("97502", "EPSG:4467"), ("97701", "EPSG:5490"), ("97801", "EPSG:5490"), ("97411", "EPSG:2975")],
)
def test_overseas_metric_crs(code, epsg):
    assert projection.metric_crs_for(code) == epsg
    from pyproj import CRS

    lon0, lat0, lon1, lat1 = projection.lonlat_extent(code)
    area = CRS.from_user_input(epsg).area_of_use
    assert area.west <= lon0 and lon1 <= area.east and area.south <= lat0 and lat1 <= area.north


def test_saint_barthelemy_area_is_true():
    """A 1 km square at Saint-Barthélemy: 1 km² in its metric CRS (Lambert-93 gave +25 %)."""
    square = gpd.GeoSeries([shapely.box(-62.85, 17.9, -62.85 + 0.009446, 17.9 + 0.009043)], crs="EPSG:4326")
    area = square.to_crs(projection.metric_crs_for("97701")).area.iloc[0]
    assert area == pytest.approx(1_000_000, rel=0.01)


def test_pacific_collectivities_refused():
    with pytest.raises(CRSError, match="Pacifique"):
        projection.metric_crs_for("98735")


# --- encodings, header-only files --------------------------------------------------------------


def test_windows_1252_text_keeps_its_euro_dashes_and_quotes():
    text = "Coût : 12 000 € – « rénovation » ’OK’ œuvre"
    decoded, fallback = decode_text(text.encode("cp1252"))
    assert decoded == text and fallback == "Windows-1252"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_id_file_is_read(demo_copy, tmp_path, encoding):
    ids = tmp_path / "ids.csv"
    ids.write_bytes("idu;commentaire\n62999000AB0012;é€\n".encode(encoding))
    r = run("check", "--file", ids, "-p", demo_copy, "--date", "2024-09-01", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["parcelles"][0]["idu"] == "62999000AB0012"


def test_header_only_id_file_is_an_error(demo_copy, tmp_path):
    ids = tmp_path / "ids.csv"
    ids.write_text("idu;commentaire\n", encoding="utf-8")
    r = run("check", "--file", ids, "-p", demo_copy, "--date", "2024-09-01")
    assert r.exit_code == 1 and "aucun identifiant" in r.output and "ids.csv" in r.output


def test_header_only_housing_file_is_an_error(demo_copy, tmp_path):
    hs = tmp_path / "logements.csv"
    hs.write_text("site_id;bailleur;logements;code_insee;adresse\n", encoding="utf-8")
    r = run("logements", hs, "-p", demo_copy, "--date", "2024-09-01")
    assert r.exit_code == 1 and "aucune ligne de données" in r.output


# --- terminal escapes ------------------------------------------------------------------------------


def test_terminal_escapes_in_names_never_reach_the_terminal(demo_copy):
    toml = demo_copy / "convention.toml"
    text = toml.read_text(encoding="utf-8").replace(
        'nom = "ORT d\'Ormeval-sur-Mer (démonstration)"',
        'nom = "ORT \\u001b[31mROUGE\\u001b]0;titre\\u0007 \\u009b2J fin"',
    )
    toml.write_text(text, encoding="utf-8")
    r = CliRunner().invoke(
        main, ["check", "62999000AB0012", "-p", str(demo_copy), "--date", "2024-09-01"], color=True
    )
    assert r.exit_code == 0, r.output
    assert "ROUGE" in r.output and "fin" in r.output
    assert not any(ch in r.output for ch in "\x1b\x07\x9b")


# --- decompression bombs -----------------------------------------------------------------------------


def _bomb(path: Path, size: int) -> None:
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(b"site_id;bailleur;logements;code_insee;adresse\n")
        block = b"x" * (1 << 20)
        for _ in range(size >> 20):
            f.write(block)


def test_gzip_bomb_refused_while_streaming(tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "max_table_bytes", 8 * 2**20)
    bomb = tmp_path / "logements.csv.gz"
    _bomb(bomb, 64 * 2**20)
    assert bomb.stat().st_size < 200_000
    with pytest.raises(ValueError, match="plus de 8 Mo"):
        gunzip(bomb.read_bytes())
    r = run("logements", bomb, "-p", "demo", "--date", "2024-09-01")
    assert r.exit_code == 1 and "plus de 8 Mo" in r.output, r.output


def test_oversized_plain_table_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "max_table_bytes", 2**20)
    big = tmp_path / "ids.csv"
    big.write_bytes(b"idu\n" + b"62999000AB0012\n" * 100_000)
    from geo.check import read_id_table

    with pytest.raises(InputError, match="limite"):
        read_id_table(big)
