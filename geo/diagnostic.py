"""Tables and charts of a diagnostic study: a convention's sectors, and the national programmes.

The diagnostic notebooks (``notebooks/02_diagnostic_centre_ville.ipynb``,
``notebooks/03_programmes_nationaux.ipynb``) hold no logic of their own: each table and chart
they show comes from here, built on the readers of :mod:`geo.perimeters`, :mod:`geo.classify`,
:mod:`geo.places.housing`, :mod:`geo.places.friches`, :mod:`geo.places.actions` and :mod:`geo.sources.lists`.

- Convention: :func:`sector_table` (parcels and areas per sector), :func:`straddling_parcels`,
  :func:`housing_per_sector`, :func:`friches_by_status`, :func:`budgets_by_axe`,
  :func:`budget_axe_statut`, :func:`actions_layer` (the actions layer of
  :func:`geo.maps.page.convention_map`).
- National lists: :func:`ort_signed_per_year`, :func:`ort_per_departement`,
  :func:`programme_counts`, :func:`programme_per_commune`, and the boundaries of
  :func:`commune_shapes`.
- Charts, as :class:`matplotlib.figure.Figure` (no pyplot state; they display inline in
  Jupyter): :func:`bar_figure`, :func:`programme_map_figure`.

Computations take and return tables; only :func:`friches_file`, :func:`commune_shapes` and
:func:`departement_names` look at a data folder, and say ``None`` when it lacks the file.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from geo import projection
from geo.classify import INSIDE, STRADDLING
from geo.perimeters import ORT_ID
from geo.places.actions import FINANCEMENT_STATUTS, STATUTS, Register, action_geometries, actions_table
from geo.places.common import OUTSIDE_ID, UNLOCATED_ID
from geo.places.friches import FRICHE_STATUTS
from geo.sources.lists import NationalLists

CARTOFRICHES = "cartofriches/cartofriches-sites-*.geojson"
COMMUNE_SHAPES = "communes-*-france-geojson/communes-{dep}-*.geojson"
DEPARTEMENTS = "decoupage-administratif/departements.json"

#: Categories of :func:`programme_per_commune`, in legend order, with their map colours.
PROGRAMME_COLOURS = {
    "ACV": "#e41a1c",
    "PVD, ORT signée": "#377eb8",
    "PVD, ORT non signée": "#a6cee3",
    "ORT signée hors ACV/PVD": "#4daf4a",
    "Aucun de ces programmes": "#f0f0f0",
}
#: Colours of the action statuses (:data:`geo.places.actions.STATUTS`) in the charts.
STATUT_COLOURS = ["#1f78b4", "#ff7f00", "#b2df8a", "#33a02c", "#999999"]
#: ORT status of a commune in the national follow-up.
ORT_SIGNEE, ORT_EN_COURS, ORT_NON_SIGNEE, ORT_ABSENTE = "signée", "en cours", "non signée", "absente du suivi"

# --------------------------------------------------------------------------------------------
# One convention


def sector_table(classification: pd.DataFrame, perimeters: gpd.GeoDataFrame) -> pd.DataFrame:
    """Parcels and areas per perimeter, in the order of the perimeters.

    Parameters
    ----------
    classification : DataFrame
        :func:`geo.classify.classify_parcels` of the parcels against ``perimeters``
        (``only_intersecting=True`` is enough).
    perimeters : GeoDataFrame
        :meth:`geo.perimeters.Convention.perimeters`, geometry in a metric CRS (metres).

    Returns
    -------
    DataFrame
        ``perimeter_id``, ``nom``, ``type``, ``centre_ville``, ``surface_ha`` (of the
        perimeter), ``parcelles_incluses``, ``parcelles_a_cheval``, ``surface_parcelles_ha``
        (parcel area inside the perimeter, straddling parcels counted for their part inside),
        ``part_parcellaire`` (that area over the perimeter's: the rest is streets and public
        space not in the cadastre).
    """
    projection.require_metric(perimeters, source="perimeters")
    hit = classification[classification["status"].isin([INSIDE, STRADDLING])]
    rows = []
    for p in perimeters.itertuples():
        mine = hit[hit["perimeter_id"] == p.perimeter_id]
        area_ha = p.geometry.area / 1e4
        inside_ha = mine["area_inside_m2"].sum() / 1e4
        rows.append(
            {
                "perimeter_id": p.perimeter_id,
                "nom": p.nom,
                "type": p.type,
                "centre_ville": bool(p.centre_ville) if pd.notna(p.centre_ville) else False,
                "surface_ha": round(area_ha, 2),
                "parcelles_incluses": int((mine["status"] == INSIDE).sum()),
                "parcelles_a_cheval": int((mine["status"] == STRADDLING).sum()),
                "surface_parcelles_ha": round(inside_ha, 2),
                "part_parcellaire": round(inside_ha / area_ha, 3) if area_ha else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def straddling_parcels(classification: pd.DataFrame, *, include_ort: bool = False) -> pd.DataFrame:
    """The parcels cut by a perimeter boundary, least inside first.

    Parameters
    ----------
    classification : DataFrame
        :func:`geo.classify.classify_parcels` result.
    include_ort : bool
        Also list the rows of the ``ort`` union (a parcel cut by two adjoining sectors is
        then inside the ORT but straddles each sector).

    Returns
    -------
    DataFrame
        ``idu``, ``perimeter_id``, ``perimeter_nom``, ``share`` (of the parcel inside),
        ``area_inside_m2``, ``area_outside_m2``, ``parcel_area_m2`` (m², metric CRS).
    """
    rows = classification[classification["status"] == STRADDLING]
    if not include_ort:
        rows = rows[rows["perimeter_id"] != ORT_ID]
    out = rows[["idu", "perimeter_id", "perimeter_nom", "share", "area_inside_m2", "parcel_area_m2"]].copy()
    out.insert(5, "area_outside_m2", out["parcel_area_m2"] - out["area_inside_m2"])
    order = {pid: i for i, pid in enumerate(dict.fromkeys(classification["perimeter_id"]))}
    out["_o"] = out["perimeter_id"].map(order)
    return out.sort_values(["_o", "share", "idu"]).drop(columns="_o").reset_index(drop=True)


def housing_per_sector(
    in_perimeters: pd.DataFrame, *, perimeters: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Social housing sites and dwellings per perimeter, all landlords together.

    Parameters
    ----------
    in_perimeters : DataFrame
        :func:`geo.places.housing.sites_in_perimeters` result.
    perimeters : DataFrame, optional
        The perimeters (``perimeter_id``, ``nom``): rows in their order, with 0 for a
        perimeter without any site.

    Returns
    -------
    DataFrame
        ``perimeter_id``, ``perimeter_nom``, ``sites``, ``logements`` (known counts summed),
        ``sites_sans_nombre``, ``dont_a_cheval``; the pseudo-perimeters ``hors-perimetres``
        and ``non-localise`` last.
    """
    df = in_perimeters.copy()
    df["_unknown"] = df["logements"].isna()
    df["_straddling"] = df["status"].eq(STRADDLING)
    df["_n"] = df["logements"].fillna(0).astype(int)
    out = (
        df.groupby(["perimeter_id", "perimeter_nom"], sort=False)
        .agg(
            sites=("site_id", "nunique"),
            logements=("_n", "sum"),
            sites_sans_nombre=("_unknown", "sum"),
            dont_a_cheval=("_straddling", "sum"),
        )
        .reset_index()
    )
    names = (
        dict(zip(perimeters["perimeter_id"], perimeters["nom"], strict=True))
        if perimeters is not None
        else {}
    )
    missing = [
        {"perimeter_id": pid, "perimeter_nom": nom, "sites": 0, "logements": 0}
        for pid, nom in names.items()
        if pid not in set(out["perimeter_id"])
    ]
    if missing:
        out = pd.concat([out, pd.DataFrame(missing, columns=out.columns)], ignore_index=True).fillna(0)
    order = {pid: i for i, pid in enumerate(names)}
    order.update({OUTSIDE_ID: 10_000, UNLOCATED_ID: 10_001})
    out = out.sort_values("perimeter_id", key=lambda s: s.map(lambda p: order.get(p, 5_000)), kind="stable")
    counts = ["sites", "logements", "sites_sans_nombre", "dont_a_cheval"]
    return out.astype(dict.fromkeys(counts, int)).reset_index(drop=True)


