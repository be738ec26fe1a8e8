"""Fictional places of the embedded demo: an action register and a social housing list.

The demo convention (:mod:`geo.demo.commune`, *Ormeval-sur-Mer*, a commune that does not exist) has
perimeters and a cadastre but, like a convention just signed, no follow-up material.
:func:`build_demo_places` writes, beside them,

- ``actions.toml`` in the convention folder: a **fictional** action register in the format of
  ``perimeters/ACTIONS.md`` (five axes, every status, budgets and financing lines, actions
  located by sector, parcel ids or point, and some not located), valid for
  :func:`geo.places.actions.read_register`;
- ``logements-sociaux-<insee>.csv`` in the cadastre folder: a **fictional** landlords' list
  readable by :func:`geo.places.housing.read_housing` (sites located by coordinates or parcel ids,
  one straddling the centre-ville boundary, some outside the ORT, one with an address only
  that cannot be located without a BAN file, one without a dwelling count).

Sites and located actions are anchored on parcels chosen from the cadastre and the latest
perimeters by a fixed rule (nearest to a sector's reference point, ties broken by IDU), so
two builds give byte-identical files, wherever they are written. Every landlord, programme
and action title says *fictif*, the register opens with a comment saying it is fictional and
each housing row carries a ``source`` column saying so: none of this may be mistaken for real
data.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from geo.classify import INSIDE, OUTSIDE, STRADDLING, classify_parcels
from geo.errors import InputError
from geo.io import write_text
from geo.perimeters import ORT_ID, read_convention
from geo.places.actions import REGISTER_FILE
from geo.projection import WGS84
from geo.sources.cadastre import load_cadastre

FICTIF = "Données fictives de démonstration — geo/demo_places.py"
#: Sectors of the demo convention the places are anchored on.
SECTORS = ("centre-ville", "gare", "faubourg")

_B1 = "Habitat du Littoral d'Ormeval (bailleur fictif)"
_B2 = "Ormeval Logement (bailleur fictif)"
_B3 = "SA HLM des Falaises (bailleur fictif)"

# site_id, bailleur, programme, logements, année, anchor, located by, address.
# Anchors: (kind, sector, rank) — kind "in" (inside the sector), "cheval" (straddling its
# boundary), "avenant" (inside the sector only since the last version), "hors" (outside
# every perimeter, near the ORT).
# fmt: off
_SITES = [
    ("LS-01", _B1, "Résidence Les Mouettes", 48, 1972, ("in", "centre-ville", 0), "point",
     "3 rue des Mouettes"),
    ("LS-02", _B1, "Résidence du Beffroi", 24, 1985, ("in", "centre-ville", 3), "parcelles",
     "8 place du Beffroi"),
    ("LS-03", _B2, "Îlot Saint-Pierre", 12, 2019, ("in", "centre-ville", 6), "point",
     "21 rue Saint-Pierre"),
    ("LS-04", _B3, "Les Terrasses du Port", 30, 2008, ("cheval", "centre-ville", 0), "parcelles",
     "2 quai Sud"),
    ("LS-05", _B2, "Résidence de la Gare", 36, 1968, ("in", "gare", 0), "point",
     "5 avenue de la Gare"),
    ("LS-06", _B1, "Les Quais", 20, 2021, ("avenant", "gare", 0), "parcelles",
     "40 rue des Quais"),
    ("LS-07", _B3, "Cité des Pêcheurs", 64, 1958, ("in", "faubourg", 0), "point",
     "1 rue des Filets"),
    ("LS-08", _B2, "Résidence des Dunes", None, 1976, ("in", "faubourg", 4), "point",
     "17 rue des Dunes"),
    ("LS-09", _B1, "Lotissement du Moulin", 18, 1995, ("hors", ORT_ID, 0), "point",
     "9 chemin du Moulin"),
    ("LS-10", _B3, "Résidence Les Oyats", 40, 1981, ("hors", ORT_ID, 3), "parcelles",
     "26 rue des Oyats"),
    ("LS-11", _B2, "Foyer Les Embruns", 25, 1990, None, "adresse",
     "14 rue du Phare"),
]
# fmt: on

_AXES = {
    "1": "Habitat : reconquérir les logements vacants et dégradés du centre ancien",
    "2": "Commerce : conforter l'offre commerciale du centre-ville",
    "3": "Espaces publics, patrimoine et cadre de vie",
    "4": "Équipements et services au public",
    "5": "Mobilités et transition écologique",
}
_COMMUNE = "Commune d'Ormeval-sur-Mer (fictive)"
# id, axe, titre, statut, fiche, maître d'ouvrage, budget, avancement, début, fin,
# financements [(financeur, montant, statut)], localisation {secteur | parcelles | point: anchor}.
# fmt: off
_ACTIONS = [
    ("A1-01", "1", "Étude pré-opérationnelle d'OPAH-RU", "réalisée", True, _COMMUNE, 60000, 100,
     "2023-04-01", "2023-12-31",
     [("Anah", 30000, "acquis"), ("Banque des Territoires", 12000, "acquis"), ("Commune", 18000, "acquis")],
     {"secteur": "opah-ru-centre"}),
    ("A1-02", "1", "OPAH-RU du centre ancien : suivi-animation", "en cours", True, _COMMUNE, 450000, 35,
     "2024-01-01", "2028-12-31",
     [("Anah", 225000, "acquis"), ("Commune", 90000, "acquis"), ("Région", 45000, "sollicité")],
     {"secteur": "opah-ru-centre"}),
    ("A1-03", "1", "Recyclage de l'îlot dégradé de la rue des Mouettes", "projetée", True,
     "EPF (fictif)", 1200000, None, "2025-01-01", "2027-12-31",
     [("Fonds vert", 400000, "sollicité"), ("EPF", 500000, "prévisionnel"),
      ("Commune", 100000, "prévisionnel")],
     {"parcelles": [("in", "centre-ville", 1), ("in", "centre-ville", 2)]}),
    ("A1-04", "1", "Résidence seniors près de la gare", "en réflexion", False, _B2, None, None, None, None,
     [], {"point": ("avenant", "gare", 1)}),
    ("A2-01", "2", "Manager de commerce de centre-ville", "en cours", True, _COMMUNE, 150000, 50,
     "2023-09-01", "2026-08-31",
     [("Banque des Territoires", 60000, "acquis"), ("Commune", 90000, "acquis")],
     {"secteur": "centre-ville"}),
    ("A2-02", "2", "Réhabilitation des halles du marché", "projetée", True, _COMMUNE, 850000, None,
     "2025-06-01", "2027-06-30",
     [("État (DSIL)", 300000, "sollicité"), ("Région", 200000, "prévisionnel"),
      ("FEDER", 150000, "refusé"), ("Commune", 200000, "prévisionnel")],
     {"parcelles": [("in", "centre-ville", 4)]}),
    ("A2-03", "2", "Périmètre de sauvegarde du commerce de proximité", "réalisée", False, _COMMUNE, None, 100,
     "2023-06-01", "2023-11-30", [], {"secteur": "centre-ville"}),
    ("A3-01", "3", "Requalification de la place de la mairie", "en cours", True, _COMMUNE, 1500000, 60,
     "2024-03-01", "2025-12-31",
     [("État (DSIL)", 450000, "acquis"), ("Département", 300000, "acquis"),
      ("Commune", 750000, "acquis")],
     {"point": ("in", "centre-ville", 5)}),
    ("A3-02", "3", "Mise en valeur du front de mer du faubourg", "abandonnée", False, _COMMUNE, 300000, 0,
     None, None, [("Région", 100000, "refusé")], {"point": ("in", "faubourg", 2)}),
    ("A4-01", "4", "Maison France services", "réalisée", True, _COMMUNE, 400000, 100,
     "2023-03-15", "2024-06-30", [("État (DETR)", 160000, "acquis"), ("Commune", 240000, "acquis")],
     {"parcelles": [("in", "faubourg", 3)]}),
    ("A4-02", "4", "Extension de la médiathèque", "en réflexion", False, _COMMUNE, None, None, None, None,
     [], {}),
    ("A5-01", "5", "Pôle d'échanges multimodal de la gare", "projetée", True,
     "Communauté d'agglomération (fictive)", 2400000, None, "2026-01-01", "2028-12-31",
     [("Région", 800000, "sollicité"), ("SNCF Gares & Connexions", 600000, "prévisionnel"),
      ("Communauté d'agglomération", 400000, "prévisionnel")],
     {"secteur": "gare"}),
    ("A5-02", "5", "Liaison cyclable centre-ville – gare – lotissement du Moulin", "en cours", False,
     _COMMUNE, 350000, 40, "2024-05-01", "2025-10-31",
     [("Fonds mobilités actives", 140000, "acquis"), ("Commune", 210000, "acquis")],
     {"point": ("hors", ORT_ID, 1)}),
    ("A5-03", "5", "Rénovation énergétique de l'école du centre", "en réflexion", False, _COMMUNE, None,
     None, None, None, [], {}),
]
# fmt: on


@dataclass(frozen=True)
class DemoPlaces:
    """Where :func:`build_demo_places` wrote the fictional register and housing list."""

    register: Path
    housing: Path


def housing_path(data_dir: str | Path, code_insee: str) -> Path:
    """The demo social housing file of commune ``code_insee`` in ``data_dir``."""
    return Path(data_dir) / f"logements-sociaux-{code_insee}.csv"


def build_demo_places(perimeters_dir: str | Path, data_dir: str | Path, *, force: bool = False) -> DemoPlaces:
    """Write the fictional action register and social housing list of the demo convention.

    Parameters
    ----------
    perimeters_dir : path
        The demo convention folder (``convention.toml`` with ``fictif = true``, as written by
        :func:`geo.demo.commune.build_demo`); ``actions.toml`` is written there.
    data_dir : path
        The demo cadastre folder (``cadastre-<insee>-parcelles.json.gz``); the housing CSV
        is written there.
    force : bool
        Rewrite the files even when they exist.

    Returns
    -------
    DemoPlaces

    Raises
    ------
    geo.errors.InputError
        The convention is not fictional (no fictional data is ever written into a real
        convention), or lacks the demo sectors.
    """
    perimeters_dir, data_dir = Path(perimeters_dir), Path(data_dir)
    conv = read_convention(perimeters_dir)
    if not conv.fictif:
        raise InputError(
            "convention réelle : les données fictives de démonstration n'y sont jamais écrites",
            source=str(perimeters_dir),
            fix="donnez le dossier de la convention de démonstration (perimeters/demo)",
        )
    code = conv.communes[0]
    paths = DemoPlaces(perimeters_dir / REGISTER_FILE, housing_path(data_dir, code))
    if not force and paths.register.exists() and paths.housing.exists():
        return paths
    anchors = _Anchors.build(conv, data_dir)
    write_text(_register_toml(anchors), paths.register, force=True)
    write_text(_housing_csv(anchors, code), paths.housing, force=True)
    return paths


@dataclass
class _Anchors:
    """Parcels of the demo cadastre, by kind of place, in a fixed order."""

    parcels: gpd.GeoDataFrame
    ranked: dict[tuple[str, str], list[int]]

    @classmethod
    def build(cls, conv, data_dir: Path) -> _Anchors:
        parcels = load_cadastre(conv.communes, source_dir=data_dir)["parcelles"].reset_index(drop=True)
        last = conv.perimeters(version=conv.versions[-1].id)
        first = conv.perimeters(version=conv.versions[0].id, include_ort=False)
        missing = [s for s in SECTORS if s not in set(last["perimeter_id"])]
        if missing:
            raise InputError(
                f"secteur(s) {', '.join(missing)} absent(s) de la convention",
                source=str(conv.path),
                fix="régénérez la démonstration (python -m geo.demo data/demo perimeters/demo --force)",
            )
        res = classify_parcels(parcels, last, with_distance=False)
        status = res.pivot(index="idu", columns="perimeter_id", values="status").reindex(parcels["idu"])
        share = res.pivot(index="idu", columns="perimeter_id", values="share").reindex(parcels["idu"])
        before = classify_parcels(parcels, first, with_distance=False, only_intersecting=True)
        points = parcels.geometry.representative_point()
        idus = parcels["idu"].to_numpy()
        geoms = last.set_index("perimeter_id").geometry
        ranked: dict[tuple[str, str], list[int]] = {}
        for sector in (*SECTORS, ORT_ID):
            target = geoms[sector].representative_point()
            dist = np.round(points.distance(target).to_numpy(), 1)
            st = status[sector].to_numpy()
            masks = {
                "in": st == INSIDE,
                "cheval": (st == STRADDLING) & (np.abs(share[sector].to_numpy() - 0.5) < 0.2),
                "avenant": (st == INSIDE)
                & ~np.isin(idus, before.loc[before["perimeter_id"] == sector, "idu"].to_numpy()),
                "hors": (status.to_numpy() == OUTSIDE).all(axis=1)
                & (parcels.geometry.distance(geoms[ORT_ID]).to_numpy() > 40),
            }
            for kind, mask in masks.items():
                idx = np.nonzero(mask)[0]
                order = sorted(idx, key=lambda i: (dist[i], idus[i]))
                ranked[(kind, sector)] = [int(i) for i in order]
        return cls(parcels, ranked)

    def index(self, anchor: tuple[str, str, int]) -> int:
        kind, sector, rank = anchor
        found = self.ranked.get((kind, sector), [])
        if rank >= len(found):
            raise InputError(
                f"pas assez de parcelles « {kind} » dans le secteur {sector} pour la démonstration",
                fix="régénérez la démonstration (python -m geo.demo data/demo perimeters/demo --force)",
            )
        return found[rank]

    def idu(self, anchor: tuple[str, str, int]) -> str:
        return str(self.parcels["idu"].iloc[self.index(anchor)])

    def lonlat(self, anchor: tuple[str, str, int]) -> tuple[float, float]:
        pt = self.parcels.geometry.iloc[self.index(anchor)].representative_point()
        wgs = gpd.GeoSeries([pt], crs=self.parcels.crs).to_crs(WGS84).iloc[0]
        rounded = shapely.transform(wgs, lambda xy: np.round(xy, 6))
        return float(rounded.x), float(rounded.y)


def _housing_csv(anchors: _Anchors, code: str) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";", lineterminator="\n")
    writer.writerow(
        ["site_id", "bailleur", "programme", "logements", "annee", "code_insee", "adresse", "parcelles",
         "lon", "lat", "source"]
    )  # fmt: skip
    for site_id, bailleur, programme, logements, annee, anchor, how, adresse in _SITES:
        parcelles, lon, lat = "", "", ""
        if how == "parcelles":
            parcelles = anchors.idu(anchor)
        elif how == "point":
            x, y = anchors.lonlat(anchor)
            lon, lat = f"{x:.6f}", f"{y:.6f}"
        writer.writerow(
            [site_id, bailleur, f"{programme} (programme fictif)", "" if logements is None else logements,
             annee, code, f"{adresse}, Ormeval-sur-Mer", parcelles, lon, lat, FICTIF]
        )  # fmt: skip
    return buf.getvalue()


def _q(text: str) -> str:
    """A TOML basic string (JSON escaping is valid TOML)."""
    return json.dumps(text, ensure_ascii=False)


def _register_toml(anchors: _Anchors) -> str:
    lines = [
        "# Registre des actions FICTIF de la démonstration — généré par geo/demo_places.py.",
        "# Ormeval-sur-Mer n'existe pas : actions, montants, financeurs et lieux sont inventés.",
        "# Format : perimeters/ACTIONS.md.",
        "",
        f"titre = {_q('Plan d’action FICTIF de l’ORT d’Ormeval-sur-Mer (démonstration)')}",
        f"source = {_q(FICTIF)}",
        "date_maj = 2024-09-01",
        "",
        "[axes]",
        *(f"{k} = {_q(v)}" for k, v in _AXES.items()),
    ]
    for aid, axe, titre, statut, fiche, mo, budget, avanc, debut, fin, fins, loc in _ACTIONS:
        lines += [
            "",
            "[[actions]]",
            f"id = {_q(aid)}",
            f"titre = {_q(titre + ' (action fictive)')}",
            f"axe = {axe}",
            f"statut = {_q(statut)}",
            f"fiche_action = {'true' if fiche else 'false'}",
            f"maitre_ouvrage = {_q(mo)}",
        ]
        if budget is not None:
            lines.append(f"budget = {budget}")
        if avanc is not None:
            lines.append(f"avancement = {avanc}")
        if debut:
            lines += [f"date_debut = {debut}", f"date_fin = {fin}"]
        for financeur, montant, fstatut in fins:
            lines += [
                "",
                "[[actions.financements]]",
                f"financeur = {_q(financeur)}",
                f"montant = {montant}",
                f"statut = {_q(fstatut)}",
            ]
        if loc:
            lines += ["", "[actions.localisation]"]
            if "secteur" in loc:
                lines.append(f"secteur = {_q(loc['secteur'])}")
            if "parcelles" in loc:
                lines.append(f"parcelles = [{', '.join(_q(anchors.idu(a)) for a in loc['parcelles'])}]")
            if "point" in loc:
                lon, lat = anchors.lonlat(loc["point"])
                lines.append(f"point = [{lon:.6f}, {lat:.6f}]")
    return "\n".join(lines) + "\n"
