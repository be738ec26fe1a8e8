"""The printed annex of a convention: static maps (PNG 300 dpi, PDF) and parcel lists.

Drawn with matplotlib alone (no browser), in the territory's metric CRS so that the graphic
scale bar is exact: an overview of the convention, one page per perimeter (ORT sectors and
OPAH-RU), and on request one page centred on a parcel with at least 20 m around it. Each
page has a title, a legend, a graphic scale bar and the paper scale, a north arrow pointing to
true north (Lambert-93 grid north differs by the meridian convergence), the sources, the
mention :data:`geo.maps.page.CADASTRE_MENTION`, the cadastre millésime, the perimeter version and
its date, and the production date. Each perimeter's parcel list goes beside it as CSV and XLSX.

:func:`annex_pages` computes the figures and tables; :func:`write_annex` writes them
(atomically, never over existing files unless ``force``).
"""

from __future__ import annotations

import datetime as dt
import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrow, Patch, Rectangle
from pyproj import Transformer

from geo import fmt, projection
from geo.classify import INSIDE, OUTSIDE, STATUS_LABELS, STRADDLING, classify_parcels
from geo.errors import InputError
from geo.maps.page import CADASTRE_MENTION, STATUS_COLOURS, perimeter_colours

#: Paper sizes in millimetres (portrait width, height).
PAPER_MM = {"A4": (210.0, 297.0), "A3": (297.0, 420.0)}
ORIENTATIONS = ("portrait", "landscape")
DPI = 300
_ORIENTATION_FR = {"portrait": "portrait", "landscape": "paysage"}
#: Minimum margin around a single parcel, in metres.
PARCEL_MARGIN_M = 20.0
_MM = 1 / 25.4
_RC = {
    "pdf.fonttype": 42,  # TrueType: the PDF's text can be searched and extracted
    "font.family": "DejaVu Sans",
    "text.usetex": False,
}


@dataclass
class AnnexPage:
    """One page of the annex: ``name`` (file stem), its title and its figure."""

    name: str
    title: str
    figure: Figure


@dataclass
class Annex:
    """The pages of an annex and the parcel list of each perimeter (``tables[perimeter_id]``)."""

    pages: list[AnnexPage]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: Provenance line printed above the parcel lists (convention, version, date, cadastre).
    source: str | None = None


def _plain(text: object) -> str:
    # "$" would switch matplotlib to mathtext: show data text as it is.
    return str(text).replace("$", r"\$")


def _fmt_int(value: float) -> str:
    return f"{value:,.0f}".replace(",", "\u202f")


def _nice_length(target_m: float) -> float:
    """The largest 1, 2 or 5 × 10^k metres not above ``target_m``."""
    exp = math.floor(math.log10(max(target_m, 1e-9)))
    for mult in (5, 2, 1):
        if mult * 10**exp <= target_m:
            return float(mult * 10**exp)
    return float(10**exp)


def _scale_label(metres: float) -> str:
    return f"{metres / 1000:g} km" if metres >= 1000 else f"{metres:g} m"


def _paper_size(paper: str, orientation: str) -> tuple[float, float]:
    if paper not in PAPER_MM:
        raise InputError(f"unknown paper format {paper!r}", fix="use A4 or A3")
    if orientation not in ORIENTATIONS:
        raise InputError(f"unknown orientation {orientation!r}", fix="use portrait or landscape")
    w, h = PAPER_MM[paper]
    return (h, w) if orientation == "landscape" else (w, h)


def _fit_extent(bounds, ax_w_mm: float, ax_h_mm: float, margin_m: float) -> tuple[float, float, float, float]:
    """Expand ``bounds`` (metres) by ``margin_m`` and to the axes' aspect ratio."""
    minx, miny, maxx, maxy = bounds
    minx, miny, maxx, maxy = minx - margin_m, miny - margin_m, maxx + margin_m, maxy + margin_m
    w, h = maxx - minx, maxy - miny
    ratio = ax_w_mm / ax_h_mm
    if w / h < ratio:
        extra = (h * ratio - w) / 2
        minx, maxx = minx - extra, maxx + extra
    else:
        extra = (w / ratio - h) / 2
        miny, maxy = miny - extra, maxy + extra
    return minx, miny, maxx, maxy