def friches_file(data_dir: str | Path) -> Path | None:
    """The Cartofriches GeoJSON of a data folder laid out like ``../shared/data``, or None."""
    found = sorted(Path(data_dir).glob(CARTOFRICHES))
    return found[-1] if found else None


def friches_by_status(friches: pd.DataFrame) -> pd.DataFrame:
    """Count friches and their declared surface per status (CNIG order), with a total row.

    Parameters
    ----------
    friches : DataFrame
        :func:`geo.places.friches.read_friches` result (``site_statut``, ``surface_m2``).

    Returns
    -------
    DataFrame
        ``site_statut``, ``nombre``, ``surface_m2`` (sum of the surfaces the source gives),
        ``surface_inconnue`` (sites without one); last row ``Total``.
    """
    present = list(dict.fromkeys(friches["site_statut"]))
    order = [s for s in FRICHE_STATUTS if s in present] + [s for s in present if s not in FRICHE_STATUTS]
    rows = []
    for statut in order:
        part = friches[friches["site_statut"] == statut]
        rows.append(_friche_row(statut, part))
    rows.append(_friche_row("Total", friches))
    return pd.DataFrame(rows, columns=["site_statut", "nombre", "surface_m2", "surface_inconnue"])


def _friche_row(label: str, part: pd.DataFrame) -> dict:
    return {
        "site_statut": label,
        "nombre": len(part),
        "surface_m2": round(float(part["surface_m2"].sum())),
        "surface_inconnue": int(part["surface_m2"].isna().sum()),
    }


