"""The ``ort`` command: the parcel check, perimeter validation, listings and the demo.

Errors print as one line (what, where, how to fix) with a non-zero exit code, never a
traceback (``--debug`` shows it); outputs are written atomically and an existing file is only
replaced with ``--force``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import click
import pandas as pd

from geo import settings
from geo.errors import InputError, OrtError, ValidationFailed

EXIT_BAD_INPUT = 2


class _Command(click.Command):
    """A command whose ``--help`` option is described in French, like the rest of its help."""

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        option = super().get_help_option(ctx)
        if option is not None:
            option.help = HELP_OPTION_TEXT
        return option


HELP_OPTION_TEXT = "Afficher cette aide et quitter."


class _Group(click.Group):
    """Turn the project's errors into one clear line and an exit code."""

    command_class = _Command

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        option = super().get_help_option(ctx)
        if option is not None:
            option.help = HELP_OPTION_TEXT
        return option

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ValidationFailed as err:
            for problem in err.report.problems:
                click.echo(str(problem), err=True)
            click.echo(f"Erreur : {err}", err=True)
            ctx.exit(err.exit_code)
        except OrtError as err:
            click.echo(f"Erreur : {err}", err=True)
            ctx.exit(err.exit_code)
        except BrokenPipeError:  # output piped into `head` and the like: stop quietly
            import os

            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep Python from failing at exit
            ctx.exit(0)
        except KeyboardInterrupt:
            click.echo("Interrompu : aucun fichier partiel n'a été laissé.", err=True)
            ctx.exit(130)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as err:  # noqa: BLE001 - last resort: no traceback for users
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(
                f"Erreur interne : {type(err).__name__}: {err} (relancez avec --debug et signalez-la)",
                err=True,
            )
            ctx.exit(3)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ort", prog_name="ort", help="Afficher la version et quitter.")
