"""How perimeters and parcels are coloured on every map: the web map, the annex and the note.

Light on purpose (no folium, no geopandas): the note (``ort note``, ``ort serve``) and the
annex draw with these colours without loading the web map's libraries.
"""

from __future__ import annotations

from geo.classify import INSIDE, OUTSIDE, STRADDLING

__all__ = [
    "CADASTRE_MENTION", "CENTRE_VILLE_COLOUR", "OPAH_RU_COLOUR", "OTHER_PERIMETER_COLOUR",
    "SECTOR_COLOURS", "STATUS_COLOURS", "perimeter_colours", "perimeter_style",
]  # fmt: skip

#: Fill colour of parcels by status against the ORT.
STATUS_COLOURS = {INSIDE: "#4daf4a", STRADDLING: "#ffd92f", OUTSIDE: "#e8e8e8"}

#: Mention required on every map drawn over the cadastre.
CADASTRE_MENTION = "Fond de plan : DGFiP cadastre (Etalab) — mesures données à titre indicatif"

#: Stroke colour of the centre-ville sector, of the other sectors in turn, of OPAH-RU and others.
CENTRE_VILLE_COLOUR = "#e41a1c"
SECTOR_COLOURS = ("#377eb8", "#984ea3", "#a65628", "#f781bf", "#17becf", "#4d4d4d")
OPAH_RU_COLOUR = "#ff7f00"
OTHER_PERIMETER_COLOUR = "#666666"


def perimeter_style(row, index_among_sectors: int) -> dict:
    """Leaflet path options of a perimeter row (also the annex's colours).

    Parameters
    ----------
    row : mapping
        A perimeter row with ``type`` and optional ``centre_ville``.
    index_among_sectors : int
        Rank of this sector among the sectors that are not the centre-ville one (picks its
        colour in :data:`SECTOR_COLOURS`).

    Returns
    -------
    dict
        ``color``, ``weight``, ``fillColor`` and, for dashed outlines, ``dashArray``.
    """
    ptype = row.get("type")
    if ptype == "opah_ru":
        return {"color": OPAH_RU_COLOUR, "weight": 3, "dashArray": "8 5", "fillColor": OPAH_RU_COLOUR}
    if ptype == "secteur" and bool(row.get("centre_ville")):
        return {"color": CENTRE_VILLE_COLOUR, "weight": 4, "fillColor": CENTRE_VILLE_COLOUR}
    if ptype == "secteur":
        c = SECTOR_COLOURS[index_among_sectors % len(SECTOR_COLOURS)]
        return {"color": c, "weight": 3, "fillColor": c}
    return {
        "color": OTHER_PERIMETER_COLOUR,
        "weight": 2,
        "dashArray": "2 4",
        "fillColor": OTHER_PERIMETER_COLOUR,
    }


def perimeter_colours(perimeters) -> dict[str, dict]:
    """Style of each perimeter id (the ``ort`` union row excluded).

    Parameters
    ----------
    perimeters : DataFrame
        Perimeter rows with ``perimeter_id``, ``type`` and optional ``centre_ville``, in order.

    Returns
    -------
    dict
        ``perimeter_id`` → :func:`perimeter_style` options.
    """
    out, n = {}, 0
    for _, row in perimeters.iterrows():
        if row.get("type") == "ort":
            continue
        out[row["perimeter_id"]] = perimeter_style(row, n)
        if row.get("type") == "secteur" and not bool(row.get("centre_ville")):
            n += 1
    return out
