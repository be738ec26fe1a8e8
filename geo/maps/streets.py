"""Street names placed on a map: one label per street, along its address points.

Shared by the web map (:func:`geo.maps.layers.streets_layer`) and the note's map extract
(:mod:`geo.note`); it needs no web map library.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import projection
from geo.maps.text import cell_text

__all__ = ["street_labels"]


def street_labels(addresses: pd.DataFrame, crs) -> gpd.GeoDataFrame:
    """One label per street, placed along its addresses (BAN/BAL points grouped by voie).

    Parameters
    ----------
    addresses : DataFrame
        :func:`geo.sources.addresses.read_addresses` result (``voie``, ``voie_key``, ``lon``,
        ``lat`` in WGS84 degrees, ``code_insee``).
    crs : CRS-like
        Metric CRS in which the street axes are fitted.

    Returns
    -------
    GeoDataFrame
        ``voie`` (as written), ``angle`` (degrees, counter-clockwise from east, in [-90, 90]),
        ``n`` (addresses), point geometry in ``crs``: the address nearest the street's middle,
        moved onto its axis (first principal direction of its addresses).
    """
    df = pd.DataFrame(addresses).dropna(subset=["lon", "lat"])
    key = "voie_key" if "voie_key" in df.columns else "voie"
    if "code_insee" in df.columns:
        df = df.assign(_k=df["code_insee"].astype(str) + "|" + df[key].astype(str))
    else:
        df = df.assign(_k=df[key].astype(str))
    pts = gpd.GeoSeries(gpd.points_from_xy(df["lon"], df["lat"]), crs=projection.WGS84).to_crs(crs)
    xy = shapely.get_coordinates(pts.to_numpy())
    rows = []
    for _, idx in df.groupby("_k", sort=False).indices.items():
        p = xy[idx]
        name = cell_text(df["voie"].iloc[idx[0]])
        if not name:
            continue
        mid = p.mean(axis=0)
        angle = 0.0
        if len(p) >= 2:
            cov = np.cov((p - mid).T)
            w, v = np.linalg.eigh(cov)
            d = v[:, int(np.argmax(w))]
            t = (p - mid) @ d
            pos = mid + d * np.median(t)
            angle = math.degrees(math.atan2(d[1], d[0]))
            if angle > 90:
                angle -= 180
            elif angle < -90:
                angle += 180
        else:
            pos = mid
        rows.append((name, round(angle, 1), len(p), shapely.Point(pos)))
    return gpd.GeoDataFrame(
        rows and [r[:3] for r in rows] or None,
        columns=["voie", "angle", "n"],
        geometry=[r[3] for r in rows],
        crs=crs,
    )
