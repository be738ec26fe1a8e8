"""``ort map`` and ``ort annex``: the interactive offline map and the printed annex of a convention.

Registered by :mod:`geo.cli` (``COMMANDS``). Both refuse to overwrite an output without
``--force`` and check that before any long computation; the work is :func:`geo.app.write_map`
and :func:`geo.app.write_annex`.
"""

from __future__ import annotations

from pathlib import Path

import click

from geo.cli.options import (
    Command,
    addresses_option,
    cadastre_option,
    date_option,
    fix_option,
    force_option,
    millesime_option,
    parse_date,
    perimeters_option,
)

_FOND_HELP = (
    "Fond de carte : plan-ign (Plan IGN), ortho-ign (photographies aériennes IGN), osm "
    "(OpenStreetMap), ou un modèle d'URL https://…/{z}/{x}/{y}.png"
)


@click.command("map", cls=Command)
@perimeters_option()
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Fichier HTML, ex. maps/<slug>.html (un seul fichier autonome, sans besoin de réseau).",
)
@date_option
@cadastre_option
@millesime_option
@click.option(
    "--tiles",
    "--fond",
    "tiles",
    default=None,
    help=_FOND_HELP + " (la page charge alors les tuiles depuis le réseau et signale leur absence ; "
    "défaut : pas de fond, le cadastre et les repères suffisent hors ligne).",
)
@click.option(
    "--far-parcels",
    type=click.Choice(["light", "drop", "keep"]),
    default="light",
    show_default=True,
    help="Parcelles à plus de --far-m de tout périmètre : dessinées en plus clair (light), "
    "omises (drop) ou gardées telles quelles (keep).",
)
@click.option(
    "--far-m", type=float, default=200.0, show_default=True, help="Distance pour --far-parcels (m)."
)
@click.option(
    "--friches",
    "friches_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="GeoJSON Cartofriches ou CSV de friches au standard CNIG à afficher.",
)
@click.option(
    "--logements",
    "housing_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Liste de logements sociaux (CSV/XLSX) à afficher, localisés par coordonnées ou identifiants "
    "de parcelles.",
)
@click.option(
    "--eligibility",
    "with_eligibility",
    is_flag=True,
    help="Ajouter les couches d'éligibilité (OPAH-RU, VIR, DIIF…) des parcelles des périmètres.",
)
@addresses_option
@force_option
@fix_option
def map_cmd(
    perimeters,
    output,
    when,
    cadastre,
    millesime,
    tiles,
    far_parcels,
    far_m,
    friches_path,
    housing_path,
    with_eligibility,
    address_file,
    force,
    fix,
):
    """Carte interactive d'une convention, en un seul fichier HTML utilisable hors ligne.

    La recherche prend les identifiants de parcelles sous toutes leurs formes et, avec
    --adresses, les adresses de la commune (embarquées : la recherche marche hors ligne) ; la
    fenêtre d'une parcelle donne son statut par secteur et chaque dispositif avec sa référence.

    \b
    ort map --perimeters perimeters/demo -o maps/demo.html
    ort map --perimeters libercourt -o maps/libercourt.html --adresses adresses-62.csv.gz
    ort map --perimeters perimeters/demo -o maps/demo.html --date 2024-09-01 --force
    """
    from geo import app
    from geo.io import check_writable

    check_writable(output, force=force)
    day = parse_date(when)
    territory = app.open_territory(perimeters, cadastre=cadastre, millesime=millesime, fix=fix, date=day)
    carte = app.write_map(
        output, territoire=territory, date=day, tiles=tiles, far_parcels=far_parcels, far_m=far_m,
        friches_path=friches_path, housing_path=housing_path, with_eligibility=with_eligibility,
        address_file=address_file, force=force,
    )  # fmt: skip
    click.echo(carte.provenance)
    for line in carte.resume:
        click.echo(line)


def write_map(conv, perims, parcels, result, day, output, *, cadastre=None, force=False, **options) -> Path:
    """``ort demo``'s map: :func:`geo.app.write_map` on parcels already loaded and classified,
    its summary printed."""
    from geo import app
    from geo.app.load import load_communes

    territory = app.Territoire(conv, parcels, cadastre, load_communes(conv, cadastre))
    carte = app.write_map(
        output,
        territoire=territory,
        date=day,
        perimeters=perims,
        classification=result,
        force=force,
        **options,
    )
    for line in carte.resume:
        click.echo(line)
    return carte.chemin


@click.command("annex", cls=Command)
@perimeters_option()
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Dossier de l'annexe, ex. maps/annex/.",
)
@date_option
@cadastre_option
@millesime_option
@click.option(
    "--format",
    "paper",
    type=click.Choice(["A4", "A3"]),
    default="A4",
    show_default=True,
    help="Format du papier.",
)
@click.option(
    "--orientation",
    type=click.Choice(["portrait", "landscape"]),
    default="landscape",
    show_default=True,
    help="Orientation des pages : portrait ou paysage (landscape).",
)
@click.option(
    "--parcel",
    default=None,
    help="Ajouter une page centrée sur cette parcelle (IDU de 14 caractères ou forme courte).",
)
@click.option(
    "--fond",
    default=None,
    help=_FOND_HELP
    + " ; tuiles téléchargées une fois dans le cache (hors ligne : annexe sans fond, signalé).",
)
@click.option(
    "--numero", "annex_number", default=None, help="Numéro de l'annexe, imprimé sur chaque page (ex. 2)."
)
@click.option(
    "--adresses",
    "addresses_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Fichier d'adresses BAN ou BAL (CSV) : noms des voies placés le long de leurs adresses.",
)
@force_option
@fix_option
def annex(
    perimeters, output, when, cadastre, millesime, paper, orientation, parcel, fond, annex_number,
    addresses_path, force, fix,
):  # fmt: skip
    """Annexe imprimable d'une convention : cartes (PNG 300 dpi + PDF) et listes de parcelles (CSV + XLSX).

    \b
    ort annex --perimeters perimeters/demo -o maps/annex/
    ort annex --perimeters perimeters/demo -o maps/annex/ --format A3 --parcel 62999000AB0012
    """
    from geo import app
    from geo.app.maps import check_annex_output
    from geo.perimeters import read_convention

    day = parse_date(when)
    conv = read_convention(perimeters)
    check_annex_output(conv, output, date=day, parcel=parcel, background=fond, force=force)  # before the work
    territory = app.open_territory(conv, cadastre=cadastre, millesime=millesime, fix=fix)
    done = app.write_annex(
        output, territoire=territory, date=day, paper=paper, orientation=orientation, parcel=parcel,
        background=fond, annex_number=annex_number, addresses_path=addresses_path, force=force,
    )  # fmt: skip
    click.echo(done.provenance)
    for notice in done.avertissements:
        click.echo(f"Attention : {notice}")
    click.echo(
        f"Annexe : {done.pages} page(s) {paper} {orientation}, {len(done.fichiers)} fichier(s) dans {output}"
    )
    for path in done.fichiers:
        click.echo(f"  {path}")


COMMANDS = [map_cmd, annex]