@click.option("--offline", is_flag=True, help="N'utiliser que le cache de téléchargement, jamais le réseau.")
@click.option("--quiet", "-q", is_flag=True, help="Pas de barres de progression.")
@click.option("--debug", is_flag=True, help="Afficher la trace complète des erreurs (traceback).")
@click.pass_context
def main(ctx: click.Context, offline: bool, quiet: bool, debug: bool) -> None:
    """ort — Opérations de revitalisation de territoire : périmètres, parcelles, éligibilité."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if offline:
        settings.offline = True
    if quiet:
        settings.progress = False


# --- shared options ------------------------------------------------------------------------


def _perimeters_option(required: bool = True):
    return click.option(
        "--perimeters",
        "-p",
        "perimeters",
        required=required,
        type=click.Path(file_okay=False, path_type=Path),
        help="Dossier de la convention, ex. perimeters/demo.",
    )


_date_option = click.option(
    "--date",
    "when",
    default=None,
    help="Date d'évaluation, AAAA-MM-JJ ou JJ/MM/AAAA (défaut : aujourd'hui).",
)
_cadastre_option = click.option(
    "--cadastre",
    type=click.Path(path_type=Path),
    default=None,
    help="Fichier ou dossier du cadastre (Etalab .json/.json.gz, .gpkg, shapefile zippé) ; "
    "défaut : le cadastre_dir de la convention, sinon téléchargement dans le cache.",
)
_millesime_option = click.option(
    "--millesime", default=None, help="Millésime du cadastre à télécharger : latest ou AAAA-MM-JJ."
)
_force_option = click.option("--force", is_flag=True, help="Remplacer une sortie existante.")
_fix_option = click.option(
    "--fix", is_flag=True, help="Réparer les géométries invalides (make_valid) au chargement."
)


def _tolerance_options(f):
    f = click.option(
        "--tolerance-pct",
        type=float,
        default=None,
        help=f"Part de la parcelle ignorée comme bruit, en % (défaut {settings.tolerance_pct}).",
    )(f)
    return click.option(
        "--tolerance-m2",
        type=float,
        default=None,
        help=f"Surface ignorée comme bruit de numérisation, en m² (défaut {settings.tolerance_m2}).",
    )(f)


def _parse_date(when: str | None) -> dt.date:
    if when is None:
        return dt.date.today()
    import re

    text = when.strip()
    french = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})", text)  # jj/mm/aaaa, as typed in France
    try:
        if french:
            day, month, year = (int(g) for g in french.groups())
            return dt.date(year, month, day)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"--date {when!r} n'est pas une date",
            fix="écrivez-la au format ISO YYYY-MM-DD (2024-06-01) ou JJ/MM/AAAA (01/06/2024)",
        ) from None


def _load_parcels(conv, cadastre: Path | None, millesime: str | None, fix: bool):
    from geo import cadastre as cad

    source = cadastre or conv.cadastre_dir
    if source is not None and source.is_file():
        return cad.read_parcels(source, metric_crs=conv.metric_crs, fix=fix)
    layers = cad.load_cadastre(conv.communes, ("parcelles",), millesime=millesime, source_dir=source, fix=fix)
    return layers["parcelles"].to_crs(conv.metric_crs)


def _provenance(conv, perimeters, parcels, day: dt.date) -> str:
    from geo.check import provenance_text

    return provenance_text(conv, perimeters, parcels.attrs.get("millesime"), day)


def _classify(parcels, perimeters, tolerance_m2, tolerance_pct):
    from geo.classify import classify_parcels

    chunk = 20_000
    if len(parcels) <= chunk or not settings.progress:
        return classify_parcels(parcels, perimeters, tolerance_m2=tolerance_m2, tolerance_pct=tolerance_pct)
    from tqdm import tqdm

    parts = []
    with tqdm(total=len(parcels), unit=" parcelles", desc="Classement", file=sys.stderr) as bar:
        for start in range(0, len(parcels), chunk):
            part = parcels.iloc[start : start + chunk]
            parts.append(
                classify_parcels(part, perimeters, tolerance_m2=tolerance_m2, tolerance_pct=tolerance_pct)
            )
            bar.update(len(part))
    out = pd.concat(parts, ignore_index=True)
    out.attrs.update(parts[0].attrs)
    return out


def _with_parcel_columns(result: pd.DataFrame, parcels) -> pd.DataFrame:
    from geo.check import with_parcel_fields

    return with_parcel_fields(result, parcels)


# --- ort check -------------------------------------------------------------------------------


@main.command()
@click.argument("ids", nargs=-1)
@_perimeters_option()
@_date_option
@click.option(
    "--file",
    "id_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV/XLSX d'identifiants de parcelles (colonne idu, id ou parcelle ; commune facultative).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Fichier de résultat : .csv, .xlsx, .gpkg ou .parquet (une ligne par parcelle et périmètre).",
)
@click.option("--commune", default=None, help="Code INSEE pour les identifiants courts comme 'AB 685'.")
@click.option("--json", "as_json", is_flag=True, help="Afficher en JSON.")
@_cadastre_option
@_millesime_option
@_tolerance_options
@_force_option
@_fix_option
def check(
    ids,
    perimeters,
    when,
    id_file,
    output,
    commune,
    as_json,
    cadastre,
    millesime,
    tolerance_m2,
    tolerance_pct,
    force,
    fix,
):
    """Chaque parcelle est-elle incluse, à cheval ou hors de chaque périmètre en vigueur à une date ?

    \b
    ort check 62999000AB0012 --perimeters perimeters/demo --date 2024-06-01
    ort check --file parcelles.csv --perimeters perimeters/demo -o resultat.csv
    """
    from geo.check import check_parcels, read_id_table
    from geo.io import check_writable, write_table
    from geo.perimeters import read_convention

    if not ids and not id_file:
        raise click.UsageError("donnez des identifiants de parcelles ou --file parcelles.csv")
    if output:
        check_writable(output, force=force)
    day = _parse_date(when)
    conv = read_convention(perimeters)
    conv.version_at(day)  # refuse a date without perimeters before loading the cadastre
    parcel_layer = _load_parcels(conv, cadastre, millesime, fix)
    default = commune or (conv.communes[0] if len(conv.communes) == 1 else None)
    entries = [(t, default) for t in ids] + (read_id_table(id_file) if id_file else [])
    result = check_parcels(
        entries,
        conv,
        parcel_layer,
        when=day,
        commune=commune,
        classify=lambda p, q: _classify(p, q, tolerance_m2, tolerance_pct),
    )
    known, table = result.parcels, result.table
    if id_file and len(known):  # keep the planner's own columns (comments...) beside the verdicts
        from geo.check import input_columns

        own = input_columns(id_file, code_insee=default)
        clash = {c: f"{c} (fichier)" for c in own.columns if c != "idu" and c in table.columns}
        table = table.merge(own.rename(columns=clash), on="idu", how="left")
    if len(known) and output:
        if output.suffix.lower() in (".gpkg", ".parquet", ".geojson"):
            import geopandas as gpd

            geo_table = gpd.GeoDataFrame(
                table.merge(known[["idu", "geometry"]], on="idu"), geometry="geometry", crs=known.crs
            )
            write_table(geo_table, output, force=force)
        else:
            write_table(table, output, force=force)
    if as_json:
        click.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    elif len(known):
        click.echo(result.provenance())
        if id_file or len(known) > 20:
            click.echo(
                f"{len(known)} parcelle(s) classée(s) contre {table['perimeter_id'].nunique()} périmètre(s)"
            )
            click.echo(result.summary().to_string(index=False))
            if output:
                click.echo(f"Résultat écrit : {output}")
        else:
            click.echo(result.describe())
    if result.rejected:
        click.echo(f"{len(result.rejected)} identifiant(s) non reconnu(s) :", err=True)
        for text, message in result.rejected:
            click.echo(f"  {text!s}: {message}", err=True)
        if not id_file or not len(known):
            sys.exit(EXIT_BAD_INPUT)


def _read_id_file(path: Path) -> list[tuple[str, str | None]]:
    from geo.check import read_id_table

    return read_id_table(path)


# --- ort parcels -----------------------------------------------------------------------------


@main.command()
@_perimeters_option()
@click.option(
    "--sector",
    "--secteur",
    "sector",
    default=None,
    help='Identifiant ou nom du secteur, ex. "Centre-ville" (défaut : toute l\'ORT).',
)
@_date_option
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Liste des parcelles : .csv, .xlsx, .gpkg ou .parquet.",
)
@click.option("--inside-only", is_flag=True, help="Exclure les parcelles à cheval.")
@_cadastre_option
@_millesime_option
@_tolerance_options
@_force_option
@_fix_option
def parcels(
    perimeters,
    sector,
    when,
    output,
    inside_only,
    cadastre,
    millesime,
    tolerance_m2,
    tolerance_pct,
    force,
    fix,
):
    """Lister les parcelles d'un secteur, avec leur statut et leur part (annexe de la convention)."""
    from geo.classify import parcels_in
    from geo.io import check_writable, write_table
    from geo.perimeters import ORT_ID, read_convention

    check_writable(output, force=force)
    day = _parse_date(when)
    conv = read_convention(perimeters)
    perims = conv.perimeters(day, in_force_only=True)
    parcel_layer = _load_parcels(conv, cadastre, millesime, fix)
    target = sector or ORT_ID
    match = perims[(perims["perimeter_id"] == target) | (perims["nom"].str.casefold() == target.casefold())]
    if match.empty:
        known = ", ".join(f"{i} ({n})" for i, n in zip(perims["perimeter_id"], perims["nom"], strict=True))
        raise InputError(f"unknown sector '{target}'", fix=f"use one of: {known}")
    result = _classify(parcel_layer, match, tolerance_m2, tolerance_pct)
    rows = _with_parcel_columns(
        parcels_in(result, match["perimeter_id"].iloc[0], include_straddling=not inside_only), parcel_layer
    )
    rows = rows.sort_values("idu").reset_index(drop=True)
    if output.suffix.lower() in (".gpkg", ".parquet", ".geojson"):
        import geopandas as gpd

        rows = gpd.GeoDataFrame(
            rows.merge(parcel_layer[["idu", "geometry"]], on="idu"), geometry="geometry", crs=parcel_layer.crs
        )
    write_table(rows, output, force=force)
    click.echo(_provenance(conv, perims, parcel_layer, day))
    counts = rows["status"].value_counts()
    click.echo(
        f"{match['nom'].iloc[0]} : {len(rows)} parcelle(s) — {counts.get('inside', 0)} incluse(s), "
        f"{counts.get('straddling', 0)} à cheval — écrit dans {output}"
    )


