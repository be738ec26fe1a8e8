"""Coordinate reference systems: the territory's metric CRS, and refusing the wrong ones.

Areas, overlaps and distances are computed only in a metric CRS: Lambert-93 (EPSG:2154) in
metropolitan France and Corsica, the local UTM-based RGAF09/RGFG95/RGR92/RGM04/RGSPM06
overseas. The collectivités of the Pacific (98x), where the ORT does not apply, are refused.
EPSG:4326 is used only at the map boundary.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from geo.errors import CRSError

if TYPE_CHECKING:
    import geopandas as gpd
    from pyproj import CRS

WGS84 = "EPSG:4326"
LAMBERT93 = "EPSG:2154"

#: Metric CRS per overseas code (INSEE prefix); everything else is Lambert-93. Codes checked
#: with pyproj (area of use of each EPSG code): RGAF09 covers Guadeloupe, Martinique,
#: Saint-Barthélemy and the French part of Saint-Martin.
OVERSEAS_CRS = {
    "971": "EPSG:5490",  # Guadeloupe, RGAF09 / UTM 20N
    "972": "EPSG:5490",  # Martinique
    "973": "EPSG:2972",  # Guyane, RGFG95 / UTM 22N
    "974": "EPSG:2975",  # La Réunion, RGR92 / UTM 40S
    "975": "EPSG:4467",  # Saint-Pierre-et-Miquelon, RGSPM06 / UTM 21N
    "976": "EPSG:4471",  # Mayotte, RGM04 / UTM 38S
    "977": "EPSG:5490",  # Saint-Barthélemy, RGAF09 / UTM 20N
    "978": "EPSG:5490",  # Saint-Martin, RGAF09 / UTM 20N
}

# Rough extents (lon/lat) used to recognise coordinates in the wrong CRS.
_FRANCE_LONLAT = (-6.0, 41.0, 10.0, 51.6)  # metropolitan France and Corsica
_OVERSEAS_LONLAT = {
    "971": (-62.0, 15.8, -60.9, 18.2),
    "972": (-61.3, 14.3, -60.7, 15.0),
    "973": (-54.7, 2.0, -51.5, 6.0),
    "974": (55.1, -21.5, 55.9, -20.8),
    "975": (-56.6, 46.7, -56.0, 47.2),
    "976": (44.9, -13.1, 45.4, -12.5),
    "977": (-63.0, 17.8, -62.7, 18.0),
    "978": (-63.2, 18.0, -62.9, 18.2),
}
_TERRITORY_NAMES = {
    "971": "la Guadeloupe",
    "972": "la Martinique",
    "973": "la Guyane",
    "974": "La Réunion",
    "975": "Saint-Pierre-et-Miquelon",
    "976": "Mayotte",
    "977": "Saint-Barthélemy",
    "978": "Saint-Martin",
}
# Lambert-93 extent of metropolitan France (with a margin).
_L93_EXTENT = (50_000.0, 6_000_000.0, 1_300_000.0, 7_200_000.0)


def _crs_class():
    from pyproj import CRS  # 50 ms to import: only where a CRS is not a plain known code

    return CRS


def _crs(value) -> CRS:
    return _crs_class().from_user_input(value)


def __getattr__(name: str):
    """``projection.CRS``: pyproj's class, imported at first use."""
    if name == "CRS":
        return _crs_class()
    raise AttributeError(f"module 'geo.projection' has no attribute {name!r}")


_EPSG = re.compile(r"^EPSG:([0-9]{1,6})$", re.IGNORECASE)


def epsg_code(crs) -> int | None:
    """The code of a CRS given as plain ``"EPSG:NNNN"`` text, else None (nothing imported)."""
    found = _EPSG.match(crs) if isinstance(crs, str) else None
    return int(found.group(1)) if found else None


def same_crs(a, b) -> bool:
    """Whether two CRSs are equal: at once for one plain ``EPSG:NNNN`` code, else by pyproj."""
    code = epsg_code(a)
    if code is not None and code == epsg_code(b):
        return True
    return _crs(a).equals(_crs(b))