def budgets_by_axe(register: Register) -> pd.DataFrame:
    """Budgets and financing per axe (euros), with a total row.

    Refused financing lines do not count as financing; ``reste_a_financer`` is, over the
    actions that have a budget, the budget minus the lines acquired, requested or planned.

    Returns
    -------
    DataFrame
        ``axe``, ``libelle``, ``actions``, ``actions_avec_budget``, ``budget``, one column
        per financing status of :data:`geo.places.actions.FINANCEMENT_STATUTS`,
        ``reste_a_financer``.
    """
    axes = list(register.axes) + sorted({a.axe for a in register.actions} - set(register.axes))
    rows = []
    for axe in [*axes, "Total"]:
        acts = [a for a in register.actions if axe == "Total" or a.axe == axe]
        budgeted = [a for a in acts if a.budget is not None]
        row = {
            "axe": axe,
            "libelle": register.axes.get(axe, ""),
            "actions": len(acts),
            "actions_avec_budget": len(budgeted),
            "budget": float(sum(a.budget for a in budgeted)),
        }
        for s in FINANCEMENT_STATUTS:
            row[s] = float(sum(f.montant or 0 for a in acts for f in a.financements if f.statut == s))
        expected = sum(f.montant or 0 for a in budgeted for f in a.financements if f.statut != "refusé")
        row["reste_a_financer"] = row["budget"] - float(expected)
        rows.append(row)
    return pd.DataFrame(rows)


def budget_axe_statut(register: Register) -> pd.DataFrame:
    """Sum of the action budgets (euros) per axe and action status, for a stacked chart.

    Returns
    -------
    DataFrame
        ``axe``, ``libelle``, one column per status of :data:`geo.places.actions.STATUTS`; actions
        without a budget count for 0.
    """
    axes = list(register.axes) + sorted({a.axe for a in register.actions} - set(register.axes))
    rows = []
    for axe in axes:
        row = {"axe": axe, "libelle": register.axes.get(axe, "")}
        for s in STATUTS:
            row[s] = float(sum(a.budget or 0 for a in register.actions if a.axe == axe and a.statut == s))
        rows.append(row)
    return pd.DataFrame(rows, columns=["axe", "libelle", *STATUTS])


