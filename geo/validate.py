"""Validation of a convention folder: every problem at once, each naming its feature.

Checks the metadata (fields, INSEE codes, version dates), each version's geometry file
(readable, CRS declared and plausible, polygonal, valid, non-empty), and the perimeters
against each other and the territory: overlapping sectors, OPAH-RU outside the ORT
(warning), no centre-ville sector (CCH L303-2), a sector outside the convention's communes,
slivers, and — when parcels are given — the parcels cut by a perimeter line, with their share.
"""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import shapely

from geo import classify, fmt, settings
from geo.errors import OrtError, ValidationReport, one_line
from geo.perimeters import _SLUG, Convention, read_convention, read_perimeter_file


def validate_convention(
    path: str | Path,
    *,
    parcels: gpd.GeoDataFrame | None = None,
    communes: gpd.GeoDataFrame | None = None,
) -> ValidationReport:
    """Validate ``perimeters/<slug>/`` and return all problems found.

    Parameters
    ----------
    path : str or Path
        The convention folder.
    parcels : GeoDataFrame, optional
        Cadastral parcels (metric CRS) to report the parcels cut by perimeter lines.
    communes : GeoDataFrame, optional
        Commune boundaries (metric CRS, column ``code_insee``) to check that each perimeter
        lies within the convention's communes.

    Returns
    -------
    ValidationReport
        ``report.ok`` is False when there is at least one error.
    """
    path = Path(path)
    report = ValidationReport(str(path))
    try:
        conv = read_convention(path, report=report)
    except OrtError as err:  # folder or TOML unreadable: nothing else can be checked
        report.add("error", "unreadable", str(err), source=str(path))
        return report
    if len(conv.versions) > MAX_VERSIONS:
        report.add(
            "error",
            "too-many-versions",
            f"{len(conv.versions)} versions : au plus {MAX_VERSIONS} sont vérifiées (une convention et "
            "ses avenants en comptent quelques-unes) ; les fichiers de géométrie ne sont pas lus — "
            "vérifiez les [[versions]] de convention.toml",
            source=str(conv.path / "convention.toml"),
        )
        return report
    # Several versions may share one geometry file: read and check each file once (linear time).
    for fichier in dict.fromkeys(v.fichier for v in conv.versions):
        gdf = read_perimeter_file(
            conv.path / fichier,
            declared_crs=conv.crs,
            metric_crs=conv.metric_crs,
            report=report,
            code_insee=conv.communes[0] if conv.communes else None,
        )
        if gdf.empty:
            continue
        _check_perimeters(conv, str(conv.path / fichier), gdf, report, parcels=parcels, communes=communes)
    return report


def validate_version(
    conv: Convention,
    perimeters: gpd.GeoDataFrame,
    *,
    parcels: gpd.GeoDataFrame | None = None,
    communes: gpd.GeoDataFrame | None = None,
) -> ValidationReport:
    """The checks of :func:`validate_convention` on the version used for an answer, as warnings.

    What ``ort check`` runs before answering: overlapping sectors, no centre-ville, a sector
    outside the convention's communes (with ``communes``) or far from the cadastre's parcels
    (with ``parcels``, beyond :data:`FAR_M`), slivers. Parcels cut by a line are not listed.

    Parameters
    ----------
    perimeters : GeoDataFrame
        From :meth:`Convention.perimeters` (metric CRS); the ``ort`` union row is ignored.
    parcels, communes : GeoDataFrame, optional
        Metric CRS.

    Returns
    -------
    ValidationReport
        Every problem with severity ``"warning"``.
    """
    report = ValidationReport(str(conv.path))
    gdf = perimeters[perimeters["type"] != "ort"]
    if gdf.empty:
        return report
    version = perimeters.attrs.get("version")
    fichier = next((v.fichier for v in conv.versions if v.id == version), "")
    src = str(conv.path / fichier) if fichier else str(conv.path)
    _check_perimeters(conv, src, gdf, report, parcels=None, communes=communes)
    if parcels is not None and not parcels.empty:
        _check_far(src, gdf, parcels, report)
    report.problems = [type(p)("warning", p.code, p.message, p.source, p.feature) for p in report.problems]
    return report


