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

from geo.classify import STATUS_LABELS, classify_parcels
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
    from geo.app.load import load_parcels as _load_parcels
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


# --------------------------------------------------------------------------------------------
# The map for the counter: real parcels of Épinay-sur-Orge, addresses embedded, three screens

SIZES = {"phone": (390, 844), "laptop": (1024, 640), "desktop": (1300, 850)}
#: Where a parcel's answer shows: a popup, or on a phone (< 600 px) the bottom sheet.
ANSWER = ".leaflet-popup-content, .ort-sheet:not([hidden]) .ort-sheet-body"


@pytest.fixture(scope="module")
def counter_page(tmp_path_factory, epinay_ort):
    """``ort map --adresses`` on the test convention of 91216 (conftest.epinay_ort), at 2025-03-01."""
    _require_browser()
    from click.testing import CliRunner

    from geo.cli import main

    out = tmp_path_factory.mktemp("counter") / "epinay.html"
    res = CliRunner().invoke(
        main,
        [
            "map", "--perimeters", str(epinay_ort["folder"]), "--adresses", str(epinay_ort["addresses"]),
            "--date", "2025-03-01", "-o", str(out),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "point(s) d'adresse embarqué(s)" in res.output and "dispositif(s) dans la fenêtre" in res.output
    return out


def _open(browser_context, path, size, seen=None, requests=None):
    page = browser_context.new_page()
    page.set_viewport_size({"width": size[0], "height": size[1]})
    if seen is not None:
        page.on("pageerror", lambda err: seen.append(str(err)))
    if requests is not None:
        page.on("request", lambda req: requests.append(req.url))
    page.goto(path.as_uri())
    page.wait_for_function("window.ORT && window.ORT.ready === true", timeout=60_000)
    return page


def _rects(page) -> dict:
    """Map container, sectors' bounds, controls and legend as page rectangles (x0, y0, x1, y1)."""
    return page.evaluate(
        """() => {
        const m = ORT.map, box = m.getContainer().getBoundingClientRect();
        const b = L.latLngBounds(ORT.bounds);
        const nw = m.latLngToContainerPoint(b.getNorthWest());
        const se = m.latLngToContainerPoint(b.getSouthEast());
        const r = (e) => { const q = e.getBoundingClientRect(); return [q.left, q.top, q.right, q.bottom]; };
        const controls = [...document.querySelectorAll('.leaflet-control')]
            .filter((e) => e.getBoundingClientRect().width > 0).map(r);
        return {map: [box.left, box.top, box.right, box.bottom],
                sectors: [box.left + nw.x, box.top + nw.y, box.left + se.x, box.top + se.y],
                controls: controls, legend: r(document.querySelector('.ort-legend')),
                legendOpen: document.querySelector('.ort-legend details').open};
    }"""
    )


def _overlap(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(w, 0) * max(h, 0)


def _area(a) -> float:
    return (a[2] - a[0]) * (a[3] - a[1])


@pytest.mark.parametrize("size", list(SIZES.values()), ids=list(SIZES))
def test_sectors_fit_the_visible_map(browser_context, counter_page, size, tmp_path):
    errors: list[str] = []
    requests: list[str] = []
    page = _open(browser_context, counter_page, size, errors, requests)
    try:
        r = _rects(page)
        m, s = r["map"], r["sectors"]
        assert m[0] - 1 <= s[0] < s[2] <= m[2] + 1 and m[1] - 1 <= s[1] < s[3] <= m[3] + 1, r
        for c in r["controls"]:  # no control (search, title, layers, legend, scale) over a sector
            assert _overlap(c, s) < 1, (c, s)
        # Fitted, not lost at 10 km scale: the sectors fill a good part of the free width or height.
        assert max((s[2] - s[0]) / (m[2] - m[0]), (s[3] - s[1]) / (m[3] - m[1])) > 0.35, r
        if size[0] < 900:
            assert not r["legendOpen"] and _area(r["legend"]) < _area(m) / 3, r
        else:
            assert r["legendOpen"]
        page.screenshot(path=str(tmp_path / f"carte-{size[0]}x{size[1]}.png"))
        assert errors == [] and requests == [counter_page.as_uri()]  # offline: the page and nothing else
    finally:
        page.close()


@pytest.mark.parametrize("size", list(SIZES.values()), ids=list(SIZES))
def test_searched_address_outlines_its_parcel_with_the_dispositifs(browser_context, counter_page, size):
    page = _open(browser_context, counter_page, size)
    try:
        page.fill(".ort-search input", "12 rue Jean Jaurès, 91360 Épinay-sur-Orge")
        page.click(".ort-search button")
        popup = page.locator(ANSWER)
        popup.wait_for(timeout=5_000)
        assert page.evaluate("ORT.highlighted") == "91216000AC0100"
        assert page.locator("path.ort-highlight").count() == 1
        text = popup.inner_text().replace("\xa0", " ").replace("\u202f", " ")
        assert "Parcelle 91216000AC0100" in text and "12 Rue Jean Jaurès (score 1,00)" in text
        assert f"OPAH-RU du centre\t{STATUS_LABELS['straddling']} (49,8 %)" in text
        assert f"Centre-ville\t{STATUS_LABELS['inside']} (100,0 %)" in text
        assert "Dispositifs au 01/03/2025" in text
        for fragment in ("partiellement (49,8 %)", "CCH L303-1", "CGI art. 199 novovicies", "L752-1-1"):
            assert fragment in text, fragment
        assert "Adresse trouvée" in page.locator(".ort-search .ort-msg").inner_text()
        page.wait_for_timeout(600)  # the map's pan to the popup is animated
        # The outlined parcel and its popup (the sheet on a phone) are on screen, and no control
        # lies over it.
        phone = size[0] < 600
        box = page.locator(".ort-sheet" if phone else ".leaflet-popup-content-wrapper").bounding_box()
        if phone:  # the bottom sheet: at the bottom, across the screen, 45 % of the height at most
            assert page.locator(".leaflet-popup").count() == 0
            assert abs(box["y"] + box["height"] - size[1]) <= 1 and box["width"] >= size[0] - 1, box
            assert box["height"] <= 0.45 * size[1] + 1, box
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        inside = page.evaluate(
            "([x, y]) => !!document.elementFromPoint(x, y).closest('.leaflet-popup, .ort-sheet')", [cx, cy]
        )
        assert inside
        legend = page.locator(".ort-legend").bounding_box()
        pop = [box["x"], box["y"], box["x"] + box["width"], box["y"] + box["height"]]
        leg = [legend["x"], legend["y"], legend["x"] + legend["width"], legend["y"] + legend["height"]]
        assert _overlap(pop, leg) < 1, (pop, leg)
    finally:
        page.close()


@pytest.mark.parametrize("text", ["91216 AC 100", "91216000AC100", "AC100", "000 AC 0100", "91216000AC0100"])
def test_searched_notary_id_outlines_the_parcel(browser_context, counter_page, text):
    page = _open(browser_context, counter_page, SIZES["laptop"])
    try:
        page.fill(".ort-search input", text)
        page.click(".ort-search button")
        page.locator(ANSWER).wait_for(timeout=5_000)
        assert page.evaluate("ORT.highlighted") == "91216000AC0100"
        assert "Parcelle 91216000AC0100" in page.locator(ANSWER).inner_text()
    finally:
        page.close()


def test_address_not_found_and_whole_ort_button(browser_context, counter_page):
    page = _open(browser_context, counter_page, SIZES["desktop"])
    try:
        page.fill(".ort-search input", "12 rue des Lilas")
        page.click(".ort-search button")
        assert "voie inconnue" in page.locator(".ort-search .ort-msg").inner_text()
        page.fill(".ort-search input", "13 rue Jean Jaurès")
        page.click(".ort-search button")
        page.locator(".leaflet-popup-content").wait_for(timeout=5_000)
        zoomed = page.evaluate("ORT.map.getZoom()")
        page.click(".ort-whole button")
        page.wait_for_timeout(400)
        assert page.evaluate("ORT.map.getZoom()") < zoomed and page.evaluate("ORT.highlighted") is None
        r = _rects(page)
        assert r["map"][0] - 1 <= r["sectors"][0] and r["sectors"][2] <= r["map"][2] + 1
    finally:
        page.close()


def test_sectors_clickable_and_legend_follows_layers(browser_context, counter_page):
    page = _open(browser_context, counter_page, SIZES["desktop"])
    try:
        page.click(".ort-legend [data-ort-perimeter='gare']")
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for(timeout=5_000)
        text = popup.inner_text()
        expected = ["Quartier de la gare", "Secteur d'intervention ORT", "Version en vigueur", "Avenant n° 1"]
        for fragment in [*expected, "Signée le\t18/01/2023", "Convention initiale (18/01/2023)"]:
            assert fragment in text, fragment
        part = page.locator(".ort-legend [data-ort-layer='parcelles']")
        assert part.is_visible()
        page.hover(".leaflet-control-layers")
        page.locator(".leaflet-control-layers-overlays label", has_text="Parcelles").locator(
            "input"
        ).uncheck()
        assert not part.is_visible()
        page.locator(".leaflet-control-layers-overlays label", has_text="Parcelles").locator("input").check()
        assert part.is_visible()
    finally:
        page.close()


def test_printing_hides_the_controls(browser_context, counter_page):
    page = _open(browser_context, counter_page, SIZES["desktop"])
    try:
        page.emulate_media(media="print")
        for sel in (".ort-search", ".ort-whole", ".leaflet-control-zoom", ".leaflet-control-layers"):
            assert not page.locator(sel).is_visible(), sel
        assert page.locator(".ort-legend").is_visible() and page.locator(".ort-title").is_visible()
    finally:
        page.emulate_media(media="screen")
        page.close()


def _menu_and_legend(page) -> dict:
    return page.evaluate(
        """() => {
        const r = (e) => { const q = e.getBoundingClientRect(); return [q.left, q.top, q.right, q.bottom]; };
        const menu = document.querySelector('.leaflet-control-layers');
        const list = menu.querySelector('.leaflet-control-layers-list');
        return {menu: r(menu), legend: r(document.querySelector('.ort-legend')),
                open: menu.classList.contains('leaflet-control-layers-expanded'),
                legendOpen: document.querySelector('.ort-legend details').open,
                shown: list.clientHeight, full: list.scrollHeight,
                boxes: menu.querySelectorAll('input').length};
    }"""
    )


@pytest.mark.parametrize("size", list(SIZES.values()), ids=list(SIZES))
def test_layer_menu_and_legend_never_overlap(browser_context, counter_page, size):
    page = _open(browser_context, counter_page, size)
    try:
        summary = page.locator(".ort-legend summary")
        if not page.evaluate("document.querySelector('.ort-legend details').open"):
            summary.click()
        page.hover(".leaflet-control-layers")
        page.wait_for_timeout(100)
        r = _menu_and_legend(page)
        assert r["open"] and r["boxes"] >= 5, r
        assert _overlap(r["menu"], r["legend"]) < 1, r
        # Every checkbox can be reached: the list shows all, or at least 150 px of it and scrolls.
        assert r["shown"] >= min(r["full"], 150) - 1, r
        # Opening the legend while the menu is open: still no overlap.
        summary.click()
        page.wait_for_timeout(100)
        r = _menu_and_legend(page)
        assert not r["open"] or _overlap(r["menu"], r["legend"]) < 1, r
        # The menu closed, the legend is open again (when it folded for the menu).
        page.mouse.move(5, size[1] // 2)
        page.wait_for_timeout(100)
        r = _menu_and_legend(page)
        assert not r["open"] and _overlap(r["menu"], r["legend"]) < 1, r
    finally:
        page.close()


@pytest.mark.parametrize("size", list(SIZES.values()), ids=list(SIZES))
def test_search_frames_the_parcel_its_neighbours_and_the_nearest_boundary(
    browser_context, counter_page, size
):
    page = _open(browser_context, counter_page, size)
    try:
        page.fill(".ort-search input", "91216 AC 100")
        page.click(".ort-search button")
        page.locator(ANSWER).wait_for(timeout=5_000)
        page.wait_for_timeout(700)  # the popup's pan is animated
        r = page.evaluate(
            """() => {
            const m = ORT.map, s = m.getSize(), layer = ORT.index['91216000AC0100'];
            const b = layer.getBounds(), px = (ll) => m.latLngToContainerPoint(ll);
            const nw = px(b.getNorthWest()), se = px(b.getSouthEast());
            const edge = ORT.nearestBoundary(b.getCenter()), e = px(edge.ll);
            const box = m.getContainer().getBoundingClientRect();
            const p = document.querySelector('.leaflet-popup-content-wrapper, .ort-sheet:not([hidden])')
                .getBoundingClientRect();
            const covers = [...document.querySelectorAll('.leaflet-control')]
                .map((e) => e.getBoundingClientRect()).filter((q) => q.width > 0)
                .map((q) => [q.left - box.left, q.top - box.top, q.right - box.left, q.bottom - box.top]);
            return {w: s.x, h: s.y, parcel: [nw.x, nw.y, se.x, se.y], edge: [e.x, e.y], d: edge.d,
                    popup: [p.left - box.left, p.top - box.top, p.right - box.left, p.bottom - box.top],
                    zoom: m.getZoom(), frame: ORT.lastFrame, controls: covers,
                    sheet: !!document.querySelector('.ort-sheet:not([hidden])')};
        }"""
        )
        p = r["parcel"]
        assert 0 <= p[0] < p[2] <= r["w"] and 0 <= p[1] < p[3] <= r["h"], r  # the whole parcel
        # Its neighbours: a margin of at least 15 m (half its size) is in view around it.
        assert (p[2] - p[0]) < 0.8 * r["w"] and (p[3] - p[1]) < 0.8 * r["h"], r
        # The nearest sector boundary (within 250 m) is in view.
        if r["d"] <= 250:
            assert 0 <= r["edge"][0] <= r["w"] and 0 <= r["edge"][1] <= r["h"], r
        # The popup covers less than half of the parcel; on a phone the sheet none of it.
        assert _overlap(r["popup"], p) < 0.5 * _area(p), r
        assert r["sheet"] == (size[0] < 600), r
        if r["sheet"]:
            assert p[3] <= r["popup"][1] + 1, r  # the whole parcel above the sheet
            assert r["popup"][3] - r["popup"][1] <= 0.45 * r["h"] + 1, r
        for c in r["controls"]:  # nor does any control (search, title, legend, scale)
            assert _overlap(c, p) < 0.5 * _area(p), (c, r)
        assert (p[2] - p[0]) >= 24 and (p[3] - p[1]) >= 24, r  # large enough to be seen
    finally:
        page.close()


def test_phone_sheet_scrolls_closes_and_answers_the_keyboard(browser_context, counter_page):
    page = _open(browser_context, counter_page, SIZES["phone"])
    try:
        page.fill(".ort-search input", "91216 AC 100")
        page.press(".ort-search input", "Enter")
        sheet = page.locator(".ort-sheet")
        sheet.wait_for(timeout=5_000)
        state = page.evaluate(
            """() => { const s = document.querySelector('.ort-sheet'), cs = getComputedStyle(s);
            return {focused: document.activeElement === s, role: s.getAttribute('role'),
                    label: s.getAttribute('aria-label'), overflow: cs.overflowY, position: cs.position,
                    scroll: s.scrollHeight, client: s.clientHeight}; }"""
        )
        assert state["focused"] and state["role"] == "dialog", state
        assert state["label"] == "Parcelle 91216000AC0100" and state["overflow"] == "auto", state
        assert state["position"] == "absolute" and state["client"] <= 0.45 * 844 + 1, state
        if state["scroll"] > state["client"]:  # a long answer scrolls with the keyboard
            page.keyboard.press("End")
            page.wait_for_timeout(200)
            assert page.evaluate("document.querySelector('.ort-sheet').scrollTop") > 0
        # The bottom controls (legend, scale) moved up above the sheet, not under it.
        legend = page.locator(".ort-legend").bounding_box()
        box = sheet.bounding_box()
        assert legend["y"] + legend["height"] <= box["y"] + 1, (legend, box)
        page.keyboard.press("Escape")
        assert not sheet.is_visible()
        assert page.evaluate("document.activeElement === document.querySelector('.ort-search input')")
        # The close button, reached with Tab from the sheet, closes it too.
        page.press(".ort-search input", "Enter")
        sheet.wait_for(timeout=5_000)
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "ort-sheet-close"
        page.keyboard.press("Enter")
        assert not sheet.is_visible()
        # A tap on a parcel answers in the sheet as well, never in a popup over the map.
        spot = page.evaluate(
            """() => { const m = ORT.map, box = m.getContainer().getBoundingClientRect();
            for (const idu in ORT.index) {
                if (idu === ORT.highlighted) continue;
                const p = m.latLngToContainerPoint(ORT.index[idu].getBounds().getCenter());
                if (p.x < 40 || p.x > 350 || p.y < 200 || p.y > 420) continue;
                const e = document.elementFromPoint(box.left + p.x, box.top + p.y);
                if (e && e.tagName === 'CANVAS') return [idu, box.left + p.x, box.top + p.y];
            } return null; }"""
        )
        assert spot, "no parcel to tap in view"
        page.mouse.click(spot[1], spot[2])
        page.wait_for_timeout(300)
        if page.evaluate("ORT.highlighted") == spot[0]:  # the tap hit that parcel (not a neighbour)
            assert sheet.is_visible() and page.locator(".leaflet-popup").count() == 0
            assert f"Parcelle {spot[0]}" in sheet.inner_text()
        assert page.locator(".leaflet-popup").count() == 0
    finally:
        page.close()


@pytest.fixture(scope="module")
def diff_page(tmp_path_factory, epinay_ort):
    """``ort diff --carte`` between the two versions of the test convention of 91216."""
    _require_browser()
    from click.testing import CliRunner

    from geo.cli import main

    out = tmp_path_factory.mktemp("diff") / "avenant.html"
    res = CliRunner().invoke(main, ["diff", "--perimeters", str(epinay_ort["folder"]), "--carte", str(out)])
    assert res.exit_code == 0, res.output
    return out


@pytest.mark.parametrize("size", [SIZES["phone"], SIZES["desktop"]], ids=["phone", "desktop"])
def test_diff_map_says_before_and_after(browser_context, diff_page, size, tmp_path):
    from PIL import Image

    from geo.maps import layers

    page = _open(browser_context, diff_page, size)
    try:
        # The perimeters before the avenant: a dashed magenta line, clearly visible at load.
        shot = tmp_path / "avant.png"
        page.screenshot(path=str(shot))
        pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)
        before = int((np.abs(pixels - _hex(layers.BEFORE_COLOUR)).max(axis=1) <= 12).sum())
        assert before > 400, before
        page.fill(".ort-search input", "91216 AC 100")
        page.click(".ort-search button")
        answer = page.locator(ANSWER)
        answer.wait_for(timeout=5_000)
        text = answer.inner_text().replace("\xa0", " ")
        assert "Changements : Convention initiale → Avenant n° 1" in text, text
        assert "OPAH-RU du centre" in text and "entre dans le périmètre" in text, text
        assert "avant : hors périmètre (0,0 %)" in text and "après : à cheval (49,8 %)" in text, text
        # A click on a changed parcel (drawn above the parcels) opens that same full answer.
        page.click(".ort-whole button")
        page.wait_for_timeout(300)
        spot = page.evaluate(
            """() => { const m = ORT.map, box = m.getContainer().getBoundingClientRect();
            const ids = Object.keys(ORT.index);
            for (const idu of ids) {
                const l = ORT.index[idu];
                const p = m.latLngToContainerPoint(l.getBounds().getCenter());
                if (p.x < 60 || p.y < 200 || p.x > m.getSize().x - 60 || p.y > m.getSize().y - 120) continue;
                const e = document.elementFromPoint(box.left + p.x, box.top + p.y);
                if (e && e.tagName === 'path' && e.closest('.leaflet-ortpoints-pane')) {
                    return [idu, box.left + p.x, box.top + p.y];
                }
            } return null; }"""
        )
        assert spot, "no changed parcel in view"
        page.mouse.click(spot[1], spot[2])
        answer.wait_for(timeout=5_000)
        text = answer.inner_text().replace("\xa0", " ")
        assert "Changements :" in text and "avant : " in text and "après : " in text, text
        assert "Contenance" in text  # the parcel's full answer, not a second, shorter one
    finally:
        page.close()
