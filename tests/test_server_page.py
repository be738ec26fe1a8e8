"""The counter page of ``ort serve`` in a real headless chromium (playwright), at a phone's, a
small laptop's and a desktop's size: search by parcel and by address, the answer beside the map,
the note link, the permalink, the file upload, keyboard use, and axe-core (its npm package, kept
offline by ``.ci/install-browser``) reporting no serious or critical violation.

Skipped with the reason when chromium, playwright or axe-core is missing, except under CI=true.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
SIZES = [(390, 844), (1024, 640), (1300, 850)]
PARCEL, DAY = "62999000AB0012", "2024-09-01"
#: Where .ci/install-browser puts the npm package axe-core (``ORT_NPM_DIR`` overrides).
NPM_DIR = Path(os.environ.get("ORT_NPM_DIR", Path.home() / ".cache" / "ort" / "npm"))
AXE = NPM_DIR / "node_modules" / "axe-core" / "axe.min.js"


def _missing(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (run .ci/install-browser)")
    exe = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    if not exe:
        _missing(f"chromium not found at {CHROMIUM} (run .ci/install-browser as root)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(params=SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def page(request, browser, ort_server):
    """A tab of the given size; records requests to other hosts and script errors."""
    width, height = request.param
    ctx = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    tab = ctx.new_page()
    tab.seen = {"foreign": [], "errors": []}
    host = urlparse(ort_server).netloc
    tab.on(
        "request", lambda r: urlparse(r.url).netloc not in (host, "") and tab.seen["foreign"].append(r.url)
    )
    tab.on("pageerror", lambda e: tab.seen["errors"].append(str(e)))
    tab.base = ort_server
    yield tab
    ctx.close()


def _answer_shown(tab, idu: str) -> None:
    tab.wait_for_function(
        "idu => document.querySelector('#resultat h3') && "
        "document.querySelector('#resultat h3').textContent.includes(idu)",
        arg=idu,
        timeout=60_000,
    )


def _visible_in_viewport(tab, selector: str) -> bool:
    return tab.evaluate(
        """sel => { const r = document.querySelector(sel).getBoundingClientRect();
                   return r.width > 0 && r.height > 0 && r.left >= 0 && r.right <= innerWidth + 1; }""",
        selector,
    )


def test_permalink_reopens_the_answer_with_its_note(page):
    page.goto(f"{page.base}/?parcelle={PARCEL}&date={DAY}")
    _answer_shown(page, PARCEL)
    text = page.inner_text("#resultat")
    assert "à cheval" in text and "Centre-ville" in text and "Denormandie" in text
    assert "15,0\u00a0%" in text and "97\u00a0m²" in text and "NaN" not in text and "undefined" not in text
    assert page.input_value("#date") == DAY
    href = page.get_attribute("#lien-note", "href")
    assert href == f"/api/parcelles/{PARCEL}/note.pdf?date={DAY}"
    pdf = page.request.get(page.base + href)
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
    # the parcel drawn on the map, and nothing asked of another host
    page.wait_for_function("document.querySelectorAll('#carte path.leaflet-interactive').length >= 5")
    assert page.seen["foreign"] == [] and page.seen["errors"] == []
    # no horizontal scrolling; the answer and the map are on screen at every size
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    assert _visible_in_viewport(page, "#reponse") and _visible_in_viewport(page, "#carte")


def test_search_by_keyboard_then_permalink(page):
    page.goto(f"{page.base}/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("AB 13")
    page.keyboard.press("Tab")  # commune (pre-filled: the only commune served)
    assert page.evaluate("document.activeElement.id") == "commune"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "date"
    page.fill("#date", DAY)
    page.focus("#q")
    page.keyboard.press("Enter")
    _answer_shown(page, "62999000AB0013")
    assert page.evaluate("location.search") == "?parcelle=62999000AB0013&date=2024-09-01"
    assert "62999000AB0013" in page.inner_text("#etat")  # the live region says it to screen readers


def test_search_by_address(page):
    page.goto(f"{page.base}/?date={DAY}")
    page.fill("#q", "12 rue de la Gare")
    page.click("button[type=submit] >> text=Chercher")
    _answer_shown(page, PARCEL)
    page.goto(f"{page.base}/?date={DAY}")
    page.fill("#q", "3 de la Mairie")
    page.keyboard.press("Enter")
    page.wait_for_selector("#resultat li button")
    assert {b.inner_text() for b in page.query_selector_all("#resultat li button")} >= {
        "3 Rue de la Mairie Ormeval-sur-Mer",
        "3 Place de la Mairie Ormeval-sur-Mer",
    }


def test_bad_entry_says_why(page):
    page.goto(f"{page.base}/?date={DAY}")
    page.fill("#q", "62999000ZZ0012")
    page.keyboard.press("Enter")
    page.wait_for_selector("#resultat .erreur")
    assert "section" in page.inner_text("#resultat .erreur")


def test_upload_gives_the_table(page, tmp_path):
    src = tmp_path / "parcelles.csv"
    src.write_text("idu\n62999000AB0012\n62999000AB0013\n", encoding="utf-8")
    page.goto(f"{page.base}/?date={DAY}")
    page.set_input_files("#fichier", str(src))
    with page.expect_download() as info:
        page.click("text=Vérifier le fichier")
    saved = tmp_path / "resultat.csv"
    info.value.save_as(saved)
    text = saved.read_text(encoding="utf-8-sig")
    assert text.startswith("idu;") and "62999000AB0013" in text and "à cheval" in text
    assert info.value.suggested_filename == "parcelles-verifie.csv"


def test_axe_finds_no_serious_violation(page):
    if not AXE.is_file():
        _missing(f"axe-core not found at {AXE} (run .ci/install-browser)")
    page.goto(f"{page.base}/?parcelle={PARCEL}&date={DAY}")
    _answer_shown(page, PARCEL)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == []
