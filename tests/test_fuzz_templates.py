"""Text from data never runs as a template: every input field through every map.

branca renders an element's macros, then compiled that text as a new Jinja template: a perimeter
name ``{{ cycler.__init__.__globals__.os.mkdir(...) }}`` ran Python when a map was built (issue
23). Each field that reaches a map — perimeter name, friche name, street name of an address
file, lieu-dit of the cadastre, ``--fond`` URL — carries a payload that would create a folder in
the current directory and one that would print 49; the test asserts that no folder appears, that
nothing printed 49 and that the text shows literally (escaped where it is markup) in the page.
Small synthetic data in Lambert-93 (no shared data): these tests always run.
"""

from __future__ import annotations

import json
import re

import geopandas as gpd
import pandas as pd
import pytest
from click.testing import CliRunner
from shapely.geometry import Point, box

from geo.cli import main
from geo.maps import page as maps
from geo.maps.safe import unsafe_elements

L93 = "EPSG:2154"
#: Would create a folder named "Cycler" in the current directory if rendered as a template.
MKDIR = "{{ cycler.__init__.__globals__.os.mkdir(cycler.__name__) }}"
#: Would print ZZ49ZZ if rendered as a template.
SEVEN = "ZZ{{7*7}}ZZ"
#: Would print XXX (or break the page) if rendered as a template.
LOOP = "{% for i in range(3) %}X{% endfor %}"
PAYLOAD = f"{SEVEN} {MKDIR} {LOOP}"


def world(*, perimeter_name="Centre-ville", friche="Friche", street="Rue de la Gare", lieu_dit="Le Bourg"):
    """Four parcels, one sector, one friche, two addresses, one lieu-dit (Lambert-93, near Lens)."""
    x0, y0 = 686_000.0, 7_036_000.0
    parcels = gpd.GeoDataFrame(
        {
            "idu": [f"62999000AB{n:04d}" for n in range(1, 5)],
            "contenance": [400, 400, 400, 400],
        },
        geometry=[box(x0 + 20 * k, y0, x0 + 20 * (k + 1), y0 + 20) for k in range(4)],
        crs=L93,
    )
    perims = gpd.GeoDataFrame(
        {"perimeter_id": ["centre"], "type": ["secteur"], "nom": [perimeter_name], "centre_ville": [True]},
        geometry=[box(x0 - 5, y0 - 5, x0 + 45, y0 + 25)],
        crs=L93,
    )
    friches = gpd.GeoDataFrame(
        {"site_id": ["F1"], "site_nom": [friche], "site_statut": ["friche sans projet"]},
        geometry=[Point(x0 + 50, y0 + 10)],
        crs=L93,
    )
    lieux = gpd.GeoDataFrame({"nom": [lieu_dit]}, geometry=[box(x0, y0, x0 + 80, y0 + 20)], crs=L93)
    pts = gpd.GeoSeries([Point(x0 + 10, y0 + 10), Point(x0 + 30, y0 + 10)], crs=L93).to_crs("EPSG:4326")
    addresses = pd.DataFrame(
        {
            "code_insee": ["62999", "62999"],
            "numero": [1, 3],
            "suffixe": ["", ""],
            "voie": [street, street],
            "voie_key": ["RUE DE LA GARE", "RUE DE LA GARE"],
            "lon": pts.x.to_numpy(),
            "lat": pts.y.to_numpy(),
        }
    )
    return {"parcels": parcels, "perims": perims, "friches": friches, "lieux": lieux, "addresses": addresses}


def build(w, **kwargs):
    return maps.convention_map(
        w["perims"],
        parcels=w["parcels"],
        friches=w["friches"],
        lieux_dits=w["lieux"],
        addresses=w["addresses"],
        title="Test",
        **kwargs,
    )


def assert_not_evaluated(page: str, cwd) -> None:
    assert not (cwd / "Cycler").exists(), "a payload ran Python while the map was built"
    assert "ZZ49ZZ" not in page and "XXX" not in page
    assert "{{7*7}}" in page and "{% for i in range(3) %}" in page


FIELDS = ("perimeter_name", "friche", "street", "lieu_dit")


@pytest.mark.parametrize("field", FIELDS)
def test_text_of_each_field_is_never_a_template(field, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    m = build(world(**{field: PAYLOAD}))
    unsafe = unsafe_elements(m.get_root())
    page = maps.map_html(m)
    assert_not_evaluated(page, tmp_path)
    assert unsafe == []
    # The same text is data in the page's JSON: decoding it gives the payload back, unchanged.
    assert json.dumps(PAYLOAD, ensure_ascii=False)[1:-1].replace("'", "\\u0027") in page


def test_perimeter_name_is_escaped_markup_in_the_legend(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = "<img src=x onerror=alert(1)> {{7*7}} </script>"
    page = maps.map_html(build(world(perimeter_name=name)))
    assert "<img src=x" not in page and "</script> {{" not in page
    # The legend is HTML built from escaped text, then JSON for the script element.
    assert "\\u0026lt;img src=x onerror=alert(1)\\u0026gt; {{7*7}} \\u0026lt;/script\\u0026gt;" in page


def test_fond_url_is_data_not_template(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = "https://tiles.example.org/{z}/{x}/{y}.png?k=" + PAYLOAD
    m = build(world(), tiles=url)
    page = maps.map_html(m)
    assert_not_evaluated(page, tmp_path)
    # The attribution (the host) and the URL reach the tile layer as JSON strings.
    assert re.search(
        r"L\.tileLayer\(\s*\"https://tiles\.example\.org/\{z\}/\{x\}/\{y\}\.png\?k=ZZ\{\{7\*7\}\}", page
    )


def test_fond_attribution_is_escaped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    m = build(world(), tiles="https://t.example.org/{z}/{x}/{y}.png", tiles_attribution="<b>x</b> " + SEVEN)
    page = maps.map_html(m)
    assert "<b>x</b>" not in page and "ZZ49ZZ" not in page
    assert "\\u0026lt;b\\u0026gt;x\\u0026lt;/b\\u0026gt; ZZ{{7*7}}ZZ" in page


def test_rendering_twice_still_writes_text_as_text(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    m = build(world(perimeter_name=PAYLOAD))
    maps.map_html(m)
    assert_not_evaluated(maps.map_html(m), tmp_path)


# --------------------------------------------------------------------------------------------
# Through the CLI: ort map and ort diff --carte on a copy of the demo convention


def _poison_demo(folder, text: str) -> None:
    """Give every perimeter of the demo convention copy the name ``text``."""
    for path in folder.glob("perimetres-*.geojson"):
        data = json.loads(path.read_text(encoding="utf-8"))
        for f in data["features"]:
            f["properties"]["nom"] = text
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


def test_cli_map_with_hostile_names_and_fond(demo_copy, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    _poison_demo(demo_copy, PAYLOAD)
    out = work / "carte.html"
    res = _run(
        "map", "--perimeters", demo_copy, "-o", out, "--date", "2024-09-01",
        "--fond", "https://t.example.org/{z}/{x}/{y}.png?" + SEVEN,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert_not_evaluated(out.read_text(encoding="utf-8"), work)
    assert "ZZ{{7*7}}ZZ" in out.read_text(encoding="utf-8")


def test_cli_diff_map_with_hostile_names(demo_copy, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    _poison_demo(demo_copy, PAYLOAD)
    out = work / "avenant.html"
    res = _run(
        "diff", "--perimeters", demo_copy, "--avant", "initiale", "--apres", "avenant-1", "--carte", out
    )
    assert res.exit_code == 0, res.output
    assert_not_evaluated(out.read_text(encoding="utf-8"), work)
