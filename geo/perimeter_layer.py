"""Perimeters as plain arrays — ids, types, names, geometries, CRS — for the engine at scale.

What :func:`geo.scale.run.classify_dataset` needs of its perimeters is little: their ids, types
and names (the verdicts' columns), their geometries and their CRS. :class:`PerimeterLayer`
holds just that, so that ``ort classify FILE --perimeters-file P.gpkg`` runs without pandas,
geopandas nor pydantic: :func:`read_perimeter_layer` reads the plainest files — a GeoPackage of
one layer, or a GeoJSON, in Lambert-93 (or WGS 84, then reprojected by pyproj) with the
properties ``id``, ``type``, ``nom`` — with SQLite (:mod:`geo.gpkg`) or ``json``
(:mod:`geo.bounded`), and hands any other file to
:func:`geo.perimeters.read_perimeter_file` (GDAL, the typed checks, their French messages).
Both give the same perimeters; a layer also wraps a GeoDataFrame (:meth:`PerimeterLayer.of`)
and gives one back (:meth:`PerimeterLayer.frame`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import shapely
import shapely.geometry

from geo import bounded, gpkg, projection
from geo.errors import InputError, ValidationReport

if TYPE_CHECKING:
    import geopandas as gpd

#: Perimeter types a file may give (:data:`geo.perimeters.PERIMETER_TYPES`, which imports
#: pydantic: checked equal in tests/test_perimeter_layer.py).
PERIMETER_TYPES = ("secteur", "opah_ru", "dpu_renforce", "preemption_commerciale", "autre")
#: The properties :class:`geo.perimeters.PerimeterProperties` reads (the others are ignored).
_PROPERTIES = ("id", "type", "nom", "centre_ville", "commune", "date_debut", "date_fin")
#: Columns of :func:`geo.perimeters.read_perimeter_file`'s result after the geometry.
_COLUMNS = ["perimeter_id", "type", "nom", "centre_ville", "commune", "date_debut", "date_fin"]
_TEXT = pa.large_string()


class PerimeterLayer:
    """Perimeters as arrays: ``ids``, ``types``, ``names`` (lists of str or None), ``geoms``
    (shapely), ``crs`` (``"EPSG:2154"`` or anything pyproj reads).

    Built by :func:`read_perimeter_layer`, or from a GeoDataFrame (:meth:`of`), whose columns
    are kept to give it back (:meth:`frame`).
    """

    def __init__(self, ids, types, names, geoms, crs, *, table=None) -> None:
        self.ids, self.types, self.names = list(ids), list(types), list(names)
        self.geoms = np.asarray(geoms, dtype=object)
        self.crs = crs
        #: The GeoDataFrame's other columns (a DataFrame) when built from one, else None.
        self.table = table
        self._arrow: dict[str, pa.Array] = {}
        self._frame = None

    @classmethod
    def of(cls, perimeters) -> PerimeterLayer:
        """A layer as it is, or the layer of a GeoDataFrame (``perimeter_id``, ``type``, ``nom``)."""
        if isinstance(perimeters, cls):
            return perimeters
        table = perimeters.drop(columns=perimeters.geometry.name)

        def column(name: str, fallback: str | None = None) -> list:
            if name not in table.columns:
                if fallback is None or fallback not in table.columns:
                    return [None] * len(table)
                name = fallback
            values = table[name]
            return values.astype(object).where(values.notna(), None).tolist()

        layer = cls(
            column("perimeter_id"),
            column("type"),
            column("nom", "perimeter_id"),
            perimeters.geometry.to_numpy(),
            perimeters.crs,
            table=table,
        )
        layer._frame = perimeters
        return layer

    def __len__(self) -> int:
        return len(self.geoms)

    @property
    def empty(self) -> bool:
        return len(self.geoms) == 0

    def copy(self) -> PerimeterLayer:
        """The same perimeters with geometries of their own (for another thread: GEOS builds a
        prepared geometry's indexes lazily, and two threads building them at once crash it)."""
        out = PerimeterLayer(
            self.ids,
            self.types,
            self.names,
            shapely.from_wkb(shapely.to_wkb(self.geoms)),
            self.crs,
            table=self.table,
        )
        out._arrow = self._arrow
        return out

    def arrow(self, name: str) -> pa.Array:
        """``perimeter_id``, ``type`` or ``nom`` as an Arrow text array (made once)."""
        if name not in self._arrow:
            values = {"perimeter_id": self.ids, "type": self.types, "nom": self.names}[name]
            self._arrow[name] = pa.array(values, _TEXT)
        return self._arrow[name]

    def frame(self) -> gpd.GeoDataFrame:
        """The perimeters as a GeoDataFrame: the one given, or as ``read_perimeter_file`` gives them."""
        if self._frame is None:
            import geopandas as gpd

            if self.table is not None:
                self._frame = gpd.GeoDataFrame(self.table.copy(), geometry=self.geoms, crs=self.crs)
            else:
                data = {
                    "perimeter_id": self.ids,
                    "type": self.types,
                    "nom": self.names,
                    "centre_ville": [False] * len(self),
                    "commune": [None] * len(self),
                    "date_debut": [None] * len(self),
                    "date_fin": [None] * len(self),
                }
                out = gpd.GeoDataFrame(geometry=self.geoms, crs=self.crs, index=range(len(self)))
                for name in _COLUMNS:
                    out[name] = data[name]
                self._frame = out
        return self._frame

    def in_crs(self, crs) -> PerimeterLayer:
        """The layer in ``crs``: itself when it is already there."""
        if projection.same_crs(self.crs, crs):
            return self
        return PerimeterLayer.of(self.frame().to_crs(crs))


def read_perimeter_layer(path: str | Path, *, metric_crs: str, report: ValidationReport) -> PerimeterLayer:
    """:func:`geo.perimeters.read_perimeter_file` as a :class:`PerimeterLayer`, fast for a plain file.

    A plain file is a GeoPackage of one layer, or a GeoJSON, in Lambert-93 (``metric_crs``) or
    WGS 84, whose features all have a text ``id`` (unique), a known ``type``, a text or empty
    ``nom`` and no other property of the format, and whose geometries are valid polygons
    plainly inside metropolitan France. It is read with SQLite or ``json`` (and reprojected
    from WGS 84 by pyproj, as the full reader does): nothing else to import. Any other file,
    or any doubt, is read by :func:`geo.perimeters.read_perimeter_file`, which records its
    problems in ``report`` in French as always.
    """
    path = Path(path)
    fast = (
        _plain_gpkg(path, metric_crs) if path.suffix.lower() == ".gpkg" else _plain_geojson(path, metric_crs)
    )
    if fast is not None:
        return fast
    from geo.perimeters import read_perimeter_file

    return PerimeterLayer.of(read_perimeter_file(path, metric_crs=metric_crs, report=report))


def _plain_gpkg(path: Path, metric_crs: str) -> PerimeterLayer | None:
    """The perimeters of a plain GeoPackage (see :func:`read_perimeter_layer`), or None."""
    if path.suffix.lower() != ".gpkg" or not path.is_file() or projection.epsg_code(metric_crs) != 2154:
        return None
    layer = gpkg.read_plain_layer(path)
    if layer is None or layer.crs not in (projection.LAMBERT93, projection.WGS84):
        return None
    for name, kind in layer.types.items():
        if name in ("id", "type", "nom"):
            if not kind.upper().startswith("TEXT"):
                return None
        elif name in _PROPERTIES:
            if any(v is not None for v in layer.columns[name]):  # checked by the typed reader
                return None
        else:
            return None  # (a property the typed reader ignores, but GDAL reads: its business)
    n = len(layer)
    rows = [{k: layer.columns[k][i] for k in ("id", "type", "nom") if k in layer.columns} for i in range(n)]
    return _plain(rows, layer.geometries, layer.crs)


#: How a GeoJSON ``crs`` member names Lambert-93 or WGS 84 (lower-cased), and the CRS the
#: typed reader makes of each name (pyproj's ``to_string``: the same transformation follows).
_CRS_NAMES = {
    "epsg:2154": projection.LAMBERT93,
    "urn:ogc:def:crs:epsg::2154": projection.LAMBERT93,
    "epsg:4326": projection.WGS84,
    "urn:ogc:def:crs:epsg::4326": projection.WGS84,
    "ogc:crs84": "OGC:CRS84",
    "urn:ogc:def:crs:ogc:1.3:crs84": "OGC:CRS84",  # what GDAL writes
}
_LONLAT = (projection.WGS84, "OGC:CRS84")


def _plain_geojson(path: Path, metric_crs: str) -> PerimeterLayer | None:
    """The perimeters of a plain GeoJSON (see :func:`read_perimeter_layer`), or None."""
    if path.suffix.lower() not in (".geojson", ".json") or projection.epsg_code(metric_crs) != 2154:
        return None
    try:
        data = bounded.read_json(path, what="fichier de périmètres")
    except InputError:
        return None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        return None
    member, features = data.get("crs"), data.get("features")
    if member is None:
        crs = projection.WGS84  # RFC 7946: lon/lat in WGS 84
    else:
        name = (member.get("properties") or {}).get("name") if isinstance(member, dict) else None
        crs = _CRS_NAMES.get(name.lower()) if isinstance(name, str) else None
        if crs is None:
            return None
    if not isinstance(features, list):
        return None
    rows, geoms = [], []
    for feature in features:
        props = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(props, dict) or not feature.get("geometry"):
            return None
        others = {k: v for k, v in props.items() if k in _PROPERTIES and k not in ("id", "type", "nom")}
        if any(v is not None for v in others.values()):  # checked by the typed reader
            return None
        try:
            geoms.append(shapely.geometry.shape(feature["geometry"]))
        except Exception:  # noqa: BLE001 - malformed coordinates: the typed reader says which
            return None
        rows.append(props)
    return _plain(rows, np.array(geoms, dtype=object), crs)


def _plain(rows: list[dict], geoms: np.ndarray, crs: str) -> PerimeterLayer | None:
    """The layer of features whose properties and geometries (in Lambert-93, or WGS 84 then
    reprojected as the typed reader does) it would take as they are, or None."""
    n = len(rows)
    if n == 0 or len(geoms) != n:
        return None
    ids = [_text(row.get("id")) for row in rows]
    types = [_text(row.get("type")) for row in rows]
    names = [_text(row.get("nom")) for row in rows]
    if not all(isinstance(i, str) and i for i in ids) or len(set(ids)) != n:
        return None
    if any(t not in PERIMETER_TYPES for t in types) or any(v is False for v in names):
        return None
    kinds = shapely.get_type_id(geoms)
    if not np.isin(kinds, (3, 6)).all() or shapely.is_empty(geoms).any() or shapely.has_z(geoms).any():
        return None
    if not shapely.is_valid(geoms).all():
        return None
    bounds = shapely.bounds(geoms)
    if crs in _LONLAT and projection.plausible_in_lonlat(bounds):
        geoms = projection.reproject(geoms, crs, projection.LAMBERT93)  # (pyproj)
    elif crs != projection.LAMBERT93 or not projection.plausible_in_lambert93(bounds):
        return None
    names = [nom or ident for nom, ident in zip(names, ids, strict=True)]
    return PerimeterLayer(ids, types, names, geoms, projection.LAMBERT93)


def _text(value):
    """A text property as the typed reader sees it (stripped), None if absent; False if not text."""
    if value is None:
        return None
    if not isinstance(value, str):
        return False
    return value.strip()
