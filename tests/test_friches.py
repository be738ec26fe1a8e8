"""Friches: real Cartofriches and CNIG rows, footprints from parcels, location in sectors."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from click.testing import CliRunner
from excel import read_excel_csv
from shapely.geometry import box

import geo.cli
from geo.errors import CRSError, InputError
from geo.perimeters import perimeters_to_geojson, read_convention
from geo.places.friches import (
    FRICHE_STATUTS,
    OUTSIDE_ID,
    UNLOCATED_ID,
    friche_footprints,
    locate_friches,
    normalise_statut,
    read_friches,
    split_list,
    summarise_friches,
)
from geo.sources.cadastre import read_parcels

L93 = "EPSG:2154"
LIBERCOURT_SITES = {"62907_24789", "62907_13670", "62907_21741", "62907_12806", "62907_8399"}


@pytest.fixture(scope="session")
def cartofriches(shared_data: Path) -> Path:
    """Real Cerema Cartofriches extract: 622 points of dept 62 and 5 Nord neighbours (2023-10-02)."""
    return shared_data / "cartofriches" / "cartofriches-sites-62-et-voisines59-2023-10.geojson"


@pytest.fixture(scope="session")
def cnig_csv(shared_data: Path) -> Path:
    """Real CNIG-standard friches sample: 49 rows of dept 62, ';'-separated, ids joined by '|'."""
    return shared_data / "cartofriches" / "friches-standard-cnig-echantillon-62.csv"


def _convention(folder: Path, commune: str, sectors: list[tuple[str, str, object]]) -> Path:
    """A one-version convention whose sectors are Lambert-93 boxes (id, nom, geometry)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "convention.toml").write_text(
        f'nom = "ORT de test"\nprogramme = "PVD"\ncommunes = ["{commune}"]\n'
        "date_signature = 2023-01-18\nduree_ans = 5\n\n[[versions]]\n"
        'id = "initiale"\nlibelle = "Convention initiale"\ndate_effet = 2023-01-18\n'
        'fichier = "perimetres.geojson"\n',
        encoding="utf-8",
    )
    gdf = gpd.GeoDataFrame(
        [
            {"id": i, "type": "secteur", "nom": n, "centre_ville": k == 0}
            for k, (i, n, _) in enumerate(sectors)
        ],
        geometry=[g for _, _, g in sectors],
        crs=L93,
    )
    (folder / "perimetres.geojson").write_text(perimeters_to_geojson(gdf), encoding="utf-8")
    return folder


def _libercourt_conv(tmp_path: Path) -> Path:
    """Two hand-drawn sectors: the station area (3 friche points) and the Terril 115 point."""
    return _convention(
        tmp_path / "lib",
        "62907",
        [
            ("gare", "Pôle gare", box(700_700, 7_042_550, 700_950, 7_042_750)),
            ("terril", "Terril", box(699_200, 7_042_600, 699_400, 7_042_800)),
        ],
    )


# --- reading real rows -----------------------------------------------------------------------


def test_split_list_formats():
    assert split_list("{62907000AN0213,62907000AN0212}") == ["62907000AN0213", "62907000AN0212"]
    assert split_list("62907000AB0006|62907000AB0009") == ["62907000AB0006", "62907000AB0009"]
    assert split_list('{"COMMUNE DE X, ANNEXE","SNCF"}') == ["COMMUNE DE X, ANNEXE", "SNCF"]
    assert split_list("NA") == [] and split_list(None) == [] and split_list("{}") == []


def test_statuses_normalised():
    assert normalise_statut(" Friche  SANS projet ") == "friche sans projet"
    assert normalise_statut("reconvertie") == "reconvertie"
    assert normalise_statut("à l'abandon") is None


def test_cartofriches_geojson_real_rows(cartofriches):
    gdf = read_friches(cartofriches)
    assert len(gdf) == 622
    assert gdf.crs.to_epsg() == 2154
    # Every status present in the data, with its count (PROVENANCE.md).
    assert gdf["site_statut"].value_counts().to_dict() == {
        "friche potentielle": 494,
        "friche avec projet": 49,
        "site avec projet": 46,
        "friche sans projet": 33,
    }
    lib = gdf[gdf["code_insee"] == "62907"].set_index("site_id")
    assert set(lib.index) == LIBERCOURT_SITES
    # l_idpar written as a PostgreSQL array.
    assert lib.at["62907_8399", "parcelles"] == "62907000AN0213|62907000AN0212"
    assert lib.at["62907_12806", "n_parcelles"] == 4
    assert lib.at["62907_13670", "n_parcelles"] == 25
    assert lib.at["62907_13670", "proprio_nom"] == "COMMUNE DE LIBERCOURT | SOCIETE NATIONALE SNCF"
    assert lib.at["62907_13670", "proprio_type"] == "P5a|R2a"
    assert lib.at["62907_12806", "site_statut"] == "friche sans projet"
    assert lib.at["62907_24789", "site_statut"] == "site avec projet"
    assert pd.isna(lib.at["62907_24789", "parcelles"]) and lib.at["62907_24789", "n_parcelles"] == 0
    assert lib.at["62907_8399", "surface_m2"] == pytest.approx(12549.64)
    # Natural persons stay masked as the source masked them.
    masked = gdf[gdf["proprio_personne"] == "personne physique"]
    assert len(masked) == 171 and set(masked["proprio_nom"]) == {"_X_"}
    # The two "Recyclage foncier" sites share their 25 parcels: reported, not merged.
    shared = [
        p for p in gdf.attrs["report"].problems if p.code == "shared-parcels" and p.feature == "62907_21741"
    ]
    assert len(shared) == 1 and "62907_13670" in shared[0].message


