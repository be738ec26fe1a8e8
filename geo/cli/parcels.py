"""``ort check``, ``parcels``, ``validate``, ``fetch``, ``perimeter-from-parcels``: the parcel check
and the convention folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from geo import fmt
from geo.cli.options import (
    EXIT_BAD_INPUT,
    Command,
    addresses_option,
    cadastre_option,
    classify_with_progress,
    date_option,
    fix_option,
    force_option,
    load_communes,
    load_parcels,
    millesime_option,
    parse_date,
    perimeters_option,
    provenance,
    tolerance_options,
    with_parcel_columns,
)
from geo.errors import InputError

# --- ort check -------------------------------------------------------------------------------


@click.command(cls=Command)
@click.argument("ids", nargs=-1)
@perimeters_option()
@date_option
@click.option(
    "--file",
    "id_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV/XLSX d'identifiants de parcelles (colonne idu, id ou parcelle ; commune facultative) "
    "et/ou d'adresses (colonne adresse).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Fichier de résultat : .csv, .xlsx, .gpkg ou .parquet (une ligne par parcelle et périmètre).",
)
@click.option("--commune", default=None, help="Code INSEE pour les identifiants courts comme 'AB 685'.")
@click.option("--json", "as_json", is_flag=True, help="Afficher en JSON.")
@addresses_option
@cadastre_option
@millesime_option
@tolerance_options
@force_option
@fix_option
def check(
    ids,
    perimeters,
    when,
    id_file,
    output,
    commune,
    as_json,
    address_file,
    cadastre,
    millesime,
    tolerance_m2,
    tolerance_pct,
    force,
    fix,
):
    """Chaque parcelle (ou adresse) est-elle incluse, à cheval ou hors de chaque périmètre en vigueur ?

    Les identifiants s'écrivent comme les notaires les tapent (91216 AC 100, 91216000AC100, AC100,
    000 AC 0100) ; une adresse est cherchée dans la Base Adresse Nationale puis placée sur la
    parcelle qui contient son point.

    \b
    ort check 62999000AB0012 --perimeters perimeters/demo --date 2024-06-01
    ort check "12 rue Jean Jaurès, 62820 Libercourt" --perimeters perimeters/libercourt
    ort check --file parcelles.csv --perimeters perimeters/demo -o resultat.csv
    """
    from geo import app
    from geo.io import check_writable

    if not ids and not id_file:
        raise click.UsageError("donnez des identifiants de parcelles, une adresse ou --file parcelles.csv")
    if output:
        check_writable(output, force=force)
    day = parse_date(when)
    territory = app.open_territory(perimeters, cadastre=cadastre, millesime=millesime, fix=fix, date=day)
    result = app.check_entries(
        ids, territoire=territory, date=day, commune=commune, file=id_file, address_file=address_file,
        tolerance_m2=tolerance_m2, tolerance_pct=tolerance_pct,
    )  # fmt: skip
    if output:
        app.write_verification(result, output, force=force)
    if as_json:  # the warnings are in "avertissements"
        click.echo(result.model_dump_json(indent=2))
    else:
        _print_check(result, output, many=bool(id_file) or len(result.parcelles) > 20)
    if result.rejetes:
        click.echo(f"{len(result.rejetes)} identifiant(s) non reconnu(s) :", err=True)
        for r in result.rejetes:
            click.echo(f"  {r.entree}: {r.erreur}", err=True)
        if not id_file or not result.parcelles:
            sys.exit(EXIT_BAD_INPUT)


def _print_check(result, output: Path | None, *, many: bool) -> None:
    """The answer in French: warnings, addresses, provenance, then each parcel or a summary."""
    detail = result.detail
    for warning in detail.warnings:
        click.echo(f"Avertissement : {warning}", err=True)
    for a in detail.addresses:  # ambiguous or not found: an answer, not an error
        click.echo(a.describe())
    if not result.parcelles:
        return
    click.echo(detail.provenance())
    if not many:
        click.echo(detail.describe())
        return
    click.echo(
        f"{len(result.parcelles)} parcelle(s) classée(s) contre "
        f"{detail.table['perimeter_id'].nunique()} périmètre(s)"
    )
    click.echo(detail.summary().to_string(index=False))
    if output:
        click.echo(f"Résultat écrit : {output}")


# --- ort parcels -----------------------------------------------------------------------------


@click.command(cls=Command)
@perimeters_option()
@click.option(
    "--sector",
    "--secteur",
    "sector",
    default=None,
    help='Identifiant ou nom du secteur, ex. "Centre-ville" (défaut : toute l\'ORT).',
)
@date_option
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Liste des parcelles : .csv, .xlsx, .gpkg ou .parquet.",
)
@click.option("--inside-only", is_flag=True, help="Exclure les parcelles à cheval.")
@cadastre_option
@millesime_option
@tolerance_options
@force_option
@fix_option
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
    from geo.check import source_text
    from geo.classify import parcels_in
    from geo.columns import PARCELS
    from geo.io import check_writable, write_table
    from geo.perimeters import ORT_ID, read_convention

    check_writable(output, force=force)
    day = parse_date(when)
    conv = read_convention(perimeters)
    perims = conv.perimeters(day, in_force_only=True)
    parcel_layer = load_parcels(conv, cadastre, millesime, fix)
    target = sector or ORT_ID
    match = perims[(perims["perimeter_id"] == target) | (perims["nom"].str.casefold() == target.casefold())]
    if match.empty:
        known = ", ".join(f"{i} ({n})" for i, n in zip(perims["perimeter_id"], perims["nom"], strict=True))
        raise InputError(f"secteur '{target}' inconnu", fix=f"choisissez parmi : {known}")
    result = classify_with_progress(parcel_layer, match, tolerance_m2, tolerance_pct)
    rows = with_parcel_columns(
        parcels_in(result, match["perimeter_id"].iloc[0], include_straddling=not inside_only), parcel_layer
    )
    rows = rows.sort_values("idu").reset_index(drop=True)
    if output.suffix.lower() in (".gpkg", ".parquet", ".geojson"):
        import geopandas as gpd

        rows = gpd.GeoDataFrame(
            rows.merge(parcel_layer[["idu", "geometry"]], on="idu"), geometry="geometry", crs=parcel_layer.crs
        )
    nom = match["nom"].iloc[0]
    kept = "incluses" if inside_only else "incluses ou à cheval"
    write_table(
        rows,
        output,
        force=force,
        layout=PARCELS,
        title=f"{nom} — parcelles {kept} au {fmt.date_fr(day)}",
        source=source_text(conv, perims, parcel_layer.attrs.get("millesime"), day),
    )
    click.echo(provenance(conv, perims, parcel_layer, day))
    counts = rows["status"].value_counts()
    click.echo(
        f"{match['nom'].iloc[0]} : {len(rows)} parcelle(s) — {counts.get('inside', 0)} incluse(s), "
        f"{counts.get('straddling', 0)} à cheval — écrit dans {output}"
    )


# --- ort validate ----------------------------------------------------------------------------


@click.command(cls=Command)
@click.argument("folder", type=click.Path(path_type=Path))
@cadastre_option
@click.option(
    "--with-parcels",
    is_flag=True,
    help="Charger le cadastre pour signaler les parcelles coupées par les limites des périmètres.",
)
@millesime_option
def validate(folder, cadastre, with_parcels, millesime):
    """Vérifier un dossier de convention et signaler tous les problèmes en une fois."""
    from geo.perimeters import read_convention
    from geo.validate import validate_convention

    parcel_layer = communes = None
    if cadastre or with_parcels:
        conv = read_convention(folder)
        parcel_layer = load_parcels(conv, cadastre, millesime, fix=False)
        communes = load_communes(conv, cadastre)
    report = validate_convention(folder, parcels=parcel_layer, communes=communes)
    click.echo(str(report))
    if not report.ok:
        sys.exit(1)


# --- ort fetch -------------------------------------------------------------------------------


@click.command(cls=Command)
@click.argument("communes", nargs=-1, required=True)
@click.option(
    "--layer",
    "layers",
    multiple=True,
    default=("parcelles",),
    show_default=True,
    help="Couche(s) : parcelles, sections, batiments, feuilles, communes, lieux_dits.",
)
@millesime_option
@click.option(
    "--refresh",
    is_flag=True,
    help="Télécharger à nouveau même si le fichier est en cache (répare une entrée endommagée).",
)
def fetch(communes, layers, millesime, refresh):
    """Télécharger les couches du cadastre de communes (codes INSEE) dans le cache local.

    Chaque fichier est vérifié (gzip complet, JSON lisible) avant d'être annoncé.
    """
    from geo.errors import DownloadError
    from geo.sources.cadastre import fetch_layer
    from geo.sources.http import verify_cached

    for code in communes:
        for layer in layers:
            path = fetch_layer(code, layer, millesime=millesime, refresh=refresh)
            problem = verify_cached(path, deep=True)
            if problem:
                raise DownloadError(
                    f"{path} : fichier en cache endommagé ({problem}) — relancez "
                    f"`ort fetch --refresh {code} --layer {layer}` pour le télécharger à nouveau"
                )
            click.echo(f"{code} {layer}: {path} (vérifié)")


# --- ort perimeter-from-parcels --------------------------------------------------------------


@click.command("perimeter-from-parcels", cls=Command)
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
@cadastre_option
@millesime_option
@force_option
def perimeter_from_parcels_cmd(
    ids, commune, perimeter_id, nom, ptype, centre_ville, output, cadastre, millesime, force
):
    """Construire un périmètre (GeoJSON) comme l'union de parcelles."""
    from geo.idu import parse_many
    from geo.io import check_writable, write_text
    from geo.perimeters import perimeter_from_parcels, perimeters_to_geojson
    from geo.sources import cadastre as cad

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
    click.echo(
        f"{nom} : {len(valid)} parcelle(s), {fmt.area_m2(gdf.geometry.area.sum())} — écrit dans {output}"
    )


# --- ort demo --------------------------------------------------------------------------------


COMMANDS = [check, parcels, validate, fetch, perimeter_from_parcels_cmd]