#: A perimeter farther than this from every parcel of the cadastre is reported (metres).
FAR_M = 1_000.0
#: Most versions a convention may have for :func:`validate_convention` to check them all.
MAX_VERSIONS = 1_000


def _check_far(src: str, gdf: gpd.GeoDataFrame, parcels: gpd.GeoDataFrame, report: ValidationReport) -> None:
    """Perimeters that lie far from the cadastre loaded with them: another commune, wrong CRS."""
    hull = shapely.box(*parcels.to_crs(gdf.crs).total_bounds)
    for pid, geom in zip(gdf["perimeter_id"], gdf.geometry, strict=True):
        distance = shapely.distance(geom, hull)
        if distance > FAR_M:
            report.add(
                "error",
                "far-from-parcels",
                f"le périmètre est à {distance / 1000:,.1f} km des parcelles du cadastre chargé".replace(
                    ",", " "
                )
                + " : autre commune, ou coordonnées fausses",
                source=src,
                feature=f"id={pid}",
            )


def _check_territory(conv: Convention, src: str, gdf: gpd.GeoDataFrame, report: ValidationReport) -> None:
    """Perimeters outside the départements of the convention's communes (embedded extents, no
    commune outlines needed): a La Réunion code with perimeters in the Nord, another town's file."""
    from geo.territory import departement_extent

    if conv.fictif:  # a fictional commune (the demo) lies where its author put it
        return
    boxes = [e for e in (departement_extent(c) for c in conv.communes) if e is not None]
    if not boxes or gdf.empty:
        return
    lonlat = gdf.geometry.to_crs("EPSG:4326").bounds.to_numpy()
    deps = ", ".join(dict.fromkeys(d for d, _ in boxes))
    for pid, (x0, y0, x1, y1) in zip(gdf["perimeter_id"], lonlat, strict=True):
        if not all(map(math.isfinite, (x0, y0, x1, y1))):
            continue
        if any(x0 <= b[2] and x1 >= b[0] and y0 <= b[3] and y1 >= b[1] for _, b in boxes):
            continue
        report.add(
            "error",
            "outside-territory",
            f"le périmètre (lon {_deg(x0)}…{_deg(x1)}, lat {_deg(y0)}…{_deg(y1)}) est hors du "
            f"département {deps} des communes de la convention ({', '.join(conv.communes)}) : "
            "fichier d'une autre commune, code INSEE faux, ou coordonnées fausses",
            source=src,
            feature=f"id={pid}",
        )


def _deg(value: float) -> str:
    return f"{value:.2f}".replace(".", ",")


