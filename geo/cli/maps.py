"""``ort map`` and ``ort annex``: the interactive offline map and the printed annex of a convention.

Registered by :mod:`geo.cli` (``COMMANDS``). Both refuse to overwrite an output without
``--force`` and check that before any long computation.
"""

from __future__ import annotations

from pathlib import Path

import click

from geo import embedded
from geo.cli.options import (
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
)
from geo.errors import OrtError

_FOND_HELP = (
    "Fond de carte : plan-ign (Plan IGN), ortho-ign (photographies aériennes IGN), osm "
    "(OpenStreetMap), ou un modèle d'URL https://…/{z}/{x}/{y}.png"
)


def load_orientation(conv, cadastre, parcels, addresses_path):
    """Orientation layers (sections, buildings, lieux-dits, communes, addresses) when available.

    Read from the cadastre folder only (never downloaded for a map): a layer that is not there
    is simply not drawn (sections are then dissolved from the parcels).
    """
    import warnings

    from geo.sources import cadastre as cad

    source = cadastre or conv.cadastre_dir
    layers = {}
    if source is not None and source.is_dir():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = cad.load_cadastre(
                conv.communes, ("sections", "batiments", "lieux_dits", "communes"), source_dir=source,
                metric_crs=conv.metric_crs,
            )  # fmt: skip
        layers = {k: v for k, v in found.items() if len(v)}
    out = {
        "sections": layers.get("sections"),
        "buildings": layers.get("batiments"),
        "lieux_dits": layers.get("lieux_dits"),
        "communes": layers.get("communes"),
        "addresses": None,
    }
    if addresses_path is not None:
        from geo.sources.addresses import read_addresses

        out["addresses"] = read_addresses(addresses_path, communes=list(conv.communes))
    return out


def _actions_layer(conv, parcels):
    """The convention's action register as a map layer, when ``actions.toml`` exists."""
    from geo.places import actions as act

    path = conv.path / "actions.toml"
    if not path.is_file():
        return None, []
    reg = act.read_register(path, convention=conv, parcels=parcels, strict=False)
    table = act.actions_table(reg)
    geoms, unresolved = act.action_geometries(reg, metric_crs=conv.metric_crs, parcels=parcels)
    import geopandas as gpd

    merged = table.merge(geoms[["id", "geometry"]], on="id", how="left")
    layer = gpd.GeoDataFrame(merged, geometry="geometry", crs=conv.metric_crs)
    notes = [f"action {i} non localisée : {why}" for i, why in unresolved]
    return layer, notes


def _answers_table(conv, perims, parcels, day):
    """Every parcel's eligibility answers, the columns the map's popups read (one row per rule)."""
    import pandas as pd

    from geo.eligibility.answers import eligibility_for_parcels
    from geo.eligibility.rules import load_rules
    from geo.sources.lists import load_lists

    answers = eligibility_for_parcels(
        parcels, perims, day, lists=load_lists(), rules=load_rules(), convention=conv
    )
    return pd.DataFrame(
        {
            "idu": [a.idu for a in answers],
            "regle": [a.effect for a in answers],
            "dispositif": [getattr(a, "name", "") or a.effect_label for a in answers],
            "verdict": [a.verdict for a in answers],
            "part": [a.share for a in answers],
            "reference": [a.reference for a in answers],
            "date_evaluee": [a.evaluated_on.isoformat() for a in answers],
        }
    )