#: What a PROJJSON of Lambert-93 says (as PROJ and GDAL write it): checked key by key before
#: such a CRS is taken for ``EPSG:2154`` without pyproj.
_L93_PARAMETERS = {8821: 46.5, 8822: 3.0, 8823: 49.0, 8824: 44.0, 8826: 700_000.0, 8827: 6_600_000.0}


def crs_of_projjson(value: dict) -> str:
    """A PROJJSON CRS (GeoParquet's ``crs``) as text: ``EPSG:2154`` read without pyproj when
    every defining value is Lambert-93's, else what pyproj makes of it (``CRS.to_string``)."""
    if _is_lambert93_projjson(value):
        return LAMBERT93
    return _crs_class().from_json_dict(value).to_string()


def _is_lambert93_projjson(value: dict) -> bool:
    try:
        conversion, base = value["conversion"], value["base_crs"]
        ellipsoid = base["datum"]["ellipsoid"]
        parameters = {
            p["id"]["code"]: float(p["value"])
            for p in conversion["parameters"]
            if p.get("id", {}).get("authority") == "EPSG" and p.get("unit") in ("degree", "metre")
        }
        axes = [(a["direction"], a["unit"]) for a in value["coordinate_system"]["axis"]]
        return (
            value.get("type") == "ProjectedCRS"
            and value["id"] == {"authority": "EPSG", "code": 2154}
            and base["id"] == {"authority": "EPSG", "code": 4171}
            and conversion["method"]["id"] == {"authority": "EPSG", "code": 9802}
            and len(conversion["parameters"]) == len(_L93_PARAMETERS)
            and parameters == _L93_PARAMETERS
            and float(ellipsoid["semi_major_axis"]) == _A
            and float(ellipsoid["inverse_flattening"]) == 298.257222101
            and axes == [("east", "metre"), ("north", "metre")]
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return False


def departement_of(code_insee: str) -> str:
    """Return the département code of an INSEE commune code (``"97411"`` → ``"974"``)."""
    code = str(code_insee)
    return code[:3] if code.startswith("97") else code[:2]


def metric_crs_for(code_insee: str | Iterable[str]) -> str:
    """Return the metric CRS (``"EPSG:xxxx"``) for one commune or the communes of a convention.

    Parameters
    ----------
    code_insee : str or iterable of str
        INSEE commune code(s), as strings (``"62907"``, ``"2A004"``, ``"97411"``).

    Raises
    ------
    CRSError
        If the communes need different metric CRSs (e.g. Réunion and metropolitan France).
    """
    codes = [code_insee] if isinstance(code_insee, str) else list(code_insee)
    if not codes:
        return LAMBERT93
    pacific = [c for c in codes if str(c).startswith("98")]
    if pacific:
        raise CRSError(
            f"commune {pacific[0]} : collectivité du Pacifique (98x), sans système métrique connu "
            "d'ort — le dispositif ORT (CCH L303-2) ne s'y applique pas",
            fix="vérifiez le code INSEE",
        )
    crss = {OVERSEAS_CRS.get(departement_of(c), LAMBERT93) for c in codes}
    if len(crss) > 1:
        raise CRSError(
            f"les communes {', '.join(codes)} relèvent de CRS métriques différents "
            f"({', '.join(sorted(crss))})",
            fix="traitez chaque territoire d'outre-mer dans sa propre convention",
        )
    return crss.pop()


def _is_metric(crs: CRS) -> bool:
    return crs.is_projected and crs.axis_info[0].unit_name in ("metre", "meter")


def lonlat_extent(code_insee: str | None) -> tuple[float, float, float, float]:
    """Plausible lon/lat extent for a commune's territory (metropolitan France by default)."""
    if code_insee is None:
        return _FRANCE_LONLAT
    return _OVERSEAS_LONLAT.get(departement_of(code_insee), _FRANCE_LONLAT)


def territory_name(code_insee: str | None) -> str:
    """The territory of a commune, for messages (``"la France métropolitaine"``, ``"La Réunion"``)."""
    if code_insee is None:
        return "la France métropolitaine"
    return _TERRITORY_NAMES.get(departement_of(code_insee), "la France métropolitaine")


# Lambert-93 (EPSG:2154): conic conformal on GRS 80, standard parallels 49° and 44°, origin
# 46.5° N 3° E at (700 000, 6 600 000). RGF93 and WGS 84 coincide at the metre: the lon/lat of
# its inverse is what pyproj gives, to 1e-9° (checked in tests/test_perimeter_layer.py).
_A, _F = 6378137.0, 1 / 298.257222101
_E = math.sqrt(2 * _F - _F * _F)


def _lcc_constants() -> tuple[float, float, float]:
    def m(phi: float) -> float:
        return math.cos(phi) / math.sqrt(1 - (_E * math.sin(phi)) ** 2)

    def t(phi: float) -> float:
        s = _E * math.sin(phi)
        return math.tan(math.pi / 4 - phi / 2) / ((1 - s) / (1 + s)) ** (_E / 2)

    p1, p2, p0 = math.radians(49.0), math.radians(44.0), math.radians(46.5)
    n = (math.log(m(p1)) - math.log(m(p2))) / (math.log(t(p1)) - math.log(t(p2)))
    f = m(p1) / (n * t(p1) ** n)
    return n, f, _A * f * t(p0) ** n


_N, _FF, _RHO0 = _lcc_constants()
#: Margin (degrees) of the pyproj-free box test: a point this close to a territory's edge is
#: left to pyproj.
_LONLAT_MARGIN = 1e-6


def lambert93_to_lonlat(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat (degrees) of Lambert-93 coordinates (metres), without pyproj (to 1e-9°)."""
    dx = np.asarray(x, dtype=float) - 700_000.0
    dy = _RHO0 - (np.asarray(y, dtype=float) - 6_600_000.0)
    rho = np.hypot(dx, dy)
    t = (rho / (_A * _FF)) ** (1 / _N)
    lon = np.degrees(np.arctan2(dx, dy) / _N) + 3.0
    phi = np.pi / 2 - 2 * np.arctan(t)
    for _ in range(12):  # converges to 1e-15 rad in 5–6 steps in France
        s = _E * np.sin(phi)
        phi = np.pi / 2 - 2 * np.arctan(t * ((1 - s) / (1 + s)) ** (_E / 2))
    return lon, np.degrees(phi)


def plausible_in_lambert93(bounds: np.ndarray, code_insee: str | None = None) -> bool:
    """Whether boxes in Lambert-93 certainly pass :func:`check_plausible`, decided without pyproj.

    True when every box (``minx, miny, maxx, maxy``, metres) is finite, inside the Lambert-93
    extent of metropolitan France, and the corners and edge midpoints of their extent fall
    inside the territory of ``code_insee`` with a margin. False when any test might fail:
    the caller then runs the full check, which gives the message.
    """
    bounds = np.asarray(bounds, dtype=float).reshape(-1, 4)
    if len(bounds) == 0 or not np.isfinite(bounds).all():
        return False
    minx, miny, maxx, maxy = (bounds[:, k] for k in range(4))
    e = _L93_EXTENT
    # (inside that extent, no coordinate is below 400: not "degrees" either)
    if not ((minx >= e[0]) & (miny >= e[1]) & (maxx <= e[2]) & (maxy <= e[3])).all():
        return False
    x0, y0, x1, y1 = float(minx.min()), float(miny.min()), float(maxx.max()), float(maxy.max())
    xs = np.array([x0, x1, x1, x0, (x0 + x1) / 2, x1, (x0 + x1) / 2, x0])
    ys = np.array([y0, y0, y1, y1, y0, (y0 + y1) / 2, y1, (y0 + y1) / 2])
    lon, lat = lambert93_to_lonlat(xs, ys)
    ext = lonlat_extent(code_insee)
    g = _LONLAT_MARGIN
    shrunk = (ext[0] + g, ext[1] + g, ext[2] - g, ext[3] - g)
    return bool(_in_box(lon, lat, shrunk).all())


def plausible_in_lonlat(bounds: np.ndarray, code_insee: str | None = None) -> bool:
    """Whether boxes in degrees (lon/lat) certainly pass :func:`check_plausible`.

    True when every box (``minx, miny, maxx, maxy``) is finite and inside the territory of
    ``code_insee`` (the tests of :func:`check_plausible` for a geographic CRS, which need no
    transformation); False when any might fail: the caller runs the full check then.
    """
    bounds = np.asarray(bounds, dtype=float).reshape(-1, 4)
    if len(bounds) == 0 or not np.isfinite(bounds).all():
        return False
    e = lonlat_extent(code_insee)
    minx, miny, maxx, maxy = (bounds[:, k] for k in range(4))
    return bool(((minx >= e[0]) & (miny >= e[1]) & (maxx <= e[2]) & (maxy <= e[3])).all())


def reproject(geoms: np.ndarray, source, target) -> np.ndarray:
    """2D geometries from CRS ``source`` to ``target``, as ``GeoSeries.to_crs`` makes them.

    The same transformation (pyproj, ``always_xy``) of the same coordinates: the same bits,
    without geopandas.
    """
    import shapely
    from pyproj import Transformer

    geoms = np.asarray(geoms, dtype=object)
    if shapely.has_z(geoms).any():
        raise ValueError("reproject: 2D geometries only")
    transformer = Transformer.from_crs(_crs(source), _crs(target), always_xy=True)
    xy = shapely.get_coordinates(geoms)
    moved = np.array(transformer.transform(xy[:, 0], xy[:, 1])).T
    return shapely.set_coordinates(geoms.copy(), moved)


def check_plausible(gdf: gpd.GeoDataFrame, *, source: str, code_insee: str | None = None) -> None:
    """Refuse coordinates that are clearly in another CRS than the one declared.

    Recognises Lambert-93 (or any projected) numbers in a layer declared as degrees, swapped
    latitude/longitude, degrees in a layer declared as Lambert-93 — and, for every CRS, a
    layer whose coordinates, read in the CRS declared, fall outside the territory of its
    communes (metropolitan France by default): Lambert-93 numbers declared as Web Mercator
    (EPSG:3857), a CC zone declared as another, UTM of the wrong zone…

    Raises
    ------
    CRSError
        Naming the file, the declared CRS, what the numbers look like, and the fix.
    """
    if gdf.empty or gdf.crs is None:
        return
    geoms = gdf.geometry[~(gdf.geometry.is_empty | gdf.geometry.isna())]
    if geoms.empty:
        return
    bounds = geoms.bounds.to_numpy()
    if not np.isfinite(bounds).all():
        bad = int(np.where(~np.isfinite(bounds).all(axis=1))[0][0])
        raise CRSError(
            "coordonnées NaN ou infinies",
            source=source,
            feature=_feature_label(gdf, geoms.index[bad]),
            fix="réparez ou retirez cet objet",
        )
    _check_bounds(
        bounds,
        _crs(gdf.crs),
        source=source,
        code_insee=code_insee,
        label=lambda i: _feature_label(gdf, geoms.index[i]),
    )


def check_plausible_extent(
    extent: tuple[float, float, float, float], crs, *, source: str, code_insee: str | None = None
) -> None:
    """:func:`check_plausible` of a layer known by its extent (``minx, miny, maxx, maxy``)."""
    if epsg_code(crs) == 2154 and plausible_in_lambert93(np.array([extent], dtype=float), code_insee):
        return  # (decided without pyproj; a doubtful extent gets the full check and its message)
    _check_bounds(
        np.array([extent], dtype=float),
        _crs(crs),
        source=source,
        code_insee=code_insee,
        label=lambda i: None,
    )


def _check_bounds(bounds: np.ndarray, crs: CRS, *, source: str, code_insee: str | None, label) -> None:
    """The checks of :func:`check_plausible` on finite feature boxes; ``label(i)`` names feature i."""
    _check_numbers(bounds, crs, source=source, code_insee=code_insee, label=label)
    _check_territory(bounds, crs, source=source, code_insee=code_insee, label=label)


#: Candidate CRSs named when coordinates fall outside the territory in the CRS declared.
_CANDIDATES = ("EPSG:2154", "EPSG:4326", "EPSG:3857", *(f"EPSG:{c}" for c in range(3942, 3951)))


def _lonlat(crs: CRS, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(all="ignore"):
        lon, lat = _transformer(crs.to_wkt()).transform(x, y, errcheck=False)
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


@functools.lru_cache(maxsize=32)
def _transformer(wkt: str):
    from pyproj import Transformer

    return Transformer.from_crs(_crs_class().from_wkt(wkt), WGS84, always_xy=True)


def _in_box(lon: np.ndarray, lat: np.ndarray, ext) -> np.ndarray:
    return (
        np.isfinite(lon)
        & np.isfinite(lat)
        & (lon >= ext[0])
        & (lon <= ext[2])
        & (lat >= ext[1])
        & (lat <= ext[3])
    )


def _check_territory(bounds: np.ndarray, crs: CRS, *, source: str, code_insee: str | None, label) -> None:
    """Refuse boxes that, read in ``crs``, fall outside the territory of ``code_insee``."""
    ext = lonlat_extent(code_insee)
    # The corners and edge midpoints of the whole extent first: one transformation.
    x0, y0 = np.nanmin(bounds[:, 0]), np.nanmin(bounds[:, 1])
    x1, y1 = np.nanmax(bounds[:, 2]), np.nanmax(bounds[:, 3])
    xs = np.array([x0, x1, x1, x0, (x0 + x1) / 2, x1, (x0 + x1) / 2, x0])
    ys = np.array([y0, y0, y1, y1, y0, (y0 + y1) / 2, y1, (y0 + y1) / 2])
    lon, lat = (xs, ys) if crs.is_geographic else _lonlat(crs, xs, ys)
    if _in_box(lon, lat, ext).all():
        return
    # Which features: their centres (only on the way to an error).
    cx, cy = (bounds[:, 0] + bounds[:, 2]) / 2, (bounds[:, 1] + bounds[:, 3]) / 2
    lon, lat = (cx, cy) if crs.is_geographic else _lonlat(crs, cx, cy)
    out = ~_in_box(lon, lat, ext)
    if not out.any():
        return
    n = len(bounds)
    first = int(np.flatnonzero(out)[0])
    feature = None if out.all() else label(first)
    if feature is not None and int(out.sum()) > 1:
        feature += f" (+{int(out.sum()) - 1} autre(s))"
    sel = np.arange(n) if out.all() else np.array([first])
    fmt = _d if crs.is_geographic else _m
    where = (
        f"x {fmt(bounds[sel, 0].min())}…{fmt(bounds[sel, 2].max())}, "
        f"y {fmt(bounds[sel, 1].min())}…{fmt(bounds[sel, 3].max())}"
    )
    at = (
        f"lon {lon[first]:.2f}, lat {lat[first]:.2f}".replace(".", ",")
        if np.isfinite(lon[first]) and np.isfinite(lat[first])
        else "hors du domaine de cette projection"
    )
    name = crs.to_string()
    guesses = [
        c
        for c in _CANDIDATES
        if not _crs(c).equals(crs) and _in_box(*_lonlat(_crs(c), cx[sel][:100], cy[sel][:100]), ext).all()
    ]
    fix = (
        f"déclarez le vrai CRS du fichier (les coordonnées tombent dans {territory_name(code_insee)} "
        f"en {' ou '.join(guesses[:3])})"
        if guesses
        else "déclarez le vrai CRS du fichier, ou vérifiez les codes INSEE des objets"
    )
    raise CRSError(
        f"coordonnées ({where}) déclarées en {name} : elles tombent à {at}, "
        f"hors de {territory_name(code_insee)}",
        source=source,
        feature=feature,
        fix=fix,
    )


def _check_numbers(bounds: np.ndarray, crs: CRS, *, source: str, code_insee: str | None, label) -> None:
    """Numbers of the wrong kind for the CRS: metres in degrees, swapped axes, degrees in metres."""
    name = crs.to_string()
    # Each feature on its own: one swapped or mislabelled feature among good ones is caught
    # (the layer's overall extent would hide it), and named.
    minx, miny, maxx, maxy = bounds[:, 0], bounds[:, 1], bounds[:, 2], bounds[:, 3]
    n = len(bounds)

    def where(mask: np.ndarray) -> str | None:
        """The first flagged feature's label, or None when every feature is flagged."""
        if mask.all():
            return None
        more = int(mask.sum()) - 1
        first = label(int(np.flatnonzero(mask)[0]))
        return first + (f" (+{more} autre(s))" if more else "")

    def extent(mask: np.ndarray, fmt) -> tuple[float, float, float, float]:
        sel = np.flatnonzero(mask)[:1] if not mask.all() else np.arange(n)
        return fmt(minx[sel].min()), fmt(maxx[sel].max()), fmt(miny[sel].min()), fmt(maxy[sel].max())

    if crs.is_geographic:
        over = (np.maximum(np.abs(minx), np.abs(maxx)) > 180) | (np.maximum(np.abs(miny), np.abs(maxy)) > 90)
        if over.any():
            label = where(over)
            sel = np.flatnonzero(over)[:1] if label else np.arange(n)
            box = (minx[sel].min(), miny[sel].min(), maxx[sel].max(), maxy[sel].max())
            looks = "des mètres Lambert-93" if _inside(box, _L93_EXTENT) else "des mètres projetés"
            x0, x1, y0, y1 = extent(over, _m)
            raise CRSError(
                f"les coordonnées ressemblent à {looks} (x {x0}…{x1}, y {y0}…{y1}) "
                f"mais la couche est déclarée en {name} (degrés)",
                source=source,
                feature=label,
                fix="déclarez le vrai CRS, ex. --crs EPSG:2154, ou reprojetez le fichier en EPSG:4326",
            )
        ext = lonlat_extent(code_insee)
        inside = (minx >= ext[0]) & (miny >= ext[1]) & (maxx <= ext[2]) & (maxy <= ext[3])
        swapped = (miny >= ext[0]) & (minx >= ext[1]) & (maxy <= ext[2]) & (maxx <= ext[3])
        bad = ~inside & swapped
        if bad.any():
            label = where(bad)
            x0, x1, y0, y1 = extent(bad, _d)
            raise CRSError(
                f"latitude et longitude semblent inversées (x {x0}…{x1}, y {y0}…{y1} en {name})",
                source=source,
                feature=label,
                fix="écrivez les coordonnées dans l'ordre longitude, latitude (ordre GeoJSON) et rechargez",
            )
    elif _is_metric(crs):
        small = np.maximum.reduce([np.abs(minx), np.abs(maxx), np.abs(miny), np.abs(maxy)]) < 400
        if small.any():
            label = where(small)
            x0, x1, y0, y1 = extent(small, _d)
            raise CRSError(
                f"les coordonnées ressemblent à des degrés (x {x0}…{x1}, y {y0}…{y1}) "
                f"mais la couche est déclarée en {name} (mètres)",
                source=source,
                feature=label,
                fix="déclarez EPSG:4326 pour ce fichier, ou reprojetez-le correctement",
            )
        if crs.equals(_crs(LAMBERT93)):
            e = _L93_EXTENT
            out = ~((minx >= e[0]) & (miny >= e[1]) & (maxx <= e[2]) & (maxy <= e[3]))
            if out.any():
                label = where(out)
                x0, x1, y0, y1 = extent(out, _m)
                raise CRSError(
                    f"coordonnées (x {x0}…{x1}, y {y0}…{y1}) hors de la France métropolitaine "
                    "en Lambert-93 ; le fichier est peut-être en zone CC (EPSG:3942–3950) "
                    "ou dans une autre projection",
                    source=source,
                    feature=label,
                    fix="déclarez le vrai CRS du fichier (ex. --crs EPSG:3950)",
                )


def _m(value: float) -> str:
    """A coordinate in metres for a message: whole metres, or compact when absurdly large."""
    return f"{value:.0f}" if abs(value) < 1e9 else f"{value:.3g}"


def _d(value: float) -> str:
    """A coordinate in degrees for a message."""
    return (f"{value:.4f}" if abs(value) < 1e6 else f"{value:.3g}").replace(".", ",")  # French decimals


def _inside(box: tuple[float, float, float, float], extent: tuple[float, float, float, float]) -> bool:
    return box[0] >= extent[0] and box[1] >= extent[1] and box[2] <= extent[2] and box[3] <= extent[3]


def _feature_label(gdf: gpd.GeoDataFrame, index) -> str:
    for col in ("id", "idu", "site_id", "perimeter_id", "name", "nom"):
        if col in gdf.columns:
            return f"{col}={gdf.at[index, col]}"
    return f"objet {index}"


def crs_is_missing(crs) -> bool:
    """True when a layer has no CRS, or GDAL's placeholder for one (GeoPackage srs_id 0 or -1)."""
    if crs is None:
        return True
    if epsg_code(crs) is not None:
        return False
    return _crs(crs).name.lower().startswith("undefined")


def require_crs(gdf: gpd.GeoDataFrame, *, source: str) -> CRS:
    """Return the layer's CRS or refuse a layer without one."""
    check_declared(gdf.crs, source=source)
    return _crs(gdf.crs)


def check_declared(crs, *, source: str) -> None:
    """Refuse a missing CRS (:func:`require_crs` for a CRS given alone)."""
    if crs_is_missing(crs):
        raise CRSError(
            "la couche n'a pas de système de coordonnées (CRS)",
            source=source,
            fix="déclarez-le à la lecture (--crs EPSG:2154 ou crs='EPSG:2154'), "
            "ou corrigez le .prj / le SRS du GeoPackage",
        )


def to_metric(
    gdf: gpd.GeoDataFrame, crs: str, *, source: str, code_insee: str | None = None
) -> gpd.GeoDataFrame:
    """Check a layer's CRS and coordinates, then reproject it to the metric CRS ``crs``.

    Parameters
    ----------
    gdf : GeoDataFrame
        A layer with a declared CRS.
    crs : str
        Target metric CRS, e.g. ``"EPSG:2154"`` (metres).
    source : str
        File name used in error messages.
    """
    require_crs(gdf, source=source)
    target = _crs(crs)
    if not _is_metric(target):
        raise CRSError(
            f"{target.to_string()} n'est pas un CRS métrique : surfaces et distances seraient en degrés",
            source=source,
            fix="utilisez le Lambert-93 (EPSG:2154) ou le CRS métrique du territoire d'outre-mer",
        )
    check_plausible(gdf, source=source, code_insee=code_insee)
    if _crs(gdf.crs).equals(target):
        return gdf
    return gdf.to_crs(target)


def require_same_crs(*layers: tuple[str, gpd.GeoDataFrame]) -> CRS:
    """Refuse layers whose CRSs differ, naming both and the fix."""
    first_name, first = layers[0]
    ref = require_crs(first, source=first_name)
    for name, layer in layers[1:]:
        other = require_crs(layer, source=name)
        if not other.equals(ref):
            raise CRSError(
                f"CRS différents : {first_name} est en {ref.to_string()} mais {name} en {other.to_string()}",
                fix=f"reprojetez d'abord l'une des couches, ex. layer.to_crs('{ref.to_string()}')",
            )
    return ref


def require_metric(gdf: gpd.GeoDataFrame, *, source: str) -> CRS:
    """Refuse a layer whose CRS is not metric (an area in degrees is meaningless)."""
    crs = require_crs(gdf, source=source)
    if not _is_metric(crs):
        raise CRSError(
            f"{source} est en {crs.to_string()}, qui n'est pas un CRS métrique : "
            "les surfaces seraient en degrés",
            fix="reprojetez-la d'abord avec geo.projection.to_metric(layer, 'EPSG:2154', ...)",
        )
    return crs