def actions_layer(
    register: Register, *, metric_crs: str, parcels: gpd.GeoDataFrame | None = None
) -> gpd.GeoDataFrame:
    """The actions with their geometry, for ``convention_map(actions=...)``.

    Parameters
    ----------
    metric_crs : str
        CRS of the output geometries (metres), e.g. ``Convention.metric_crs``.
    parcels : GeoDataFrame, optional
        Cadastre parcels (any metric CRS), to draw the actions located by parcel ids.

    Returns
    -------
    GeoDataFrame
        :func:`geo.places.actions.actions_table` columns; geometry in ``metric_crs``, None for the
        actions not located (by sector only, or not at all).
    """
    geoms, _ = action_geometries(register, metric_crs=metric_crs, parcels=parcels)
    table = actions_table(register)
    by_id = dict(zip(geoms["id"], geoms.geometry, strict=True))
    return gpd.GeoDataFrame(table, geometry=[by_id.get(i) for i in table["id"]], crs=metric_crs)


# --------------------------------------------------------------------------------------------
# National lists


def ort_signed_per_year(lists: NationalLists) -> pd.DataFrame:
    """Communes whose ORT is signed, per year of signature and programme, with the running total.

    The follow-up table has one row per commune: an intercommunal ORT counts once per commune.

    Returns
    -------
    DataFrame
        ``annee`` (text; ``date inconnue`` for signed rows without a date, last), ``ACV``,
        ``PVD``, ``autre``, ``total``, ``cumul``.
    """
    ort = lists["ort"]
    signed = ort[ort["signee"] == "signee"]
    years = signed["date_signature"].map(lambda d: str(d.year) if isinstance(d, dt.date) else "date inconnue")
    table = pd.crosstab(years, signed["programme"]).reindex(columns=["ACV", "PVD", "autre"], fill_value=0)
    table = table.sort_index(key=lambda s: s.map(lambda y: (y == "date inconnue", y)))
    table["total"] = table.sum(axis=1)
    table["cumul"] = table["total"].cumsum()
    table.columns.name = None
    return table.rename_axis("annee").reset_index()


def ort_per_departement(lists: NationalLists, *, names: dict[str, str] | None = None) -> pd.DataFrame:
    """ORT follow-up rows per département: signed, in progress, not signed; most signed first.

    Parameters
    ----------
    names : dict, optional
        Département code → name (:func:`departement_names`).

    Returns
    -------
    DataFrame
        ``departement``, ``nom``, ``signees``, ``en_cours``, ``non_signees``, ``total``.
    """
    ort = lists["ort"]
    dep = ort["code_insee"].map(projection.departement_of)
    status = ort["signee"].map({"signee": "signees", "en_cours": "en_cours"}).fillna("non_signees")
    table = pd.crosstab(dep, status).reindex(columns=["signees", "en_cours", "non_signees"], fill_value=0)
    table["total"] = table.sum(axis=1)
    table.columns.name = None
    out = table.rename_axis("departement").reset_index()
    out.insert(1, "nom", out["departement"].map(names or {}).fillna(""))
    return out.sort_values(["signees", "departement"], ascending=[False, True]).reset_index(drop=True)


def _programme_codes(lists: NationalLists) -> dict[str, set[str]]:
    """Current codes of the ACV and PVD communes, over every list read that names them."""
    acv = set(lists["acv"]["code_actuel"].dropna()) if "acv" in lists else set()
    pvd = set(lists["pvd"]["code_actuel"].dropna()) if "pvd" in lists else set()
    if "programmes" in lists:
        prog = lists["programmes"]
        acv |= set(prog.loc[prog["id_acv"].fillna("") != "", "code_actuel"].dropna())
        pvd |= set(prog.loc[prog["id_pvd"].fillna("") != "", "code_actuel"].dropna())
    return {"ACV": acv, "PVD": pvd - acv}


