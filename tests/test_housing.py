"""Social housing sites: every way of locating them (and of failing to), sectors, bad files."""

from __future__ import annotations

import gzip
from pathlib import Path

import geopandas as gpd
import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner
from excel import excel_number, read_excel_csv

import geo.cli
from geo.errors import InputError, ValidationFailed
from geo.perimeters import perimeter_from_parcels, perimeters_to_geojson, read_convention
from geo.places.housing import (
    BY_BAL,
    BY_BAN,
    BY_COORDINATES,
    BY_PARCELS,
    OUTSIDE_ID,
    UNLOCATED_ID,
    locate_sites,
    read_addresses,
    read_housing,
    sites_in_perimeters,
    summarise_housing,
    voie_key,
)
from geo.sources.cadastre import read_parcels

L93 = "EPSG:2154"
EPINAY_DIR = ("cadastre-etalab-sample", "91216-epinay-sur-orge")


@pytest.fixture(scope="module")
def parcels(epinay_parcelles):
    """Real Épinay-sur-Orge parcels (91216), Lambert-93."""
    return read_parcels(epinay_parcelles)


@pytest.fixture(scope="module")
def bal(shared_data) -> Path:
    """Real 18-row BAL 1.4 extract of Meylan (38229) with cad_parcelles."""
    return shared_data / "ban-bal-sample" / "bal-meylan-38229-extrait.csv"


def _point(parcels, idu: str):
    return parcels.set_index("idu").loc[idu].geometry.representative_point()


def _lonlat(pt) -> tuple[float, float]:
    p = gpd.GeoSeries([pt], crs=L93).to_crs("EPSG:4326").iloc[0]
    return round(p.x, 7), round(p.y, 7)


@pytest.fixture(scope="module")
def convention(tmp_path_factory, parcels, shared_data) -> Path:
    """A convention on Épinay-sur-Orge: sector 'ab' = all AB parcels, 'an' = all AN parcels."""
    folder = tmp_path_factory.mktemp("conv") / "epinay"
    folder.mkdir()
    sectors = [
        perimeter_from_parcels(
            parcels,
            list(parcels.loc[parcels["section"] == s, "idu"]),
            perimeter_id=s.lower(),
            nom=f"Section {s}",
            centre_ville=s == "AB",
        )
        for s in ("AB", "AN")
    ]
    gdf = gpd.GeoDataFrame(pd.concat(sectors, ignore_index=True), crs=L93)
    (folder / "perimetres.geojson").write_text(perimeters_to_geojson(gdf), encoding="utf-8")
    (folder / "convention.toml").write_text(
        'nom = "ORT d\'essai Épinay"\nprogramme = "PVD"\ncommunes = ["91216"]\n'
        f'date_signature = 2023-01-18\nduree_ans = 5\ncadastre_dir = "{shared_data.joinpath(*EPINAY_DIR)}"\n'
        '[[versions]]\nid = "initiale"\nlibelle = "Initiale"\ndate_effet = 2023-01-18\n'
        'fichier = "perimetres.geojson"\n',
        encoding="utf-8",
    )
    return folder


@pytest.fixture(scope="module")
def sites_csv(tmp_path_factory, parcels) -> Path:
    """Seven sites on real 91216 parcels, one per way of locating or of failing."""
    an_pt = _point(parcels, "91216000AN0100")
    ab_pt = _point(parcels, "91216000AB0039")
    lon, lat = _lonlat(an_pt)
    rows = [
        # Bailleur, Programme, Nb logements, Année, DEPCOM, Parcelles, lon, lat, x, y
        ("OPH Essonne", "Mozart", "40", "1972", "91216", "AB 37|AB26", "", "", "", ""),
        ("OPH Essonne", "Bizet", "25", "1980", "91216", "", lon, lat, "", ""),
        ("SA Logis", "Chopin", "12", "1990", "91216", "", "", "", round(ab_pt.x, 2), round(ab_pt.y, 2)),
        ("SA Logis", "Ravel", "8", "1991", "91216", "ZZ 9999", "", "", "", ""),
        ("SA Logis", "Loin", "5", "2001", "91216", "", "3.0573", "50.6292", "", ""),
        ("SA Logis", "Inversé", "3", "2002", "91216", "", lat, lon, "", ""),
        ("OPH Essonne", "Voisine", "6", "1999", "91477", "91477000AB0001", "", "", "", ""),
    ]
    cols = ["Bailleur", "Programme", "Nb logements", "Année", "DEPCOM", "Parcelles", "lon", "lat", "x", "y"]
    path = tmp_path_factory.mktemp("sites") / "sites.csv"
    pd.DataFrame(rows, columns=cols).to_csv(path, sep=";", index=False)
    return path


