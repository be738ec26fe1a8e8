"""The places of a convention: its action register, the friches, the social housing sites.

What ``ort actions``, ``ort friches`` and ``ort logements`` do: read the file, place its rows
against the perimeters in force, summarise, and (``output``) write the table. A file with
errors gives ``ok = False`` and its problems, nothing written.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from geo import settings as ort_settings
from geo.app.load import convention_folder, load_parcels
from geo.app.models import Lieux, Probleme
from geo.errors import InputError


def _convention_or_none(folder):
    from geo.perimeters import METADATA_FILE, read_convention

    if folder is None or not (convention_folder(folder) / METADATA_FILE).is_file():
        return None
    return read_convention(convention_folder(folder))


def _perimeters_or_none(conv, day) -> tuple[object, str]:
    """The perimeters in force and the line that says so; None for a convention not digitised."""
    from geo import fmt

    if conv is None:
        return None, ""
    if not conv.versions:
        return (
            None,
            f"Convention : {conv.nom} — pas encore de périmètre numérisé : pas de calcul par secteur.",
        )
    return conv.perimeters(
        day, in_force_only=True
    ), f"Convention : {conv.nom} — périmètres au {fmt.date_fr(day)}"


def _problems(report) -> list[Probleme]:
    return [
        Probleme(gravite=p.severity, code=p.code, message=p.message, source=p.source, element=p.feature)
        for p in report.problems
    ]


def _result(kind: str, path: Path, conv, report, **fields) -> Lieux:
    out = Lieux(
        type=kind,
        fichier=path,
        convention=conv.nom if conv is not None else None,
        ok=report.ok if report is not None else True,
        problemes=_problems(report) if report is not None else [],
        **fields,
    )
    out._report = report
    return out


def _require_convention(perimeters, conv) -> None:
    if perimeters is not None and conv is None:
        raise InputError(
            "pas de convention.toml dans ce dossier",
            source=str(perimeters),
            fix="donnez un dossier perimeters/<slug> complet, ou omettez --perimeters",
        )


def action_dashboard(
    *,
    register: str | Path | None = None,
    perimeters: str | Path | None = None,
    cadastre: str | Path | None = None,
    date: dt.date | str | None = None,
    output: str | Path | None = None,
    force: bool = False,
    settings: ort_settings.Settings | None = None,
) -> Lieux:
    """The dashboard of an action register: axis × status, budgets, sectors, actions not placed.

    ``register`` defaults to ``{perimeters}/actions.toml``. ``output`` (.csv or .xlsx) receives
    the tables (``tables`` of the result: ``axes_statuts``, ``financeurs``, ``secteurs``,
    ``non_localisees``…).
    """
    from geo.perimeters import parse_date
    from geo.places import actions as act

    if perimeters is None and register is None:
        raise InputError(
            "ni convention ni registre", fix="donnez --perimeters perimeters/<slug> ou --register"
        )
    if output is not None and Path(output).suffix.lower() not in (".csv", ".xlsx"):
        raise InputError(
            f"format de sortie '{Path(output).suffix}' non pris en charge", fix="utilisez .csv ou .xlsx"
        )
    with ort_settings.use(settings):
        path = act.register_path(register or convention_folder(perimeters))
        conv = _convention_or_none(perimeters or path.parent)
        parcels = None
        if cadastre is not None:
            if conv is not None:
                parcels = load_parcels(conv, Path(cadastre), None, False)
            else:
                from geo.sources.cadastre import read_parcels

                parcels = read_parcels(cadastre)
        reg = act.read_register(path, convention=conv, parcels=parcels, strict=False)
        if not reg.report.ok:
            return _result("actions", path, conv, reg.report, lignes=len(reg.actions))
        perims, line = _perimeters_or_none(conv, parse_date(date))
        tables = act.dashboard(reg, perimeters=perims, parcels=parcels)
        if output is not None:
            source = f"registre {path.name}" + (f" — {reg.source}" if reg.source else "")
            act.write_dashboard(tables, Path(output), force=force, source=source)
    out = _result(
        "actions", path, conv, reg.report, lignes=len(reg.actions), groupes=len(reg.axes),
        source=reg.source or "", convention_ligne=line, ecrit=Path(output) if output is not None else None,
    )  # fmt: skip
    out._data = {"register": reg, "tables": tables}
    return out


def locate_friches(
    file: str | Path,
    *,
    perimeters: str | Path | None = None,
    communes: list[str] | tuple[str, ...] = (),
    cadastre: str | Path | None = None,
    footprints: bool = False,
    date: dt.date | str | None = None,
    fix: bool = False,
    output: str | Path | None = None,
    force: bool = False,
    settings: ort_settings.Settings | None = None,
) -> Lieux:
    """Friches (Cartofriches GeoJSON, CNIG CSV) of the communes, placed against the sectors.

    Footprints are built from the parcels when a cadastre is at hand (``cadastre``,
    ``footprints``, or the convention's ``cadastre_dir``). Data of the result: ``layer`` (the
    sites, with ``perimetres``), ``summary`` (per perimeter and status) or ``counts``.
    """
    from geo.columns import FRICHES
    from geo.io import write_table
    from geo.perimeters import parse_date
    from geo.places import friches as fr

    file = Path(file)
    with ort_settings.use(settings):
        conv = _convention_or_none(perimeters)
        _require_convention(perimeters, conv)
        codes = list(communes) or (list(conv.communes) if conv else None)
        layer = fr.read_friches(file, communes=codes, metric_crs=conv.metric_crs if conv else None)
        report = layer.attrs["report"]
        if not report.ok:  # e.g. a site_id used twice: the sites could not be told apart in the output
            return _result("friches", file, conv, report, lignes=len(layer), communes=codes)
        if conv is not None and (cadastre is not None or footprints or conv.cadastre_dir is not None):
            parcels = load_parcels(conv, Path(cadastre) if cadastre else None, None, fix)
            layer = fr.friche_footprints(layer, parcels, report=report)
        perims, line = _perimeters_or_none(conv, parse_date(date))
        data = {}
        if perims is not None:
            located = fr.locate_friches(layer, perims)
            data["summary"] = fr.summarise_friches(located)
            hits = located[located["status"].isin(["inside", "straddling"])]
            sectors = hits.groupby("site_id")["perimeter_id"].agg(lambda s: " | ".join(s))
            layer = layer.assign(perimetres=layer["site_id"].map(sectors))
        else:
            data["counts"] = layer.groupby("site_statut", dropna=False).agg(
                nombre=("site_id", "count"), surface_m2=("surface_m2", "sum")
            )
        if output is not None:
            write_table(
                fr.friches_for_export(layer),
                Path(output),
                force=force,
                layout=FRICHES,
                source=f"{file.name}" + (f" ; convention {conv.nom}" if conv is not None else ""),
            )
    out = _result(
        "friches", file, conv, report, lignes=len(layer), communes=codes, convention_ligne=line,
        ecrit=Path(output) if output is not None else None,
    )  # fmt: skip
    out._data = {"layer": layer, **data}
    return out


def locate_housing(
    file: str | Path,
    *,
    perimeters: str | Path | None = None,
    addresses: str | Path | None = None,
    communes_file: str | Path | None = None,
    xy_crs: str | None = None,
    sheet: str | None = None,
    cadastre: str | Path | None = None,
    date: dt.date | str | None = None,
    output: str | Path | None = None,
    force: bool = False,
    settings: ort_settings.Settings | None = None,
) -> Lieux:
    """Social housing sites located (coordinates, parcel ids, addresses) and counted per sector
    and landlord. Data of the result: ``located`` (:func:`geo.places.housing.locate_sites`),
    ``table`` (the sites, with ``perimetres``), ``summary`` (per perimeter and landlord)."""
    from geo.columns import LOGEMENTS
    from geo.io import write_table
    from geo.perimeters import parse_date
    from geo.places import housing as hs
    from geo.projection import metric_crs_for
    from geo.sources.addresses import read_addresses

    file = Path(file)
    with ort_settings.use(settings):
        conv = _convention_or_none(perimeters)
        _require_convention(perimeters, conv)
        sites = hs.read_housing(file, sheet=sheet)
        if sites.empty:  # a header and nothing under it: "0 logement" with exit 0 would mislead
            raise InputError(
                "aucune ligne de données sous l'en-tête : aucun site à situer",
                source=str(file),
                fix="ajoutez une ligne par programme ou bâtiment sous la ligne d'en-tête",
            )
        file_codes = sorted({c for c in sites["code_insee"] if isinstance(c, str)})
        codes = list(conv.communes) if conv else file_codes
        metric = conv.metric_crs if conv else metric_crs_for(file_codes)
        parcels = None
        has_ids = any(len(p) for p in sites["parcelles"])
        if cadastre is not None or (conv is not None and (conv.cadastre_dir is not None or has_ids)):
            if conv is not None:
                parcels = load_parcels(conv, Path(cadastre) if cadastre else None, None, False)
            else:
                from geo.sources.cadastre import read_parcels

                parcels = read_parcels(cadastre, metric_crs=metric)
        points = read_addresses(addresses, communes=codes or None) if addresses else None
        shapes = _read_commune_shapes(Path(communes_file)) if communes_file else None
        located = hs.locate_sites(
            sites, metric_crs=metric, parcels=parcels, addresses=points, communes=codes or None,
            commune_shapes=shapes, xy_crs=xy_crs,
        )  # fmt: skip
        s = located.sites
        table, data = s, {"located": located}
        perims, line = _perimeters_or_none(conv, parse_date(date))
        if perims is not None:
            in_p = hs.sites_in_perimeters(located, perims)
            data["summary"] = hs.summarise_housing(in_p)
            hits = in_p[in_p["status"].isin(["inside", "straddling"])]
            table = s.assign(
                perimetres=s["site_id"].map(hits.groupby("site_id")["perimeter_id"].agg(" | ".join))
            )
        if output is not None:
            out_table = table
            if Path(output).suffix.lower() in (".csv", ".xlsx"):
                pts = table.geometry.representative_point().to_crs("EPSG:4326")
                out_table = table.assign(lon=pts.x.round(7), lat=pts.y.round(7))
            write_table(
                out_table,
                Path(output),
                force=force,
                layout=LOGEMENTS,
                source=f"{file.name}" + (f" ; convention {conv.nom}" if conv is not None else ""),
            )
    out = _result(
        "logements", file, conv, None, lignes=len(s), communes=codes, convention_ligne=line,
        logements=int(s["logements"].fillna(0).sum()), localises=len(s) - len(located.unlocated()),
        ecrit=Path(output) if output is not None else None,
    )  # fmt: skip
    out._data = {**data, "table": table}
    return out


def _read_commune_shapes(path: Path):
    """The commune polygons of ``--communes-file`` (any CRS), or a one-line InputError."""
    import geopandas as gpd

    from geo import projection

    fix = "donnez un GeoJSON (ou GeoPackage) des communes avec une colonne code_insee"
    if not path.is_file():
        raise InputError("fichier des communes introuvable", source=str(path), fix="vérifiez le chemin")
    try:
        shapes = gpd.read_file(path)
    except Exception as err:  # pyogrio / GDAL errors of a damaged or mislabelled file
        raise InputError(
            f"fichier des communes illisible ({type(err).__name__})", source=str(path), fix=fix
        ) from None
    projection.require_crs(shapes, source=str(path))
    return shapes


__all__ = ["action_dashboard", "locate_friches", "locate_housing"]
