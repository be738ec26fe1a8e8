"""The convention's offline map (HTML) and its printable annex (PNG 300 dpi + PDF, parcel lists).

What ``ort map``, ``ort annex`` and ``ort demo`` write. Each job reads a :class:`Territoire`
(never changes it) and returns what it wrote (:class:`Carte`, :class:`Annexe`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from geo import embedded
from geo import settings as ort_settings
from geo.app.load import Territoire, classify_with_progress, drawing_lock, provenance
from geo.app.models import Annexe, Carte
from geo.errors import OrtError


def write_map(
    output: str | Path,
    *,
    territoire: Territoire,
    date: dt.date | str | None = None,
    tiles: str | None = None,
    far_parcels: str = "light",
    far_m: float = 200.0,
    friches_path: str | Path | None = None,
    housing_path: str | Path | None = None,
    with_eligibility: bool = False,
    address_file: str | Path | None = None,
    force: bool = False,
    perimeters=None,
    classification=None,
    settings: ort_settings.Settings | None = None,
) -> Carte:
    """Write the convention's map: one self-contained HTML file, usable offline.

    Parameters
    ----------
    output : path
        The ``.html`` file.
    territoire : Territoire
        From :func:`geo.app.open_territory`.
    date : date or str, optional
        The perimeters in force that day (default today).
    tiles : str, optional
        Background (``plan-ign``, ``ortho-ign``, ``osm`` or a URL template); the page then loads
        tiles from the network. Default: none, the cadastre is enough offline.
    far_parcels, far_m :
        Parcels farther than ``far_m`` metres from every perimeter: ``light``, ``drop`` or ``keep``.
    friches_path, housing_path, address_file : path, optional
        Friches (Cartofriches / CNIG), social housing, addresses (searchable offline) to show.
    with_eligibility : bool
        Add the eligibility layers of the parcels in or across a perimeter.
    perimeters, classification : optional
        The perimeters in force and the parcels' classification, when the caller has them.
    """
    from geo import fmt
    from geo.maps import page as maps
    from geo.perimeters import parse_date

    conv, parcels = territoire.convention, territoire.parcels
    with ort_settings.use(settings):
        day = parse_date(date)
        perims = conv.perimeters(day, in_force_only=True) if perimeters is None else perimeters
        result = (
            classify_with_progress(parcels, perims, None, None) if classification is None else classification
        )
        layers, notes = _map_layers(
            territoire, perims, result, day, friches_path, housing_path, with_eligibility
        )
        address_file = address_file or embedded.address_file(conv.communes)  # the demo's, shipped
        if address_file is not None:
            from geo.sources.addresses import read_addresses

            layers["addresses"] = read_addresses(address_file, communes=list(conv.communes))
        m = maps.convention_map(
            perims, parcels=parcels, classification=result, title=conv.nom, fictif=conv.fictif, tiles=tiles,
            far_parcels=far_parcels, far_m=far_m, convention=conv, **layers,
        )  # fmt: skip
        path = maps.save_offline(m, output, force=force)
    size = path.stat().st_size
    network = "charge des tuiles depuis le réseau" if tiles else "aucune ressource réseau"
    return Carte(
        chemin=path,
        octets=size,
        reseau=bool(tiles),
        provenance=provenance(conv, perims, parcels, day),
        resume=[
            *maps.summary_lines(m),
            *notes,
            f"Carte écrite : {path} ({fmt.number(size / 1e6, 1)} Mo, {network})",
        ],
    )


def _map_layers(territoire, perims, result, day, friches_path, housing_path, with_eligibility):
    """The map's extra layers (actions, friches, housing, answers, orientation) and notes."""
    conv, parcels = territoire.convention, territoire.parcels
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
        lost = len(located.unlocated())
        notes += [f"logements non localisés : {lost} site(s)"] if lost else []
    try:  # every parcel's popup lists the dispositifs; the map is still useful without them
        answers = _answers_table(conv, perims, parcels, day)
        layers["answers"] = answers
    except OrtError as err:
        answers = None
        notes.append(f"dispositifs non affichés dans les fenêtres des parcelles : {err}")
    if with_eligibility and answers is not None:
        touched = set(result.loc[result["status"] != "outside", "idu"])
        layers["eligibility"] = answers[answers["idu"].isin(touched)]
    orient = load_orientation(conv, territoire.cadastre, parcels, None)
    orient.pop("addresses")
    communes = orient.pop("communes")
    if communes is None:
        communes = territoire.communes  # None when the folder has no communes layer
    if communes is not None:
        layers["communes"] = communes
    layers.update({k: v for k, v in orient.items() if v is not None})
    return layers, notes


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