# --- ort validate ----------------------------------------------------------------------------


@main.command()
@click.argument("folder", type=click.Path(path_type=Path))
@_cadastre_option
@click.option(
    "--with-parcels",
    is_flag=True,
    help="Charger le cadastre pour signaler les parcelles coupées par les limites des périmètres.",
)
@_millesime_option
def validate(folder, cadastre, with_parcels, millesime):
    """Vérifier un dossier de convention et signaler tous les problèmes en une fois."""
    from geo.perimeters import read_convention
    from geo.validate import validate_convention

    parcel_layer = communes = None
    if cadastre or with_parcels:
        conv = read_convention(folder)
        parcel_layer = _load_parcels(conv, cadastre, millesime, fix=False)
        communes = _load_communes(conv, cadastre)
    report = validate_convention(folder, parcels=parcel_layer, communes=communes)
    click.echo(str(report))
    if not report.ok:
        sys.exit(1)


def _load_communes(conv, cadastre: Path | None):
    from geo import cadastre as cad

    source = cadastre or conv.cadastre_dir
    if source is None or not source.is_dir():
        return None
    try:
        layers = cad.load_cadastre(conv.communes, ("communes",), source_dir=source)
    except OrtError:
        return None
    return layers.get("communes")


# --- ort fetch -------------------------------------------------------------------------------


@main.command()
@click.argument("communes", nargs=-1, required=True)
@click.option(
    "--layer",
    "layers",
    multiple=True,
    default=("parcelles",),
    show_default=True,
    help="Couche(s) : parcelles, sections, batiments, feuilles, communes, lieux_dits.",
)
@_millesime_option
def fetch(communes, layers, millesime):
    """Télécharger les couches du cadastre de communes (codes INSEE) dans le cache local."""
    from geo.cadastre import fetch_layer

    for code in communes:
        for layer in layers:
            path = fetch_layer(code, layer, millesime=millesime)
            click.echo(f"{code} {layer}: {path}")


