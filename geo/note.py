"""The "note de renseignement ORT": one page per parcel that a notary can file.

:func:`note_pages` draws, from data it is given (no disk, no network), the page of one parcel:
its identity (commune, section, numéro, contenance, the address points on it), a map extract
with the parcel outlined over the sectors and the neighbouring parcels numbered, each perimeter
in force with the share of the parcel inside, the convention and the version in force
(signature, avenants, dates), each dispositif with its verdict, legal reference and caveats
(from :mod:`geo.eligibility.answers`), the data vintages, the dates and the disclaimer line.
When the answers do not fit on one A4 page they continue on a second one rather than being cut.
:func:`write_note` writes the pages as one PDF (text searchable) and optionally PNG.

Drawn with matplotlib in the territory's metric CRS (metres), so the scale bar is exact.
"""

from __future__ import annotations

import datetime as dt
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely
import shapely.ops
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from geo import fmt, projection
from geo.classify import INSIDE, OUTSIDE, STATUS_LABELS, STRADDLING
from geo.errors import InputError
from geo.maps import drawing
from geo.maps.plotting import plot_geometries
from geo.maps.style import CADASTRE_MENTION, STATUS_COLOURS, perimeter_colours
from geo.maps.text import NAME_MAX, clean_text, mpl_text, short_name

__all__ = ["DISCLAIMER", "Note", "human_source", "note_pages", "write_note"]

#: The line printed at the foot of every note.
DISCLAIMER = (
    "Note indicative établie automatiquement à partir des données citées : elle ne constitue ni un "
    "rescrit fiscal, ni une décision de l'Anah, de la CDAC ou de l'administration."
)
VERDICT_LABELS = {"oui": "OUI", "non": "NON", "partiellement": "PARTIELLEMENT", "inconnu": "INCONNU"}
VERDICT_COLOURS = {"oui": "#1b7837", "non": "#b2182b", "partiellement": "#b35806", "inconnu": "#555555"}
TARGET_COLOUR = "#0033cc"
#: A parcel outside the ORT: the nearest sector is brought into the extract up to this distance (m).
NEAREST_SHOWN_M = 600.0
ADDRESS_COLOUR = "#d7191c"

_W, _H = 210.0, 297.0  # A4 portrait, mm
_M = 10.0
_LINE = 2.62  # mm per 6.8-pt line
_SMALL = 6.8  # left column
_BODY = 8.0  # the dispositifs
_MM = 1 / 25.4
# ``ps.fonttype`` too: matplotlib's PDF writer reads it to split a font's characters into subsets
# of 256 (Type 3's limit): with 42, each font is embedded once (not twice, once for "→", "⚠", "…").
_RC = {"pdf.fonttype": 42, "ps.fonttype": 42, "font.family": "DejaVu Sans", "text.usetex": False}


@dataclass
class Note:
    """The pages of one parcel's note (``name``: file stem, e.g. ``note-91216000AC0100``)."""

    name: str
    idu: str
    pages: list[Figure]
    lines: list[str] = field(default_factory=list)  # the note's text, for the CLI and tests


#: Most lines of one paragraph: the last guard when text from data (a name inside an answer's
#: reason) is still long; the note's own paragraphs take at most 5.
PARA_MAX_LINES = 10


def _shorten_names(text: str, names) -> str:
    """``text`` with each long name of ``names`` it quotes cut as :func:`short_name` cuts it."""
    text = clean_text(text)
    for name in names:
        full = clean_text(name)
        if len(full) > NAME_MAX and full in text:
            text = text.replace(full, short_name(full))
    return text


_plain = mpl_text


def _type_label(ptype: str, centre: bool) -> str:
    if ptype == "opah_ru":
        return "périmètre OPAH-RU"
    if ptype == "secteur":
        return "secteur d'intervention" + (" (centre-ville)" if centre else "")
    return str(ptype or "périmètre")


