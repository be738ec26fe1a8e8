"""The embedded demo: a fictional commune, its cadastre and its ORT convention, built in code.

*Ormeval-sur-Mer* (INSEE ``62999``, a code no real commune has) lies in the Channel off the
Côte d'Opale, so it can never be mistaken for a real place. :func:`build_demo` writes

- ``data/demo/cadastre-62999-{parcelles,sections,communes,batiments}.json.gz`` in the Etalab
  format (WGS84, 7 decimals, unpadded section and numéro, like the real files),
- ``data/demo/adresses-62999.csv.gz``: the commune's addresses in the BAL 1.4 format (one per
  parcel, on the street it fronts, linked to it by ``cad_parcelles``), and
- ``perimeters/demo/``: ``convention.toml`` (``fictif = true``), two versions of the
  perimeters (the initial convention and an avenant that enlarges the *Gare* sector) and a
  sample spreadsheet of parcel ids with deliberate mistakes.

Everything is generated from a fixed seed: two builds give byte-identical files.

>>> from geo.demo.commune import DEMO_INSEE, DEMO_NAME
>>> DEMO_INSEE, DEMO_NAME
('62999', 'Ormeval-sur-Mer (commune fictive)')
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from geo.demo.addresses import address_file_name, bal_csv, gzipped
from geo.demo.places import build_demo_places
from geo.io import write_bytes, write_text
from geo.projection import LAMBERT93, WGS84

DEMO_INSEE = "62999"
DEMO_NAME = "Ormeval-sur-Mer (commune fictive)"
DEMO_SLUG = "demo"
#: Lambert-93 position of the town centre (at sea, west of Boulogne-sur-Mer).
ORIGIN = (540_000.0, 7_090_000.0)
_SEED = 62999
_STREET = 6.0  # half-width of a street, metres
_SECTIONS = {  # zone → section code (Etalab writes single letters unpadded)
    ("inner", "N"): "AB",
    ("inner", "S"): "AC",
    ("mid", "NE"): "A",
    ("mid", "NW"): "B",
    ("mid", "SW"): "C",
    ("mid", "SE"): "D",
    ("outer", "N"): "ZA",
    ("outer", "S"): "ZB",
}


@dataclass(frozen=True)
class DemoPaths:
    """Where :func:`build_demo` wrote the demo."""

    data_dir: Path
    perimeters_dir: Path
    layers: dict[str, Path] = field(default_factory=dict)
    convention: Path = Path()
    sample_ids: Path = Path()
    addresses: Path = Path()


def build_demo(*, data_dir: str | Path, perimeters_dir: str | Path, force: bool = False) -> DemoPaths:
    """Write the demo cadastre and convention, unless they are already there.

    Parameters
    ----------
    data_dir : path
        Where the cadastre and the social housing list go (``data/demo`` in the repository,
        which ships in the package).
    perimeters_dir : path
        Where the convention goes (``perimeters/demo`` in the repository).
    force : bool
        Rewrite the files even when they exist.

    Returns
    -------
    DemoPaths
    """
    data_dir, perimeters_dir = Path(data_dir), Path(perimeters_dir)
    layers = {name: data_dir / f"cadastre-{DEMO_INSEE}-{name}.json.gz" for name in _LAYER_NAMES}
    paths = DemoPaths(
        data_dir=data_dir,
        perimeters_dir=perimeters_dir,
        layers=layers,
        convention=perimeters_dir / "convention.toml",
        sample_ids=perimeters_dir / "parcelles-exemple.csv",
        addresses=data_dir / address_file_name(DEMO_INSEE),
    )
    addresses = paths.addresses
    wanted = [*layers.values(), addresses, paths.convention, paths.sample_ids]
    if not force and all(p.exists() for p in wanted):
        build_demo_places(perimeters_dir, data_dir)
        return paths
    town = _Town.generate()
    for name, gdf in town.layers().items():
        write_bytes(_etalab_geojson_gz(gdf), layers[name], force=True)
    write_bytes(gzipped(bal_csv(town.parcels, _warp, code_insee=DEMO_INSEE)), addresses, force=True)
    rel = Path(_relpath(data_dir, perimeters_dir))
    write_text(_convention_toml(rel), paths.convention, force=True)
    for version, sectors in _versions().items():
        write_text(_perimeters_geojson(sectors), perimeters_dir / f"perimetres-{version}.geojson", force=True)
    write_text(_sample_csv(town), paths.sample_ids, force=True)
    build_demo_places(perimeters_dir, data_dir, force=True)
    return paths


_LAYER_NAMES = ("parcelles", "sections", "communes", "batiments")


def _relpath(target: Path, start: Path) -> str:
    import os

    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()


# --- the town ----------------------------------------------------------------------------------


def _warp(geom):
    """Local (x, y) metres → Lambert-93: a gentle rotation and bend so streets are not a grid."""
    geom = shapely.segmentize(geom, 25.0)

    def f(xy: np.ndarray) -> np.ndarray:
        x, y = xy[:, 0], xy[:, 1]
        x2 = x + 14.0 * np.sin(y / 210.0)
        y2 = y + 9.0 * np.sin(x / 260.0)
        a = math.radians(11.0)
        return np.column_stack(
            (ORIGIN[0] + x2 * math.cos(a) - y2 * math.sin(a), ORIGIN[1] + x2 * math.sin(a) + y2 * math.cos(a))
        )

    return shapely.transform(geom, f)


def _zone(x: float, y: float) -> tuple[str, str]:
    d = math.hypot(x, y)
    if d < 450:
        return ("inner", "N" if y >= 0 else "S")
    if d < 850:
        return ("mid", ("N" if y >= 0 else "S") + ("E" if x >= 0 else "W"))
    return ("outer", "N" if y >= 0 else "S")


def _axis(rng: np.random.Generator, limit: float) -> list[float]:
    """Street positions along one axis: dense in the centre, wider apart outside."""
    pos = [0.0]
    for sign in (1, -1):
        p = 0.0
        while abs(p) < limit:
            step = 85.0 + 0.09 * abs(p) + rng.uniform(-12, 12)
            p += sign * step
            pos.append(p)
    return sorted(pos)


@dataclass
class _Town:
    parcels: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame

    @classmethod
    def generate(cls) -> _Town:
        rng = np.random.default_rng(_SEED)
        xs, ys = _axis(rng, 1250), _axis(rng, 1050)
        parcels, cells, buildings = [], [], []
        for i in range(len(xs) - 1):
            for j in range(len(ys) - 1):
                x0, x1, y0, y1 = xs[i], xs[i + 1], ys[j], ys[j + 1]
                cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
                if (cx / 1250) ** 2 + (cy / 1050) ** 2 > 1.0:
                    continue
                zone = _zone(cx, cy)
                cells.append((_SECTIONS[zone], box(x0, y0, x1, y1)))
                block = (x0 + _STREET, y0 + _STREET, x1 - _STREET, y1 - _STREET)
                for geom, built in _subdivide(block, zone[0], rng):
                    parcels.append((_SECTIONS[zone], geom, _front(geom, block, j)))
                    if built is not None:
                        buildings.append(built)
        # Number parcels per section from north-west to south-east, as a cadastre would.
        order = sorted(
            range(len(parcels)),
            key=lambda k: (parcels[k][0], -round(parcels[k][1].centroid.y, -1), parcels[k][1].centroid.x),
        )
        counters: dict[str, int] = {}
        rows = []
        for k in order:
            section, geom, (street, side, door) = parcels[k]
            counters[section] = counters.get(section, 0) + 1
            rows.append(
                {
                    "section": section,
                    "numero": str(counters[section]),
                    "geometry": _warp(geom),
                    # where its address is: the street it fronts, which side, the door (local metres)
                    "street": street,
                    "side": side,
                    "door": door,
                }
            )
        parcel_gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs=LAMBERT93)
        cell_gdf = gpd.GeoDataFrame(
            {"section": [s for s, _ in cells]}, geometry=[_warp(g) for _, g in cells], crs=LAMBERT93
        )
        build_gdf = gpd.GeoDataFrame(geometry=[_warp(g) for g in buildings], crs=LAMBERT93)
        return cls(parcel_gdf, cell_gdf, build_gdf)

    def layers(self) -> dict[str, gpd.GeoDataFrame]:
        p = self.parcels
        idu = [
            f"{DEMO_INSEE}000{s.zfill(2)}{n.zfill(4)}" for s, n in zip(p["section"], p["numero"], strict=True)
        ]
        area = p.geometry.area.round().astype(int)
        parcelles = gpd.GeoDataFrame(
            {
                "id": idu,
                "commune": DEMO_INSEE,
                "prefixe": "000",
                "section": p["section"],
                "numero": p["numero"],
                "contenance": area,
                "arpente": False,
                "created": "2019-03-01",
                "updated": "2023-01-01",
            },
            geometry=p.geometry,
            crs=LAMBERT93,
        )
        sec = self.cells.dissolve("section", as_index=False).sort_values("section")
        sections = gpd.GeoDataFrame(
            {
                "id": [f"{DEMO_INSEE}000{s.zfill(2)}" for s in sec["section"]],
                "commune": DEMO_INSEE,
                "prefixe": "000",
                "code": sec["section"].to_numpy(),
                "created": "2019-03-01",
                "updated": "2023-01-01",
            },
            geometry=sec.geometry.to_numpy(),
            crs=LAMBERT93,
        )
        outline = shapely.union_all(self.cells.geometry.to_numpy())
        communes = gpd.GeoDataFrame(
            {"id": [DEMO_INSEE], "nom": [DEMO_NAME], "created": ["2019-03-01"], "updated": ["2023-01-01"]},
            geometry=[outline],
            crs=LAMBERT93,
        )
        batiments = gpd.GeoDataFrame(
            {
                "type": "01",
                "nom": None,
                "commune": DEMO_INSEE,
                "created": "2019-03-01",
                "updated": "2023-01-01",
            },
            geometry=self.buildings.geometry,
            index=self.buildings.index,
            crs=LAMBERT93,
        )
        return {"parcelles": parcelles, "sections": sections, "communes": communes, "batiments": batiments}


def _front(geom, block, j: int) -> tuple[int, str, tuple[float, float]]:
    """The street a parcel of the block between streets ``j`` and ``j + 1`` opens onto.

    ``(street index, side, door)``: a parcel touching the block's south edge fronts street
    ``j`` from the north (odd numbers), else street ``j + 1`` from the south (even numbers); the
    door is 2 m inside the parcel, in the middle of its frontage (local metres).
    """
    x_min, y_min, x_max, y_max = geom.bounds
    middle = (x_min + x_max) / 2
    if abs(y_min - block[1]) < 1e-6:
        return j, "odd", (middle, y_min + 2.0)
    return j + 1, "even", (middle, y_max - 2.0)


def _subdivide(block, ring: str, rng: np.random.Generator):
    """Cut a block into parcels (and a building on each built one), in local metres."""
    x0, y0, x1, y1 = block
    w, h = x1 - x0, y1 - y0
    if w <= 5 or h <= 5:
        return
    if ring == "outer":
        cuts = int(rng.integers(1, 4))
        edges = np.linspace(x0, x1, cuts + 1)
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            yield box(a, y0, b, y1), None
        return
    if rng.uniform() < 0.06:  # a school, a park, a car park: one large parcel
        yield box(x0, y0, x1, y1), None
        return
    front = (7.5, 13.0) if ring == "inner" else (12.0, 22.0)
    rows = [(y0, y0 + h / 2, "S"), (y0 + h / 2, y1, "N")] if h > 44 else [(y0, y1, "S")]
    for ya, yb, facing in rows:
        x = x0
        while x < x1 - 1e-6:
            step = rng.uniform(*front)
            xb = x1 if x1 - (x + step) < front[0] else x + step
            depth = rng.uniform(9.0, 14.0) if ring == "inner" else rng.uniform(8.0, 11.0)
            margin = 0.0 if ring == "inner" else 2.0
            if facing == "S":
                bb = (x + margin, ya, xb - margin, min(yb, ya + depth))
            else:
                bb = (x + margin, max(ya, yb - depth), xb - margin, yb)
            building = box(*bb) if bb[2] - bb[0] > 3 and bb[3] - bb[1] > 3 else None
            yield box(x, ya, xb, yb), building
            x = xb


# --- the convention ----------------------------------------------------------------------------


def _poly(points, holes=()) -> Polygon:
    return Polygon(points, holes)


_CENTRE = _poly([(-330, -260), (300, -300), (385, 40), (250, 330), (-200, 365), (-385, 100)])
_GARE_1 = _poly([(430, -200), (700, -225), (725, 150), (440, 175)])
_GARE_2 = _poly([(430, -200), (700, -225), (905, -160), (925, 250), (725, 265), (440, 175)])
_FAUBOURG = MultiPolygon(
    [
        _poly(
            [(-955, -300), (-455, -325), (-430, 350), (-905, 385)],
            [[(-785, -105), (-785, 95), (-605, 95), (-605, -105)]],
        ),
        _poly([(-250, -755), (250, -765), (265, -455), (-240, -435)]),
    ]
)
_OPAH = _poly([(-250, -200), (220, -225), (285, 50), (185, 260), (-150, 285), (-300, 80)])


def _versions() -> dict[str, list[dict]]:
    def sectors(gare) -> list[dict]:
        return [
            {
                "id": "centre-ville",
                "type": "secteur",
                "nom": "Centre-ville",
                "centre_ville": True,
                "geom": _CENTRE,
            },
            {
                "id": "gare",
                "type": "secteur",
                "nom": "Quartier de la gare",
                "centre_ville": False,
                "geom": gare,
            },
            {
                "id": "faubourg",
                "type": "secteur",
                "nom": "Faubourg",
                "centre_ville": False,
                "geom": _FAUBOURG,
            },
            {
                "id": "opah-ru-centre",
                "type": "opah_ru",
                "nom": "OPAH-RU du centre ancien",
                "date_debut": "2024-01-01",
                "date_fin": "2028-12-31",
                "geom": _OPAH,
            },
        ]

    return {"initiale": sectors(_GARE_1), "avenant-1": sectors(_GARE_2)}


def _convention_toml(cadastre_dir: Path) -> str:
    return f"""# Convention ORT FICTIVE de démonstration — générée par `ort demo` (geo/demo.py).
