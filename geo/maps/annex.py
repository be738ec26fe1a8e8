"""The printed annex of a convention: static maps (PNG 300 dpi, PDF) and parcel lists.

Drawn with matplotlib alone (no browser), in the territory's metric CRS so that the graphic
scale bar is exact: an overview of the convention, one page per perimeter (ORT sectors and
OPAH-RU, with its period), each followed in the PDF by its parcel list as a table (Section |
N° | Contenance | Part incluse), and on request one page centred on a parcel with at least
20 m around it. A page is meant to be signed: a round paper scale (1:1 000, 1:2 000,
1:2 500, 1:5 000…, :data:`SCALES`) with its graphic bar, a north arrow on a white backing
pointing to true north (Lambert-93 grid north differs by the meridian convergence), a
situation inset of the sector in the commune, the annex number, the convention reference and
date and the page number on every page, the sources, the mention
:data:`geo.maps.page.CADASTRE_MENTION`, the cadastre millésime, the perimeter version and its
date, and the production date. Straddling parcels are pale and hatched, their part inside
filled, with their share; holes in a sector are hatched and explained in the legend.
Orientation layers (sections, buildings, lieux-dits, street names) and a background
(:mod:`geo.maps.tiles`, fetched once into the cache; without network the page says so) are
optional. Each perimeter's parcel list also goes beside the PDF as CSV and XLSX.

:func:`annex_pages` computes the figures and tables; :func:`diff_annex` the page of an
avenant (:mod:`geo.diff`); :func:`write_annex` writes them (atomically, never over existing
files unless ``force``).
"""

from __future__ import annotations

import datetime as dt
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from geo import fmt, projection
from geo.classify import INSIDE, OUTSIDE, STATUS_LABELS, STRADDLING, classify_parcels
from geo.errors import InputError
from geo.maps.drawing import (
    PARCEL_MARGIN_M,
    SCALES,  # noqa: F401 - re-exported: the scales an annex page may use
    STRADDLING_PALE,
    draw_inset,
    draw_north,
    draw_scale_bar,
    fmt_int,
    in_view,
    label_parcels,
    label_places,
    north_angle,
    plot_parcels,
    plot_perimeters,
    round_scale,
    scale_label,
    section_key,
)
from geo.maps.style import CADASTRE_MENTION, STATUS_COLOURS, perimeter_colours
from geo.maps.text import clean_text, mpl_text, short_name

#: Paper sizes in millimetres (portrait width, height).
PAPER_MM = {"A4": (210.0, 297.0), "A3": (297.0, 420.0)}
ORIENTATIONS = ("portrait", "landscape")
DPI = 300
_ORIENTATION_FR = {"portrait": "portrait", "landscape": "paysage"}
_MM = 1 / 25.4
_RC = {
    "pdf.fonttype": 42,  # TrueType: the PDF's text can be searched and extracted
    "font.family": "DejaVu Sans",
    "text.usetex": False,
}


@dataclass
class AnnexPage:
    """One page of the annex: ``name`` (file stem), its title and its figure.

    ``png`` is false for the pages only in the PDF (parcel list tables).
    """

    name: str
    title: str
    figure: Figure
    png: bool = True


@dataclass
class Annex:
    """The pages of an annex and the parcel list of each perimeter (``tables[perimeter_id]``)."""

    pages: list[AnnexPage]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: Provenance line printed above the parcel lists (convention, version, date, cadastre).
    source: str | None = None
    #: Things the reader must know (background unavailable offline...), also printed on pages.
    notices: list[str] = field(default_factory=list)
    #: Name of the PDF file.
    pdf_name: str = "annexe.pdf"


_plain = mpl_text  # text from data: cleaned, and "$" shown as it is (not mathtext)


def _paper_size(paper: str, orientation: str) -> tuple[float, float]:
    if paper not in PAPER_MM:
        raise InputError(f"format de papier {paper!r} inconnu", fix="choisissez A4 ou A3")
    if orientation not in ORIENTATIONS:
        raise InputError(f"orientation {orientation!r} inconnue", fix="choisissez portrait ou landscape")
    w, h = PAPER_MM[paper]
    return (h, w) if orientation == "landscape" else (w, h)


class _Page:
    """Layout of one page in millimetres: header, map frame, side or bottom panel, footer."""

    def __init__(self, paper: str, orientation: str):
        self.w, self.h = _paper_size(paper, orientation)
        self.paper, self.orientation = paper, orientation
        # Whole pixels at 300 dpi: A4 is 3508 × 2480 px, A3 4961 × 3508 px.
        size = (round(self.w * _MM * DPI) / DPI, round(self.h * _MM * DPI) / DPI)
        self.fig = Figure(figsize=size, dpi=DPI)
        m, head, foot = 10.0, 22.0, 20.0
        if orientation == "landscape":
            panel_w = 78.0
            self.map_box = (m, m + foot, self.w - 3 * m / 2 - panel_w - m / 2, self.h - 2 * m - head - foot)
            inset_h = 36.0
            self.inset_box = (self.w - m - panel_w, m + foot, panel_w, inset_h)
            self.panel_box = (
                self.w - m - panel_w,
                m + foot + inset_h + 7,
                panel_w,
                self.h - 2 * m - head - foot - inset_h - 7,
            )
        else:
            panel_h = 66.0
            top = self.h - m - head
            self.map_box = (m, m + foot + panel_h + 4, self.w - 2 * m, top - (m + foot + panel_h + 4))
            self.panel_box = (m, m + foot, self.w - 2 * m - 56, panel_h)
            self.inset_box = (self.w - m - 52, m + foot, 52, panel_h)
        self.head_y = self.h - m
        self.margin = m

    def axes(self, box):
        x, y, w, h = box
        return self.fig.add_axes((x / self.w, y / self.h, w / self.w, h / self.h))

    def text(self, x_mm: float, y_mm: float, s: str, **kw):
        return self.fig.text(x_mm / self.w, y_mm / self.h, s, **kw)


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


#: Signature boxes of an annex page when the convention names none (``[edition] visas``).
DEFAULT_VISAS = ("Pour la commune", "Pour l'État")
_PT_MM = 25.4 / 72


