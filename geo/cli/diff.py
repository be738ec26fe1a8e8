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
    load_parcels,
    perimeters_option,
)
from geo.errors import InputError


def _versions(conv, before: str | None, after: str | None) -> tuple[str, str]:
    ids = [v.id for v in conv.versions]
    if len(ids) < 2 and not (before and after):
        raise InputError(
            f"la convention {conv.slug} n'a qu'une version de ses périmètres ({', '.join(ids) or 'aucune'})",
            fix="ajoutez la version de l'avenant dans convention.toml ([[versions]])",
        )
    after = after or ids[-1]
    conv.version(after)  # unknown id → one French line with the known ones
    if before is None:
        k = ids.index(after)
        if k == 0:
            raise InputError(
                f"--apres {after} est la première version : rien avant elle", fix="donnez --avant"
            )
        before = ids[k - 1]
    conv.version(before)
    if before == after:
        raise InputError(
            f"--avant et --apres désignent la même version ({after})", fix="choisissez deux versions"
        )
    return before, after


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
    from geo import diff as diff_mod
    from geo import fmt
    from geo.io import check_writable, write_table
    from geo.perimeters import read_convention

    for path in outputs:
        if path.suffix.lower() not in (".csv", ".xlsx"):
            raise InputError(f"-o {path} : format non pris en charge", fix="donnez un fichier .csv ou .xlsx")
        check_writable(path, force=force)
    if carte is not None:
        check_writable(carte, force=force)
    conv = read_convention(perimeters)
    before, after = _versions(conv, before, after)
    old = conv.perimeters(version=before)
    new = conv.perimeters(version=after)
    if annex_dir is not None:
        from geo.maps import annex as annex_mod

        for path in annex_mod.diff_annex_files(annex_dir):
            check_writable(path, force=force)
    parcels = load_parcels(conv, cadastre, None, fix)
    changes = diff_mod.perimeter_diff(parcels, old, new, min_change=min_change / 100)
    va, vb = conv.version(before), conv.version(after)
    click.echo(
        f"{conv.nom} : « {va.libelle} » ({fmt.date_fr(va.date_effet)}) → "
        f"« {vb.libelle} » ({fmt.date_fr(vb.date_effet)})"
    )
    summary = diff_mod.diff_summary(changes)
    if summary.empty:
        click.echo("Aucune parcelle n'entre, ne sort ni ne change de part.")
    for row in summary.itertuples(index=False):
        click.echo(
            f"  {row.perimetre_nom} : {row.entrent} entre(nt), {row.sortent} sort(ent), "
            f"{row.part_modifiee} part(s) modifiée(s)"
        )
    table = diff_mod.diff_table(changes, parcels)
    source = f"{conv.nom} ; {va.libelle} → {vb.libelle}"
    for path in outputs:
        write_table(table, path, force=force, layout=diff_mod.DIFF, title=diff_mod.DIFF.title, source=source)
        click.echo(f"Tableau écrit : {path}")
    if carte is not None:
        from geo.maps import page as maps

        m = maps.convention_map(
            new, parcels=parcels, title=conv.nom, fictif=conv.fictif, diff=changes, diff_before=old
        )
        path = maps.save_offline(m, carte, force=force)
        click.echo(f"Carte écrite : {path} ({fmt.number(path.stat().st_size / 1e6, 1)} Mo)")
    if annex_dir is not None:
        from geo.maps import annex as annex_mod

        doc = annex_mod.diff_annex(
            changes,
            parcels,
            old,
            new,
            title=conv.nom,
            fictif=conv.fictif,
            annex_number=annex_number,
            reference=f"Convention « {conv.nom} » signée le {fmt.date_fr(conv.date_signature)} — "
            f"avenant « {vb.libelle} » du {fmt.date_fr(vb.date_effet)}",
        )
        for path in annex_mod.write_annex(doc, annex_dir, force=force):
            click.echo(f"Annexe écrite : {path}")


COMMANDS = [diff]
