"""``ort actions``, ``ort friches``, ``ort logements``: the places of a convention.

Registered by :mod:`geo.cli` (``COMMANDS``). Each command reads its inputs, prints a French
summary and, with ``-o``, writes a table (never over an existing file without ``--force``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from geo import fmt
from geo.cli.options import (
    EXIT_BAD_INPUT,
    Command,
    cadastre_option,
    date_option,
    fix_option,
    force_option,
    load_parcels,
    parse_date,
    perimeters_option,
)
from geo.errors import InputError

if TYPE_CHECKING:  # pandas is imported where it is used: `ort --help` stays quick
    import pandas as pd

_output_option = click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Fichier de sortie."
)


def _convention_or_none(folder: Path | None):
    from geo.perimeters import METADATA_FILE, read_convention

    if folder is None or not (Path(folder) / METADATA_FILE).is_file():
        return None
    return read_convention(folder)


def _perimeters_or_none(conv, day):
    """The perimeters in force, or None (with a note) for a convention not yet digitised."""
    if conv is None:
        return None
    if not conv.versions:
        click.echo(f"Convention : {conv.nom} — pas encore de périmètre numérisé : pas de calcul par secteur.")
        return None
    click.echo(f"Convention : {conv.nom} — périmètres au {fmt.date_fr(day)}")
    return conv.perimeters(day, in_force_only=True)


def _table(df: pd.DataFrame) -> str:
    if df.empty:
        return "  (aucune ligne)"
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_colwidth", 70, "display.max_rows", 500):
        return df.to_string(index=False)


def _echo_problems(report, *, limit: int = 40) -> None:
    problems = report.problems
    for p in problems[:limit]:
        click.echo(f"  {p}", err=True)
    if len(problems) > limit:
        click.echo(f"  … et {len(problems) - limit} autre(s)", err=True)


# --- ort actions -----------------------------------------------------------------------------


@click.command("actions", cls=Command)
@perimeters_option(required=False)
@click.option(
    "--register",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Fichier du registre des actions (défaut : <perimeters>/actions.toml).",
)
@date_option
@cadastre_option
@_output_option
@force_option
def actions(perimeters, register, when, cadastre, output, force):
    """Tableau de bord du registre des actions : axe × statut, budgets, secteurs, actions non localisées.

    \b
    ort actions --perimeters perimeters/libercourt
    ort actions --register perimeters/libercourt/actions.toml -o tableau-de-bord.xlsx
    """
    from geo.io import check_writable
    from geo.places import actions as act

    if perimeters is None and register is None:
        raise click.UsageError("donnez --perimeters perimeters/<slug> ou --register actions.toml")
    if output:
        check_writable(output, force=force)
        if output.suffix.lower() not in (".csv", ".xlsx"):
            raise InputError(
                f"format de sortie '{output.suffix}' non pris en charge", fix="utilisez .csv ou .xlsx"
            )
    path = act.register_path(register or perimeters)
    conv = _convention_or_none(perimeters or path.parent)
    parcels = None
    if cadastre is not None:
        if conv is not None:
            parcels = load_parcels(conv, cadastre, None, False)
        else:
            from geo.sources.cadastre import read_parcels

            parcels = read_parcels(cadastre)
    reg = act.read_register(path, convention=conv, parcels=parcels, strict=False)
    if reg.report.problems:
        click.echo(str(reg.report), err=True)
    if not reg.report.ok:
        click.echo(
            "Erreur : le registre contient des erreurs (liste ci-dessus) ; corrigez-les et relancez.",
            err=True,
        )
        sys.exit(EXIT_BAD_INPUT)
    day = parse_date(when)
    click.echo(f"Registre : {path} — {len(reg.actions)} action(s), {len(reg.axes)} axe(s)")
    if reg.source:
        click.echo(f"Source : {reg.source}")
    if conv is None:
        click.echo("Pas de convention.toml à côté du registre : secteurs et parcelles non vérifiés.")
    perims = _perimeters_or_none(conv, day)
    tables = act.dashboard(reg, perimeters=perims, parcels=parcels)
    click.echo("\nActions par axe et statut :")
    click.echo(_table(tables["axes_statuts"].drop(columns="libelle")))
    click.echo("\nBudgets par financeur (€) :")
    fin = tables["financeurs"]
    if not any(a.financements or a.budget is not None for a in reg.actions):
        click.echo("  aucun budget ni financement saisi")
    else:
        click.echo(_table(fin.astype(object).fillna("")))
    click.echo("\nActions par secteur :")
    if tables["secteurs"].empty:
        click.echo("  aucune action rattachée à un secteur")
    else:
        click.echo(_table(tables["secteurs"]))
    lost = tables["non_localisees"]
    click.echo(f"\nActions non localisées : {len(lost)} sur {len(reg.actions)}")
    for r in lost.itertuples():
        click.echo(f"  {r.id:8} axe {r.axe:3} {r.statut:13} {r.titre}")
    if output:
        source = f"registre {path.name}" + (f" — {reg.source}" if reg.source else "")
        act.write_dashboard(tables, output, force=force, source=source)
        click.echo(f"\nTableau de bord écrit : {output}")


# --- ort friches -----------------------------------------------------------------------------


@click.command("friches", cls=Command)
@perimeters_option(required=False)
@click.option(
    "--file",
    "friches_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="GeoJSON Cartofriches ou CSV de friches au standard CNIG (obligatoire).",
)
@click.option("--commune", "communes", multiple=True, help="Code(s) INSEE (défaut : ceux de la convention).")
@cadastre_option
@click.option(
    "--footprints", is_flag=True, help="Construire les emprises à partir des parcelles (charge le cadastre)."
)
@date_option
@_output_option
@force_option
@fix_option
def friches(perimeters, friches_file, communes, cadastre, footprints, when, output, force, fix):
    """Friches (Cartofriches, CNIG) des communes, situées par rapport aux secteurs.

    \b
    ort friches --perimeters perimeters/libercourt --commune 62907
    ort friches --file friches.csv --perimeters perimeters/demo --cadastre data/demo -o friches.gpkg
    """
    from geo.columns import FRICHES
    from geo.io import check_writable, write_table
    from geo.places import friches as fr

    if output:
        check_writable(output, force=force)
    conv = _convention_or_none(perimeters)
    if perimeters is not None and conv is None:
        raise InputError(
            "pas de convention.toml dans ce dossier",
            source=str(perimeters),
            fix="donnez un dossier perimeters/<slug> complet, ou omettez --perimeters",
        )
    if friches_file is None:
        raise click.UsageError("donnez --file cartofriches.geojson (ou un CSV de friches au standard CNIG)")
    codes = list(communes) or (list(conv.communes) if conv else None)
    layer = fr.read_friches(friches_file, communes=codes, metric_crs=conv.metric_crs if conv else None)
    report = layer.attrs["report"]
    if not report.ok:  # e.g. a site_id used twice: the sites could not be told apart in the output
        click.echo(str(report), err=True)
        click.echo(
            "Erreur : le fichier de friches contient des erreurs (liste ci-dessus) ; "
            "corrigez-les et relancez.",
            err=True,
        )
        sys.exit(EXIT_BAD_INPUT)
    where = f"commune(s) {', '.join(codes)}" if codes else "toutes communes"
    click.echo(f"{len(layer)} friche(s) — {where}")
    if conv is not None and (cadastre is not None or footprints or conv.cadastre_dir is not None):
        parcels = load_parcels(conv, cadastre, None, fix)
        layer = fr.friche_footprints(layer, parcels, report=report)
    perims = _perimeters_or_none(conv, parse_date(when))
    if perims is not None:
        located = fr.locate_friches(layer, perims)
        summary = fr.summarise_friches(located)
        click.echo("\nFriches par périmètre et statut (surface déclarée par la source) :")
        click.echo(_table(summary.round({"surface_m2": 0})))
        hits = located[located["status"].isin(["inside", "straddling"])]
        sectors = hits.groupby("site_id")["perimeter_id"].agg(lambda s: " | ".join(s))
        layer = layer.assign(perimetres=layer["site_id"].map(sectors))
    else:
        counts = layer.groupby("site_statut", dropna=False).agg(
            nombre=("site_id", "count"), surface_m2=("surface_m2", "sum")
        )
        click.echo(_table(counts.round({"surface_m2": 0}).reset_index()))
    click.echo("\nSites :")
    show = layer[
        ["site_id", "site_statut", "surface_m2", "n_parcelles", "geometry_source", "site_nom"]
    ].round({"surface_m2": 0})
    click.echo(_table(show.head(50).assign(site_nom=show["site_nom"].str.slice(0, 50))))
    if len(layer) > 50:
        click.echo(f"  … {len(layer) - 50} autre(s) : -o fichier.csv pour la liste complète")
    if report.problems:
        click.echo(f"\n{len(report.problems)} remarque(s) sur le fichier :", err=True)
        _echo_problems(report)
    if output:
        write_table(
            fr.friches_for_export(layer),
            output,
            force=force,
            layout=FRICHES,
            source=f"{friches_file.name}" + (f" ; convention {conv.nom}" if conv is not None else ""),
        )
        click.echo(f"\nÉcrit : {output}")


# --- ort logements ---------------------------------------------------------------------------


@click.command("logements", cls=Command)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@perimeters_option(required=False)
@click.option(
    "--adresses",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Fichier BAN adresses-{dep}.csv.gz ou CSV BAL pour localiser les sites par leur adresse.",
)
@click.option(
    "--communes-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Contours des communes (GeoJSON avec code_insee/code) pour signaler les points hors convention.",
)
@click.option(
    "--xy-crs", default=None, help="CRS des colonnes x/y (défaut : Lambert-93 / celui du territoire)."
)
@click.option("--sheet", default=None, help="Nom de la feuille XLSX (défaut : la première).")
@cadastre_option
@date_option
@_output_option
@force_option
def logements(file, perimeters, adresses, communes_file, xy_crs, sheet, cadastre, when, output, force):
    """Sites de logement social : les localiser et compter sites et logements par secteur et bailleur.

    \b
    ort logements patrimoine.xlsx --perimeters perimeters/demo --cadastre data/demo
    ort logements rpls.csv --adresses adresses-62.csv.gz --perimeters perimeters/libercourt -o sites.gpkg
    """

    from geo.columns import LOGEMENTS
    from geo.io import check_writable, write_table
    from geo.places import housing as hs
    from geo.projection import metric_crs_for
    from geo.sources.addresses import read_addresses

    if output:
        check_writable(output, force=force)
    conv = _convention_or_none(perimeters)
    if perimeters is not None and conv is None:
        raise InputError(
            "pas de convention.toml dans ce dossier",
            source=str(perimeters),
            fix="donnez un dossier perimeters/<slug> complet, ou omettez --perimeters",
        )
    sites = hs.read_housing(file, sheet=sheet)
    if sites.empty:  # a header and nothing under it: "0 logement" with exit 0 would mislead
        raise InputError(
            "aucune ligne de données sous l'en-tête : aucun site à situer",
            source=str(file),
            fix="ajoutez une ligne par programme ou bâtiment sous la ligne d'en-tête",
        )
    file_codes = sorted({c for c in sites["code_insee"] if isinstance(c, str)})
    communes = list(conv.communes) if conv else file_codes
    metric = conv.metric_crs if conv else metric_crs_for(file_codes)
    parcels = None
    has_ids = any(len(p) for p in sites["parcelles"])
    if cadastre is not None or (conv is not None and (conv.cadastre_dir is not None or has_ids)):
        if conv is not None:
            parcels = load_parcels(conv, cadastre, None, False)
        else:
            from geo.sources.cadastre import read_parcels

            parcels = read_parcels(cadastre, metric_crs=metric)
    addresses = read_addresses(adresses, communes=communes or None) if adresses else None
    shapes = _read_commune_shapes(communes_file) if communes_file else None
    located = hs.locate_sites(
        sites,
        metric_crs=metric,
        parcels=parcels,
        addresses=addresses,
        communes=communes or None,
        commune_shapes=shapes,
        xy_crs=xy_crs,
    )
    s = located.sites
    n_log = int(s["logements"].fillna(0).sum())
    click.echo(
        f"{len(s)} site(s), {n_log} logement(s) connus — {len(s) - len(located.unlocated())} localisé(s)"
    )
    click.echo(
        _table(
            s.groupby("localisation", dropna=False)
            .size()
            .rename("sites")
            .reset_index()
            .fillna("non localisé")
        )
    )
    table = s
    if conv is not None:
        click.echo("")
    perims = _perimeters_or_none(conv, parse_date(when))
    if perims is not None:
        in_p = hs.sites_in_perimeters(located, perims)
        click.echo("Sites et logements par périmètre et bailleur :")
        click.echo(_table(hs.summarise_housing(in_p)))
        hits = in_p[in_p["status"].isin(["inside", "straddling"])]
        table = s.assign(perimetres=s["site_id"].map(hits.groupby("site_id")["perimeter_id"].agg(" | ".join)))
    lost = located.unlocated()
    if len(lost):
        click.echo(f"\nSites non localisés : {len(lost)}")
        for r in lost.itertuples():
            click.echo(f"  {r.site_id}: {r.bailleur or '?'} — {r.programme or '?'} : {r.motif}")
    outside = located.outside()
    if len(outside):
        click.echo(f"\nSites hors des communes de la convention : {len(outside)}")
        for r in outside.itertuples():
            click.echo(f"  {r.site_id}: {r.bailleur or '?'} — {r.programme or '?'} : {r.alerte}")
    if output:
        if output.suffix.lower() in (".csv", ".xlsx"):
            pts = table.geometry.representative_point().to_crs("EPSG:4326")
            table = table.assign(lon=pts.x.round(7), lat=pts.y.round(7))
        write_table(
            table,
            output,
            force=force,
            layout=LOGEMENTS,
            source=f"{file.name}" + (f" ; convention {conv.nom}" if conv is not None else ""),
        )
        click.echo(f"\nÉcrit : {output}")


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


COMMANDS = [actions, friches, logements]