def _ort_status(lists: NationalLists, when: dt.date | None) -> dict[str, str]:
    out: dict[str, str] = {}
    rank = {ORT_SIGNEE: 3, ORT_EN_COURS: 2, ORT_NON_SIGNEE: 1}
    for row in lists["ort"].itertuples():
        if not isinstance(row.code_actuel, str):
            continue
        d = row.date_signature
        if row.signee == "signee" and (when is None or not isinstance(d, dt.date) or d <= when):
            st = ORT_SIGNEE
        else:
            st = ORT_EN_COURS if row.signee == "en_cours" else ORT_NON_SIGNEE
        if rank[st] > rank.get(out.get(row.code_actuel, ""), 0):
            out[row.code_actuel] = st
    return out


def programme_counts(lists: NationalLists, *, when: dt.date | None = None) -> pd.DataFrame:
    """ACV and PVD communes, and where their ORT stands in the follow-up table.

    Parameters
    ----------
    when : date, optional
        Count as signed only the ORTs signed on or before this day (rows signed without a date
        count as signed).

    Returns
    -------
    DataFrame
        ``programme`` (ACV, PVD, and ``autre`` for ORTs outside both), ``communes``, then one
        column per ORT status: ``signée``, ``en cours``, ``non signée``, ``absente du suivi``.
    """
    codes = _programme_codes(lists)
    status = _ort_status(lists, when)
    codes["autre"] = set(status) - codes["ACV"] - codes["PVD"]
    rows = []
    for name, members in codes.items():
        row = {"programme": name, "communes": len(members)}
        for st in (ORT_SIGNEE, ORT_EN_COURS, ORT_NON_SIGNEE, ORT_ABSENTE):
            row[st] = sum(status.get(c, ORT_ABSENTE) == st for c in members)
        rows.append(row)
    return pd.DataFrame(rows)


def programme_per_commune(
    lists: NationalLists, codes: list[str] | pd.Series, *, when: dt.date | None = None
) -> pd.DataFrame:
    """Programme and ORT status of each commune, and its map category (:data:`PROGRAMME_COLOURS`).

    Parameters
    ----------
    codes : list of str
        INSEE codes (5-character strings), e.g. of a boundaries file; former codes are
        resolved to the current commune through the official list.
    when : date, optional
        As in :func:`programme_counts`.

    Returns
    -------
    DataFrame
        ``code_insee``, ``code_actuel``, ``programme`` (ACV, PVD or empty), ``ort`` (status),
        ``categorie``.
    """
    prog = _programme_codes(lists)
    status = _ort_status(lists, when)
    rows = []
    for code in codes:
        current = lists.resolve(code)[0] or code
        programme = "ACV" if current in prog["ACV"] else "PVD" if current in prog["PVD"] else ""
        ort = status.get(current, ORT_ABSENTE)
        if programme == "ACV":
            cat = "ACV"
        elif programme == "PVD":
            cat = "PVD, ORT signée" if ort == ORT_SIGNEE else "PVD, ORT non signée"
        else:
            cat = "ORT signée hors ACV/PVD" if ort == ORT_SIGNEE else "Aucun de ces programmes"
        rows.append(
            {"code_insee": code, "code_actuel": current, "programme": programme, "ort": ort, "categorie": cat}
        )
    return pd.DataFrame(rows, columns=["code_insee", "code_actuel", "programme", "ort", "categorie"])


