"""The parcel check from Python (what the notebooks use), on the demo and on real parcels."""

from __future__ import annotations

import pandas as pd
import pytest
from excel import read_excel_csv

from geo.check import check_parcels, read_id_table
from geo.demo.commune import build_demo
from geo.perimeters import read_convention
from geo.sources.cadastre import read_parcels


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    paths = build_demo(data_dir=root / "data", perimeters_dir=root / "perimeters" / "demo")
    return paths, read_convention(paths.perimeters_dir), read_parcels(paths.layers["parcelles"])


def test_sample_file_end_to_end(demo):
    paths, conv, parcels = demo
    entries = read_id_table(paths.sample_ids)
    result = check_parcels(entries, conv, parcels, when="2024-09-01")
    assert sorted(t for t, _ in result.rejected) == ["62999000ZZ0001", "629990OOAB0012"]
    n_perims = result.perimeters["perimeter_id"].nunique()
    assert len(result.table) == result.table["idu"].nunique() * n_perims
    assert result.table["idu"].nunique() == len(entries) - 2
    ort = result.table[result.table.perimeter_id == "ort"].set_index("idu")["status"]
    sample = pd.read_csv(paths.sample_ids, dtype=str).set_index("idu")["commentaire"]
    for idu, comment in sample.items():
        if idu in ort.index and comment == "hors ORT":
            assert ort[idu] == "outside"
        if idu in ort.index and comment.startswith("centre-ville : inclus"):
            assert ort[idu] == "inside"
    labels = {"inside": "incluse", "straddling": "à cheval", "outside": "hors périmètre"}
    assert (result.table["statut"] == result.table["status"].map(labels)).all()
    data = result.to_json()
    assert data["fictif"] and data["version"] == "avenant-1" and len(data["rejetes"]) == 2
    assert "COMMUNE FICTIVE" in result.provenance() and "avenant" in result.provenance().lower()


def test_short_forms_and_dates(demo):
    _, conv, parcels = demo
    idu = parcels["idu"].iloc[0]
    short = f"{idu[8:10].lstrip('0')} {int(idu[10:])}"
    before = check_parcels([short], conv, parcels, when="2023-06-01")
    assert before.table["idu"].unique().tolist() == [idu]
    assert before.perimeters.attrs["version"] == "initiale"
    assert "opah-ru-centre" not in set(before.table["perimeter_id"])  # OPAH-RU starts in 2024
    after = check_parcels([short], conv, parcels, when="2024-09-01")
    assert "opah-ru-centre" in set(after.table["perimeter_id"])


def test_xlsx_with_numeric_commune(tmp_path, demo):
    f = tmp_path / "ids.xlsx"
    pd.DataFrame({"Parcelle": ["AB 1", "62999000AB0002"], "commune": [62999, 62999]}).to_excel(f, index=False)
    assert read_id_table(f) == [("AB 1", "62999"), ("62999000AB0002", "62999")]
    g = tmp_path / "n.csv"
    g.write_text("parcelle,commune\nA 1,1004\n")
    assert read_id_table(g) == [("A 1", "01004")]


def test_real_parcels(epinay_parcelles, tmp_path):
    """Real Épinay-sur-Orge parcels against a sector drawn around one real parcel."""
    parcels = read_parcels(epinay_parcelles)
    target = parcels[parcels["idu"] == "91216000AB0037"].geometry.iloc[0]
    folder = tmp_path / "epinay"
    folder.mkdir()
    import geopandas as gpd

    gpd.GeoDataFrame(
        {"id": ["s"], "type": ["secteur"], "nom": ["Secteur"], "centre_ville": [True]},
        geometry=[target.buffer(5)],
        crs=parcels.crs,
    ).to_crs(4326).to_file(folder / "p.geojson")
    (folder / "convention.toml").write_text(
        'nom = "T"\nprogramme = "autre"\ncommunes = ["91216"]\ndate_signature = 2023-01-01\nduree_ans = 5\n'
        '[[versions]]\nid = "v"\nlibelle = "v"\ndate_effet = 2023-01-01\nfichier = "p.geojson"\n'
    )
    conv = read_convention(folder)
    result = check_parcels(["AB 37", "AB37", "ab0037", "91216000AB0037"], conv, parcels, when="2024-01-01")
    rows = result.table[result.table.perimeter_id == "s"]
    assert rows["idu"].tolist() == ["91216000AB0037"] and rows["status"].iloc[0] == "inside"
    assert rows["contenance"].iloc[0] == 254881


def test_the_planners_own_columns_follow_the_verdicts(demo, tmp_path):
    from click.testing import CliRunner

    from geo.check import input_columns
    from geo.cli import main

    paths, _, _ = demo
    own = input_columns(paths.sample_ids, code_insee="62999")
    sample = pd.read_csv(paths.sample_ids, dtype=str)
    assert list(own.columns) == ["idu", "commentaire"]
    assert len(own) == len(sample) - 1  # 629990OOAB0012 is no IDU; 62999000ZZ0001 is one, not in the cadastre
    assert own["idu"].str.len().eq(14).all()
    short = sample[sample["commentaire"] == "forme courte (section numéro)"].iloc[0]
    row = own[own["commentaire"] == "forme courte (section numéro)"].iloc[0]
    section, numero = short["idu"].split()
    assert row["idu"] == f"62999000{section.zfill(2)}{numero.zfill(4)}"
    out = tmp_path / "r.csv"
    r = CliRunner().invoke(
        main, ["check", "--file", str(paths.sample_ids), "-p", str(paths.perimeters_dir), "-o", str(out)]
    )
    assert r.exit_code == 0, r.output
    table = read_excel_csv(out)
    assert (table.groupby("idu")["commentaire"].nunique() == 1).all()
    merged = table.drop_duplicates("idu").set_index("idu")["commentaire"]
    assert len(merged) == len(sample) - 2
    assert merged.to_dict() == own.set_index("idu")["commentaire"][merged.index].to_dict()
