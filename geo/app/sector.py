"""A sector's parcels (the convention's annex list) and a perimeter drawn from parcels.

What ``ort parcels`` and ``ort perimeter-from-parcels`` do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from geo import settings as ort_settings
from geo.app.load import Territoire, classify_with_progress, provenance, with_parcel_columns
from geo.app.models import ParcellesSecteur, PerimetreDessine
from geo.errors import InputError


def sector_parcels(
    *,
    territoire: Territoire,
    sector: str | None = None,
    date: dt.date | str | None = None,
    inside_only: bool = False,
    output: str | Path | None = None,
    tolerance_m2: float | None = None,
    tolerance_pct: float | None = None,
    force: bool = False,
    settings: ort_settings.Settings | None = None,
) -> ParcellesSecteur:
    """The parcels inside (and across, unless ``inside_only``) a sector on ``date``.

    ``sector`` is a perimeter id or name (default: the whole ORT). With ``output`` (.csv,
    .xlsx, .gpkg, .parquet) the list is written, titled and sourced.
    """
    from geo import fmt
    from geo.check import source_text
    from geo.classify import parcels_in
    from geo.columns import PARCELS
    from geo.io import write_table
    from geo.perimeters import ORT_ID, parse_date

    conv, parcels = territoire.convention, territoire.parcels
    with ort_settings.use(settings):
        day = parse_date(date)
        perims = conv.perimeters(day, in_force_only=True)
        target = sector or ORT_ID
        match = perims[
            (perims["perimeter_id"] == target) | (perims["nom"].str.casefold() == target.casefold())
        ]
        if match.empty:
            known = ", ".join(
                f"{i} ({n})" for i, n in zip(perims["perimeter_id"], perims["nom"], strict=True)
            )
            raise InputError(f"secteur '{target}' inconnu", fix=f"choisissez parmi : {known}")
        result = classify_with_progress(parcels, match, tolerance_m2, tolerance_pct)
        rows = with_parcel_columns(
            parcels_in(result, match["perimeter_id"].iloc[0], include_straddling=not inside_only), parcels
        )
        rows = rows.sort_values("idu").reset_index(drop=True)
        nom = str(match["nom"].iloc[0])
        if output is not None:
            table = rows
            if Path(output).suffix.lower() in (".gpkg", ".parquet", ".geojson"):
                import geopandas as gpd

                table = gpd.GeoDataFrame(
                    rows.merge(parcels[["idu", "geometry"]], on="idu"), geometry="geometry", crs=parcels.crs
                )
            kept = "incluses" if inside_only else "incluses ou à cheval"
            write_table(
                table,
                Path(output),
                force=force,
                layout=PARCELS,
                title=f"{nom} — parcelles {kept} au {fmt.date_fr(day)}",
                source=source_text(conv, perims, parcels.attrs.get("millesime"), day),
            )
    counts = rows["status"].value_counts()
    out = ParcellesSecteur(
        perimetre_id=str(match["perimeter_id"].iloc[0]),
        nom=nom,
        date=day,
        parcelles=len(rows),
        incluses=int(counts.get("inside", 0)),
        a_cheval=int(counts.get("straddling", 0)),
        fichier=Path(output) if output is not None else None,
        provenance=provenance(conv, perims, parcels, day),
    )
    out._table = rows
    return out


def perimeter_from_parcels(
    ids: Iterable[str],
    *,
    commune: str,
    perimeter_id: str,
    nom: str,
    output: str | Path,
    type: str = "secteur",
    centre_ville: bool = False,
    cadastre: str | Path | None = None,
    millesime: str | None = None,
    force: bool = False,
    settings: ort_settings.Settings | None = None,
) -> PerimetreDessine:
    """A perimeter (GeoJSON) drawn as the union of parcels of ``commune``, written to ``output``."""
    from geo.idu import parse_many
    from geo.io import write_text
    from geo.perimeters import perimeter_from_parcels as union
    from geo.perimeters import perimeters_to_geojson
    from geo.sources import cadastre as cad

    with ort_settings.use(settings):
        source = Path(cadastre) if cadastre is not None else None
        if source is not None and source.is_file():
            layer = cad.read_parcels(source)
        else:
            layer = cad.load_cadastre([commune], ("parcelles",), millesime=millesime, source_dir=source)[
                "parcelles"
            ]
        valid, rejected = parse_many(list(ids), code_insee=commune)
        if rejected:
            raise InputError(f"{rejected[0][1]}")
        gdf = union(
            layer,
            [p.idu for p in valid],
            perimeter_id=perimeter_id,
            nom=nom,
            type=type,
            centre_ville=centre_ville,
        )
        write_text(perimeters_to_geojson(gdf), Path(output), force=force)
    return PerimetreDessine(
        perimetre_id=perimeter_id, nom=nom, parcelles=len(valid), surface_m2=float(gdf.geometry.area.sum()),
        fichier=Path(output),
    )  # fmt: skip


__all__ = ["perimeter_from_parcels", "sector_parcels"]
