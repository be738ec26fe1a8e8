"""``ort check``, ``parcels``, ``validate``, ``fetch``, ``perimeter-from-parcels``: the parcel check
and the convention folder.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from pathlib import Path

import click

from geo import fmt
from geo.cli.options import (
    EXIT_BAD_INPUT,
    Command,
    _convention_folder,
    addresses_option,
    cadastre_option,
    date_option,
    fix_option,
    force_option,
    millesime_option,
    parse_date,
    perimeters_option,
    tolerance_options,
)

# --- ort check -------------------------------------------------------------------------------

#: Options of ``ort check`` that the digest of a convention answers (the others: general path).
_QUICK_DEFAULTS = {"id_file": None, "output": None, "address_file": None, "cadastre": None, "millesime": None,
                   "tolerance_m2": None, "tolerance_pct": None, "fix": False}  # fmt: skip


class QuickCheck(Command):
    """``ort check ID --perimeters NAME`` answered from the convention's digest
    (:mod:`geo.check_digest`: no pandas, no geopandas) when it can, else as any command."""

    def invoke(self, ctx: click.Context):
        p = ctx.params
        if p.get("perimeters") is not None and all(p.get(k) == v for k, v in _QUICK_DEFAULTS.items()):
            try:
                from geo import check_digest

                found = check_digest.answer(p["perimeters"], p["ids"], p["when"], p["commune"])
            except Exception:  # noqa: BLE001 - any doubt: the general path answers (and says why)
                found = None
            if found is not None:
                _print_quick(found, as_json=p["as_json"])
                return None
        return super().invoke(ctx)


def _print_quick(found, *, as_json: bool) -> None:
    """What :func:`check` prints, from the digest's answer."""
    data, warnings, provenance, lines = found
    if as_json:
        from geo.app.models import Verification

        click.echo(Verification.model_validate(data).model_dump_json(indent=2))
        return
    for warning in warnings:
        click.echo(f"Avertissement : {warning}", err=True)
    click.echo(provenance)
    click.echo(lines)


@click.command(cls=QuickCheck)
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
    ort check "12 rue Jean Jaurès, 62820 Libercourt" --perimeters libercourt
    ort check --file parcelles.csv --perimeters perimeters/demo -o resultat.csv
    """
    from geo import app
    from geo.io import check_writable

    if not ids and not id_file:
        raise click.UsageError("donnez des identifiants de parcelles, une adresse ou --file parcelles.csv")
    if output:
        check_writable(output, force=force)
    day = parse_date(when)
    with _noting_warnings() as said:
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
    quick = all(v is None for v in (id_file, output, address_file, cadastre, millesime))
    if quick and not fix and not said:  # nothing said on the way the digest would not say again
        if tolerance_m2 is None and tolerance_pct is None:  # the next `ort check ID` reads the digest
            from geo import check_digest

            check_digest.record(territory, day)
    if result.rejetes:
        click.echo(f"{len(result.rejetes)} identifiant(s) non reconnu(s) :", err=True)
        for r in result.rejetes:
            click.echo(f"  {r.entree}: {r.erreur}", err=True)
        if not id_file or not result.parcelles:
            sys.exit(EXIT_BAD_INPUT)


@contextlib.contextmanager
def _noting_warnings():
    """The warnings shown while the block runs (as shown: their filters and printing unchanged),
    listed in the value given: a check that said one writes no digest (it would not say it)."""
    said: list = []
    previous = warnings.showwarning

    def noting(message, category, *args, **kwargs):
        said.append(category)
        return previous(message, category, *args, **kwargs)

    warnings.showwarning = noting
    try:
        yield said
    finally:
        warnings.showwarning = previous


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
    from geo import app
    from geo.io import check_writable

    check_writable(output, force=force)
    day = parse_date(when)
    territory = app.open_territory(perimeters, cadastre=cadastre, millesime=millesime, fix=fix, date=day)
    done = app.sector_parcels(
        territoire=territory, sector=sector, date=day, inside_only=inside_only, output=output,
        tolerance_m2=tolerance_m2, tolerance_pct=tolerance_pct, force=force,
    )  # fmt: skip
    click.echo(done.provenance)
    click.echo(
        f"{done.nom} : {done.parcelles} parcelle(s) — {done.incluses} incluse(s), "
        f"{done.a_cheval} à cheval — écrit dans {output}"
    )


# --- ort validate ----------------------------------------------------------------------------


@click.command(cls=Command)
@click.argument("folder", type=click.Path(path_type=Path), callback=_convention_folder)
@cadastre_option
@click.option(
    "--with-parcels",
    is_flag=True,
    help="Charger le cadastre pour signaler les parcelles coupées par les limites des périmètres.",
)
@millesime_option
def validate(folder, cadastre, with_parcels, millesime):
    """Vérifier un dossier de convention et signaler tous les problèmes en une fois."""
    from geo import app

    done = app.validate_folder(folder, cadastre=cadastre, with_parcels=with_parcels, millesime=millesime)
    click.echo(str(done.report))
    if not done.ok:
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
    from geo import app

    for done in app.fetch_cadastre(communes, layers=layers, millesime=millesime, refresh=refresh):
        click.echo(f"{done.code_insee} {done.couche}: {done.chemin} (vérifié)")


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
    from geo import app
    from geo.io import check_writable

    check_writable(output, force=force)
    done = app.perimeter_from_parcels(
        ids, commune=commune, perimeter_id=perimeter_id, nom=nom, output=output, type=ptype,
        centre_ville=centre_ville, cadastre=cadastre, millesime=millesime, force=force,
    )  # fmt: skip
    click.echo(f"{nom} : {done.parcelles} parcelle(s), {fmt.area_m2(done.surface_m2)} — écrit dans {output}")


# --- ort demo --------------------------------------------------------------------------------


COMMANDS = [check, parcels, validate, fetch, perimeter_from_parcels_cmd]
