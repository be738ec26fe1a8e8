"""Orientation layers, straddling parts, backgrounds, the annex you can sign, and ``ort diff``.

On the embedded demo (two versions of its perimeters: ``initiale`` and ``avenant-1``) and on
the real cadastre of Épinay-sur-Orge (91216, through the ``epinay_ort`` fixture). The diff is
checked against an independent computation with ``geopandas.overlay``; tiles are served by a
throw-away HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import html
import http.server
import io
import math
import re
import shutil
import subprocess
import threading

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner
from conftest import pdf_text
from PIL import Image

from geo import diff as diff_mod
from geo import settings
from geo.classify import classify_parcels
from geo.cli import main
from geo.maps import annex, tiles
from geo.maps import assets as map_assets
from geo.maps import layers as map_layers
from geo.maps import page as maps

# --------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def demo():
    """The embedded demo convention, its parcels and optional cadastre layers (Lambert-93)."""
    from geo import embedded
    from geo.app.load import load_parcels
    from geo.perimeters import read_convention
    from geo.sources import cadastre as cad

    conv = read_convention(embedded.convention_dir("demo"))
    parcels = load_parcels(conv, None, None, False)
    layers = cad.load_cadastre(conv.communes, ("sections", "batiments"), source_dir=conv.cadastre_dir)
    return conv, parcels, layers


@pytest.fixture(scope="module")
def demo_versions(demo):
    conv, parcels, _ = demo
    return conv.perimeters(version="initiale"), conv.perimeters(version="avenant-1")


def _layers(m) -> dict[str, maps.DataLayer]:
    return {c.key: c for c in m._children.values() if isinstance(c, maps.DataLayer)}


def _decode_points(items, q=10**6):
    cur = [0, 0]
    out = []
    for it in items:
        cur[0] += it[1]
        cur[1] += it[2]
        out.append((cur[0] / q, cur[1] / q))
    return out


# --------------------------------------------------------------------------------------------
# Orientation layers on the map


def test_demo_map_orientation_layers(demo, demo_versions):
    conv, parcels, layers = demo
    _, perims = demo_versions
    m = maps.convention_map(
        perims, parcels=parcels, sections=layers["sections"], buildings=layers["batiments"], title=conv.nom
    )
    got = _layers(m)
    for key in ("sections", "sections-noms", "batiments", "numeros", "parts-incluses"):
        assert key in got, key
    assert got["batiments"].show is False  # off by default: it would clutter
    assert got["sections"].show and got["numeros"].show
    assert (
        len(got["batiments"].spec["geoms"])
        == len(layers["batiments"])
        == m.ort_info["orientation"]["batiments"]
    )
    names = [it[0] for it in got["sections-noms"].spec["items"]]
    assert sorted(names) == sorted(f"Section {s.lstrip('0')}" for s in layers["sections"]["section"])
    assert {it[3] for it in got["sections-noms"].spec["items"]} == {map_layers.LABEL_ZOOM["section"]}
    assert got["numeros"].spec == {"layer": "parcelles", "minZoom": 18}
    page = maps.map_html(m)
    assert "ORT.parcelNumbers(" in page and "ORT.labels(" in page and "ORT.fills(" in page
    assert maps.external_resources(page) == []


def test_sections_dissolved_from_real_parcels_and_street_names(epinay_ort):
    """91216 has no sections file: outlines come from the parcels; street names from the BAN file."""
    from geo.sources.addresses import read_addresses

    parcels = epinay_ort["parcels"]
    sections = map_layers.sections_from_parcels(parcels)
    assert set(sections["section_id"]) == set(parcels["idu"].str[:10])
    # Each section's outline holds its parcels (to the dissolve's 5 cm).
    one = sections.iloc[0]
    members = parcels[parcels["idu"].str[:10] == one.section_id]
    assert one.geometry.buffer(0.1).contains(shapely.union_all(members.geometry.to_numpy()))
    addresses = read_addresses(epinay_ort["addresses"])
    folder = epinay_ort["folder"]
    from geo.perimeters import read_convention

    perims = read_convention(folder).perimeters(version="avenant-1")
    m = maps.convention_map(perims, parcels=parcels, addresses=addresses)
    voies = _layers(m)["voies"].spec["items"]
    assert sorted(it[0] for it in voies) == sorted(set(addresses["voie"]))
    assert {it[3] for it in voies} == {map_layers.LABEL_ZOOM["voie"]}
    assert len(_layers(m)["sections-noms"].spec["items"]) == len(sections)


def test_street_label_follows_its_addresses():
    """Addresses along a street at 30° give one label on the street, turned 30°."""
    crs = "EPSG:2154"
    angle = math.radians(30)
    x0, y0 = 650_000.0, 6_840_000.0
    pts = [(x0 + t * math.cos(angle), y0 + t * math.sin(angle)) for t in range(0, 400, 20)]
    ll = gpd.GeoSeries([shapely.Point(p) for p in pts], crs=crs).to_crs(4326)
    df = pd.DataFrame(
        {
            "voie": "Rue du Moulin",
            "voie_key": "RUE DU MOULIN",
            "code_insee": "91216",
            "lon": ll.x,
            "lat": ll.y,
        }
    )
    labels = map_layers.street_labels(df, crs)
    assert len(labels) == 1 and labels["voie"].iloc[0] == "Rue du Moulin"
    assert labels["angle"].iloc[0] == pytest.approx(30, abs=0.5)
    line = shapely.LineString(pts)
    assert line.distance(labels.geometry.iloc[0]) < 0.5


def test_straddling_parts_are_the_clipped_parcels(demo, demo_versions):
    """The filled layer is each straddling parcel cut by the ORT: same area as the classification."""
    _, parcels, _ = demo
    _, perims = demo_versions
    result = classify_parcels(parcels, perims)
    m = maps.convention_map(perims, parcels=parcels, classification=result)
    spec = _layers(m)["parts-incluses"].spec
    assert spec["styles"][0]["interactive"] is False  # clicks reach the parcel underneath
    strad = result[(result["perimeter_id"] == "ort") & (result["status"] == "straddling")]
    # Decode the parts and compare their area with the classification's area inside.
    cur = [0, 0]
    area = 0.0
    polys = []
    for f in spec["features"]:
        for poly in f[4]:
            rings = []
            for ring in poly:
                xy = []
                for i in range(0, len(ring), 2):
                    cur[0] += ring[i]
                    cur[1] += ring[i + 1]
                    xy.append((cur[0] / 1e6, cur[1] / 1e6))
                rings.append(xy)
            polys.append(shapely.Polygon(rings[0], rings[1:]))
    area = gpd.GeoSeries(polys, crs=4326).to_crs(parcels.crs).area.sum()
    assert area == pytest.approx(strad["area_inside_m2"].sum(), rel=0.01)
    # Straddling parcels themselves are pale; the legend says what the fill means.
    styles = _layers(m)["parcelles"].spec["styles"]
    assert styles["1"]["fillOpacity"] < styles["2"]["fillOpacity"]
    assert "partie incluse d'une parcelle à cheval" in html.unescape(m._children["ort_legend"].html)


def test_share_label_runtime_uses_french_numbers(demo, demo_versions):
    page = map_assets.static_text("ort-orient.js")
    assert 'replace(".", ",")' in page and "\\u00a0%" in page


# --------------------------------------------------------------------------------------------
# Backgrounds


def test_background_presets_and_attributions(demo, demo_versions):
    _, parcels, _ = demo
    _, perims = demo_versions
    plan = tiles.BACKGROUNDS["plan-ign"]
    assert plan.url.startswith("https://data.geopf.fr/wmts?") and "REQUEST=GetTile" in plan.url
    assert "LAYER=GEOGRAPHICALGRIDSYSTEMS.PLANIGNV2" in plan.url and "TILEMATRIXSET=PM" in plan.url
    assert "TILEMATRIX={z}&TILEROW={y}&TILECOL={x}" in plan.url and "IGN" in plan.attribution
    ortho = tiles.BACKGROUNDS["ortho-ign"]
    assert "LAYER=ORTHOIMAGERY.ORTHOPHOTOS" in ortho.url and "FORMAT=image/jpeg" in ortho.url
    assert "OpenStreetMap" in tiles.BACKGROUNDS["osm"].attribution
    m = maps.convention_map(perims, parcels=parcels, tiles="plan-ign")
    page = maps.map_html(m)
    assert "data.geopf.fr/wmts" in page and "Plan IGN" in page and "ORT.tileNotice(" in page
    assert m.ort_info["background"] == "plan-ign"
    with pytest.raises(Exception, match="fond de carte inconnu"):
        tiles.background("google")


class _TileHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.server.hits.append(self.path)
        if self.server.fail:
            self.send_error(503)
            return
        buf = io.BytesIO()
        Image.new("RGB", (256, 256), (30, 120, 200)).save(buf, format="PNG")
        body = buf.getvalue()
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def tile_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TileHandler)
    server.hits, server.fail = [], False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}/{{z}}/{{x}}/{{y}}.png"
    finally:
        server.shutdown()
        server.server_close()


def _small_demo(demo_versions):
    _, perims = demo_versions
    keep = perims[perims["perimeter_id"].isin(["gare", "ort"])].copy()
    keep.attrs.update(perims.attrs)
    return keep


def test_annex_background_fetched_once_then_from_the_cache(demo, demo_versions, tile_server, monkeypatch):
    server, url = tile_server
    _, parcels, _ = demo
    perims = _small_demo(demo_versions)
    doc = annex.annex_pages(perims, parcels, background=url, tables_in_pdf=False)
    assert server.hits and not doc.notices
    n = len(server.hits)
    assert len(set(server.hits)) == n  # each tile once
    ax = doc.pages[1].figure.axes[0]
    assert ax.images  # the background is drawn under the parcels
    again = annex.annex_pages(perims, parcels, background=url, tables_in_pdf=False)
    assert len(server.hits) == n and again.pages[1].figure.axes[0].images  # all from the cache
    monkeypatch.setattr(settings, "offline", True)
    cached = annex.annex_pages(perims, parcels, background=url, tables_in_pdf=False)
    assert not cached.notices and len(server.hits) == n


def test_annex_offline_without_tiles_is_still_produced(
    demo, demo_versions, tile_server, tmp_path, monkeypatch
):
    server, url = tile_server
    _, parcels, _ = demo
    perims = _small_demo(demo_versions)
    monkeypatch.setattr(settings, "offline", True)
    doc = annex.annex_pages(perims, parcels, background=url, tables_in_pdf=False)
    assert server.hits == [] and doc.notices and "annexe produite sans fond de plan" in doc.notices[0]
    annex.write_annex(doc, tmp_path)
    text = " ".join(pdf_text(tmp_path / "annexe.pdf", layout=True).split())
    assert "annexe produite sans fond de plan" in text
    # Server errors too: the annex is drawn without background.
    monkeypatch.setattr(settings, "offline", False)
    monkeypatch.setattr(settings, "http_retries", 1)
    server.fail = True
    doc = annex.annex_pages(perims, parcels, background=url, tables_in_pdf=False)
    assert doc.notices and not doc.pages[1].figure.axes[0].images


# --------------------------------------------------------------------------------------------
# The annex you can sign


@pytest.fixture(scope="module")
def demo_annex(demo, demo_versions, tmp_path_factory):
    conv, parcels, layers = demo
    _, perims = demo_versions
    keep = perims[perims["perimeter_id"].isin(["faubourg", "opah-ru-centre", "ort"])].copy()
    keep.attrs.update(perims.attrs)
    orient = annex.orientation_layers(parcels, sections=layers["sections"], buildings=layers["batiments"])
    doc = annex.annex_pages(
        keep,
        parcels,
        title=conv.nom,
        fictif=True,
        annex_number="3",
        reference="Convention ORT signée le 15/03/2023",
        orient=orient,
        production_date=dt.date(2025, 2, 3),
    )
    out = tmp_path_factory.mktemp("demo-annex")
    annex.write_annex(doc, out)
    return doc, out, keep


def test_annex_round_scales_and_frame(demo_annex):
    doc, _, _ = demo_annex
    for page in (p for p in doc.pages if p.png):
        fig = page.figure
        ax = fig.axes[0]
        footer = [t.get_text() for t in fig.texts if t.get_text().startswith("Échelle 1:")][0]
        denom = int(re.sub(r"\D", "", re.match(r"Échelle 1:([\d\u202f ]+)", footer).group(1)))
        assert denom in annex.SCALES
        width_m = ax.get_xlim()[1] - ax.get_xlim()[0]
        frame_mm = ax.get_position().width * fig.get_figwidth() * 25.4
        assert width_m * 1000 / frame_mm == pytest.approx(denom, rel=1e-3)  # pages are whole pixels
        # Labels stay inside the frame: every text of the map axes is clipped and inside its limits.
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        for t in ax.texts:
            x, y = t.get_position()
            assert x0 <= x <= x1 and y0 <= y <= y1
        # North arrow on a white backing; the situation inset is its own axes.
        assert any(
            type(p).__name__ == "FancyBboxPatch" and p.get_facecolor()[:3] == (1, 1, 1) for p in ax.patches
        )
        assert any(a.get_title() == "Situation dans la commune" for a in fig.axes)


def test_annex_pdf_holds_scale_reference_pages_tables_and_period(demo_annex, demo):
    doc, out, keep = demo_annex
    text = pdf_text(out / "annexe.pdf", layout=True)
    flat = " ".join(text.split())
    n = len(doc.pages)
    for k in range(1, n + 1):
        assert f"Annexe n° 3 — page {k}/{n}" in flat
    assert flat.count("Convention ORT signée le 15/03/2023") == n
    # (split() also splits on the narrow no-break space of French thousands)
    assert re.search(r"Échelle 1:(1 000|2 000|2 500|5 000|10 000|20 000) \(impression A4 paysage\)", flat)
    # The parcel list as a table, with French numbers.
    assert "Section N° Contenance Surface incluse Part incluse" in flat
    table = doc.tables["faubourg"]
    strad = table[table["status"] == "straddling"].iloc[0]
    share = " ".join(fmt_pct(strad.share).split())
    assert re.search(rf"\b{int(strad.idu[10:])} [\d ]+ m² [\d ]+ m² {re.escape(share)}", flat)
    # OPAH-RU page with its period; the hole of the Faubourg explained in the legend.
    assert "Périmètre OPAH-RU : OPAH-RU du centre ancien — du 01/01/2024 au 31/12/2028" in flat
    assert "Enclave exclue de « Faubourg » (1)" in flat
    assert "ne sont pas dans le périmètre" in flat
    assert "Parcelle à cheval : partie incluse (part en %)" in flat
    # Signed: the visa line (dotted without a date) and the default signature boxes.
    maps_n = sum(p.png for p in doc.pages)
    assert flat.count("Vu pour être annexé à la convention") == maps_n and "» du ……" in flat
    assert "Pour la commune" in flat and "Pour l'État" in flat
    # Totals under each list: count, contenance, surface inside.
    from geo import fmt

    n = len(table)
    total = fmt.area_m2(float(table["contenance"].sum()))
    inside = fmt.area_m2(float(table["area_inside_m2"].sum()))
    assert f"Total : {n} parcelles" in flat
    assert " ".join(total.split()) in flat and " ".join(inside.split()) in flat


def test_annex_panel_boxes_never_overlap(demo_annex):
    """Legend, panel text, visa line and boxes, situation inset, map and the sources line: the
    bounding boxes of what is drawn are apart on every map page (issue 25: the inset covered the
    sources)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    doc, _, _ = demo_annex
    for page in (p for p in doc.pages if p.png):
        fig = page.figure
        renderer = FigureCanvasAgg(fig).get_renderer()
        fig.draw(renderer)
        named = {}
        for artist in fig.findobj(lambda a: (a.get_gid() or "").startswith(("panel-", "page-"))):
            named.setdefault(artist.get_gid(), []).append(artist.get_window_extent(renderer))
        assert {"panel-legend", "panel-text", "panel-visa", "panel-visa-box", "page-sources"} <= set(named)
        inset = next(a for a in fig.axes if a.get_title() == "Situation dans la commune")
        named["inset"] = [inset.get_tightbbox(renderer)]
        named["map"] = [fig.axes[0].get_window_extent(renderer)]
        boxes = [(k, b) for k, bs in named.items() for b in bs if k != "panel-visa-name"]
        for i, (ka, a) in enumerate(boxes):
            for kb, b in boxes[i + 1 :]:
                assert not a.overlaps(b), (page.name, ka, kb)
        text = next(t for t in fig.texts if t.get_gid() == "panel-text")
        assert text.get_fontsize() >= 5.5 and text.get_text().strip()