# --- locating --------------------------------------------------------------------------------


def test_locate_by_coordinates_and_parcels(sites_csv, parcels):
    sites = read_housing(sites_csv)
    assert list(sites["site_id"]) == ["L2", "L3", "L4", "L5", "L6", "L7", "L8"]  # spreadsheet row numbers
    res = locate_sites(sites, metric_crs=L93, parcels=parcels, communes=["91216"])
    by = res.sites.set_index("programme")
    assert by.at["Mozart", "localisation"] == BY_PARCELS
    area = parcels.set_index("idu").loc[["91216000AB0037", "91216000AB0026"]].area.sum()
    assert by.loc["Mozart"].geometry.area == pytest.approx(area, rel=1e-6)
    assert by.at["Bizet", "localisation"] == BY_COORDINATES
    assert by.at["Bizet", "parcelles"] == "91216000AN0100"
    assert (
        by.at["Chopin", "localisation"] == BY_COORDINATES and by.at["Chopin", "parcelles"] == "91216000AB0039"
    )
    links = res.parcels.set_index(["site_id", "idu"])["lien"].to_dict()
    assert links[("L2", "91216000AB0037")] == "donnée"
    assert links[("L3", "91216000AN0100")] == "point dans la parcelle"
    # Failures keep their reason; nothing is dropped.
    lost = res.unlocated().set_index("programme")["motif"]
    assert set(lost.index) == {"Ravel", "Inversé", "Voisine"}
    assert "91216000ZZ9999" in lost["Ravel"] and "absente(s) du cadastre" in lost["Ravel"]
    assert "inversées" in lost["Inversé"]
    assert "91477000AB0001" in lost["Voisine"]
    # Outside the convention's communes: listed, not fatal.
    outside = res.outside().set_index("programme")["alerte"]
    assert set(outside.index) == {"Loin", "Voisine"}
    assert "hors des communes" in outside["Loin"] and "91477" in outside["Voisine"]
    assert by.loc["Loin"].geometry is not None


def test_parcels_without_cadastre_say_so(sites_csv):
    res = locate_sites(read_housing(sites_csv), metric_crs=L93, communes=["91216"])
    assert "cadastre non chargé" in res.sites.set_index("programme").at["Mozart", "motif"]


def test_sites_per_sector_and_landlord(sites_csv, parcels, convention):
    conv = read_convention(convention)
    res = locate_sites(
        read_housing(sites_csv), metric_crs=conv.metric_crs, parcels=parcels, communes=["91216"]
    )
    summary = summarise_housing(sites_in_perimeters(res, conv.perimeters("2024-01-01")))
    got = {(r.perimeter_id, r.bailleur): (r.sites, r.logements) for r in summary.itertuples()}
    assert got == {
        ("ab", "OPH Essonne"): (1, 40),
        ("ab", "SA Logis"): (1, 12),
        ("an", "OPH Essonne"): (1, 25),
        ("ort", "OPH Essonne"): (2, 65),
        ("ort", "SA Logis"): (1, 12),
        (OUTSIDE_ID, "SA Logis"): (1, 5),
        (UNLOCATED_ID, "OPH Essonne"): (1, 6),
        (UNLOCATED_ID, "SA Logis"): (2, 11),
    }
    assert list(summary["perimeter_id"])[-3:] == [OUTSIDE_ID, UNLOCATED_ID, UNLOCATED_ID]


