"""The layers of the convention map: GeoDataFrames turned into compact specs for the runtime.

One builder per layer: parcels coloured by status against the ORT, perimeters, commune
boundaries, friches, social housing sites, actions, eligibility. Each takes its layer in the
perimeters' metric CRS (metres; the optional layers in any CRS, converted on the way in) and
returns a :class:`DataLayer` — a JSON ``spec`` drawn in the page by the inlined runtime
(:mod:`geo.maps.assets`) — with its counts and, for the optional layers, its legend part.
:func:`geo.maps.page.convention_map` assembles them into the page; the columns each layer reads
are listed in :mod:`geo.maps.page`.

Geometries are simplified in the metric CRS, reprojected to EPSG:4326 only at the end
(:func:`_prepare`), rounded to 6 decimals (≈ 0.1 m) and delta-encoded (:func:`encode_geometries`).
Every text from data goes into the spec as plain text (the runtime builds DOM text nodes)
or, in legend parts, HTML-escaped.
"""

from __future__ import annotations

import html
import re

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.template import Template

from geo import fmt, projection
from geo.classify import INSIDE, OUTSIDE, STATUS_LABELS, STRADDLING
from geo.errors import InputError
from geo.maps import assets as _assets
from geo.maps.safe import SafeMacro
from geo.maps.streets import street_labels as street_labels
from geo.maps.style import STATUS_COLOURS as STATUS_COLOURS
from geo.maps.text import cell_text as cell_text
from geo.maps.text import html_text

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
HOUSING_COLOUR = "#0b3c5d"  # navy: distinct from the Dark2 palette of the action axes
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
# The layer element


class DataLayer(folium.map.Layer, SafeMacro):
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
        super().__init__(name=html_text(name), overlay=True, control=True, show=show)
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


# --------------------------------------------------------------------------------------------
# Geometry encoding


def encode_geometries(geoms: np.ndarray) -> list:
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
            f"impossible de dessiner le type de géométrie {parts[bad][0].geom_type} sur la carte",
            fix="donnez des points ou des polygones (tamponnez d'abord les lignes)",
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


def usable_rows(gdf: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, int]:
    """Rows with a non-empty geometry, and how many were left out."""
    ok = ~(gdf.geometry.isna() | gdf.geometry.is_empty)
    return gdf[ok], int((~ok).sum())


def _day(text: str) -> str:
    """An ISO date as people read it (18/01/2023); any other text as it is."""
    return fmt.date_fr(text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text or "") else text


def to_layer_crs(layer: gpd.GeoDataFrame, crs, *, name: str) -> gpd.GeoDataFrame:
    if not isinstance(layer, gpd.GeoDataFrame):
        raise InputError(f"{name} doit être un GeoDataFrame", fix="lisez-le avec geopandas.read_file")
    return projection.to_metric(layer, crs, source=name)


def _col(df: pd.DataFrame, *names: str) -> str | None:
    for name in names:
        if name in df.columns:
            return name
    return None


def _fmt_int(value: float) -> str:
    return f"{value:,.0f}".replace(",", "\u202f")


# --------------------------------------------------------------------------------------------
# Legend items (HTML built from escaped text)


def legend_item(kind: str, colour: str, label: str, *, dash: bool = False, fill: str | None = None) -> str:
    c = html.escape(colour)
    if kind == "line":
        style = f"border-top:3px {'dashed' if dash else 'solid'} {c}"
        sw = f'<span class="ort-line" style="{style}"></span>'
    elif kind == "dot":
        sw = f'<span class="ort-dot" style="background:{c}"></span>'
    else:
        sw = f'<span class="ort-sw" style="background:{html.escape(fill or colour)};border-color:{c}"></span>'
    return f'<div class="ort-item">{sw}<span>{html_text(label)}</span></div>'


def legend_note(text: str) -> str:
    return f'<div class="ort-note">{html_text(text)}</div>'


# --------------------------------------------------------------------------------------------
# Parcels, perimeters, communes


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