def _north_angle(crs, x: float, y: float) -> float:
    """Angle (radians, counter-clockwise from the page's up) of true north at ``(x, y)`` metres."""
    to_ll = Transformer.from_crs(crs, projection.WGS84, always_xy=True)
    to_xy = Transformer.from_crs(projection.WGS84, crs, always_xy=True)
    lon, lat = to_ll.transform(x, y)
    x2, y2 = to_xy.transform(lon, lat + 0.01)
    return math.atan2(-(x2 - x), y2 - y)


class _Page:
    """Layout of one page in millimetres: header, map frame, side or bottom panel, footer."""

    def __init__(self, paper: str, orientation: str):
        self.w, self.h = _paper_size(paper, orientation)
        self.paper, self.orientation = paper, orientation
        # Whole pixels at 300 dpi: A4 is 3508 × 2480 px, A3 4961 × 3508 px.
        size = (round(self.w * _MM * DPI) / DPI, round(self.h * _MM * DPI) / DPI)
        self.fig = Figure(figsize=size, dpi=DPI)
        m, head, foot = 10.0, 22.0, 16.0
        if orientation == "landscape":
            panel_w = 78.0
            self.map_box = (m, m + foot, self.w - 3 * m / 2 - panel_w - m / 2, self.h - 2 * m - head - foot)
            self.panel_box = (self.w - m - panel_w, m + foot, panel_w, self.h - 2 * m - head - foot)
        else:
            panel_h = 62.0
            top = self.h - m - head
            self.map_box = (m, m + foot + panel_h + 4, self.w - 2 * m, top - (m + foot + panel_h + 4))
            self.panel_box = (m, m + foot, self.w - 2 * m, panel_h)
        self.head_y = self.h - m
        self.margin = m

    def axes(self, box):
        x, y, w, h = box
        return self.fig.add_axes((x / self.w, y / self.h, w / self.w, h / self.h))

    def text(self, x_mm: float, y_mm: float, s: str, **kw):
        return self.fig.text(x_mm / self.w, y_mm / self.h, s, **kw)


def _draw_scale_bar(ax, extent, map_w_mm: float) -> tuple[float, int]:
    """Graphic scale bar in the lower left of the map; returns (bar length m, paper scale 1:N)."""
    minx, miny, maxx, maxy = extent
    width_m = maxx - minx
    length = _nice_length(width_m / 4)
    x0, y0 = minx + width_m * 0.03, miny + (maxy - miny) * 0.04
    hgt = (maxy - miny) * 0.012
    ax.add_patch(
        Rectangle(
            (x0 - width_m * 0.012, y0 - hgt * 1.4),
            length + width_m * 0.024,
            hgt * 5.2,
            facecolor="white",
            alpha=0.85,
            edgecolor="none",
            zorder=20,
        )
    )
    for k in range(4):
        ax.add_patch(
            Rectangle(
                (x0 + k * length / 4, y0),
                length / 4,
                hgt,
                facecolor="black" if k % 2 == 0 else "white",
                edgecolor="black",
                linewidth=0.6,
                zorder=21,
            )
        )
    for frac, label in ((0, "0"), (0.5, _scale_label(length / 2).split()[0]), (1, _scale_label(length))):
        ax.text(x0 + frac * length, y0 + hgt * 1.6, label, ha="center", va="bottom", fontsize=6.5, zorder=22)
    denom = width_m * 1000 / map_w_mm
    return length, int(_round_scale(denom))


def _round_scale(denom: float) -> float:
    exp = 10 ** math.floor(math.log10(denom))
    return round(denom / exp * 4) / 4 * exp if denom >= 100 else round(denom)


def _draw_north(ax, extent, angle: float) -> None:
    minx, miny, maxx, maxy = extent
    size = (maxy - miny) * 0.07
    cx, cy = maxx - (maxx - minx) * 0.05, maxy - (maxy - miny) * 0.05 - size
    dx, dy = -math.sin(angle) * size, math.cos(angle) * size
    ax.add_patch(
        FancyArrow(
            cx - dx / 2,
            cy - dy / 2,
            dx,
            dy,
            width=size * 0.12,
            head_width=size * 0.4,
            head_length=size * 0.4,
            length_includes_head=True,
            color="black",
            zorder=22,
        )
    )
    ax.text(
        cx + dx * 0.75, cy + dy * 0.75, "N", ha="center", va="center", fontsize=10, weight="bold", zorder=22
    )


