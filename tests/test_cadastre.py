"""Reading the real Etalab cadastre, in every format, and downloading it through the cache.

The downloader is tested against a local HTTP server on 127.0.0.1 that serves the real files
of ../shared/data/cadastre-etalab-sample, gzipped in the test, at the official URL layout.
"""

from __future__ import annotations

import gzip
import http.server
import shutil
import threading
import warnings
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from geo import settings
from geo.errors import CRSError, DownloadError, InputError, OrtWarning
from geo.sources.cadastre import (
    PARCEL_COLUMNS,
    cadastre_url,
    fetch_layer,
    find_layer_file,
    load_cadastre,
    read_layer,
    read_parcels,
)

MILLESIME = "2022-01-01"


# --- reading ------------------------------------------------------------------------------------


def test_real_parcels_areas_match_contenance(epinay_parcelles):
    """Proof the CRS handling is right: areas in EPSG:2154 agree with the DGFiP contenance."""
    parcels = read_parcels(epinay_parcelles)
    assert len(parcels) == 4241
    assert parcels.crs.to_epsg() == 2154
    assert list(parcels.columns) == [*PARCEL_COLUMNS, "geometry"]
    ratio = (parcels.area / parcels["contenance"] - 1).abs().dropna()
    assert ratio.median() < 0.05
    assert (ratio < 0.10).mean() > 0.9
    assert parcels["contenance"].isna().sum() == 1  # one parcel has no contenance in the source
    first = parcels[parcels["idu"] == "91216000AB0037"].iloc[0]
    assert (first.code_insee, first.prefixe, first.section, first.numero) == ("91216", "000", "AB", "0037")
    assert parcels["idu"].str.len().eq(14).all() and parcels["idu"].is_unique
    assert "15/12/2021" in parcels.attrs["millesime"]


def test_single_letter_sections_are_padded(saint_marcel_dir):
    parcels = read_parcels(saint_marcel_dir / "cadastre-73253-parcelles.json")
    assert len(parcels) == 7425
    assert set(parcels["section"]) >= {"0A", "0B"}
    assert (parcels["idu"].str[8:10] == parcels["section"]).all()
    sections = read_layer(saint_marcel_dir / "cadastre-73253-sections.json")
    assert len(sections) == 9 and set(sections["section_id"].str.len()) == {10}
    assert sections.crs.to_epsg() == 2154
    # Every parcel lies in the section its id names (centroids, with a 1 m tolerance).
    points = parcels[["section"]].set_geometry(parcels.representative_point())
    joined = gpd.sjoin(points, sections[["section", "geometry"]], predicate="within")
    assert (joined["section_left"] == joined["section_right"]).mean() > 0.99


def test_same_parcels_with_fiona_engine(epinay_parcelles):
    a = read_parcels(epinay_parcelles)
    b = read_parcels(epinay_parcelles, engine="fiona")
    assert a["idu"].tolist() == b["idu"].tolist()
    assert np.allclose(a.area.to_numpy(), b.area.to_numpy())


@pytest.fixture(scope="module")
def epinay_small(tmp_path_factory, epinay_parcelles) -> gpd.GeoDataFrame:
    return gpd.read_file(epinay_parcelles).iloc[:200]


def test_formats_gz_gpkg_zipped_shapefile(tmp_path, epinay_parcelles, epinay_small):
    reference = read_parcels(epinay_parcelles).iloc[:200]
    gz = tmp_path / "cadastre-91216-parcelles.json.gz"
    gz.write_bytes(gzip.compress(epinay_parcelles.read_bytes()))
    gpkg = tmp_path / "parcelles.gpkg"
    epinay_small.to_crs(2154).to_file(gpkg, layer="parcelles")
    shp_dir = tmp_path / "shp"
    shp_dir.mkdir()
    epinay_small.to_crs(2154).to_file(shp_dir / "parcelles.shp")
    zipped = tmp_path / "parcelles.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        for f in shp_dir.iterdir():
            z.write(f, f.name)
    assert len(read_parcels(gz)) == 4241
    for path in (gpkg, zipped):
        layer = read_parcels(path)
        assert layer["idu"].tolist() == reference["idu"].tolist()
        assert np.allclose(layer.area.to_numpy(), reference.area.to_numpy(), rtol=1e-6)
    both = read_parcels([gpkg, gz])
    assert len(both) == 4441