def visa_line(convention: str, day: dt.date | None) -> str:
    """ "Vu pour être annexé à la convention « … » du …" (dots to fill in without a date)."""
    when = fmt.date_fr(day) if day is not None else "……………………"
    return f"Vu pour être annexé à la convention « {short_name(convention, 80)} » du {when}"


def _measure_mm(page: _Page, artist) -> tuple[float, float, float, float]:
    """Bounding box of a drawn artist in page millimetres (x0, y0, x1, y1)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = page.fig.canvas if hasattr(page.fig.canvas, "get_renderer") else FigureCanvasAgg(page.fig)
    b = artist.get_window_extent(canvas.get_renderer())
    k = 25.4 / page.fig.dpi
    return b.x0 * k, b.y0 * k, b.x1 * k, b.y1 * k


def _panel(
    page: _Page, handles, lines: list[str], extra: list[str] | None = None, visa: tuple | None = None
) -> None:
    """The side (landscape) or bottom (portrait) panel: legend, notes and sources, and the visa
    line with its signature boxes at the bottom, laid out so that nothing overlaps: the legend is
    measured, the text below it gets smaller (down to 5 pt) then is cut with "…" to fit above
    the visa, itself above the situation inset."""
    x, y, w, h = page.panel_box
    landscape = page.orientation == "landscape"
    ax = page.axes(page.panel_box)
    ax.set_axis_off()
    leg = ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(2.5 / w, 1),
        frameon=False,
        fontsize=6.6,
        title="Légende",
        title_fontsize=8,
        alignment="left",
        ncol=1,
        handlelength=2.2,
        borderaxespad=0.0,
        borderpad=0.0,
    )
    leg._legend_box.align = "left"
    leg.set_gid("panel-legend")
    # Text column: below the legend (landscape) or in the right half (portrait).
    if landscape:
        x, w = x + 2.5, w - 2.5
        tx, tw = x, w
        top = _measure_mm(page, leg)[1] - 2.5
    else:
        tx, tw = x + w * 0.52, w * 0.48
        top = y + h
    bottom = y
    if visa is not None:
        bottom = _visa(page, visa, tx if not landscape else x, y, tw if not landscape else w)
    # The sources go in one line at the foot of the page, full width: never covered (the
    # convention is named by the reference line above).
    shown = [line for line in lines if not line.startswith("Convention :")] or lines
    room = int((page.w - 2 * page.margin) / (6.5 * 0.53 * _PT_MM))
    src = page.text(
        page.margin, page.margin + 2.8, _plain(short_name("Sources : " + " ; ".join(shown), room)),
        fontsize=6.5, va="top", ha="left", color="#333333",
    )  # fmt: skip
    src.set_gid("page-sources")
    body = list(extra or [])
    size, text = 6.5, []
    while True:
        chars = max(int(tw / (size * 0.56 * _PT_MM)), 20)
        text = []
        for line in body:
            text += textwrap.wrap(_plain(line), chars) or [""]
        need = len(text) * size * 1.3 * _PT_MM
        if need <= top - bottom - 1 or size <= 5.5:
            break
        size -= 0.25
    fit = max(int((top - bottom - 1) / (size * 1.3 * _PT_MM)), 1)
    if len(text) > fit:
        text = text[: fit - 1] + ["…"]
    t = page.text(
        tx, top, "\n".join(text), va="top", ha="left", fontsize=size, linespacing=1.3, color="#111111"
    )
    t.set_gid("panel-text")


def _visa(page: _Page, visa: tuple, x: float, y: float, w: float) -> float:
    """The "Vu pour être annexé…" line and one box per signatory at the bottom of the panel;
    returns the height (mm) above which the panel's text may go."""
    line, names = visa
    names = list(names)[:3] or list(DEFAULT_VISAS)
    box_h, gap = 13.0, 2.0
    bw = (w - gap * (len(names) - 1)) / len(names)
    for k, name in enumerate(names):
        bx = x + k * (bw + gap)
        r = Rectangle(
            (bx / page.w, y / page.h), bw / page.w, box_h / page.h, transform=page.fig.transFigure,
            fill=False, edgecolor="#555555", linewidth=0.6,
        )  # fmt: skip
        r.set_gid("panel-visa-box")
        page.fig.add_artist(r)
        t = page.text(bx + 1.2, y + box_h - 1.0, _plain(short_name(name, 40)), fontsize=6, va="top")
        t.set_gid("panel-visa-name")
    wrapped = textwrap.wrap(_plain(line), max(int(w / (6.8 * 0.64 * _PT_MM)), 20))[:3]
    t = page.text(
        x, y + box_h + 1.2, "\n".join(wrapped), fontsize=6.8, weight="bold", va="bottom", linespacing=1.25
    )
    t.set_gid("panel-visa")
    return y + box_h + 1.2 + len(wrapped) * 6.8 * 1.25 * _PT_MM + 2.0


def _header(page: _Page, title: str, subtitle: str, fictif: bool, mark: str = "") -> None:
    m = page.margin
    page.text(m, page.head_y, _plain(title), fontsize=15, weight="bold", va="top", ha="left")
    page.text(m, page.head_y - 8, _plain(subtitle), fontsize=10.5, va="top", ha="left", color="#333333")
    if fictif:
        page.text(
            page.w - m,
            page.head_y - 5.5,
            "COMMUNE FICTIVE — données de démonstration",
            fontsize=8,
            weight="bold",
            color="#b00020",
            va="top",
            ha="right",
        )


def _stamp(
    page_fig: Figure, w_mm: float, h_mm: float, mark: str, number: int, total: int, reference: str
) -> None:
    """Annex number and page number (top right), convention reference (bottom), on every page."""
    m = 10.0
    top = f"{mark} — page {number}/{total}" if mark else f"Page {number}/{total}"
    page_fig.text(
        (w_mm - m) / w_mm, (h_mm - m) / h_mm, _plain(top), fontsize=10, weight="bold", va="top", ha="right"
    )
    page_fig.text(
        m / w_mm, (m + 18) / h_mm, _plain(reference), fontsize=7.5, va="top", ha="left", color="#111111"
    )