# --- ort perimeter-from-parcels --------------------------------------------------------------


@main.command("perimeter-from-parcels")
@click.argument("ids", nargs=-1, required=True)
@click.option("--commune", required=True, help="Code INSEE des parcelles.")
@click.option("--id", "perimeter_id", required=True, help="Identifiant du périmètre, ex. centre-ville.")
@click.option("--nom", required=True, help="Nom affiché aux utilisateurs.")
@click.option(
    "--type",
    "ptype",
    type=click.Choice(["secteur", "opah_ru", "autre"]),
    default="secteur",
    help="Type de périmètre (défaut : secteur).",
)
@click.option("--centre-ville", is_flag=True, help="Le secteur comprend le centre-ville.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Fichier GeoJSON du périmètre.",
)
@_cadastre_option
@_millesime_option
@_force_option
def perimeter_from_parcels_cmd(
    ids, commune, perimeter_id, nom, ptype, centre_ville, output, cadastre, millesime, force
):
    """Construire un périmètre (GeoJSON) comme l'union de parcelles."""
    from geo import cadastre as cad
    from geo.idu import parse_many
    from geo.io import check_writable, write_text
    from geo.perimeters import perimeter_from_parcels, perimeters_to_geojson

    check_writable(output, force=force)
    if cadastre is not None and cadastre.is_file():
        layer = cad.read_parcels(cadastre)
    else:
        layer = cad.load_cadastre([commune], ("parcelles",), millesime=millesime, source_dir=cadastre)[
            "parcelles"
        ]
    valid, rejected = parse_many(ids, code_insee=commune)
    if rejected:
        raise InputError(f"{rejected[0][1]}")
    gdf = perimeter_from_parcels(
        layer,
        [p.idu for p in valid],
        perimeter_id=perimeter_id,
        nom=nom,
        type=ptype,
        centre_ville=centre_ville,
    )
    write_text(perimeters_to_geojson(gdf), output, force=force)
    click.echo(f"{nom} : {len(valid)} parcelle(s), {gdf.geometry.area.sum():,.0f} m² — écrit dans {output}")


# --- ort demo --------------------------------------------------------------------------------


@main.command()
@click.option(
    "--force", is_flag=True, help="Reconstruire les données de démonstration et réécrire leurs sorties."
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Dossier des sorties (défaut : maps/).",
)
@click.option("--date", "when", default="2024-09-01", show_default=True, help="Date d'évaluation.")
def demo(force, output_dir, when):
    """Construire la commune fictive de démonstration si besoin et y lancer le traitement principal."""
    from geo import demo as demo_mod
    from geo.check import summary_table
    from geo.io import write_table
    from geo.perimeters import read_convention

    paths = demo_mod.build_demo(force=force)
    out = output_dir or (Path(__file__).resolve().parent.parent / "maps")
    day = _parse_date(when)
    conv = read_convention(paths.perimeters_dir)
    perims = conv.perimeters(day, in_force_only=True)
    parcel_layer = _load_parcels(conv, paths.data_dir, None, False)
    result = _classify(parcel_layer, perims, None, None)
    click.echo(_provenance(conv, perims, parcel_layer, day))
    click.echo(
        f"{len(parcel_layer)} parcelles classées contre {len(perims)} périmètres "
        "(commune fictive, données générées par `ort demo`)"
    )
    click.echo(summary_table(result).to_string(index=False))
    written = []
    table = out / "demo-parcelles.csv"
    if force or not table.exists():
        write_table(_with_parcel_columns(result, parcel_layer), table, force=True)
        written.append(table)
    html = out / "demo.html"
    if force or not html.exists():
        from geo._cli_maps import write_map

        housing = paths.data_dir / f"logements-sociaux-{demo_mod.DEMO_INSEE}.csv"
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
    for path in written:
        click.echo(f"Écrit : {path}")
    kept = [p for p in (table, html) if p.exists() and p not in written]
    for path in kept:
        click.echo(f"Conservé : {path} (existe déjà ; --force pour le réécrire)")


# --- commands of the other modules --------------------------------------------------------
# Each topic keeps its commands next to it in a private ``geo/_cli_<topic>.py`` exposing
# ``COMMANDS``; they share the options and helpers above.


def _register(module_name: str) -> None:
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:  # a topic not built yet
        if err.name == module_name:
            return
        raise
    for command in module.COMMANDS:
        main.add_command(command)


if __name__ != "__main__":  # `python -m geo.cli` runs the imported module's group below
    for _name in ("geo._cli_eligibility", "geo._cli_places", "geo._cli_maps", "geo._cli_scale"):
        _register(_name)


if __name__ == "__main__":  # pragma: no cover
    from geo.cli import main as _main

    _main()