def test_cnig_csv_real_rows(cnig_csv):
    gdf = read_friches(cnig_csv)
    assert len(gdf) == 49
    assert gdf["site_statut"].value_counts().to_dict() == {
        "friche potentielle": 41,
        "friche avec projet": 7,
        "friche sans projet": 1,
    }
    row = gdf.set_index("site_id").loc["62907_28988"]
    # unite_fonciere_refcad written with '|'.
    ids = row["parcelles"].split("|")
    assert len(ids) == 10 and ids[0] == "62907000AB0006" and ids[-1] == "62907000AB0874"
    assert row["surface_m2"] == 3299 and row["surface_source"] == "unite_fonciere_surface"
    assert row["site_type"] == "friche industrielle"
    back = gpd.GeoSeries([row.geometry], crs=gdf.crs).to_crs("EPSG:4326").iloc[0]
    assert (round(back.x, 5), round(back.y, 5)) == (3.01208, 50.48083)
    # "NA" is empty, not a text: the CNIG file has no l_catpro3txt and NA proprio names stay empty.
    assert gdf["proprio_categorie"].isna().all()
    assert not (gdf["proprio_nom"] == "NA").any()
    assert set(gdf["source_format"]) == {"cnig"}


def test_commune_filter(cartofriches):
    gdf = read_friches(cartofriches, communes=["62907"])
    assert set(gdf["site_id"]) == LIBERCOURT_SITES


# --- footprints ------------------------------------------------------------------------------


def _cnig_row(site_id: str, statut: str, refcad: str, point: str, surface: str = "NA") -> dict:
    return {
        "site_id": site_id,
        "site_nom": f"Site {site_id}",
        "site_type": "friche industrielle",
        "site_statut": statut,
        "comm_nom": "EPINAY-SUR-ORGE",
        "comm_insee": "91216",
        "proprio_type": "P5a",
        "proprio_personne": "personne morale",
        "proprio_nom": "COMMUNE",
        "unite_fonciere_surface": surface,
        "unite_fonciere_refcad": refcad,
        "geompoint": point,
        "geomsurf": "NA",
    }


def test_footprint_from_real_parcels(tmp_path, epinay_parcelles):
    """Generated CNIG rows on real Épinay-sur-Orge parcels: all found, one missing, none given."""
    parcels = read_parcels(epinay_parcelles)
    a, b = "91216000AB0037", "91216000AB0026"
    pt = "POINT (2.3200 48.6700)"
    rows = [
        _cnig_row("91216_1", "friche sans projet", f"{a}|{b}", pt, "1000"),
        _cnig_row("91216_2", "friche avec projet", f"{a}|91216000AB9999", pt),
        _cnig_row("91216_3", "reconvertie", "NA", pt),
    ]
    path = tmp_path / "friches.csv"
    pd.DataFrame(rows).to_csv(path, sep=";", index=False)
    gdf = friche_footprints(read_friches(path), parcels)
    by = gdf.set_index("site_id")
    expected = parcels.set_index("idu").loc[[a, b]].area.sum()
    assert by.at["91216_1", "geometry_source"] == "parcelles"
    assert by.loc["91216_1"].geometry.area == pytest.approx(expected, rel=1e-6)
    assert by.at["91216_2", "geometry_source"] == "parcelles (1/2)"
    assert by.loc["91216_2"].geometry.area == pytest.approx(parcels.set_index("idu").loc[a].geometry.area)
    assert by.at["91216_3", "geometry_source"] == "point" and by.loc["91216_3"].geometry.geom_type == "Point"
    missing = [p for p in gdf.attrs["report"].problems if p.code == "unknown-parcel"]
    assert [p.feature for p in missing] == ["91216_2"] and "91216000AB9999" in missing[0].message


# --- sectors ---------------------------------------------------------------------------------