class _Writer:
    """Text flowing down the page(s) in millimetres, a new page when the current one is full."""

    def __init__(self, header: str, subtitle: str, footer: list[str], reference: str = ""):
        self.header, self.subtitle, self.footer, self.reference = header, subtitle, footer, reference
        self.pages: list[Figure] = []
        self.lines: list[str] = []
        self.bottom = _M + 4 * _LINE + 2
        self.new_page()

    def new_page(self) -> None:
        fig = Figure(figsize=(_W * _MM, _H * _MM), dpi=150)
        self.pages.append(fig)
        self.fig = fig
        more = " (suite)" if len(self.pages) > 1 else ""
        self.text(_M, _H - _M, self.header + more, size=15, weight="bold")
        self.text(_M, _H - _M - 7.5, self.subtitle, size=9.5, color="#333333")
        if self.reference:
            self.fig.text(
                (_W - _M) / _W, (_H - _M) / _H, _plain(self.reference), fontsize=7.5, va="top", ha="right",
                color="#333333",
            )  # fmt: skip
        y = _M + (len(self.footer) - 1) * _LINE
        for line in self.footer:
            self.text(_M, y, line, size=6.3, color="#333333")
            y -= _LINE
        self.y = _H - _M - 14

    def text(self, x: float, y: float, s: str, *, size: float = 6.8, **kw):
        return self.fig.text(x / _W, y / _H, _plain(s), fontsize=size, va="top", ha="left", **kw)

    def number_pages(self) -> None:
        """ "page k/n" at the foot of every page, once the text has flowed."""
        n = len(self.pages)
        for k, fig in enumerate(self.pages, start=1):
            fig.text(
                (_W - _M) / _W, _M / _H, f"page {k}/{n}", fontsize=8, weight="bold", va="top", ha="right"
            )

    def need(self, height: float) -> None:
        if self.y - height < self.bottom:
            self.new_page()

    def title(self, s: str, *, x: float = _M) -> None:
        s = clean_text(s)
        self.need(4 * _LINE)
        self.y -= 1.5
        self.text(x, self.y, s, size=9, weight="bold", color="#0b3c5d")
        self.lines.append(s)
        self.y -= 4.4

    def para(
        self,
        s: str,
        *,
        x: float = _M,
        width_mm: float = _W - 2 * _M,
        size: float = 6.8,
        indent: str = "",
        max_lines: int = PARA_MAX_LINES,
        **kw,
    ):
        s = clean_text(s)
        per_char = 0.6 if kw.get("weight") == "bold" else 0.545  # DejaVu Sans, average French text
        chars = max(int(width_mm / (size * per_char * 25.4 / 72)), 20)
        wrapped = textwrap.wrap(s, chars, subsequent_indent=indent, max_lines=max_lines, placeholder=" …")
        wrapped = wrapped or [""]
        step = _LINE * size / 6.8
        for line in wrapped:
            self.need(step)
            self.text(x, self.y, line, size=size, **kw)
            self.y -= step
        self.lines.append(s)


