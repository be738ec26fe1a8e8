"""Background tiles: named presets (Plan IGN, IGN orthophoto, OpenStreetMap) for the map and the annex.

The IGN layers come from the Géoplateforme WMTS (``https://data.geopf.fr/wmts``, KVP
``GetTile`` in the Web Mercator matrix set ``PM``, documented by IGN "Service Géoplateforme
d'images tuilées WMTS"), open licence (Licence Ouverte Etalab 2.0); OpenStreetMap tiles come
from ``tile.openstreetmap.org`` (data ODbL, "© les contributeurs d'OpenStreetMap").

The interactive map loads them in the browser (and says so on the map when they fail);
the annex fetches the few tiles of each page once into the download cache
(:func:`geo.sources.http.download`, ``{settings.cache_dir}/tuiles/{fond}/{z}/{x}/{y}``) and
warps them into the page's metric CRS; offline without them, the annex is drawn without
background and says so (:func:`background_image` returns the reason).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geo import settings
from geo.errors import InputError, OrtError

_WMTS = (
    "https://data.geopf.fr/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER={layer}&STYLE=normal"
    "&FORMAT={fmt}&TILEMATRIXSET=PM&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}"
)


@dataclass(frozen=True)
class Background:
    """A named background: tile URL template (``{z}/{x}/{y}``), attribution, zoom range."""

    key: str
    label: str
    url: str
    attribution: str
    attribution_html: str
    max_native_zoom: int = 19
    extension: str = "png"


BACKGROUNDS: dict[str, Background] = {
    "plan-ign": Background(
        "plan-ign",
        "Plan IGN",
        _WMTS.format(layer="GEOGRAPHICALGRIDSYSTEMS.PLANIGNV2", fmt="image/png"),
        "Plan IGN © IGN – Géoplateforme (Licence Ouverte Etalab 2.0)",
        '<a href="https://www.ign.fr/">Plan IGN © IGN</a> – Géoplateforme',
        19,
        "png",
    ),
    "ortho-ign": Background(
        "ortho-ign",
        "Photographies aériennes IGN",
        _WMTS.format(layer="ORTHOIMAGERY.ORTHOPHOTOS", fmt="image/jpeg"),
        "Orthophotographies © IGN – Géoplateforme (Licence Ouverte Etalab 2.0)",
        '<a href="https://www.ign.fr/">Orthophotographies © IGN</a> – Géoplateforme',
        19,
        "jpg",
    ),
    "osm": Background(
        "osm",
        "OpenStreetMap",
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "© les contributeurs d'OpenStreetMap (ODbL)",
        '© <a href="https://www.openstreetmap.org/copyright">les contributeurs d\'OpenStreetMap</a>',
        19,
        "png",
    ),
}


def background(name: str, attribution: str | None = None) -> Background:
    """A preset by name, or a custom ``{z}/{x}/{y}`` URL template (with its attribution).

    Raises
    ------
    InputError
        An unknown name that is not a URL template either.
    """
    if name in BACKGROUNDS:
        return BACKGROUNDS[name]
    if name.startswith(("http://", "https://")) and all(k in name for k in ("{z}", "{x}", "{y}")):
        from urllib.parse import urlparse

        text = attribution or urlparse(name).netloc or "tuiles"
        return Background("personnalise", "Fond de carte", name, text, _escape(text), 19, "png")
    raise InputError(
        f"fond de carte inconnu : {name!r}",
        fix=f"choisissez {', '.join(BACKGROUNDS)} ou un modèle d'URL https://…/{{z}}/{{x}}/{{y}}.png",
    )


def _escape(text: str) -> str:
    import html

    return html.escape(text)


# --------------------------------------------------------------------------------------------
# Tiles for the annex (Web Mercator, EPSG:3857)

_R = 6378137.0
_ORIGIN = math.pi * _R


def _tile_of(x: float, y: float, z: int) -> tuple[int, int]:
    n = 2**z
    size = 2 * _ORIGIN / n
    return int((x + _ORIGIN) // size), int((_ORIGIN - y) // size)


def tile_path(bg: Background, z: int, x: int, y: int) -> Path:
    """Where one tile is cached."""
    return Path(settings.cache_dir, "tuiles", bg.key, str(z), str(x), f"{y}.{bg.extension}")


def fetch_tile(bg: Background, z: int, x: int, y: int) -> Path:
    """One tile, downloaded once into the cache (offline: from the cache only)."""
    from geo.errors import DownloadError
    from geo.sources import http

    dest = tile_path(bg, z, x, y)
    if dest.exists():
        return dest
    url = bg.url.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))
    if settings.offline:
        raise DownloadError(f"tuile {z}/{x}/{y} absente du cache ({dest}) et mode hors ligne")
    return http.download(url, dest)


def background_image(
    bg: Background, extent: tuple[float, float, float, float], crs, *, width_px: int, max_tiles: int = 64
) -> tuple[np.ndarray | None, str | None]:
    """The background of a map extent, warped into its metric CRS.

    Parameters
    ----------
    bg : Background
    extent : tuple
        ``(minx, miny, maxx, maxy)`` in ``crs`` (metres).
    crs : CRS-like
        The page's metric CRS.
    width_px : int
        Width of the image to produce (its height follows the extent's aspect).
    max_tiles : int
        Refuse more tiles than this (the zoom is lowered until it fits).

    Returns
    -------
    (image, None) or (None, reason)
        An RGB(A) array covering ``extent`` (row 0 at the top), or the French reason why
        there is none (tiles unreachable offline, server error).
    """
    from PIL import Image
    from pyproj import Transformer

    minx, miny, maxx, maxy = extent
    height_px = max(1, round(width_px * (maxy - miny) / (maxx - minx)))
    to_merc = Transformer.from_crs(crs, "EPSG:3857", always_xy=True)
    xs = np.linspace(minx, maxx, width_px)
    ys = np.linspace(maxy, miny, height_px)
    gx, gy = np.meshgrid(xs, ys)
    mx, my = to_merc.transform(gx.ravel(), gy.ravel())
    mx, my = np.asarray(mx), np.asarray(my)
    res = (mx.max() - mx.min()) / width_px  # metres per output pixel
    z = int(min(bg.max_native_zoom, max(0, math.ceil(math.log2(2 * _ORIGIN / (256 * res))))))
    while True:
        x0, y0 = _tile_of(mx.min(), my.max(), z)
        x1, y1 = _tile_of(mx.max(), my.min(), z)
        if (x1 - x0 + 1) * (y1 - y0 + 1) <= max_tiles or z == 0:
            break
        z -= 1
    mosaic = np.zeros(((y1 - y0 + 1) * 256, (x1 - x0 + 1) * 256, 3), dtype=np.uint8)
    try:
        for tx in range(x0, x1 + 1):
            for ty in range(y0, y1 + 1):
                path = fetch_tile(bg, z, tx, ty)
                try:
                    with Image.open(path) as im:
                        tile = np.asarray(im.convert("RGB").resize((256, 256)))
                except OSError:
                    path.unlink(missing_ok=True)
                    raise OrtError(f"tuile {z}/{tx}/{ty} illisible (ce n'est pas une image)") from None
                mosaic[(ty - y0) * 256 : (ty - y0 + 1) * 256, (tx - x0) * 256 : (tx - x0 + 1) * 256] = tile
    except OrtError as err:
        return None, f"fond « {bg.label} » indisponible ({_short(err)}) : annexe produite sans fond de plan"
    size = 2 * _ORIGIN / 2**z / 256  # metres per mosaic pixel
    col = np.clip(((mx + _ORIGIN) / size - x0 * 256).astype(int), 0, mosaic.shape[1] - 1)
    row = np.clip(((_ORIGIN - my) / size - y0 * 256).astype(int), 0, mosaic.shape[0] - 1)
    image = mosaic[row, col].reshape(height_px, width_px, 3)
    return image, None


def _short(err: Exception) -> str:
    text = " ".join(str(err).split())
    return text if len(text) < 140 else text[:137] + "…"