def test_annex_number_default_and_sections_in_planners_order(demo, demo_versions):
    from geo.maps.drawing import section_key

    assert sorted(["AB", "D", "0A", "B", "ZA", "AA"], key=section_key) == ["0A", "B", "D", "AA", "AB", "ZA"]
    assert sorted([("A", "10"), ("A", "9"), ("A", "0100")], key=lambda r: section_key(*r)) == [
        ("A", "9"), ("A", "10"), ("A", "0100"),
    ]  # fmt: skip
    conv, parcels, _ = demo
    _, perims = demo_versions
    keep = perims[perims["perimeter_id"].isin(["centre-ville", "ort"])].copy()
    keep.attrs.update(perims.attrs)
    doc = annex.annex_pages(
        keep, parcels, title=conv.nom, tables_in_pdf=False, production_date=dt.date(2025, 2, 3)
    )
    marks = [t.get_text() for p in doc.pages for t in p.figure.texts if "page 1/" in t.get_text()]
    assert marks == [f"Annexe — page 1/{len(doc.pages)}"]
    table = doc.tables["centre-ville"]
    keys = [section_key(i[8:10], i[10:]) for i in table["idu"]]
    assert keys == sorted(keys) and len({k[1] for k in keys}) > 1


def fmt_pct(share: float) -> str:
    from geo import fmt

    return fmt.percent(share)