def _frame_map(ax, page: _Page, extent, denom: int, crs, day: dt.date, bg_text: str = "") -> None:
    """Close a map page: its extent at the true scale, scale bar, north arrow and footer."""
    ax.set_xlim(extent[0], extent[2])
    ax.set_ylim(extent[1], extent[3])
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("")
    ax.set_ylabel("")
    length, _ = draw_scale_bar(ax, extent, page.map_box[2], denom)
    draw_north(ax, extent, north_angle(crs, (extent[0] + extent[2]) / 2, (extent[1] + extent[3]) / 2))
    _footer(page, denom, length, day, _crs_label(crs), bg_text)


def _footer(
    page: _Page, scale: int, length: float, day: dt.date, crs_label: str, background: str = ""
) -> None:
    m = page.margin
    page.text(
        m,
        m + 12.5,
        CADASTRE_MENTION + (f" ; fond : {background}" if background else ""),
        fontsize=7.5,
        va="top",
        ha="left",
    )
    page.text(
        m,
        m + 7.5,
        f"Échelle 1:{fmt_int(scale)} (impression {page.paper} {_ORIENTATION_FR[page.orientation]}) — "
        f"barre d'échelle {scale_label(length)} — projection {crs_label}",
        fontsize=7,
        va="top",
        ha="left",
        color="#333333",
    )
    page.text(
        page.w - m,
        m + 7.5,
        f"Produit le {fmt.date_fr(day)}",
        fontsize=7,
        va="top",
        ha="right",
        color="#333333",
    )


def _crs_label(crs) -> str:
    from pyproj import CRS

    c = CRS.from_user_input(crs)
    return "Lambert-93 (EPSG:2154)" if c.to_epsg() == 2154 else c.name


def _status_for(classification: pd.DataFrame, perimeter_id: str) -> pd.DataFrame:
    rows = classification[classification["perimeter_id"] == perimeter_id]
    return rows.set_index("idu")[["status", "share"]]


def _status_handles(counts: dict[str, int] | None, what: str) -> list:
    out = [Line2D([], [], linestyle="none", label=f"Statut des parcelles / {_plain(what)} :")]
    for key, label in ((INSIDE, "incluse"), (STRADDLING, "à cheval"), (OUTSIDE, "hors périmètre")):
        n = f" ({fmt_int(counts.get(key, 0))})" if counts is not None else ""
        if key == STRADDLING:
            out.append(
                Patch(
                    facecolor=STRADDLING_PALE,
                    edgecolor="#c9a400",
                    hatch="////",
                    label=f"Parcelle {label}{n} : partie hors périmètre",
                )
            )
            out.append(
                Patch(
                    facecolor=STATUS_COLOURS[key],
                    edgecolor="#6b6b6b",
                    label="Parcelle à cheval : partie incluse (part en %)",
                )
            )
        else:
            out.append(
                Patch(facecolor=STATUS_COLOURS[key], edgecolor="#6b6b6b", label=f"Parcelle {label}{n}")
            )
    return out


@dataclass
class Orientation:
    """Orientation layers of the annex, in the page's metric CRS (all optional)."""

    sections: gpd.GeoDataFrame | None = None
    buildings: gpd.GeoDataFrame | None = None
    lieux_dits: gpd.GeoDataFrame | None = None
    streets: gpd.GeoDataFrame | None = None
    territory: object = None  # the commune(s) as one geometry, for the situation inset


def orientation_layers(
    parcels: gpd.GeoDataFrame,
    *,
    sections=None,
    buildings=None,
    lieux_dits=None,
    addresses=None,
    communes=None,
) -> Orientation:
    """Orientation layers for :func:`annex_pages`, converted to the parcels' metric CRS.

    Without ``sections`` they are dissolved from the parcels; the situation inset's commune
    outline is ``communes`` or the union of the sections.
    """
    from geo.maps import layers as _layers

    crs = parcels.crs
    conv = lambda g, n: None if g is None else projection.to_metric(g, crs, source=n)  # noqa: E731
    secs = conv(sections, "sections") if sections is not None else _layers.sections_from_parcels(parcels)
    streets = _layers.street_labels(addresses, crs) if addresses is not None else None
    if communes is not None:
        territory = shapely.union_all(conv(communes, "communes").geometry.to_numpy())
    else:
        # Closing (grow then shrink 20 m) fills the streets between the sections.
        territory = (
            shapely.union_all(shapely.buffer(secs.geometry.to_numpy(), 20.0)).buffer(-20.0)
            if len(secs)
            else None
        )
    return Orientation(secs, conv(buildings, "batiments"), conv(lieux_dits, "lieux_dits"), streets, territory)


def _plot_orientation(ax, orient: Orientation | None, extent, map_w_mm: float) -> list:
    if orient is None:
        return []
    minx, miny, maxx, maxy = extent
    mm_per_m = map_w_mm / (maxx - minx)
    frame = shapely.box(minx, miny, maxx, maxy)
    handles = []
    if orient.buildings is not None and len(orient.buildings):
        view = in_view(orient.buildings, extent)
        if len(view) and mm_per_m > 0.05:  # from about 1:20 000 on
            view.plot(ax=ax, color="#b9b0a7", edgecolor="#8a8178", linewidth=0.15, zorder=2)
            handles.append(Patch(facecolor="#b9b0a7", edgecolor="#8a8178", label="Bâtiment"))
    if orient.sections is not None and len(orient.sections):
        view = in_view(orient.sections, extent)
        if len(view):
            view.boundary.plot(ax=ax, color="#3d3d3d", linewidth=0.9, zorder=3)
            handles.append(Line2D([], [], color="#3d3d3d", linewidth=0.9, label="Limite de section"))
            code = "section" if "section" in view.columns else None
            pts = shapely.point_on_surface(shapely.intersection(view.geometry.to_numpy(), frame))
            for sec, pt in zip(view[code] if code else [""] * len(view), pts, strict=True):
                if pt is None or pt.is_empty:
                    continue
                ax.text(
                    pt.x,
                    pt.y,
                    f"Section {str(sec).lstrip('0') or '0'}",
                    fontsize=9,
                    color="#555555",
                    alpha=0.8,
                    weight="bold",
                    ha="center",
                    va="center",
                    zorder=3.5,
                    clip_on=True,
                )
    for gdf, style in (
        (orient.lieux_dits, dict(fontsize=6.5, style="italic", color="#5b3a1a")),
        (orient.streets, dict(fontsize=5.5, color="#1d3557")),
    ):
        label_places(ax, gdf, extent, map_w_mm, **style)
    return handles


