"""The interactive map of a convention: one self-contained, offline HTML file.

:func:`convention_map` returns a :class:`folium.Map` (it displays inline in Jupyter) with a
layer control, a legend, a parcel search by IDU and a scale bar, fitted to the convention;
:func:`save_offline` writes it as one HTML file that loads nothing from the network: Leaflet
and the map's small runtime are inlined (:mod:`geo.maps.assets`), no CDN, no tiles unless asked.
This module assembles the page (controls, legend, view) and saves it; each layer is built by
:mod:`geo.maps.layers`.

Layers, bottom to top: parcels coloured by status against the ORT (canvas, for 10–20k
parcels), eligibility, commune boundaries, perimeters (ORT sectors — the centre-ville one
thicker and red —, OPAH-RU dashed), friches by status, social housing sites sized by their
dwellings, actions by axe. Geometries are simplified in the metric CRS, reprojected to
EPSG:4326 only at the end, rounded to 6 decimals (≈ 0.1 m) and delta-encoded; parcels far
from every perimeter can be lightened or dropped (``far_parcels``), and the legend says how
many.

The search frames the parcel found with its neighbours and the nearest sector boundary, its
popup beside it; on a screen narrower than 600 px (a phone) the answer is a bottom sheet instead
(45 % of the height at most, scrolling, closed by its button or Escape), the parcel framed above
it. On a diff map (``diff=``), a changed parcel's popup gives its status and share in both
versions, and the perimeters before the avenant are a dashed magenta line.

Every text from data reaches the page either HTML-escaped (legend, title, layer names) or as
DOM text nodes built by the runtime (popups, tooltips, search messages): it cannot run a
script.

Optional layers take plain GeoDataFrames (any CRS, converted to the perimeters' metric CRS);
the columns read are, by layer (first name found wins, all optional unless stated):

- ``communes``: polygons; ``nom``, ``code_insee``.
- ``friches`` (:func:`geo.places.friches.read_friches`): points or polygons; ``site_id``,
  ``site_nom``, ``site_statut`` (CNIG values: friche potentielle, friche sans projet, friche
  avec projet, site avec projet, reconvertie), ``site_type``, ``surface_m2``, ``comm_nom``.
- ``housing`` (``geo.places.housing.locate_sites(...).sites``): points or polygons (drawn at a
  representative point), rows without geometry counted as not located; ``logements`` |
  ``nb_logements`` (number of dwellings, sets the size), ``programme`` | ``nom``,
  ``bailleur``, ``annee``, ``adresse``.
- ``actions`` (``geo.places.actions.actions_table`` joined to ``action_geometries`` on ``id``):
  points or polygons, or no geometry (counted as not located); ``titre`` | ``title``
  (**required**), ``id``, ``axe_libelle`` | ``axe``, ``statut``, ``maitre_ouvrage``, ``budget``.
- ``eligibility`` (``geo.eligibility.answers.answers_to_frame`` of parcel answers, or a wide table):
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
import pandas as pd
from folium.template import Template

from geo import fmt, projection
from geo.classify import INSIDE, OUTSIDE, STRADDLING
from geo.errors import InputError, OrtError
from geo.maps import assets as _assets
from geo.maps import layers as _layers

# The layers are built in geo.maps.layers; ``X as X`` keeps names callers read from geo.maps.page.
from geo.maps.layers import AXE_COLOURS as AXE_COLOURS
from geo.maps.layers import (
    ELIGIBILITY_COLOURS,
    ELIGIBILITY_EFFECTS,
    actions_layer,
    cell_text,
    communes_layer,
    eligibility_layers,
    fold_answers,
    friches_layer,
    housing_layer,
    legend_item,
    legend_note,
    parcels_layer,
    perimeter_layer,
    to_layer_crs,
    usable_rows,
)
from geo.maps.layers import FAR_COLOUR as FAR_COLOUR
from geo.maps.layers import FRICHE_COLOURS as FRICHE_COLOURS
from geo.maps.layers import FRICHE_OTHER_COLOUR as FRICHE_OTHER_COLOUR
from geo.maps.layers import HOUSING_COLOUR as HOUSING_COLOUR
from geo.maps.layers import PERIMETER_TYPE_LABELS as PERIMETER_TYPE_LABELS
from geo.maps.layers import DataLayer as DataLayer
from geo.maps.safe import Literal, SafeFigure, SafeFitBounds, SafeLayerControl, SafeMacro, SafeTileLayer
from geo.maps.style import CADASTRE_MENTION as CADASTRE_MENTION
from geo.maps.style import CENTRE_VILLE_COLOUR as CENTRE_VILLE_COLOUR
from geo.maps.style import OPAH_RU_COLOUR as OPAH_RU_COLOUR
from geo.maps.style import OTHER_PERIMETER_COLOUR as OTHER_PERIMETER_COLOUR
from geo.maps.style import SECTOR_COLOURS as SECTOR_COLOURS
from geo.maps.style import STATUS_COLOURS as STATUS_COLOURS
from geo.maps.style import perimeter_colours as perimeter_colours
from geo.maps.style import perimeter_style as perimeter_style
from geo.maps.text import html_text, no_surrogates

# --------------------------------------------------------------------------------------------
# Folium elements


class OfflineMap(folium.Map, SafeMacro):
    """A :class:`folium.Map` whose page inlines Leaflet and links to no CDN (also in Jupyter).

    Its page is a :class:`geo.maps.safe.SafeFigure`: nothing from data is ever rendered as
    template source (:mod:`geo.maps.safe`).
    """

    default_js: list[tuple[str, str]] = []
    default_css: list[tuple[str, str]] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        SafeFigure().add_child(self)

    def render(self, **kwargs):
        header = self.get_root().header
        header.add_child(Literal(_assets.inline_head()), name="ort_inline_assets", index=0)
        super().render(**kwargs)


class _Script(SafeMacro):
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


class HtmlControl(SafeMacro):
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
# The map


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
    answers: pd.DataFrame | None = None,
    addresses: pd.DataFrame | None = None,
    convention=None,
    sections: gpd.GeoDataFrame | None = None,
    buildings: gpd.GeoDataFrame | None = None,
    lieux_dits: gpd.GeoDataFrame | None = None,
    diff: pd.DataFrame | None = None,
    diff_before: gpd.GeoDataFrame | None = None,
    orientation: bool = True,
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
    answers : DataFrame, optional
        Eligibility answers of the parcels (:func:`geo.eligibility.answers.answers_to_frame`:
        ``idu``, ``regle``, ``dispositif`` | ``effet``, ``verdict``, ``part``, ``reference``,
        ``date_evaluee``): each parcel's popup lists every dispositif with its verdict, its
        reference and the date evaluated (the eligibility layers open the same popup).
    addresses : DataFrame, optional
        The commune's address points (:func:`geo.sources.addresses.read_addresses`: ``numero``,
        ``suffixe``, ``voie``, ``lon``, ``lat`` in WGS84 degrees), embedded so that the search
        box finds an address offline and outlines the parcel that holds its point; street
        names are placed along their addresses (from zoom 16).
    convention : geo.perimeters.Convention, optional
        Its signature and end dates, and the version in force, are shown in the sectors' popups.
    sections, buildings, lieux_dits : GeoDataFrame, optional
        Orientation layers from the Etalab cadastre (``sections``, ``batiments``,
        ``lieux_dits``), any CRS. Without ``sections``, section outlines are dissolved from the
        parcels. Buildings are off by default (a layer to switch on); section names from zoom
        14, lieux-dits from 14, parcel numbers from 18 (≈ 1:2 000).
    diff : DataFrame, optional
        :func:`geo.diff.perimeter_diff` result: parcels entering, leaving or changing share
        drawn as a layer; ``diff_before`` (the old version's perimeters) adds their outlines.
    orientation : bool
        Draw the orientation layers (section outlines and names — dissolved from the parcels
        when ``sections`` is not given —, parcel numbers, and the layers given above); false
        leaves only the data layers.
    title : str
        Shown at the top and as the page title (escaped).
    fictif : bool
        Says "COMMUNE FICTIVE" under the title.
    tiles : str, optional
        Background: a preset of :data:`geo.maps.tiles.BACKGROUNDS` (``plan-ign``,
        ``ortho-ign``, ``osm``, with their attribution) or a ``{z}/{x}/{y}`` URL template.
        It loads tiles from the network when opened (a notice appears on the map when they
        fail); without it the cadastre is the background and the page loads nothing.
    tiles_attribution : str, optional
        Attribution of a custom URL template (default: its host).
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
        raise InputError(f"far_parcels={far_parcels!r} inconnu", fix="choisissez 'light', 'drop' ou 'keep'")
    if simplify_m < 0 or far_m < 0:
        raise InputError("simplify_m et far_m sont des distances en mètres, positives ou nulles")
    crs = projection.require_metric(perimeters, source="perimeters")
    perims, _ = usable_rows(perimeters)
    drawn = perims[perims["type"] != "ort"] if "type" in perims.columns else perims
    if "perimeter_id" not in drawn.columns:
        raise InputError("colonne 'perimeter_id' absente", source="perimeters")
    info: dict = {}

    m = OfflineMap(location=None, tiles=None, zoom_start=15, control_scale=False)
    m.options["max_zoom"] = 21
    m.get_root().title = html_text(title) or "Carte de la convention"
    m.add_child(
        _Script("ORT.init({map}, " + _assets.to_js_json({"icons": _assets.icon_uris()}) + ");"),
        name="ort_init",
    )
    m.add_child(_Script("ORT.orientInit({map});"), name="ort_orient_init")
    if tiles:
        from geo.maps.tiles import background

        bg = background(tiles, tiles_attribution)
        tile_layer = SafeTileLayer(
            tiles=bg.url,
            attr=bg.attribution_html,
            name=html_text(bg.label),
            max_zoom=21,
            max_native_zoom=bg.max_native_zoom,
            overlay=False,
        )
        tile_layer.add_to(m)
        m.add_child(
            _Script(f"ORT.tileNotice({{map}}, {tile_layer.get_name()}, {_assets.to_js_json(bg.label)});"),
            name="ort_tile_notice",
        )
        info["background"] = bg.key

    legend: list[str] = []
    order: list[str] = []
    parcel_layer = parcels_data = None
    if parcels is not None:
        parcel_layer = to_layer_crs(parcels, crs, name="parcels")
        if "idu" not in parcel_layer.columns:
            raise InputError(
                "colonne 'idu' absente", source="parcels", fix="lisez-les avec geo.sources.cadastre"
            )
    # Fit the view before any layer is added: the 20k parcels are then projected once, not twice.
    bounds = _bounds(drawn if len(drawn) else parcel_layer, crs)
    if bounds is not None:
        m.location = [(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2]
        # A first view; the runtime fits the sectors again clear of the controls, whatever the screen.
        m.add_child(SafeFitBounds(bounds))
    m.ort_bounds = bounds
    if parcel_layer is not None:
        if classification is None and len(drawn):
            from geo.classify import classify_parcels

            classification = classify_parcels(parcel_layer, perims, only_intersecting=True)
        layer, counts = parcels_layer(
            parcel_layer, classification, perims, simplify_m=simplify_m, far_parcels=far_parcels, far_m=far_m
        )
        info.update(counts)
        if answers is not None:
            info["answers"] = fold_answers(layer.spec, answers)
        parcels_data = layer
        m.add_child(layer)
        legend.append(_section("parcelles", _legend_parcels(counts, far_parcels, far_m)))
        order.append("parcelles")
        parts, n_straddling = _layers.straddling_parts_layer(parcel_layer, classification, perims, simplify_m)
        if parts is not None:
            m.add_child(parts)
            order.append(parts.key)

    orient_legend, orient_order = (
        _orientation_layers(
            m, info, crs, parcel_layer, sections, buildings, lieux_dits, addresses, simplify_m
        )
        if orientation
        else ("", [])
    )
    order += orient_order

    if eligibility is not None:
        layers, counts = eligibility_layers(eligibility, parcel_layer, crs, simplify_m=simplify_m)
        for layer in layers:
            layer.spec["delegate"] = parcel_layer is not None  # the parcel's full popup, not a second one
            m.add_child(layer)
            order.append(layer.key)
        info["eligibility"] = counts
        legend.append(_section(" ".join(lay.key for lay in layers), _legend_eligibility(counts)))

    if communes is not None:
        layer = communes_layer(to_layer_crs(communes, crs, name="communes"), simplify_m)
        m.add_child(layer)
        order.append("communes")
        legend.append(
            _section(
                "communes", "<h4>Limites</h4>" + legend_item("line", "#333333", "Limite communale", dash=True)
            )
        )

    styles = perimeter_colours(drawn)
    if len(drawn):
        layer = perimeter_layer(
            drawn, styles, outline=parcels is not None, simplify_m=simplify_m / 3, attrs=perims.attrs
        )
        _sector_popups(layer.spec, drawn, perims.attrs, convention)
        m.add_child(layer)
        order.append("perimetres")
    legend.insert(0, _section("perimetres", _legend_perimeters(drawn, styles)))

    if diff is not None:
        if parcel_layer is None:
            raise InputError("a diff layer needs the parcels", fix="pass parcels=")
        diff_layers, diff_counts = _layers.diff_layers(
            diff, parcel_layer, diff_before, crs, simplify_m, after=perims
        )
        for layer in diff_layers:
            m.add_child(layer)
            order.append(layer.key)
        info["diff"] = diff_counts
        if parcels_data is not None:  # the parcel's own popup says before / after as well
            _layers.fold_diff(parcels_data.spec, diff, diff_before, perims)
        legend.append(
            _section(
                " ".join(lay.key for lay in diff_layers), _legend_diff(diff_counts, diff_before is not None)
            )
        )

    for key, gdf, builder in (
        ("friches", friches, friches_layer),
        ("logements", housing, housing_layer),
        ("actions", actions, actions_layer),
    ):
        if gdf is None:
            continue
        layer, part, counts = builder(gdf, crs, simplify_m)
        info[key] = counts
        legend.append(_section(key, part))
        if layer is not None:
            m.add_child(layer)
            order.append(key)

    if orient_legend:
        legend.append(orient_legend)
    m.add_child(HtmlControl(_title_html(title, fictif), position="topright", css_class="ort-box ort-title"))
    SafeLayerControl(position="topright", collapsed=True).add_to(m)
    if addresses is not None and parcel_layer is not None:
        spec, info["addresses"] = _address_spec(addresses, parcel_layer)
        m.add_child(_Script("ORT.addresses(" + _assets.to_js_json(spec) + ");"), name="ort_addresses")
    m.add_child(_Script("ORT.search({map});"), name="ort_search")
    legend.append(_legend_sources(perims, parcel_layer, production_date or dt.date.today(), info))
    # Closed here; the runtime opens it on screens 900 px wide or more (a phone keeps the map).
    legend_html = "<details><summary>Légende</summary>" + "".join(legend) + "</details>"
    m.add_child(
        HtmlControl(legend_html, position="bottomright", css_class="ort-box ort-legend"),
        name="ort_legend",
    )
    m.add_child(
        _Script(
            "ORT.finish({map}, "
            + _assets.to_js_json(order)
            + ", "
            + _assets.to_js_json({"bounds": bounds})
            + ");"
        ),
        name="ort_finish",
    )
    m.ort_info = info
    return m


def _section(layers: str, part: str) -> str:
    """A legend part tied to its layers (space-separated keys): hidden when they are switched off."""
    return f'<div data-ort-layer="{html_text(layers)}">{part}</div>'


def _sector_popups(spec: dict, drawn: gpd.GeoDataFrame, attrs: dict, convention) -> None:
    """Sectors' popups: name, type, version in force and the convention's dates."""
    spec["ids"] = [str(i) for i in drawn["perimeter_id"]]
    version = attrs.get("version_libelle") or attrs.get("version")
    for f in spec["features"]:
        rows = f[2]
        if version:
            since = f" (depuis le {fmt.date_fr(attrs['version_date'])})" if attrs.get("version_date") else ""
            rows.append(["Version en vigueur", f"{version}{since}"])
        if convention is not None:
            rows.append(["Convention", convention.nom])
            rows.append(
                [
                    "Signée le",
                    f"{fmt.date_fr(convention.date_signature)} "
                    f"(fin prévue le {fmt.date_fr(convention.date_fin)})",
                ]
            )
            others = [v for v in convention.versions if v.libelle != version]
            if others:
                rows.append(
                    [
                        "Autres versions",
                        " ; ".join(f"{v.libelle} ({fmt.date_fr(v.date_effet)})" for v in others),
                    ]
                )


def _address_spec(addresses: pd.DataFrame, parcels: gpd.GeoDataFrame) -> tuple[dict, dict]:
    """The commune's address points for the search box, each with the parcel that holds it."""
    from geo.sources.addresses import _NAME_WORDS, _SMALL_WORDS, _SUFFIXES, _VOIE_TYPES, voie_key

    ok = addresses["lon"].notna() & addresses["lat"].notna()
    table = addresses[ok].drop_duplicates(["code_insee", "voie_key", "numero", "suffixe"])
    pts = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy(table["lon"].astype(float), table["lat"].astype(float)),
        crs=projection.WGS84,
    ).to_crs(parcels.crs)
    hit = parcels.sindex.query(pts.geometry.to_numpy(), predicate="intersects")
    idu_of = dict(zip(hit[0].tolist(), parcels["idu"].astype(str).to_numpy()[hit[1]].tolist(), strict=True))
    streets = list(dict.fromkeys(table["voie"].astype(str)))
    index = {v: k for k, v in enumerate(streets)}
    points = [
        [index[v], f"{n}{s}", idu_of.get(k, ""), int(round(lon * 1e6)), int(round(lat * 1e6))]
        for k, (v, n, s, lon, lat) in enumerate(
            zip(
                table["voie"].astype(str),
                table["numero"],
                table["suffixe"],
                table["lon"],
                table["lat"],
                strict=True,
            )
        )
    ]
    spec = {
        "q": 10**6,
        "streets": streets,
        "keys": [voie_key(v) for v in streets],
        "points": points,
        "types": dict(_VOIE_TYPES),
        "names": dict(_NAME_WORDS),
        "small": sorted(_SMALL_WORDS),
        "suffixes": {**_SUFFIXES, **{v: v for v in _SUFFIXES.values()}},
        "source": addresses.attrs.get("source", ""),
    }
    return spec, {"points": len(points), "on_parcels": len(idu_of)}


