"""Web assets inlined into the maps: Leaflet from a registry package, and the map runtime.

Leaflet (JS, CSS and its images) comes from the PyPI package ``xstatic-leaflet`` (Leaflet
1.9.3, the version folium 0.20 links to), read from the installed package and inlined: a map
saved by :func:`geo.maps.page.save_offline` opens with no network request at all. The images the
CSS refers to (layer-control icon, default marker) become ``data:`` URIs.

Folium's other CDN assets (jQuery, Bootstrap, Font Awesome, awesome-markers) are not needed:
the maps use plain Leaflet vectors, and the map's own runtime (:data:`STATIC_FILES`, real
``.js``/``.css`` files of the package, inlined the same way) builds popups, the search box and
the layers. The runtime builds every popup and tooltip from DOM text nodes
(``textContent``), never from HTML strings, so text coming from data cannot run a script.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from importlib import resources
from pathlib import Path

from geo.errors import OrtError
from geo.maps.text import no_surrogates

LEAFLET_PACKAGE = "xstatic-leaflet"


def _leaflet_dir() -> Path:
    try:
        from xstatic.pkg import leaflet
    except ImportError:  # pragma: no cover - a dependency of the package
        raise OrtError(
            f"le paquet Python {LEAFLET_PACKAGE} n'est pas installé : les cartes hors ligne en ont besoin "
            f"— pip install {LEAFLET_PACKAGE} (ou réinstallez ort : pip install -e .)"
        ) from None
    return Path(leaflet.BASE_DIR)


@functools.lru_cache(maxsize=1)
def leaflet_version() -> str:
    """Version of the inlined Leaflet, e.g. ``"1.9.3"``."""
    from xstatic.pkg import leaflet

    return str(leaflet.VERSION)


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


@functools.lru_cache(maxsize=1)
def leaflet_js() -> str:
    """Minified Leaflet, without its source-map comment, safe inside a ``<script>`` element."""
    text = (_leaflet_dir() / "leaflet.js").read_text(encoding="utf-8")
    text = re.sub(r"^//# sourceMappingURL=.*$", "", text, flags=re.MULTILINE)
    return _script_safe(text)


@functools.lru_cache(maxsize=1)
def icon_uris() -> dict[str, str]:
    """The default marker images as ``data:`` URIs (``iconUrl``, ``iconRetinaUrl``, ``shadowUrl``)."""
    images = _leaflet_dir() / "images"
    return {
        "iconUrl": _data_uri(images / "marker-icon.png"),
        "iconRetinaUrl": _data_uri(images / "marker-icon-2x.png"),
        "shadowUrl": _data_uri(images / "marker-shadow.png"),
    }


@functools.lru_cache(maxsize=1)
def leaflet_css() -> str:
    """Leaflet's CSS with every ``url(images/…)`` replaced by a ``data:`` URI."""
    folder = _leaflet_dir()
    text = (folder / "leaflet.css").read_text(encoding="utf-8")

    def inline(match: re.Match) -> str:
        name = match.group(1)
        return f'url("{_data_uri(folder / "images" / name)}")'

    text = re.sub(r"url\(images/([A-Za-z0-9_.-]+\.png)\)", inline, text)
    # IE's VML behaviour is the only other url(); it loads nothing in a modern browser.
    text = text.replace("behavior: url(#default#VML);", "")
    if re.search(r"url\((?!\"?data:)", text):
        raise OrtError("leaflet.css renvoie à un fichier qui n'a pas pu être intégré")  # pragma: no cover
    return text.replace("</style", "<\\/style")


def _script_safe(js: str) -> str:
    # Inside <script>, only "</script" (any case) ends the element early.
    return re.sub(r"</(script)", r"<\\/\1", js, flags=re.IGNORECASE)


def to_js_json(value: object) -> str:
    """JSON for a ``<script>`` element: ``<``, ``>``, ``&`` and quotes cannot end it or open a tag."""
    return (
        no_surrogates(json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False))
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("'", "\\u0027")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


#: The map's own files, in ``geo/maps/static`` (package data): the runtime (``ort-map.js``:
#: decodes the compact layers, builds popups from text nodes, the search box, the highlighted
#: parcel, the legend that follows the layers and the view fitted to the screen), the
#: orientation layers' runtime (``ort-orient.js``: labels, building fills, the tile notice) and
#: the CSS of every control, for every screen size and print (``ort-map.css``). They hold no
#: data: the page passes each layer to them as JSON (:func:`to_js_json`).
STATIC_FILES = ("ort-map.css", "ort-map.js", "ort-orient.js")


@functools.cache
def static_text(name: str) -> str:
    """One of :data:`STATIC_FILES`, read from the installed package (``importlib.resources``)."""
    if name not in STATIC_FILES:
        raise ValueError(f"unknown map asset {name!r}")
    try:
        return (resources.files("geo.maps") / "static" / name).read_text(encoding="utf-8")
    except FileNotFoundError:  # pragma: no cover - a broken installation
        raise OrtError(
            f"fichier {name} de la carte absent du paquet ort installé — réinstallez ort (pip install .)"
        ) from None


@functools.lru_cache(maxsize=1)
def inline_head() -> str:
    """The ``<style>`` and ``<script>`` elements to put in the page ``<head>``: Leaflet, map files."""
    css = static_text("ort-map.css").replace("</style", "<\\/style")
    return (
        f"<style>{leaflet_css()}</style>\n"
        f"<style>{css}</style>\n"
        f"<script>{leaflet_js()}</script>\n"
        f"<script>{_script_safe(static_text('ort-map.js'))}</script>\n"
        f"<script>{_script_safe(static_text('ort-orient.js'))}</script>\n"
    )
