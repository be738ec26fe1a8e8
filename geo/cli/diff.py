"""``ort diff``: what an avenant changed between two versions of a convention's perimeters.

Registered by :mod:`geo.cli` (``COMMANDS``). Outputs: the table of parcels that enter, leave
or change share per perimeter (``-o``, CSV and/or XLSX), the map with the changes as a layer
(``--carte``) and the annex page of the avenant (``--annexe``, PDF + PNG).
"""

from __future__ import annotations

from pathlib import Path

import click

from geo.cli.options import (
    Command,
    cadastre_option,
    fix_option,
    force_option,
    perimeters_option,
)


@click.command("diff", cls=Command)
@perimeters_option()
@click.option(
    "--avant", "before", default=None, help="Version de départ (défaut : celle qui précède --apres)."
)
@click.option(
    "--apres", "after", default=None, help="Version d'arrivée, ex. avenant-1 (défaut : la dernière)."
)
@click.option(
    "--output",
    "-o",
    "outputs",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Tableau des changements : .csv ou .xlsx (option répétable).",
)
@click.option(
    "--carte",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Carte HTML hors ligne avec la couche des changements.",
)
@click.option(
    "--annexe",
    "annex_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Dossier où écrire la page d'annexe de l'avenant (PDF + PNG).",
)
@click.option(
    "--numero", "annex_number", default=None, help="Numéro de l'annexe de l'avenant, imprimé sur ses pages."
)
@cadastre_option
@click.option(
    "--min-ecart",
    "min_change",
    type=float,
    default=0.1,
    show_default=True,
    help="Plus petit changement de part incluse signalé, en points de pourcentage.",
)
@force_option
@fix_option
def diff(
    perimeters, before, after, outputs, carte, annex_dir, annex_number, cadastre, min_change, force, fix
):
    """Ce qu'un avenant change : parcelles qui entrent, sortent ou changent de part, par périmètre.

    \b
    ort diff --perimeters demo -o maps/avenant-1.csv
    ort diff --perimeters demo --avant initiale --apres avenant-1 -o maps/avenant-1.xlsx \\
        --carte maps/avenant-1.html --annexe maps/avenant-1/
    """
    from geo import app, fmt
    from geo.app.diff import check_diff_outputs, versions_compared
    from geo.perimeters import read_convention

    check_diff_outputs(outputs, map_path=carte, annex_dir=annex_dir, force=force)  # before the work
    conv = read_convention(perimeters)
    versions_compared(conv, before, after)
    territory = app.open_territory(conv, cadastre=cadastre, fix=fix, with_communes=False)
    done = app.diff_versions(
        territoire=territory, before=before, after=after, tables=outputs, map_path=carte, annex_dir=annex_dir,
        annex_number=annex_number, min_change_pct=min_change, force=force,
    )  # fmt: skip
    click.echo(
        f"{done.convention} : « {done.avant_libelle} » ({fmt.date_fr(done.avant_date_effet)}) → "
        f"« {done.apres_libelle} » ({fmt.date_fr(done.apres_date_effet)})"
    )
    if not done.perimetres:
        click.echo("Aucune parcelle n'entre, ne sort ni ne change de part.")
    for row in done.perimetres:
        click.echo(
            f"  {row.perimetre_nom} : {row.entrent} entre(nt), {row.sortent} sort(ent), "
            f"{row.part_modifiee} part(s) modifiée(s)"
        )
    for path in done.fichiers:
        if path in outputs:
            click.echo(f"Tableau écrit : {path}")
        elif carte is not None and path == carte:
            click.echo(f"Carte écrite : {path} ({fmt.number(path.stat().st_size / 1e6, 1)} Mo)")
        else:
            click.echo(f"Annexe écrite : {path}")


COMMANDS = [diff]
