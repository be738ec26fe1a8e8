"""Drawing pieces shared by the printed documents (:mod:`geo.maps.annex`, :mod:`geo.note`).

All in a metric CRS (metres) on matplotlib axes whose extent is the map frame: the extent of a
frame at a round paper scale, the graphic scale bar, the north arrow (true north), parcels by
status (straddling ones pale and hatched with their part inside filled), parcel labels,
perimeter outlines with their holes, the situation inset, and the order planners list
cadastral sections in.
"""

from __future__ import annotations

import functools
import math
import re

import numpy as np
import pandas as pd
import shapely
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrow, FancyBboxPatch, Patch, Rectangle
from pyproj import Transformer

from geo import fmt, projection
from geo.classify import OUTSIDE, STRADDLING
from geo.maps.plotting import plot_geometries
from geo.maps.style import STATUS_COLOURS
from geo.maps.text import mpl_text, short_name

__all__ = [
    "PARCEL_MARGIN_M", "SCALES", "STRADDLING_PALE", "draw_inset", "draw_north", "draw_scale_bar",
    "fit_extent", "fmt_int", "in_view", "label_parcels", "label_places", "nice_length", "north_angle",
    "plot_parcels", "plot_perimeters", "round_scale", "scale_label", "section_key",
]  # fmt: skip

#: Minimum margin around a single parcel, in metres.
PARCEL_MARGIN_M = 20.0
#: Paper scales offered (denominators): the smallest that holds the page's extent is used.
SCALES = (500, 1000, 2000, 2500, 5000, 10_000, 20_000, 25_000, 50_000, 100_000, 200_000, 250_000, 500_000)
#: Pale fill and hatch of a straddling parcel; its part inside takes the straddling colour.
STRADDLING_PALE = "#fff4c2"
_plain = mpl_text


def fmt_int(value: float) -> str:
    return f"{value:,.0f}".replace(",", "\u202f")


def nice_length(target_m: float) -> float:
    """The largest 1, 2 or 5 × 10^k metres not above ``target_m``."""
    exp = math.floor(math.log10(max(target_m, 1e-9)))
    for mult in (5, 2, 1):
        if mult * 10**exp <= target_m:
            return float(mult * 10**exp)
    return float(10**exp)


def scale_label(metres: float) -> str:
    return f"{metres / 1000:g} km" if metres >= 1000 else f"{metres:g} m"


def fit_extent(bounds, ax_w_mm: float, ax_h_mm: float, margin_m: float) -> tuple[float, float, float, float]:
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


def round_scale(bounds, ax_w_mm: float, ax_h_mm: float, margin_m: float) -> tuple[tuple, int]:
    """The extent at the smallest round paper scale of :data:`SCALES` holding ``bounds`` + margin.

    Returns ``((minx, miny, maxx, maxy), denominator)``: the extent (metres) is centred on
    ``bounds`` and exactly ``ax_w_mm × denominator / 1000`` metres wide.
    """
    minx, miny, maxx, maxy = bounds
    need = max((maxx - minx + 2 * margin_m) / ax_w_mm, (maxy - miny + 2 * margin_m) / ax_h_mm) * 1000
    denom = next((d for d in SCALES if d >= need * (1 - 1e-9)), None)
    if denom is None:
        denom = int(math.ceil(need / 100_000) * 100_000)
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    half_w, half_h = ax_w_mm * denom / 2000, ax_h_mm * denom / 2000
    return (cx - half_w, cy - half_h, cx + half_w, cy + half_h), int(denom)


@functools.lru_cache(maxsize=16)
def _to_and_from_degrees(crs) -> tuple[Transformer, Transformer]:
    """The transformations between ``crs`` and WGS84, made once per CRS (a note asks each time)."""
    return (
        Transformer.from_crs(crs, projection.WGS84, always_xy=True),
        Transformer.from_crs(projection.WGS84, crs, always_xy=True),
    )


def north_angle(crs, x: float, y: float) -> float:
    """Angle (radians, counter-clockwise from the page's up) of true north at ``(x, y)`` metres."""
    try:
        to_ll, to_xy = _to_and_from_degrees(crs)
    except TypeError:  # a CRS given in an unhashable form
        to_ll, to_xy = _to_and_from_degrees.__wrapped__(crs)
    lon, lat = to_ll.transform(x, y)
    x2, y2 = to_xy.transform(lon, lat + 0.01)
    return math.atan2(-(x2 - x), y2 - y)


