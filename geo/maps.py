"""The interactive map of a convention: one self-contained, offline HTML file.

:func:`convention_map` returns a :class:`folium.Map` (it displays inline in Jupyter) with a
layer control, a legend, a parcel search by IDU and a scale bar, fitted to the convention;
:func:`save_offline` writes it as one HTML file that loads nothing from the network: Leaflet
and the map's small runtime are inlined (:mod:`geo._assets`), no CDN, no tiles unless asked.

Layers, bottom to top: parcels coloured by status against the ORT (canvas, for 10–20k
parcels), eligibility, commune boundaries, perimeters (ORT sectors — the centre-ville one
thicker and red —, OPAH-RU dashed), friches by status, social housing sites sized by their
dwellings, actions by axe. Geometries are simplified in the metric CRS, reprojected to
EPSG:4326 only at the end, rounded to 6 decimals (≈ 0.1 m) and delta-encoded; parcels far
from every perimeter can be lightened or dropped (``far_parcels``), and the legend says how
many.

Every text from data reaches the page either HTML-escaped (legend, title, layer names) or as
DOM text nodes built by the runtime (popups, tooltips, search messages): it cannot run a
script.

Optional layers take plain GeoDataFrames (any CRS, converted to the perimeters' metric CRS);
the columns read are, by layer (first name found wins, all optional unless stated):

- ``communes``: polygons; ``nom``, ``code_insee``.
- ``friches`` (:func:`geo.friches.read_friches`): points or polygons; ``site_id``,
  ``site_nom``, ``site_statut`` (CNIG values: friche potentielle, friche sans projet, friche
  avec projet, site avec projet, reconvertie), ``site_type``, ``surface_m2``, ``comm_nom``.
- ``housing`` (``geo.housing.locate_sites(...).sites``): points or polygons (drawn at a
  representative point), rows without geometry counted as not located; ``logements`` |
  ``nb_logements`` (number of dwellings, sets the size), ``programme`` | ``nom``,
  ``bailleur``, ``annee``, ``adresse``.
- ``actions`` (``geo.actions.actions_table`` joined to ``action_geometries`` on ``id``):
  points or polygons, or no geometry (counted as not located); ``titre`` | ``title``
  (**required**), ``id``, ``axe_libelle`` | ``axe``, ``statut``, ``maitre_ouvrage``, ``budget``.
- ``eligibility`` (``geo.eligibility.answers_to_frame`` of parcel answers, or a wide table):
  ``idu`` (**required**), then either the long form ``regle`` | ``effect`` + ``verdict`` |
  ``answer``, or one column per effect among :data:`ELIGIBILITY_EFFECTS`; answers are
  booleans or ``oui``/``yes``, ``partiellement``/``partly``, ``non``/``no``,
  ``inconnu``/``unknown``. Without a geometry column the parcels' geometries are used.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
from collections.abc import Iterable
from html.parser import HTMLParser
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, MacroElement
from folium.template import Template

from geo import _assets, projection
from geo.classify import INSIDE, OUTSIDE, STATUS_LABELS, STRADDLING
from geo.errors import InputError, OrtError

#: Mention required on every map drawn over the cadastre.
CADASTRE_MENTION = "Fond de plan : DGFiP cadastre (Etalab) — mesures données à titre indicatif"

#: Stroke colour of the centre-ville sector, of the other sectors in turn, of OPAH-RU and others.
CENTRE_VILLE_COLOUR = "#e41a1c"
SECTOR_COLOURS = ("#377eb8", "#984ea3", "#a65628", "#f781bf", "#17becf", "#4d4d4d")
OPAH_RU_COLOUR = "#ff7f00"
OTHER_PERIMETER_COLOUR = "#666666"
#: Fill colour of parcels by status against the ORT.
STATUS_COLOURS = {INSIDE: "#4daf4a", STRADDLING: "#ffd92f", OUTSIDE: "#e8e8e8"}
FAR_COLOUR = "#f2f2f2"
#: Friches by CNIG ``site_statut``.
FRICHE_COLOURS = {
    "friche potentielle": "#a6761d",
    "friche sans projet": "#e7298a",
    "friche avec projet": "#7570b3",
    "site avec projet": "#66a61e",
    "reconvertie": "#1b9e77",
}
FRICHE_OTHER_COLOUR = "#777777"
HOUSING_COLOUR = "#6a3d9a"
AXE_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#1f78b4")
#: Effects shown by the eligibility layers: column → label.
ELIGIBILITY_EFFECTS = {
    "opah_ru": "OPAH-RU",
    "vir": "VIR",
    "diif": "DIIF",
    "denormandie": "Denormandie",
    "dispense_aec": "Dispense d'AEC",
}
ELIGIBILITY_COLOURS = {
    "opah_ru": "#ff7f00",
    "vir": "#1f78b4",
    "diif": "#6a3d9a",
    "denormandie": "#b15928",
    "dispense_aec": "#e31a1c",
}
_ANSWERS = {
    "y": "oui",
    "p": "partiellement",
    "n": "non",
    "u": "inconnu",
}
_ANSWER_CODES = {
    True: "y",
    False: "n",
    "yes": "y",
    "oui": "y",
    "true": "y",
    "1": "y",
    "partly": "p",
    "partial": "p",
    "partiel": "p",
    "partiellement": "p",
    "no": "n",
    "non": "n",
    "false": "n",
    "0": "n",
    "unknown": "u",
    "inconnu": "u",
}
_STATUS_CODE = {OUTSIDE: 0, STRADDLING: 1, INSIDE: 2}
_FAR = 3  # outside and far from every perimeter: drawn lighter
_Q = 10**6  # coordinates rounded to 6 decimals of a degree (≈ 0.1 m)
PERIMETER_TYPE_LABELS = {"secteur": "Secteur d'intervention ORT", "opah_ru": "Périmètre OPAH-RU"}


# --------------------------------------------------------------------------------------------
# Folium elements


class OfflineMap(folium.Map):
    """A :class:`folium.Map` whose page inlines Leaflet and links to no CDN (also in Jupyter)."""

    default_js: list[tuple[str, str]] = []
    default_css: list[tuple[str, str]] = []

    def render(self, **kwargs):
        self.get_root().header.add_child(Element(_assets.inline_head()), name="ort_inline_assets", index=0)
        super().render(**kwargs)


class DataLayer(folium.map.Layer):
    """One layer of the map, drawn by the inlined runtime from a compact JSON ``spec``.

    ``kind`` is ``"parcels"`` (canvas, searchable) or ``"vector"`` (SVG); ``spec`` is the
    Python dict embedded as JSON (escaped for a ``<script>`` element).
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = ORT.{{ this.kind }}({{ this.spec_json() }}{{ this.extra }});
            ORT.layers[{{ this.key_json() }}] = {{ this.get_name() }};
        {% endmacro %}
        """
    )

    def __init__(self, key: str, name: str, kind: str, spec: dict, *, show: bool = True, search=False):
        super().__init__(name=html.escape(name), overlay=True, control=True, show=show)
        self._name = "DataLayer"
        self.key = key
        self.title = name
        self.kind = kind
        self.spec = spec
        self.extra = ", true" if search else ""

    def spec_json(self) -> str:
        return _assets.to_js_json(self.spec)

    def key_json(self) -> str:
        return _assets.to_js_json(self.key)


class _Script(MacroElement):
    """A piece of script that refers to its map (``{map}`` is replaced by the map's variable)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            {{ this.code() }}
        {% endmacro %}
        """
    )

    def __init__(self, code: str):
        super().__init__()
        self._name = "OrtScript"
        self._code = code

    def code(self) -> str:
        return self._code.replace("{map}", self._parent.get_name())


class HtmlControl(MacroElement):
    """A Leaflet control holding HTML built in Python from escaped text (title, legend)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            (function () {
                var box = document.createElement("div");
                box.className = {{ this.css_json() }};
                box.innerHTML = {{ this.html_json() }};
                ORT.control({{ this._parent.get_name() }}, {{ this.position_json() }}, box);
            })();
        {% endmacro %}
        """
    )

    def __init__(self, html_text: str, *, position: str, css_class: str):
        super().__init__()
        self._name = "HtmlControl"
        self.html = html_text
        self.position = position
        self.css_class = css_class

    def html_json(self) -> str:
        return _assets.to_js_json(self.html)

    def css_json(self) -> str:
        return _assets.to_js_json(self.css_class)

    def position_json(self) -> str:
        return _assets.to_js_json(self.position)


# --------------------------------------------------------------------------------------------
# Geometry encoding


def _encode(geoms: np.ndarray) -> list:
    """Encode EPSG:4326 points and (multi)polygons as delta-coded integer rings.

    Returns one entry per geometry: ``[dx, dy]`` for a point, else a list of polygons, each a
    list of rings, each a flat ``[dx, dy, dx, dy, ...]`` list without the closing vertex.
    Deltas run over the whole layer, in order (the runtime decodes them with one cursor).
    """
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return []
    parts, part_geom = shapely.get_parts(geoms, return_index=True)
    ptype = shapely.get_type_id(parts)
    bad = ~np.isin(ptype, (0, 3))
    if bad.any():
        raise InputError(
            f"cannot draw geometry type {parts[bad][0].geom_type} on the map",
            fix="give points or polygons (buffer lines first)",
        )
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    point_parts = np.nonzero(ptype == 0)[0]
    pieces = np.concatenate([rings, parts[point_parts]])
    piece_part = np.concatenate([ring_part, point_parts])
    order = np.argsort(piece_part, kind="stable")
    pieces, piece_part = pieces[order], piece_part[order]
    coords, coord_piece = shapely.get_coordinates(pieces, return_index=True)
    is_ring = np.concatenate([np.ones(len(rings), bool), np.zeros(len(point_parts), bool)])[order]
    # Leaflet closes rings itself: drop each ring's closing vertex.
    last = np.r_[coord_piece[1:] != coord_piece[:-1], True]
    keep = ~(last & is_ring[coord_piece])
    coords, coord_piece = coords[keep], coord_piece[keep]
    ints = np.round(coords * _Q).astype(np.int64)
    deltas = np.diff(ints, axis=0, prepend=np.zeros((1, 2), np.int64)).ravel()
    starts = np.searchsorted(coord_piece, np.arange(len(pieces) + 1))
    out: list = [[] for _ in range(len(geoms))]
    current: dict[int, list] = {}
    for k in range(len(pieces)):
        flat = deltas[2 * starts[k] : 2 * starts[k + 1]].tolist()
        part = int(piece_part[k])
        g = int(part_geom[part])
        if not is_ring[k]:
            out[g] = flat
            continue
        poly = current.get(part)
        if poly is None:
            poly = current[part] = []
            out[g].append(poly)
        poly.append(flat)
    return out


def _prepare(gdf: gpd.GeoDataFrame, *, tolerance_m: float) -> np.ndarray:
    """Simplify in the layer's metric CRS, then reproject to EPSG:4326 (the last step)."""
    geoms = gdf.geometry.to_numpy()
    if tolerance_m > 0:
        geoms = shapely.simplify(geoms, tolerance_m, preserve_topology=True)
    return gpd.GeoSeries(geoms, crs=gdf.crs).to_crs(projection.WGS84).to_numpy()


def _usable(gdf: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, int]:
    """Rows with a non-empty geometry, and how many were left out."""
    ok = ~(gdf.geometry.isna() | gdf.geometry.is_empty)
    return gdf[ok], int((~ok).sum())


def _to_crs_of(layer: gpd.GeoDataFrame, crs, *, name: str) -> gpd.GeoDataFrame:
    if not isinstance(layer, gpd.GeoDataFrame):
        raise InputError(f"{name} must be a GeoDataFrame", fix="read it with geopandas.read_file")
    return projection.to_metric(layer, crs, source=name)


def _col(df: pd.DataFrame, *names: str) -> str | None:
    for name in names:
        if name in df.columns:
            return name
    return None


def _text(value) -> str:
    if value is None or (not isinstance(value, (list, tuple, dict)) and pd.isna(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return f"{int(value)}"
    return str(value)


def _fmt_int(value: float) -> str:
    return f"{value:,.0f}".replace(",", "\u202f")


# --------------------------------------------------------------------------------------------
# The map


def perimeter_style(row, index_among_sectors: int) -> dict:
    """Leaflet path options of a perimeter row (also the annex's colours)."""
    ptype = row.get("type")
    if ptype == "opah_ru":
        return {"color": OPAH_RU_COLOUR, "weight": 3, "dashArray": "8 5", "fillColor": OPAH_RU_COLOUR}
    if ptype == "secteur" and bool(row.get("centre_ville")):
        return {"color": CENTRE_VILLE_COLOUR, "weight": 4, "fillColor": CENTRE_VILLE_COLOUR}
    if ptype == "secteur":
        c = SECTOR_COLOURS[index_among_sectors % len(SECTOR_COLOURS)]
        return {"color": c, "weight": 3, "fillColor": c}
    return {
        "color": OTHER_PERIMETER_COLOUR,
        "weight": 2,
        "dashArray": "2 4",
        "fillColor": OTHER_PERIMETER_COLOUR,
    }


def perimeter_colours(perimeters: pd.DataFrame) -> dict[str, dict]:
    """Style of each perimeter id (the ``ort`` union row excluded)."""
    out, n = {}, 0
    for _, row in perimeters.iterrows():
        if row.get("type") == "ort":
            continue
        out[row["perimeter_id"]] = perimeter_style(row, n)
        if row.get("type") == "secteur" and not bool(row.get("centre_ville")):
            n += 1
    return out


def convention_map(
    perimeters: gpd.GeoDataFrame,
    *,
    parcels: gpd.GeoDataFrame | None = None,
    classification: pd.DataFrame | None = None,
    communes: gpd.GeoDataFrame | None = None,
    friches: gpd.GeoDataFrame | None = None,
    housing: gpd.GeoDataFrame | None = None,
    actions: gpd.GeoDataFrame | None = None,
    eligibility: pd.DataFrame | None = None,
    title: str = "",
    fictif: bool = False,
    tiles: str | None = None,
    tiles_attribution: str | None = None,
    simplify_m: float = 0.3,
    far_parcels: str = "light",
    far_m: float = 200.0,
    production_date: dt.date | None = None,
) -> folium.Map:
    """Build the interactive map of a convention.

    Parameters
    ----------
    perimeters : GeoDataFrame
        Perimeters in force (:meth:`geo.perimeters.Convention.perimeters`), columns
        ``perimeter_id``, ``type``, ``nom``, optional ``centre_ville``; geometry in a metric CRS
        (metres). The ``ort`` union row is not drawn (its sectors are). Its ``attrs`` (version,
        version date) appear in the legend.
    parcels : GeoDataFrame, optional
        Cadastral parcels with ``idu`` and optional ``contenance`` (m²), any CRS (converted to
        the perimeters' one). Their ``attrs["millesime"]`` appears in the legend.
    classification : DataFrame, optional
        :func:`geo.classify.classify_parcels` result for these parcels; computed here when
        parcels are given without it. Parcels are coloured by their status against the ORT
        (row ``ort``, else the best status over the sectors); popups give each perimeter's
        status and share.
    communes, friches, housing, actions, eligibility : optional
        Extra layers, any CRS; columns in the module docstring.
    title : str
        Shown at the top and as the page title (escaped).
    fictif : bool
        Says "COMMUNE FICTIVE" under the title.
    tiles : str, optional
        URL template of a background tile layer (loads tiles from the network when opened);
        without it the cadastre is the background and the page loads nothing.
    tiles_attribution : str, optional
        Attribution of the tiles (default: the host of ``tiles``).
    simplify_m : float
        Simplification tolerance in metres, applied in the metric CRS.
    far_parcels : {"light", "drop", "keep"}
        Parcels farther than ``far_m`` metres from every perimeter: simplified harder and drawn
        faintly (``light``), left out and counted in the legend (``drop``), or kept as the others.
    far_m : float
        Distance in metres beyond which a parcel is "far".
    production_date : date, optional
        Date printed in the legend (default: today).

    Returns
    -------
    folium.Map
        An :class:`OfflineMap`; ``m.ort_info`` holds counts (parcels drawn, far, dropped…) and
        ``m.ort_bounds`` the fitted bounds ``[[south, west], [north, east]]`` in EPSG:4326.
    """
    if far_parcels not in ("light", "drop", "keep"):
        raise InputError(f"far_parcels={far_parcels!r}", fix="use 'light', 'drop' or 'keep'")
    if simplify_m < 0 or far_m < 0:
        raise InputError("simplify_m and far_m are distances in metres and must be ≥ 0")
    crs = projection.require_metric(perimeters, source="perimeters")
    perims, _ = _usable(perimeters)
    drawn = perims[perims["type"] != "ort"] if "type" in perims.columns else perims
    if "perimeter_id" not in drawn.columns:
        raise InputError("column 'perimeter_id' is missing", source="perimeters")
    info: dict = {}

    m = OfflineMap(location=None, tiles=None, zoom_start=15, control_scale=False)
    m.options["max_zoom"] = 21
    m.get_root().title = html.escape(title or "Carte de la convention")
    m.add_child(
        _Script("ORT.init({map}, " + _assets.to_js_json({"icons": _assets.icon_uris()}) + ");"),
        name="ort_init",
    )
    if tiles:
        from urllib.parse import urlparse

        attribution = tiles_attribution or urlparse(tiles).netloc or "tuiles"
        folium.TileLayer(
            tiles=tiles, attr=html.escape(attribution), name="Fond de carte", max_zoom=21, overlay=False
        ).add_to(m)

    legend: list[str] = []
    order: list[str] = []
    parcel_layer = None
    if parcels is not None:
        parcel_layer = _to_crs_of(parcels, crs, name="parcels")
        if "idu" not in parcel_layer.columns:
            raise InputError("column 'idu' is missing", source="parcels", fix="read it with geo.cadastre")
    # Fit the view before any layer is added: the 20k parcels are then projected once, not twice.
    bounds = _bounds(drawn if len(drawn) else parcel_layer, crs)
    if bounds is not None:
        m.location = [(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2]
        m.fit_bounds(bounds, padding=(20, 20))
    m.ort_bounds = bounds
    if parcel_layer is not None:
        if classification is None and len(drawn):
            from geo.classify import classify_parcels

            classification = classify_parcels(parcel_layer, perims, only_intersecting=True)
        layer, counts = _parcel_layer(
            parcel_layer, classification, perims, simplify_m=simplify_m, far_parcels=far_parcels, far_m=far_m
        )
        info.update(counts)
        m.add_child(layer)
        legend.append(_legend_parcels(counts, far_parcels, far_m))
        order.append("parcelles")

    if eligibility is not None:
        layers, counts = _eligibility_layers(eligibility, parcel_layer, crs, simplify_m=simplify_m)
        for layer in layers:
            m.add_child(layer)
            order.append(layer.key)
        info["eligibility"] = counts
        legend.append(_legend_eligibility(counts))

    if communes is not None:
        layer = _communes_layer(_to_crs_of(communes, crs, name="communes"), simplify_m)
        m.add_child(layer)
        order.append("communes")
        legend.append("<h4>Limites</h4>" + _item("line", "#333333", "Limite communale", dash=True))

    styles = perimeter_colours(drawn)
    if len(drawn):
        m.add_child(
            _perimeter_layer(
                drawn, styles, outline=parcels is not None, simplify_m=simplify_m / 3, attrs=perims.attrs
            )
        )
        order.append("perimetres")
    legend.insert(0, _legend_perimeters(drawn, styles))

    for key, gdf, builder in (
        ("friches", friches, _friches_layer),
        ("logements", housing, _housing_layer),
        ("actions", actions, _actions_layer),
    ):
        if gdf is None:
            continue
        layer, part, counts = builder(gdf, crs, simplify_m)
        info[key] = counts
        legend.append(part)
        if layer is not None:
            m.add_child(layer)
            order.append(key)

    m.add_child(HtmlControl(_title_html(title, fictif), position="topright", css_class="ort-box ort-title"))
    folium.LayerControl(position="topright", collapsed=True).add_to(m)
    m.add_child(_Script("ORT.search({map});"), name="ort_search")
    legend.append(_legend_sources(perims, parcel_layer, production_date or dt.date.today(), info))
    legend_html = "<details open><summary><b>Légende</b></summary>" + "".join(legend) + "</details>"
    m.add_child(
        HtmlControl(legend_html, position="bottomright", css_class="ort-box ort-legend"),
        name="ort_legend",
    )
    m.add_child(_Script("ORT.finish({map}, " + _assets.to_js_json(order) + ");"), name="ort_finish")
    m.ort_info = info
    return m


def _bounds(gdf: gpd.GeoDataFrame | None, crs) -> list[list[float]] | None:
    if gdf is None or gdf.empty:
        return None
    minx, miny, maxx, maxy = gpd.GeoSeries(gdf.geometry, crs=crs).to_crs(projection.WGS84).total_bounds
    return [[round(float(miny), 6), round(float(minx), 6)], [round(float(maxy), 6), round(float(maxx), 6)]]


def _status_per_parcel(
    idus: pd.Series, classification: pd.DataFrame | None, perims: pd.DataFrame
) -> tuple[np.ndarray, dict[str, list], list[str]]:
    """Colour status code per parcel, its non-outside rows, and the perimeter names in popup order.

    A parcel absent from ``classification`` (e.g. a result made with ``only_intersecting``)
    is outside every perimeter.
    """
    if classification is None:
        return np.zeros(len(idus), dtype=int), {}, []
    names_by_id = dict(zip(perims["perimeter_id"], perims.get("nom", perims["perimeter_id"]), strict=True))
    c = classification[classification["idu"].isin(set(idus))]
    present = set(c["perimeter_id"])
    known_ids = [i for i in names_by_id if i in present] or list(dict.fromkeys(c["perimeter_id"]))
    known_ids.sort(key=lambda pid: pid != "ort")  # the ORT as a whole first
    pos = {pid: k for k, pid in enumerate(known_ids)}
    names = [str(names_by_id.get(pid, pid)) for pid in known_ids]
    code = c["status"].map(_STATUS_CODE).fillna(0).astype(int)
    if (c["perimeter_id"] == "ort").any():
        sel = c["perimeter_id"] == "ort"
    elif "perimeter_type" in c.columns and (c["perimeter_type"] == "secteur").any():
        sel = c["perimeter_type"] == "secteur"
    else:
        sel = pd.Series(True, index=c.index)
    colour = code[sel].groupby(c.loc[sel, "idu"]).max()
    status = colour.reindex(idus.to_numpy()).fillna(0).astype(int).to_numpy()
    hits = c[c["status"] != OUTSIDE]
    rows: dict[str, list] = {}
    for idu, pid, st, share in zip(
        hits["idu"], hits["perimeter_id"], hits["status"], hits["share"], strict=True
    ):
        if pid in pos:
            rows.setdefault(idu, []).append([pos[pid], _STATUS_CODE[st], int(round(float(share) * 1000))])
    for entries in rows.values():
        entries.sort()
    return status, rows, names


def _parcel_layer(parcels, classification, perims, *, simplify_m, far_parcels, far_m):
    usable, no_geom = _usable(parcels)
    drawn_perims = perims[perims["type"] != "ort"] if "type" in perims.columns else perims
    near = np.ones(len(usable), dtype=bool)
    if far_parcels != "keep" and len(drawn_perims):
        zone = shapely.union_all(drawn_perims.geometry.to_numpy()).buffer(far_m)
        hit = usable.sindex.query(zone, predicate="intersects")
        near[:] = False
        near[hit] = True
    if far_parcels == "drop":
        kept = usable[near]
        is_far = np.zeros(len(kept), dtype=bool)
    else:
        kept = usable
        is_far = ~near
    idus = kept["idu"].astype(str)
    status, rows, names = _status_per_parcel(idus, classification, perims)
    if far_parcels == "light":
        status = np.where(is_far & (status == 0), _FAR, status)
    tol = np.where(is_far, max(simplify_m * 5, 1.5), simplify_m)
    geoms = kept.geometry.to_numpy()
    simplified = shapely.simplify(geoms, tol, preserve_topology=True) if simplify_m > 0 else geoms
    wgs = gpd.GeoSeries(simplified, crs=kept.crs).to_crs(projection.WGS84).to_numpy()
    encoded = _encode(wgs)
    cont = kept["contenance"] if "contenance" in kept.columns else pd.Series([None] * len(kept))
    groups: dict[str, list] = {}
    for idu, c, st, geom in zip(idus, cont, status, encoded, strict=True):
        prefix, suffix = (idu[:8], idu[8:]) if len(idu) == 14 else ("", idu)
        c = None if c is None or pd.isna(c) else int(round(float(c)))
        groups.setdefault(prefix, []).append([suffix, c, int(st), rows.get(idu, 0), 0, geom])
    labels = [
        STATUS_LABELS[OUTSIDE],
        STATUS_LABELS[STRADDLING],
        STATUS_LABELS[INSIDE],
        STATUS_LABELS[OUTSIDE],
    ]
    spec = {
        "q": _Q,
        "groups": [[k, v] for k, v in groups.items()],
        "classified": classification is not None,
        "perimeters": names,
        "statusLabels": labels,
        "styles": {
            str(code): {
                "color": "#555555" if code != _FAR else "#b5b5b5",
                "weight": 0.6 if code != _FAR else 0.4,
                "fillColor": colour,
                "fillOpacity": 0.55 if code in (1, 2) else 0.35,
            }
            for code, colour in (
                (0, STATUS_COLOURS[OUTSIDE]),
                (1, STATUS_COLOURS[STRADDLING]),
                (2, STATUS_COLOURS[INSIDE]),
                (_FAR, FAR_COLOUR),
            )
        },
    }
    counts = {
        "parcels": int(len(parcels)),
        "parcels_drawn": int(len(kept)),
        "parcels_without_geometry": no_geom,
        "parcels_far": int((~near).sum()),
        "parcels_dropped": int(len(usable) - len(kept)),
        "inside": int((status == 2).sum()),
        "straddling": int((status == 1).sum()),
        "outside": int(((status == 0) | (status == _FAR)).sum()),
    }
    return DataLayer("parcelles", "Parcelles (statut / ORT)", "parcels", spec, search=True), counts


def _perimeter_layer(drawn, styles, *, outline, simplify_m, attrs):
    wgs = _prepare(drawn, tolerance_m=simplify_m)
    encoded = _encode(wgs)
    features, style_list = [], []
    areas = drawn.geometry.area.to_numpy()
    for k, (row, geom) in enumerate(zip(drawn.to_dict("records"), encoded, strict=True)):
        style = dict(styles[row["perimeter_id"]])
        style.update(fill=not outline, fillOpacity=0.08, opacity=1)
        style_list.append(style)
        rows = [
            ["Type", PERIMETER_TYPE_LABELS.get(row.get("type"), _text(row.get("type")))],
            ["Identifiant", _text(row["perimeter_id"])],
        ]
        if row.get("type") == "secteur":
            rows.append(["Centre-ville", "oui" if bool(row.get("centre_ville")) else "non"])
        if _text(row.get("commune")):
            rows.append(["Commune", _text(row.get("commune"))])
        for key, label in (("date_debut", "Début"), ("date_fin", "Fin")):
            if _text(row.get(key)):
                rows.append([label, _text(row.get(key))])
        version = _text(row.get("version")) or _text(attrs.get("version"))
        if version:
            day = _text(row.get("version_date")) or _text(attrs.get("version_date"))
            rows.append(["Version", f"{version} ({day})" if day else version])
        rows.append(["Surface", f"{areas[k] / 10_000:,.2f} ha".replace(",", "\u202f").replace(".", ",")])
        name = _text(row.get("nom")) or _text(row["perimeter_id"])
        features.append([k, name, rows, name, geom, 0])
    spec = {
        "q": _Q,
        "kind": "outline" if outline else "polygon",
        "pane": "ortperimetres",
        "styles": style_list,
        "features": features,
    }
    return DataLayer("perimetres", "Périmètres (secteurs ORT, OPAH-RU)", "vector", spec)


def _communes_layer(communes, simplify_m):
    usable, _ = _usable(communes)
    encoded = _encode(_prepare(usable, tolerance_m=simplify_m))
    name_col = _col(usable, "nom", "name", "libelle")
    code_col = _col(usable, "code_insee", "code", "insee", "commune")
    features = []
    for k, geom in enumerate(encoded):
        row = usable.iloc[k]
        name = " ".join(
            x
            for x in (_text(row[name_col]) if name_col else "", _text(row[code_col]) if code_col else "")
            if x
        )
        features.append([0, name, [], name, geom, 0])
    spec = {
        "q": _Q,
        "kind": "outline",
        "pane": "ortperimetres",
        "styles": [{"color": "#333333", "weight": 2, "dashArray": "10 4 2 4", "opacity": 0.9}],
        "features": features,
    }
    return DataLayer("communes", "Limites communales", "vector", spec)


def _point_layer_spec(gdf, *, styles, rows_of, tooltip_of, style_of, radius_of, simplify_m):
    usable, missing = _usable(gdf)
    encoded = _encode(_prepare(usable, tolerance_m=simplify_m)) if len(usable) else []
    features = []
    for geom, (_, row) in zip(encoded, usable.iterrows(), strict=True):
        title, rows = rows_of(row)
        features.append([style_of(row), title, rows, tooltip_of(row), geom, radius_of(row)])
    return {"q": _Q, "kind": "polygon", "pane": "ortpoints", "styles": styles, "features": features}, missing


def _field_rows(row, fields) -> list[list[str]]:
    out = []
    for col, label in fields:
        if col in row.index and _text(row[col]):
            out.append([label, _text(row[col])])
    return out


def _friches_layer(friches, crs, simplify_m):
    gdf = _to_crs_of(friches, crs, name="friches")
    status_col = _col(gdf, "site_statut", "statut", "status")
    name_col = _col(gdf, "site_nom", "nom", "name")
    statuses = [_text(s) for s in gdf[status_col]] if status_col else [""] * len(gdf)
    known = list(dict.fromkeys(s for s in statuses))
    palette = {s: FRICHE_COLOURS.get(s.lower(), FRICHE_OTHER_COLOUR) for s in known}
    styles = [
        {"color": "#333333", "weight": 1.5, "fillColor": palette[s], "fillOpacity": 0.7, "radius": 7}
        for s in known
    ]
    fields = [
        ("site_id", "Identifiant"),
        ("site_type", "Type"),
        ("site_statut", "Statut"),
        ("surface_m2", "Surface (m²)"),
        ("site_surface", "Surface (m²)"),
        ("comm_nom", "Commune"),
        ("proprio_personne", "Propriétaire"),
    ]
    spec, missing = _point_layer_spec(
        gdf,
        styles=styles,
        rows_of=lambda r: (_text(r[name_col]) if name_col else "Friche", _field_rows(r, fields)),
        tooltip_of=lambda r: _text(r[name_col]) if name_col else "",
        style_of=lambda r: known.index(_text(r[status_col]) if status_col else ""),
        radius_of=lambda r: 0,
        simplify_m=simplify_m,
    )
    part = "<h4>Friches (statut)</h4>" + "".join(
        _item("dot", palette[s], f"{s or 'statut inconnu'} ({statuses.count(s)})") for s in known
    )
    if missing:
        part += _note(f"{missing} friche(s) sans géométrie non affichée(s)")
    return (
        DataLayer("friches", "Friches", "vector", spec),
        part,
        {"drawn": len(spec["features"]), "missing": missing},
    )


def _housing_layer(housing, crs, simplify_m):
    gdf = _to_crs_of(housing, crs, name="housing").copy()
    poly = gdf.geometry.notna() & ~gdf.geometry.is_empty & (gdf.geometry.geom_type != "Point")
    gdf.loc[poly, gdf.geometry.name] = gdf.geometry[poly].representative_point()
    n_col = _col(gdf, "logements", "nb_logements", "dwellings", "nombre_logements")
    name_col = _col(gdf, "programme", "nom", "name", "batiment")

    def radius(row) -> float:
        n = pd.to_numeric(row[n_col], errors="coerce") if n_col else np.nan
        return 5.0 if pd.isna(n) or n <= 0 else round(float(min(4 + 1.6 * np.sqrt(n), 30)), 1)

    fields = [
        ("bailleur", "Bailleur"),
        (n_col or "logements", "Logements"),
        ("annee", "Année"),
        ("adresse", "Adresse"),
    ]
    spec, missing = _point_layer_spec(
        gdf,
        styles=[{"color": "#ffffff", "weight": 1.5, "fillColor": HOUSING_COLOUR, "fillOpacity": 0.75}],
        rows_of=lambda r: (_text(r[name_col]) if name_col else "Logements sociaux", _field_rows(r, fields)),
        tooltip_of=lambda r: _text(r[name_col]) if name_col else "",
        style_of=lambda r: 0,
        radius_of=radius,
        simplify_m=simplify_m,
    )
    total = pd.to_numeric(gdf[n_col], errors="coerce").sum() if n_col else 0
    part = "<h4>Logements sociaux</h4>" + _item(
        "dot",
        HOUSING_COLOUR,
        f"site (taille selon le nombre de logements) — {len(spec['features'])} site(s)"
        + (f", {_fmt_int(total)} logements" if n_col else ""),
    )
    if missing:
        part += _note(f"{missing} site(s) non localisé(s), non affiché(s)")
    return (
        DataLayer("logements", "Logements sociaux", "vector", spec),
        part,
        {
            "drawn": len(spec["features"]),
            "missing": missing,
        },
    )


def _actions_layer(actions, crs, simplify_m):
    title_col = _col(actions, "titre", "title", "intitule")
    if title_col is None:
        raise InputError(
            "column 'titre' is missing", source="actions", fix="name the action title column 'titre'"
        )
    if isinstance(actions, gpd.GeoDataFrame) and actions.geometry.notna().any():
        gdf = _to_crs_of(actions, crs, name="actions")
    else:
        gdf = gpd.GeoDataFrame(pd.DataFrame(actions), geometry=[None] * len(actions), crs=crs)
    axe_col = _col(gdf, "axe_libelle", "axe", "axe_nom")
    axes = list(dict.fromkeys(_text(a) for a in gdf[axe_col])) if axe_col else [""]
    palette = {a: AXE_COLOURS[i % len(AXE_COLOURS)] for i, a in enumerate(axes)}
    styles = [
        {"color": "#222222", "weight": 1.5, "fillColor": palette[a], "fillOpacity": 0.85, "radius": 8}
        for a in axes
    ]
    fields = [
        ("id", "Identifiant"),
        (axe_col or "axe", "Axe"),
        ("statut", "Statut"),
        ("maitre_ouvrage", "Maître d'ouvrage"),
        ("budget", "Budget (€)"),
    ]
    spec, missing = _point_layer_spec(
        gdf,
        styles=styles,
        rows_of=lambda r: (_text(r[title_col]), _field_rows(r, fields)),
        tooltip_of=lambda r: _text(r[title_col]),
        style_of=lambda r: axes.index(_text(r[axe_col]) if axe_col else ""),
        radius_of=lambda r: 0,
        simplify_m=simplify_m,
    )
    counts = gdf[axe_col].map(_text).value_counts() if axe_col else pd.Series({"": len(gdf)})
    part = "<h4>Actions (par axe)</h4>" + "".join(
        _item("dot", palette[a], f"{a or 'axe non renseigné'} ({int(counts.get(a, 0))})") for a in axes
    )
    if missing:
        part += _note(f"{missing} action(s) sans localisation (non affichées)")
    return (
        DataLayer("actions", "Actions de la convention", "vector", spec),
        part,
        {
            "drawn": len(spec["features"]),
            "missing": missing,
        },
    )


def _answer_code(value) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return _ANSWER_CODES[bool(value)]
    code = _ANSWER_CODES.get(str(value).strip().lower())
    if code is None:
        raise InputError(
            f"eligibility answer {value!r} is not understood",
            source="eligibility",
            fix="use yes/oui, partly/partiel, no/non, unknown/inconnu or booleans",
        )
    return code


def _eligibility_table(eligibility: pd.DataFrame) -> pd.DataFrame:
    if "idu" not in eligibility.columns:
        raise InputError(
            "column 'idu' is missing", source="eligibility", fix="one row per parcel with its idu"
        )
    ans_col = _col(eligibility, "verdict", "answer", "result", "value")
    effect_col = _col(eligibility, "regle", "effect", "rule")
    if effect_col and ans_col:
        wide = eligibility.pivot_table(index="idu", columns=effect_col, values=ans_col, aggfunc="first")
        wide.columns = [str(c).lower() for c in wide.columns]
        return wide.reset_index()
    return eligibility


def _eligibility_layers(eligibility, parcels, crs, *, simplify_m):
    table = _eligibility_table(eligibility)
    effects = [e for e in ELIGIBILITY_EFFECTS if e in table.columns]
    if not effects:
        raise InputError(
            "no eligibility column",
            source="eligibility",
            fix=f"add one of {', '.join(ELIGIBILITY_EFFECTS)} (or the columns effect and answer)",
        )
    if isinstance(table, gpd.GeoDataFrame) and table.geometry.notna().any():
        geo_rows = _to_crs_of(table, crs, name="eligibility")
    elif parcels is not None:
        keep = [c for c in ("idu", "contenance") if c in parcels.columns] + [parcels.geometry.name]
        geo_rows = parcels[keep].merge(
            pd.DataFrame(table).drop(columns=[c for c in ("geometry",) if c in table.columns]), on="idu"
        )
        geo_rows = gpd.GeoDataFrame(geo_rows, geometry=parcels.geometry.name, crs=parcels.crs)
    else:
        raise InputError(
            "eligibility has no geometry and no parcels were given", fix="pass parcels= or a GeoDataFrame"
        )
    geo_rows, _ = _usable(geo_rows)
    codes = pd.DataFrame({e: [_answer_code(v) for v in geo_rows[e]] for e in effects}, index=geo_rows.index)
    layers, counts = [], {}
    for effect in effects:
        sel = codes[effect].isin(["y", "p"])
        sub = geo_rows[sel]
        counts[effect] = {
            "yes": int((codes[effect] == "y").sum()),
            "partly": int((codes[effect] == "p").sum()),
        }
        colour = ELIGIBILITY_COLOURS.get(effect, "#888888")
        encoded = _encode(_prepare(sub, tolerance_m=simplify_m)) if len(sub) else []
        groups: dict[str, list] = {}
        for (_, row), geom, code in zip(sub.iterrows(), encoded, codes.loc[sel, effect], strict=True):
            idu = str(row["idu"])
            prefix, suffix = (idu[:8], idu[8:]) if len(idu) == 14 else ("", idu)
            summary = "".join(codes.at[row.name, e] for e in effects)
            cont = row.get("contenance")
            cont = None if cont is None or pd.isna(cont) else int(round(float(cont)))
            groups.setdefault(prefix, []).append([suffix, cont, 2 if code == "y" else 1, 0, summary, geom])
        spec = {
            "q": _Q,
            "groups": [[k, v] for k, v in groups.items()],
            "classified": False,
            "perimeters": [],
            "statusLabels": ["", "partiellement", "oui", "", ""],
            "effects": [ELIGIBILITY_EFFECTS[e] for e in effects],
            "answers": _ANSWERS,
            "styles": {
                "1": {
                    "color": colour,
                    "weight": 1,
                    "fillColor": colour,
                    "fillOpacity": 0.25,
                    "dashArray": "3 3",
                },
                "2": {"color": colour, "weight": 1, "fillColor": colour, "fillOpacity": 0.5},
                "0": {"color": colour, "weight": 1, "fill": False},
            },
        }
        layers.append(
            DataLayer(
                f"eligibilite-{effect}",
                f"Éligibilité : {ELIGIBILITY_EFFECTS[effect]}",
                "parcels",
                spec,
                show=False,
            )
        )
    return layers, counts


# --------------------------------------------------------------------------------------------
# Legend and title (HTML built from escaped text)


def _item(kind: str, colour: str, label: str, *, dash: bool = False, fill: str | None = None) -> str:
    c = html.escape(colour)
    if kind == "line":
        style = f"border-top:3px {'dashed' if dash else 'solid'} {c}"
        sw = f'<span class="ort-line" style="{style}"></span>'
    elif kind == "dot":
        sw = f'<span class="ort-dot" style="background:{c}"></span>'
    else:
        sw = f'<span class="ort-sw" style="background:{html.escape(fill or colour)};border-color:{c}"></span>'
    return f'<div class="ort-item">{sw}<span>{html.escape(label)}</span></div>'


def _note(text: str) -> str:
    return f'<div class="ort-note">{html.escape(text)}</div>'


def _title_html(title: str, fictif: bool) -> str:
    out = html.escape(title or "Convention ORT")
    if fictif:
        out += '<span class="ort-fictif">COMMUNE FICTIVE — données de démonstration</span>'
    return out


def _legend_perimeters(drawn, styles) -> str:
    out = "<h4>Périmètres</h4>"
    if drawn.empty:
        return out + _note("aucun périmètre en vigueur")
    for _, row in drawn.iterrows():
        style = styles[row["perimeter_id"]]
        label = _text(row.get("nom")) or _text(row["perimeter_id"])
        if row.get("type") == "secteur" and bool(row.get("centre_ville")):
            label += " (centre-ville)"
        elif row.get("type") == "opah_ru":
            label += " (OPAH-RU)"
        out += _item("line", style["color"], label, dash="dashArray" in style)
    return out


def _legend_parcels(counts: dict, far_parcels: str, far_m: float) -> str:
    out = "<h4>Parcelles (statut par rapport à l'ORT)</h4>"
    for key, label in ((INSIDE, "incluses"), (STRADDLING, "à cheval"), (OUTSIDE, "hors périmètre")):
        out += _item("box", "#555555", f"{label} ({_fmt_int(counts[key])})", fill=STATUS_COLOURS[key])
    if far_parcels == "light" and counts["parcels_far"]:
        out += _note(
            f"{_fmt_int(counts['parcels_far'])} parcelles à plus de {far_m:.0f} m des périmètres : "
            "dessin allégé"
        )
    if counts["parcels_dropped"]:
        out += _note(
            f"{_fmt_int(counts['parcels_dropped'])} parcelles à plus de {far_m:.0f} m des périmètres "
            "non affichées"
        )
    if counts["parcels_without_geometry"]:
        out += _note(f"{counts['parcels_without_geometry']} parcelle(s) sans géométrie non affichée(s)")
    return out


def _legend_eligibility(counts: dict) -> str:
    out = "<h4>Éligibilité (couches à activer)</h4>"
    for effect, c in counts.items():
        colour = ELIGIBILITY_COLOURS.get(effect, "#888888")
        label = f"{ELIGIBILITY_EFFECTS[effect]} : {c['yes']} oui, {c['partly']} partiellement"
        out += _item("box", colour, label, fill=colour)
    return out


def _legend_sources(perims, parcels, day: dt.date, info: dict) -> str:
    a = perims.attrs
    lines = []
    if a.get("version_libelle") or a.get("version"):
        lines.append(
            f"Périmètres : version « {a.get('version_libelle') or a.get('version')} »"
            + (f" du {a.get('version_date')}" if a.get("version_date") else "")
        )
    if parcels is not None:
        lines.append(f"Cadastre : millésime {parcels.attrs.get('millesime') or 'inconnu'}")
    lines.append(CADASTRE_MENTION)
    lines.append(f"Carte produite le {day.isoformat()} (ort)")
    return "<h4>Sources</h4>" + "".join(_note(t) for t in lines)


# --------------------------------------------------------------------------------------------
# Saving


class _RefFinder(HTMLParser):
    _LOADING = {"script", "link", "img", "iframe", "source", "embed", "object", "video", "audio", "image"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        if tag == "style":
            self._in_style = True
        if tag not in self._LOADING:
            return
        for name, value in attrs:
            if name in ("src", "href", "data", "srcset", "poster") and value and _is_remote(value):
                self.found.append(f"<{tag} {name}={value}>")

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            for ref in re.findall(r"(?:url\(|@import)\s*['\"]?([^'\")\s;]+)", data):
                if _is_remote(ref):
                    self.found.append(f"css {ref}")


def _is_remote(value: str) -> bool:
    v = value.strip().lower()
    return v.startswith(("http://", "https://", "//", "ftp://"))


def external_resources(page: str) -> list[str]:
    """Every resource a page would load from the network (``src``/``href`` of loading tags, CSS urls).

    Links a user may click (``<a href>``) and URLs inside scripts are not loads and are not listed.
    """
    finder = _RefFinder()
    finder.feed(page)
    finder.close()
    return finder.found


def map_html(m: folium.Map) -> str:
    """The complete HTML page of a map."""
    return m.get_root().render()


def save_offline(m: folium.Map, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write the map as one self-contained HTML file, atomically.

    Parameters
    ----------
    m : folium.Map
        A map from :func:`convention_map` (or any folium map whose assets are inlined).
    path : str or path-like
        Output ``.html`` file.
    force : bool
        Replace an existing file.

    Raises
    ------
    OutputExistsError
        The file exists and ``force`` is false.
    OrtError
        The page would still load a script, style or image from the network (e.g. a folium
        plugin added afterwards).
    """
    from geo.io import check_writable, write_text

    check_writable(path, force=force)
    page = map_html(m)
    remote = external_resources(page)
    if remote:
        raise OrtError(
            f"the map would load {len(remote)} resource(s) from the network ({remote[0]}, ...): "
            "it would not work offline — remove the folium plugins or elements that need a CDN"
        )
    return write_text(page, path, force=force)


def summary_lines(m: folium.Map) -> Iterable[str]:
    """Short French lines describing what a map holds (for the CLI)."""
    info = getattr(m, "ort_info", {})
    if "parcels" in info:
        yield (
            f"{_fmt_int(info['parcels_drawn'])} parcelle(s) dessinée(s) sur {_fmt_int(info['parcels'])} — "
            f"{_fmt_int(info['inside'])} incluse(s), {_fmt_int(info['straddling'])} à cheval"
        )
        if info["parcels_dropped"]:
            yield f"{_fmt_int(info['parcels_dropped'])} parcelle(s) éloignée(s) non affichée(s)"