def _inset(page: _Page, orient: Orientation | None, drawn, styles, focus, extent) -> None:
    """Situation inset: the commune, the perimeters, the page's one filled, the map frame."""
    territory = orient.territory if orient is not None else None
    if territory is None or territory.is_empty:
        return
    draw_inset(page.axes(page.inset_box), territory, drawn, styles, focus, extent)


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
    zone=None,
    label_only=None,
    target=None,
    extra_lines=None,
    orient=None,
    background=None,
    tile_budget=None,
    notices=None,
    visa=None,
):
    page = _Page(paper, orientation)
    _header(page, title, subtitle, fictif)
    ax = page.axes(page.map_box)
    map_w_mm = page.map_box[2]
    extent, denom = round_scale(bounds, map_w_mm, page.map_box[3], margin_m)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_linewidth(0.8)
        spine.set_zorder(30)
    lw = 0.15 if (extent[2] - extent[0]) > 2500 else 0.3
    bg_text, alpha = "", 1.0
    extra_lines = list(extra_lines or [])
    if background is not None:
        from geo.maps.tiles import background_image

        image, why = background_image(
            background, extent, crs, width_px=int(map_w_mm / 25.4 * 200), budget=tile_budget
        )
        if image is not None:
            ax.imshow(
                image, extent=(extent[0], extent[2], extent[1], extent[3]), zorder=0, interpolation="bilinear"
            )
            bg_text, alpha = background.attribution, 0.55
        else:
            # On the page, in full (not wrapped): whoever signs it sees why there is no background.
            page.text(
                page.margin,
                page.head_y - 15.5,
                _plain(why),
                fontsize=7.5,
                color="#b00020",
                va="top",
                ha="left",
            )
            if notices is not None and why not in notices:
                notices.append(why)
    plot_parcels(ax, parcels, status, extent, lw=lw, zone=zone, alpha=alpha)
    orient_handles = _plot_orientation(ax, orient, extent, map_w_mm)
    hole_notes: list[str] = []
    handles = plot_perimeters(ax, drawn, styles, highlight=highlight, notes=hole_notes)
    extra_lines += hole_notes
    if target is not None:
        gpd.GeoSeries([target], crs=parcels.crs).boundary.plot(
            ax=ax, color="#0033cc", linewidth=2.2, zorder=7
        )
        handles.append(Line2D([], [], color="#0033cc", linewidth=2.2, label="Parcelle étudiée"))
    shares = None
    if status is not None:
        strad = status[status["status"] == STRADDLING]
        shares = dict(zip(strad.index, strad["share"], strict=True))
    label_parcels(ax, parcels, extent, map_w_mm, only=label_only, shares=shares)
    _frame_map(ax, page, extent, denom, crs, day, bg_text)
    _panel(page, handles + _status_handles(counts, status_of) + orient_handles, sources, extra_lines, visa)
    _inset(page, orient, drawn, styles, highlight, extent)
    return page.fig


# --------------------------------------------------------------------------------------------
# Parcel list tables (PDF pages)


