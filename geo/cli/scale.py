"""``ort classify``: a whole département or France, from files, on Dask or in PostGIS."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from geo import fmt, settings
from geo.cli.options import (
    EXIT_BAD_INPUT,
    Command,
    _convention_folder,
    date_option,
    fix_option,
    force_option,
    parse_date,
    tolerance_options,
)
from geo.errors import InputError, ValidationFailed, ValidationReport


def _read_perimeters(folder: Path | None, file: Path | None, when: str | None, *, layer: bool = False):
    """Perimeters in force (a convention folder) or all of a file; with their provenance.

    With ``layer``, a file's perimeters come as a :class:`geo.perimeter_layer.PerimeterLayer`
    (a plain GeoPackage read without geopandas); else as a GeoDataFrame.
    """
    from geo import projection

    if file is not None and layer:
        from geo.perimeter_layer import read_perimeter_layer

        report = ValidationReport(str(file))
        perims = read_perimeter_layer(file, metric_crs=projection.LAMBERT93, report=report)
        if not report.ok:
            raise ValidationFailed(report)
        return perims, {"perimetres": str(file)}, f"Périmètres : {file} ({len(perims)})"
    from geo.perimeters import read_convention, read_perimeter_file

    if folder is not None:
        conv = read_convention(folder)
        day = parse_date(when)
        perims = conv.perimeters(day, in_force_only=True)
        a = perims.attrs
        fict = " — COMMUNE FICTIVE (démonstration)" if conv.fictif else ""
        text = (
            f"Convention : {conv.nom}{fict} ; périmètres : version « {a.get('version_libelle')} » "
            f"en vigueur depuis le {fmt.date_fr(a.get('version_date'))}, évalués au {fmt.date_fr(day)}"
        )
        return perims, {"perimetres": str(folder), "date": day.isoformat(), **a}, text
    report = ValidationReport(str(file))
    perims = read_perimeter_file(file, metric_crs=projection.LAMBERT93, report=report)
    if not report.ok:
        raise ValidationFailed(report)
    return perims, {"perimetres": str(file)}, f"Périmètres : {file} ({len(perims)})"


@click.command("classify", cls=Command)
@click.argument("source", metavar="SOURCE")
@click.option(
    "--perimeters",
    "-p",
    "perimeters",
    type=click.Path(file_okay=False, path_type=Path),
    callback=_convention_folder,
    help="Dossier de la convention, ex. perimeters/demo (périmètres en vigueur à --date), ou le nom "
    "d'une convention fournie avec ort : demo, libercourt, lens-lievin, haute-correze.",
)
@click.option(
    "--perimeters-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="GeoJSON ou GeoPackage de périmètres (id, type, nom), ex. toutes les ORT d'une région.",
)
@click.option(
    "--perimeters-table",
    default=None,
    help="Avec --db : table PostGIS de périmètres (perimeter_id, type, nom).",
)
@click.option(
    "--output",
    "-o",
    required=True,
    help="Dossier de sortie (jeu de données Parquet avec _manifest.json), ou avec --db la table à créer.",
)
@date_option
@click.option(
    "--partition-by",
    type=click.Choice(["departement", "commune", "rows"]),
    default="departement",
    show_default=True,
    help="Découpage de la sortie et des rapports d'erreurs : departement, commune ou rows (lots de lignes).",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help="Moteur de calcul : local (processus de cette machine) ou dask (grappe Dask).",
)
@click.option(
    "--scheduler",
    default=None,
    help="Adresse de l'ordonnanceur Dask, ex. tcp://host:8786 (défaut : un ordonnanceur local).",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Nombre de fils de calcul, ou de processus avec --engine dask (défaut : un par cœur).",
)
@click.option(
    "--chunk-rows", type=int, default=200_000, show_default=True, help="Lignes par lot pour un gros fichier."
)
@click.option(
    "--db", default=None, help="postgresql://user@host:port/base : SOURCE est alors une table de parcelles."
)
@tolerance_options
@fix_option
@force_option
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
    """Classer toutes les parcelles d'une grande source : un département, une région, la France.

    N'écrit que les couples inclus ou à cheval (une parcelle absente de la sortie est hors de
    tout périmètre). Une partition aux géométries cassées est signalée et écartée ; les autres
    sont traitées, et le code de sortie vaut 2.

    \b
    ort classify data/62/ --perimeters libercourt -o verdicts-62
    ort classify france.parquet --perimeters-file ort-france.gpkg -o verdicts --engine dask
    ort classify cadastre.parcelles --db postgresql://sig@localhost/sig \\
        --perimeters-table ort.perimetres -o ort.verdicts
    """
    given = [x for x in (perimeters, perimeters_file, perimeters_table) if x]
    if len(given) != 1:
        raise click.UsageError("donnez un seul de --perimeters, --perimeters-file ou --perimeters-table")
    if perimeters_table and not db:
        raise click.UsageError("--perimeters-table lit une base de données : donnez --db postgresql://…")
    if scheduler and engine != "dask":
        raise click.UsageError("--scheduler s'utilise avec --engine dask")
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
            fix,
        )
        return
    from geo._pyarrow import defer_pandas

    defer_pandas()  # a GeoParquet file read and written by Arrow needs no pandas
    from geo.io import check_output_folder
    from geo.scale import run as scale

    check_output_folder(output, force=force)
    if engine == "local":
        scale.warm_in_background()  # the compiled code loads while the perimeters are read
    perims, provenance, text = _read_perimeters(perimeters, perimeters_file, when, layer=True)
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
        processes=False,  # threads of this process: nothing to start (see classify_dataset)
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
    invalid = report.invalides
    if invalid["ecartees"] or invalid["reparees"]:
        first = invalid["exemples"][0]
        done = (
            f"{invalid['ecartees']} écartée(s) sans verdict"
            if invalid["ecartees"]
            else f"{invalid['reparees']} réparée(s) (make_valid) et classée(s)"
        )
        listed = Path(output) / scale.INVALID_FILE
        click.echo(
            f"Avertissement : parcelle(s) à la géométrie invalide près d'un périmètre : {done} "
            f"(première : idu={first['idu']}, {first['raison']}) ; liste : {listed}",
            err=True,
        )
    if not report.complete:
        parts = [f"{len(report.failed)} partition(s) exclue(s)"] if report.failed else []
        if invalid["ecartees"]:
            parts.append(f"{invalid['ecartees']} parcelle(s) invalide(s) sans verdict")
        hint = "réparez-les à la source ou relancez avec --fix" if invalid["ecartees"] else "corrigez-les"
        click.echo(
            f"Résultat partiel écrit : {output} ({', '.join(parts)}, voir _manifest.json ; {hint})",
            err=True,
        )
        _leave(EXIT_BAD_INPUT)
    click.echo(f"Résultat écrit : {output}")
    _leave(0)


def _leave(code: int) -> None:
    """End the command: at once in the ``ort`` process itself, else by ``sys.exit``.

    Everything is written, closed and renamed into place; what is left is the interpreter's
    teardown, which frees numba's and LLVM's objects one by one (0.5 s measured, as long as
    classifying a million parcels). The ``ort`` process skips it (``os._exit``, after
    flushing its output) when it started no worker process (``ort classify`` computes in
    threads); a caller's process (``CliRunner``, a notebook) is left alone.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`ort classify … | head`): nothing to show
            pass
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)  # `python -m geo`: geo.__main__
    shell = Path(sys.argv[0]).stem == "ort" or getattr(spec, "name", "") == "geo.__main__"
    # Never with worker processes alive: without the teardown they would outlive the command.
    if shell and not _worker_pools():
        os._exit(code)
    if code:
        sys.exit(code)


