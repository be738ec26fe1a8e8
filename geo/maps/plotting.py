"""Geometries drawn on matplotlib axes as ``GeoSeries.plot`` draws them, without pyplot.

geopandas' plotting module imports ``matplotlib.pyplot`` at each call, and pyplot reads every
style sheet matplotlib ships when it is first imported: a tenth of a second of a fresh
``ort note``, for a figure that never goes through pyplot. :func:`plot_geometries` makes the
same artists in the same order (polygons in one patch collection, lines in one line
collection, geometries normalised, collections exploded, empty ones left out; the axes' aspect
equal, as geopandas sets it in a metric CRS), so the printed page is the same. Anything it does
not draw itself (points) goes to geopandas.
"""

from __future__ import annotations

import numpy as np
import shapely

__all__ = ["plot_geometries"]

_POLYGONS = ("Polygon", "MultiPolygon")
_LINES = ("LineString", "MultiLineString", "LinearRing")


def _patch(polygon):
    """A (multi)polygon as one path patch: each exterior, then its holes."""
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path

    paths = []
    for part in [polygon] if polygon.geom_type == "Polygon" else polygon.geoms:
        paths.append(Path(np.asarray(part.exterior.coords)[:, :2], closed=True))
        paths.extend(Path(np.asarray(ring.coords)[:, :2], closed=True) for ring in part.interiors)
    return PathPatch(Path.make_compound_path(*paths))


def _per_part(value, index):
    """A style value given per geometry, repeated for each of its parts (a single colour or
    line style stays as it is)."""
    import pandas as pd
    from matplotlib.colors import is_color_like

    if isinstance(value, str) or is_color_like(value) or not pd.api.types.is_list_like(value):
        return value
    if isinstance(value, tuple) and len(value) == 2 and pd.api.types.is_list_like(value[1]):
        return value  # a dash pattern: (offset, (on, off))
    return np.take(np.asarray(value, dtype=object), index, axis=0)


def plot_geometries(ax, geoms, *, color=None, **style) -> None:
    """Draw ``geoms`` (polygons and lines, metric CRS) on ``ax``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    geoms : GeoSeries or array of shapely geometries
    color : colour or sequence of colours, optional
        One colour, or one per geometry: the fill of polygons, the colour of lines.
    **style
        Collection properties (``facecolor``, ``edgecolor``, ``linewidth``, ``linestyle``,
        ``hatch``, ``alpha``, ``zorder``…), as ``GeoSeries.plot`` takes them.
    """
    import pandas as pd
    from matplotlib.collections import LineCollection, PatchCollection

    values = np.asarray(getattr(geoms, "values", geoms), dtype=object)
    if len(values) == 0 or all(g is not None and g.is_empty for g in values):  # as geopandas
        return
    parts, index = [], []
    for k, geom in enumerate(shapely.normalize(values)):
        if geom is None or geom.is_empty:
            continue
        for part in geom.geoms if geom.geom_type == "GeometryCollection" else [geom]:
            parts.append(part)
            index.append(k)
    kinds = [p.geom_type for p in parts]
    if any(kind not in _POLYGONS + _LINES for kind in kinds):  # points: geopandas draws them
        import geopandas as gpd

        gpd.GeoSeries(values).plot(ax=ax, color=color, **style)
        return
    ax.set_aspect("equal")
    index = np.asarray(index)
    per_geometry = color is not None and pd.api.types.is_list_like(color) and len(color) == len(values)
    if per_geometry:
        color = np.take(np.asarray(color, dtype=object), index, axis=0)
    style = {k: v for k, v in style.items() if k not in ("marker", "markersize")}
    polygons = np.array([kind in _POLYGONS for kind in kinds])
    lines = np.array([kind in _LINES for kind in kinds])
    if polygons.any():
        kwargs = dict(style)
        facecolor = kwargs.pop("facecolor", None)
        if color is not None:
            facecolor = color[polygons] if per_geometry else color
        patches = [_patch(p) for p, keep in zip(parts, polygons, strict=True) if keep]
        ax.add_collection(PatchCollection(patches, facecolor=facecolor, **kwargs), autolim=True)
        ax.autoscale_view()
    if lines.any():
        chosen = [p for p, keep in zip(parts, lines, strict=True) if keep]
        pieces, sub = shapely.get_parts(np.asarray(chosen, dtype=object), return_index=True)
        kwargs = dict(style)
        if color is not None:
            kwargs["color"] = color[lines] if per_geometry else color
        kwargs = {k: _per_part(v, sub) for k, v in kwargs.items()}
        segments = [np.array(line.coords)[:, :2] for line in pieces]
        ax.add_collection(LineCollection(segments, **kwargs), autolim=True)
        ax.autoscale_view()