def parcels_layer(parcels, classification, perims, *, simplify_m, far_parcels, far_m):
    usable, no_geom = usable_rows(parcels)
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
    encoded = encode_geometries(wgs)
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
                # Straddling parcels pale: the part inside is filled by its own layer.
                "fillOpacity": {1: 0.22, 2: 0.55}.get(code, 0.35),
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


def perimeter_layer(drawn, styles, *, outline, simplify_m, attrs):
    wgs = _prepare(drawn, tolerance_m=simplify_m)
    encoded = encode_geometries(wgs)
    features, style_list = [], []
    areas = drawn.geometry.area.to_numpy()
    for k, (row, geom) in enumerate(zip(drawn.to_dict("records"), encoded, strict=True)):
        style = dict(styles[row["perimeter_id"]])
        style.update(fill=not outline, fillOpacity=0.08, opacity=1)
        style_list.append(style)
        rows = [
            ["Type", PERIMETER_TYPE_LABELS.get(row.get("type"), cell_text(row.get("type")))],
            ["Identifiant", cell_text(row["perimeter_id"])],
        ]
        if row.get("type") == "secteur":
            rows.append(["Centre-ville", "oui" if bool(row.get("centre_ville")) else "non"])
        if cell_text(row.get("commune")):
            rows.append(["Commune", cell_text(row.get("commune"))])
        for key, label in (("date_debut", "Début"), ("date_fin", "Fin")):
            if cell_text(row.get(key)):
                rows.append([label, _day(cell_text(row.get(key)))])
        version = cell_text(row.get("version")) or cell_text(attrs.get("version"))
        if version:
            day = cell_text(row.get("version_date")) or cell_text(attrs.get("version_date"))
            rows.append(["Version", f"{version} ({_day(day)})" if day else version])
        rows.append(["Surface", f"{areas[k] / 10_000:,.2f} ha".replace(",", "\u202f").replace(".", ",")])
        name = cell_text(row.get("nom")) or cell_text(row["perimeter_id"])
        features.append([k, name, rows, name, geom, 0])
    spec = {
        "q": _Q,
        "kind": "outline" if outline else "polygon",
        "pane": "ortperimetres",
        "styles": style_list,
        "features": features,
    }
    return DataLayer("perimetres", "Périmètres (secteurs ORT, OPAH-RU)", "vector", spec)


def communes_layer(communes, simplify_m):
    usable, _ = usable_rows(communes)
    encoded = encode_geometries(_prepare(usable, tolerance_m=simplify_m))
    name_col = _col(usable, "nom", "name", "libelle")
    code_col = _col(usable, "code_insee", "code", "insee", "commune")
    features = []
    for k, geom in enumerate(encoded):
        row = usable.iloc[k]
        name = " ".join(
            x
            for x in (
                cell_text(row[name_col]) if name_col else "",
                cell_text(row[code_col]) if code_col else "",
            )
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


# --------------------------------------------------------------------------------------------
# Optional layers: friches, housing, actions, eligibility


def _point_layer_spec(gdf, *, styles, rows_of, tooltip_of, style_of, radius_of, simplify_m):
    usable, missing = usable_rows(gdf)
    encoded = encode_geometries(_prepare(usable, tolerance_m=simplify_m)) if len(usable) else []
    features = []
    for geom, (_, row) in zip(encoded, usable.iterrows(), strict=True):
        title, rows = rows_of(row)
        features.append([style_of(row), title, rows, tooltip_of(row), geom, radius_of(row)])
    return {"q": _Q, "kind": "polygon", "pane": "ortpoints", "styles": styles, "features": features}, missing


def _field_rows(row, fields) -> list[list[str]]:
    out = []
    for col, label in fields:
        if col in row.index and cell_text(row[col]):
            out.append([label, cell_text(row[col])])
    return out


def friches_layer(friches, crs, simplify_m):
    gdf = to_layer_crs(friches, crs, name="friches")
    status_col = _col(gdf, "site_statut", "statut", "status")
    name_col = _col(gdf, "site_nom", "nom", "name")
    statuses = [cell_text(s) for s in gdf[status_col]] if status_col else [""] * len(gdf)
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
        rows_of=lambda r: (cell_text(r[name_col]) if name_col else "Friche", _field_rows(r, fields)),
        tooltip_of=lambda r: cell_text(r[name_col]) if name_col else "",
        style_of=lambda r: known.index(cell_text(r[status_col]) if status_col else ""),
        radius_of=lambda r: 0,
        simplify_m=simplify_m,
    )
    part = "<h4>Friches (statut)</h4>" + "".join(
        legend_item("dot", palette[s], f"{s or 'statut inconnu'} ({statuses.count(s)})") for s in known
    )
    if missing:
        part += legend_note(f"{missing} friche(s) sans géométrie non affichée(s)")
    return (
        DataLayer("friches", "Friches", "vector", spec),
        part,
        {"drawn": len(spec["features"]), "missing": missing},
    )


