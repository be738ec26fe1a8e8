"""The demo commune's addresses, as its mairie would publish them: a Base Adresse Locale (BAL 1.4).

One address per parcel, on the street the parcel fronts (odd numbers on the north side of a
street, even on the south side, rising from west to east), its point 2 m inside the parcel in
the middle of its frontage (``position`` = ``entrée``) and linked to it by ``cad_parcelles``, as
a real BAL links an address to its Etalab parcel ids. The columns and their order are those of
the BAL 1.4 exports (``../shared/data/ban-bal-sample`` shows a real one); the ``uid_adresse``
column stays empty, as in a BAL not yet sent to the Base Adresse Nationale.

Every street name is fictional, like the commune; the file reads with
:func:`geo.sources.addresses.read_addresses`, so the demo's address search works offline
(``ort check "12 rue Jean Jaurès, 62999 Ormeval-sur-Mer" --perimeters demo``, the map's search).
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable

import geopandas as gpd
from shapely.geometry import Point

from geo.projection import LAMBERT93, WGS84

#: The commune's name as the BAL writes it (without the "commune fictive" of the cadastre).
COMMUNE_NOM = "Ormeval-sur-Mer"
#: The BAL's last update, fixed so that two builds give the same bytes.
DATE_DER_MAJ = "2024-01-15"
#: Streets from south to north, one per street line of the town (index of the street line).
STREET_NAMES = (
    "Chemin des Oyats",
    "Rue des Dunes",
    "Rue du Moulin",
    "Rue des Tilleuls",
    "Rue Pasteur",
    "Rue des Écoles",
    "Rue Gambetta",
    "Rue Saint-Pierre",
    "Rue Victor Hugo",
    "Rue Jean Jaurès",
    "Grande Rue",
    "Rue de l'Église",
    "Rue des Mouettes",
    "Avenue de la Gare",
    "Rue des Quais",
    "Rue du Phare",
    "Rue des Filets",
    "Boulevard de la Plage",
    "Chemin de la Falaise",
)
#: The columns of a BAL 1.4 export, in order.
BAL_COLUMNS = (
    "uid_adresse",
    "cle_interop",
    "commune_insee",
    "commune_nom",
    "commune_deleguee_insee",
    "commune_deleguee_nom",
    "voie_nom",
    "lieudit_complement_nom",
    "numero",
    "suffixe",
    "position",
    "x",
    "y",
    "long",
    "lat",
    "cad_parcelles",
    "source",
    "date_der_maj",
    "certification_commune",
)


def address_file_name(code_insee: str) -> str:
    """The name of a commune's address file in the embedded data: ``adresses-62999.csv.gz``."""
    return f"adresses-{code_insee}.csv.gz"


def gzipped(text: str) -> bytes:
    """``text`` in UTF-8, gzipped without a file name or time: the same bytes every build."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
        gz.write(text.encode("utf-8"))
    return buf.getvalue()


def bal_csv(parcels: gpd.GeoDataFrame, warp: Callable, *, code_insee: str) -> str:
    """The BAL 1.4 CSV (``;``-separated, UTF-8) of the demo's parcels.

    Parameters
    ----------
    parcels : GeoDataFrame
        The town's parcels with ``section``, ``numero`` (unpadded), ``street`` (index of the
        street line), ``side`` (``"odd"`` or ``"even"``) and ``door`` (local metres).
    warp : callable
        Local metres → Lambert-93 (EPSG:2154) geometry, the one the cadastre was drawn with.
    code_insee : str
        The commune's INSEE code.
    """
    rows = []
    for (street, side), group in parcels.groupby(["street", "side"], sort=True):
        group = group.assign(_x=[d[0] for d in group["door"]]).sort_values("_x", kind="stable")
        first = 1 if side == "odd" else 2
        for k, (_, parcel) in enumerate(group.iterrows()):
            rows.append((int(street), first + 2 * k, parcel))
    doors = gpd.GeoSeries([warp(Point(p["door"])) for _, _, p in rows], crs=LAMBERT93)
    wgs = doors.to_crs(WGS84)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(BAL_COLUMNS)
    for (street, number, parcel), l93, lonlat in zip(rows, doors, wgs, strict=True):
        idu = f"{code_insee}000{parcel['section'].zfill(2)}{parcel['numero'].zfill(4)}"
        writer.writerow(
            (
                "",
                f"{code_insee}_{street + 1:04d}_{number:05d}",
                code_insee,
                COMMUNE_NOM,
                "",
                "",
                STREET_NAMES[street],
                "",
                number,
                "",
                "entrée",
                f"{l93.x:.2f}",
                f"{l93.y:.2f}",
                f"{lonlat.x:.6f}",
                f"{lonlat.y:.6f}",
                idu,
                "Données fictives de démonstration (geo/demo)",
                DATE_DER_MAJ,
                "0",
            )
        )
    return out.getvalue()