def test_annex_pages_look_right(demo_annex):
    """PNG pages at 300 dpi; the PDF rasterised by pdftoppm (pages looked at in the closing note)."""
    doc, out, _ = demo_annex
    with Image.open(out / "00-ensemble.png") as img:
        assert img.size == (3508, 2480)
    if shutil.which("pdftoppm"):
        subprocess.run(
            [
                "pdftoppm",
                "-r",
                "30",
                "-png",
                "-f",
                "1",
                "-l",
                "2",
                str(out / "annexe.pdf"),
                str(out / "apercu"),
            ],
            check=True,
        )
        pngs = sorted(out.glob("apercu*.png"))
        assert len(pngs) == 2
        with Image.open(pngs[0]) as img:
            px = np.asarray(img.convert("L"))
            assert px.std() > 20  # not a blank page


# --------------------------------------------------------------------------------------------
# ort diff


def _independent_diff(parcels, before, after, min_change=0.001):
    """The changes recomputed with geopandas.overlay and the classification's noise rule."""

    def touching(perims):
        inter = gpd.overlay(
            parcels[["idu", "geometry"]],
            perims[["perimeter_id", "geometry"]],
            how="intersection",
            keep_geom_type=True,
        )
        inter["a"] = inter.area
        inter = inter.groupby(["idu", "perimeter_id"], as_index=False)["a"].sum()
        area = parcels.set_index("idu").area
        inter["area"] = inter["idu"].map(area)
        noise = np.maximum(settings.tolerance_m2, settings.tolerance_pct / 100 * inter["area"])
        tiny = inter["area"] <= noise
        keep = np.where(tiny, inter["a"] / inter["area"] > 0.5, inter["a"] > noise)
        inter = inter[keep]
        share = inter["a"] / inter["area"]
        return {
            (i, p): min(s, 1.0) for i, p, s in zip(inter["idu"], inter["perimeter_id"], share, strict=True)
        }

    old, new = touching(before), touching(after)
    out = {}
    for key in set(old) | set(new):
        if key not in old:
            out[key] = "enters"
        elif key not in new:
            out[key] = "leaves"
        elif abs(new[key] - old[key]) >= min_change:
            out[key] = "share_changed"
    return out, old, new