def housing_layer(housing, crs, simplify_m):
    gdf = to_layer_crs(housing, crs, name="housing").copy()
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
        rows_of=lambda r: (
            cell_text(r[name_col]) if name_col else "Logements sociaux",
            _field_rows(r, fields),
        ),
        tooltip_of=lambda r: cell_text(r[name_col]) if name_col else "",
        style_of=lambda r: 0,
        radius_of=radius,
        simplify_m=simplify_m,
    )
    total = pd.to_numeric(gdf[n_col], errors="coerce").sum() if n_col else 0
    part = "<h4>Logements sociaux</h4>" + legend_item(
        "dot",
        HOUSING_COLOUR,
        f"site (taille selon le nombre de logements) — {len(spec['features'])} site(s)"
        + (f", {_fmt_int(total)} logements" if n_col else ""),
    )
    if missing:
        part += legend_note(f"{missing} site(s) non localisé(s), non affiché(s)")
    return (
        DataLayer("logements", "Logements sociaux", "vector", spec),
        part,
        {
            "drawn": len(spec["features"]),
            "missing": missing,
        },
    )


def actions_layer(actions, crs, simplify_m):
    title_col = _col(actions, "titre", "title", "intitule")
    if title_col is None:
        raise InputError(
            "colonne 'titre' absente", source="actions", fix="nommez 'titre' la colonne du titre des actions"
        )
    if isinstance(actions, gpd.GeoDataFrame) and actions.geometry.notna().any():
        gdf = to_layer_crs(actions, crs, name="actions")
    else:
        gdf = gpd.GeoDataFrame(pd.DataFrame(actions), geometry=[None] * len(actions), crs=crs)
    axe_col = _col(gdf, "axe_libelle", "axe", "axe_nom")
    axes = list(dict.fromkeys(cell_text(a) for a in gdf[axe_col])) if axe_col else [""]
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
        rows_of=lambda r: (cell_text(r[title_col]), _field_rows(r, fields)),
        tooltip_of=lambda r: cell_text(r[title_col]),
        style_of=lambda r: axes.index(cell_text(r[axe_col]) if axe_col else ""),
        radius_of=lambda r: 0,
        simplify_m=simplify_m,
    )
    counts = gdf[axe_col].map(cell_text).value_counts() if axe_col else pd.Series({"": len(gdf)})
    part = "<h4>Actions (par axe)</h4>" + "".join(
        legend_item("dot", palette[a], f"{a or 'axe non renseigné'} ({int(counts.get(a, 0))})") for a in axes
    )
    if missing:
        part += legend_note(f"{missing} action(s) sans localisation (non affichées)")
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
            f"réponse d'éligibilité {value!r} non comprise",
            source="eligibility",
            fix="utilisez oui/yes, partiel/partly, non/no, inconnu/unknown ou des booléens",
        )
    return code


def _eligibility_table(eligibility: pd.DataFrame) -> pd.DataFrame:
    if "idu" not in eligibility.columns:
        raise InputError(
            "colonne 'idu' absente", source="eligibility", fix="une ligne par parcelle avec son idu"
        )
    ans_col = _col(eligibility, "verdict", "answer", "result", "value")
    effect_col = _col(eligibility, "regle", "effect", "rule")
    if effect_col and ans_col:
        wide = eligibility.pivot_table(index="idu", columns=effect_col, values=ans_col, aggfunc="first")
        wide.columns = [str(c).lower() for c in wide.columns]
        return wide.reset_index()
    return eligibility