def _orientation_layers(m, info, crs, parcels, sections, buildings, lieux_dits, addresses, simplify_m):
    """Sections (outlines and names), buildings, lieux-dits, street names, parcel numbers."""
    legend, order, counts = [], [], {}
    if buildings is not None:
        layer, counts["batiments"] = _layers.buildings_layer(buildings, crs, simplify_m)
        m.add_child(layer)
        legend.append(
            legend_item("box", "#6f655c", "Bâtiments (couche à activer)", fill=_layers.BUILDING_COLOUR)
        )
    if sections is None and parcels is not None:
        sections = _layers.sections_from_parcels(parcels)
    if sections is not None and len(sections):
        outline, names, counts["sections"] = _layers.sections_layers(sections, crs, simplify_m)
        m.add_child(outline)
        m.add_child(names)
        order.append(outline.key)
        legend.append(legend_item("line", _layers.SECTION_COLOUR, "Limite de section cadastrale"))
    if parcels is not None:
        m.add_child(
            DataLayer(
                "numeros",
                "Numéros cadastraux",
                "parcelNumbers",
                {"layer": "parcelles", "minZoom": _layers.LABEL_ZOOM["parcelle"]},
            )
        )
        legend.append(legend_note("Numéros de parcelles affichés à partir du 1:2 000 environ (zoom 18)"))
    if lieux_dits is not None:
        layer, counts["lieux_dits"] = _layers.lieux_dits_layer(lieux_dits, crs)
        m.add_child(layer)
    if addresses is not None:
        layer, counts["voies"] = _layers.streets_layer(addresses, crs)
        m.add_child(layer)
        legend.append(
            legend_note(
                f"Noms de voies placés le long de leurs adresses ({fmt.number(counts['voies'])} voies)"
            )
        )
    info["orientation"] = counts
    return ("<h4>Repères</h4>" + "".join(legend)) if legend else "", order