def test_diff_of_the_demo_versions_matches_an_overlay(demo, demo_versions):
    _, parcels, _ = demo
    before, after = demo_versions
    got = diff_mod.perimeter_diff(parcels, before, after)
    expected, old, new = _independent_diff(parcels, before, after)
    mine = {(r.idu, r.perimeter_id): r.change for r in got.itertuples(index=False)}
    # Shares within a hair of the threshold may fall either way: leave them out.
    border = {k for k in set(old) & set(new) if abs(abs(new[k] - old[k]) - 0.001) < 1e-6}
    assert {k: v for k, v in mine.items() if k not in border} == {
        k: v for k, v in expected.items() if k not in border
    }
    assert len(mine) > 50 and set(got["change"]) >= {"enters"}
    for r in got.itertuples(index=False):
        assert r.share_before == pytest.approx(old.get((r.idu, r.perimeter_id), 0.0), abs=1e-6)
        assert r.share_after == pytest.approx(new.get((r.idu, r.perimeter_id), 0.0), abs=1e-6)
    summary = diff_mod.diff_summary(got)
    assert list(summary.columns) == ["perimetre_id", "perimetre_nom", "entrent", "sortent", "part_modifiee"]


def test_diff_on_the_real_cadastre(epinay_ort):
    """91216: the avenant adds a station sector and an OPAH-RU cutting parcel AC 100."""
    from geo.perimeters import read_convention

    conv = read_convention(epinay_ort["folder"])
    parcels = epinay_ort["parcels"]
    before, after = conv.perimeters(version="initiale"), conv.perimeters(version="avenant-1")
    got = diff_mod.perimeter_diff(parcels, before, after)
    expected, _, _ = _independent_diff(parcels, before, after)
    mine = {(r.idu, r.perimeter_id): r.change for r in got.itertuples(index=False)}
    assert mine == expected
    assert set(got.loc[got["perimeter_id"] == "gare", "change"]) == {"enters"}
    assert "centre-ville" not in set(got["perimeter_id"])  # unchanged sector: nothing to say
    ac100 = got[(got["idu"] == epinay_ort["idu"]) & (got["perimeter_id"] == "opah-ru")].iloc[0]
    assert ac100.change == "enters" and 0 < ac100.share_after < 1


