"""``ort actions``, ``ort friches``, ``ort logements``: the places of a convention.

Registered by :mod:`geo.cli` (``COMMANDS``). Each command reads its inputs, prints a French
summary and, with ``-o``, writes a table (never over an existing file without ``--force``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from geo.cli.options import (
    EXIT_BAD_INPUT,
    Command,
    cadastre_option,
    date_option,
    fix_option,
    force_option,
    perimeters_option,
)

if TYPE_CHECKING:  # pandas is imported where it is used: `ort --help` stays quick
    import pandas as pd

_output_option = click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Fichier de sortie."
)


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
    ort actions --perimeters libercourt
    ort actions --perimeters libercourt -o tableau-de-bord.xlsx
    """
    from geo import app
    from geo.io import check_writable

    if perimeters is None and register is None:
        raise click.UsageError("donnez --perimeters perimeters/<slug> ou --register actions.toml")
    if output:
        check_writable(output, force=force)
    done = app.action_dashboard(
        register=register, perimeters=perimeters, cadastre=cadastre, date=when, output=output, force=force
    )
    if done.problemes:
        click.echo(str(done.report), err=True)
    if not done.ok:
        click.echo(
            "Erreur : le registre contient des erreurs (liste ci-dessus) ; corrigez-les et relancez.",
            err=True,
        )
        sys.exit(EXIT_BAD_INPUT)
    _print_dashboard(done)
    if done.ecrit:
        click.echo(f"\nTableau de bord écrit : {done.ecrit}")


def _print_dashboard(done) -> None:
    """The register's line, the convention's, then the dashboard's tables."""
    reg, tables = done.data["register"], done.data["tables"]
    click.echo(f"Registre : {done.fichier} — {done.lignes} action(s), {done.groupes} axe(s)")
    if done.source:
        click.echo(f"Source : {done.source}")
    if done.convention is None:
        click.echo("Pas de convention.toml à côté du registre : secteurs et parcelles non vérifiés.")
    if done.convention_ligne:
        click.echo(done.convention_ligne)
    click.echo("\nActions par axe et statut :")
    click.echo(_table(tables["axes_statuts"].drop(columns="libelle")))
    click.echo("\nBudgets par financeur (€) :")
    if not any(a.financements or a.budget is not None for a in reg.actions):
        click.echo("  aucun budget ni financement saisi")
    else:
        click.echo(_table(tables["financeurs"].astype(object).fillna("")))
    click.echo("\nActions par secteur :")
    click.echo(
        _table(tables["secteurs"])
        if not tables["secteurs"].empty
        else "  aucune action rattachée à un secteur"
    )
    lost = tables["non_localisees"]
    click.echo(f"\nActions non localisées : {len(lost)} sur {len(reg.actions)}")
    for r in lost.itertuples():
        click.echo(f"  {r.id:8} axe {r.axe:3} {r.statut:13} {r.titre}")


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
    ort friches --file cartofriches-62.geojson --perimeters libercourt --commune 62907
    ort friches --file friches.csv --perimeters perimeters/demo --cadastre data/demo -o friches.gpkg
    """
    from geo import app
    from geo.io import check_writable

    if output:
        check_writable(output, force=force)
    if friches_file is None:
        raise click.UsageError("donnez --file cartofriches.geojson (ou un CSV de friches au standard CNIG)")
    done = app.locate_friches(
        friches_file, perimeters=perimeters, communes=communes, cadastre=cadastre, footprints=footprints,
        date=when, fix=fix, output=output, force=force,
    )  # fmt: skip
    if not done.ok:  # e.g. a site_id used twice: the sites could not be told apart in the output
        click.echo(str(done.report), err=True)
        click.echo(
            "Erreur : le fichier de friches contient des erreurs (liste ci-dessus) ; "
            "corrigez-les et relancez.",
            err=True,
        )
        sys.exit(EXIT_BAD_INPUT)
    _print_friches(done)
    if done.problemes:
        click.echo(f"\n{len(done.problemes)} remarque(s) sur le fichier :", err=True)
        _echo_problems(done.report)
    if done.ecrit:
        click.echo(f"\nÉcrit : {done.ecrit}")


def _print_friches(done) -> None:
    """How many sites, where, per perimeter and status, then the first 50 sites."""
    where = f"commune(s) {', '.join(done.communes)}" if done.communes else "toutes communes"
    click.echo(f"{done.lignes} friche(s) — {where}")
    if done.convention_ligne:
        click.echo(done.convention_ligne)
    layer = done.data["layer"]
    if "summary" in done.data:
        click.echo("\nFriches par périmètre et statut (surface déclarée par la source) :")
        click.echo(_table(done.data["summary"].round({"surface_m2": 0})))
    else:
        click.echo(_table(done.data["counts"].round({"surface_m2": 0}).reset_index()))
    click.echo("\nSites :")
    show = layer[
        ["site_id", "site_statut", "surface_m2", "n_parcelles", "geometry_source", "site_nom"]
    ].round({"surface_m2": 0})
    click.echo(_table(show.head(50).assign(site_nom=show["site_nom"].str.slice(0, 50))))
    if len(layer) > 50:
        click.echo(f"  … {len(layer) - 50} autre(s) : -o fichier.csv pour la liste complète")


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
    ort logements rpls.csv --adresses adresses-62.csv.gz --perimeters libercourt -o sites.gpkg
    """
    from geo import app
    from geo.io import check_writable

    if output:
        check_writable(output, force=force)
    done = app.locate_housing(
        file, perimeters=perimeters, addresses=adresses, communes_file=communes_file, xy_crs=xy_crs,
        sheet=sheet, cadastre=cadastre, date=when, output=output, force=force,
    )  # fmt: skip
    _print_housing(done)


def _print_housing(done) -> None:
    """Sites located and how, per perimeter and landlord, those not located or outside."""
    located = done.data["located"]
    s = located.sites
    click.echo(f"{done.lignes} site(s), {done.logements} logement(s) connus — {done.localises} localisé(s)")
    by_kind = s.groupby("localisation", dropna=False).size().rename("sites").reset_index()
    click.echo(_table(by_kind.fillna("non localisé")))
    if done.convention is not None:
        click.echo("")
    if done.convention_ligne:
        click.echo(done.convention_ligne)
    if "summary" in done.data:
        click.echo("Sites et logements par périmètre et bailleur :")
        click.echo(_table(done.data["summary"]))
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
    if done.ecrit:
        click.echo(f"\nÉcrit : {done.ecrit}")


COMMANDS = [actions, friches, logements]
