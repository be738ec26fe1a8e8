"""The interactive map and the printed annex, tested by structure (no browser: see test_browser.py).

Folium element ids are random, so nothing here compares whole pages: the tests read the
layers' data, the legend, the bounds and the saved file, and decode the compact geometries
back to coordinates. Real parcels of Épinay-sur-Orge (91216) with perimeters drawn here, and
the embedded demo.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner
from excel import excel_number, read_excel_csv
from PIL import Image
from shapely.geometry import MultiPolygon, Point, Polygon, box

from geo import fmt
from geo.classify import classify_parcels
from geo.cli import main
from geo.errors import CRSError, InputError, OrtError, OutputExistsError
from geo.maps import annex
from geo.maps import layers as maps_layers
from geo.maps import page as maps
from geo.perimeters import add_ort_union

XSS = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(1)</script>"
L93 = "EPSG:2154"


# --------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def epinay(epinay_parcelles):
    """Real parcels of 91216 with three drawn perimeters: a centre-ville disc, a station box, OPAH-RU."""
    from geo.sources.cadastre import read_parcels

    parcels = read_parcels(epinay_parcelles)
    minx, miny, maxx, maxy = parcels.total_bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    perims = gpd.GeoDataFrame(
        {
            "perimeter_id": ["centre-ville", "gare", "opah-ru"],
            "type": ["secteur", "secteur", "opah_ru"],
            "nom": ["Centre-ville", "Gare", "OPAH-RU du centre"],
            "centre_ville": [True, False, False],
        },
        geometry=[
            Point(cx, cy).buffer(400),
            box(cx + 500, cy - 300, cx + 1100, cy + 300),
            Point(cx, cy).buffer(250),
        ],
        crs=parcels.crs,
    )
    perims = add_ort_union(perims)
    perims.attrs.update(version="initiale", version_libelle="Convention initiale", version_date="2023-01-18")
    result = classify_parcels(parcels, perims)
    return parcels, perims, result


@pytest.fixture(scope="module")
def epinay_map(epinay):
    parcels, perims, result = epinay
    return maps.convention_map(perims, parcels=parcels, classification=result, title="ORT d'Épinay (test)")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from geo.app.load import load_parcels as _load_parcels
    from geo.demo.commune import build_demo
    from geo.perimeters import read_convention

    root = tmp_path_factory.mktemp("demo")
    paths = build_demo(data_dir=root / "data" / "demo", perimeters_dir=root / "perimeters" / "demo")
    conv = read_convention(paths.perimeters_dir)
    perims = conv.perimeters("2024-09-01", in_force_only=True)
    parcels = _load_parcels(conv, None, None, False)
    return paths, conv, perims, parcels, classify_parcels(parcels, perims)


def _layers(m) -> dict[str, maps.DataLayer]:
    return {c.key: c for c in m._children.values() if isinstance(c, maps.DataLayer)}


def _legend(m) -> str:
    return m._children["ort_legend"].html


def _decode(features_geoms: list, q: int = 10**6) -> list:
    """Python twin of the runtime's decoder: delta-coded integers back to (lon, lat)."""
    cur = [0, 0]
    out = []
    for g in features_geoms:
        if g and isinstance(g[0], int):
            cur[0] += g[0]
            cur[1] += g[1]
            out.append((cur[0] / q, cur[1] / q))
            continue
        polys = []
        for poly in g:
            rings = []
            for ring in poly:
                pts = []
                for i in range(0, len(ring), 2):
                    cur[0] += ring[i]
                    cur[1] += ring[i + 1]
                    pts.append((cur[0] / q, cur[1] / q))
                rings.append(pts)
            polys.append(rings)
        out.append(polys)
    return out


def _parcel_entries(layer: maps.DataLayer) -> dict[str, list]:
    return {prefix + p[0]: p for prefix, rows in layer.spec["groups"] for p in rows}


def _pdf_text(path) -> str:
    if shutil.which("pdftotext"):
        return subprocess.run(
            ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True
        ).stdout.decode()
    try:
        from pypdf import PdfReader
    except ImportError:
        msg = "neither pdftotext (poppler-utils, .ci/install-browser) nor pypdf is installed"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return "\n".join(page.extract_text() for page in PdfReader(str(path)).pages)


# --------------------------------------------------------------------------------------------
# Geometry encoding