_DIFF_VERBS = {"enters": "entre", "leaves": "sort", "share_changed": "change de part"}


def _legend_diff(counts: dict, with_before: bool) -> str:
    out = "<h4>Modifications de l'avenant</h4>"
    for key in _layers.DIFF_LABELS:
        colour = _layers.DIFF_COLOURS[key]
        out += legend_item(
            "box",
            colour,
            f"Parcelle qui {_DIFF_VERBS[key]} ({fmt.number(counts.get(key, 0))})",
            fill=colour,
        )
    if with_before:
        out += legend_item("line", _layers.BEFORE_COLOUR, "Périmètre avant l'avenant (tirets)", dash=True)
    return out


def _bounds(gdf: gpd.GeoDataFrame | None, crs) -> list[list[float]] | None:
    if gdf is None or gdf.empty:
        return None
    minx, miny, maxx, maxy = gpd.GeoSeries(gdf.geometry, crs=crs).to_crs(projection.WGS84).total_bounds
    return [[round(float(miny), 6), round(float(minx), 6)], [round(float(maxy), 6), round(float(maxx), 6)]]


# --------------------------------------------------------------------------------------------
# Legend and title (HTML built from escaped text)


def _title_html(title: str, fictif: bool) -> str:
    out = html_text(title) or "Convention ORT"
    if fictif:
        out += '<span class="ort-fictif">COMMUNE FICTIVE — données de démonstration</span>'
    return out


