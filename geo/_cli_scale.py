"""``ort classify``: a whole département or France, from files, on Dask or in PostGIS."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from geo import settings
from geo.cli import EXIT_BAD_INPUT, _date_option, _fix_option, _force_option, _parse_date, _tolerance_options
from geo.errors import InputError, ValidationFailed, ValidationReport


def _read_perimeters(folder: Path | None, file: Path | None, when: str | None):
    """Perimeters in force (a convention folder) or all of a file; with their provenance."""
    from geo import projection
    from geo.perimeters import read_convention, read_perimeter_file

    if folder is not None:
        conv = read_convention(folder)
        day = _parse_date(when)
        perims = conv.perimeters(day, in_force_only=True)
        a = perims.attrs
        fict = " — COMMUNE FICTIVE (démonstration)" if conv.fictif else ""
        text = (
            f"Convention : {conv.nom}{fict} ; périmètres : version « {a.get('version_libelle')} » "
            f"en vigueur depuis le {a.get('version_date')}, évalués au {day.isoformat()}"
        )
        return perims, {"perimetres": str(folder), "date": day.isoformat(), **a}, text
    report = ValidationReport(str(file))
    perims = read_perimeter_file(file, metric_crs=projection.LAMBERT93, report=report)
    if not report.ok:
        raise ValidationFailed(report)
    return perims, {"perimetres": str(file)}, f"Périmètres : {file} ({len(perims)})"


@click.command("classify")
@click.argument("source", metavar="INPUT")
@click.option(
    "--perimeters",
    "-p",
    "perimeters",
    type=click.Path(file_okay=False, path_type=Path),
    help="Convention folder, e.g. perimeters/demo (perimeters in force at --date).",
)
@click.option(
    "--perimeters-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A GeoJSON or GeoPackage of perimeters (id, type, nom), e.g. every ORT of a region.",
)
@click.option(
    "--perimeters-table",
    default=None,
    help="With --db: a PostGIS table of perimeters (perimeter_id, type, nom).",
)
@click.option(
    "--output",
    "-o",
    required=True,
    help="Output folder (a Parquet dataset with _manifest.json), or with --db the table to create.",
)
@_date_option
@click.option(
    "--partition-by",
    type=click.Choice(["departement", "commune", "rows"]),
    default="departement",
    show_default=True,
    help="Unit of the output and of the error reports.",
)
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True)
@click.option(
    "--scheduler", default=None, help="Dask scheduler address, e.g. tcp://host:8786 (default: a local one)."
)
@click.option("--workers", type=int, default=None, help="Worker processes (default: one per core).")
@click.option(
    "--chunk-rows", type=int, default=200_000, show_default=True, help="Rows per batch of a large file."
)
@click.option(
    "--db", default=None, help="postgresql://user@host:port/base: INPUT is then a table of parcels."
)
@_tolerance_options
@_fix_option
@_force_option
def classify(
    source,
    perimeters,
    perimeters_file,
    perimeters_table,
    output,
    when,
    partition_by,
    engine,
    scheduler,
    workers,
    chunk_rows,
    db,
    tolerance_m2,
    tolerance_pct,
    fix,
    force,
):
    """Classify every parcel of a large input: a département, a region, France.

    Writes only the inside and straddling pairs (a parcel absent from the output is outside
    every perimeter). A partition with broken geometries is reported and left out; the others
    are done, and the exit code is 2.

    \b
    ort classify data/62/ --perimeters perimeters/libercourt -o verdicts-62
    ort classify france.parquet --perimeters-file ort-france.gpkg -o verdicts --engine dask
    ort classify cadastre.parcelles --db postgresql://sig@localhost/sig \\
        --perimeters-table ort.perimetres -o ort.verdicts
    """
    given = [x for x in (perimeters, perimeters_file, perimeters_table) if x]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --perimeters, --perimeters-file or --perimeters-table")
    if perimeters_table and not db:
        raise click.UsageError("--perimeters-table reads from a database: give --db postgresql://…")
    if scheduler and engine != "dask":
        raise click.UsageError("--scheduler goes with --engine dask")
    if db:
        _classify_db(
            source,
            db,
            perimeters,
            perimeters_file,
            perimeters_table,
            output,
            when,
            tolerance_m2,
            tolerance_pct,
            chunk_rows,
            force,
        )
        return
    from geo import scale
    from geo.io import check_writable

    check_writable(output, force=force)
    perims, provenance, text = _read_perimeters(perimeters, perimeters_file, when)
    click.echo(text)
    done = {"parcels": 0}

    def progress(res) -> None:
        done["parcels"] += res.parcels
        if settings.progress:
            state = "ÉCHEC" if res.error else f"{res.parcels} parcelles"
            click.echo(f"  {res.location} : {state}", err=True)

    report = scale.classify_dataset(
        source,
        perims,
        output,
        partition_by=partition_by,
        engine=engine,
        workers=workers,
        scheduler=scheduler,
        tolerance_m2=tolerance_m2,
        tolerance_pct=tolerance_pct,
        fix=fix,
        force=force,
        chunk_rows=chunk_rows,
        provenance=provenance,
        progress=progress,
    )
    rate = report.parcels / report.seconds if report.seconds else 0
    click.echo(
        f"{report.parcels} parcelle(s) classée(s) en {report.seconds:.1f} s "
        f"({f'{rate:,.0f}'.replace(',', ' ')} parcelles/s), {len(report.partitions)} partition(s), "
        f"{report.rows} couple(s) inclus ou à cheval"
    )
    for warning in report.warnings:
        click.echo(f"Avertissement : {warning}", err=True)
    for failure in report.failed:
        click.echo(f"Partition en échec ({failure['partition']}) — {failure['error']}", err=True)
    if report.failed:
        click.echo(
            f"Résultat partiel écrit : {output} ({len(report.failed)} partition(s) exclue(s), "
            "voir _manifest.json ; corrigez-les ou relancez avec --fix)",
            err=True,
        )
        sys.exit(EXIT_BAD_INPUT)
    click.echo(f"Résultat écrit : {output}")


def _classify_db(
    source,
    db,
    perimeters,
    perimeters_file,
    perimeters_table,
    output,
    when,
    tolerance_m2,
    tolerance_pct,
    chunk_rows,
    force,
) -> None:
    from geo import postgis

    if perimeters_table:
        perims, text = perimeters_table, f"Périmètres : table {perimeters_table}"
    else:
        perims, _, text = _read_perimeters(perimeters, perimeters_file, when)
    click.echo(text)
    if Path(source).exists():
        raise InputError(
            f"with --db, INPUT is a table name, not the file {source!r}", fix="e.g. cadastre.parcelles"
        )
    run = postgis.classify_db(
        db,
        source,
        perims,
        output,
        tolerance_m2=tolerance_m2,
        tolerance_pct=tolerance_pct,
        chunk_rows=chunk_rows,
        force=force,
    )
    click.echo(
        f"{run.parcels} parcelle(s) classée(s) en {run.seconds:.1f} s ; "
        f"{run.rows} couple(s) inclus ou à cheval "
        f"écrits dans la table {run.table}"
    )


COMMANDS = [classify]