def test_encode_round_trip_polygon_hole_multipolygon_point():
    """Each shape comes back to its coordinates rounded to 6 decimals, rings without closing vertex."""
    hole = Polygon(
        [(2.0, 48.0), (2.001, 48.0), (2.001, 48.001), (2.0, 48.001)],
        [[(2.0004, 48.0004), (2.0006, 48.0004), (2.0006, 48.0006)]],
    )
    multi = MultiPolygon([box(2.01, 48.01, 2.0101234567, 48.0101), box(2.02, 48.02, 2.0201, 48.0201)])
    point = Point(2.1234567, 48.7654321)
    geoms = np.array([hole, point, multi], dtype=object)
    decoded = _decode(maps_layers.encode_geometries(geoms))
    assert decoded[1] == pytest.approx((2.123457, 48.765432), abs=1e-9)
    for shape, polys in ((hole, decoded[0]), (multi, decoded[2])):
        parts = list(shape.geoms) if hasattr(shape, "geoms") else [shape]
        assert len(polys) == len(parts)
        for part, rings in zip(parts, polys, strict=True):
            expected = [part.exterior, *part.interiors]
            assert len(rings) == len(expected)
            for ring, exp in zip(rings, expected, strict=True):
                coords = np.round(np.asarray(exp.coords)[:-1], 6)
                assert np.allclose(np.asarray(ring), coords, atol=1e-9)


def test_encode_refuses_lines():
    with pytest.raises(InputError, match="LineString"):
        maps_layers.encode_geometries(np.array([shapely.LineString([(0, 0), (1, 1)])], dtype=object))


def test_parcel_coordinates_rounded_and_close_to_the_cadastre(epinay, epinay_map):
    """Decoded parcels stay within the simplification tolerance (0.3 m) plus 0.1 m of rounding."""
    parcels, _, _ = epinay
    layer = _layers(epinay_map)["parcelles"]
    entries = _parcel_entries(layer)
    order = list(entries)
    decoded = dict(zip(order, _decode([entries[i][5] for i in order]), strict=True))
    wgs = parcels.set_index("idu").geometry.to_crs(4326)
    sample = [i for k, i in enumerate(order) if k % 97 == 0 and entries[i][2] != 3]  # near parcels
    assert len(sample) > 10
    for idu in sample:
        poly = Polygon(decoded[idu][0][0], decoded[idu][0][1:])
        back = gpd.GeoSeries([poly], crs=4326).to_crs(L93).iloc[0]
        truth = parcels.set_index("idu").geometry[idu]
        assert back.hausdorff_distance(truth) < 0.45, idu
        assert all(round(x, 6) == x for x, _ in decoded[idu][0][0])
    assert len(wgs) == len(order)


# --------------------------------------------------------------------------------------------
# Map structure


def test_layers_control_scale_and_search(epinay_map):
    layers = _layers(epinay_map)
    names = ["parcelles", "parts-incluses", "sections", "sections-noms", "numeros", "perimetres"]
    assert list(layers) == names
    assert any(isinstance(c, folium.LayerControl) for c in epinay_map._children.values())
    assert layers["parcelles"].kind == "parcels" and layers["parcelles"].extra == ", true"  # searchable
    page = maps.map_html(epinay_map)
    assert "L.control.scale({imperial: false" in page  # runtime's scale bar, metric only
    assert "ORT.search(" in page and "ORT.finish(" in page
    assert '"Parcelles (statut / ORT)"' in page and "L.control.layers(" in page


def test_perimeter_popups_and_styles(epinay, epinay_map):
    _, perims, _ = epinay
    spec = _layers(epinay_map)["perimetres"].spec
    assert spec["kind"] == "outline"  # parcels underneath get the clicks
    titles = [f[1] for f in spec["features"]]
    assert titles == ["Centre-ville", "Gare", "OPAH-RU du centre"]  # the ort union is not drawn
    cv = dict(map(tuple, spec["features"][0][2]))
    assert cv["Type"] == "Secteur d'intervention ORT" and cv["Centre-ville"] == "oui"
    assert cv["Version"] == "initiale (18/01/2023)"
    area_ha = perims.geometry.area[0] / 10_000
    assert cv["Surface"].startswith(f"{area_ha:.2f}".replace(".", ","))
    styles = spec["styles"]
    assert styles[0]["color"] == maps.CENTRE_VILLE_COLOUR and styles[0]["weight"] == 4
    assert styles[2]["color"] == maps.OPAH_RU_COLOUR and "dashArray" in styles[2]