def _legend_perimeters(drawn, styles) -> str:
    out = "<h4>Périmètres</h4>"
    if drawn.empty:
        return out + legend_note("aucun périmètre en vigueur")
    for _, row in drawn.iterrows():
        style = styles[row["perimeter_id"]]
        label = cell_text(row.get("nom")) or cell_text(row["perimeter_id"])
        if row.get("type") == "secteur" and bool(row.get("centre_ville")):
            label += " (centre-ville)"
        elif row.get("type") == "opah_ru":
            label += " (OPAH-RU)"
        item = legend_item("line", style["color"], label, dash="dashArray" in style)
        pid = html.escape(no_surrogates(row["perimeter_id"]), quote=True)
        out += item.replace('<div class="ort-item">', f'<div class="ort-item" data-ort-perimeter="{pid}">', 1)
    return out


def _legend_parcels(counts: dict, far_parcels: str, far_m: float) -> str:
    out = "<h4>Parcelles (statut par rapport à l'ORT)</h4>"
    for key, label in ((INSIDE, "incluses"), (STRADDLING, "à cheval"), (OUTSIDE, "hors périmètre")):
        out += legend_item("box", "#555555", f"{label} ({fmt.number(counts[key])})", fill=STATUS_COLOURS[key])
        if key == STRADDLING:
            out += legend_item(
                "box",
                "#555555",
                "partie incluse d'une parcelle à cheval (le reste pâle ; part en %)",
                fill=_layers.STRADDLING_INSIDE_COLOUR,
            )
    if far_parcels == "light" and counts["parcels_far"]:
        out += legend_note(
            f"{fmt.number(counts['parcels_far'])} parcelles à plus de {far_m:.0f} m des périmètres : "
            "dessin allégé"
        )
    if counts["parcels_dropped"]:
        out += legend_note(
            f"{fmt.number(counts['parcels_dropped'])} parcelles à plus de {far_m:.0f} m des périmètres "
            "non affichées"
        )
    if counts["parcels_without_geometry"]:
        out += legend_note(f"{counts['parcels_without_geometry']} parcelle(s) sans géométrie non affichée(s)")
    return out