def _map(
    fig, box_mm, parcels, drawn, styles, target, status, points, crs, *, zone=None, streets=None, nearest=None
):
    """The map extract: the parcel outlined (the part of a straddling parcel inside the ORT
    filled), its neighbours numbered, sectors, street names, address points, a situation inset
    (top left);
    ``nearest`` (name, geometry, distance in m) draws the way to the nearest sector."""
    x, y, w, h = box_mm
    ax = fig.add_axes((x / _W, y / _H, w / _W, h / _H))
    b = target.bounds
    if nearest is not None and nearest[2] <= NEAREST_SHOWN_M:
        a_pt, s_pt = shapely.ops.nearest_points(target, nearest[1])
        b = shapely.union_all([target, s_pt.buffer(15.0)]).bounds
    size = max(b[2] - b[0], b[3] - b[1])
    margin = max(drawing.PARCEL_MARGIN_M, 0.9 * size if nearest is None else 0.25 * size)
    extent = drawing.fit_extent(b, w, h, margin)
    ax.set_xlim(extent[0], extent[2])
    ax.set_ylim(extent[1], extent[3])
    ax.set_aspect("equal", adjustable="box")
    ax.set_xticks([])
    ax.set_yticks([])
    drawing.plot_parcels(ax, parcels, status, extent, lw=0.35, zone=zone)
    handles = drawing.plot_perimeters(ax, drawn, styles) if len(drawn) else []
    plot_geometries(ax, shapely.boundary([target]), color=TARGET_COLOUR, linewidth=2.4, zorder=8)
    handles.append(Line2D([], [], color=TARGET_COLOUR, linewidth=2.4, label="Parcelle objet de la note"))
    if nearest is not None and nearest[2] <= NEAREST_SHOWN_M:
        ax.plot(
            [a_pt.x, s_pt.x],
            [a_pt.y, s_pt.y],
            color="#111111",
            linewidth=1.0,
            linestyle=(0, (3, 2)),
            zorder=9,
        )
        ax.text(
            (a_pt.x + s_pt.x) / 2, (a_pt.y + s_pt.y) / 2, f" {fmt.number(round(nearest[2]))} m",
            fontsize=6.5, weight="bold", ha="left", va="center", zorder=10, clip_on=True,
            bbox=dict(facecolor="white", edgecolor="none", alpha=0.85, pad=0.8),
        )  # fmt: skip
        handles.append(
            Line2D(
                [],
                [],
                color="#111111",
                linewidth=1.0,
                linestyle="--",
                label="Distance au secteur le plus proche",
            )
        )
    if points is not None and len(points):
        ax.scatter(points.x, points.y, s=14, color=ADDRESS_COLOUR, edgecolor="white", linewidth=0.6, zorder=9)
        handles.append(
            Line2D([], [], marker="o", linestyle="none", color=ADDRESS_COLOUR, label="Point d'adresse")
        )
    shares = None
    if isinstance(status, pd.DataFrame) and "share" in status:
        strad = status[status["status"] == STRADDLING]
        shares = dict(zip(strad.index, strad["share"], strict=True))
    drawing.label_parcels(ax, parcels, extent, w, shares=shares)
    drawing.label_places(ax, streets, extent, w, fontsize=6.0, color="#1d3557", weight="bold")
    ax.set_xlim(extent[0], extent[2])
    ax.set_ylim(extent[1], extent[3])
    ax.set_xlabel("")
    ax.set_ylabel("")
    length, scale = drawing.draw_scale_bar(ax, extent, w)
    drawing.draw_north(
        ax, extent, drawing.north_angle(crs, (extent[0] + extent[2]) / 2, (extent[1] + extent[3]) / 2)
    )
    if len(drawn):
        # Situation inset in the lower right corner: every sector, the extract's frame, the parcel.
        iw, ih = 24.0, 21.0
        inset = fig.add_axes((x / _W, (y + h - ih) / _H, iw / _W, ih / _H))
        inset.set_facecolor("white")
        drawing.draw_inset(inset, None, drawn, styles, None, extent, target=target, title="")
        inset.set_zorder(25)
    handles += [
        Patch(facecolor=STATUS_COLOURS[INSIDE], edgecolor="#6b6b6b", label="Parcelle incluse (ORT)"),
        Patch(
            facecolor=drawing.STRADDLING_PALE, edgecolor="#c9a400", hatch="////",
            label="Parcelle à cheval : partie hors ORT",
        ),
        Patch(
            facecolor=STATUS_COLOURS[STRADDLING],
            edgecolor="#6b6b6b",
            label="Parcelle à cheval : partie dans l'ORT",
        ),
        Patch(facecolor=STATUS_COLOURS[OUTSIDE], edgecolor="#6b6b6b", label="Parcelle hors ORT"),
    ]  # fmt: skip
    return handles, length, scale


