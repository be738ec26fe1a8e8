"""Tile servers for the annex background: several servers, huge, malformed and hanging tiles.

A local HTTP server on 127.0.0.1 (:mod:`fileserver`) answers by path: ``/red/…`` and ``/blue/…``
plain tiles, ``/huge/…`` a 16 000 × 16 000 PNG, ``/big/…`` a 100-megapixel PNG, ``/garbage/…``
bytes that are no image, ``/hang/…`` nothing for a minute. Before: every custom URL shared one
cache folder (server B's page showed server A's tiles), the 16 000² tile raised
``DecompressionBombError`` and stayed in the cache, the 100-megapixel tile was decoded (33 s,
300 MB), and a hanging server held an annex for minutes.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from fileserver import FilesHandler, serve
from PIL import Image
from shapely.geometry import box

from geo.maps import tiles

L93 = "EPSG:2154"
EXTENT = (686_000.0, 7_036_000.0, 686_200.0, 7_036_150.0)


def _png(size, colour=(255, 0, 0), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour if mode == "RGB" else 0).save(buf, format="PNG")
    return buf.getvalue()


class TileHandler(FilesHandler):
    blobs: dict[str, bytes] = {}
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server API
        kind = self.path.strip("/").split("/", 1)[0]
        self.hits.append(kind)
        if kind == "hang":
            time.sleep(60)
            return
        data = self.blobs.get(kind)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    TileHandler.blobs = {
        "red": _png((256, 256), (255, 0, 0)),
        "blue": _png((256, 256), (0, 0, 255)),
        "huge": _png((16_000, 16_000), mode="1"),
        "big": _png((10_000, 10_000), mode="1"),
        "wide": _png((2048, 2048), mode="1"),
        "garbage": b"<html>not a tile</html>" * 10,
    }
    base, _, httpd = serve(tmp_path_factory.mktemp("tiles"), TileHandler)
    yield base
    httpd.shutdown()


def bg(base, kind):
    return tiles.background(f"{base}/{kind}/{{z}}/{{x}}/{{y}}.png")


def image(b, **kw):
    return tiles.background_image(b, EXTENT, L93, width_px=64, **kw)


def cached_tiles():
    from geo import settings

    root = Path(settings.cache_dir, "tuiles")
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_each_custom_url_has_its_own_cache(server):
    red, why = image(bg(server, "red"))
    assert why is None and red[..., 0].min() == 255 and red[..., 2].max() == 0
    blue, why = image(bg(server, "blue"))
    assert why is None, why
    assert blue[..., 2].min() == 255 and blue[..., 0].max() == 0, "server B showed server A's tiles"
    # Each server has its own folder; a second call reads the cache (no new request).
    assert (
        tiles.tile_path(bg(server, "red"), 1, 0, 0).parent.parent.parent
        != tiles.tile_path(bg(server, "blue"), 1, 0, 0).parent.parent.parent
    )
    n = len(TileHandler.hits)
    image(bg(server, "red"))
    assert len(TileHandler.hits) == n


@pytest.mark.parametrize("kind", ["huge", "big", "wide", "garbage"])
def test_oversized_or_malformed_tile_is_refused_and_never_cached(server, kind):
    start = time.monotonic()
    img, why = image(bg(server, kind))
    assert img is None
    assert why.startswith("fond « Fond de carte » indisponible (tuile ") and "sans fond de plan" in why
    assert ("illisible" in why) if kind == "garbage" else ("refusée" in why)
    assert time.monotonic() - start < 10
    assert cached_tiles() == [], "a refused tile stayed in the cache"


def test_a_refused_tile_already_in_the_cache_is_removed(server):
    b = bg(server, "red")
    img, _ = image(b)
    path = cached_tiles()[0]
    path.write_bytes(TileHandler.blobs["huge"])
    n = len(TileHandler.hits)
    img, why = image(b)  # the bad tile is refused and removed...
    assert img is None and "refusée" in why and not path.exists()
    img, why = image(b)  # ...and fetched again next time
    assert why is None and len(TileHandler.hits) > n


def test_hanging_server_costs_one_bounded_wait(server, monkeypatch):
    monkeypatch.setattr(tiles, "TILE_TIMEOUT_S", 1.0)
    budget = tiles.TileBudget(5.0)
    start = time.monotonic()
    img, why = image(bg(server, "hang"), budget=budget)
    assert img is None and "pas de réponse du serveur de tuiles" in why, why
    img, why = image(bg(server, "hang"), budget=budget)  # the next page does not wait again
    assert img is None and "pas de réponse" in why
    assert time.monotonic() - start < 4
    assert cached_tiles() == []


def test_annex_with_a_hanging_server_is_produced_without_background(server, monkeypatch, tmp_path):
    from geo.classify import classify_parcels
    from geo.maps import annex
    from geo.perimeters import add_ort_union

    monkeypatch.setattr(tiles, "TILE_TIMEOUT_S", 1.0)
    x0, y0 = EXTENT[:2]
    parcels = gpd.GeoDataFrame(
        {"idu": [f"62999000AB{n:04d}" for n in range(1, 5)], "contenance": [400] * 4},
        geometry=[box(x0 + 20 * k, y0, x0 + 20 * (k + 1), y0 + 20) for k in range(4)],
        crs=L93,
    )
    perims = add_ort_union(
        gpd.GeoDataFrame(
            {
                "perimeter_id": ["a", "b"],
                "type": ["secteur", "secteur"],
                "nom": ["A", "B"],
                "centre_ville": [True, False],
            },
            geometry=[box(x0 - 5, y0 - 5, x0 + 45, y0 + 25), box(x0 + 45, y0 - 5, x0 + 85, y0 + 25)],
            crs=L93,
        )
    )
    start = time.monotonic()
    doc = annex.annex_pages(
        perims,
        parcels,
        classification=classify_parcels(parcels, perims),
        background=f"{server}/hang/{{z}}/{{x}}/{{y}}.png",
    )
    elapsed = time.monotonic() - start
    assert len(doc.pages) >= 3
    assert any("indisponible" in n and "sans fond de plan" in n for n in doc.notices), doc.notices
    assert elapsed < 30, f"{elapsed:.0f} s"
    written = annex.write_annex(doc, tmp_path / "annexe")
    assert any(p.suffix == ".pdf" for p in written)


def test_tile_arrays_are_rgb_256(server):
    arr = tiles.fetch_tile(bg(server, "red"), 3, 4, 2)
    assert isinstance(arr, np.ndarray) and arr.shape == (256, 256, 3)
