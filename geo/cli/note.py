"""``ort note``: the one-page "note de renseignement ORT" of a parcel or an address (PDF, PNG).

Reads the convention, the cadastre, the national lists and the rules, answers for each parcel
(or address put on its parcel) and writes one note each, by default ``maps/note-{idu}.pdf``
under the current folder. Never overwrites a note without ``--force``.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path

import click

from geo.cli.eligibility import _lists_options, _load
from geo.cli.options import (
    EXIT_BAD_INPUT,
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


@click.command("note", cls=Command)
@click.argument("entries", nargs=-1)
@perimeters_option()
@date_option
@click.option(
    "--file",
    "rows_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV/XLSX : une note par ligne (colonne idu, ou adresse).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Fichier PDF de la note (une seule parcelle) ; défaut : maps/note-<idu>.pdf.",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Dossier des notes (défaut : maps/ sous le dossier courant).",
)
@click.option("--png", is_flag=True, help="Écrire aussi chaque page en PNG à côté du PDF.")
@addresses_option
@_lists_options
@cadastre_option
@millesime_option
@force_option
@fix_option
def note(
    entries,
    perimeters,
    when,
    rows_file,
    output,
    output_dir,
    png,
    address_file,
    lists_dir,
    rules_path,
    denormandie_end,
    cadastre,
    millesime,
    force,
    fix,
):
    """Note de renseignement ORT d'une parcelle ou d'une adresse : PDF d'une page (et PNG).

    La parcelle, un extrait de plan, les périmètres en vigueur avec la part de la parcelle, la
    convention et la version en vigueur, chaque dispositif avec son verdict, sa référence et ses
    réserves, les millésimes des données, la date et la mention de non-valeur juridique.

    \b
    ort note "AB 12" --perimeters demo --date 2024-09-01
    ort note "12 rue Jean Jaurès, 62820 Libercourt" --perimeters libercourt --png
    ort note --file demandes.csv --perimeters perimeters/demo --output-dir maps/notes
    """
    from geo import app
    from geo.app.load import read_rows
    from geo.app.note import load_drawing
    from geo.io import check_writable

    texts = list(entries) + (read_rows(rows_file) if rows_file else [])
    if not texts:
        raise click.UsageError("donnez un identifiant de parcelle, une adresse ou --file demandes.csv")
    if output is not None and len(texts) > 1:
        raise click.UsageError("--output ne vaut que pour une seule note : utilisez --output-dir")
    if output is not None:
        check_writable(output, force=force)
    day = parse_date(when)
    started = time.perf_counter()
    # The start (libraries imported, territory read) runs without the cyclic garbage collector,
    # whose passes over every object just made cost a fresh `ort note` a sixth of its time; what
    # it made lives as long as the process: frozen (never traversed again, not even by the
    # collection at exit, another sixth), the collector then runs for the notes and frees their
    # figures. Left frozen: the command is the process's last work (called in-process, as by
    # tests, the start's own cycles wait for the end of that process).
    collecting = gc.isenabled()
    gc.disable()
    try:
        territory = app.open_territory(  # a note checks no convention: the communes layer is not read
            perimeters, cadastre=cadastre, millesime=millesime, fix=fix, with_communes=False
        )
        lists, rules = _load(lists_dir, rules_path, denormandie_end)
        load_drawing()
        gc.freeze()
        if collecting:
            gc.enable()
        done = app.write_notes(
            texts, territoire=territory, date=day, output=output, output_dir=output_dir or Path("maps"),
            png=png, address_file=address_file, lists=lists, rules=rules, force=force,
        )  # fmt: skip
    finally:
        if collecting:
            gc.enable()
    _print_notes(done, started)
    if done.rejetes:
        click.echo(f"{len(done.rejetes)} entrée(s) sans note :", err=True)
        for r in done.rejetes:
            click.echo(f"  {r.entree}: {r.erreur}", err=True)
        if not done.notes:
            raise SystemExit(EXIT_BAD_INPUT)


def _print_notes(done, started: float) -> None:
    """Warnings, the addresses located, each note written, the time taken."""
    for warning in done.avertissements:
        click.echo(f"Avertissement : {warning}", err=True)
    for located in done.located:
        click.echo(located.describe())
    for n in done.notes:
        pages = f"{n.pages} page{'s' if n.pages > 1 else ''}"
        click.echo(f"Note écrite : {', '.join(map(str, n.fichiers))} ({pages}, {n.secondes:.1f} s)")
    written = [f for n in done.notes for f in n.fichiers]
    if written:
        click.echo(f"{len(written)} fichier(s) en {time.perf_counter() - started:.1f} s")


COMMANDS = [note]