def _worker_pools() -> bool:
    """Whether this process started worker processes (a pool of geo.scale.run, multiprocessing)."""
    scale = sys.modules.get("geo.scale.run")
    if getattr(scale, "_POOLS", None):
        return True
    mp = sys.modules.get("multiprocessing")
    return bool(mp is not None and mp.active_children())


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
    fix,
) -> None:
    from geo.scale import postgis

    if perimeters_table:
        perims, text = perimeters_table, f"Périmètres : table {perimeters_table}"
    else:
        perims, _, text = _read_perimeters(perimeters, perimeters_file, when)
    click.echo(text)
    if Path(source).exists():
        raise InputError(
            f"avec --db, SOURCE est un nom de table, pas le fichier {source!r}", fix="ex. cadastre.parcelles"
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
        fix=fix,
    )
    click.echo(
        f"{run.parcels} parcelle(s) classée(s) en {run.seconds:.1f} s ; "
        f"{run.rows} couple(s) inclus ou à cheval "
        f"écrits dans la table {run.table}"
    )
    if run.invalides:
        first = run.invalides[0]
        aside = sum(r["traitement"] == "écartée" for r in run.invalides)
        click.echo(
            f"Avertissement : {len(run.invalides)} parcelle(s) à la géométrie invalide près d'un périmètre, "
            f"{'écartée(s) sans verdict' if aside else 'réparée(s) (make_valid) et classée(s)'} "
            f"(première : idu={first['idu']}, {first['raison']})",
            err=True,
        )
        if aside:
            sys.exit(EXIT_BAD_INPUT)


COMMANDS = [classify]