def eligibility_layers(eligibility, parcels, crs, *, simplify_m):
    table = _eligibility_table(eligibility)
    effects = [e for e in ELIGIBILITY_EFFECTS if e in table.columns]
    if not effects:
        raise InputError(
            "no eligibility column",
            source="eligibility",
            fix=f"add one of {', '.join(ELIGIBILITY_EFFECTS)} (or the columns effect and answer)",
        )
    if isinstance(table, gpd.GeoDataFrame) and table.geometry.notna().any():
        geo_rows = to_layer_crs(table, crs, name="eligibility")
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
    geo_rows, _ = usable_rows(geo_rows)
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
        encoded = encode_geometries(_prepare(sub, tolerance_m=simplify_m)) if len(sub) else []
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


def fold_answers(spec: dict, answers: pd.DataFrame) -> dict:
    """Put each parcel's eligibility answers into the parcel layer, for its one popup.

    Every parcel gets one character per dispositif (``y``/``p``/``n``/``u``, ``-`` when not
    answered) in slot 4 and, for ``partiellement``, the share in per mille in slot 6; the spec
    gets the dispositifs' names, references and the date evaluated.
    """
    if answers.empty or "idu" not in answers.columns:
        return {"parcels": 0, "effects": 0}
    rule_col = next(c for c in ("regle", "effect", "rule") if c in answers.columns)
    name_col = next((c for c in ("dispositif", "effet", "effect_label") if c in answers.columns), rule_col)
    rules = list(dict.fromkeys(answers[rule_col]))
    first = answers.drop_duplicates(rule_col).set_index(rule_col)
    pos = {r: k for k, r in enumerate(rules)}
    shares = answers["part"] if "part" in answers.columns else pd.Series(None, index=answers.index)
    codes: dict[str, list[str]] = {}
    parts: dict[str, dict[int, int]] = {}
    for idu, rule, verdict, share in zip(
        answers["idu"].astype(str), answers[rule_col], answers["verdict"], shares, strict=True
    ):
        row = codes.setdefault(idu, ["-"] * len(rules))
        code = _answer_code(verdict)
        row[pos[rule]] = code
        if code == "p" and share is not None and not pd.isna(share):
            parts.setdefault(idu, {})[pos[rule]] = int(round(float(share) * 1000))
    n = 0
    for prefix, entries in spec["groups"]:
        for p in entries:
            got = codes.get(prefix + p[0])
            if got is None:
                continue
            n += 1
            p[4] = "".join(got)
            while len(p) < 7:
                p.append(0)
            p[6] = parts.get(prefix + p[0], 0)
    spec["effects"] = [cell_text(first.at[r, name_col]) or cell_text(r) for r in rules]
    spec["references"] = [
        cell_text(first.at[r, "reference"]) if "reference" in first.columns else "" for r in rules
    ]
    spec["answers"] = _ANSWERS
    day = cell_text(first["date_evaluee"].iloc[0]) if "date_evaluee" in first.columns else ""
    spec["rulesDate"] = fmt.date_fr(day) if day else ""
    spec["rulesNote"] = "indicatif : ni rescrit fiscal, ni décision de l'Anah ou de la CDAC"
    return {"parcels": n, "effects": len(rules)}


# --------------------------------------------------------------------------------------------
# Orientation layers (offline): sections, buildings, lieux-dits, street names, parcel numbers

#: Zoom from which each kind of label appears (Leaflet zoom; 18 ≈ 1:2 000 on screen).
LABEL_ZOOM = {"section": 14, "lieu_dit": 14, "voie": 16, "parcelle": 18}
BUILDING_COLOUR = "#9a8f85"
SECTION_COLOUR = "#3d3d3d"
#: Fill of the part of a straddling parcel inside the ORT (the rest stays pale).
STRADDLING_INSIDE_COLOUR = "#f0b400"
DIFF_COLOURS = {"enters": "#2166ac", "leaves": "#d73027", "share_changed": "#8c510a"}
#: The perimeters before an avenant on the diff map (dashed): a magenta no perimeter, status or
#: change uses.
BEFORE_COLOUR = "#c51b7d"
DIFF_LABELS = {
    "enters": "entre dans le périmètre",
    "leaves": "sort du périmètre",
    "share_changed": "part modifiée",
}