def test_bal_addresses_rpls_rows(tmp_path, bal):
    """RPLS-style dwelling rows (no count column) located through the real Meylan BAL."""
    header = "DEPCOM;LIBCOM;NUMVOIE;INDREP;TYPVOIE;NOMVOIE;bailleur;CONSTRUCT\n"
    rows = [
        "38229;Meylan;9;;R;DU SAINT-EYNARD;Alpes Habitat;1975",
        "38229;Meylan;9;;R;DU SAINT-EYNARD;Alpes Habitat;1975",
        "38229;Meylan;9;;R;DU SAINT-EYNARD;Alpes Habitat;1976",
        "38229;Meylan;7;A;R;DU SAINT EYNARD;Alpes Habitat;1980",
        "38229;Meylan;2;;CHE;DE LA GARANCE;SDH;1990",
        "38229;Meylan;11;;R;DES ABEILLES;SDH;1995",
        "38229;Meylan;99;;R;DES ABEILLES;SDH;2000",
        "38229;Meylan;3;;R;DES ABEILLESS;SDH;2000",
        "38185;Grenoble;1;;R;DES ABEILLES;SDH;2000",
    ]
    path = tmp_path / "rpls.csv"
    path.write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
    sites = read_housing(path)
    assert len(sites) == 7  # the three dwellings of n° 9 are one site
    first = sites.iloc[0]
    assert first["logements"] == 3 and first["annee"] == 1975 and first["lignes"] == ["2", "3", "4"]
    addresses = read_addresses(bal)
    assert addresses.attrs["format"] == "BAL" and len(addresses) == 18
    res = locate_sites(sites, metric_crs=L93, addresses=addresses, communes=["38229"])
    s = res.sites
    n9, n7a, garance, n11 = (s.iloc[i] for i in range(4))
    assert n9["localisation"] == BY_BAL and n9["parcelles"] == "38229000AC0362|38229000AC0368"
    assert (round(n9.geometry.x, 1), round(n9.geometry.y, 1)) == (918708.8, 6461870.8)  # BAL x, y
    assert n7a["parcelles"] == "38229000AC0507"  # suffix "a", not n° 7
    # Two positions for 2 chemin de la Garance: the building is preferred to the entrance.
    assert (round(garance.geometry.x, 1), round(garance.geometry.y, 1)) == (918514.9, 6462975.4)
    assert n11["localisation"] == BY_BAL and pd.isna(n11["parcelles"])  # BAL gives no parcel for it
    motifs = list(s["motif"].iloc[4:])
    assert "numéro 99 absent" in motifs[0] and "3, 5, 6, 11, 30, 33" in motifs[0]
    assert "voies proches : Rue des Abeilles" in motifs[1]
    assert "aucune adresse de la commune 38185" in motifs[2]
    assert res.outside()["alerte"].tolist() == ["commune 38185 hors de la convention (38229)"]


def test_ban_file_and_free_text_address(tmp_path, bal):
    """A BAN-layout adresses-38.csv.gz built from the real BAL rows; addresses typed as one text."""
    src = pd.read_csv(bal, sep=";", dtype=str, keep_default_na=False)
    ban = pd.DataFrame(
        {
            "id": src["cle_interop"],
            "numero": src["numero"],
            "rep": src["suffixe"],
            "nom_voie": src["voie_nom"],
            "code_postal": "38240",
            "code_insee": src["commune_insee"],
            "nom_commune": src["commune_nom"],
            "x": src["x"],
            "y": src["y"],
            "lon": src["long"],
            "lat": src["lat"],
            "type_position": src["position"],
            "cad_parcelles": src["cad_parcelles"],
        }
    )
    path = tmp_path / "adresses-38.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        ban.to_csv(f, sep=";", index=False)
    addresses = read_addresses(path, communes=["38229"])
    assert addresses.attrs["format"] == "BAN"
    sites = pd.DataFrame(
        {
            "organisme": ["Alpes Habitat", "Alpes Habitat"],
            "adresse": ["9 rue du Saint-Eynard, 38240 Meylan", "Rue du Saint-Eynard"],
            "logements": [20, 4],
        }
    )
    sites_path = tmp_path / "s.csv"
    sites.to_csv(sites_path, index=False)
    res = locate_sites(read_housing(sites_path), metric_crs=L93, addresses=addresses, communes=["38229"])
    assert res.sites["localisation"].iloc[0] == BY_BAN
    assert res.sites["parcelles"].iloc[0] == "38229000AC0362|38229000AC0368"
    assert "sans numéro" in res.sites["motif"].iloc[1]