def _table_pages(
    *, paper, orientation, title, subtitle, fictif, header, rows, name, widths, aligns, total=None
) -> list[AnnexPage]:
    """Pages of a table drawn as text, repeated header: as many column blocks side by side as
    the page holds, spread over its whole width (columns widened in proportion, 2 mm of padding
    so that a right-aligned column never runs into the next); ``total`` is the last line, bold,
    under a rule."""
    pages = []
    w, h = _paper_size(paper, orientation)
    m, head, foot = 10.0, 26.0, 24.0
    line_mm = 3.6
    gap = 8.0
    per_col = max(int((h - 2 * m - head - foot) / line_mm) - 1, 5)
    blocks = max(int((w - 2 * m + gap) // (sum(widths) + gap)), 1)
    block_w = (w - 2 * m + gap) / blocks - gap
    widths = [cw * block_w / sum(widths) for cw in widths]
    # The totals: a rule, their label on a line of its own, then the sums under their columns.
    totals = [[total[0], *[""] * (len(total) - 1)], ["", *total[1:]]] if total is not None else []
    body = list(rows) + ([None, *totals] if totals else [])
    per_page = per_col * blocks
    chunks = [body[k : k + per_page] for k in range(0, len(body), per_page)] or [[]]
    while totals and len(chunks) > 1 and len(chunks[-1]) < 3 and chunks[-2]:
        chunks[-1].insert(0, chunks[-2].pop())  # the rule and both totals lines together
    for n, chunk in enumerate(chunks, start=1):
        page = _Page(paper, orientation)
        more = f" (suite {n}/{len(chunks)})" if len(chunks) > 1 else ""
        _header(page, title, subtitle + more, fictif)
        top = h - m - head
        for b in range(blocks):
            part = chunk[b * per_col : (b + 1) * per_col]
            if not part and b:
                break
            x = m + b * (block_w + gap)

            def cells(values, y, x=x, page=page, **kw):
                cx = x
                for value, cw, al in zip(values, widths, aligns, strict=True):
                    tx = cx + cw - 2 if al == "right" else cx + (0 if cx == x else 2)
                    page.text(tx, y, _plain(value), va="top", ha=al, **kw)
                    cx += cw

            cells(header, top, fontsize=7, weight="bold")
            rule = [(x / w, (x + block_w) / w), [(top - 4.2) / h] * 2]
            page.fig.add_artist(Line2D(*rule, color="black", linewidth=0.6, transform=page.fig.transFigure))
            bold = False
            for r, row in enumerate(part, start=1):
                y = top - r * line_mm - 1.0
                if row is None:  # the rule above the totals
                    yy = (y - line_mm / 2 + 0.3) / h
                    page.fig.add_artist(
                        Line2D([x / w, (x + block_w) / w], [yy, yy], color="black", linewidth=0.6,
                               transform=page.fig.transFigure)
                    )  # fmt: skip
                    bold = True
                    continue
                if bold and row is totals[0]:
                    page.text(x, y, _plain(row[0]), va="top", ha="left", fontsize=7.5, weight="bold")
                else:
                    cells(row, y, fontsize=7.2 if bold else 7, weight="bold" if bold else "normal")
        if not rows:
            page.text(m, top - 8, "Aucune parcelle.", fontsize=8, va="top", ha="left")
        page.text(m, m + 12.5, CADASTRE_MENTION, fontsize=7.5, va="top", ha="left")
        pages.append(AnnexPage(f"{name}-liste-{n}", subtitle, page.fig, png=False))
    return pages


def _parcel_rows(table: pd.DataFrame) -> list[list[str]]:
    rows = []
    for r in table.itertuples(index=False):
        idu = str(r.idu)
        section = (idu[8:10].lstrip("0") or "0") if len(idu) == 14 else ""
        numero = str(int(idu[10:])) if len(idu) == 14 else idu
        cont = getattr(r, "contenance", None)
        cont = "—" if cont is None or pd.isna(cont) else fmt.area_m2(float(cont))
        inside = getattr(r, "area_inside_m2", None)
        inside = "—" if inside is None or pd.isna(inside) else fmt.area_m2(float(inside))
        rows.append([section, numero, cont, inside, fmt.percent(float(r.share))])
    return rows


def _parcel_total(table: pd.DataFrame) -> list[str]:
    """The totals line of a parcel list: count, contenance, surface inside."""
    n = len(table)
    cont = table["contenance"].dropna().astype(float).sum() if "contenance" in table else float("nan")
    inside = table["area_inside_m2"].astype(float).sum() if "area_inside_m2" in table else float("nan")
    return [
        f"Total : {fmt_int(n)} parcelle{'s' if n > 1 else ''}",
        "",
        fmt.area_m2(cont) if n else "0 m²",
        fmt.area_m2(inside) if n and not math.isnan(inside) else "—",
        "",
    ]


# --------------------------------------------------------------------------------------------
# The annex


def _parcel_table(classification: pd.DataFrame, parcels: gpd.GeoDataFrame, perimeter_id: str) -> pd.DataFrame:
    rows = classification[
        (classification["perimeter_id"] == perimeter_id) & (classification["status"] != OUTSIDE)
    ]
    cols = [c for c in ("idu", "code_insee", "section", "numero", "contenance") if c in parcels.columns]
    out = pd.DataFrame(parcels[cols]).merge(rows, on="idu", how="inner")
    out.insert(out.columns.get_loc("status") + 1, "statut", out["status"].map(STATUS_LABELS))
    keep = [c for c in out.columns if c not in ("distance_m",)]
    out = out[keep]
    # Sections as planners list them (A…Z, then AA…ZZ), numbers numerically.
    order = sorted(range(len(out)), key=lambda k: _idu_key(str(out["idu"].iloc[k])))
    return out.iloc[order].reset_index(drop=True)


def _idu_key(idu: str) -> tuple:
    return (idu[:8], *section_key(idu[8:10], idu[10:])) if len(idu) == 14 else ("", 0, idu, 0, idu)


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
    annex_number: str | None = None,
    reference: str | None = None,
    orient: Orientation | None = None,
    background: str | None = None,
    tables_in_pdf: bool = True,
    convention_date: dt.date | None = None,
    visas: Sequence[str] = (),
) -> Annex:
    """Compute the annex of a convention: overview, one page per perimeter, an optional parcel page.

    Parameters
    ----------
    perimeters : GeoDataFrame
        Perimeters in force (``perimeter_id``, ``type``, ``nom``, ``centre_ville``,
        ``date_debut``/``date_fin`` for OPAH-RU), metric CRS (metres); ``attrs`` give the
        version and its date. The ``ort`` union row gets no page.
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
    annex_number : str, optional
        Printed on every page as "Annexe n° …" with the page number ("Annexe" alone without it;
        the application passes the convention's ``[edition] annexe`` by default).
    reference : str, optional
        The convention's reference and date, printed at the bottom of every page (default:
        the title and the perimeter version's date).
    orient : Orientation, optional
        Orientation layers (:func:`orientation_layers`); default: sections dissolved from the
        parcels (outlines, names and the situation inset).
    background : str, optional
        A background preset (:data:`geo.maps.tiles.BACKGROUNDS`) or URL template: tiles are
        fetched once into the cache, all pages within :data:`geo.maps.tiles.TILE_DEADLINE_S`
        seconds; unreachable, late or refused (an oversized tile), the pages say so and are
        drawn without it.
    tables_in_pdf : bool
        Add each perimeter's parcel list as table pages in the PDF.
    convention_date : date, optional
        Date of the convention (or avenant) the annex goes with, printed in the line "Vu pour
        être annexé à la convention … du …" (dotted when not given).
    visas : sequence of str
        One signature box per signatory on every map page (default :data:`DEFAULT_VISAS`).

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
            annex_number=annex_number,
            reference=reference,
            orient=orient,
            background=background,
            tables_in_pdf=tables_in_pdf,
            convention_date=convention_date,
            visas=visas,
        )


def _period(row) -> str:
    start, end = row.get("date_debut"), row.get("date_fin")
    ok = lambda v: v is not None and not (isinstance(v, float) and math.isnan(v)) and not pd.isna(v)  # noqa: E731
    if ok(start) and ok(end):
        return f"du {fmt.date_fr(str(start))} au {fmt.date_fr(str(end))}"
    if ok(start):
        return f"à partir du {fmt.date_fr(str(start))}"
    if ok(end):
        return f"jusqu'au {fmt.date_fr(str(end))}"
    return "période non renseignée"


def _finish(pages: list[AnnexPage], annex_number: str | None, reference: str, paper: str, orientation: str):
    w, h = _paper_size(paper, orientation)
    mark = f"Annexe n° {annex_number}" if annex_number else "Annexe"
    for k, page in enumerate(pages, start=1):
        _stamp(page.figure, w, h, mark, k, len(pages), reference)


def _annex_pages(
    perimeters,
    parcels,
    *,
    classification,
    title,
    fictif,
    paper,
    orientation,
    parcel,
    production_date,
    annex_number,
    reference,
    orient,
    background,
    tables_in_pdf,
    convention_date=None,
    visas=(),
):
    _paper_size(paper, orientation)
    crs = projection.require_metric(perimeters, source="perimeters")
    projection.require_same_crs(("perimeters", perimeters), ("parcels", parcels))
    day = production_date or dt.date.today()
    drawn = perimeters[perimeters["type"] != "ort"].reset_index(drop=True)
    if drawn.empty:
        raise InputError(
            "aucun périmètre à dessiner", fix="vérifiez la date : aucun périmètre n'est alors en vigueur"
        )
    if classification is None:
        classification = classify_parcels(parcels, perimeters, with_distance=False)
    if orient is None:
        orient = orientation_layers(parcels)
    bg = budget = None
    if background is not None:
        from geo.maps.tiles import TileBudget
        from geo.maps.tiles import background as _background

        bg = _background(background)
        budget = TileBudget()  # every page's tiles together: a hanging server costs one wait
    styles = perimeter_colours(drawn)
    convention = title or perimeters.attrs.get("convention") or "Convention ORT"
    a = perimeters.attrs
    version = a.get("version_libelle") or a.get("version")
    reference = reference or (
        f"Convention : {convention}"
        + (f" — périmètres « {version} »" if version else "")
        + (f" en vigueur le {fmt.date_fr(a['version_date'])}" if a.get("version_date") else "")
    )
    sources = _sources_lines(perimeters, parcels, day, convention, fictif)
    notices: list[str] = []
    common = dict(
        visa=(visa_line(convention, convention_date), tuple(visas) or DEFAULT_VISAS),
        paper=paper,
        orientation=orientation,
        title=convention,
        fictif=fictif,
        parcels=parcels,
        drawn=drawn,
        styles=styles,
        sources=sources,
        day=day,
        crs=crs,
        orient=orient,
        background=bg,
        tile_budget=budget,
        notices=notices,
    )
    ort_id = "ort" if (perimeters["perimeter_id"] == "ort").any() else None
    ort_zone = perimeters.loc[perimeters["perimeter_id"] == "ort"].geometry.iloc[0] if ort_id else None
    pages, tables = [], {}
    status = _status_for(classification, ort_id) if ort_id else None
    counts = status["status"].value_counts().to_dict() if status is not None else None
    bounds = drawn.total_bounds
    margin = max(0.04 * max(bounds[2] - bounds[0], bounds[3] - bounds[1]), PARCEL_MARGIN_M)
    in_ort = set(status.index[status["status"] != OUTSIDE]) if status is not None else set()
    fig = _map_page(
        subtitle="Vue d'ensemble des périmètres",
        bounds=bounds,
        margin_m=margin,
        status=status,
        highlight=None,
        status_of="ORT",
        counts=counts,
        label_only=in_ort,
        zone=ort_zone,
        **common,
    )
    pages.append(AnnexPage("00-ensemble", "Vue d'ensemble", fig))
    for k, row in enumerate(drawn.itertuples(index=False), start=1):
        pid = row.perimeter_id
        st = _status_for(classification, pid)
        b = row.geometry.bounds
        margin = max(0.04 * max(b[2] - b[0], b[3] - b[1]), PARCEL_MARGIN_M)
        opah = row.type == "opah_ru"
        kind = "Périmètre OPAH-RU" if opah else "Secteur d'intervention"
        table = _parcel_table(classification, parcels, pid)
        tables[pid] = table
        n_in = int((table["status"] == INSIDE).sum())
        n_st = int((table["status"] == STRADDLING).sum())
        area_ha = fmt.number(row.geometry.area / 10_000, 2)
        period = f" ({_period(row._asdict())})" if opah else ""
        extra = [
            f"{kind} « {row.nom} »{period} : {area_ha} ha ; {n_in} parcelle(s) incluse(s), "
            f"{n_st} à cheval (liste : pages suivantes et parcelles-{pid}.csv / .xlsx)"
        ]
        subtitle = f"{kind} : {row.nom}" + (f" — {_period(row._asdict())}" if opah else "")
        fig = _map_page(
            subtitle=subtitle,
            bounds=b,
            margin_m=margin,
            status=st,
            highlight=pid,
            status_of=str(row.nom),
            counts=st["status"].value_counts().to_dict(),
            label_only=set(table["idu"]),
            extra_lines=extra,
            zone=row.geometry,
            **common,
        )
        pages.append(AnnexPage(f"{k:02d}-{pid}", subtitle, fig))
        if tables_in_pdf:
            pages += _table_pages(
                paper=paper,
                orientation=orientation,
                title=convention,
                subtitle=f"Liste des parcelles — {subtitle}",
                fictif=fictif,
                header=["Section", "N°", "Contenance", "Surface incluse", "Part incluse"],
                rows=_parcel_rows(table),
                name=f"{k:02d}-{pid}",
                widths=[9, 8, 17, 24, 19],
                aligns=["left", "right", "right", "right", "right"],
                total=_parcel_total(table),
            )
    if parcel is not None:
        pages.append(_parcel_page(parcel, classification, drawn, status, counts, common, ort_zone))
    _finish(pages, annex_number, reference, paper, orientation)
    return Annex(pages, tables, source=" ; ".join(sources[:3]), notices=notices)


def _parcel_page(parcel, classification, drawn, status, counts, common, zone) -> AnnexPage:
    from geo.idu import parse_idu

    parcels = common["parcels"]
    pid = parse_idu(parcel)
    match = parcels[parcels["idu"] == pid.idu]
    if match.empty:
        raise InputError(
            f"parcelle {pid.idu} absente du cadastre (millésime {parcels.attrs.get('millesime', 'inconnu')})",
            feature=pid.idu,
            fix="vérifiez l'identifiant avec `ort check`",
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
        extra.append(f"Contenance cadastrale : {fmt_int(cont)} m²")
    for r in rows.itertuples(index=False):
        if r.perimeter_id == "ort" or r.perimeter_id in names:
            label = "ORT (ensemble)" if r.perimeter_id == "ort" else names[r.perimeter_id]
            extra.append(f"{label} : {STATUS_LABELS[r.status]} ({fmt.percent(r.share)})")
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
        zone=zone,
        **common,
    )
    return AnnexPage(f"parcelle-{pid.idu}", f"Parcelle {pid.label}", fig)


# --------------------------------------------------------------------------------------------
# The page of an avenant (geo.diff)

DIFF_PAGE = "avenant-carte"


def diff_annex_files(out_dir: str | Path) -> list[Path]:
    """The files :func:`write_annex` writes for :func:`diff_annex`."""
    from geo.io import path_inside

    return [path_inside(out_dir, n) for n in _file_names([DIFF_PAGE], [], "avenant.pdf")]


def diff_annex(
    diff: pd.DataFrame,
    parcels: gpd.GeoDataFrame,
    before: gpd.GeoDataFrame,
    after: gpd.GeoDataFrame,
    *,
    title: str = "",
    fictif: bool = False,
    paper: str = "A4",
    orientation: str = "landscape",
    annex_number: str | None = None,
    reference: str | None = None,
    production_date: dt.date | None = None,
) -> Annex:
    """The annex page of an avenant: a map of the changes and their list per perimeter.

    Parameters
    ----------
    diff : DataFrame
        :func:`geo.diff.perimeter_diff` result.
    parcels, before, after : GeoDataFrame
        The parcels and both versions' perimeters, same metric CRS.

    Returns
    -------
    Annex
        The map page (``avenant-carte``), one zoomed page per changed area (before dashed,
        after solid) and the change table over the page's width (PDF only); written as
        ``avenant.pdf``.
    """
    from matplotlib import rc_context

    from geo.diff import CHANGE_LABELS

    with rc_context(_RC):
        crs = projection.require_metric(after, source="after")
        day = production_date or dt.date.today()
        convention = title or after.attrs.get("convention") or "Convention ORT"
        old_v = before.attrs.get("version_libelle") or before.attrs.get("version", "avant")
        new_v = after.attrs.get("version_libelle") or after.attrs.get("version", "après")
        new_d = after.attrs.get("version_date")
        reference = reference or f"Convention : {convention} — {new_v}" + (
            f" du {fmt.date_fr(new_d)}" if new_d else ""
        )
        d = diff[diff["perimeter_id"] != "ort"]
        drawn = after[after["type"] != "ort"].reset_index(drop=True)
        old = before[before["type"] != "ort"].reset_index(drop=True)
        styles = perimeter_colours(drawn)
        subtitle = "Modifications des périmètres par l'avenant"
        changed = parcels[parcels["idu"].isin(set(d["idu"]))]
        geoms = [*changed.geometry, *drawn.geometry]
        b = shapely.union_all(geoms).bounds if geoms else drawn.total_bounds
        counts = d.groupby(["perimeter_nom", "change"]).size()
        extra = [
            f"{nom} : " + ", ".join(f"{n} {CHANGE_LABELS[c]}" for (nm, c), n in counts.items() if nm == nom)
            for nom in dict.fromkeys(d["perimeter_nom"])
        ] or ["Aucune parcelle n'entre, ne sort ni ne change de part."]
        extra.insert(0, f"« {old_v} » → « {new_v} »")
        sources = [
            f"Avant : « {old_v} » du {fmt.date_fr(before.attrs.get('version_date'))}",
            f"Après : « {new_v} » du {fmt.date_fr(new_d)}",
            f"Cadastre : DGFiP, édition Etalab, millésime {parcels.attrs.get('millesime') or 'inconnu'}",
            f"Production : {fmt.date_fr(day)} (ort)",
        ]
        orient = orientation_layers(parcels)
        draw = dict(
            paper=paper, orientation=orientation, convention=convention, fictif=fictif, d=d, parcels=parcels,
            drawn=drawn, old=old, styles=styles, crs=crs, day=day, sources=sources, orient=orient,
            visa=(visa_line(convention, new_d and dt.date.fromisoformat(str(new_d))), DEFAULT_VISAS),
        )  # fmt: skip
        margin = max(0.04 * max(b[2] - b[0], b[3] - b[1]), PARCEL_MARGIN_M)
        pages = [AnnexPage(DIFF_PAGE, subtitle, _diff_page(subtitle, b, margin, extra, **draw))]
        # One zoomed page per changed area (parcels within 60 m of each other), largest first.
        areas = shapely.get_parts(shapely.union_all(shapely.buffer(changed.geometry.to_numpy(), 30.0)))
        areas = sorted(areas, key=lambda g: -g.area)[:MAX_ZOOM_PAGES]
        for n, area in enumerate(areas, start=1):
            inside = changed[changed.intersects(area)]
            zb = shapely.union_all(inside.geometry.to_numpy()).bounds
            zsub = f"Zone modifiée {n}/{len(areas)} : {len(inside)} parcelle(s)"
            zmargin = max(0.08 * max(zb[2] - zb[0], zb[3] - zb[1]), PARCEL_MARGIN_M)
            zextra = [zsub, *extra]
            fig = _diff_page(f"{subtitle} — {zsub.lower()}", zb, zmargin, zextra, zoom=True, **draw)
            pages.append(AnnexPage(f"{DIFF_PAGE}-zone-{n}", zsub, fig, png=False))
        rows = []
        for r in d.merge(
            pd.DataFrame(parcels[[c for c in ("idu", "contenance") if c in parcels.columns]]),
            on="idu",
            how="left",
        ).itertuples(index=False):
            idu = str(r.idu)
            cont = getattr(r, "contenance", None)
            rows.append(
                [
                    _short(str(r.perimeter_nom), 20),
                    idu[8:10].lstrip("0") or "0",
                    str(int(idu[10:])),
                    "—" if cont is None or pd.isna(cont) else fmt.area_m2(float(cont)),
                    CHANGE_LABELS[r.change],
                    fmt.percent(r.share_before),
                    fmt.percent(r.share_after),
                ]
            )
        pages += _table_pages(
            paper=paper,
            orientation=orientation,
            title=convention,
            subtitle=f"Liste des changements — {subtitle}",
            fictif=fictif,
            header=["Périmètre", "Section", "N°", "Contenance", "Changement", "Part avant", "Part après"],
            rows=rows,
            name="avenant",
            widths=[27, 12, 9, 18, 21, 15, 15],
            aligns=["left", "left", "right", "right", "left", "right", "right"],
        )
        _finish(pages, annex_number, reference, paper, orientation)
        return Annex(pages, {}, source=reference, pdf_name="avenant.pdf")


#: Most zoomed pages of an avenant's annex (one per changed area, largest first).
MAX_ZOOM_PAGES = 6
#: The perimeters before the avenant: dashed, in a colour no perimeter takes.
BEFORE_COLOUR = "#111111"


def _diff_page(
    subtitle, bounds, margin, extra, *, paper, orientation, convention, fictif, d, parcels, drawn, old,
    styles, crs, day, sources, orient, visa, zoom=False,
):  # fmt: skip
    """One map page of an avenant: changed parcels filled by change, the perimeters before dashed
    (dark) over the perimeters after (solid, their colours)."""
    from geo.maps.layers import DIFF_COLOURS

    page = _Page(paper, orientation)
    _header(page, convention, subtitle, fictif)
    ax = page.axes(page.map_box)
    extent, denom = round_scale(bounds, page.map_box[2], page.map_box[3], margin)
    ax.set_xticks([])
    ax.set_yticks([])
    view = in_view(parcels, extent)
    view.plot(
        ax=ax, color=STATUS_COLOURS[OUTSIDE], edgecolor="#8a8a8a", linewidth=0.3 if zoom else 0.2, zorder=1
    )
    handles = []
    first = d.drop_duplicates("idu", keep="first")
    for change, colour in DIFF_COLOURS.items():
        ids = set(first.loc[first["change"] == change, "idu"])
        sub = parcels[parcels["idu"].isin(ids)]
        if len(sub):
            sub.plot(ax=ax, color=colour, alpha=0.55, edgecolor=colour, linewidth=0.5, zorder=2)
        handles.append(
            Patch(
                facecolor=colour,
                alpha=0.55,
                edgecolor=colour,
                label=f"Parcelle qui {_CHANGE_VERB[change]} ({len(ids)})",
            )
        )
    notes: list[str] = []
    ph = plot_perimeters(ax, drawn, styles, notes=notes)
    lw = 2.0 if zoom else 1.7
    for _, row in old.iterrows():
        gpd.GeoSeries([row.geometry], crs=crs).boundary.plot(
            ax=ax, color=BEFORE_COLOUR, linewidth=lw, linestyle=(0, (4, 2.5)), zorder=6
        )
    handles.append(
        Line2D(
            [],
            [],
            color=BEFORE_COLOUR,
            linewidth=lw,
            linestyle=(0, (4, 2.5)),
            label="Périmètres avant l'avenant (tirets)",
        )
    )
    handles += [Line2D([], [], linestyle="none", label="Périmètres après l'avenant (trait plein) :")] + ph
    label_parcels(ax, parcels, extent, page.map_box[2], only=set(d["idu"]))
    _frame_map(ax, page, extent, denom, crs, day)
    _panel(page, handles, sources, extra + notes, visa)
    _inset(page, orient, drawn, styles, None, extent)
    return page.fig


_CHANGE_VERB = {"enters": "entre", "leaves": "sort", "share_changed": "change de part"}


def _short(text: str, n: int) -> str:
    return short_name(text, n)


# --------------------------------------------------------------------------------------------
# Writing


def _page_names(perimeter_ids: list[str], parcel: str | None) -> list[str]:
    names = ["00-ensemble"] + [f"{k:02d}-{pid}" for k, pid in enumerate(perimeter_ids, start=1)]
    return names + ([f"parcelle-{parcel}"] if parcel else [])


def _file_names(page_names: list[str], perimeter_ids, pdf_name: str = "annexe.pdf") -> list[str]:
    """File names of an annex; ids become part of names only when they follow the slug rule."""
    from geo.io import safe_name

    names = [f"{name}.png" for name in page_names] + [pdf_name]
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
    names = _file_names([p.name for p in annex.pages if p.png], annex.tables, annex.pdf_name)
    return [path_inside(out_dir, n) for n in names]


def write_annex(annex: Annex, out_dir: str | Path, *, force: bool = False) -> list[Path]:
    """Write each map page as PNG (300 dpi), all pages as one PDF, each parcel list as CSV and XLSX.

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
            if not page.png:
                continue
            path = out / f"{page.name}.png"
            with atomic_path(path, force=force) as tmp:
                page.figure.savefig(tmp, format="png", dpi=DPI, metadata={"Software": "ort"})
            written.append(path)
        pdf = out / annex.pdf_name
        with atomic_path(pdf, force=force) as tmp:
            with PdfPages(tmp, metadata={"Creator": "ort", "Title": clean_text(annex.pages[0].title)}) as doc:
                for page in annex.pages:
                    doc.savefig(page.figure)
        written.append(pdf)
    from geo.columns import PARCELS

    for pid, table in annex.tables.items():
        nom = table["perimeter_nom"].iloc[0] if len(table) and "perimeter_nom" in table else pid
        title = f"{short_name(nom)} — parcelles incluses ou à cheval"
        if "perimeter_nom" in table:
            # Control characters cannot be written in an XLSX cell: names as printed on the pages.
            table = table.assign(perimeter_nom=table["perimeter_nom"].map(clean_text))
        for suffix in ("csv", "xlsx"):
            path = out / f"parcelles-{pid}.{suffix}"
            written.append(
                write_table(
                    table, path, force=force, layout=PARCELS, title=title, source=clean_text(annex.source)
                )
            )
    record_folder_files(out, [p.name for p in written], command="annex")
    return written