def _sources_lines(perims, parcels, day: dt.date, convention: str, fictif: bool) -> list[str]:
    a = perims.attrs
    version = a.get("version_libelle") or a.get("version") or "non précisée"
    lines = [
        f"Convention : {convention}" + (" — COMMUNE FICTIVE (démonstration)" if fictif else ""),
        f"Périmètres : version « {version} »"
        + (f" du {fmt.date_fr(a['version_date'])}" if a.get("version_date") else ""),
        f"Cadastre : DGFiP, édition Etalab, millésime {parcels.attrs.get('millesime') or 'inconnu'}",
        f"Production : {fmt.date_fr(day)} (ort)",
    ]
    return lines


def _panel(page: _Page, handles, lines: list[str], extra: list[str] | None = None) -> None:
    ax = page.axes(page.panel_box)
    ax.set_axis_off()
    x, y, w, h = page.panel_box
    chars = max(int((w if page.orientation == "landscape" else w * 0.47) / 1.75), 30)
    if page.orientation == "landscape":
        # Below the legend: about 4.3 mm per 7-point entry, plus the title.
        text_top = max(1.0 - (len(handles) + 2) * 4.3 / h, 0.25)
    else:
        text_top = 1.0
    leg = ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(0, 1),
        frameon=False,
        fontsize=7,
        title="Légende",
        title_fontsize=8.5,
        alignment="left",
        ncol=1,
    )
    leg._legend_box.align = "left"
    text = []
    for line in (extra or []) + ["", "Sources :"] + lines:
        text += textwrap.wrap(_plain(line), chars) or [""]
    tx = 0.0 if page.orientation == "landscape" else 0.52
    ax.text(
        tx,
        text_top,
        "\n".join(text),
        va="top",
        ha="left",
        fontsize=6.5,
        transform=ax.transAxes,
        linespacing=1.35,
    )


def _header(page: _Page, title: str, subtitle: str, fictif: bool) -> None:
    m = page.margin
    page.text(m, page.head_y, _plain(title), fontsize=15, weight="bold", va="top", ha="left")
    page.text(m, page.head_y - 8, _plain(subtitle), fontsize=10.5, va="top", ha="left", color="#333333")
    if fictif:
        landscape = page.orientation == "landscape"
        page.text(
            page.w - m if landscape else m,
            page.head_y if landscape else page.head_y - 14,
            "COMMUNE FICTIVE — données de démonstration",
            fontsize=9,
            weight="bold",
            color="#b00020",
            va="top",
            ha="right" if landscape else "left",
        )


def _footer(page: _Page, scale: int, length: float, day: dt.date, crs_label: str) -> None:
    m = page.margin
    page.text(m, m + 9, CADASTRE_MENTION, fontsize=8, va="top", ha="left")
    page.text(
        m,
        m + 4,
        f"Échelle 1:{_fmt_int(scale)} (impression {page.paper} {_ORIENTATION_FR[page.orientation]}) — "
        f"barre d'échelle "
        f"{_scale_label(length)} — projection {crs_label}",
        fontsize=7,
        va="top",
        ha="left",
        color="#333333",
    )
    page.text(
        page.w - m, m + 4, f"Produit le {fmt.date_fr(day)}", fontsize=7, va="top", ha="right", color="#333333"
    )


def _crs_label(crs) -> str:
    from pyproj import CRS

    c = CRS.from_user_input(crs)
    return "Lambert-93 (EPSG:2154)" if c.to_epsg() == 2154 else c.name


def _status_for(classification: pd.DataFrame, perimeter_id: str) -> pd.Series:
    rows = classification[classification["perimeter_id"] == perimeter_id]
    return rows.set_index("idu")["status"]