def draw_scale_bar(ax, extent, map_w_mm: float, denom: int | None = None) -> tuple[float, int]:
    """Graphic scale bar in the lower left of the map, on a white backing.

    The bar is a round length (1, 2 or 5 × 10^k m) about a quarter of the frame; it is labelled
    "0", its middle and its end ("0  10  20 m"), the middle left out when the labels would touch
    at the frame's width ``map_w_mm``. Returns the bar's length (m) and the paper scale 1:N
    (``denom``, or computed from ``map_w_mm`` when not given).
    """
    minx, miny, maxx, maxy = extent
    width_m = maxx - minx
    mm_per_m = map_w_mm / width_m
    font = 6.5
    char_mm = font * 0.6 * 25.4 / 72  # DejaVu Sans digits
    length = nice_length(width_m / 4)
    # Long enough for "0" and the end label to stand apart (a narrow frame: the next round length).
    while length * mm_per_m < (len(scale_label(length)) / 2 + 2.5) * char_mm and length < width_m / 2:
        length = nice_length(length * 2.5)
    x0, y0 = minx + width_m * 0.03, miny + (maxy - miny) * 0.04
    hgt = (maxy - miny) * 0.012
    end = scale_label(length)
    half = scale_label(length / 2).split()[0]
    # Centred labels at 0, L/2 and L: the middle one fits when half the bar holds half of
    # each neighbour plus a gap of two characters.
    with_half = length / 2 * mm_per_m >= (len(half) / 2 + len(end) / 2 + 2) * char_mm
    labels = [(0.0, "0"), *([(0.5, half)] if with_half else []), (1.0, end)]
    pad_m = (len(end) / 2 + 1) * char_mm / mm_per_m  # room for the end label's overhang
    ax.add_patch(
        Rectangle(
            (x0 - width_m * 0.012, y0 - hgt * 1.4),
            length + width_m * 0.012 + pad_m,
            hgt * 5.2,
            facecolor="white",
            alpha=0.9,
            edgecolor="#999999",
            linewidth=0.4,
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
    for frac, label in labels:
        ax.text(x0 + frac * length, y0 + hgt * 1.6, label, ha="center", va="bottom", fontsize=font, zorder=22)
    if denom is None:
        denom = int(_round_scale(width_m * 1000 / map_w_mm))
    return length, int(denom)


def _round_scale(denom: float) -> float:
    exp = 10 ** math.floor(math.log10(denom))
    return round(denom / exp * 4) / 4 * exp if denom >= 100 else round(denom)


def draw_north(ax, extent, angle: float) -> None:
    """North arrow in the upper right of the map, on a white rounded backing."""
    minx, miny, maxx, maxy = extent
    size = (maxy - miny) * 0.07
    cx, cy = maxx - (maxx - minx) * 0.045, maxy - (maxy - miny) * 0.05 - size * 0.75
    pad = size * 0.25
    ax.add_patch(
        FancyBboxPatch(
            (cx - size * 0.45, cy - size * 0.6),
            size * 0.9,
            size * 1.45,
            boxstyle=f"round,pad={pad * 0.3},rounding_size={pad}",
            facecolor="white",
            edgecolor="#777777",
            linewidth=0.5,
            alpha=0.95,
            zorder=21,
        )
    )
    dx, dy = -math.sin(angle) * size * 0.8, math.cos(angle) * size * 0.8
    ax.add_patch(
        FancyArrow(
            cx - dx / 2,
            cy - dy / 2 - size * 0.1,
            dx,
            dy,
            width=size * 0.1,
            head_width=size * 0.34,
            head_length=size * 0.34,
            length_includes_head=True,
            color="black",
            zorder=22,
        )
    )
    ax.text(cx, cy + size * 0.55, "N", ha="center", va="center", fontsize=9, weight="bold", zorder=22)


def in_view(gdf, extent):
    minx, miny, maxx, maxy = extent
    idx = gdf.sindex.query(shapely.box(minx, miny, maxx, maxy), predicate="intersects")
    return gdf.iloc[np.sort(idx)]


def plot_parcels(ax, parcels, status, extent, *, lw: float, zone=None, alpha: float = 1.0) -> None:
    """Parcels by status; straddling ones pale and hatched, their part inside ``zone`` filled.

    ``status``: DataFrame (``status``, ``share``) or Series of statuses indexed by idu (as
    :mod:`geo.note` gives it).
    """
    if isinstance(status, pd.Series):
        status = status.to_frame("status")
    view = in_view(parcels, extent)
    if view.empty:
        return
    st = (
        status["status"].reindex(view["idu"]).fillna(OUTSIDE).to_numpy()
        if status is not None
        else np.full(len(view), OUTSIDE, dtype=object)
    )
    colours = np.array([STATUS_COLOURS.get(s, STATUS_COLOURS[OUTSIDE]) for s in st], dtype=object)
    strad = st == STRADDLING
    colours[strad] = STRADDLING_PALE
    plot_geometries(
        ax, view.geometry, color=list(colours), edgecolor="#6b6b6b", linewidth=lw, zorder=1, alpha=alpha
    )
    if strad.any():
        sv = view[strad]
        plot_geometries(
            ax, sv.geometry, facecolor="none", edgecolor="#c9a400", hatch="////", linewidth=0, zorder=1.5
        )
        if zone is not None:
            inside = shapely.intersection(sv.geometry.to_numpy(), zone)
            plot_geometries(
                ax,
                inside,
                color=STATUS_COLOURS[STRADDLING],
                edgecolor="none",
                zorder=1.6,
                alpha=max(alpha, 0.85),
            )
        plot_geometries(ax, sv.boundary, color="#6b6b6b", linewidth=lw, zorder=1.7)


def label_parcels(ax, parcels, extent, map_w_mm: float, *, only=None, shares=None) -> None:
    """Write "section numéro" (and the share of a straddling parcel) on parcels wide enough to hold it."""
    minx, miny, maxx, maxy = extent
    mm_per_m = map_w_mm / (maxx - minx)
    view = in_view(parcels, extent)
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
        share = shares.get(idu) if shares is not None else None
        width_mm = len(label) * font * 0.55 * 25.4 / 72
        if room < 0.7 * width_mm:
            continue
        # Keep the whole label inside the frame (nothing crosses the map's border).
        half_w, half_h = width_mm / 2 / mm_per_m, (3.2 if share else 1.6) / mm_per_m
        if not (minx + half_w <= pt.x <= maxx - half_w and miny + half_h <= pt.y <= maxy - half_h):
            continue
        if share is not None:
            label += "\n" + fmt.percent(share)
        ax.text(
            pt.x,
            pt.y,
            label,
            fontsize=font,
            ha="center",
            va="center",
            color="#222222",
            zorder=6,
            clip_on=True,
            linespacing=1.1,
        )


def hole_polygons(geom) -> list:
    """The holes of a (multi)polygon, as polygons."""
    holes = []
    for poly in shapely.get_parts(geom):
        n = shapely.get_num_interior_rings(poly)
        holes += [shapely.Polygon(shapely.get_interior_ring(poly, i)) for i in range(n)]
    return holes


def plot_perimeters(ax, drawn, styles, *, highlight: str | None = None, notes: list | None = None) -> list:
    """Perimeter outlines, their holes hatched; returns the legend handles.

    The lines explaining the holes are appended to ``notes`` when given.
    """
    handles = []
    notes = notes if notes is not None else []
    for _, row in drawn.iterrows():
        s = styles[row["perimeter_id"]]
        dashed = "dashArray" in s
        lw = (2.4 if row["perimeter_id"] == highlight else 1.4) * (1.3 if s["weight"] >= 4 else 1.0)
        plot_geometries(
            ax, shapely.boundary([row.geometry]), color=s["color"], linewidth=lw,
            linestyle=(0, (5, 3)) if dashed else "-", zorder=5,
        )  # fmt: skip
        label = short_name(row.get("nom") or row["perimeter_id"])
        if row.get("type") == "secteur" and bool(row.get("centre_ville")):
            label += " (centre-ville)"
        elif row.get("type") == "opah_ru":
            label += " (OPAH-RU)"
        handles.append(
            Line2D(
                [], [], color=s["color"], linewidth=lw, linestyle="--" if dashed else "-", label=_plain(label)
            )
        )
        holes = hole_polygons(row.geometry)
        if holes:
            plot_geometries(
                ax, holes, facecolor="none", edgecolor=s["color"], hatch="xx", linewidth=0.6, zorder=4.5
            )
            name = short_name(row.get("nom") or row["perimeter_id"])
            handles.append(
                Patch(
                    facecolor="white",
                    edgecolor=s["color"],
                    hatch="xxx",
                    label=_plain(f"Enclave exclue de « {name} » ({len(holes)})"),
                )
            )
            notes.append(
                f"« {name} » a {len(holes)} enclave(s) exclue(s) (trou(s), hachuré(s) en croix) : "
                "les parcelles qui s'y trouvent ne sont pas dans le périmètre."
            )
    return handles


def draw_inset(
    ax, territory, drawn, styles, focus, extent, *, target=None, title: str = "Situation dans la commune"
):
    """Situation inset on ``ax``: the commune (``territory``, may be None: the perimeters then
    frame it), the perimeters (``focus`` filled, or all when None), the main map's ``extent``
    as a dashed frame and ``target`` (a parcel) as a dot."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_linewidth(0.6)
    parts = [shapely.box(*extent), *drawn.geometry]
    if territory is not None and not territory.is_empty:
        plot_geometries(ax, [territory], facecolor="#f2f2f2", edgecolor="#444444", linewidth=0.6)
        parts.append(territory)
    for _, row in drawn.iterrows():
        s = styles[row["perimeter_id"]]
        filled = focus is None or row["perimeter_id"] == focus
        plot_geometries(
            ax,
            [row.geometry],
            facecolor=s["color"] if filled else "none",
            edgecolor=s["color"],
            linewidth=0.5,
            alpha=0.8 if filled else 1.0,
        )
    minx, miny, maxx, maxy = extent
    ax.add_patch(
        Rectangle(
            (minx, miny),
            maxx - minx,
            maxy - miny,
            fill=False,
            edgecolor="black",
            linewidth=0.8,
            linestyle=(0, (3, 2)),
        )
    )
    if target is not None:
        c = target.centroid
        ax.plot([c.x], [c.y], marker="o", markersize=3.5, color="#0033cc", zorder=5)
    b = shapely.union_all(parts).bounds
    bbox = ax.get_position()
    fig_w, fig_h = ax.figure.get_size_inches()
    w_mm, h_mm = bbox.width * fig_w * 25.4, bbox.height * fig_h * 25.4
    x0, y0, x1, y1 = fit_extent(b, w_mm, h_mm - 5, max(b[2] - b[0], b[3] - b[1]) * 0.03)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("")
    ax.set_ylabel("")
    if title:
        ax.set_title(title, fontsize=7, pad=2)


def section_key(section: object, numero: object = 0) -> tuple:
    """Sort key of a parcel as planners list them: sections by length then alphabet (A…Z, then
    AA…ZZ; ``0A`` is ``A``), numbers numerically — ``D 5`` before ``AB 12``, ``A 9`` before ``A 10``."""
    s = str(section).strip().lstrip("0") or "0"
    digits = re.sub(r"\D", "", str(numero))
    return (len(s), s, int(digits) if digits else 0, str(numero))


def label_places(ax, gdf, extent, map_w_mm: float, **style) -> int:
    """Names of streets or lieux-dits (``voie`` or ``nom``, optional ``angle`` in degrees) at their
    points, those whose whole label fits inside the frame; returns how many were written."""
    if gdf is None or not len(gdf):
        return 0
    minx, miny, maxx, maxy = extent
    mm_per_m = map_w_mm / (maxx - minx)
    view = in_view(gdf, extent)
    name = "voie" if "voie" in view.columns else ("nom" if "nom" in view.columns else None)
    if name is None or view.empty:
        return 0
    size = style.setdefault("fontsize", 5.5)
    pts = shapely.point_on_surface(view.geometry.to_numpy())
    angles = view["angle"] if "angle" in view.columns else [0.0] * len(view)
    n = 0
    for text, pt, angle in zip(view[name], pts, angles, strict=True):
        text = short_name(text)
        w = len(text) * size * 0.5 * 25.4 / 72 / mm_per_m
        if not (minx + w / 2 < pt.x < maxx - w / 2 and miny + w / 2 < pt.y < maxy - w / 2):
            continue
        ax.text(
            pt.x, pt.y, _plain(text), rotation=float(angle), rotation_mode="anchor", ha="center",
            va="center", zorder=6.5, clip_on=True, **style,
        )  # fmt: skip
        n += 1
    return n