def _legend_eligibility(counts: dict) -> str:
    out = "<h4>Éligibilité (couches à activer)</h4>"
    for effect, c in counts.items():
        colour = ELIGIBILITY_COLOURS.get(effect, "#888888")
        label = f"{ELIGIBILITY_EFFECTS[effect]} : {c['yes']} oui, {c['partly']} partiellement"
        out += legend_item("box", colour, label, fill=colour)
    return out


def _legend_sources(perims, parcels, day: dt.date, info: dict) -> str:
    a = perims.attrs
    lines = []
    if a.get("version_libelle") or a.get("version"):
        lines.append(
            f"Périmètres : version « {a.get('version_libelle') or a.get('version')} »"
            + (f" du {fmt.date_fr(a.get('version_date'))}" if a.get("version_date") else "")
        )
    if parcels is not None:
        lines.append(f"Cadastre : millésime {parcels.attrs.get('millesime') or 'inconnu'}")
    lines.append(CADASTRE_MENTION)
    lines.append(f"Carte produite le {fmt.date_fr(day)} (ort)")
    return "<h4>Sources</h4>" + "".join(legend_note(t) for t in lines)


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

    Parameters
    ----------
    page : str
        An HTML page.

    Returns
    -------
    list of str
        One line per remote reference, e.g. ``<script src=https://...>`` or ``css https://...``.
    """
    finder = _RefFinder()
    finder.feed(page)
    finder.close()
    return finder.found


def map_html(m: folium.Map) -> str:
    """The complete HTML page of a map.

    Parameters
    ----------
    m : folium.Map
        A map from :func:`convention_map`.

    Returns
    -------
    str
        The page, as :func:`save_offline` writes it.
    """
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
            f"la carte chargerait {len(remote)} ressource(s) depuis le réseau ({remote[0]}, ...) : "
            "elle ne marcherait pas hors ligne — retirez les extensions folium qui demandent un CDN"
        )
    return write_text(page, path, force=force)


def summary_lines(m: folium.Map) -> Iterable[str]:
    """Short French lines describing what a map holds (for the CLI).

    Parameters
    ----------
    m : folium.Map
        A map from :func:`convention_map` (reads its ``ort_info`` counts).

    Yields
    ------
    str
        One line per fact (parcels drawn, parcels left out...).
    """
    info = getattr(m, "ort_info", {})
    if "parcels" in info:
        yield (
            f"{fmt.number(info['parcels_drawn'])} parcelle(s) dessinée(s) "
            f"sur {fmt.number(info['parcels'])} — "
            f"{fmt.number(info['inside'])} incluse(s), {fmt.number(info['straddling'])} à cheval"
        )
        if info["parcels_dropped"]:
            yield f"{fmt.number(info['parcels_dropped'])} parcelle(s) éloignée(s) non affichée(s)"
    if "answers" in info:
        a = info["answers"]
        yield f"{a['effects']} dispositif(s) dans la fenêtre de {fmt.number(a['parcels'])} parcelle(s)"
    if "addresses" in info:
        a = info["addresses"]
        yield (
            f"{fmt.number(a['points'])} point(s) d'adresse embarqué(s) pour la recherche, "
            f"{fmt.number(a['on_parcels'])} sur une parcelle"
        )
