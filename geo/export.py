"""A convention's perimeters in the forms other tools import.

- **Zéro Logement Vacant** (ZLV, the State's tool against vacant housing): a collectivité
  uploads its perimeters as a zipped shapefile; each feature becomes one perimeter, its kind
  read from the field ``type`` and its name from ``nom`` (what ZLV's server reads; other fields
  are ignored). ZLV turns the shapefile into GeoJSON, so coordinates in WGS84 (EPSG:4326)
  are what it stores; the ``.prj`` says so, and a reader that reprojects from the ``.prj``
  leaves them as they are.

:func:`zlv_perimeters` builds the table (a typed result, nothing written); :func:`write_zlv_zip`
writes it atomically. ``ort export --zlv`` calls both.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd

from geo import fmt, settings
from geo.errors import InputError
from geo.io import atomic_path
from geo.projection import WGS84

#: ZLV's kind (``type``) for each perimeter type of a convention.
ZLV_TYPES = {
    "secteur": "ORT - secteur d'intervention",
    "ort": "ORT - ensemble des secteurs",
    "opah_ru": "OPAH-RU",
}
#: The fields of each feature, in order: ZLV reads ``type`` and ``nom``; the others say which
#: version of the convention the perimeter comes from (dBASE names: 10 characters at most).
ZLV_FIELDS = ("type", "nom", "id", "convention", "version", "date_effet", "date_eval")
#: Files of the shapefile inside the zip, one name for all: ``perimetres.shp``, ``.dbf``...
ZLV_LAYER = "perimetres"


@dataclass(frozen=True)
class ZlvExport:
    """The perimeters of a convention at a date, as ZLV imports them.

    Attributes
    ----------
    features : GeoDataFrame
        One row per perimeter in force, columns :data:`ZLV_FIELDS`, EPSG:4326.
    convention : str
        The convention's name.
    version : str
        The version of the perimeters in force (``avenant-1``) and its label.
    day : datetime.date
        The date evaluated.
    """

    features: gpd.GeoDataFrame
    convention: str
    version: str
    day: dt.date

    def describe(self) -> str:
        """One French line per perimeter: ``Centre-ville (ORT - secteur d'intervention)``."""
        head = (
            f"{len(self.features)} périmètre(s) de « {self.convention} », {self.version}, "
            f"au {fmt.date_fr(self.day)}"
        )
        rows = [f"  {r.nom} ({r.type})" for r in self.features.itertuples()]
        return "\n".join([head, *rows])


def zlv_perimeters(conv, day: dt.date | str) -> ZlvExport:
    """The perimeters of ``conv`` in force at ``day``, as ZLV's import reads them.

    Parameters
    ----------
    conv : geo.perimeters.Convention
        The convention (:func:`geo.perimeters.read_convention`).
    day : date or ISO string
        The date: the version of the perimeters in force that day, and only the perimeters in
        force (an OPAH-RU not started or ended is left out).

    Returns
    -------
    ZlvExport
        Geometries in WGS84 (EPSG:4326), reprojected from the convention's metric CRS.

    Raises
    ------
    geo.errors.PerimeterError
        No version in force at ``day``.
    geo.errors.InputError
        No perimeter in force at ``day`` (nothing to export).
    """
    day = dt.date.fromisoformat(day) if isinstance(day, str) else day
    perims = conv.perimeters(day, in_force_only=True)
    if perims.empty:
        raise InputError(
            f"aucun périmètre de la convention en vigueur le {fmt.date_fr(day)}",
            source=conv.nom,
            fix="choisissez une autre --date",
        )
    attrs = perims.attrs
    features = gpd.GeoDataFrame(
        {
            "type": [ZLV_TYPES.get(t, str(t)) for t in perims["type"]],
            "nom": [str(n) for n in perims["nom"]],
            "id": [str(i) for i in perims["perimeter_id"]],
            "convention": conv.nom,
            "version": attrs.get("version", ""),
            "date_effet": attrs.get("version_date", ""),
            "date_eval": day.isoformat(),
        },
        geometry=perims.geometry.to_crs(WGS84).to_numpy(),
        crs=WGS84,
    )
    label = f"version « {attrs.get('version_libelle') or attrs.get('version', '')} »"
    return ZlvExport(features, conv.nom, label, day)


def write_zlv_zip(export: ZlvExport, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write ``export`` as a zipped shapefile (``perimetres.shp/.shx/.dbf/.prj/.cpg``).

    Text is UTF-8 (the ``.cpg`` says so); the zip holds no folder and fixed dates, so the same
    perimeters give the same bytes. Atomic; an existing file is refused unless ``force``.
    """
    path = Path(path)
    if path.suffix.lower() != ".zip":
        raise InputError(
            f"un shapefile pour ZLV s'écrit dans un .zip, pas {path.name!r}",
            fix="donnez -o perimetres-zlv.zip",
        )
    with tempfile.TemporaryDirectory(prefix="ort-zlv-") as work:
        shp = Path(work) / f"{ZLV_LAYER}.shp"
        export.features.to_file(
            shp, driver="ESRI Shapefile", engine=settings.io_engine, encoding="UTF-8", promote_to_multi=True
        )
        parts = sorted(p for p in Path(work).iterdir() if p.stem == ZLV_LAYER)
        with atomic_path(path, force=force) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for part in parts:
                info = zipfile.ZipInfo(part.name, date_time=(2000, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, part.read_bytes())
    return path