def _label_items(points: np.ndarray, texts, min_zoom: int, *, angles=None, cls: str = "") -> list:
    """Label items ``[text, dx, dy, minZoom, angle, cls]`` from EPSG:4326 points (delta-coded)."""
    if len(points) == 0:
        return []
    xy = shapely.get_coordinates(points)
    ints = np.round(xy * _Q).astype(np.int64)
    deltas = np.diff(ints, axis=0, prepend=np.zeros((1, 2), np.int64))
    angles = np.zeros(len(points)) if angles is None else np.asarray(angles, dtype=float)
    return [
        [str(t), int(d[0]), int(d[1]), int(min_zoom), round(float(a), 1), cls]
        for t, d, a in zip(texts, deltas, angles, strict=True)
    ]


def sections_from_parcels(parcels: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Section outlines dissolved from the parcels (when the cadastre has no ``sections`` layer).

    Returns a GeoDataFrame (same metric CRS) with ``section_id`` (commune + prefixe + section)
    and ``section``.
    """
    usable, _ = usable_rows(parcels)
    if "idu" not in usable.columns or usable.empty:
        return gpd.GeoDataFrame({"section_id": [], "section": []}, geometry=[], crs=parcels.crs)
    key = usable["idu"].astype(str).str[:10]
    geoms = usable.geometry.to_numpy()
    out_ids, out_geoms = [], []
    for sid, idx in key.groupby(key).indices.items():
        # A small buffer closes the slivers between neighbouring parcels.
        out_geoms.append(shapely.union_all(shapely.buffer(geoms[idx], 0.05)).buffer(-0.05))
        out_ids.append(sid)
    gdf = gpd.GeoDataFrame({"section_id": out_ids}, geometry=out_geoms, crs=parcels.crs)
    gdf["section"] = gdf["section_id"].str[8:10]
    return gdf


def _section_text(value: str) -> str:
    return str(value).lstrip("0") or "0"


def sections_layers(sections, crs, simplify_m):
    gdf = to_layer_crs(sections, crs, name="sections")
    gdf, _ = usable_rows(gdf)
    code = _col(gdf, "section", "code")
    encoded = encode_geometries(_prepare(gdf, tolerance_m=max(simplify_m, 0.5)))
    spec = {
        "q": _Q,
        "kind": "outline",
        "pane": "ortperimetres",
        "styles": [{"color": SECTION_COLOUR, "weight": 1.6, "opacity": 0.75, "interactive": False}],
        "features": [[0, "", [], "", g, 0] for g in encoded],
    }
    pts = gpd.GeoSeries(gdf.geometry.representative_point(), crs=gdf.crs).to_crs(projection.WGS84).to_numpy()
    texts = [f"Section {_section_text(s)}" for s in (gdf[code] if code else [""] * len(gdf))]
    labels = {"q": _Q, "items": _label_items(pts, texts, LABEL_ZOOM["section"], cls="ort-section")}
    return (
        DataLayer("sections", "Sections cadastrales", "vector", spec),
        DataLayer("sections-noms", "Noms des sections", "labels", labels),
        len(gdf),
    )


def buildings_layer(buildings, crs, simplify_m):
    gdf = to_layer_crs(buildings, crs, name="batiments")
    gdf, _ = usable_rows(gdf)
    gdf = gdf[gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    # Buildings are small: a coarser tolerance keeps a commune's buildings within the map budget.
    spec = {
        "q": _Q,
        "style": {"color": "#6f655c", "weight": 0.4, "fillColor": BUILDING_COLOUR, "fillOpacity": 0.55},
        "geoms": encode_geometries(_prepare(gdf, tolerance_m=max(simplify_m, 0.6))),
    }
    return DataLayer("batiments", "Bâtiments", "fills", spec, show=False), len(gdf)


def lieux_dits_layer(lieux_dits, crs):
    gdf = to_layer_crs(lieux_dits, crs, name="lieux_dits")
    gdf, _ = usable_rows(gdf)
    name = _col(gdf, "nom", "name", "libelle")
    gdf = gdf[gdf[name].map(cell_text) != ""] if name else gdf.iloc[0:0]
    pts = gpd.GeoSeries(gdf.geometry.representative_point(), crs=gdf.crs).to_crs(projection.WGS84).to_numpy()
    texts = [cell_text(v) for v in gdf[name]] if name else []
    spec = {"q": _Q, "items": _label_items(pts, texts, LABEL_ZOOM["lieu_dit"], cls="ort-lieu-dit")}
    return DataLayer("lieux-dits", "Lieux-dits", "labels", spec), len(gdf)


def streets_layer(addresses, crs):
    streets = street_labels(addresses, crs)
    pts = streets.to_crs(projection.WGS84).geometry.to_numpy()
    # Screen angles go clockwise (CSS rotate): the map's y axis points down.
    spec = {
        "q": _Q,
        "items": _label_items(
            pts, streets["voie"], LABEL_ZOOM["voie"], angles=-streets["angle"], cls="ort-voie"
        ),
    }
    return DataLayer("voies", "Noms des voies (adresses)", "labels", spec), len(streets)


def straddling_parts_layer(parcels, classification, perims, simplify_m):
    """The part inside the ORT of each straddling parcel, filled (the parcel itself is pale)."""
    if classification is None:
        return None, 0
    c = classification
    sel = (
        c["perimeter_id"] == "ort" if (c["perimeter_id"] == "ort").any() else c["perimeter_type"] == "secteur"
    )
    idus = set(c.loc[sel & (c["status"] == STRADDLING), "idu"])
    zone_rows = (
        perims[perims["perimeter_id"] == "ort"]
        if (perims["perimeter_id"] == "ort").any()
        else perims[perims.get("type", pd.Series("secteur", index=perims.index)) == "secteur"]
    )
    if not idus or zone_rows.empty:
        return None, 0
    zone = shapely.union_all(zone_rows.geometry.to_numpy())
    sub = parcels[parcels["idu"].isin(idus)]
    parts = shapely.intersection(sub.geometry.to_numpy(), zone)
    parts = shapely.get_parts(parts)
    parts = parts[np.isin(shapely.get_type_id(parts), (3, 6))]
    gdf = gpd.GeoDataFrame(geometry=parts, crs=parcels.crs)
    gdf = gdf[gdf.area > 0.01]
    spec = {
        "q": _Q,
        "kind": "polygon",
        "pane": "ortparts",
        "styles": [
            {
                "stroke": False,
                "fillColor": STRADDLING_INSIDE_COLOUR,
                "fillOpacity": 0.75,
                "interactive": False,
            }
        ],
        "features": [[0, "", [], "", g, 0] for g in encode_geometries(_prepare(gdf, tolerance_m=simplify_m))],
    }
    return DataLayer("parts-incluses", "Parts incluses (à cheval)", "vector", spec), len(sub)


def _status(row: dict, side: str) -> str:
    """A diff row's status in one version (``status_before``…), else read from its share."""
    status = row.get(f"status_{side}")
    if status in _STATUS_CODE:
        return status
    share = float(row.get(f"share_{side}") or 0.0)
    return OUTSIDE if share <= 0 else INSIDE if share >= 1 else STRADDLING


def _versions(before, after) -> tuple[str, str]:
    """The names of the two versions compared (their ``version_libelle``), else avant / après."""
    name = lambda g: cell_text(getattr(g, "attrs", {}).get("version_libelle")) if g is not None else ""  # noqa: E731
    return name(before) or "version précédente", name(after) or "version en vigueur"


def diff_layers(diff, parcels, before, crs, simplify_m, *, after=None):
    """Parcels that enter, leave or change share (:func:`geo.diff.perimeter_diff`), and the old outlines.

    Each changed parcel × perimeter is drawn in the colour of its change; its popup gives the
    status and the share in each version. Where the map has the parcel layer, a click opens the
    parcel's full popup instead, whose "Changements" part (:func:`fold_diff`) lists every
    perimeter. The perimeters before the avenant are a dashed :data:`BEFORE_COLOUR` line above
    the changed parcels and the current outlines.
    """
    d = diff[diff["perimeter_id"] != "ort"] if (diff["perimeter_id"] != "ort").any() else diff
    geo_rows = parcels[["idu", parcels.geometry.name]].merge(d, on="idu")
    geo_rows = gpd.GeoDataFrame(geo_rows, geometry=parcels.geometry.name, crs=parcels.crs)
    was, now = _versions(before, after)
    order = list(DIFF_COLOURS)
    styles = [
        {"color": DIFF_COLOURS[k], "weight": 2.5, "fillColor": DIFF_COLOURS[k], "fillOpacity": 0.35}
        for k in order
    ]
    features = []
    encoded = encode_geometries(_prepare(geo_rows, tolerance_m=simplify_m)) if len(geo_rows) else []
    for row, geom in zip(geo_rows.to_dict("records"), encoded, strict=True):
        rows = [
            ["Périmètre", cell_text(row["perimeter_nom"])],
            ["Changement", DIFF_LABELS[row["change"]]],
            [f"Avant ({was})", STATUS_LABELS[_status(row, "before")]],
            ["Part incluse avant", fmt.percent(row["share_before"])],
            [f"Après ({now})", STATUS_LABELS[_status(row, "after")]],
            ["Part incluse après", fmt.percent(row["share_after"])],
        ]
        title = f"Parcelle {row['idu']}"
        features.append(
            [order.index(row["change"]), title, rows, f"{title} : {DIFF_LABELS[row['change']]}", geom, 0]
        )
    spec = {
        "q": _Q,
        "kind": "polygon",
        "pane": "ortpoints",
        "styles": styles,
        "features": features,
        # A click opens the parcel's full popup when the map has it (with every perimeter's change).
        "parcelIds": [str(i) for i in geo_rows["idu"]],
    }
    layers = [DataLayer("modifications", "Modifications de l'avenant", "vector", spec)]
    counts = d["change"].value_counts().to_dict()
    if before is not None:
        old = to_layer_crs(before, crs, name="before")
        old = old[old["type"] != "ort"] if "type" in old.columns else old
        # Dashed over the current outlines: where a boundary did not move, both colours alternate.
        line = {
            "color": BEFORE_COLOUR,
            "weight": 3.5,
            "dashArray": "10 8",
            "opacity": 1,
            "interactive": False,
        }
        ospec = {
            "q": _Q,
            "kind": "outline",
            "pane": "ortavant",  # above the changed parcels, below the popups
            "styles": [line],
            "features": [
                [0, "", [], "", g, 0] for g in encode_geometries(_prepare(old, tolerance_m=simplify_m))
            ],
        }
        layers.append(DataLayer("perimetres-avant", f"Périmètres avant l'avenant ({was})", "vector", ospec))
    return layers, counts


def fold_diff(spec: dict, diff: pd.DataFrame, before=None, after=None) -> int:
    """Put each changed parcel's before/after into the parcel layer, for its one popup.

    ``spec["changes"]`` maps an IDU to ``[perimeter, change, status before, share before ‰,
    status after, share after ‰]`` rows (status codes as the parcel layer's); returns how many
    parcels changed.
    """
    was, now = _versions(before, after)
    changes: dict[str, list] = {}
    ordered = diff.assign(_ort=diff["perimeter_id"] != "ort").sort_values("_ort", kind="stable")
    for row in ordered.to_dict("records"):
        changes.setdefault(str(row["idu"]), []).append(
            [
                cell_text(row["perimeter_nom"]),
                row["change"],
                _STATUS_CODE[_status(row, "before")],
                int(round(float(row["share_before"]) * 1000)),
                _STATUS_CODE[_status(row, "after")],
                int(round(float(row["share_after"]) * 1000)),
            ]
        )
    spec["changes"] = changes
    spec["changeHead"] = f"Changements : {was} → {now}"
    spec["changeLabels"] = dict(DIFF_LABELS)
    return len(changes)