def test_missing_crs_and_wrong_crs_refused(tmp_path, epinay_small):
    shp_dir = tmp_path / "noprj"
    shp_dir.mkdir()
    epinay_small.to_crs(2154).to_file(shp_dir / "p.shp")
    (shp_dir / "p.prj").unlink()
    with pytest.raises(CRSError, match="pas de système de coordonnées"):
        read_parcels(shp_dir / "p.shp")
    assert len(read_layer(shp_dir / "p.shp", crs="EPSG:2154")) == 200
    # Lambert-93 numbers in a GeoJSON (which declares WGS84 by default).
    lying = tmp_path / "cadastre-91216-parcelles.json"
    epinay_small.to_crs(2154).set_crs(4326, allow_override=True).to_file(lying, driver="GeoJSON")
    with pytest.raises(CRSError, match="mètres Lambert-93"):
        read_parcels(lying)


def test_invalid_geometry_refused_or_fixed(tmp_path, epinay_small):
    bowtie = gpd.GeoSeries.from_wkt(["POLYGON ((2.3 48.6, 2.31 48.61, 2.31 48.6, 2.3 48.61, 2.3 48.6))"])
    broken = epinay_small.copy()
    broken.loc[broken.index[5], "geometry"] = bowtie.iloc[0]
    path = tmp_path / "cadastre-91216-parcelles.json"
    broken.to_file(path, driver="GeoJSON")
    with pytest.raises(InputError, match=r"1 géométrie\(s\) invalide.*--fix") as err:
        read_parcels(path)
    assert broken.iloc[5]["id"] in str(err.value)
    fixed = read_parcels(path, fix=True)
    assert fixed.is_valid.all() and len(fixed) == 200


def test_unreadable_and_truncated_files(tmp_path, epinay_parcelles):
    gz = tmp_path / "cadastre-91216-parcelles.json.gz"
    gz.write_bytes(gzip.compress(epinay_parcelles.read_bytes())[:3000])
    with pytest.raises(InputError, match="fichier illisible") as err:
        read_parcels(gz)
    assert gz.name in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(InputError, match="fichier introuvable"):
        read_parcels(tmp_path / "nope.json")
    nocols = tmp_path / "x.geojson"
    gpd.GeoDataFrame({"a": [1]}, geometry=gpd.points_from_xy([2.3], [48.6]), crs=4326).to_file(nocols)
    with pytest.raises(InputError, match="sans colonne d'identifiant"):
        read_parcels(nocols)


def test_find_layer_file_in_shared_layout(shared_data):
    root = shared_data / "cadastre-etalab-sample"
    assert find_layer_file(root, "73253", "sections").name == "cadastre-73253-sections.json"
    assert find_layer_file(root, "73253", "batiments") is None
    with pytest.warns(OrtWarning, match="pas de couche batiments"):
        layers = load_cadastre(["73253"], ("parcelles", "sections", "batiments"), source_dir=root)
    assert set(layers) == {"parcelles", "sections"}


def test_multi_commune_load(shared_data):
    root = shared_data / "cadastre-etalab-sample"
    layers = load_cadastre(["91216", "73253"], ("parcelles",), source_dir=root)
    parcels = layers["parcelles"]
    assert parcels.crs.to_epsg() == 2154
    assert parcels.groupby("code_insee").size().to_dict() == {"73253": 7425, "91216": 4241}
    with pytest.raises(InputError, match="pas de fichier parcelles pour la commune 62907"):
        load_cadastre(["62907"], source_dir=root)


# --- downloading --------------------------------------------------------------------------------


def test_official_url_pattern():
    assert cadastre_url("62907", "parcelles", millesime="2024-01-01", base_url="https://h/e") == (
        "https://h/e/2024-01-01/geojson/communes/62/62907/cadastre-62907-parcelles.json.gz"
    )
    assert "/communes/2A/2A004/cadastre-2A004-sections" in cadastre_url("2A004", "sections")
    assert "/communes/974/97411/" in cadastre_url("97411")
    with pytest.raises(InputError, match="zéro initial"):
        cadastre_url("1001")
    with pytest.raises(InputError, match="couche du cadastre .* inconnue"):
        cadastre_url("62907", "routes")
    with pytest.raises(InputError, match="millésime"):
        cadastre_url("62907", millesime="2024")


class _Handler(http.server.SimpleHTTPRequestHandler):
    hits: list[str] = []
    truncate: set[str] = set()

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):  # noqa: N802
        type(self).hits.append(self.path)
        if any(self.path.endswith(t) for t in type(self).truncate):
            body = Path(self.translate_path(self.path)).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            return
        super().do_GET()


