"""Perimeters as plain arrays — ids, types, names, geometries, CRS — for the engine at scale.

What :func:`geo.scale.run.classify_dataset` needs of its perimeters is little: their ids, types
and names (the verdicts' columns), their geometries and their CRS. :class:`PerimeterLayer`
holds just that, so that ``ort classify FILE --perimeters-file P.gpkg`` runs without pandas,
geopandas nor pydantic: :func:`read_perimeter_layer` reads the plainest GeoPackage — one layer
in the metric CRS, the columns ``id``, ``type``, ``nom`` — with SQLite (:mod:`geo.gpkg`), and
hands any other file to :func:`geo.perimeters.read_perimeter_file` (GDAL, the typed checks,
their French messages). Both give the same perimeters; a layer also wraps a GeoDataFrame
(:meth:`PerimeterLayer.of`) and gives one back (:meth:`PerimeterLayer.frame`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import shapely

from geo import gpkg, projection
from geo.errors import ValidationReport

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
    """:func:`geo.perimeters.read_perimeter_file` as a :class:`PerimeterLayer`, fast for a plain GeoPackage.

    A GeoPackage of one layer already in ``metric_crs`` (an EPSG code) whose features all have a
    text ``id`` (unique), a known ``type``, a text or empty ``nom`` and no other property of the
    format, and whose geometries are valid polygons plainly inside metropolitan France in
    Lambert-93, is read with SQLite: nothing else to import. Any other file, or any doubt, is
    read by :func:`geo.perimeters.read_perimeter_file`, which records its problems in
    ``report`` in French as always.
    """
    fast = _plain_gpkg(Path(path), metric_crs)
    if fast is not None:
        return fast
    from geo.perimeters import read_perimeter_file

    return PerimeterLayer.of(read_perimeter_file(path, metric_crs=metric_crs, report=report))


def _plain_gpkg(path: Path, metric_crs: str) -> PerimeterLayer | None:
    """The perimeters of a plain GeoPackage (see :func:`read_perimeter_layer`), or None."""
    if path.suffix.lower() != ".gpkg" or not path.is_file():
        return None
    code = projection.epsg_code(metric_crs)
    if code is None:
        return None
    layer = gpkg.read_plain_layer(path)
    if layer is None or len(layer) == 0 or layer.crs != f"EPSG:{code}":
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
    ids = [_text(v) for v in layer.columns.get("id", [None] * n)]
    types = [_text(v) for v in layer.columns.get("type", [None] * n)]
    names = [_text(v) for v in layer.columns.get("nom", [None] * n)]
    if not all(isinstance(i, str) and i for i in ids) or len(set(ids)) != n:
        return None
    if any(t not in PERIMETER_TYPES for t in types) or any(v is False for v in names):
        return None
    geoms = layer.geometries
    if not (shapely.is_valid(geoms).all()):
        return None
    if code == 2154 and projection.plausible_in_lambert93(shapely.bounds(geoms)):
        names = [nom or ident for nom, ident in zip(names, ids, strict=True)]
        return PerimeterLayer(ids, types, names, geoms, f"EPSG:{code}")
    return None


def _text(value):
    """A text property as the typed reader sees it (stripped), None if absent; False if not text."""
    if value is None:
        return None
    if not isinstance(value, str):
        return False
    return value.strip()
