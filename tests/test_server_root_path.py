"""``ort serve --root-path /ort`` behind a real reverse proxy (a small one, in this test) that
serves it under ``http://127.0.0.1:PORT/ort/`` and strips the prefix, as nginx's
``location /ort/ { proxy_pass http://127.0.0.1:8000/; }`` does.

Through the proxy: the counter page and its files, the answer of a parcel, the note, the API
docs and their OpenAPI document, the OGC API landing page whose links (followed) lead to the
perimeters' GeoJSON; and in chromium, the page answers a parcel (its script's requests carry the
prefix).
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

import httpx
import pytest
from conftest import free_port, wait_for_server

PREFIX = "/ort"
PARCEL, DAY = "62999000AB0012", "2024-09-01"
HOP_HEADERS = ("transfer-encoding", "connection", "content-encoding", "content-length")


def _proxy(backend: str) -> ThreadingHTTPServer:
    """A reverse proxy on a free port: ``/ort/x`` → ``backend/x`` (Host kept, as nginx is told)."""

    class Handler(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            path = self.path
            if not (path == PREFIX or path.startswith(PREFIX + "/")):
                self.send_error(404)
                return
            body = None
            if self.command == "POST":
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
            target = backend + (path[len(PREFIX) :] or "/")
            r = httpx.request(self.command, target, headers=headers, content=body, timeout=120)
            self.send_response(r.status_code)
            for name, value in r.headers.items():
                if name.lower() not in HOP_HEADERS:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(r.content)))
            self.end_headers()
            self.wfile.write(r.content)

        do_GET = do_POST = _forward

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("root-path")
    port = free_port()
    log = folder / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "geo", "serve", "--perimeters", "demo", "--port", str(port),
             "--root-path", "ort/"],  # written loosely: read as /ort
            cwd=folder, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for_server(proc, f"http://127.0.0.1:{port}", seconds=300, log=log)
        proxy = _proxy(f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{proxy.server_address[1]}{PREFIX}"
        proxy.shutdown()
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_page_and_its_files_under_the_prefix(behind_proxy):
    r = httpx.get(f"{behind_proxy}/", timeout=60)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    html = r.text
    assert f'action="{PREFIX}/api/verifications"' in html
    assert f'href="{PREFIX}/docs"' in html and f'href="{PREFIX}/ogc"' in html
    assert '"base": "/ort"' in html or '"base":"/ort"' in html
    files = re.findall(r'(?:href|src)="(/[^"]+\.(?:css|js))"', html)
    assert files and all(f.startswith(PREFIX + "/static/") for f in files), files
    origin = behind_proxy[: -len(PREFIX)]
    for f in files:
        assert httpx.get(origin + f, timeout=60).status_code == 200, f


def test_api_and_docs_under_the_prefix(behind_proxy):
    r = httpx.get(f"{behind_proxy}/api/parcelles/{PARCEL}", params={"date": DAY}, timeout=60)
    assert r.status_code == 200 and r.json()["idu"] == PARCEL
    bad = httpx.get(f"{behind_proxy}/api/parcelles/XYZ", timeout=60)
    assert bad.status_code in (400, 404) and bad.json()["instance"].startswith(PREFIX + "/api/")
    pdf = httpx.get(f"{behind_proxy}/api/parcelles/{PARCEL}/note.pdf", params={"date": DAY}, timeout=120)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    docs = httpx.get(f"{behind_proxy}/docs", timeout=60)
    assert docs.status_code == 200 and f"{PREFIX}/openapi.json" in docs.text
    spec = httpx.get(f"{behind_proxy}/openapi.json", timeout=60).json()
    assert "/api/parcelles/{idu}" in spec["paths"]


def test_ogc_links_lead_through_the_proxy(behind_proxy):
    landing = httpx.get(f"{behind_proxy}/ogc", timeout=60).json()
    hrefs = [link["href"] for link in landing["links"]]
    assert all(h.startswith(behind_proxy + "/") for h in hrefs), hrefs
    collections_url = next(h for h in hrefs if h.endswith("/ogc/collections"))
    collections = httpx.get(collections_url, timeout=60).json()["collections"]
    perimeters = next(c for c in collections if c["id"] == "demo-perimetres")
    items_url = next(link["href"] for link in perimeters["links"] if link["rel"] == "items")
    assert items_url.startswith(behind_proxy + "/ogc/")
    fc = httpx.get(items_url, params={"datetime": DAY}, timeout=60).json()
    assert fc["type"] == "FeatureCollection" and fc["features"]


def test_page_answers_in_a_browser_under_the_prefix(behind_proxy):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed")
    from test_server_page import ARGS, CHROMIUM

    if not CHROMIUM.exists():
        pytest.skip(f"chromium not found at {CHROMIUM}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1300, "height": 850})
            asked = []
            tab.on("request", lambda r: asked.append(urlparse(r.url).path))
            errors = []
            tab.on("pageerror", lambda e: errors.append(str(e)))
            tab.goto(f"{behind_proxy}/?parcelle={PARCEL}&date={DAY}")
            tab.wait_for_function(
                "idu => document.querySelector('#resultat h3') && "
                "document.querySelector('#resultat h3').textContent.includes(idu)",
                arg=PARCEL,
                timeout=60_000,
            )
            note = tab.get_attribute("#lien-note", "href")
            assert note.startswith(f"{PREFIX}/api/parcelles/{PARCEL}/note.pdf")
            assert not errors
            assert asked and all(path.startswith(PREFIX + "/") for path in asked), asked
            assert any(path.startswith(f"{PREFIX}/api/parcelles/") for path in asked)
            assert any(path.startswith(f"{PREFIX}/ogc/collections/") for path in asked)
        finally:
            browser.close()
