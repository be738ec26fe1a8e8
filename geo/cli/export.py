"""``ort export``: a convention's perimeters for another tool (``--zlv``: Zéro Logement Vacant)."""

from __future__ import annotations

from pathlib import Path

import click

from geo.cli.options import Command, date_option, force_option, parse_date, perimeters_option
from geo.errors import InputError


@click.command("export", cls=Command)
@perimeters_option()
@date_option
@click.option(
    "--zlv",
    is_flag=True,
    help="Shapefile zippé pour Zéro Logement Vacant (champs type et nom, WGS84) : les périmètres "
    "en vigueur à --date, à importer dans ZLV.",
)
@click.option(
    "--output",
    "-o",
    "zip_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Fichier .zip à écrire (défaut : maps/perimetres-zlv-<convention>-<date>.zip).",
)
@force_option
def export(perimeters, when, zlv, zip_path, force):
    """Exporter les périmètres d'une convention à une date pour un autre outil.

    \b
    Exemple :
    ort export --zlv --perimeters demo --date 2024-09-01 -o maps/perimetres-zlv.zip
    """
    from geo import embedded
    from geo.export import write_zlv_zip, zlv_perimeters
    from geo.perimeters import read_convention

    if not zlv:
        raise InputError("choisissez le format de l'export", fix="ajoutez --zlv (Zéro Logement Vacant)")
    conv = read_convention(perimeters)
    day = parse_date(when)
    result = zlv_perimeters(conv, day)
    path = zip_path or embedded.DEFAULT_OUTPUT_DIR / f"perimetres-zlv-{conv.slug}-{day.isoformat()}.zip"
    write_zlv_zip(result, path, force=force)
    click.echo(result.describe())
    click.echo(f"Écrit : {path} (shapefile zippé à importer dans Zéro Logement Vacant)")


COMMANDS = [export]