def test_parcel_popup_data_status_and_share(epinay, epinay_map):
    """Each parcel carries contenance, its colour status against the ORT and its share per perimeter."""
    parcels, _, result = epinay
    layer = _layers(epinay_map)["parcelles"]
    entries = _parcel_entries(layer)
    names = layer.spec["perimeters"]
    assert names[0] == "ORT (ensemble des secteurs)" and set(names[1:]) == {
        "Centre-ville",
        "Gare",
        "OPAH-RU du centre",
    }
    strad = result[(result["perimeter_id"] == "gare") & (result["status"] == "straddling")].iloc[0]
    entry = entries[strad.idu]
    assert entry[2] == 1  # straddling the ORT too (gare does not touch the other sectors)
    gare = [s for s in entry[3] if names[s[0]] == "Gare"][0]
    assert gare[1] == 1 and gare[2] == round(strad.share * 1000)
    inside = result[(result["perimeter_id"] == "opah-ru") & (result["status"] == "inside")].iloc[0]
    entry = entries[inside.idu]
    by_name = {names[s[0]]: s for s in entry[3]}
    assert entry[2] == 2 and by_name["OPAH-RU du centre"][1:] == [2, 1000] and by_name["Centre-ville"][1] == 2
    cont = parcels.set_index("idu").at[inside.idu, "contenance"]
    assert entry[1] == int(cont)
    assert layer.spec["statusLabels"][:3] == ["hors périmètre", "à cheval", "incluse"]


def test_legend_counts_sources_and_mention(epinay, epinay_map):
    parcels, _, result = epinay
    legend = _legend(epinay_map)
    ort = result[result["perimeter_id"] == "ort"]["status"].value_counts()
    text = html.unescape(re.sub(r"<[^>]+>", "|", legend))
    assert f"incluses ({fmt.number(ort['inside'])})" in text
    assert f"à cheval ({fmt.number(ort['straddling'])})" in text
    assert "Centre-ville (centre-ville)" in text and "OPAH-RU du centre (OPAH-RU)" in text
    assert "version « Convention initiale » du 18/01/2023" in text
    assert f"millésime {parcels.attrs['millesime']}" in text
    assert maps.CADASTRE_MENTION in text


def test_bounds_fit_the_perimeters(epinay, epinay_map):
    _, perims, _ = epinay
    (s, w), (n, e) = epinay_map.ort_bounds
    minx, miny, maxx, maxy = perims.to_crs(4326).total_bounds
    assert (w, s, e, n) == pytest.approx((minx, miny, maxx, maxy), abs=2e-6)
    fits = [c for c in epinay_map._children.values() if isinstance(c, folium.map.FitBounds)]
    assert len(fits) == 1 and fits[0].bounds == epinay_map.ort_bounds


def test_far_parcels_light_drop_keep(epinay):
    parcels, perims, result = epinay
    far_zone = shapely.union_all(perims[perims["type"] != "ort"].geometry.to_numpy()).buffer(200)
    n_far = int((~parcels.intersects(far_zone)).sum())
    assert 500 < n_far < len(parcels)
    light = maps.convention_map(perims, parcels=parcels, classification=result)
    drop = maps.convention_map(perims, parcels=parcels, classification=result, far_parcels="drop")
    keep = maps.convention_map(perims, parcels=parcels, classification=result, far_parcels="keep")
    assert light.ort_info["parcels_drawn"] == keep.ort_info["parcels_drawn"] == len(parcels)
    assert drop.ort_info["parcels_dropped"] == n_far == light.ort_info["parcels_far"]
    assert drop.ort_info["parcels_drawn"] == len(parcels) - n_far
    assert f"{fmt.number(n_far)} parcelles à plus de 200 m des périmètres non affichées" in html.unescape(
        _legend(drop)
    )
    light_codes = [p[2] for p in _parcel_entries(_layers(light)["parcelles"]).values()]
    assert light_codes.count(3) == n_far
    # Lightened parcels have fewer vertices; dropped ones are not in the page at all.
    size = {k: len(maps.map_html(m)) for k, m in (("light", light), ("drop", drop), ("keep", keep))}
    assert size["drop"] < size["light"] < size["keep"]