def test_commune_polygons(tmp_path, shared_data):
    """Points tested against real commune polygons: one in Libercourt, one in Carvin."""
    shapes = gpd.read_file(
        shared_data / "communes-62-france-geojson" / "communes-libercourt-cahc-voisines.geojson"
    )
    lib = shapes[shapes["code"] == "62907"].to_crs(L93).geometry.iloc[0].representative_point()
    carvin = shapes[shapes["code"] == "62215"].to_crs(L93).geometry.iloc[0].representative_point()
    df = pd.DataFrame(
        {
            "bailleur": ["PdCH", "PdCH"],
            "programme": ["Béguinage", "Carvin"],
            "logements": [40, 10],
            "x": [lib.x, carvin.x],
            "y": [lib.y, carvin.y],
        }
    )
    path = tmp_path / "s.csv"
    df.to_csv(path, index=False)
    res = locate_sites(read_housing(path), metric_crs=L93, communes=["62907"], commune_shapes=shapes)
    assert res.outside()["programme"].tolist() == ["Carvin"]


def test_voie_key():
    assert voie_key("Allée de Chateauvieux") == voie_key("ALL CHATEAUVIEUX") == "ALLEE CHATEAUVIEUX"
    assert voie_key("Rue du Saint-Eynard") == voie_key("R DU SAINT EYNARD") == "RUE SAINT EYNARD"
    assert voie_key("Rue des Abeilles") != voie_key("Rue des Abeillons")


# --- bad input -------------------------------------------------------------------------------


def test_missing_landlord_column(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("programme;logements;idu\nMozart;40;91216000AB0037\n", encoding="utf-8")
    with pytest.raises(InputError, match="bailleur") as err:
        read_housing(path)
    assert "programme, logements, idu" in str(err.value)


def test_no_way_to_locate(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("bailleur;programme;logements\nOPH;Mozart;40\n", encoding="utf-8")
    with pytest.raises(InputError, match="une localisation"):
        read_housing(path)


def test_duplicate_ids_and_bad_counts(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(
        "id;bailleur;logements;idu\nP1;OPH;40;91216000AB0037\nP1;OPH;douze;91216000AB0026\nP2;OPH;-3;\n",
        encoding="utf-8",
    )
    with pytest.raises(ValidationFailed) as err:
        read_housing(path)
    problems = {(p.code, p.feature) for p in err.value.report.errors}
    assert problems == {("duplicate-id", "P1"), ("bad-count", "ligne 3"), ("bad-count", "ligne 4")}
    dup = next(p for p in err.value.report.errors if p.code == "duplicate-id")
    assert "(2, 3)" in dup.message


def test_xlsx_merged_header(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Patrimoine", None, "Adresse", None])
    ws.append(["bailleur", "programme", "NUMVOIE", "NOMVOIE"])
    ws.append(["OPH", "Mozart", 3, "rue des Abeilles"])
    ws.merge_cells("A1:B1")
    ws.merge_cells("C1:D1")
    path = tmp_path / "s.xlsx"
    wb.save(path)
    with pytest.raises(InputError, match="fusionnées") as err:
        read_housing(path)
    assert "A1:B1" in str(err.value) and "défusionnez" in str(err.value) and str(path) in str(err.value)


def test_xlsx_good_sheet(tmp_path, parcels):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Bailleur", "Résidence", "Nombre de logements", "Année de construction", "Code INSEE", "IDU"])
    ws.append(["OPH Essonne", "Mozart", 40, 1972, 91216, "91216000AB0037"])
    path = tmp_path / "s.xlsx"
    wb.save(path)
    sites = read_housing(path)
    row = sites.iloc[0]
    assert (row["programme"], row["logements"], row["annee"], row["code_insee"]) == (
        "Mozart",
        40,
        1972,
        "91216",
    )
    res = locate_sites(sites, metric_crs=L93, parcels=parcels)
    assert res.sites["localisation"].iloc[0] == BY_PARCELS


# --- CLI -------------------------------------------------------------------------------------


def test_cli_logements(tmp_path, sites_csv, convention):
    out = tmp_path / "sites.csv"
    result = CliRunner().invoke(
        geo.cli.main,
        [
            "logements",
            str(sites_csv),
            "--perimeters",
            str(convention),
            "--date",
            "2024-01-01",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "7 site(s), 99 logement(s) connus — 4 localisé(s)" in result.output
    assert "Section AB" in result.output and "Sites non localisés : 3" in result.output
    table = read_excel_csv(out).set_index("programme")
    assert table.at["Mozart", "perimetres"] == "ab | ort"
    assert table.at["Bizet", "perimetres"] == "an | ort"
    assert pd.isna(table.at["Loin", "perimetres"])
    assert excel_number(table.at["Loin", "lon"]) == pytest.approx(3.0573, abs=1e-6)
