"""Web assets inlined into the maps: Leaflet from a registry package, and the map runtime.

Leaflet (JS, CSS and its images) comes from the PyPI package ``xstatic-leaflet`` (Leaflet
1.9.3, the version folium 0.20 links to), read from the installed package and inlined: a map
saved by :func:`geo.maps.page.save_offline` opens with no network request at all. The images the
CSS refers to (layer-control icon, default marker) become ``data:`` URIs.

Folium's other CDN assets (jQuery, Bootstrap, Font Awesome, awesome-markers) are not needed:
the maps use plain Leaflet vectors, and the small runtime below builds popups, the search box
and the layers. The runtime builds every popup and tooltip from DOM text nodes
(``textContent``), never from HTML strings, so text coming from data cannot run a script.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from pathlib import Path

from geo.errors import OrtError

LEAFLET_PACKAGE = "xstatic-leaflet"


def _leaflet_dir() -> Path:
    try:
        from xstatic.pkg import leaflet
    except ImportError:  # pragma: no cover - a dependency of the package
        raise OrtError(
            f"the Python package {LEAFLET_PACKAGE} is not installed: offline maps need it "
            f"— pip install {LEAFLET_PACKAGE} (or reinstall ort: pip install -e .)"
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
        raise OrtError("leaflet.css refers to a file that could not be inlined")  # pragma: no cover
    return text.replace("</style", "<\\/style")


def _script_safe(js: str) -> str:
    # Inside <script>, only "</script" (any case) ends the element early.
    return re.sub(r"</(script)", r"<\\/\1", js, flags=re.IGNORECASE)


def to_js_json(value: object) -> str:
    """JSON for a ``<script>`` element: ``<``, ``>``, ``&`` and quotes cannot end it or open a tag."""
    return (
        json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("'", "\\u0027")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


#: CSS of the map's own controls (title, legend, search, popups).
MAP_CSS = """
.leaflet-container{background:#fff}
.ort-box{background:rgba(255,255,255,.94);padding:6px 9px;border-radius:4px;color:#222;
  box-shadow:0 1px 4px rgba(0,0,0,.35);font:12px/1.35 system-ui,-apple-system,"Segoe UI",sans-serif}
.ort-title{font-size:15px;font-weight:600;max-width:60vw}
.ort-fictif{display:block;color:#b00020;font-size:12px;font-weight:700;letter-spacing:.03em}
.ort-legend{max-height:70vh;overflow:auto;max-width:320px}
.ort-legend h4{margin:6px 0 3px;font-size:12px}
.ort-legend summary{cursor:pointer}
.ort-legend .ort-item{display:flex;align-items:center;gap:6px;margin:1px 0}
.ort-legend .ort-sw{flex:none;width:18px;height:12px;border:1px solid #555;box-sizing:border-box}
.ort-legend .ort-line{flex:none;width:18px;height:0;border-top:3px solid #555}
.ort-legend .ort-dot{flex:none;width:11px;height:11px;border-radius:50%;border:1px solid #333}
.ort-legend .ort-note{color:#555;font-size:11px;margin-top:4px}
.ort-search input{width:215px;font:12px system-ui,sans-serif;padding:3px}
.ort-search button{font:12px system-ui,sans-serif;padding:3px 6px;margin-left:3px}
.ort-search .ort-msg{font-size:11px;color:#b00020;max-width:230px}
table.ort-popup{border-collapse:collapse;font:12px/1.3 system-ui,sans-serif}
table.ort-popup th{text-align:left;padding:1px 8px 1px 0;color:#555;font-weight:500;vertical-align:top}
table.ort-popup td{padding:1px 0}
.ort-popup-title{font-weight:700;margin-bottom:4px;font:600 13px system-ui,sans-serif}
"""

#: The map runtime: decodes the compact layers, builds popups from text nodes, the search box.
RUNTIME_JS = r"""
(function () {
"use strict";
var ORT = window.ORT = window.ORT || {};
ORT.index = {}; ORT.layers = {}; ORT.ready = false;

function el(tag, cls, text) {
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
ORT.el = el;

function popupContent(title, rows) {
  var box = el("div");
  if (title) box.appendChild(el("div", "ort-popup-title", title));
  var t = el("table", "ort-popup");
  rows.forEach(function (r) {
    var tr = el("tr");
    tr.appendChild(el("th", null, r[0]));
    tr.appendChild(el("td", null, r[1]));
    t.appendChild(tr);
  });
  box.appendChild(t);
  return box;
}
ORT.popupContent = popupContent;

// Geometries: integer coordinates (lon, lat × q), each number a delta from the previous one
// in the whole layer; rings are not closed; a point is [dx, dy].
function decode(g, cur, q) {
  if (typeof g[0] === "number") {
    cur[0] += g[0]; cur[1] += g[1];
    return [cur[1] / q, cur[0] / q];
  }
  return g.map(function (poly) {
    return poly.map(function (ring) {
      var out = new Array(ring.length / 2);
      for (var i = 0; i < ring.length; i += 2) {
        cur[0] += ring[i]; cur[1] += ring[i + 1];
        out[i / 2] = [cur[1] / q, cur[0] / q];
      }
      return out;
    });
  });
}

function fmtInt(n) {
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, "\u202f");
}
function fmtPct(permille) {
  return (permille / 10).toFixed(1).replace(".", ",") + "\u00a0%";
}

var canvas = null;
function parcelRenderer() {
  if (!canvas) canvas = L.canvas({padding: 0.3, tolerance: 0});
  return canvas;
}

function parcelPopup(idu, p, spec) {
  var rows = [];
  if (idu.length === 14) {
    rows.push(["Commune", idu.slice(0, 5)]);
    if (idu.slice(5, 8) !== "000") rows.push(["Préfixe", idu.slice(5, 8)]);
    rows.push(["Section", idu.slice(8, 10).replace(/^0+/, "") || "0"]);
    rows.push(["Numéro", String(parseInt(idu.slice(10, 14), 10))]);
  }
  rows.push(["Contenance", p[1] === null ? "inconnue" : fmtInt(p[1]) + "\u00a0m²"]);
  if (spec.classified) {
    rows.push(["Statut", spec.statusLabels[p[2]]]);
    var got = {};
    (p[3] || []).forEach(function (s) { got[s[0]] = s; });
    spec.perimeters.forEach(function (per, i) {
      var s = got[i];
      rows.push([per, s ? spec.statusLabels[s[1]] + " (" + fmtPct(s[2]) + ")" : spec.statusLabels[0]]);
    });
  }
  if (spec.effects && p[4]) {
    var parts = [];
    spec.effects.forEach(function (name, i) {
      var c = p[4].charAt(i);
      if (c && c !== "-") parts.push(name + " : " + spec.answers[c]);
    });
    if (parts.length) rows.push(["Éligibilité", parts.join(" ; ")]);
  }
  return popupContent("Parcelle " + idu, rows);
}

// A layer of parcels: {q, groups: [[prefix, [[suffix, contenance, status, sectors, elig, geom], ...]]],
// styles: {status: options}, perimeters: [names], statusLabels, effects, answers}.
ORT.parcels = function (spec, register) {
  var group = L.featureGroup(), cur = [0, 0], r = parcelRenderer();
  var styles = {};
  for (var code in spec.styles) {
    styles[code] = {renderer: r};
    for (var k in spec.styles[code]) styles[code][k] = spec.styles[code][k];
  }
  spec.groups.forEach(function (g) {
    var prefix = g[0];
    g[1].forEach(function (p) {
      var poly = L.polygon(decode(p[5], cur, spec.q), styles[p[2]] || styles[0]);
      poly.ortIdu = prefix + p[0];
      poly.ortData = p;
      group.addLayer(poly);
      if (register) ORT.index[poly.ortIdu] = poly;
    });
  });
  // One popup for the whole layer, made on click: 20k parcels need no 20k popup objects.
  group.ortOpen = function (layer, latlng) {
    L.popup({maxWidth: 380})
      .setLatLng(latlng || layer.getCenter())
      .setContent(parcelPopup(layer.ortIdu, layer.ortData, spec))
      .openOn(layer._map);
  };
  group.on("click", function (e) { group.ortOpen(e.layer, e.latlng); });
  return group;
};

// A layer of features: {q, kind: polygon|outline|point, pane, styles: [options],
// features: [[styleIndex, title, rows, tooltip, geom, radius]]}.
ORT.vector = function (spec) {
  var group = L.featureGroup(), cur = [0, 0];
  spec.features.forEach(function (f) {
    var g = decode(f[4], cur, spec.q);
    var opts = {pane: spec.pane};
    var style = spec.styles[f[0]];
    for (var k in style) opts[k] = style[k];
    var layer;
    if (typeof f[4][0] === "number") {
      if (f[5]) opts.radius = f[5];
      layer = L.circleMarker(g, opts);
    } else if (spec.kind === "outline") {
      var rings = [];
      g.forEach(function (poly) { poly.forEach(function (ring) { rings.push(ring.concat([ring[0]])); }); });
      layer = L.polyline(rings, opts);
    } else {
      layer = L.polygon(g, opts);
    }
    if (f[2] && f[2].length || f[1]) {
      layer.bindPopup(function () { return popupContent(f[1], f[2] || []); }, {maxWidth: 380});
    }
    if (f[3]) layer.bindTooltip(el("span", null, f[3]), {sticky: true});
    group.addLayer(layer);
  });
  return group;
};

function normalise(text) {
  return String(text || "").toUpperCase().replace(/[\s_\-\/]+/g, "");
}

// Search a parcel by IDU (14 characters) or by "AB 37" / "AB0037" / "000 AB 37" in the map's communes.
ORT.find = function (text) {
  var t = normalise(text);
  if (ORT.index[t]) return [ORT.index[t]];
  var m = /^(\d{3})?([A-Z0-9]{1,2}?)0*(\d{1,4})$/.exec(t);
  if (!m) return [];
  var prefixe = m[1], section = ("0" + m[2]).slice(-2), numero = ("000" + m[3]).slice(-4);
  var out = [];
  for (var idu in ORT.index) {
    if (idu.slice(8, 14) === section + numero && (!prefixe || idu.slice(5, 8) === prefixe)) {
      out.push(ORT.index[idu]);
    }
  }
  return out;
};

ORT.search = function (map) {
  var Search = L.Control.extend({
    options: {position: "topleft"},
    onAdd: function () {
      var box = el("div", "ort-box ort-search leaflet-bar");
      var form = el("form");
      var input = el("input");
      input.type = "search"; input.placeholder = "Parcelle : IDU ou « AB 37 »";
      input.setAttribute("aria-label", "Rechercher une parcelle par son identifiant");
      var button = el("button", null, "Chercher"); button.type = "submit";
      var msg = el("div", "ort-msg");
      form.appendChild(input); form.appendChild(button); box.appendChild(form); box.appendChild(msg);
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      form.addEventListener("submit", function (e) {
        e.preventDefault();
        var found = ORT.find(input.value);
        msg.textContent = "";
        if (!found.length) { msg.textContent = "Parcelle introuvable : " + input.value; return; }
        var layer = found[0];
        if (!map.hasLayer(layer)) {
          for (var name in ORT.layers) {
            if (ORT.layers[name].hasLayer && ORT.layers[name].hasLayer(layer)) map.addLayer(ORT.layers[name]);
          }
        }
        map.fitBounds(layer.getBounds(), {maxZoom: 19, padding: [40, 40]});
        for (var key in ORT.layers) {
          var group = ORT.layers[key];
          if (group.ortOpen && group.hasLayer(layer)) { group.ortOpen(layer); break; }
        }
        if (found.length > 1) {
          msg.textContent = found.length + " parcelles correspondent ; la première est affichée.";
        }
      });
      return box;
    }
  });
  return new Search().addTo(map);
};

ORT.control = function (map, position, node) {
  var C = L.Control.extend({
    options: {position: position},
    onAdd: function () {
      L.DomEvent.disableClickPropagation(node);
      L.DomEvent.disableScrollPropagation(node);
      return node;
    }
  });
  return new C().addTo(map);
};

ORT.init = function (map, options) {
  ORT.map = map;
  map.createPane("ortperimetres").style.zIndex = 450;
  map.createPane("ortpoints").style.zIndex = 460;
  L.Icon.Default.mergeOptions(options.icons);
  L.Icon.Default.prototype._getIconUrl = L.Icon.prototype._getIconUrl;
  if (map.attributionControl) map.attributionControl.setPrefix("Leaflet");
  L.control.scale({imperial: false, maxWidth: 160}).addTo(map);
};

ORT.finish = function (map, order) {
  function front() {
    order.forEach(function (name) {
      var l = ORT.layers[name];
      if (l && map.hasLayer(l) && l.bringToFront) l.bringToFront();
    });
  }
  map.on("overlayadd", front);
  front();
  requestAnimationFrame(function () {
    requestAnimationFrame(function () {
      ORT.renderedAt = performance.now();
      ORT.ready = true;
    });
  });
};
})();
"""


@functools.lru_cache(maxsize=1)
def inline_head() -> str:
    """The ``<style>`` and ``<script>`` elements to put in the page ``<head>``: Leaflet and the runtime."""
    return (
        f"<style>{leaflet_css()}</style>\n"
        f"<style>{MAP_CSS}</style>\n"
        f"<script>{leaflet_js()}</script>\n"
        f"<script>{_script_safe(RUNTIME_JS)}</script>\n"
    )