def test_classification_computed_when_missing(epinay):
    parcels, perims, result = epinay
    m = maps.convention_map(perims, parcels=parcels)
    ort = result[result["perimeter_id"] == "ort"]["status"].value_counts()
    assert m.ort_info["inside"] == ort["inside"] and m.ort_info["straddling"] == ort["straddling"]


def test_refuses_degrees_and_missing_crs(epinay):
    parcels, perims, _ = epinay
    with pytest.raises(CRSError, match="pas un CRS métrique"):
        maps.convention_map(perims.to_crs(4326))
    with pytest.raises(CRSError, match="pas de système de coordonnées"):
        maps.convention_map(perims, parcels=parcels.set_crs(None, allow_override=True))
    with pytest.raises(InputError, match="far_parcels"):
        maps.convention_map(perims, far_parcels="some")


# --------------------------------------------------------------------------------------------
# Escaping and offline


def test_text_from_data_is_escaped(epinay, tmp_path):
    parcels, perims, result = epinay
    evil = perims.copy()
    evil.loc[0, "nom"] = XSS
    evil.attrs.update(perims.attrs, version_libelle=SCRIPT)
    actions = gpd.GeoDataFrame(
        {"titre": [XSS], "axe": [SCRIPT], "statut": ["en cours"]},
        geometry=[evil.geometry[0].centroid],
        crs=L93,
    )
    m = maps.convention_map(
        evil, parcels=parcels.head(300), classification=result, actions=actions, title=SCRIPT, fictif=True
    )
    page = maps.map_html(m)
    assert "<img src=x" not in page and "<script>alert" not in page
    assert f"<title>{html.escape(SCRIPT)}</title>" in page
    # The legend holds the escaped text (shown as text by the browser), inside an escaped JSON string.
    assert "\\u0026lt;img src=x onerror=alert(1)\\u0026gt;" in page
    # Popups and tooltips get the raw text, turned into DOM text nodes by the runtime.
    assert _layers(m)["actions"].spec["features"][0][1] == XSS
    assert "\\u003cimg src=x onerror=alert(1)\\u003e" in page
    for name in ("ort-map.js", "ort-orient.js"):  # popups and labels never parse HTML
        assert "innerHTML" not in maps._assets.static_text(name), name
    saved = maps.save_offline(m, tmp_path / "evil.html").read_text(encoding="utf-8")
    assert "<img src=x" not in saved and "<script>alert" not in saved


def test_saved_html_loads_nothing_from_the_network(epinay_map, tmp_path):
    path = maps.save_offline(epinay_map, tmp_path / "carte.html")
    page = path.read_text(encoding="utf-8")
    assert maps.external_resources(page) == []
    # Outside scripts (Leaflet's code holds a link text it never uses here), no remote src/href.
    markup = re.sub(r"<script>.*?</script>", "", page, flags=re.DOTALL)
    assert "<script" not in markup  # every script is inline
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", markup, flags=re.IGNORECASE)
    assert "<script src" not in page and "<link " not in page
    assert "Leaflet 1.9.3" in page  # inlined from xstatic-leaflet
    assert "url(images/" not in page and "data:image/png;base64," in page
    assert len(page) < 1_500_000  # 4,241 parcels + Leaflet


def test_external_resources_finds_cdn_links_and_save_refuses_them(epinay, tmp_path):
    plain = folium.Map(location=[48.6, 2.3])
    found = maps.external_resources(plain.get_root().render())
    assert any("leaflet@1.9.3" in f for f in found) and any("jquery" in f for f in found)
    _, perims, _ = epinay
    m = maps.convention_map(perims)
    from folium.plugins import MeasureControl

    m.add_child(MeasureControl())
    with pytest.raises(OrtError, match="ne marcherait pas hors ligne"):
        maps.save_offline(m, tmp_path / "x.html")
    assert not (tmp_path / "x.html").exists()


def test_save_offline_never_overwrites_without_force(epinay, tmp_path):
    _, perims, _ = epinay
    m = maps.convention_map(perims, title="A")
    target = tmp_path / "carte.html"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(OutputExistsError):
        maps.save_offline(m, target)
    assert target.read_text(encoding="utf-8") == "old"
    maps.save_offline(m, target, force=True)
    assert "<title>A</title>" in target.read_text(encoding="utf-8")
    assert [p.name for p in tmp_path.iterdir()] == ["carte.html"]  # no temporary file left