def commune_shapes(data_dir: str | Path, *, departement: str = "62") -> gpd.GeoDataFrame | None:
    """Commune boundaries of a département from a data folder laid out like ``../shared/data``.

    Returns
    -------
    GeoDataFrame or None
        ``code_insee``, ``nom``, geometry in the département's metric CRS (metres; the file
        is WGS84 per RFC 7946); None when the folder has no such file.
    """
    found = sorted(Path(data_dir).glob(COMMUNE_SHAPES.format(dep=departement)))
    if not found:
        return None
    gdf = gpd.read_file(found[0])
    if projection.crs_is_missing(gdf.crs):
        gdf = gdf.set_crs(projection.WGS84)  # RFC 7946: GeoJSON without crs member is WGS84
    gdf = gdf.rename(columns={"code": "code_insee"})
    gdf["code_insee"] = gdf["code_insee"].astype(str)
    codes = list(gdf["code_insee"])
    out = projection.to_metric(gdf, projection.metric_crs_for(codes), source=str(found[0]))
    return out[["code_insee", "nom", "geometry"]].reset_index(drop=True)


def departement_names(data_dir: str | Path) -> dict[str, str]:
    """Département code → name from ``decoupage-administratif/departements.json`` ({} if absent)."""
    path = Path(data_dir) / DEPARTEMENTS
    if not path.is_file():
        return {}
    return {d["code"]: d["nom"] for d in json.loads(path.read_text(encoding="utf-8"))}


# --------------------------------------------------------------------------------------------
# Charts


def bar_figure(
    table: pd.DataFrame,
    *,
    index: str,
    columns: list[str],
    title: str,
    ylabel: str = "",
    stacked: bool = True,
    horizontal: bool = False,
    colors: list[str] | None = None,
    size: tuple[float, float] = (8.0, 4.0),
) -> Figure:
    """A bar chart of ``columns`` per value of ``index`` (stacked by default).

    Returns
    -------
    matplotlib.figure.Figure
        One axes; a legend when there are several columns.
    """
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.subplots()
    data = table.set_index(index)[list(columns)]
    data.plot(
        kind="barh" if horizontal else "bar",
        stacked=stacked,
        ax=ax,
        color=colors,
        legend=len(columns) > 1,
        width=0.8,
    )
    ax.set_title(title)
    values_axis = ax.xaxis if horizontal else ax.yaxis
    values = data.to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size and (finite == np.round(finite)).all():
        # counts: whole ticks only (a locator's 0.5 steps printed without decimals repeated
        # each label twice: « 0 0 1 1 2 »)
        values_axis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    values_axis.set_major_formatter(FuncFormatter(lambda v, _: _tick_label(v)))
    (ax.set_xlabel if horizontal else ax.set_ylabel)(ylabel)
    (ax.set_ylabel if horizontal else ax.set_xlabel)("")
    if horizontal:
        ax.invert_yaxis()  # first row on top, as in the table
    else:
        ax.tick_params(axis="x", labelrotation=0)
    return fig


def _tick_label(value: float) -> str:
    """A tick in French: ``1 234``, ``0,5``, ``2,25`` (decimals only when the tick has some)."""
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return text.replace(",", "\u202f").replace(".", ",") if text != "-0" else "0"


def programme_map_figure(
    shapes: gpd.GeoDataFrame,
    *,
    column: str = "categorie",
    title: str = "",
    size: tuple[float, float] = (8, 7),
) -> Figure:
    """Communes coloured by programme category (:data:`PROGRAMME_COLOURS`), with a legend of counts.

    Parameters
    ----------
    shapes : GeoDataFrame
        Commune polygons in a metric CRS (metres), with a ``column`` of categories.

    Returns
    -------
    matplotlib.figure.Figure
    """
    projection.require_metric(shapes, source="communes")
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.subplots()
    handles = []
    for cat, colour in PROGRAMME_COLOURS.items():
        part = shapes[shapes[column] == cat]
        if len(part):
            part.plot(ax=ax, color=colour, edgecolor="#999999", linewidth=0.2)
        handles.append(Patch(facecolor=colour, edgecolor="#999999", label=f"{cat} ({len(part)})"))
    ax.set_axis_off()
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.legend(handles=handles, loc="lower left", fontsize=8, frameon=True)
    return fig