def note_pages(
    idu: str,
    *,
    parcels: gpd.GeoDataFrame,
    perimeters: gpd.GeoDataFrame | None,
    classification: pd.DataFrame | None,
    answers: Sequence,
    convention=None,
    commune_name: str = "",
    addresses: pd.DataFrame | None = None,
    query: str | None = None,
    match_line: str | None = None,
    sources: Sequence[str] = (),
    when: dt.date,
    production_date: dt.date | None = None,
) -> Note:
    """Draw the note of one parcel.

    Parameters
    ----------
    idu : str
        The parcel's 14-character IDU; it must be in ``parcels``.
    parcels : GeoDataFrame
        The cadastre around it (``idu``, ``section``, ``numero``, ``contenance``), metric CRS
        (metres); ``attrs["millesime"]`` is printed.
    perimeters : GeoDataFrame or None
        Perimeters in force on ``when`` (:meth:`geo.perimeters.Convention.perimeters`), same
        CRS; None when no version is in force.
    classification : DataFrame or None
        :func:`geo.classify.classify_parcels` rows of this parcel (at least).
    answers : sequence of geo.eligibility.answers.Answer
        The parcel's answers (:func:`geo.eligibility.answers.eligibility_for_parcels`).
    convention : geo.perimeters.Convention, optional
        Its signature, duration and versions (avenants) are printed.
    commune_name : str
        Name of the commune (else the one in the answers).
    addresses : DataFrame, optional
        Address points (``label``, ``lon``, ``lat`` in WGS84 degrees) to list and draw when
        they fall on the parcel.
    query, match_line : str, optional
        The address asked and how it was matched (label, score, source).
    sources : sequence of str
        Data vintages to print (lists, rules, addresses…), one line each.
    when : date
        Date the situation is evaluated at.
    production_date : date, optional
        Date the note is drawn (default today).

    Returns
    -------
    Note
    """
    from matplotlib import rc_context

    with rc_context(_RC):
        return _note_pages(
            idu, parcels=parcels, perimeters=perimeters, classification=classification, answers=answers,
            convention=convention, commune_name=commune_name, addresses=addresses, query=query,
            match_line=match_line, sources=sources, when=when, production_date=production_date,
        )  # fmt: skip