def test_tiles_are_optional_and_the_only_network_use(epinay):
    _, perims, _ = epinay
    m = maps.convention_map(perims, tiles="https://tiles.example.org/{z}/{x}/{y}.png")
    page = maps.map_html(m)
    assert "https://tiles.example.org/{z}/{x}/{y}.png" in page and "tiles.example.org" in page
    assert maps.external_resources(page) == []  # a template URL used by script, not a tag to load
    assert "tile_layer" in page and "tile_layer" not in maps.map_html(maps.convention_map(perims))


def test_jupyter_display_uses_the_inlined_assets(epinay):
    _, perims, _ = epinay
    m = maps.convention_map(perims, title="Notebook")
    out = m._repr_html_()
    assert out.startswith("<div") and "srcdoc=" in out
    inner = html.unescape(re.search(r'srcdoc="([^"]*)"', out).group(1))
    assert "Leaflet 1.9.3" in inner and maps.external_resources(inner) == []


# --------------------------------------------------------------------------------------------
# Optional layers (plain GeoDataFrames, as produced by the places and eligibility modules)


def test_friches_housing_actions_layers(epinay):
    parcels, perims, result = epinay
    c = perims.geometry[0].centroid
    friches = gpd.GeoDataFrame(
        {
            "site_id": ["91216_1", "91216_2", "91216_3"],
            "site_nom": ["Ancienne usine", "Dépôt", "Gare de fret"],
            "site_statut": ["friche sans projet", "friche avec projet", "statut exotique"],
            "surface_m2": [1200.0, None, 300.0],
        },
        geometry=[Point(c.x + 10, c.y), c.buffer(30), None],
        crs=L93,
    ).to_crs(4326)  # any CRS: converted on the way in
    housing = gpd.GeoDataFrame(
        {"programme": ["Résidence A", "Résidence B"], "bailleur": ["OPH", "SA HLM"], "logements": [4, 100]},
        geometry=[Point(c.x, c.y + 50), box(c.x, c.y - 80, c.x + 20, c.y - 60)],
        crs=L93,
    )
    actions = gpd.GeoDataFrame(
        {"id": ["A1", "A2"], "titre": ["Halle", "Étude OPAH-RU"], "axe_libelle": ["Commerce", "Habitat"]},
        geometry=[Point(c.x - 40, c.y), None],
        crs=L93,
    )
    m = maps.convention_map(
        perims,
        parcels=parcels.head(200),
        classification=result,
        friches=friches,
        housing=housing,
        actions=actions,
    )
    layers = _layers(m)
    assert {"friches", "logements", "actions"} <= set(layers)
    f = layers["friches"].spec
    assert len(f["features"]) == 2 and m.ort_info["friches"] == {"drawn": 2, "missing": 1}
    colours = [f["styles"][feat[0]]["fillColor"] for feat in f["features"]]
    assert colours == [maps.FRICHE_COLOURS["friche sans projet"], maps.FRICHE_COLOURS["friche avec projet"]]
    assert isinstance(f["features"][1][4][0], list)  # the footprint stays a polygon
    h = layers["logements"].spec["features"]
    assert h[0][5] < h[1][5]  # sized by dwellings
    assert isinstance(h[1][4][0], int)  # a polygon site is drawn at a point
    a = layers["actions"].spec["features"]
    assert [x[1] for x in a] == ["Halle"] and m.ort_info["actions"]["missing"] == 1
    legend = html.unescape(_legend(m))
    assert "1 action(s) sans localisation" in legend and "Commerce (1)" in legend and "Habitat (1)" in legend
    assert "1 friche(s) sans géométrie" in legend and "104 logements" in legend.replace("\u202f", "")