def _plot_parcels(ax, parcels, status: pd.Series | None, extent, *, lw: float) -> None:
    minx, miny, maxx, maxy = extent
    idx = parcels.sindex.query(shapely.box(minx, miny, maxx, maxy), predicate="intersects")
    view = parcels.iloc[np.sort(idx)]
    if view.empty:
        return
    st = status.reindex(view["idu"]).fillna(OUTSIDE).to_numpy() if status is not None else None
    colours = (
        np.array([STATUS_COLOURS.get(s, STATUS_COLOURS[OUTSIDE]) for s in st])
        if st is not None
        else np.full(len(view), STATUS_COLOURS[OUTSIDE])
    )
    view.plot(ax=ax, color=colours, edgecolor="#6b6b6b", linewidth=lw, zorder=1)


def _label_parcels(ax, parcels, extent, map_w_mm: float, *, only: set[str] | None = None) -> None:
    """Write "section numéro" on the parcels wide enough to hold it on paper."""
    minx, miny, maxx, maxy = extent
    mm_per_m = map_w_mm / (maxx - minx)
    idx = parcels.sindex.query(shapely.box(minx, miny, maxx, maxy), predicate="intersects")
    view = parcels.iloc[np.sort(idx)]
    if only is not None:
        view = view[view["idu"].isin(only)]
    view = view[np.sqrt(view.geometry.area.to_numpy()) * mm_per_m >= 4.0]
    if view.empty:
        return
    geoms = view.geometry.to_numpy()
    pts = shapely.point_on_surface(geoms)
    # Width available around the label point: twice its distance to the parcel's boundary.
    room_mm = 2 * shapely.distance(pts, shapely.boundary(geoms)) * mm_per_m
    font = 4.5
    for idu, pt, room in zip(view["idu"].astype(str), pts, room_mm, strict=True):
        label = f"{idu[8:10].lstrip('0') or '0'} {int(idu[10:])}" if len(idu) == 14 else idu
        width_mm = len(label) * font * 0.55 * 25.4 / 72
        if room < 0.7 * width_mm or not (minx <= pt.x <= maxx and miny <= pt.y <= maxy):
            continue
        ax.text(pt.x, pt.y, label, fontsize=font, ha="center", va="center", color="#222222", zorder=6)


def _plot_perimeters(ax, drawn, styles, *, highlight: str | None = None) -> list:
    handles = []
    for _, row in drawn.iterrows():
        s = styles[row["perimeter_id"]]
        dashed = "dashArray" in s
        lw = (2.4 if row["perimeter_id"] == highlight else 1.4) * (1.3 if s["weight"] >= 4 else 1.0)
        gpd.GeoSeries([row.geometry], crs=drawn.crs).boundary.plot(
            ax=ax, color=s["color"], linewidth=lw, linestyle=(0, (5, 3)) if dashed else "-", zorder=5
        )
        label = str(row.get("nom") or row["perimeter_id"])
        if row.get("type") == "secteur" and bool(row.get("centre_ville")):
            label += " (centre-ville)"
        elif row.get("type") == "opah_ru":
            label += " (OPAH-RU)"
        handles.append(
            Line2D(
                [], [], color=s["color"], linewidth=lw, linestyle="--" if dashed else "-", label=_plain(label)
            )
        )
    return handles


def _status_handles(counts: dict[str, int] | None, what: str) -> list:
    out = []
    for key, label in ((INSIDE, "incluse"), (STRADDLING, "à cheval"), (OUTSIDE, "hors périmètre")):
        n = f" ({_fmt_int(counts.get(key, 0))})" if counts is not None else ""
        out.append(Patch(facecolor=STATUS_COLOURS[key], edgecolor="#6b6b6b", label=f"Parcelle {label}{n}"))
    out.insert(0, Line2D([], [], linestyle="none", label=f"Statut des parcelles / {_plain(what)} :"))
    return out


