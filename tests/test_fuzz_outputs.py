"""Fuzz: hostile text in every text field of every input, through every output.

A table of hostile strings (template syntax, script end tags, markup, an RTL override, control
characters, zero-width characters, mathtext, a 10 000-character name) goes into each text field the
renderers read — perimeter names and ids, friche name/status/type/commune, street names,
lieux-dits, commune names, housing programmes and landlords, action titles and axes, the title,
the background's attribution — and through the map HTML, the diff map, the annex (PDF, PNG,
CSV, XLSX) and the note (PDF). Each output must be produced, nothing may be evaluated (no
folder created, no ``49`` printed), the HTML must hold no tag from data and its script
elements must stay whole, and the printed documents must hold no bidi control. A hypothesis
test adds random text through the map.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from html.parser import HTMLParser

import geopandas as gpd
import pandas as pd
import pytest
from conftest import pdf_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, box

from geo.classify import classify_parcels
from geo.maps import annex
from geo.maps import page as maps
from geo.perimeters import add_ort_union

L93 = "EPSG:2154"
MKDIR = "{{ cycler.__init__.__globals__.os.mkdir(cycler.__name__) }}"
HOSTILE = {
    "jinja-expr": "ZZ{{7*7}}ZZ " + MKDIR,
    "jinja-stmt": "{% for i in range(3) %}X{% endfor %}{% raw %}",
    "jinja-open": "{{ {% {# ",
    "script-end": "</script><script>alert(1)</script>",
    "markup": "<img src=x onerror=alert(1)>\"'`<!--",
    "rtl": "Gare \u202eelliv-ertnec\u202c \u2066x\u2069",
    "controls": "a\x00b\x01c\x07d\x1b[31me\x7ff\x85g\u2028h\u2029i",
    "zero-width": "\ufeff\u200b\u200d\u00ad",
    "mathtext": r"$\frac{1}{0}$ $$ \$ 50 %",
    "long": ("Très long nom " * 800)[:10_000],
    "empty": "",
}
#: Every short hostile string in one (the printed documents are slow to draw: three runs each).
HOSTILE["all"] = " ".join(v for k, v in HOSTILE.items() if k not in ("long", "empty"))
PRINTED = ["all", "long", "empty"]
X0, Y0 = 686_000.0, 7_036_000.0


def world(t: str, *, ids_from_data: bool = True):
    """Six parcels, three perimeters (one with a hole), every optional layer, text fields = ``t``.

    ``ids_from_data`` false keeps a slug as the second perimeter's id: the annex names its files
    after the ids and refuses any other (tested in test_bad_inputs_outputs).
    """
    parcels = gpd.GeoDataFrame(
        {"idu": [f"62999000AB{n:04d}" for n in range(1, 7)], "contenance": [400] * 6},
        geometry=[box(X0 + 20 * k, Y0, X0 + 20 * (k + 1), Y0 + 20) for k in range(6)],
        crs=L93,
    )
    parcels.attrs["millesime"] = t
    sector = box(X0 - 5, Y0 - 5, X0 + 65, Y0 + 25).difference(box(X0 + 25, Y0 + 5, X0 + 35, Y0 + 15))
    perims = gpd.GeoDataFrame(
        {
            "perimeter_id": ["centre", (t or "x") if ids_from_data else "gare", "opah"],
            "type": ["secteur", "secteur", "opah_ru"],
            "nom": [t, t + " 2", t + " 3"],
            "centre_ville": [True, False, False],
            "commune": [t, t, t],
        },
        geometry=[sector, box(X0 + 65, Y0 - 5, X0 + 125, Y0 + 25), box(X0 - 5, Y0 - 5, X0 + 30, Y0 + 25)],
        crs=L93,
    )
    perims = add_ort_union(perims)
    perims.attrs.update(version_libelle=t, version="v1", version_date="2024-01-01", convention=t)
    pt = lambda dx, dy: Point(X0 + dx, Y0 + dy)  # noqa: E731
    friches = gpd.GeoDataFrame(
        {"site_id": [t], "site_nom": [t], "site_statut": [t], "site_type": [t], "comm_nom": [t]},
        geometry=[pt(50, 10)],
        crs=L93,
    )
    housing = gpd.GeoDataFrame(
        {"programme": [t], "bailleur": [t], "logements": [12], "adresse": [t]}, geometry=[pt(70, 10)], crs=L93
    )
    actions = gpd.GeoDataFrame(
        {"id": [t], "titre": [t or "titre"], "axe_libelle": [t], "statut": [t], "maitre_ouvrage": [t]},
        geometry=[pt(90, 10)],
        crs=L93,
    )
    communes = gpd.GeoDataFrame(
        {"nom": [t], "code_insee": ["62999"]}, geometry=[box(X0 - 50, Y0 - 50, X0 + 200, Y0 + 80)], crs=L93
    )
    lieux = gpd.GeoDataFrame({"nom": [t or "x"]}, geometry=[box(X0, Y0, X0 + 120, Y0 + 20)], crs=L93)
    pts = gpd.GeoSeries([pt(10, 10), pt(30, 10), pt(50, 10)], crs=L93).to_crs("EPSG:4326")
    addresses = pd.DataFrame(
        {
            "code_insee": ["62999"] * 3,
            "numero": [1, 3, 5],
            "suffixe": ["", "", ""],
            "voie": [t or "Rue"] * 3,
            "voie_key": ["RUE"] * 3,
            "lon": pts.x.to_numpy(),
            "lat": pts.y.to_numpy(),
            "label": [f"1 {t}", f"3 {t}", f"5 {t}"],
        }
    )
    addresses.attrs["source"] = t
    return dict(
        parcels=parcels,
        perims=perims,
        friches=friches,
        housing=housing,
        actions=actions,
        communes=communes,
        lieux=lieux,
        addresses=addresses,
    )


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def _tags(page: str) -> list[str]:
    p = _Tags()
    p.feed(page)
    p.close()
    return p.tags


def _map(w, t, **kw):
    m = maps.convention_map(
        w["perims"],
        parcels=w["parcels"],
        communes=w["communes"],
        friches=w["friches"],
        housing=w["housing"],
        actions=w["actions"],
        lieux_dits=w["lieux"],
        addresses=w["addresses"],
        title=t,
        tiles="https://t.example.org/{z}/{x}/{y}.png?" + t.replace("\x00", ""),
        tiles_attribution=t,
        production_date=dt.date(2025, 1, 1),
        **kw,
    )
    return maps.map_html(m)


def _diff(w, t):
    idus = w["parcels"]["idu"]
    return pd.DataFrame(
        {
            "idu": idus[:3],
            "perimeter_id": ["centre"] * 3,
            "perimeter_nom": [t] * 3,
            "change": ["enters", "leaves", "share_changed"],
            "share_before": [0.0, 1.0, 0.4],
            "share_after": [1.0, 0.0, 0.6],
        }
    )


@pytest.fixture(scope="module")
def benign_tags():
    w = world("Nom ordinaire")
    return {
        "map": sorted(_tags(_map(w, "Nom ordinaire"))),
        "diff": sorted(
            _tags(_map(w, "Nom ordinaire", diff=_diff(w, "Nom ordinaire"), diff_before=w["perims"]))
        ),
    }


def _check_page(page: str, expected_tags: list[str], cwd) -> None:
    assert not (cwd / "Cycler").exists(), "text from data ran Python"
    assert "ZZ49ZZ" not in page and "XXX" not in page
    # The page has exactly the tags of the same map with ordinary names: no tag from data, and
    # no script element ended early (a "</script>" from data would add tags).
    assert sorted(_tags(page)) == expected_tags
    assert "\ud800" not in page and "\x00" not in page
    page.encode("utf-8")


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_map_and_diff_map(kind, benign_tags, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    t = HOSTILE[kind]
    w = world(t)
    page = _map(w, t)
    _check_page(page, benign_tags["map"], tmp_path)
    if kind == "jinja-expr":
        assert "ZZ{{7*7}}ZZ" in page
    diff_page = _map(w, t, diff=_diff(w, t), diff_before=w["perims"])
    _check_page(diff_page, benign_tags["diff"], tmp_path)
    out = maps.save_offline(
        maps.convention_map(w["perims"], parcels=w["parcels"], title=t), tmp_path / "c.html"
    )
    assert out.stat().st_size > 100_000


def _no_bidi(text: str) -> None:
    assert not re.search("[\u202a-\u202e\u2066-\u2069\u200e\u200f]", text)


@pytest.mark.parametrize("kind", PRINTED)
def test_annex_and_diff_annex(kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    t = HOSTILE[kind]
    w = world(t, ids_from_data=False)
    orient = annex.orientation_layers(
        w["parcels"], lieux_dits=w["lieux"], addresses=w["addresses"], communes=w["communes"]
    )
    doc = annex.annex_pages(
        w["perims"],
        w["parcels"],
        classification=classify_parcels(w["parcels"], w["perims"]),
        title=t,
        parcel="62999000AB0002",
        annex_number=t[:20] or None,
        reference=t,
        orient=orient,
    )
    written = annex.write_annex(doc, tmp_path / "annexe")
    assert {p.suffix for p in written} >= {".pdf", ".png", ".csv", ".xlsx"}
    assert not (tmp_path / "Cycler").exists()
    text = pdf_text(tmp_path / "annexe" / doc.pdf_name)
    _no_bidi(text)
    assert "ZZ49ZZ" not in text and len(text) > 500
    if kind == "all":
        assert "ZZ{{7*7}}ZZ" in text


@pytest.mark.parametrize("kind", PRINTED)
def test_note(kind, tmp_path, monkeypatch):
    from geo.note import note_pages, write_note

    monkeypatch.chdir(tmp_path)
    t = HOSTILE[kind]
    w = world(t)
    classification = classify_parcels(w["parcels"], w["perims"])
    note = note_pages(
        "62999000AB0002",
        parcels=w["parcels"],
        perimeters=w["perims"],
        classification=classification,
        answers=[],
        commune_name=t,
        addresses=w["addresses"],
        query=t,
        match_line=t,
        sources=[t, t],
        when=dt.date(2025, 1, 1),
    )
    assert len(note.pages) == 1
    for line in note.lines:
        _no_bidi(line)
        assert len(line) < 2_000
    written = write_note(note, tmp_path / "note.pdf", png=True)
    assert all(p.stat().st_size > 1000 for p in written)
    text = pdf_text(tmp_path / "note.pdf")
    _no_bidi(text)
    assert text.count("Note de renseignement ORT") == 1
    assert not (tmp_path / "Cycler").exists()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(min_size=0, max_size=300))
def test_random_text_through_the_map(text, benign_tags, tmp_path_factory):
    w = world(text)
    page = _map(w, text)
    assert sorted(_tags(page)) == benign_tags["map"]
    # Every text is data: the legend's JSON string decodes and holds no tag.
    legend = re.search(r'box\.innerHTML = ("(?:[^"\\]|\\.)*");', page)
    assert legend is not None and "<img" not in json.loads(legend.group(1))