def _check_perimeters(
    conv: Convention,
    src: str,
    gdf: gpd.GeoDataFrame,
    report: ValidationReport,
    *,
    parcels: gpd.GeoDataFrame | None,
    communes: gpd.GeoDataFrame | None,
) -> None:
    for pid in gdf["perimeter_id"]:
        # Ids name files (the annex's parcelles-<id>.csv): the slug rule of convention folders.
        if not _SLUG.match(str(pid)):
            report.add(
                "error",
                "bad-id",
                f"id {one_line(repr(str(pid)))[:80]} n'est pas un identifiant valide : lettres "
                "minuscules sans accent, chiffres et « - » (64 caractères au plus), ex. « centre-ville »",
                source=src,
                feature=f"id={pid}",
            )
    secteurs = gdf[gdf["type"] == "secteur"]
    if secteurs.empty:
        report.add("error", "no-secteur", "aucun secteur d'intervention dans cette version", source=src)
    elif not secteurs["centre_ville"].any():
        report.add(
            "error",
            "no-centre-ville",
            "aucun secteur ne comprend de centre-ville : l'ORT doit en avoir un (CCH L303-2) — "
            "indiquez centre_ville = true sur ce secteur",
            source=src,
        )

    for pid, commune in zip(gdf["perimeter_id"], gdf["commune"], strict=True):
        if commune and conv.communes and commune not in conv.communes:
            report.add(
                "error",
                "foreign-commune",
                f"la commune {commune} n'est pas une commune de la convention ({', '.join(conv.communes)})",
                source=src,
                feature=f"id={pid}",
            )

    # Overlapping sectors: the share of each pair's area in common.
    geoms = secteurs.geometry.to_numpy()
    ids = secteurs["perimeter_id"].to_numpy()
    left, right = secteurs.sindex.query(geoms, predicate="intersects")
    for i, j in zip(left, right, strict=True):
        if i >= j:
            continue
        common = shapely.area(shapely.intersection(geoms[i], geoms[j]))
        if common > settings.sliver_m2:
            report.add(
                "error",
                "overlapping-sectors",
                f"les secteurs '{ids[i]}' et '{ids[j]}' se chevauchent sur {fmt.area_m2(common)}",
                source=src,
                feature=f"id={ids[i]}",
            )

    # OPAH-RU is expected inside the ORT: a warning, the conventions differ.
    ort = shapely.union_all(geoms) if len(geoms) else None
    for _, row in gdf[gdf["type"] == "opah_ru"].iterrows():
        area = row.geometry.area
        outside = area - (shapely.area(shapely.intersection(row.geometry, ort)) if ort is not None else 0.0)
        if outside > settings.sliver_m2:
            report.add(
                "warning",
                "opah-ru-outside-ort",
                f"{fmt.percent(outside / area)} du périmètre d'OPAH-RU ({fmt.area_m2(outside)}) "
                "hors des secteurs de l'ORT",
                source=src,
                feature=f"id={row.perimeter_id}",
            )

    # Slivers: tiny parts or holes, usually digitising leftovers.
    for pid, geom in zip(gdf["perimeter_id"], gdf.geometry, strict=True):
        parts = shapely.get_parts(geom)
        for part in parts:
            if part.area < settings.sliver_m2:
                report.add(
                    "warning",
                    "sliver",
                    f"une partie de {fmt.area_m2(part.area, 2)} "
                    f"(moins de {fmt.area_m2(settings.sliver_m2)}) : un résidu à supprimer",
                    source=src,
                    feature=f"id={pid}",
                )
            for ring in part.interiors:
                hole = shapely.Polygon(ring).area
                if hole < settings.sliver_m2:
                    report.add(
                        "warning",
                        "sliver",
                        f"un trou de {fmt.area_m2(hole, 2)} (moins de {fmt.area_m2(settings.sliver_m2)}) : "
                        "un résidu à supprimer",
                        source=src,
                        feature=f"id={pid}",
                    )

    _check_territory(conv, src, gdf, report)

    if communes is not None and not communes.empty:
        own = communes[communes["code_insee"].isin(conv.communes)] if conv.communes else communes
        territory = shapely.union_all(own.to_crs(gdf.crs).geometry.to_numpy()).buffer(1.0)
        for pid, geom in zip(gdf["perimeter_id"], gdf.geometry, strict=True):
            outside = geom.area - shapely.area(shapely.intersection(geom, territory))
            if outside > settings.sliver_m2:
                report.add(
                    "error",
                    "outside-communes",
                    f"{fmt.area_m2(outside)} du périmètre hors des communes de la convention "
                    f"({', '.join(conv.communes)})",
                    source=src,
                    feature=f"id={pid}",
                )

    if parcels is not None and not parcels.empty:
        result = classify.classify_parcels(
            parcels.to_crs(gdf.crs), gdf, with_distance=False, only_intersecting=True
        )
        cut = result[result["status"] == classify.STRADDLING]
        for pid, group in cut.groupby("perimeter_id", sort=False):
            shown = ", ".join(f"{r.idu} ({fmt.percent(r.share, 0)})" for r in group.head(8).itertuples())
            more = f" (+{len(group) - 8} autres)" if len(group) > 8 else ""
            report.add(
                "warning",
                "parcels-cut",
                f"{len(group)} parcelle(s) coupée(s) par la limite du périmètre : {shown}{more}",
                source=src,
                feature=f"id={pid}",
            )
