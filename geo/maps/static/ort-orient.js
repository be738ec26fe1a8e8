(function () {
"use strict";
var ORT = window.ORT;
function decode(g, cur, q) {
  if (typeof g[0] === "number") { cur[0] += g[0]; cur[1] += g[1]; return [cur[1] / q, cur[0] / q]; }
  return g.map(function (poly) { return poly.map(function (ring) {
    var out = new Array(ring.length / 2);
    for (var i = 0; i < ring.length; i += 2) {
      cur[0] += ring[i]; cur[1] += ring[i + 1]; out[i / 2] = [cur[1] / q, cur[0] / q];
    }
    return out; }); });
}
var fillCanvas = null;
// Non-interactive filled polygons on one canvas (buildings): {q, style, geoms: [geom]}.
ORT.fills = function (spec) {
  if (!fillCanvas) fillCanvas = L.canvas({padding: 0.3});
  var group = L.featureGroup(), cur = [0, 0], opts = {renderer: fillCanvas, interactive: false};
  for (var k in spec.style) opts[k] = spec.style[k];
  spec.geoms.forEach(function (g) { group.addLayer(L.polygon(decode(g, cur, spec.q), opts)); });
  return group;
};
// Labels drawn only in view and from their zoom on: {q, items: [[text, dx, dy, minZoom, angle, cls]]}
// (coordinates delta-coded like the geometries). Text goes in as a text node.
var MAX_LABELS = 900;
function labelLayer(collect) {
  var layer = L.layerGroup(), map = null;
  function draw() {
    layer.clearLayers();
    if (!map) return;
    var z = map.getZoom(), b = map.getBounds().pad(0.05), n = 0;
    collect(z, b, function (text, ll, angle, cls) {
      if (n >= MAX_LABELS) return;
      n += 1;
      var span = ORT.el("span", "ort-label-text", text);
      if (angle) span.style.transform = "translate(-50%,-50%) rotate(" + angle + "deg)";
      var icon = L.divIcon({className: "ort-label " + (cls || ""), html: span, iconSize: [0, 0]});
      layer.addLayer(L.marker(ll, {icon: icon, interactive: false, keyboard: false, pane: "ortlabels"}));
    });
  }
  layer.on("add", function (e) { map = e.target._map; map.on("zoomend moveend", draw); draw(); });
  layer.on("remove", function () { if (map) map.off("zoomend moveend", draw); map = null; });
  return layer;
}
ORT.labels = function (spec) {
  var cur = [0, 0], items = spec.items.map(function (it) {
    return [it[0], decode([it[1], it[2]], cur, spec.q), it[3], it[4], it[5]];
  });
  return labelLayer(function (z, b, add) {
    items.forEach(function (it) { if (z >= it[2] && b.contains(it[1])) add(it[0], it[1], it[3], it[4]); });
  });
};
function pct(permille) { return (permille / 10).toFixed(1).replace(".", ",") + "\u00a0%"; }
// Parcel numbers from the parcel layer itself (no extra bytes): the numéro, and the share of a
// straddling parcel ("12 · 15,0 %").
ORT.parcelNumbers = function (spec) {
  return labelLayer(function (z, b, add) {
    var parcels = ORT.layers[spec.layer];
    if (z < spec.minZoom || !parcels) return;
    parcels.eachLayer(function (p) {
      var pb = p.getBounds();
      if (!b.intersects(pb)) return;
      var idu = p.ortIdu, text = idu.length === 14 ? String(parseInt(idu.slice(10), 10)) : idu;
      if (p.ortData[2] === 1 && p.ortData[3] && p.ortData[3].length) {
        text += " \u00b7 " + pct(p.ortData[3][0][2]);
      }
      add(text, pb.getCenter(), 0, p.ortData[2] === 1 ? "ort-label-share" : "ort-label-num");
    });
  });
};
ORT.orientInit = function (map) {
  map.createPane("ortparts").style.zIndex = 420;
  var labels = map.createPane("ortlabels");
  labels.style.zIndex = 640; labels.style.pointerEvents = "none";
};
// A notice on the map when the background tiles fail (offline, server down).
ORT.tileNotice = function (map, tiles, label) {
  var shown = false;
  tiles.on("tileerror", function () {
    if (shown) return;
    shown = true;
    var box = ORT.el("div", "ort-box ort-tile-notice",
      "Fond « " + label + " » indisponible (pas de réseau ?) : la carte reste lisible sans lui.");
    box.setAttribute("role", "status");
    ORT.control(map, "bottomleft", box);
  });
};
})();