def _map_page(
    *,
    paper,
    orientation,
    title,
    subtitle,
    fictif,
    bounds,
    margin_m,
    parcels,
    status,
    drawn,
    styles,
    highlight,
    status_of,
    counts,
    sources,
    day,
    crs,
    label_only=None,
    target=None,
    extra_lines=None,
):
    page = _Page(paper, orientation)
    _header(page, title, subtitle, fictif)
    ax = page.axes(page.map_box)
    extent = _fit_extent(bounds, page.map_box[2], page.map_box[3], margin_m)
    ax.set_xlim(extent[0], extent[2])
    ax.set_ylim(extent[1], extent[3])
    ax.set_aspect("equal", adjustable="box")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    for spine in ax.spines.values():
        spine.set_linewidth(0.8)
    map_w_mm = page.map_box[2]
    lw = 0.15 if (extent[2] - extent[0]) > 2500 else 0.3
    _plot_parcels(ax, parcels, status, extent, lw=lw)
    handles = _plot_perimeters(ax, drawn, styles, highlight=highlight)
    if target is not None:
        gpd.GeoSeries([target], crs=parcels.crs).boundary.plot(
            ax=ax, color="#0033cc", linewidth=2.2, zorder=7
        )
        handles.append(Line2D([], [], color="#0033cc", linewidth=2.2, label="Parcelle étudiée"))
    _label_parcels(ax, parcels, extent, map_w_mm, only=label_only)
    ax.set_xlim(extent[0], extent[2])
    ax.set_ylim(extent[1], extent[3])
    ax.set_xlabel("")
    ax.set_ylabel("")
    length, scale = _draw_scale_bar(ax, extent, map_w_mm)
    _draw_north(ax, extent, _north_angle(crs, (extent[0] + extent[2]) / 2, (extent[1] + extent[3]) / 2))
    _footer(page, scale, length, day, _crs_label(crs))
    _panel(page, handles + _status_handles(counts, status_of), sources, extra_lines)
    return page.fig


def _parcel_table(classification: pd.DataFrame, parcels: gpd.GeoDataFrame, perimeter_id: str) -> pd.DataFrame:
    rows = classification[
        (classification["perimeter_id"] == perimeter_id) & (classification["status"] != OUTSIDE)
    ]
    cols = [c for c in ("idu", "code_insee", "section", "numero", "contenance") if c in parcels.columns]
    out = pd.DataFrame(parcels[cols]).merge(rows, on="idu", how="inner")
    out.insert(out.columns.get_loc("status") + 1, "statut", out["status"].map(STATUS_LABELS))
    keep = [c for c in out.columns if c not in ("distance_m",)]
    return out[keep].sort_values("idu").reset_index(drop=True)


def annex_pages(
    perimeters: gpd.GeoDataFrame,
    parcels: gpd.GeoDataFrame,
    *,
    classification: pd.DataFrame | None = None,
    title: str = "",
    fictif: bool = False,
    paper: str = "A4",
    orientation: str = "landscape",
    parcel: str | None = None,
    production_date: dt.date | None = None,
) -> Annex:
    """Compute the annex of a convention: overview, one page per perimeter, an optional parcel page.

    Parameters
    ----------
    perimeters : GeoDataFrame
        Perimeters in force (``perimeter_id``, ``type``, ``nom``, ``centre_ville``), metric CRS
        (metres); ``attrs`` give the version and its date. The ``ort`` union row gets no page.
    parcels : GeoDataFrame
        Parcels (``idu``, ``section``, ``numero``, ``contenance``) in the same metric CRS;
        ``attrs["millesime"]`` is printed.
    classification : DataFrame, optional
        :func:`geo.classify.classify_parcels` result; computed when missing.
    title : str
        Title of every page (the convention's name).
    fictif : bool
        Print "COMMUNE FICTIVE" on every page.
    paper : {"A4", "A3"}
    orientation : {"portrait", "landscape"}
    parcel : str, optional
        A 14-character IDU: add a page centred on it, with at least 20 m around it.
    production_date : date, optional
        Printed date (default: today).

    Returns
    -------
    Annex
        Pages (matplotlib figures, not yet written) and one parcel table per perimeter.
    """
    from matplotlib import rc_context

    with rc_context(_RC):
        return _annex_pages(
            perimeters,
            parcels,
            classification=classification,
            title=title,
            fictif=fictif,
            paper=paper,
            orientation=orientation,
            parcel=parcel,
            production_date=production_date,
        )