def test_eligibility_layers_long_and_wide_forms(epinay):
    parcels, perims, result = epinay
    touched = result[(result["perimeter_id"] == "opah-ru") & (result["status"] != "outside")]
    verdict = np.where(touched["status"] == "inside", "oui", "partiellement")
    long = pd.DataFrame({"idu": touched["idu"], "regle": "opah_ru", "verdict": verdict})
    long = pd.concat([long, pd.DataFrame({"idu": touched["idu"], "regle": "vir", "verdict": "oui"})])
    m = maps.convention_map(perims, parcels=parcels, classification=result, eligibility=long)
    layers = _layers(m)
    assert {"eligibilite-opah_ru", "eligibilite-vir"} <= set(layers)
    assert not layers["eligibilite-opah_ru"].show  # off until asked for, in the layer control
    entries = _parcel_entries(layers["eligibilite-opah_ru"])
    assert len(entries) == len(touched)
    one = touched[touched["status"] == "straddling"].iloc[0].idu
    assert entries[one][2] == 1 and entries[one][4] == "py"  # partly OPAH-RU, VIR yes
    assert m.ort_info["eligibility"]["opah_ru"] == {
        "yes": int((verdict == "oui").sum()),
        "partly": int((verdict == "partiellement").sum()),
    }
    wide = pd.DataFrame({"idu": touched["idu"], "diif": True})
    assert "eligibilite-diif" in _layers(maps.convention_map(perims, parcels=parcels, eligibility=wide))
    with pytest.raises(InputError, match="non comprise"):
        maps.convention_map(perims, parcels=parcels, eligibility=wide.assign(diif="peut-être"))


# --------------------------------------------------------------------------------------------
# The demo (the map `ort demo` writes)


def test_demo_map(demo, tmp_path):
    paths, conv, perims, parcels, result = demo
    m = maps.convention_map(
        perims, parcels=parcels, classification=result, title=conv.nom, fictif=conv.fictif
    )
    spec = _layers(m)["perimetres"].spec
    assert [f[1] for f in spec["features"]] == list(perims[perims["type"] != "ort"]["nom"])
    assert "COMMUNE FICTIVE" in m._children[[k for k in m._children if "html_control" in k][0]].html
    out = maps.save_offline(m, tmp_path / "demo.html", force=True)
    assert maps.external_resources(out.read_text(encoding="utf-8")) == []
    assert m.ort_info["parcels_drawn"] == len(parcels)


# --------------------------------------------------------------------------------------------
# Annex


@pytest.fixture(scope="module")
def epinay_annex(epinay, tmp_path_factory):
    parcels, perims, result = epinay
    idu = result[(result["perimeter_id"] == "centre-ville") & (result["status"] == "inside")].iloc[0].idu
    doc = annex.annex_pages(
        perims,
        parcels,
        classification=result,
        title="ORT d'Épinay-sur-Orge (périmètre de test)",
        parcel=idu,
        production_date=pd.Timestamp("2025-02-03").date(),
    )
    out = tmp_path_factory.mktemp("annex")
    return doc, annex.write_annex(doc, out), out, idu


def test_annex_files(epinay, epinay_annex):
    _, perims, result = epinay
    doc, written, out, idu = epinay_annex
    names = sorted(p.name for p in out.iterdir())
    expected = [
        "00-ensemble.png",
        "01-centre-ville.png",
        "02-gare.png",
        "03-opah-ru.png",
        f"parcelle-{idu}.png",
    ]
    expected += ["annexe.pdf"] + [
        f"parcelles-{p}.{s}" for p in ("centre-ville", "gare", "opah-ru") for s in ("csv", "xlsx")
    ]
    # _manifest.json: how a later --force knows these files are ort's own
    assert names == sorted([*expected, "_manifest.json"])
    assert sorted(p.name for p in written) == sorted(expected)
    with Image.open(out / "00-ensemble.png") as img:
        assert img.size == (3508, 2480)  # A4 landscape at 300 dpi (297 × 210 mm)
        assert img.info["dpi"] == pytest.approx((300, 300), abs=0.01)


def test_annex_parcel_lists(epinay, epinay_annex):
    parcels, _, result = epinay
    _, _, out, _ = epinay_annex
    for pid in ("centre-ville", "gare", "opah-ru"):
        expected = result[(result["perimeter_id"] == pid) & (result["status"] != "outside")]
        csv = read_excel_csv(out / f"parcelles-{pid}.csv")
        # the annex sheet: title, source, blank row, then the French headers
        xlsx = pd.read_excel(out / f"parcelles-{pid}.xlsx", header=3, dtype={"Parcelle (IDU)": str})
        assert sorted(csv["idu"]) == sorted(expected["idu"]) == list(xlsx["Parcelle (IDU)"])
        assert set(csv["statut"]) <= {"incluse", "à cheval"} and (csv["code_insee"] == "91216").all()
        merged = csv.merge(expected, on="idu")
        got = merged["part_incluse_pct"].map(excel_number)
        assert np.allclose(got, (merged["share"] * 100).round(1))
        assert np.allclose(xlsx["Part incluse (%)"], got)