@pytest.fixture(scope="module")
def etalab_server(tmp_path_factory, shared_data):
    """A copy of the Etalab URL layout on 127.0.0.1, holding the real sample files gzipped."""
    root = tmp_path_factory.mktemp("etalab")
    sample = shared_data / "cadastre-etalab-sample"
    for folder in sample.iterdir():
        if not folder.is_dir():
            continue
        insee = folder.name[:5]
        dest = root / MILLESIME / "geojson" / "communes" / insee[:2] / insee
        dest.mkdir(parents=True)
        for f in folder.glob("*.json"):
            (dest / f"{f.name}.gz").write_bytes(gzip.compress(f.read_bytes(), mtime=0))
    # A file whose server announces more bytes than it sends.
    bad = root / MILLESIME / "geojson" / "communes" / "73" / "73253" / "cadastre-73253-batiments.json.gz"
    shutil.copy(bad.with_name("cadastre-73253-feuilles.json.gz"), bad)
    _Handler.truncate = {"cadastre-73253-batiments.json.gz"}

    def handler(*args, **kwargs):
        return _Handler(*args, directory=str(root), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def use_server(etalab_server, monkeypatch):
    monkeypatch.setattr(settings, "cadastre_base_url", etalab_server)
    monkeypatch.setattr(settings, "cadastre_millesime", MILLESIME)
    monkeypatch.setattr(settings, "http_backoff", 0.01)
    _Handler.hits.clear()
    return etalab_server


def test_download_once_then_cache(use_server, epinay_parcelles):
    path = fetch_layer("91216")
    assert path.is_file() and path.is_relative_to(settings.cache_dir)
    assert gzip.decompress(path.read_bytes()) == epinay_parcelles.read_bytes()
    assert fetch_layer("91216") == path
    assert len(_Handler.hits) == 1  # one download per file and millésime
    layers = load_cadastre(["91216"], ("parcelles",))
    assert len(layers["parcelles"]) == 4241 and layers["parcelles"].attrs["millesime"] == MILLESIME
    assert len(_Handler.hits) == 1


def test_several_communes_and_missing_optional_layer(use_server):
    with pytest.warns(OrtWarning, match="couche sections de la commune 91216 indisponible"):
        layers = load_cadastre(["91216", "73253"], ("parcelles", "sections"))
    assert layers["parcelles"]["code_insee"].nunique() == 2
    assert set(layers["sections"]["code_insee"]) == {"73253"}


def test_not_found_and_truncated_downloads_leave_nothing(use_server, monkeypatch):
    with pytest.raises(DownloadError, match="introuvable \\(HTTP 404\\)"):
        fetch_layer("62907")
    monkeypatch.setattr(settings, "http_retries", 2)
    with pytest.raises(DownloadError, match="téléchargement tronqué") as err:
        fetch_layer("73253", "batiments")
    assert "après 2 essai(s)" in str(err.value)
    assert sum("batiments" in h for h in _Handler.hits) == 2
    leftovers = [p for p in Path(settings.cache_dir).rglob("*") if p.is_file()]
    assert leftovers == [], "a failed download must leave no file in the cache"


def test_offline_uses_cache_only(use_server, monkeypatch):
    monkeypatch.setattr(settings, "offline", True)
    with pytest.raises(DownloadError, match="offline"):
        fetch_layer("73253", "sections")
    assert _Handler.hits == []
    monkeypatch.setattr(settings, "offline", False)
    path = fetch_layer("73253", "sections")
    monkeypatch.setattr(settings, "offline", True)
    assert fetch_layer("73253", "sections") == path
    assert len(_Handler.hits) == 1


def test_unreachable_server(monkeypatch):
    monkeypatch.setattr(settings, "cadastre_base_url", "http://127.0.0.1:9")
    monkeypatch.setattr(settings, "http_retries", 2)
    monkeypatch.setattr(settings, "http_backoff", 0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DownloadError, match="téléchargement de .* impossible après 2 essai"):
            fetch_layer("91216")


def test_a_parsed_commune_is_read_back_from_the_cache(epinay_parcelles, tmp_path, monkeypatch):
    """The second read of a commune's file comes from the parsed GeoParquet in the cache (same
    layer, same attrs); a file changed in place is parsed again."""
    from geo.sources import cadastre

    copy = tmp_path / epinay_parcelles.name
    copy.write_bytes(epinay_parcelles.read_bytes())
    first = cadastre.read_layer(copy)
    monkeypatch.setattr(cadastre, "_read_raw", lambda *a, **k: pytest.fail("parsed again"))
    again = cadastre.read_layer(copy)
    pd.testing.assert_frame_equal(
        pd.DataFrame(again.drop(columns="geometry")), pd.DataFrame(first.drop(columns="geometry"))
    )
    assert again.geometry.geom_equals_exact(first.geometry, 0).all() and again.crs == first.crs
    assert again.attrs == first.attrs
    monkeypatch.undo()
    copy.write_bytes(epinay_parcelles.read_bytes().replace(b'"contenance"', b'"contenance" ', 1))
    changed = cadastre.read_layer(copy)
    assert len(changed) == len(first)
