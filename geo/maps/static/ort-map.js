(function () {
"use strict";
var ORT = window.ORT = window.ORT || {};
ORT.index = {}; ORT.layers = {}; ORT.perimeters = {}; ORT.ready = false;

function el(tag, cls, text) {
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
ORT.el = el;

// rows: [label, value] pairs; value is text or a DOM node; [label] alone is a section heading.
function popupContent(title, rows) {
  var box = el("div");
  if (title) box.appendChild(el("div", "ort-popup-title", title));
  var t = el("table", "ort-popup");
  rows.forEach(function (r) {
    var tr = el("tr", r.length === 1 ? "ort-sep" : null);
    var th = el("th", null, r[0]);
    tr.appendChild(th);
    if (r.length === 1) { th.colSpan = 2; t.appendChild(tr); return; }
    var td = el("td");
    if (r[1] && r[1].nodeType) td.appendChild(r[1]); else td.textContent = String(r[1]);
    tr.appendChild(td);
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

function verdictNode(answer, share, ref) {
  var span = el("span");
  var pct = share !== undefined && share !== null ? " (" + fmtPct(share) + ")" : "";
  span.appendChild(el("span", "ort-v-" + answer, answer + pct));
  if (ref) span.appendChild(el("span", "ort-ref", ref));
  return span;
}

function parcelPopup(idu, p, spec, extra) {
  var rows = (extra || []).slice();
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
  var changes = spec.changes && spec.changes[idu];
  if (changes) {  // a diff map: each perimeter's status and share before and after the avenant
    rows.push([spec.changeHead]);
    changes.forEach(function (c) {
      var node = el("span");
      node.appendChild(el("span", "ort-change ort-change-" + c[1], spec.changeLabels[c[1]]));
      var side = function (word, status, share) {
        return el("span", "ort-side", word + " : " + spec.statusLabels[status] + " (" + fmtPct(share) + ")");
      };
      node.appendChild(side("avant", c[2], c[3]));
      node.appendChild(side("après", c[4], c[5]));
      rows.push([c[0], node]);
    });
  }
  if (spec.effects && p[4]) {
    var shares = p[6] || {};
    var head = spec.rulesDate ? "Dispositifs au " + spec.rulesDate : "Éligibilité";
    var any = false;
    spec.effects.forEach(function (name, i) {
      var c = p[4].charAt(i);
      if (!c || c === "-") return;
      if (!any) { rows.push([head]); any = true; }
      var ref = spec.references ? spec.references[i] : "";
      rows.push([name, verdictNode(spec.answers[c], c === "p" ? shares[i] : null, ref)]);
    });
    if (any && spec.rulesNote) rows.push(["", spec.rulesNote]);
  }
  return popupContent("Parcelle " + idu, rows);
}

// The parcel shown by the search or a click: outlined on top of everything.
var outline = null;
ORT.highlight = function (layer) {
  var map = ORT.map;
  if (outline) { map.removeLayer(outline); outline = null; }
  ORT.highlighted = null;
  if (!layer || !layer.getLatLngs) return;
  // On a white casing: it reads on every fill (a diff map's blue parcels too).
  var ll = layer.getLatLngs(), common = {pane: "orthighlight", fill: false, interactive: false};
  outline = L.layerGroup([
    L.polygon(ll, L.extend({color: "#ffffff", weight: 8, opacity: 0.9, className: "ort-highlight-casing"},
                           common)),
    L.polygon(ll, L.extend({color: "#0033cc", weight: 4, className: "ort-highlight"}, common))
  ]).addTo(map);
  ORT.highlighted = layer.ortIdu;
};

// A layer of parcels:
// {q, groups: [[prefix, [[suffix, contenance, status, sectors, elig, geom, shares], ...]]],
// styles: {status: options}, perimeters: [names], statusLabels, effects, answers, references,
// rulesDate, delegate}.
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
  group.ortContent = function (layer, extra) {
    return parcelPopup(layer.ortIdu, layer.ortData, spec, extra);
  };
  group.ortOpen = function (layer, latlng, extra, noPan) {
    ORT.highlight(layer);
    var map = layer._map || ORT.map;
    if (useSheet(map)) {  // a phone: the answer in the bottom sheet, the parcel kept above it
      openSheet(map, group.ortContent(layer, extra), "Parcelle " + layer.ortIdu);
      if (!noPan && latlng) map.panInside(latlng, sheetPadding(map));
      return null;
    }
    var b = layer.getBounds();  // from the search: at the parcel's north edge, the parcel below it
    var options = popupOptions(layer._map || ORT.map);
    if (noPan) {  // the search places the view itself; on a narrow map the popup stays short
      var mapSize = (layer._map || ORT.map).getSize();
      options.autoPan = false;
      if (mapSize.x < 700) options.maxHeight = Math.max(140, Math.min(options.maxHeight, mapSize.y * 0.33));
    }
    return L.popup(options)
      .setLatLng(latlng || L.latLng(b.getNorth(), b.getCenter().lng))
      .setContent(group.ortContent(layer, extra))
      .openOn(layer._map || ORT.map);
  };
  group.on("click", function (e) {
    L.DomEvent.stopPropagation(e);  // the map's own click clears the outline
    // An eligibility layer answers with the parcel's full popup (sectors and every dispositif).
    var main = ORT.layers.parcelles, same = ORT.index[e.layer.ortIdu];
    if (spec.delegate && main && main.ortOpen && same) main.ortOpen(same, e.latlng);
    else group.ortOpen(e.layer, e.latlng);
  });
  return group;
};

// A layer of features: {q, kind: polygon|outline|point, pane, styles: [options], ids,
// features: [[styleIndex, title, rows, tooltip, geom, radius]]}.
ORT.vector = function (spec) {
  var group = L.featureGroup(), cur = [0, 0];
  spec.features.forEach(function (f, i) {
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
    var pid = spec.parcelIds ? spec.parcelIds[i] : null;
    if (pid && ORT.index[pid] && ORT.layers.parcelles) {
      // The parcel's full popup (every perimeter, before and after), as a click on the parcel.
      layer.on("click", function (e) {
        L.DomEvent.stopPropagation(e);
        ORT.layers.parcelles.ortOpen(ORT.index[pid], e.latlng);
      });
    } else if (f[2] && f[2].length || f[1]) {
      layer.bindPopup(function () { return popupContent(f[1], f[2] || []); },
                      {maxWidth: Math.min(380, window.innerWidth - 40), autoPanPaddingTopLeft: [10, 180]});
    }
    if (f[3]) layer.bindTooltip(el("span", null, f[3]), {sticky: true});
    if (spec.ids) { layer.ortId = spec.ids[i]; ORT.perimeters[spec.ids[i]] = layer; }
    group.addLayer(layer);
  });
  return group;
};

// ---- parcel ids, in every form people type --------------------------------------------------
function pad(s, n) { s = String(s); while (s.length < n) s = "0" + s; return s; }
var INSEE = /^(\d{5}|2[AB]\d{3})$/;
// {insee (or null for a short form), prefixe (or null), section, numero} or null.
ORT.parseId = function (text) {
  var up = String(text || "").trim().toUpperCase();
  var parts = up.split(/[\s\-/._]+/).filter(function (x) { return x; });
  var c = parts.join(""), m;
  function id(insee, pre, sec, num) {
    if (!/^\d{1,4}$/.test(num) || !parseInt(num, 10)) return null;
    return {insee: insee, prefixe: pre, section: pad(sec, 2), numero: pad(num, 4)};
  }
  if ((m = /^(\d{5}|2[AB]\d{3})(\d{3})([0-9A-Z]{2})(\d{4})$/.exec(c))) return id(m[1], m[2], m[3], m[4]);
  if (parts.length === 4 && INSEE.test(parts[0]) && /^\d{3}$/.test(parts[1])
      && /^[0-9A-Z]{1,2}$/.test(parts[2]))
    return id(parts[0], parts[1], parts[2], parts[3]);
  if (parts.length === 3 && INSEE.test(parts[0]) && /^[0-9A-Z]{1,2}$/.test(parts[1]))
    return id(parts[0], "000", parts[1], parts[2]);
  if ((m = /^(\d{5}|2[AB]\d{3})(\d{3})([A-Z]{1,2}|\d[A-Z]|[A-Z]\d)(\d{1,4})$/.exec(c)))
    return id(m[1], m[2], m[3], m[4]);
  if (parts.length === 3 && /^\d{3}$/.test(parts[0]) && /^[0-9A-Z]{1,2}$/.test(parts[1]))
    return id(null, parts[0], parts[1], parts[2]);
  if (parts.length === 2 && /^[0-9A-Z]{1,2}$/.test(parts[0])) return id(null, null, parts[0], parts[1]);
  if ((m = /^(\d{3})?(\d?[A-Z]{1,2})(\d{1,4})$/.exec(c))) return id(null, m[1] || null, m[2], m[3]);
  return null;
};

// Parcels matching a typed id: one for a full id, possibly several for "AB 37" on several communes.
ORT.find = function (text) {
  var p = ORT.parseId(text);
  if (!p) return [];
  if (p.insee) {
    var hit = ORT.index[p.insee + p.prefixe + p.section + p.numero];
    return hit ? [hit] : [];
  }
  var out = [];
  for (var idu in ORT.index) {
    if (idu.slice(8, 14) === p.section + p.numero && (!p.prefixe || idu.slice(5, 8) === p.prefixe)) {
      out.push(ORT.index[idu]);
    }
  }
  return out;
};

// ---- addresses (embedded address points of the commune) ---------------------------------------
var ADDR = null;
ORT.addresses = function (spec) { ADDR = spec; };

function plain(text) {
  return String(text || "").normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toUpperCase();
}
function voieKey(text) {
  var words = plain(text).replace(/[^A-Z0-9]+/g, " ").trim().split(" ").filter(function (w) { return w; });
  words = words.map(function (w, i) { return (i === 0 ? ADDR.types[w] : ADDR.names[w]) || w; });
  return words.filter(function (w) { return ADDR.small.indexOf(w) < 0; }).join(" ");
}
var TYPES = null;
function typeAndName(key) {
  if (!TYPES) {
    TYPES = {};
    for (var k in ADDR.types) TYPES[ADDR.types[k]] = true;
  }
  var i = key.indexOf(" ");
  return i > 0 && TYPES[key.slice(0, i)] ? [key.slice(0, i), key.slice(i + 1)] : ["", key];
}
// Like geo.sources.addresses.street_score: the names compared, another street type costs 10 %.
function streetScore(a, b) {
  if (a === b) return 1;
  var x = typeAndName(a), y = typeAndName(b);
  return similarity(x[1], y[1]) * (x[0] === y[0] || !x[0] || !y[0] ? 1 : 0.9);
}
function bigrams(s) {
  var out = {};
  for (var i = 0; i < s.length - 1; i++) { var b = s.substr(i, 2); out[b] = (out[b] || 0) + 1; }
  return out;
}
function similarity(a, b) {
  if (a === b) return 1;
  if (a.length < 2 || b.length < 2) return 0;
  var x = bigrams(a), y = bigrams(b), inter = 0, n = 0, k;
  for (k in x) { n += x[k]; if (y[k]) inter += Math.min(x[k], y[k]); }
  for (k in y) n += y[k];
  return 2 * inter / n;
}
ORT.looksLikeAddress = function (text) {
  return /[A-Za-zÀ-ÿ]{3,}/.test(text) && String(text).trim().split(/\s+/).length >= 2;
};
// {status: "trouvée"|"ambiguë"|"introuvable", address: [label, idu, lat, lon, score], message}
ORT.findAddress = function (text) {
  if (!ADDR) {
    return {status: "introuvable",
            message: "Aucune adresse dans cette carte : produite sans fichier d'adresses (--adresses)."};
  }
  var head = String(text).split(/,|\b\d{5}\b/)[0];
  var m = /^\s*(\d+)\s*(bis|ter|quater|[a-z])?\b[\s,]*(.+)$/i.exec(head);
  if (!m) return {status: "introuvable", message: "Adresse sans numéro de voie : " + text};
  var num = String(parseInt(m[1], 10));
  var suf = m[2] ? (ADDR.suffixes[m[2].toUpperCase()] || m[2].toUpperCase()) : "";
  var key = voieKey(m[3]);
  var scored = ADDR.keys.map(function (k, i) { return [streetScore(key, k), i]; })
    .filter(function (s) { return s[0] >= 0.75; }).sort(function (a, b) { return b[0] - a[0]; });
  if (!scored.length) {
    return {status: "introuvable", message: "Adresse introuvable : voie inconnue (« " + m[3].trim() + " »)."};
  }
  var best = scored[0][0];
  var streets = scored.filter(function (s) { return best - s[0] < 0.05; });
  var hits = [];
  streets.forEach(function (s) {
    ADDR.points.forEach(function (p) {
      if (p[0] === s[1] && p[1] === num + suf) hits.push([s, p]);
    });
  });
  if (!hits.length) {
    var st = streets[0][1], known = [];
    ADDR.points.forEach(function (p) { if (p[0] === st && known.indexOf(p[1]) < 0) known.push(p[1]); });
    known.sort(function (a, b) { return parseInt(a, 10) - parseInt(b, 10); });
    return {status: "introuvable", message: "Adresse introuvable : numéro " + num + suf.toLowerCase() +
      " absent de la voie « " + ADDR.streets[st] + " » (numéros connus : " + known.slice(0, 12).join(", ") +
      (known.length > 12 ? "…" : "") + ")."};
  }
  var distinct = {};
  hits.forEach(function (h) { distinct[h[0][1]] = h; });
  var keys = Object.keys(distinct);
  if (keys.length > 1) {
    return {status: "ambiguë", message: "Adresse ambiguë : " + keys.map(function (k) {
      return num + suf.toLowerCase() + " " + ADDR.streets[k]; }).join(" ; ") + ". Précisez la voie."};
  }
  var h = hits[0], p = h[1];
  var label = p[1].toLowerCase() + " " + ADDR.streets[p[0]];
  return {status: "trouvée", message: "", address: [label, p[2], p[4] / ADDR.q, p[3] / ADDR.q, h[0][0]]};
};

// ---- framing a parcel found by the search -------------------------------------------------
// The nearest point of a perimeter's outline to a point: {ll, d (metres), id}, or null.
var M_PER_DEG = 111320;
function nearestBoundary(c) {
  var k = Math.cos(c.lat * Math.PI / 180), best = null;
  function xy(ll) { return [(ll.lng - c.lng) * M_PER_DEG * k, (ll.lat - c.lat) * M_PER_DEG]; }
  function ring(pts, id) {
    for (var i = 0; i < pts.length; i++) {
      var a = xy(pts[i]), b = xy(pts[(i + 1) % pts.length]);
      var dx = b[0] - a[0], dy = b[1] - a[1], len = dx * dx + dy * dy;
      var t = len ? Math.max(0, Math.min(1, -(a[0] * dx + a[1] * dy) / len)) : 0;
      var x = a[0] + t * dx, y = a[1] + t * dy, d = Math.sqrt(x * x + y * y);
      if (!best || d < best.d) {
        best = {d: d, id: id, ll: L.latLng(c.lat + y / M_PER_DEG, c.lng + x / (M_PER_DEG * k))};
      }
    }
  }
  function walk(list, id) {
    if (!list.length) return;
    if (list[0] instanceof L.LatLng) ring(list, id);
    else list.forEach(function (sub) { walk(sub, id); });
  }
  for (var id in ORT.perimeters) {
    var layer = ORT.perimeters[id];
    if (layer.getLatLngs) walk(layer.getLatLngs(), id);
  }
  return best;
}
ORT.nearestBoundary = nearestBoundary;
// What the search shows: the whole parcel, its neighbours (half its size around it, 15 m at
// least) and the nearest sector boundary when it is within 250 m (or four times the parcel).
function searchFrame(layer) {
  var b = layer.getBounds(), c = b.getCenter(), k = Math.cos(c.lat * Math.PI / 180);
  var w = (b.getEast() - b.getWest()) * M_PER_DEG * k, h = (b.getNorth() - b.getSouth()) * M_PER_DEG;
  var m = Math.max(15, 0.5 * Math.max(w, h));
  var frame = L.latLngBounds(
    [b.getSouth() - m / M_PER_DEG, b.getWest() - m / (M_PER_DEG * k)],
    [b.getNorth() + m / M_PER_DEG, b.getEast() + m / (M_PER_DEG * k)]);
  var edge = nearestBoundary(c);
  if (edge && edge.d <= Math.max(250, 4 * Math.max(w, h))) {
    var e = 10;  // the line itself, not at the very edge of the view
    frame.extend([edge.ll.lat - e / M_PER_DEG, edge.ll.lng - e / (M_PER_DEG * k)]);
    frame.extend([edge.ll.lat + e / M_PER_DEG, edge.ll.lng + e / (M_PER_DEG * k)]);
  }
  return frame;
}
ORT.searchFrame = searchFrame;

function showParcel(map, layer, extra) {
  if (!map.hasLayer(layer)) {
    for (var name in ORT.layers) {
      if (ORT.layers[name].hasLayer && ORT.layers[name].hasLayer(layer)) map.addLayer(ORT.layers[name]);
    }
    if (ORT.syncLegend) ORT.syncLegend();
  }
  if (ORT.foldLegend) ORT.foldLegend();
  var frame = searchFrame(layer), size = map.getSize(), group = null;
  var main = ORT.layers.parcelles, popup = null;
  if (main && main.ortOpen && main.hasLayer(layer)) group = main;
  else {
    for (var key in ORT.layers) {
      if (ORT.layers[key].ortOpen && ORT.layers[key].hasLayer(layer)) { group = ORT.layers[key]; break; }
    }
  }
  if (group && useSheet(map)) {
    // A phone: the answer in the bottom sheet, the frame in the room left above it.
    group.ortOpen(layer, null, extra, true);
    var sp = sheetPadding(map);
    map.fitBounds(frame, {paddingTopLeft: sp.paddingTopLeft, paddingBottomRight: sp.paddingBottomRight,
                          maxZoom: 19, animate: false});
    ORT.lastFrame = {padding: [sp.paddingTopLeft, sp.paddingBottomRight], sheet: true};
    return;
  }
  var opts = fitOptions(map, 19, frame);
  opts.animate = false;  // settled at once: the popup is measured and placed just below
  map.fitBounds(frame, opts);
  if (group) popup = group.ortOpen(layer, null, extra, true);
  if (!popup || !popup.getElement()) return;
  // Then the view is placed around the popup so that it covers none of the parcel: on a wide
  // map the popup stands beside the parcel (to its left, the frame in the room on the right);
  // on a narrow one above it (anchored at its north edge), the frame below it.
  var node = popup.getElement(), r = node.getBoundingClientRect();
  var top = popupOptions(map).autoPanPaddingTopLeft[1];
  var bottom = popupOptions(map).autoPanPaddingBottomRight[1];
  if (size.x - r.width - 44 >= 260) {
    var b = layer.getBounds();
    popup.setLatLng(L.latLng(b.getCenter().lat, b.getWest()));
    popup.options.offset = L.point(-(r.width / 2 + 14), Math.round(r.height / 2) + 7);
    L.DomUtil.addClass(node, "ort-beside");
    // The frame in the band right of the popup, below the top controls, above the bottom ones.
    opts = {paddingTopLeft: [Math.round(r.width + 36), Math.min(top, size.y / 3)],
            paddingBottomRight: [8, Math.min(bottom, size.y / 4)], maxZoom: 19, animate: false};
  } else {
    var below = Math.min(top + r.height + 24, size.y - opts.paddingBottomRight[1] - 100);
    opts.paddingTopLeft[1] = Math.max(opts.paddingTopLeft[1], below);
  }
  map.fitBounds(frame, opts);
  popup.update();
  ORT.lastFrame = {padding: [opts.paddingTopLeft, opts.paddingBottomRight], popup: [r.width, r.height]};
}

// ---- the bottom sheet (phones) -------------------------------------------------------------
// On a map narrower than 600 px a parcel's answer is not a popup over the parcel but a sheet
// fixed at the bottom (45 % of the height at most, scrolling), closed by its button, Escape or
// a click on the map; the bottom controls move up above it.
var SHEET_WIDTH = 600, sheet = null;
function useSheet(map) { return map.getSize().x < SHEET_WIDTH; }
ORT.useSheet = useSheet;
function closeSheet(refocus) {
  if (!sheet || sheet.hidden) return;
  sheet.hidden = true;
  var bottom = ORT.map.getContainer().querySelectorAll(".leaflet-bottom");
  for (var i = 0; i < bottom.length; i++) bottom[i].style.bottom = "";
  if (refocus) {
    var input = ORT.map.getContainer().querySelector(".ort-search input");
    if (input) input.focus();
  }
}
ORT.closeSheet = closeSheet;
function openSheet(map, content, label) {
  map.closePopup();
  if (!sheet) {
    sheet = el("section", "ort-sheet");
    sheet.setAttribute("role", "dialog");
    sheet.tabIndex = -1;
    var close = el("button", "ort-sheet-close", "\u00d7");
    close.type = "button";
    close.title = "Fermer";
    close.setAttribute("aria-label", "Fermer la fiche");
    close.addEventListener("click", function () { closeSheet(true); });
    sheet.appendChild(close);
    sheet.appendChild(el("div", "ort-sheet-body"));
    sheet.addEventListener("keydown", function (e) {
      if (e.key === "Escape" || e.key === "Esc") { e.preventDefault(); closeSheet(true); }
    });
    L.DomEvent.disableClickPropagation(sheet);
    L.DomEvent.disableScrollPropagation(sheet);
    map.getContainer().appendChild(sheet);
  }
  var body = sheet.querySelector(".ort-sheet-body");
  while (body.firstChild) body.removeChild(body.firstChild);
  body.appendChild(content);
  sheet.setAttribute("aria-label", label || "Fiche");
  sheet.hidden = false;
  sheet.scrollTop = 0;
  if (ORT.foldLegend) ORT.foldLegend();
  var h = sheet.getBoundingClientRect().height;
  var bottom = map.getContainer().querySelectorAll(".leaflet-bottom");
  for (var i = 0; i < bottom.length; i++) bottom[i].style.bottom = Math.round(h) + "px";
  sheet.focus({preventScroll: true});  // the keyboard scrolls it, Escape closes it
  return sheet;
}
ORT.openSheet = openSheet;
// The room above the sheet (and the bottom controls moved onto it), below the top controls.
function sheetPadding(map) {
  var size = map.getSize(), box = map.getContainer().getBoundingClientRect(), top = 8, bottom = 8;
  var nodes = map.getContainer().querySelectorAll(".leaflet-control, .ort-sheet");
  for (var i = 0; i < nodes.length; i++) {
    if (nodes[i].hidden) continue;
    var r = nodes[i].getBoundingClientRect();
    if (r.width < 1 || r.height < 1) continue;
    var y0 = r.top - box.top, y1 = r.bottom - box.top;
    // by the corner it stands in: the bottom controls now stand above the middle of the map
    if (nodes[i] === sheet || nodes[i].closest(".leaflet-bottom")) bottom = Math.max(bottom, size.y - y0 + 8);
    else top = Math.max(top, y1 + 8);
  }
  return {paddingTopLeft: [8, top], paddingBottomRight: [8, bottom]};
}
ORT.sheetPadding = sheetPadding;

ORT.search = function (map) {
  var Search = L.Control.extend({
    options: {position: "topleft"},
    onAdd: function () {
      var box = el("div", "ort-box ort-search leaflet-bar");
      var form = el("form");
      var input = el("input");
      input.type = "search";
      input.placeholder = ADDR ? "Adresse ou parcelle (AB 37)" : "Parcelle : IDU ou « AB 37 »";
      input.setAttribute("aria-label", "Rechercher une parcelle par son identifiant ou une adresse");
      var button = el("button", null, "Chercher"); button.type = "submit";
      var msg = el("div", "ort-msg");
      form.appendChild(input); form.appendChild(button); box.appendChild(form); box.appendChild(msg);
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      form.addEventListener("submit", function (e) {
        e.preventDefault();
        msg.textContent = ""; msg.className = "ort-msg";
        var text = input.value;
        var found = ORT.find(text);
        if (!found.length && ORT.looksLikeAddress(text)) {
          var a = ORT.findAddress(text);
          if (a.status !== "trouvée") { msg.textContent = a.message; return; }
          var addr = a.address, layer = addr[1] ? ORT.index[addr[1]] : null;
          var extra = [["Adresse", addr[0] + " (score " + addr[4].toFixed(2).replace(".", ",") + ")"]];
          msg.className = "ort-msg ort-ok";
          msg.textContent = "Adresse trouvée : " + addr[0];
          if (layer) { showParcel(map, layer, extra); return; }
          map.setView([addr[2], addr[3]], 19);
          L.popup(popupOptions(map)).setLatLng([addr[2], addr[3]])
            .setContent(popupContent("Adresse",
              extra.concat([["Parcelle", "aucune parcelle de la carte ne contient ce point"]])))
            .openOn(map);
          return;
        }
        if (!found.length) { msg.textContent = "Parcelle introuvable : " + text; return; }
        showParcel(map, found[0]);
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

// ---- the view: the sectors in the part of the map no control covers ----------------------
// A popup opens below the top controls and above the bottom ones, scrolling when it is taller
// than the room left (the legend folds away instead: see legendSetup).
function popupOptions(map) {
  var top = 10, bottom = 10, size = map.getSize();
  var nodes = map.getContainer().querySelectorAll(".leaflet-control:not(.ort-legend)");
  var box = map.getContainer().getBoundingClientRect();
  for (var i = 0; i < nodes.length; i++) {
    var r = nodes[i].getBoundingClientRect();
    if (r.width < 1 || r.height < 1) continue;
    var y0 = r.top - box.top, y1 = r.bottom - box.top;
    if ((y0 + y1) / 2 < size.y / 2) top = Math.max(top, y1 + 8);
    else bottom = Math.max(bottom, size.y - y0 + 8);
  }
  return {maxWidth: Math.min(400, size.x - 40), minWidth: Math.min(240, size.x - 60),
          // at most half the map: the outlined parcel stays in sight below it
          maxHeight: Math.max(140, Math.min(size.y - top - bottom - 30, size.y * 0.5)),
          autoPanPaddingTopLeft: [10, top], autoPanPaddingBottomRight: [10, bottom]};
}
ORT.popupOptions = popupOptions;

function controlRects(map) {
  var box = map.getContainer().getBoundingClientRect(), out = [];
  var nodes = map.getContainer().querySelectorAll(".leaflet-control");
  for (var i = 0; i < nodes.length; i++) {
    var r = nodes[i].getBoundingClientRect();
    if (r.width < 1 || r.height < 1) continue;
    out.push({x0: r.left - box.left, y0: r.top - box.top, x1: r.right - box.left, y1: r.bottom - box.top});
  }
  return {w: box.width, h: box.height, rects: out};
}
// Padding that keeps the bounds clear of every control: each control is avoided either by
// its side strip or by its top/bottom strip, whichever combination leaves the largest view.
function fitOptions(map, maxZoom, bounds) {
  var c = controlRects(map), best = null, n = c.rects.length;
  var target = bounds || null;
  var combos = Math.min(1 << n, 256);
  for (var mask = 0; mask < combos; mask++) {
    var pad = {t: 8, b: 8, l: 8, r: 8};
    for (var i = 0; i < n; i++) {
      var r = c.rects[i], cx = (r.x0 + r.x1) / 2, cy = (r.y0 + r.y1) / 2;
      if (mask & (1 << i)) {
        if (cx < c.w / 2) pad.l = Math.max(pad.l, r.x1 + 6); else pad.r = Math.max(pad.r, c.w - r.x0 + 6);
      } else {
        if (cy < c.h / 2) pad.t = Math.max(pad.t, r.y1 + 6); else pad.b = Math.max(pad.b, c.h - r.y0 + 6);
      }
    }
    var w = c.w - pad.l - pad.r, h = c.h - pad.t - pad.b;
    if (w < 40 || h < 40) continue;
    var zoom = target ? map.getBoundsZoom(target, false, L.point(pad.l + pad.r, pad.t + pad.b)) : 0;
    var score = zoom * 1e7 + w * h;
    if (!best || score > best.score) best = {score: score, pad: pad};
  }
  var p = best ? best.pad : {t: 8, b: 8, l: 8, r: 8};
  return {paddingTopLeft: [p.l, p.t], paddingBottomRight: [p.r, p.b], maxZoom: maxZoom || 19};
}
ORT.fitOptions = fitOptions;
ORT.fitSectors = function (animate) {
  var map = ORT.map;
  if (!ORT.bounds) return;
  var b = L.latLngBounds(ORT.bounds), opts = fitOptions(map, 18, b);
  opts.animate = !!animate;  // at load, settled at once: ORT.ready means the view is final
  map.fitBounds(b, opts);
};
// The part of the map no control covers, in container pixels (for tests and the fit).
ORT.visibleRect = function () {
  var opts = fitOptions(ORT.map, 18, ORT.bounds ? L.latLngBounds(ORT.bounds) : null), s = ORT.map.getSize();
  return {x0: opts.paddingTopLeft[0], y0: opts.paddingTopLeft[1],
          x1: s.x - opts.paddingBottomRight[0], y1: s.y - opts.paddingBottomRight[1]};
};

ORT.whole = function (map) {
  var box = el("div", "ort-box ort-whole leaflet-bar");
  var b = el("button", null, "Toute l'ORT");
  b.type = "button"; b.title = "Revenir à l'ensemble des secteurs";
  b.addEventListener("click", function () {
    map.closePopup(); closeSheet(false); ORT.highlight(null); ORT.fitSectors(true);
  });
  box.appendChild(b);
  return ORT.control(map, "topleft", box);
};

ORT.init = function (map, options) {
  ORT.map = map;
  ORT.bounds = options.bounds || null;
  map.createPane("ortperimetres").style.zIndex = 450;
  map.createPane("orthighlight").style.zIndex = 462;  // above the parcels, perimeters and changes
  map.createPane("ortpoints").style.zIndex = 460;
  map.createPane("ortavant").style.zIndex = 465;  // a diff map's perimeters before the avenant
  L.Icon.Default.mergeOptions(options.icons);
  L.Icon.Default.prototype._getIconUrl = L.Icon.prototype._getIconUrl;
  if (map.attributionControl) map.attributionControl.setPrefix("Leaflet");
  L.control.scale({imperial: false, maxWidth: 120}).addTo(map);
};

// The legend: collapsed on narrow screens, its sections follow the layers switched on or off,
// its perimeter lines open the sector, and it folds away when a popup would be under it.
function legendSetup(map) {
  var legend = document.querySelector(".ort-legend");
  if (!legend) return;
  var details = legend.querySelector("details");
  if (details && window.innerWidth >= 900) details.open = true;
  function sync() {
    var parts = legend.querySelectorAll("[data-ort-layer]");
    for (var i = 0; i < parts.length; i++) {
      var keys = parts[i].getAttribute("data-ort-layer").split(" "), on = false, known = false;
      keys.forEach(function (k) {
        var l = ORT.layers[k];
        if (l) { known = true; if (map.hasLayer(l)) on = true; }
      });
      parts[i].classList.toggle("ort-off", known && !on);
    }
  }
  map.on("overlayadd overlayremove", sync);  // the layer list; not the 20k layeradd of the parcels
  ORT.syncLegend = sync;
  sync();
  var items = legend.querySelectorAll("[data-ort-perimeter]");
  for (var i = 0; i < items.length; i++) {
    items[i].addEventListener("click", function () {
      var layer = ORT.perimeters[this.getAttribute("data-ort-perimeter")];
      if (!layer) return;
      if (!map.hasLayer(ORT.layers.perimetres)) map.addLayer(ORT.layers.perimetres);
      map.fitBounds(layer.getBounds(), fitOptions(map, 18, layer.getBounds()));
      layer.openPopup(layer.getBounds().getCenter());
    });
  }
  var folded = false;
  function overlaps(a, b) {
    return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  }
  map.on("popupopen", function (e) {
    if (!details || !details.open) return;
    var node = e.popup.getElement();
    var check = function () {
      if (!node || !details.open) return;
      if (window.innerWidth < 900 || overlaps(node.getBoundingClientRect(), legend.getBoundingClientRect())) {
        details.open = false; folded = true;
      }
    };
    check(); setTimeout(check, 300);
  });
  map.on("popupclose", function () {
    if (folded && details && window.innerWidth >= 900) details.open = true;
    folded = false;
  });
  // The search folds the legend before it frames a parcel (the popup needs the room).
  ORT.foldLegend = function () {
    if (details && details.open) { details.open = false; folded = true; }
  };
  menuBesideLegend(map, legend, details);
}

// The layer menu and the legend never overlap, at any size: the open menu's list scrolls in
// the room left above the legend; with less than 150 px there, the legend folds while the menu
// is open (and opens again after); opening the legend closes the menu.
function menuBesideLegend(map, legend, details) {
  var menu = map.getContainer().querySelector(".leaflet-control-layers");
  if (!menu || !details) return;
  var list = menu.querySelector(".leaflet-control-layers-list");
  var folded = false, GAP = 8;
  function opened() { return menu.classList.contains("leaflet-control-layers-expanded"); }
  function room() {
    var l = legend.getBoundingClientRect(), m = menu.getBoundingClientRect();
    var s = list.getBoundingClientRect(), box = map.getContainer().getBoundingClientRect();
    var below = (l.width > 0 && l.left < m.right && m.left < l.right) ? l.top : box.bottom;
    return below - GAP - s.top - (m.bottom - s.bottom);
  }
  function fit() {
    if (!opened()) {
      list.style.maxHeight = "";
      if (folded) { folded = false; details.open = true; }
      return;
    }
    list.style.height = "";  // Leaflet's own height ignores the legend
    list.style.maxHeight = "none";
    var need = list.scrollHeight;
    if (room() < Math.min(need, 150) && details.open) { details.open = false; folded = true; }
    list.style.maxHeight = Math.max(40, Math.min(need, room())) + "px";
    list.style.overflowY = "auto";
  }
  new MutationObserver(fit).observe(menu, {attributes: true, attributeFilter: ["class"]});
  details.addEventListener("toggle", function () {
    if (details.open && opened() && !folded) {
      menu.classList.remove("leaflet-control-layers-expanded");
    }
  });
  window.addEventListener("resize", fit);
  ORT.fitMenu = fit;
}

ORT.finish = function (map, order, options) {
  if (options && options.bounds) ORT.bounds = options.bounds;
  function front() {
    order.forEach(function (name) {
      var l = ORT.layers[name];
      if (l && map.hasLayer(l) && l.bringToFront) l.bringToFront();
    });
  }
  map.on("overlayadd", front);
  front();
  legendSetup(map);
  ORT.whole(map);
  map.on("click", function () { ORT.highlight(null); closeSheet(false); });
  ORT.fitSectors();
  requestAnimationFrame(function () {
    requestAnimationFrame(function () {
      ORT.fitSectors();
      ORT.renderedAt = performance.now();
      ORT.ready = true;
    });
  });
};
})();