def _note_pages(
    idu, *, parcels, perimeters, classification, answers, convention, commune_name, addresses, query,
    match_line, sources, when, production_date,
):  # fmt: skip
    crs = projection.require_metric(parcels, source="parcels")
    match = parcels[parcels["idu"] == idu]
    if match.empty:
        raise InputError(
            f"parcelle {idu} absente du cadastre (millésime {parcels.attrs.get('millesime', 'inconnu')})",
            feature=idu,
            fix="vérifiez l'identifiant avec `ort check`",
        )
    row = match.iloc[0]
    target = row.geometry
    today = production_date or dt.date.today()
    mine = [a for a in answers if getattr(a, "idu", None) in (idu, None)]
    # Names from data the answers quote (perimeters, convention, commune): cut where they appear.
    known = [*(perimeters["nom"].astype(str) if perimeters is not None and "nom" in perimeters else [])]
    known += [convention.nom] if convention is not None else []
    known += [commune_name] + [a.commune for a in mine if a.commune]
    known = sorted({clean_text(n) for n in known if n}, key=len, reverse=True)

    def said(s: object) -> str:
        return _shorten_names(s, known)

    edition = getattr(convention, "edition", None)
    names = getattr(convention, "communes_noms", None) or {}
    from_answers = next((a.commune for a in mine if a.commune and not a.commune.startswith("(")), "")
    commune = short_name(commune_name or names.get(idu[:5]) or from_answers)
    section = str(row.get("section", idu[8:10])).lstrip("0") or "0"
    numero = int(str(row.get("numero", idu[10:])))
    fict = convention is not None and convention.fictif
    place = f"{commune} ({idu[:5]})" if commune and len(commune) <= 32 else f"commune {idu[:5]}"
    if query:
        subtitle = f"{short_name(query, 70)} — parcelle {section} {numero}, {place} — au {fmt.date_fr(when)}"
    else:
        subtitle = f"Parcelle {section} {numero} — {place} — IDU {idu} — situation au {fmt.date_fr(when)}"
    ref = getattr(edition, "reference", "") if edition is not None else ""
    reference = f"Réf. {short_name(ref, 40)}/{idu[5:]}" if ref else f"Réf. {idu}"
    footer = [
        f"Établie le {fmt.date_fr(today)} par ort — situation évaluée au {fmt.date_fr(when)}."
        + (" COMMUNE FICTIVE — données de démonstration." if fict else ""),
        DISCLAIMER,
        CADASTRE_MENTION + ".",
    ]
    w = _Writer("Note de renseignement ORT", subtitle, footer, reference)
    col = 96.0  # width of the left column, mm
    top = w.y

    # --- the map, top right
    drawn = (
        perimeters[perimeters["type"] != "ort"].reset_index(drop=True)
        if perimeters is not None
        else gpd.GeoDataFrame({"perimeter_id": [], "type": [], "nom": []}, geometry=[], crs=crs)
    )
    styles = perimeter_colours(drawn)
    status = None
    if classification is not None and len(classification) and (classification["perimeter_id"] == "ort").any():
        status = classification[classification["perimeter_id"] == "ort"].set_index("idu")[["status", "share"]]
    zone = None
    if perimeters is not None and (perimeters["type"] == "ort").any():
        zone = perimeters.loc[perimeters["type"] == "ort"].geometry.iloc[0]
    elif len(drawn):
        zone = shapely.union_all(drawn.loc[drawn["type"] != "opah_ru"].geometry.to_numpy())
    nearest = None
    sectors = drawn[drawn["type"] != "opah_ru"] if len(drawn) else drawn
    if len(sectors) and zone is not None and not target.intersects(zone):
        dist = shapely.distance(target, sectors.geometry.to_numpy())
        k = int(dist.argmin())
        nearest = (str(sectors["nom"].iloc[k]), sectors.geometry.iloc[k], float(dist[k]))
    points = None
    on_parcel: list[str] = []
    streets = None
    if addresses is not None and len(addresses):
        pts = gpd.GeoSeries(gpd.points_from_xy(addresses["lon"], addresses["lat"]), crs=projection.WGS84)
        pts = pts.to_crs(crs)
        inside = pts.within(target.buffer(0.5)).to_numpy()
        points = pts[inside]
        on_parcel = list(dict.fromkeys(addresses.loc[inside, "label"].astype(str)))
        if "voie" in addresses.columns:
            from geo.maps.streets import street_labels

            near_pts = pts.distance(target).to_numpy() <= 400
            if near_pts.any():
                streets = street_labels(addresses.loc[near_pts], crs)
    map_box = (_M + col + 4, top - 78, _W - 2 * _M - col - 4, 78)
    handles, length, scale = _map(
        w.fig, map_box, parcels, drawn, styles, target, status, points, crs,
        zone=zone, streets=streets, nearest=nearest,
    )  # fmt: skip
    leg = w.fig.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(map_box[0] / _W, (map_box[1] - 1) / _H),
        fontsize=5.8, frameon=False, ncol=2, handlelength=1.6, columnspacing=1.0,
    )  # fmt: skip
    leg.set_in_layout(False)
    w.text(
        map_box[0], map_box[1] - 1 - 3.2 * ((len(handles) + 1) // 2) - 1,
        f"Échelle 1:{fmt.number(scale)} à l'impression A4 — barre {_scale_text(length)}",
        size=5.8, color="#333333",
    )  # fmt: skip

    # --- left column: the parcel, the perimeters, the convention
    w.title("La parcelle", x=_M)
    cont = row.get("contenance")
    lines = [
        f"Commune : {commune} (INSEE {idu[:5]})" if commune else f"Commune : INSEE {idu[:5]}",
        f"Section : {section}   Numéro : {numero}"
        + (f"   Préfixe : {idu[5:8]}" if idu[5:8] != "000" else ""),
        f"Identifiant cadastral (IDU) : {idu}",
        "Contenance cadastrale : "
        + (fmt.area_m2(float(cont)) if cont is not None and not pd.isna(cont) else "inconnue"),
        f"Surface calculée (Lambert) : {fmt.area_m2(target.area)}",
    ]
    if query:
        lines.append(f"Adresse demandée : {short_name(query, 160)}")
    if match_line:
        lines.append(short_name(match_line, 200))
    if on_parcel:
        lines.append(
            f"Points d'adresse sur la parcelle : {', '.join(short_name(a, 60) for a in on_parcel[:6])}"
            + ("…" if len(on_parcel) > 6 else "")
        )
    elif addresses is not None:
        lines.append("Points d'adresse sur la parcelle : aucun dans le fichier d'adresses")
    for line in lines:
        w.para(line, width_mm=col, size=_SMALL)

    w.title("Périmètres en vigueur et part de la parcelle", x=_M)
    if perimeters is None or drawn.empty:
        w.para("Aucun périmètre en vigueur à cette date.", width_mm=col, size=_SMALL)
    else:
        rows = classification[classification["idu"] == idu] if classification is not None else pd.DataFrame()
        by_id = {r.perimeter_id: r for r in rows.itertuples()} if len(rows) else {}
        for p in [*perimeters.itertuples()]:
            r = by_id.get(p.perimeter_id)
            name = (
                "ORT (ensemble des secteurs)"
                if p.type == "ort"
                else f"{short_name(p.nom)} — {_type_label(p.type, bool(getattr(p, 'centre_ville', False)))}"
            )
            if r is None:
                verdict = "non évalué"
            else:
                verdict = f"{STATUS_LABELS[r.status]} — {fmt.percent(float(r.share))} de la parcelle"
                if r.status != OUTSIDE:
                    verdict += f" ({fmt.area_m2(float(r.area_inside_m2))})"
            w.para(f"{name} : {verdict}", width_mm=col, size=_SMALL)
        if nearest is not None:
            w.para(
                f"Hors des secteurs de l'ORT : le plus proche, « {short_name(nearest[0])} », est à "
                f"{fmt.number(round(nearest[2]))} m de la parcelle"
                + ("" if nearest[2] <= NEAREST_SHOWN_M else " (hors de l'extrait)")
                + ".",
                width_mm=col, size=_SMALL, weight="bold",
            )  # fmt: skip

    w.title("Convention", x=_M)
    if convention is not None:
        a = perimeters.attrs if perimeters is not None else {}
        conv_lines = [
            f"{short_name(convention.nom)} ({short_name(convention.programme, 30)})",
            f"Signée le {fmt.date_fr(convention.date_signature)} pour {fmt.number(convention.duree_ans)} ans "
            f"(fin prévue le {fmt.date_fr(convention.date_fin)})",
        ]
        if a.get("version_libelle"):
            conv_lines.append(
                f"Version en vigueur : « {short_name(a['version_libelle'])} », depuis le "
                f"{fmt.date_fr(dt.date.fromisoformat(a['version_date']))}"
            )
        else:
            conv_lines.append("Aucune version des périmètres en vigueur à cette date")
        for v in convention.versions:
            end = f" au {fmt.date_fr(v.date_fin)}" if getattr(v, "date_fin", None) else ""
            conv_lines.append(f"• {short_name(v.libelle)} : à compter du {fmt.date_fr(v.date_effet)}{end}")
        for line in conv_lines:
            w.para(line, width_mm=col, size=_SMALL)
    else:
        w.para("Aucune convention donnée.", width_mm=col, size=_SMALL)
    # --- data vintages
    w.title("Données utilisées", x=_M)
    a = perimeters.attrs if perimeters is not None else {}
    vintages = [
        f"Cadastre : DGFiP, édition Etalab, millésime {parcels.attrs.get('millesime') or 'inconnu'}",
    ]
    if a.get("version_libelle"):
        vintages.append(
            f"Périmètres : {short_name(a.get('convention', ''))}, "
            f"version « {short_name(a['version_libelle'])} » "
            f"du {fmt.date_fr(a['version_date'])}"
        )
    used = [said(d) for ans in mine for d in ans.data_used if not d.startswith("Périmètres :")]
    lines = list(dict.fromkeys(short_name(human_source(s), 240) for s in [*vintages, *used, *sources]))
    for line in lines:
        w.para(f"• {line}", size=6.2, width_mm=col, indent="  ", max_lines=4)
    w.y = min(w.y, map_box[1] - 1 - 3.2 * ((len(handles) + 1) // 2) - 5)

    # --- full width: the dispositifs
    w.title(f"Dispositifs au {fmt.date_fr(when)}")
    # A caveat shared by several answers (list vintage, fictive convention…) is printed once, below.
    counts: dict[str, int] = {}
    for ans in mine:
        for c in dict.fromkeys(ans.caveats):
            counts[c] = counts.get(c, 0) + 1
    shared = [c for c, n in counts.items() if n > 1]
    for ans in mine:
        share = (
            f" ({fmt.percent(float(ans.share))} de la parcelle)"
            if ans.verdict == "partiellement" and ans.share is not None
            else ""
        )
        w.need(4 * _LINE * _BODY / 6.8)
        w.para(said(ans.effect_label), weight="bold", size=_BODY + 0.6)
        w.para(
            f"→ {VERDICT_LABELS.get(ans.verdict, ans.verdict)}{share} : {said(ans.reason)}",
            x=_M + 3,
            width_mm=_W - 2 * _M - 3,
            size=_BODY,
            color=VERDICT_COLOURS.get(ans.verdict, "#222222"),
        )
        own = [c for c in ans.caveats if c not in shared]
        # Reference, period and caveats in one paragraph: short caveats would each waste a line.
        w.para(
            f"Référence : {said(ans.reference)} — période : {said(_period(ans.period, ans.reference))}"
            + ("".join(f" ⚠ {said(c).rstrip(' .;')}" + " ;" for c in own).rstrip(" ;") if own else ""),
            x=_M + 3,
            width_mm=_W - 2 * _M - 3,
            size=_BODY,
            color="#333333",
        )
        w.y -= 1.0
    if shared:
        w.para(
            "Réserves communes à plusieurs dispositifs : ⚠ "
            + " ⚠ ".join(said(c).rstrip(" .;") + " ;" for c in shared).rstrip(" ;"),
            size=_BODY,
            color="#444444",
        )
    if not mine:
        w.para("Aucune réponse d'éligibilité.")
    _signature_block(w, edition, today)
    w.number_pages()

    return Note(name=f"note-{idu}", idu=idu, pages=w.pages, lines=w.lines)


def _period(period: str, reference: str) -> str:
    """The period without its source in brackets when the reference already cites that text
    (Denormandie: "loi n° 2024-322" in both)."""
    m = re.search(r"\s*\(([^()]*)\)\s*$", period or "")
    if m:
        law = re.search(r"n°\s*[\d-]+", m.group(1))
        if law and law.group(0).replace(" ", "") in (reference or "").replace(" ", ""):
            return period[: m.start()]
    return period


_FILE = r"[\w.-]+\.(?:csv|tsv|yaml|yml|toml|json|geojson|gpkg|xlsx|zip)(?:\.gz)?"
_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")


def human_source(text: str) -> str:
    """A data source as a reader names it: internal file names (and the copy details in brackets
    after them) left out, ISO dates written the French way (``2024-07-01`` → ``01/07/2024``).

    >>> human_source("Règles : regles-eligibilite.toml, version 2026-12-07, vérifié le 07/12/2026")
    "Règles d'éligibilité d'ort, version du 07/12/2026, vérifié le 07/12/2026"
    >>> human_source("Suivi national des ORT (DGALN/ANCT) — ort-suivi.csv, dernière actualisation 18/09/2024")
    'Suivi national des ORT (DGALN/ANCT), dernière actualisation 18/09/2024'
    """
    text = clean_text(text)
    text = re.sub(r"^Règles : regles-eligibilite\.toml", "Règles d'éligibilité d'ort", text)
    text = re.sub(rf"\s+—\s+{_FILE}(?:\s*\([^()]*\))?", "", text)
    text = re.sub(rf"(fichier \w+) {_FILE}", r"\1", text)
    text = re.sub(rf":\s*{_FILE}(?:\s*\([^()]*\))?", ": fichier fourni", text)
    text = re.sub(r"\bversion (\d{4}-\d{2}-\d{2})", r"version du \1", text)
    return _ISO.sub(lambda m: f"{m.group(3)}/{m.group(2)}/{m.group(1)}", text)


def _signature_block(w: _Writer, edition, today: dt.date) -> None:
    """Who issues the note: reference, service, contact, and a box to sign in."""
    service = getattr(edition, "service", "") if edition is not None else ""
    contact = getattr(edition, "contact", "") if edition is not None else ""
    signataire = getattr(edition, "signataire", "") if edition is not None else ""
    box_h = 24.0
    w.need(4.4 + 1.5 + box_h + 2)
    w.title("Délivrance de la note")
    top = w.y
    lines = [
        f"Service : {service}" if service else "Service : —",
        f"Contact : {contact}" if contact else "Contact : —",
        f"Fait le {fmt.date_fr(today)}" + (f" — {signataire}" if signataire else ""),
    ]
    for line in lines:
        w.para(line, size=_BODY, width_mm=110)
    x0 = _W - _M - 70
    w.fig.add_artist(
        Rectangle(
            (x0 / _W, (top - box_h) / _H), 70 / _W, box_h / _H, transform=w.fig.transFigure,
            fill=False, edgecolor="#555555", linewidth=0.6,
        )
    )  # fmt: skip
    w.text(x0 + 2, top - 1.5, "Signature et cachet", size=7, color="#555555")
    w.y = min(w.y, top - box_h - 2)


def _scale_text(length: float) -> str:
    return f"{fmt.number(length / 1000)} km" if length >= 1000 else f"{fmt.number(length)} m"


def write_note(note: Note, pdf_path: str | Path, *, png: bool = False, force: bool = False) -> list[Path]:
    """Write the note as one PDF (and, with ``png``, one PNG per page beside it), atomically.

    Returns
    -------
    list of Path
        The files written; nothing is written when one exists and ``force`` is false.
    """
    from matplotlib import rc_context
    from matplotlib.backends.backend_pdf import PdfPages

    from geo.io import atomic_path, check_writable

    pdf_path = Path(pdf_path)
    pngs = []
    if png:
        n = len(note.pages)
        pngs = [
            pdf_path.with_name(f"{pdf_path.stem}{'' if n == 1 else f'-{k}'}.png") for k in range(1, n + 1)
        ]
    for path in [pdf_path, *pngs]:
        check_writable(path, force=force)
    written = []
    with rc_context(_RC):
        with atomic_path(pdf_path, force=force) as tmp:
            with PdfPages(
                tmp, metadata={"Creator": "ort", "Title": f"Note de renseignement ORT {note.idu}"}
            ) as doc:
                for fig in note.pages:
                    doc.savefig(fig)
        written.append(pdf_path)
        for fig, path in zip(note.pages if png else [], pngs, strict=True):
            with atomic_path(path, force=force) as tmp:
                fig.savefig(tmp, format="png", dpi=200, metadata={"Software": "ort"})
            written.append(path)
    return written