def test_cli_diff_table_map_and_annex_page(tmp_path):
    csv, xlsx, html_path, folder = (
        tmp_path / "avenant.csv",
        tmp_path / "avenant.xlsx",
        tmp_path / "avenant.html",
        tmp_path / "annexe",
    )
    r = CliRunner().invoke(
        main,
        [
            "diff",
            "-p",
            "demo",
            "--avant",
            "initiale",
            "--apres",
            "avenant-1",
            "-o",
            csv,
            "-o",
            xlsx,
            "--carte",
            html_path,
            "--annexe",
            folder,
            "--numero",
            "4",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "Traceback" not in r.output and "Quartier de la gare :" in r.output
    from excel import read_excel_csv

    table = read_excel_csv(csv)
    assert {
        "idu",
        "section",
        "numero",
        "perimetre_id",
        "changement",
        "part_avant_pct",
        "part_apres_pct",
    } <= set(table.columns)
    assert set(table["changement"]) <= {"entre", "sort", "part modifiée"}
    sheet = pd.read_excel(xlsx, header=3)
    assert "Changement" in sheet.columns and len(sheet) == len(table)
    page = html_path.read_text(encoding="utf-8")
    assert "Modifications de l\\u0027avenant" in page or "Modifications de l'avenant" in page
    assert maps.external_resources(page) == []
    text = " ".join(pdf_text(folder / "avenant.pdf", layout=True).split())
    assert "Modifications des périmètres" in text and "Liste des changements" in text
    assert re.search(r"Annexe n° 4 — page 1/\d+", text) and "Échelle 1:" in text
    assert (folder / "avenant-carte.png").exists()
    # Before dashed, after solid; a zoomed page per changed area; the 123 changes on 2 table pages.
    assert "Périmètres avant l'avenant (tirets)" in text and "Zone modifiée 1/1 : 123 parcelle(s)" in text
    assert "Liste des changements — Modifications des périmètres par l'avenant (suite 2/2)" in text
    assert re.search(r"Annexe n° 4 — page 4/4", text)
    again = CliRunner().invoke(main, ["diff", "-p", "demo", "-o", csv])
    assert again.exit_code != 0 and "--force" in again.output
    bad = CliRunner().invoke(main, ["diff", "-p", "demo", "--apres", "avenant-9", "-o", tmp_path / "x.csv"])
    assert bad.exit_code != 0 and "avenant-9" in bad.output and "Traceback" not in bad.output


def test_diff_map_layer(demo, demo_versions):
    _, parcels, _ = demo
    before, after = demo_versions
    d = diff_mod.perimeter_diff(parcels, before, after)
    m = maps.convention_map(after, parcels=parcels, diff=d, diff_before=before)
    got = _layers(m)
    feats = got["modifications"].spec["features"]
    assert len(feats) == len(d[d["perimeter_id"] != "ort"])
    assert "perimetres-avant" in got
    rows = dict(map(tuple, feats[0][2]))
    assert rows["Changement"] in map_layers.DIFF_LABELS.values() and rows["Part incluse après"].endswith(
        "\u00a0%"
    )


def test_lieux_dits_layer(demo, demo_versions):
    _, parcels, _ = demo
    _, perims = demo_versions
    cv = perims.set_index("perimeter_id").geometry["centre-ville"]
    lieux = gpd.GeoDataFrame(
        {"nom": ["Le Champ du Moulin", None]}, geometry=[cv, cv.centroid.buffer(30)], crs=perims.crs
    )
    m = maps.convention_map(perims, parcels=parcels, lieux_dits=lieux)
    items = _layers(m)["lieux-dits"].spec["items"]
    assert [it[0] for it in items] == ["Le Champ du Moulin"]  # nameless ones are not labelled
    ((lon, lat),) = _decode_points(items)
    pt = gpd.GeoSeries([shapely.Point(lon, lat)], crs=4326).to_crs(perims.crs).iloc[0]
    assert cv.buffer(1).contains(pt)


def test_tile_failure_notice_in_a_real_browser(demo, demo_versions, tile_server, tmp_path):
    """Tiles that fail (here: HTTP 503 from 127.0.0.1) put a French notice on the map."""
    import test_browser

    test_browser._require_browser()
    from playwright.sync_api import sync_playwright

    server, url = tile_server
    server.fail = True
    _, parcels, _ = demo
    _, perims = demo_versions
    m = maps.convention_map(perims, parcels=parcels, tiles=url, tiles_attribution="Serveur d'essai")
    path = maps.save_offline(m, tmp_path / "carte.html")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path / "profil"),
            executable_path=str(test_browser.CHROMIUM),
            headless=True,
            args=test_browser.ARGS,
            viewport=test_browser.VIEWPORT,
        )
        try:
            tab = ctx.new_page()
            tab.goto(path.as_uri())
            tab.wait_for_function("window.ORT && ORT.ready === true", timeout=30_000)
            notice = tab.wait_for_selector(".ort-tile-notice", timeout=15_000)
            assert "indisponible" in notice.inner_text() and server.hits
            assert "Serveur d'essai" in tab.inner_text(".leaflet-control-attribution")
            # Parcel numbers appear at large scale, with the share of straddling parcels.
            tab.evaluate("ORT.map.setZoom(18); 0")
            tab.wait_for_timeout(600)
            labels = tab.eval_on_selector_all(
                ".ort-label-share .ort-label-text", "els => els.map(e => e.textContent)"
            )
            numbers = tab.eval_on_selector_all(".ort-label-num .ort-label-text", "els => els.length")
            assert numbers > 10 and all(re.fullmatch(r"\d+ · \d+,\d\u00a0%", t) for t in labels)
        finally:
            ctx.close()