def _annex_pages(
    perimeters, parcels, *, classification, title, fictif, paper, orientation, parcel, production_date
):
    _paper_size(paper, orientation)
    crs = projection.require_metric(perimeters, source="perimeters")
    projection.require_same_crs(("perimeters", perimeters), ("parcels", parcels))
    day = production_date or dt.date.today()
    drawn = perimeters[perimeters["type"] != "ort"].reset_index(drop=True)
    if drawn.empty:
        raise InputError("no perimeter to draw", fix="check the date: no perimeter is in force then")
    if classification is None:
        classification = classify_parcels(parcels, perimeters, with_distance=False)
    styles = perimeter_colours(drawn)
    convention = title or perimeters.attrs.get("convention") or "Convention ORT"
    sources = _sources_lines(perimeters, parcels, day, convention, fictif)
    common = dict(
        paper=paper, orientation=orientation, title=convention, fictif=fictif, parcels=parcels,
        drawn=drawn, styles=styles, sources=sources, day=day, crs=crs,
    )  # fmt: skip
    ort_id = "ort" if (perimeters["perimeter_id"] == "ort").any() else None
    pages, tables = [], {}
    status = _status_for(classification, ort_id) if ort_id else None
    counts = status.value_counts().to_dict() if status is not None else None
    bounds = drawn.total_bounds
    margin = max(0.06 * max(bounds[2] - bounds[0], bounds[3] - bounds[1]), PARCEL_MARGIN_M)
    in_ort = set(status.index[status != OUTSIDE]) if status is not None else set()
    fig = _map_page(
        subtitle="Vue d'ensemble des périmètres",
        bounds=bounds,
        margin_m=margin,
        status=status,
        highlight=None,
        status_of="ORT",
        counts=counts,
        label_only=in_ort,
        **common,
    )
    pages.append(AnnexPage("00-ensemble", "Vue d'ensemble", fig))
    for k, row in enumerate(drawn.itertuples(index=False), start=1):
        pid = row.perimeter_id
        st = _status_for(classification, pid)
        b = row.geometry.bounds
        margin = max(0.05 * max(b[2] - b[0], b[3] - b[1]), PARCEL_MARGIN_M)
        kind = "Périmètre OPAH-RU" if row.type == "opah_ru" else "Secteur d'intervention"
        table = _parcel_table(classification, parcels, pid)
        tables[pid] = table
        n_in = int((table["status"] == INSIDE).sum())
        n_st = int((table["status"] == STRADDLING).sum())
        area_ha = f"{row.geometry.area / 10_000:.2f}".replace(".", ",")
        extra = [
            f"{kind} « {row.nom} » : {area_ha} ha ; {n_in} parcelle(s) incluse(s), "
            f"{n_st} à cheval (liste : parcelles-{pid}.csv / .xlsx)"
        ]
        fig = _map_page(
            subtitle=f"{kind} : {row.nom}",
            bounds=b,
            margin_m=margin,
            status=st,
            highlight=pid,
            status_of=str(row.nom),
            counts=st.value_counts().to_dict(),
            label_only=set(table["idu"]),
            extra_lines=extra,
            **common,
        )
        pages.append(AnnexPage(f"{k:02d}-{pid}", f"{kind} : {row.nom}", fig))
    if parcel is not None:
        pages.append(_parcel_page(parcel, classification, drawn, status, counts, common))
    return Annex(pages, tables, source=" ; ".join(sources[:3]))


def _parcel_page(parcel, classification, drawn, status, counts, common) -> AnnexPage:
    from geo.idu import parse_idu

    parcels = common["parcels"]
    pid = parse_idu(parcel)
    match = parcels[parcels["idu"] == pid.idu]
    if match.empty:
        raise InputError(
            f"parcel {pid.idu} is not in the cadastre "
            f"(millésime {parcels.attrs.get('millesime', 'inconnu')})",
            feature=pid.idu,
            fix="check the id with `ort check`",
        )
    geom = match.geometry.iloc[0]
    b = geom.bounds
    size = max(b[2] - b[0], b[3] - b[1])
    margin = max(PARCEL_MARGIN_M, 0.25 * size)
    rows = classification[(classification["idu"] == pid.idu)]
    names = dict(zip(drawn["perimeter_id"], drawn["nom"], strict=True))
    extra = [f"Parcelle {pid.idu} — section {pid.label}"]
    cont = match["contenance"].iloc[0] if "contenance" in match.columns else None
    if cont is not None and not pd.isna(cont):
        extra.append(f"Contenance cadastrale : {_fmt_int(cont)} m²")
    for r in rows.itertuples(index=False):
        if r.perimeter_id == "ort" or r.perimeter_id in names:
            label = "ORT (ensemble)" if r.perimeter_id == "ort" else names[r.perimeter_id]
            share = f"{r.share * 100:.1f} %".replace(".", ",")
            extra.append(f"{label} : {STATUS_LABELS[r.status]} ({share})")
    extra.append(f"Marge autour de la parcelle : au moins {margin:.0f} m")
    fig = _map_page(
        subtitle=f"Parcelle {pid.label} ({pid.idu})",
        bounds=b,
        margin_m=margin,
        status=status,
        highlight=None,
        status_of="ORT",
        counts=None,
        target=geom,
        extra_lines=extra,
        **common,
    )
    return AnnexPage(f"parcelle-{pid.idu}", f"Parcelle {pid.label}", fig)