# Ormeval-sur-Mer n'existe pas : le code INSEE {DEMO_INSEE} n'est attribué à aucune commune.
nom = "ORT d'Ormeval-sur-Mer (démonstration)"
programme = "PVD"
communes = ["{DEMO_INSEE}"]
date_signature = 2023-03-15
duree_ans = 5
fictif = true
crs = "EPSG:4326"
source = "Données fictives générées par geo/demo.py"
cadastre_dir = "{cadastre_dir.as_posix()}"
communes_noms = {{ "{DEMO_INSEE}" = "Ormeval-sur-Mer" }}

[edition]
reference = "ORT-DEMO-2023-01"
service = "Service urbanisme — mairie d'Ormeval-sur-Mer (fictive)"
contact = "urbanisme@ormeval-sur-mer.example — 03 21 00 00 00"
signataire = "Pour le maire, l'adjoint délégué à l'urbanisme"
annexe = "1"
visas = ["Le maire d'Ormeval-sur-Mer", "Le préfet du Pas-de-Calais"]

[[versions]]
id = "initiale"
libelle = "Convention initiale"
date_effet = 2023-03-15
fichier = "perimetres-initiale.geojson"

[[versions]]
id = "avenant-1"
libelle = "Avenant n°1 — extension du quartier de la gare"
date_effet = 2024-07-01
fichier = "perimetres-avenant-1.geojson"
"""


def _round_coords(geom, ndigits: int = 7):
    return shapely.transform(geom, lambda xy: np.round(xy, ndigits))


def _feature_lines(gdf: gpd.GeoDataFrame, props: list[dict]) -> str:
    wgs = gdf.to_crs(WGS84)
    lines = []
    for prop, geom in zip(props, wgs.geometry, strict=True):
        geometry = shapely.geometry.mapping(_round_coords(geom))
        lines.append(
            json.dumps({"type": "Feature", "properties": prop, "geometry": geometry}, ensure_ascii=False)
        )
    return '{"type": "FeatureCollection", "features": [\n' + ",\n".join(lines) + "\n]}\n"


def _perimeters_geojson(features: list[dict]) -> str:
    props = [{k: v for k, v in f.items() if k != "geom"} for f in features]
    gdf = gpd.GeoDataFrame(geometry=[_warp(f["geom"]) for f in features], crs=LAMBERT93)
    return _feature_lines(gdf, props)


def _etalab_geojson_gz(gdf: gpd.GeoDataFrame) -> bytes:
    props = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in gdf.drop(columns="geometry").to_dict("records")
    ]
    for p in props:
        for k, v in p.items():
            if isinstance(v, np.integer):
                p[k] = int(v)
            elif isinstance(v, np.bool_):
                p[k] = bool(v)
    text = _feature_lines(gdf, props)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
        gz.write(text.encode("utf-8"))
    return buf.getvalue()


def _sample_csv(town: _Town) -> str:
    """~30 ids a planner might paste: inside, straddling, outside, short forms and two mistakes."""
    from geo.classify import classify_parcels

    layers = town.layers()
    parcels = layers["parcelles"].rename(columns={"id": "idu"})
    perims = gpd.GeoDataFrame(
        [{"perimeter_id": f["id"], "type": f["type"], "nom": f["nom"]} for f in _versions()["avenant-1"]],
        geometry=[_warp(f["geom"]) for f in _versions()["avenant-1"]],
        crs=LAMBERT93,
    )
    before = gpd.GeoDataFrame(
        [{"perimeter_id": "gare", "type": "secteur", "nom": "gare"}], geometry=[_warp(_GARE_1)], crs=LAMBERT93
    )
    res = classify_parcels(parcels, perims)
    res_before = classify_parcels(parcels, before)

    def pick(pid: str, status: str, n: int, exclude=()) -> list[str]:
        rows = res[(res.perimeter_id == pid) & (res.status == status) & ~res.idu.isin(exclude)]
        ids = sorted(rows.idu.unique())
        step = max(1, len(ids) // n)
        return ids[::step][:n]

    gained = set(res_before[res_before.status == "inside"].idu)
    rows: list[tuple[str, str]] = []
    rows += [(i, "centre-ville : inclus") for i in pick("centre-ville", "inside", 7)]
    rows += [(i, "centre-ville : à cheval sur la limite") for i in pick("centre-ville", "straddling", 4)]
    rows += [(i, "quartier de la gare (depuis la convention initiale)") for i in sorted(gained)[::7][:3]]
    added = sorted(set(res[(res.perimeter_id == "gare") & (res.status == "inside")].idu) - gained)
    rows += [(i, "ajoutée au secteur gare par l'avenant n°1") for i in added[::5][:4]]
    rows += [(i, "faubourg") for i in pick("faubourg", "inside", 4)]
    outside = set(res[res.status != "outside"].idu)
    far = sorted(set(parcels.idu) - outside)
    rows += [(i, "hors ORT") for i in far[:: max(1, len(far) // 4)][:4]]
    short = pick("opah-ru-centre", "inside", 2, exclude=[r[0] for r in rows])
    rows += [(f"{i[8:10].lstrip('0')} {int(i[10:])}", "forme courte (section numéro)") for i in short[:1]]
    rows += [(f"{i[8:10].lower()}{i[10:]}", "forme courte en minuscules") for i in short[1:2]]
    rows += [("62999000ZZ0001", "erreur volontaire : section inconnue")]
    rows += [("629990OOAB0012", "erreur volontaire : lettre O au lieu du chiffre 0")]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["idu", "commentaire"])
    writer.writerows(rows)
    return out.getvalue()