# --- the annex -------------------------------------------------------------------------------


def annex_parcel(conv, parcel: str | None) -> str | None:
    """The IDU of ``--parcel`` as typed (short forms with the convention's only commune)."""
    if parcel is None:
        return None
    from geo.idu import parse_idu

    default = conv.communes[0] if len(conv.communes) == 1 else None
    return parse_idu(parcel, code_insee=default).idu


def check_annex_output(
    conv, output: str | Path, *, date=None, parcel: str | None = None, background: str | None = None,
    force: bool = False,
) -> None:  # fmt: skip
    """Refuse, before any long work, an annex folder that would overwrite files, a bad parcel id
    or an unknown background."""
    from geo.io import check_folder_files
    from geo.maps import annex as annex_mod
    from geo.perimeters import parse_date

    output = Path(output)
    perims = conv.perimeters(parse_date(date), in_force_only=True)
    if output.exists() and not output.is_dir():
        raise OrtError(f"{output} existe et n'est pas un dossier — donnez un dossier pour l'annexe")
    files = annex_mod.annex_files(perims, output, parcel=annex_parcel(conv, parcel))
    check_folder_files(output, [p.name for p in files], force=force)
    if background is not None:
        from geo.maps.tiles import background as tiles

        tiles(background)  # an unknown name fails before the long work


def write_annex(
    output: str | Path,
    *,
    territoire: Territoire,
    date: dt.date | str | None = None,
    paper: str = "A4",
    orientation: str = "landscape",
    parcel: str | None = None,
    background: str | None = None,
    annex_number: str | None = None,
    addresses_path: str | Path | None = None,
    force: bool = False,
    settings: ort_settings.Settings | None = None,
) -> Annexe:
    """Write the printable annex of the convention: map pages (PNG 300 dpi + one PDF) and the
    parcel lists (CSV + XLSX) of each perimeter in force on ``date``, in the folder ``output``.

    ``parcel`` adds a page centred on that parcel; ``background`` a tile background (downloaded
    once into the cache; offline: no background, said on the page); ``annex_number`` is printed
    on every page.
    """
    from geo import fmt
    from geo.maps import annex as annex_mod
    from geo.perimeters import parse_date

    conv, parcels = territoire.convention, territoire.parcels
    output = Path(output)
    with ort_settings.use(settings):
        day = parse_date(date)
        check_annex_output(conv, output, date=day, parcel=parcel, background=background, force=force)
        idu = annex_parcel(conv, parcel)
        perims = conv.perimeters(day, in_force_only=True)
        result = classify_with_progress(parcels, perims, None, None)
        layers = load_orientation(conv, territoire.cadastre, parcels, addresses_path)
        orient = annex_mod.orientation_layers(
            parcels,
            sections=layers["sections"],
            buildings=layers["buildings"],
            lieux_dits=layers["lieux_dits"],
            addresses=layers["addresses"],
            communes=layers["communes"],
        )
        reference = (
            f"Convention « {conv.nom} » signée le {fmt.date_fr(conv.date_signature)}"
            f" — périmètres « {perims.attrs.get('version_libelle')} »"
            f" du {fmt.date_fr(perims.attrs.get('version_date'))}"
        )
        with drawing_lock:
            doc = annex_mod.annex_pages(
                perims, parcels, classification=result, title=conv.nom, fictif=conv.fictif, paper=paper,
                orientation=orientation, parcel=idu, annex_number=annex_number or conv.edition.annexe or None,
                reference=reference, orient=orient, background=background,
                convention_date=conv.date_signature, visas=conv.edition.visas,
            )  # fmt: skip
            written = annex_mod.write_annex(doc, output, force=force)
    return Annexe(
        dossier=output,
        pages=len(doc.pages),
        papier=paper,
        orientation=orientation,
        fichiers=written,
        provenance=provenance(conv, perims, parcels, day),
        avertissements=list(doc.notices),
    )


__all__ = ["write_annex", "write_map"]