def test_annex_pdf_text(epinay_annex):
    doc, _, out, idu = epinay_annex
    text = _pdf_text(out / "annexe.pdf")
    flat = " ".join(text.split())
    assert maps.CADASTRE_MENTION in flat
    assert re.search(r"Échelle 1:\d[\d\u202f ]*\d \(impression A4 paysage\)", flat)
    assert "barre d'échelle" in flat and re.search(r"\b0\b", text)
    for entry in (
        "Centre-ville (centre-ville)",
        "Gare",
        "OPAH-RU du centre (OPAH-RU)",
        "Parcelle incluse",
        "Parcelle à cheval",
        "Légende",
    ):
        assert entry in flat, entry
    assert "version « Convention initiale » du 18/01/2023" in flat
    assert "millésime données à jour au 15/12/2021" in flat
    assert "Produit le 03/02/2025" in flat
    assert f"Parcelle {idu[8:10]} {int(idu[10:])}" in flat
    assert flat.count("Fond de plan : DGFiP") == len(doc.pages)  # one per page, tables included


def test_annex_parcel_page_margin(epinay, epinay_annex):
    """The one-parcel page shows at least 20 m on every side of the parcel."""
    parcels, _, _ = epinay
    doc, _, _, idu = epinay_annex
    page = [p for p in doc.pages if p.name == f"parcelle-{idu}"][0]
    ax = page.figure.axes[0]
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    minx, miny, maxx, maxy = parcels.set_index("idu").geometry[idu].bounds
    assert min(minx - x0, x1 - maxx, miny - y0, y1 - maxy) >= 20.0 - 1e-6


def test_annex_scale_bar_is_true_to_the_map(epinay_annex):
    """The scale printed in the footer matches the map frame's width on paper."""
    doc, _, _, _ = epinay_annex
    fig = doc.pages[1].figure
    ax = fig.axes[0]
    width_m = ax.get_xlim()[1] - ax.get_xlim()[0]
    frame_mm = ax.get_position().width * fig.get_figwidth() * 25.4
    footer = [t.get_text() for t in fig.texts if t.get_text().startswith("Échelle 1:")][0]
    denom = int(re.sub(r"\D", "", re.match(r"Échelle 1:([\d\u202f ]+)", footer).group(1)))
    assert denom == pytest.approx(width_m * 1000 / frame_mm, rel=0.07)


def test_annex_a3_portrait_and_no_overwrite(epinay, tmp_path):
    parcels, perims, result = epinay
    one = perims[perims["perimeter_id"].isin(["gare", "ort"])].copy()
    one.attrs.update(perims.attrs)
    doc = annex.annex_pages(one, parcels, classification=result, paper="A3", orientation="portrait")
    assert [p.name for p in doc.pages if p.png] == ["00-ensemble", "01-gare"]
    assert all(p.name.startswith("01-gare-liste-") for p in doc.pages if not p.png)
    annex.write_annex(doc, tmp_path)
    with Image.open(tmp_path / "01-gare.png") as img:
        assert img.size == (3508, 4961)
    before = (tmp_path / "annexe.pdf").read_bytes()
    with pytest.raises(OutputExistsError):
        annex.write_annex(doc, tmp_path)
    assert (tmp_path / "annexe.pdf").read_bytes() == before
    with pytest.raises(InputError, match="A4 ou A3"):
        annex.annex_pages(one, parcels, paper="A5")


def test_annex_unknown_parcel(epinay):
    parcels, perims, result = epinay
    with pytest.raises(InputError, match="absente du cadastre"):
        annex.annex_pages(perims, parcels, classification=result, parcel="91216000ZZ9999")


# --------------------------------------------------------------------------------------------
# CLI


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def test_cli_map_on_the_demo(demo, tmp_path):
    paths = demo[0]
    out = tmp_path / "maps" / "demo.html"
    r = run("map", "-p", paths.perimeters_dir, "-o", out, "--date", "2024-09-01")
    assert r.exit_code == 0, r.output
    assert "aucune ressource réseau" in r.output and "COMMUNE FICTIVE" in r.output
    assert maps.external_resources(out.read_text(encoding="utf-8")) == []
    again = run("map", "-p", paths.perimeters_dir, "-o", out, "--date", "2024-09-01")
    assert again.exit_code != 0 and "existe déjà" in again.output and "--force" in again.output


