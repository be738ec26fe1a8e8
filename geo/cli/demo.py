"""``ort demo``: the main job on the embedded fictional commune; ``ort carnets``: the notebooks.

``ort demo --fichiers DIR`` and ``ort carnets --copier DIR`` copy shipped files out where a
planner can open them (:mod:`geo.demo.files`).
"""

from __future__ import annotations

from pathlib import Path

import click

from geo.cli.options import (
    Command,
    classify_with_progress,
    load_parcels,
    parse_date,
    provenance,
    with_parcel_columns,
)


@click.command(cls=Command)
@click.option("--force", is_flag=True, help="Réécrire les sorties de la démonstration si elles existent.")
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Dossier des sorties (défaut : maps/ dans le dossier courant).",
)
@click.option("--date", "when", default="2024-09-01", show_default=True, help="Date d'évaluation.")
@click.option(
    "--fichiers",
    "files_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Copier dans ce dossier la convention de démonstration (perimeters/demo/) et ses données "
    "(data/demo/ : cadastre, adresses, logements sociaux), sans lancer le traitement.",
)
def demo(force, output_dir, when, files_dir):
    """Lancer le traitement principal sur la commune fictive de démonstration, fournie avec ort.

    \b
    Exemples :
    ort demo
    ort demo --date 2023-06-01 --output-dir maps/avant-avenant
    ort demo --fichiers .      # perimeters/demo/ et data/demo/ dans le dossier courant
    """
    from geo import embedded

    if files_dir is not None:
        from geo.demo.files import copy_demo_files

        copied = copy_demo_files(files_dir, force=force)
        click.echo(copied.describe())
        click.echo(
            f"Convention de démonstration : {files_dir / 'perimeters' / 'demo'} "
            f"(--perimeters {files_dir / 'perimeters' / 'demo'}, ou simplement --perimeters demo)"
        )
        return
    from geo.check import source_text, summary_table
    from geo.columns import PARCELS
    from geo.demo import commune as demo_mod
    from geo.io import check_folder_files, record_folder_files, write_table
    from geo.perimeters import read_convention

    out = output_dir or embedded.DEFAULT_OUTPUT_DIR
    if force:  # replace only the files a previous `ort demo` wrote (listed in out/_manifest.json)
        check_folder_files(out, ["demo-parcelles.csv", "demo.html"], force=True)
    data_dir = embedded.demo_dir()
    day = parse_date(when)
    conv = read_convention(embedded.convention_dir(demo_mod.DEMO_SLUG))
    perims = conv.perimeters(day, in_force_only=True)
    parcel_layer = load_parcels(conv, data_dir, None, False)
    result = classify_with_progress(parcel_layer, perims, None, None)
    click.echo(provenance(conv, perims, parcel_layer, day))
    click.echo(
        f"{len(parcel_layer)} parcelles classées contre {len(perims)} périmètres "
        "(commune fictive, données embarquées dans ort)"
    )
    click.echo(summary_table(result).to_string(index=False))
    written = []
    table = out / "demo-parcelles.csv"
    if force or not table.exists():
        write_table(
            with_parcel_columns(result, parcel_layer),
            table,
            force=True,
            layout=PARCELS,
            source=source_text(conv, perims, parcel_layer.attrs.get("millesime"), day),
        )
        written.append(table)
    html = out / "demo.html"
    if force or not html.exists():
        from geo.cli.maps import write_map

        housing = data_dir / f"logements-sociaux-{demo_mod.DEMO_INSEE}.csv"
        click.echo("\nCarte interactive :")
        write_map(
            conv,
            perims,
            parcel_layer,
            result,
            day,
            html,
            housing_path=housing if housing.exists() else None,
            force=True,
        )
        written.append(html)
    if written:
        record_folder_files(out, [p.name for p in written], command="demo")
    for path in written:
        click.echo(f"Écrit : {path}")
    kept = [p for p in (table, html) if p.exists() and p not in written]
    for path in kept:
        click.echo(f"Conservé : {path} (existe déjà ; --force pour le réécrire)")


@click.command("carnets", cls=Command)
@click.option(
    "--copier",
    "dest",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Dossier où copier les carnets (carnets/) et les données qu'ils lisent (perimeters/, data/).",
)
@click.option("--force", is_flag=True, help="Remplacer les fichiers d'une copie précédente.")
def carnets(dest, force):
    """Copier les carnets Jupyter d'ort et les données qu'ils lisent, prêts à ouvrir.

    \b
    Exemple :
    ort carnets --copier mes-carnets   # puis : jupyter lab mes-carnets/carnets
    """
    from geo.demo.files import copy_notebooks

    copied = copy_notebooks(dest, force=force)
    click.echo(copied.describe())
    click.echo(f"Ouvrez-les avec : jupyter lab {dest / 'carnets'}")


COMMANDS = [demo, carnets]