def _eligibility_table(answers, result):
    """The answers of the parcels in or across a perimeter (the eligibility layers)."""
    touched = set(result.loc[result["status"] != "outside", "idu"])
    return answers[answers["idu"].isin(touched)]


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
    ort map --perimeters perimeters/libercourt -o maps/libercourt.html --adresses adresses-62.csv.gz
    ort map --perimeters perimeters/demo -o maps/demo.html --date 2024-09-01 --force
    """
    from geo.io import check_writable
    from geo.perimeters import read_convention

    check_writable(output, force=force)
    day = parse_date(when)
    conv = read_convention(perimeters)
    perims = conv.perimeters(day, in_force_only=True)
    parcels = load_parcels(conv, cadastre, millesime, fix)
    result = classify_with_progress(parcels, perims, None, None)
    click.echo(provenance(conv, perims, parcels, day))
    write_map(
        conv,
        perims,
        parcels,
        result,
        day,
        output,
        cadastre=cadastre,
        tiles=tiles,
        far_parcels=far_parcels,
        far_m=far_m,
        friches_path=friches_path,
        housing_path=housing_path,
        with_eligibility=with_eligibility,
        address_file=address_file,
        force=force,
    )


def write_map(
    conv,
    perims,
    parcels,
    result,
    day,
    output,
    *,
    cadastre=None,
    tiles=None,
    far_parcels="light",
    far_m=200.0,
    friches_path=None,
    housing_path=None,
    with_eligibility=False,
    address_file=None,
    force=False,
) -> Path:
    """Build the convention's map from parcels already loaded and classified, save it, say so.

    Shared by ``ort map`` and ``ort demo`` (which has the parcels and verdicts in hand).
    """
    from geo.maps import page as maps

    layers = {}
    notes: list[str] = []
    actions, action_notes = _actions_layer(conv, parcels)
    if actions is not None:
        layers["actions"] = actions
        notes += action_notes
    if friches_path is not None:
        from geo.places.friches import read_friches

        layers["friches"] = read_friches(
            friches_path, communes=list(conv.communes), metric_crs=conv.metric_crs
        )
    if housing_path is not None:
        from geo.places.housing import locate_sites, read_housing

        located = locate_sites(
            read_housing(housing_path), metric_crs=conv.metric_crs, parcels=parcels, communes=conv.communes
        )
        layers["housing"] = located.sites
        notes += (
            [f"logements non localisés : {len(located.unlocated())} site(s)"]
            if len(located.unlocated())
            else []
        )
    try:  # every parcel's popup lists the dispositifs; the map is still useful without them
        answers = _answers_table(conv, perims, parcels, day)
        layers["answers"] = answers
    except OrtError as err:
        answers = None
        notes.append(f"dispositifs non affichés dans les fenêtres des parcelles : {err}")
    if with_eligibility and answers is not None:
        layers["eligibility"] = _eligibility_table(answers, result)
    address_file = address_file or embedded.address_file(conv.communes)  # the demo's, shipped
    if address_file is not None:
        from geo.sources.addresses import read_addresses

        layers["addresses"] = read_addresses(address_file, communes=list(conv.communes))
    orient = load_orientation(conv, cadastre, parcels, None)  # addresses: read above, once
    orient.pop("addresses")
    communes = orient.pop("communes")
    if communes is None:
        communes = load_communes(conv, cadastre)  # None when the folder has no communes layer
    if communes is not None:
        layers["communes"] = communes
    layers.update({k: v for k, v in orient.items() if v is not None})
    m = maps.convention_map(
        perims,
        parcels=parcels,
        classification=result,
        title=conv.nom,
        fictif=conv.fictif,
        tiles=tiles,
        far_parcels=far_parcels,
        far_m=far_m,
        convention=conv,
        **layers,
    )
    path = maps.save_offline(m, output, force=force)
    for line in [*maps.summary_lines(m), *notes]:
        click.echo(line)
    size = path.stat().st_size / 1e6
    network = "charge des tuiles depuis le réseau" if tiles else "aucune ressource réseau"
    from geo import fmt

    click.echo(f"Carte écrite : {path} ({fmt.number(size, 1)} Mo, {network})")
    return path


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
    from geo.idu import parse_idu
    from geo.io import check_folder_files
    from geo.maps import annex as annex_mod
    from geo.perimeters import read_convention

    day = parse_date(when)
    conv = read_convention(perimeters)
    if parcel is not None:
        default = conv.communes[0] if len(conv.communes) == 1 else None
        parcel = parse_idu(parcel, code_insee=default).idu
    perims = conv.perimeters(day, in_force_only=True)
    if output.exists() and not output.is_dir():
        raise OrtError(f"{output} existe et n'est pas un dossier — donnez un dossier pour l'annexe")
    files = annex_mod.annex_files(perims, output, parcel=parcel)
    check_folder_files(output, [p.name for p in files], force=force)
    if fond is not None:
        from geo.maps.tiles import background

        background(fond)  # an unknown name fails before the long work
    parcels = load_parcels(conv, cadastre, millesime, fix)
    result = classify_with_progress(parcels, perims, None, None)
    layers = load_orientation(conv, cadastre, parcels, addresses_path)
    orient = annex_mod.orientation_layers(
        parcels, sections=layers["sections"], buildings=layers["buildings"], lieux_dits=layers["lieux_dits"],
        addresses=layers["addresses"], communes=layers["communes"],
    )  # fmt: skip
    from geo import fmt

    doc = annex_mod.annex_pages(
        perims,
        parcels,
        classification=result,
        title=conv.nom,
        fictif=conv.fictif,
        paper=paper,
        orientation=orientation,
        parcel=parcel,
        annex_number=annex_number,
        reference=f"Convention « {conv.nom} » signée le {fmt.date_fr(conv.date_signature)}"
        f" — périmètres « {perims.attrs.get('version_libelle')} »"
        f" du {fmt.date_fr(perims.attrs.get('version_date'))}",
        orient=orient,
        background=fond,
    )
    written = annex_mod.write_annex(doc, output, force=force)
    click.echo(provenance(conv, perims, parcels, day))
    for notice in doc.notices:
        click.echo(f"Attention : {notice}")
    click.echo(
        f"Annexe : {len(doc.pages)} page(s) {paper} {orientation}, {len(written)} fichier(s) dans {output}"
    )
    for path in written:
        click.echo(f"  {path}")


COMMANDS = [map_cmd, annex]
