"""The demo's offline map in a real headless browser (Debian's chromium, driven by playwright).

What a planner sees: the page opens with no network request at all, the perimeters are drawn
in their colours, clicking a parcel opens its popup, the search finds a parcel by IDU, and an
action titled ``<img src=x onerror=alert(1)>`` shows as text and runs nothing.

Skipped with the reason when chromium or playwright is missing (a user's machine); failing
under ``CI=true``, where ``.ci/install-browser`` installs both.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

from geo.classify import classify_parcels
from geo.maps import page as maps

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
XSS = "<img src=x onerror=alert(1)>"
VIEWPORT = {"width": 1200, "height": 800}


def _require_browser():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "playwright is not installed (run .ci/install-browser)"
    else:
        if CHROMIUM.exists() or shutil.which("chromium"):
            return
        reason = f"chromium not found at {CHROMIUM} (run .ci/install-browser as root)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def demo_page(tmp_path_factory):
    """The demo convention's map, with a hostile action placed in the centre-ville, saved offline."""
    _require_browser()
    from geo.cli.options import load_parcels as _load_parcels
    from geo.demo.commune import build_demo
    from geo.perimeters import read_convention

    root = tmp_path_factory.mktemp("browser")
    paths = build_demo(data_dir=root / "data" / "demo", perimeters_dir=root / "perimeters" / "demo")
    conv = read_convention(paths.perimeters_dir)
    perims = conv.perimeters("2024-09-01", in_force_only=True)
    parcels = _load_parcels(conv, None, None, False)
    result = classify_parcels(parcels, perims)
    cv = perims.set_index("perimeter_id").geometry["centre-ville"]
    # The action marker (SVG, above the parcels' canvas) at the sector's centre.
    spot = cv.centroid
    actions = gpd.GeoDataFrame(
        {"id": ["X1"], "titre": [XSS], "axe": ["Habitat"], "statut": ["en cours"]},
        geometry=[spot],
        crs=perims.crs,
    )
    m = maps.convention_map(
        perims, parcels=parcels, classification=result, actions=actions, title=conv.nom, fictif=conv.fictif
    )
    html_path = maps.save_offline(m, root / "demo.html")
    return html_path, perims, parcels, result, spot


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    """A fresh chromium profile (temporary user-data-dir) for this module."""
    _require_browser()
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    exe = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(profile), executable_path=exe, headless=True, args=ARGS, viewport=VIEWPORT
        )
        try:
            yield ctx
        finally:
            ctx.close()


@pytest.fixture
def opened(browser_context, demo_page):
    """The demo page, loaded in a new tab; records requests, dialogs and page errors."""
    html_path = demo_page[0]
    seen = {"requests": [], "dialogs": [], "errors": []}

    def on_request(req):
        seen["requests"].append(req.url)

    def on_dialog(dialog):
        seen["dialogs"].append(dialog.message)
        dialog.dismiss()

    browser_context.on("request", on_request)
    page = browser_context.new_page()
    page.on("dialog", on_dialog)
    page.on("pageerror", lambda err: seen["errors"].append(str(err)))
    page.goto(html_path.as_uri())
    page.wait_for_function("window.ORT && window.ORT.ready === true", timeout=30_000)
    try:
        yield page, seen
    finally:
        browser_context.remove_listener("request", on_request)
        page.close()


def _container_point(page, lon: float, lat: float) -> tuple[float, float]:
    """Pixel position of a lon/lat on the page (the map fills the viewport)."""
    pt = page.evaluate(
        "([lat, lon]) => { const p = ORT.map.latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }",
        [lat, lon],
    )
    box = page.locator(".folium-map").bounding_box()
    return box["x"] + pt[0], box["y"] + pt[1]


def _lonlat(geom, crs) -> tuple[float, float]:
    p = gpd.GeoSeries([geom], crs=crs).to_crs(4326).iloc[0]
    return p.x, p.y


def test_zero_network_requests(opened, demo_page):
    page, seen = opened
    assert seen["requests"] == [demo_page[0].as_uri()]
    assert seen["errors"] == [] and seen["dialogs"] == []
    # The map really holds its layers (and nothing was blocked silently).
    assert page.evaluate("Object.keys(ORT.index).length") == len(demo_page[2])


def _hex(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])


def test_perimeters_drawn_in_their_colours(opened, tmp_path):
    from PIL import Image

    page, _ = opened
    shot = tmp_path / "map.png"
    page.screenshot(path=str(shot))
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)

    def count(colour: str) -> int:
        return int((np.abs(pixels - _hex(colour)).max(axis=1) <= 12).sum())

    n_cv, n_opah = count(maps.CENTRE_VILLE_COLOUR), count(maps.OPAH_RU_COLOUR)
    n_sector2 = count(maps.SECTOR_COLOURS[0])
    assert n_cv > 500, n_cv  # 4-px red outline of the centre-ville sector
    assert n_opah > 150, n_opah  # dashed OPAH-RU outline
    assert n_sector2 > 300, n_sector2  # the second sector's outline
    # Parcels inside the ORT, filled green at 55 % over the white page: many pixels.
    green = np.round(0.55 * _hex(maps.STATUS_COLOURS["inside"]) + 0.45 * 255).astype(int)
    assert count("#" + "".join(f"{c:02x}" for c in green)) > 5_000


def test_click_on_a_parcel_opens_its_popup(opened, demo_page):
    page, seen = opened
    _, perims, parcels, result, _ = demo_page
    inside = result[(result["perimeter_id"] == "ort") & (result["status"] == "inside")]["idu"]
    big = parcels[parcels["idu"].isin(inside)].assign(area=lambda d: d.area).sort_values("area").iloc[-1]
    lon, lat = _lonlat(big.geometry.representative_point(), parcels.crs)
    page.mouse.click(*_container_point(page, lon, lat))
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=5_000)
    text = popup.inner_text().replace("\xa0", " ")
    assert f"Parcelle {big.idu}" in text
    assert "incluse (100,0 %)" in text and "Contenance" in text
    assert f"Section\t{big.idu[8:10].lstrip('0')}" in text or big.idu[8:10].lstrip("0") in text
    assert seen["dialogs"] == []


def test_search_by_idu(opened, demo_page):
    page, _ = opened
    _, _, parcels, _, _ = demo_page
    idu = parcels["idu"].iloc[len(parcels) // 2]
    page.fill(".ort-search input", idu.lower())
    page.click(".ort-search button")
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=5_000)
    assert f"Parcelle {idu}" in popup.inner_text()
    page.fill(".ort-search input", "ZZ 9999")
    page.click(".ort-search button")
    assert "Parcelle introuvable : ZZ 9999" in page.locator(".ort-search .ort-msg").inner_text()


def test_hostile_action_title_shows_as_text(opened, demo_page):
    page, seen = opened
    _, perims, _, _, spot = demo_page
    lon, lat = _lonlat(spot, perims.crs)
    page.mouse.click(*_container_point(page, lon, lat))
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=5_000)
    assert XSS in popup.inner_text()
    assert popup.locator("img").count() == 0
    assert page.locator("img[src='x']").count() == 0
    page.wait_for_timeout(300)  # an onerror handler would have fired by now
    assert seen["dialogs"] == [] and seen["errors"] == []
    assert len(seen["requests"]) == 1  # no request for "x"
    title = page.locator(".ort-title").inner_text()
    assert "COMMUNE FICTIVE" in title
