"""What an avenant changed: parcels that enter, leave or change share, per perimeter.

Article 12 of the Libercourt convention (signed 18/01/2023) changes the perimeters "par
avenant [...] notamment lors d'une évolution de son périmètre": the avenant needs the list
of parcels it adds to or removes from each sector, and those whose share inside changes.

:func:`perimeter_diff` compares two versions of a convention's perimeters (two
GeoDataFrames from :meth:`geo.perimeters.Convention.perimeters`) over the same parcels:
each parcel is classified against both versions (:func:`geo.classify.classify_parcels`,
same tolerance), perimeter by perimeter (matched on ``perimeter_id``; the ``ort`` row is the
ORT as a whole). A parcel

- **enters** a perimeter when it is outside it (or the perimeter did not exist) before and
  inside or straddling after;
- **leaves** it in the opposite case;
- **changes share** when it touches the perimeter in both versions and its share inside moved
  by at least ``min_change`` (default 0.1 point of percentage: below that is digitising noise).

:func:`diff_table` turns the result into the French table written by ``ort diff``
(:data:`DIFF`); :func:`diff_summary` counts per perimeter. Computation only, no I/O.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from geo import fmt, projection
from geo.classify import OUTSIDE, STATUS_LABELS, classify_parcels
from geo.columns import Column, Layout
from geo.errors import InputError

ENTERS, LEAVES, SHARE_CHANGED = "enters", "leaves", "share_changed"
#: French labels of the changes (what people read).
CHANGE_LABELS = {ENTERS: "entre", LEAVES: "sort", SHARE_CHANGED: "part modifiée"}
#: Columns of :func:`perimeter_diff`, in order.
DIFF_COLUMNS = [
    "idu",
    "perimeter_id",
    "perimeter_nom",
    "change",
    "status_before",
    "status_after",
    "share_before",
    "share_after",
    "area_before_m2",
    "area_after_m2",
]

#: The French table of ``ort diff -o`` (CSV/XLSX).
DIFF = Layout(
    "Modifications de périmètre (avenant)",
    "Modifications",
    (
        Column("idu", "Parcelle (IDU)"),
        Column("code_insee", "Commune (INSEE)"),
        Column("section", "Section"),
        Column("numero", "Numéro"),
        Column("contenance_m2", "Contenance (m²)", "area", "contenance"),
        Column("perimetre_id", "Périmètre", source="perimeter_id"),
        Column("perimetre_nom", "Nom du périmètre", source="perimeter_nom"),
        Column("changement", "Changement", source="changement"),
        Column("statut_avant", "Statut avant", source="statut_avant"),
        Column("statut_apres", "Statut après", source="statut_apres"),
        Column("part_avant_pct", "Part incluse avant (%)", "percent", "part_avant_pct"),
        Column("part_apres_pct", "Part incluse après (%)", "percent", "part_apres_pct"),
        Column("surface_avant_m2", "Surface incluse avant (m²)", "area", "area_before_m2"),
        Column("surface_apres_m2", "Surface incluse après (m²)", "area", "area_after_m2"),
    ),
)


def _touching(result: pd.DataFrame) -> pd.DataFrame:
    rows = result[result["status"] != OUTSIDE]
    return rows.set_index(["idu", "perimeter_id"])[["status", "share", "area_inside_m2"]]


def perimeter_diff(
    parcels: gpd.GeoDataFrame,
    before: gpd.GeoDataFrame,
    after: gpd.GeoDataFrame,
    *,
    tolerance_m2: float | None = None,
    tolerance_pct: float | None = None,
    min_change: float = 0.001,
) -> pd.DataFrame:
    """Parcels that enter, leave or change share in each perimeter between two versions.

    Parameters
    ----------
    parcels : GeoDataFrame
        Parcels with ``idu``, in a metric CRS (metres).
    before, after : GeoDataFrame
        The two versions' perimeters (``perimeter_id``, ``type``, ``nom``), same metric CRS
        as the parcels; their ``attrs`` (version, date) are kept in the result's ``attrs``.
    tolerance_m2, tolerance_pct : float, optional
        Classification tolerance (:func:`geo.classify.classify_parcels`), the same for both.
    min_change : float
        Smallest change of share (in [0, 1]) reported as ``share_changed``.

    Returns
    -------
    DataFrame
        One row per changed parcel × perimeter (:data:`DIFF_COLUMNS`), ``share_*`` in [0, 1]
        (0 where the parcel is outside), ``status_*`` ``inside``/``straddling``/``outside``
        (``outside`` also where the perimeter does not exist in that version); ordered by
        perimeter (after's order, then removed ones), change, idu.
    """
    if min_change < 0 or min_change > 1:
        raise InputError(f"min_change={min_change} n'est pas une part", fix="donnez un nombre entre 0 et 1")
    projection.require_same_crs(("parcels", parcels), ("before", before), ("after", after))
    kw = dict(tolerance_m2=tolerance_m2, tolerance_pct=tolerance_pct, with_distance=False)
    old = _touching(classify_parcels(parcels, before, only_intersecting=True, **kw))
    new = _touching(classify_parcels(parcels, after, only_intersecting=True, **kw))
    both = old.merge(new, how="outer", left_index=True, right_index=True, suffixes=("_before", "_after"))
    for side in ("before", "after"):
        both[f"status_{side}"] = both[f"status_{side}"].fillna(OUTSIDE)
        both[f"share_{side}"] = both[f"share_{side}"].fillna(0.0)
        both[f"area_inside_m2_{side}"] = both[f"area_inside_m2_{side}"].fillna(0.0)
    was = both["status_before"] != OUTSIDE
    now = both["status_after"] != OUTSIDE
    delta = (both["share_after"] - both["share_before"]).abs()
    change = np.select(
        [~was & now, was & ~now, was & now & (delta >= min_change - 1e-12)],
        [ENTERS, LEAVES, SHARE_CHANGED],
        default="",
    )
    both["change"] = change
    out = both[both["change"] != ""].reset_index()
    out = out.rename(
        columns={"area_inside_m2_before": "area_before_m2", "area_inside_m2_after": "area_after_m2"}
    )
    names = {}
    for gdf in (before, after):
        names.update(dict(zip(gdf["perimeter_id"], gdf["nom"], strict=True)))
    names.setdefault("ort", "ORT (ensemble)")
    out["perimeter_nom"] = out["perimeter_id"].map(names)
    order = list(dict.fromkeys([*after["perimeter_id"], *before["perimeter_id"]]))
    rank = {pid: k for k, pid in enumerate(order)}
    change_rank = {ENTERS: 0, LEAVES: 1, SHARE_CHANGED: 2}
    out = out.assign(_p=out["perimeter_id"].map(rank), _c=out["change"].map(change_rank))
    out = out.sort_values(["_p", "_c", "idu"]).drop(columns=["_p", "_c"])[DIFF_COLUMNS]
    out = out.reset_index(drop=True)
    out.attrs.update(
        before_version=before.attrs.get("version_libelle") or before.attrs.get("version", "avant"),
        before_date=before.attrs.get("version_date", ""),
        after_version=after.attrs.get("version_libelle") or after.attrs.get("version", "après"),
        after_date=after.attrs.get("version_date", ""),
        convention=after.attrs.get("convention", ""),
    )
    return out


def diff_summary(diff: pd.DataFrame) -> pd.DataFrame:
    """Counts per perimeter: parcels entering, leaving, changing share (French columns)."""
    counts = diff.pivot_table(
        index=["perimeter_id", "perimeter_nom"],
        columns="change",
        values="idu",
        aggfunc="count",
        fill_value=0,
        sort=False,
    )
    counts = counts.reindex(columns=[ENTERS, LEAVES, SHARE_CHANGED], fill_value=0).reset_index()
    return counts.rename(
        columns={
            "perimeter_id": "perimetre_id",
            "perimeter_nom": "perimetre_nom",
            ENTERS: "entrent",
            LEAVES: "sortent",
            SHARE_CHANGED: "part_modifiee",
        }
    )


def diff_table(diff: pd.DataFrame, parcels: pd.DataFrame | None = None) -> pd.DataFrame:
    """The French table of a diff (:data:`DIFF` columns), with the parcels' cadastral fields."""
    df = diff.copy()
    if parcels is not None:
        cols = [c for c in ("idu", "code_insee", "section", "numero", "contenance") if c in parcels.columns]
        df = pd.DataFrame(parcels[cols]).drop_duplicates("idu").merge(df, on="idu", how="right")
    df["changement"] = df["change"].map(CHANGE_LABELS)
    df["statut_avant"] = df["status_before"].map(STATUS_LABELS)
    df["statut_apres"] = df["status_after"].map(STATUS_LABELS)
    df["part_avant_pct"] = (df["share_before"] * 100).round(1)
    df["part_apres_pct"] = (df["share_after"] * 100).round(1)
    df = df.drop(columns=["change", "status_before", "status_after", "share_before", "share_after"])
    return DIFF.apply(df)


def describe_change(row) -> str:
    """One French line for a diff row: ``AB 12 : entre (0,0 % → 15,0 %)``."""
    idu = str(row["idu"])
    label = f"{idu[8:10].lstrip('0') or '0'} {int(idu[10:])}" if len(idu) == 14 else idu
    return (
        f"{label} : {CHANGE_LABELS[row['change']]} "
        f"({fmt.percent(row['share_before'])} → {fmt.percent(row['share_after'])})"
    )