def test_cli_annex_on_the_demo(demo, tmp_path):
    paths, _, _, _, result = demo
    strad = result[(result["perimeter_id"] == "gare") & (result["status"] == "straddling")].iloc[0].idu
    short = f"{strad[8:10].lstrip('0')} {int(strad[10:])}"
    r = run(
        "annex",
        "-p",
        paths.perimeters_dir,
        "-o",
        tmp_path,
        "--date",
        "2024-09-01",
        "--parcel",
        short,
        "--format",
        "A3",
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / f"parcelle-{strad}.png").exists() and (tmp_path / "parcelles-gare.xlsx").exists()
    text = " ".join(_pdf_text(tmp_path / "annexe.pdf").split())
    assert "COMMUNE FICTIVE" in text and "impression A3 paysage" in text
    again = run("annex", "-p", paths.perimeters_dir, "-o", tmp_path, "--date", "2024-09-01")
    assert again.exit_code != 0 and "existe déjà" in again.output


# --------------------------------------------------------------------------------------------
# The map's own JavaScript and CSS: real package files, inlined whole, holding no data


def test_map_runtime_is_package_files_inlined_whole(epinay_map):
    import tomllib
    from importlib import resources
    from pathlib import Path

    from geo.maps import assets

    folder = resources.files("geo.maps") / "static"
    page = maps.map_html(epinay_map)
    for name in assets.STATIC_FILES:
        text = (folder / name).read_text(encoding="utf-8")
        assert len(text) > 2_000 and text == assets.static_text(name), name
        assert text.strip() in page, name  # inlined as it is: one file, no network request
        # No data in the files: no IDU, no coordinates, no commune name.
        assert not re.search(r"\b\d{5}000[A-Z0-9]{2}\d{4}\b|\b4[89]\.\d{4,}|\bÉpinay", text), name
    assert maps.external_resources(page) == []
    # Shipped in the wheel (package data) and valid JavaScript.
    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text(encoding="utf-8"))
    assert "static/*" in pyproject["tool"]["setuptools"]["package-data"]["geo.maps"]
    node = shutil.which("node")
    if node:
        for name in ("ort-map.js", "ort-orient.js"):
            res = subprocess.run([node, "--check", str(folder / name)], capture_output=True, text=True)
            assert res.returncode == 0, res.stderr


def test_page_uses_only_public_names_of_layers():
    import ast
    from pathlib import Path

    import geo.maps.page

    tree = ast.parse(Path(geo.maps.page.__file__).read_text(encoding="utf-8"))
    private = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "geo.maps.layers":
            private |= {a.name for a in node.names if a.name.startswith("_")}
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "_layers" and node.attr.startswith("_"):
                private.add(node.attr)
    assert private == set()


def test_background_presets_come_from_xyzservices():
    import xyzservices.providers as xyz

    from geo.maps import tiles

    for key, provider in (
        ("plan-ign", xyz.GeoportailFrance.plan),
        ("ortho-ign", xyz.GeoportailFrance.orthos),
        ("osm", xyz.OpenStreetMap.Mapnik),
    ):
        bg = tiles.background(key)
        assert bg.url == provider.build_url() and bg.max_native_zoom == provider["max_zoom"], key
        assert all(k in bg.url for k in ("{z}", "{x}", "{y}")) and "apikey" not in bg.url, key
    # French attributions naming the producer and the licence.
    assert (
        "© IGN" in tiles.background("plan-ign").attribution
        and "Etalab" in tiles.background("ortho-ign").attribution
    )
    assert "contributeurs d'OpenStreetMap" in tiles.background("osm").attribution
    # A custom {z}/{x}/{y} template still works, with its own cache folder per URL.
    a = tiles.background("https://a.example.org/{z}/{x}/{y}.png", "Serveur A")
    b = tiles.background("https://b.example.org/{z}/{x}/{y}.png")
    assert a.attribution == "Serveur A" and b.attribution == "b.example.org"
    assert (
        tiles.tile_path(a, 1, 2, 3).parent.parent.parent != tiles.tile_path(b, 1, 2, 3).parent.parent.parent
    )