def _page_names(perimeter_ids: list[str], parcel: str | None) -> list[str]:
    names = ["00-ensemble"] + [f"{k:02d}-{pid}" for k, pid in enumerate(perimeter_ids, start=1)]
    return names + ([f"parcelle-{parcel}"] if parcel else [])


def _file_names(page_names: list[str], perimeter_ids) -> list[str]:
    """File names of an annex; ids become part of names only when they follow the slug rule."""
    from geo.io import safe_name

    names = [f"{name}.png" for name in page_names] + ["annexe.pdf"]
    for pid in perimeter_ids:
        safe_name(pid, what="l'id de périmètre")
        names += [f"parcelles-{pid}.csv", f"parcelles-{pid}.xlsx"]
    return names


def annex_files(perimeters: pd.DataFrame, out_dir: str | Path, *, parcel: str | None = None) -> list[Path]:
    """The files the annex of ``perimeters`` will be written to (to check them before computing)."""
    from geo.io import path_inside, safe_name

    ids = [str(i) for i, t in zip(perimeters["perimeter_id"], perimeters["type"], strict=True) if t != "ort"]
    for pid in ids:
        safe_name(pid, what="l'id de périmètre")
    return [path_inside(out_dir, n) for n in _file_names(_page_names(ids, parcel), ids)]


def annex_outputs(annex: Annex, out_dir: str | Path) -> list[Path]:
    """The files :func:`write_annex` writes for ``annex``."""
    from geo.io import path_inside

    for pid in annex.tables:
        path_inside(out_dir, f"parcelles-{pid}.csv")
    return [path_inside(out_dir, n) for n in _file_names([p.name for p in annex.pages], annex.tables)]


def write_annex(annex: Annex, out_dir: str | Path, *, force: bool = False) -> list[Path]:
    """Write each page as PNG (300 dpi), all pages as one PDF, each parcel list as CSV and XLSX.

    Nothing is written when one of the outputs exists and ``force`` is false; with ``force``, only
    files this tool wrote before (listed in the folder's ``_manifest.json``) are replaced. Every
    path is checked to stay inside ``out_dir``.

    Returns
    -------
    list of Path
        The files written.
    """
    from matplotlib import rc_context
    from matplotlib.backends.backend_pdf import PdfPages

    from geo.io import atomic_path, check_folder_files, record_folder_files, write_table

    paths = annex_outputs(annex, out_dir)
    check_folder_files(out_dir, [p.name for p in paths], force=force)
    out = Path(out_dir)
    written = []
    with rc_context(_RC):
        for page in annex.pages:
            path = out / f"{page.name}.png"
            with atomic_path(path, force=force) as tmp:
                page.figure.savefig(tmp, format="png", dpi=DPI, metadata={"Software": "ort"})
            written.append(path)
        pdf = out / "annexe.pdf"
        with atomic_path(pdf, force=force) as tmp:
            with PdfPages(tmp, metadata={"Creator": "ort", "Title": annex.pages[0].title}) as doc:
                for page in annex.pages:
                    doc.savefig(page.figure)
        written.append(pdf)
    from geo.columns import PARCELS

    for pid, table in annex.tables.items():
        nom = table["perimeter_nom"].iloc[0] if len(table) and "perimeter_nom" in table else pid
        title = f"{nom} — parcelles incluses ou à cheval"
        for suffix in ("csv", "xlsx"):
            path = out / f"parcelles-{pid}.{suffix}"
            written.append(
                write_table(table, path, force=force, layout=PARCELS, title=title, source=annex.source)
            )
    record_folder_files(out, [p.name for p in written], command="annex")
    return written
