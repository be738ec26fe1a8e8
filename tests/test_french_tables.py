"""Tables as their readers open them: French Excel (CSV by double-click), the XLSX annex, QGIS.

The CSV is read the way French Excel reads it (BOM → UTF-8, ``;`` list separator, decimal
comma, no guessing); the XLSX with openpyxl (title, source, headers, number formats, frozen
header, sheet name); the GeoPackage with sqlite3 (a ``layer_styles`` row per layer, QML with
the colours of the web map).
"""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET

import openpyxl
import pytest
from click.testing import CliRunner
from excel import BOM, excel_number, excel_text, read_excel_csv

from geo import embedded, settings
from geo.cli import main
from geo.columns import ELIGIBILITY, PARCELS
from geo.maps.layers import STATUS_COLOURS

DEMO = embedded.convention_dir("demo")
SAMPLE = DEMO / "parcelles-exemple.csv"
DATE = "2024-09-01"


def _run(*args):
    result = CliRunner().invoke(main, ["-q", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """``ort check --file`` on the demo's sample, as CSV (both dialects), XLSX and GeoPackage."""
    out = tmp_path_factory.mktemp("tables")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(settings, "progress", False)
        for name in ("r.csv", "r.xlsx", "r.gpkg"):
            _run("check", "--file", SAMPLE, "-p", DEMO, "--date", DATE, "-o", out / name)
        _run(
            "check", "--file", SAMPLE, "-p", DEMO, "--date", DATE, "--csv-international", "-o", out / "i.csv"
        )
        _run("parcels", "-p", DEMO, "--sector", "Centre-ville", "--date", DATE, "-o", out / "cv.gpkg")
    return out


def test_csv_opens_in_french_excel(outputs):
    raw = (outputs / "r.csv").read_bytes()
    assert raw.startswith(BOM), "no BOM: French Excel would decode the file as cp1252 (« Ã  cheval »)"
    table = read_excel_csv(outputs / "r.csv")
    assert list(table.columns[: len(PARCELS.names)]) == PARCELS.names
    assert "commentaire" in table.columns  # the planner's own column, kept
    assert {"incluse", "à cheval", "hors périmètre"} <= set(table["statut"])
    assert "Centre-ville" in set(table["perimetre_nom"])
    assert table["idu"].str.fullmatch(r"62999000[0-9A-Z]{2}\d{4}").all()
    # shares as percentages with one decimal, decimal comma
    pct = table["part_incluse_pct"]
    assert pct.str.fullmatch(r"\d{1,3},\d").all()
    strad = table[table["statut"] == "à cheval"]
    assert all(0 < excel_number(v) < 100 for v in strad["part_incluse_pct"])
    assert any("," in v for v in table["surface_parcelle_m2"].dropna())
    assert all(excel_number(v) >= 0 for v in table["surface_incluse_m2"])


def test_csv_international_form(outputs):
    raw = (outputs / "i.csv").read_bytes()
    assert not raw.startswith(BOM)
    header, first = raw.decode("utf-8").splitlines()[:2]
    assert header.split(",")[: len(PARCELS.names)] == PARCELS.names
    assert ";" not in header
    assert read_excel_csv(outputs / "r.csv")["idu"].tolist() == [
        line.split(",")[0] for line in raw.decode("utf-8").splitlines()[1:]
    ]
    assert settings.csv_format == "fr"  # the option held for its command only


def test_xlsx_is_an_annex_table(outputs):
    wb = openpyxl.load_workbook(outputs / "r.xlsx")
    assert wb.sheetnames == ["Parcelles"]
    ws = wb["Parcelles"]
    assert ws["A1"].value == PARCELS.title and ws["A1"].font.bold
    source = ws["A2"].value
    assert source.startswith("Source : ") and "Ormeval" in source and "01/09/2024" in source
    assert "produit le" in source
    headers = [c.value for c in ws[4]]
    assert headers[: len(PARCELS.names)] == [c.label for c in PARCELS.columns]
    assert "Part incluse (%)" in headers and "Surface incluse (m²)" in headers
    assert ws.freeze_panes == "A5"
    col = {h: i + 1 for i, h in enumerate(headers)}
    row = next(r for r in range(5, ws.max_row + 1) if ws.cell(r, col["Statut"]).value == "à cheval")
    share = ws.cell(row, col["Part incluse (%)"])
    assert (
        isinstance(share.value, (int, float)) and 0 < share.value < 100 and share.number_format == '0.0" %"'
    )
    area = ws.cell(row, col["Surface incluse (m²)"])
    assert isinstance(area.value, (int, float)) and area.number_format == "#,##0"
    assert ws.cell(row, col["Parcelle (IDU)"]).data_type == "s"
    assert ws.cell(row, col["Commune (INSEE)"]).value == "62999"  # text: the leading zero of 01004 survives
    widths = [ws.column_dimensions[c].width for c in ("A", "B", "G")]
    assert all(8 <= w <= 60 for w in widths) and widths[0] >= len("62999000AB0012")


def test_xlsx_number_formats_by_kind(tmp_path):
    """Dates typed as dates (JJ/MM/AAAA in French Excel), booleans as oui/non."""
    import datetime as dt

    import pandas as pd

    from geo.io import write_table

    frame = pd.DataFrame(
        {"regle": ["denormandie"], "part": [0.25], "date_evaluee": ["2025-03-01"], "a_verifier": [True]}
    )
    write_table(frame, tmp_path / "e.xlsx", layout=ELIGIBILITY, source="test")
    ws = openpyxl.load_workbook(tmp_path / "e.xlsx")["Éligibilité"]
    headers = [c.value for c in ws[4]]
    assert headers == ["Règle", "Part incluse (%)", "Date évaluée", "À vérifier"]
    assert ws["B5"].value == 25.0 and ws["C5"].value == dt.datetime(2025, 3, 1)
    assert ws["C5"].number_format == "DD/MM/YYYY" and ws["D5"].value == "oui"


def _styles(path):
    con = sqlite3.connect(path)
    try:
        rows = con.execute(
            "SELECT f_table_name, f_geometry_column, useAsDefault, styleQML, description FROM layer_styles"
        ).fetchall()
        layers = {
            r[0] for r in con.execute("SELECT table_name FROM gpkg_contents WHERE data_type='features'")
        }
        registered = con.execute("SELECT data_type FROM gpkg_contents WHERE table_name='layer_styles'")
        assert registered.fetchone() == ("attributes",)
    finally:
        con.close()
    return layers, rows


def test_geopackage_carries_its_qgis_style(outputs):
    for name in ("r.gpkg", "cv.gpkg"):
        layers, rows = _styles(outputs / name)
        assert layers == {r[0] for r in rows} and len(rows) == len(layers)
        for _, geom, default, qml, _ in rows:
            assert geom == "geom" and default == 1
            root = ET.fromstring(qml.split("\n", 1)[1])
            renderer = root.find("renderer-v2")
            assert renderer.get("type") == "categorizedSymbol" and renderer.get("attr") == "statut"
            cats = {c.get("value"): c.get("symbol") for c in renderer.iter("category")}
            assert set(cats) == {"incluse", "à cheval", "hors périmètre"}
            colours = {
                s.get("name"): next(p.get("v") for p in s.iter("prop") if p.get("k") == "color")
                for s in renderer.iter("symbol")
            }
            green = STATUS_COLOURS["inside"].lstrip("#")
            rgb = ",".join(str(int(green[i : i + 2], 16)) for i in (0, 2, 4))
            assert colours[cats["incluse"]].startswith(rgb + ",")


def test_geopackage_one_layer_per_perimeter(outputs):
    """Parcels × perimeters: one layer per perimeter, each parcel once in each (issue 25, item 8).

    Stacked in one layer, a parcel's identical polygons (one per perimeter) under one style
    showed whichever QGIS drew last.
    """
    import pyogrio

    table = read_excel_csv(outputs / "r.csv")
    perimeters = sorted(set(table["perimetre_id"]))
    assert len(perimeters) > 1
    layers, rows = _styles(outputs / "r.gpkg")
    assert layers == {f"r-{p}" for p in perimeters}
    names = dict(zip(table["perimetre_id"], table["perimetre_nom"], strict=False))
    for layer, *_, description in rows:
        assert description.startswith(names[layer[2:]] + " — ")
        part = pyogrio.read_dataframe(outputs / "r.gpkg", layer=layer)
        assert part["idu"].is_unique and set(part["perimetre_id"]) == {layer[2:]}
        assert len(part) == table["idu"].nunique()
    assert _styles(outputs / "cv.gpkg")[0] == {"cv"}  # one perimeter: one layer, named after the file


def test_tables_write_sections_as_the_annex_does(tmp_path):
    """``A 238``, not ``0A`` and ``0238`` (issue 25, item 8), with the planner's form beside the IDU."""
    import pandas as pd

    from geo.io import write_table

    frame = pd.DataFrame(
        {
            "idu": ["629990000A0238", "62999000AB0012", "62999123ZA0007"],
            "section": ["0A", "AB", "ZA"],
            "numero": ["0238", "0012", "0007"],
            "perimeter_id": "centre",
            "status": "inside",
            "share": 1.0,
        }
    )
    write_table(frame, tmp_path / "t.csv", layout=PARCELS)
    table = read_excel_csv(tmp_path / "t.csv")
    assert list(table.columns[:5]) == ["idu", "reference", "section", "numero", "perimetre_id"]
    assert table["reference"].tolist() == ["A 238", "AB 12", "123 ZA 7"]
    assert table["section"].tolist() == ["A", "AB", "ZA"] and table["numero"].tolist() == ["238", "12", "7"]
    write_table(frame, tmp_path / "t.xlsx", layout=PARCELS)
    ws = openpyxl.load_workbook(tmp_path / "t.xlsx")["Parcelles"]
    assert [c.value for c in ws[4]][:4] == ["Parcelle (IDU)", "Référence cadastrale", "Section", "Numéro"]
    assert [c.value for c in ws[5]][1:4] == ["A 238", "A", "238"]


def test_control_character_in_friche_statut_keeps_the_style_valid_xml(tmp_path):
    """A BEL in ``site_statut`` made the GeoPackage style invalid XML (issue 23, low)."""
    import geopandas as gpd
    from shapely.geometry import Point

    from geo.io import write_table

    friches = gpd.GeoDataFrame(
        {"site_id": ["f1", "f2"], "site_statut": ["friche sans projet", "en \x07cours\x1b"]},
        geometry=[Point(640000, 6900000), Point(640100, 6900100)],
        crs="EPSG:2154",
    )
    write_table(friches, tmp_path / "f.gpkg")
    (_, rows) = _styles(tmp_path / "f.gpkg")
    (qml,) = [r[3] for r in rows]
    root = ET.fromstring(qml.split("\n", 1)[1])
    values = {c.get("value") for c in root.iter("category")}
    assert {"friche sans projet", "en \\x07cours\\x1b"} <= values


def test_csv_text_has_no_mojibake(outputs):
    text = excel_text(outputs / "r.csv")
    assert "à cheval" in text and "périmètre" in text and "Ã" not in text


def test_every_column_is_documented():
    from pathlib import Path

    from geo.columns import LAYOUTS

    doc = (Path(__file__).resolve().parent.parent / "docs" / "tableaux.md").read_text(encoding="utf-8")
    for layout in LAYOUTS.values():
        for column in layout.columns:
            assert f"| `{column.name}` | {column.label} |" in doc, column.name