def test_locate_and_summarise_libercourt(tmp_path, cartofriches):
    conv = read_convention(_libercourt_conv(tmp_path))
    perims = conv.perimeters("2024-01-01", include_ort=False)
    gdf = read_friches(cartofriches, communes=["62907"])
    summary = summarise_friches(locate_friches(gdf, perims))
    got = {(r.perimeter_id, r.site_statut): (r.nombre, round(r.surface_m2, 2)) for r in summary.itertuples()}
    assert got == {
        ("gare", "friche avec projet"): (2, round(110455.07 + 126956.26, 2)),
        ("gare", "site avec projet"): (1, 1904.63),
        ("terril", "friche sans projet"): (1, 999437.71),
        (OUTSIDE_ID, "friche potentielle"): (1, 12549.64),
    }
    # CNIG order of statuses inside a perimeter.
    gare = summary[summary["perimeter_id"] == "gare"]["site_statut"].tolist()
    assert gare == sorted(gare, key=FRICHE_STATUTS.index)


def test_site_without_point_is_reported_not_dropped(tmp_path):
    rows = [
        _cnig_row("91216_1", "friche potentielle", "NA", "POINT (2.3200 48.6700)", "50"),
        _cnig_row("91216_2", "friche potentielle", "NA", "NA", "70"),
    ]
    path = tmp_path / "f.csv"
    pd.DataFrame(rows).to_csv(path, sep=";", index=False)
    gdf = read_friches(path)
    perims = gpd.GeoDataFrame(
        [{"perimeter_id": "s", "type": "secteur", "nom": "S"}], geometry=[box(0, 0, 1, 1)], crs=L93
    )
    summary = summarise_friches(locate_friches(gdf, perims)).set_index("perimeter_id")
    assert summary.at[UNLOCATED_ID, "nombre"] == 1 and summary.at[UNLOCATED_ID, "surface_m2"] == 70
    assert summary.at[OUTSIDE_ID, "nombre"] == 1
    assert [p.feature for p in gdf.attrs["report"].problems if p.code == "no-geometry"] == ["91216_2"]


# --- bad input -------------------------------------------------------------------------------


def test_missing_columns(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("site_id;comm_insee;geompoint\n1;62907;POINT (3 50.5)\n", encoding="utf-8")
    with pytest.raises(InputError, match="site_statut") as err:
        read_friches(path)
    assert str(path) in str(err.value)


def test_unknown_status_kept_and_reported(tmp_path):
    path = tmp_path / "f.csv"
    row = _cnig_row("91216_9", "en friche depuis 2010", "NA", "POINT (2.32 48.67)")
    pd.DataFrame([row]).to_csv(path, sep=";", index=False)
    gdf = read_friches(path)
    assert gdf["site_statut"].tolist() == ["en friche depuis 2010"]
    (problem,) = [p for p in gdf.attrs["report"].problems if p.code == "unknown-status"]
    assert problem.feature == "91216_9" and "friche potentielle" in problem.message


def test_duplicate_site_ids(tmp_path):
    path = tmp_path / "f.csv"
    rows = [_cnig_row("91216_1", "reconvertie", "NA", "POINT (2.32 48.67)")] * 2
    pd.DataFrame(rows).to_csv(path, sep=";", index=False)
    report = read_friches(path).attrs["report"]
    assert [(p.severity, p.code, p.feature) for p in report.problems] == [
        ("error", "duplicate-id", "91216_1")
    ]


def test_lambert_numbers_declared_wgs84(tmp_path):
    feat = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [700858.7, 7042604.0]},
        "properties": {"site_id": "62907_1", "site_statut": "reconvertie", "comm_insee": "62907"},
    }
    path = tmp_path / "f.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feat]}), encoding="utf-8")
    with pytest.raises(CRSError, match="Lambert-93"):
        read_friches(path)


def test_unknown_format(tmp_path):
    path = tmp_path / "f.shp"
    path.write_bytes(b"x")
    with pytest.raises(InputError, match="non pris en charge"):
        read_friches(path)


# --- CLI -------------------------------------------------------------------------------------


def test_cli_friches(tmp_path, cartofriches):
    folder = _libercourt_conv(tmp_path)
    out = tmp_path / "friches.csv"
    args = ["friches", "--perimeters", str(folder), "--file", str(cartofriches), "--date", "2024-01-01"]
    result = CliRunner().invoke(geo.cli.main, [*args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "5 friche(s) — commune(s) 62907" in result.output
    assert "Pôle gare" in result.output
    table = read_excel_csv(out).set_index("site_id")
    assert set(table.index) == LIBERCOURT_SITES
    assert table.at["62907_13670", "perimetres"] == "gare | ort"
    assert table.at["62907_12806", "perimetres"] == "terril | ort"
    assert pd.isna(table.at["62907_8399", "perimetres"])
    again = CliRunner().invoke(geo.cli.main, [*args, "-o", str(out)])
    assert again.exit_code != 0 and "existe déjà" in again.output
