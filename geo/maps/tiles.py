"""Background tiles: named presets (Plan IGN, IGN orthophoto, OpenStreetMap) for the map and the annex.

The presets' URLs and zoom ranges come from ``xyzservices`` (installed with folium), not kept
by hand: the IGN layers ``GeoportailFrance.plan`` and ``GeoportailFrance.orthos`` (Géoplateforme
WMTS ``https://data.geopf.fr/wmts``, KVP ``GetTile``, Web Mercator matrix set), open licence
(Licence Ouverte Etalab 2.0), and ``OpenStreetMap.Mapnik`` (``tile.openstreetmap.org``, data
ODbL). Their attributions are written here in French, naming the licence.

The interactive map loads them in the browser (and says so on the map when they fail);
the annex fetches the few tiles of each page once into the cache
(``{settings.cache_dir}/tuiles/{fond}-{hash of the URL}/{z}/{x}/{y}``: one folder per server, so
a custom URL never shows another server's tiles) and warps them into the page's metric CRS.
A tile is bounded (:data:`MAX_TILE_PIXELS`, :data:`MAX_TILE_BYTES`) and checked before it enters
the cache; all the tiles of an annex share one deadline (:class:`TileBudget`). Offline, late, or
with a refused tile, the page is drawn without background and says so (:func:`background_image`
returns the reason).
"""

from __future__ import annotations

import hashlib
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xyzservices.providers as xyz

from geo import settings
from geo.errors import InputError, OrtError


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


def _preset(provider, key: str, label: str, attribution: str, attribution_html: str, extension: str):
    """A preset whose URL and zoom range come from its ``xyzservices`` provider.

    The attribution stays ours, in French and naming the licence (the provider's is English
    and, for the IGN layers, names only the portal).
    """
    url = provider.build_url()  # {z}/{x}/{y} left as placeholders; no API key in these URLs
    if "{apikey}" in url or not all(k in url for k in ("{z}", "{x}", "{y}")):  # pragma: no cover
        raise OrtError(f"le fond {key} de xyzservices n'est pas un modèle d'URL de tuiles utilisable")
    return Background(
        key, label, url, attribution, attribution_html, int(provider.get("max_zoom", 19)), extension
    )


BACKGROUNDS: dict[str, Background] = {
    "plan-ign": _preset(
        xyz.GeoportailFrance.plan,
        "plan-ign",
        "Plan IGN",
        "Plan IGN © IGN – Géoplateforme (Licence Ouverte Etalab 2.0)",
        '<a href="https://www.ign.fr/">Plan IGN © IGN</a> – Géoplateforme',
        "png",
    ),
    "ortho-ign": _preset(
        xyz.GeoportailFrance.orthos,
        "ortho-ign",
        "Photographies aériennes IGN",
        "Orthophotographies © IGN – Géoplateforme (Licence Ouverte Etalab 2.0)",
        '<a href="https://www.ign.fr/">Orthophotographies © IGN</a> – Géoplateforme',
        "jpg",
    ),
    "osm": _preset(
        xyz.OpenStreetMap.Mapnik,
        "osm",
        "OpenStreetMap",
        "© les contributeurs d'OpenStreetMap (ODbL)",
        '© <a href="https://www.openstreetmap.org/copyright">les contributeurs d\'OpenStreetMap</a>',
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

        from geo.maps.text import short_name

        text = short_name(attribution or "", 200) or urlparse(name).netloc or "tuiles"
        return Background("personnalise", "Fond de carte", name, text, _escape(text), 19, "png")
    raise InputError(
        f"fond de carte inconnu : {name!r}",
        fix=f"choisissez {', '.join(BACKGROUNDS)} ou un modèle d'URL https://…/{{z}}/{{x}}/{{y}}.png",
    )


def _escape(text: str) -> str:
    from geo.maps.text import html_text

    return html_text(text)


# --------------------------------------------------------------------------------------------
# Tiles for the annex (Web Mercator, EPSG:3857)

_R = 6378137.0
_ORIGIN = math.pi * _R


def _tile_of(x: float, y: float, z: int) -> tuple[int, int]:
    n = 2**z
    size = 2 * _ORIGIN / n
    return int((x + _ORIGIN) // size), int((_ORIGIN - y) // size)


#: Largest tile accepted, in pixels (tiles are 256 or 512 px square; a 1024 × 1024 tile is
#: the most any server sends). A larger one is refused before it is decoded: a 16 000 × 16 000
#: PNG would take gigabytes and half a minute.
MAX_TILE_PIXELS = 1024 * 1024
_USER_AGENT = "ort (opérations de revitalisation de territoire ; fond de plan d'annexe)"
#: Largest tile accepted, in bytes.
MAX_TILE_BYTES = 4 * 2**20
#: Longest wait for one tile, in seconds (under ``settings.http_timeout``).
TILE_TIMEOUT_S = 10.0
#: Longest time for all the tiles of one annex (every page together), in seconds.
TILE_DEADLINE_S = 60.0


class TileBudget:
    """Time left for the tiles of one document, and whether their server is known to be down.

    One budget is shared by the pages of an annex: a server that hangs or refuses costs one
    timeout, not one per page, and the whole annex waits at most ``seconds``.
    """

    def __init__(self, seconds: float = TILE_DEADLINE_S):
        self.seconds = float(seconds)
        self.deadline = time.monotonic() + self.seconds
        self.down: str | None = None

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


class _Unreachable(OrtError):
    """The tile server cannot be reached in time (the next pages do not try again)."""


def _cache_key(bg: Background) -> str:
    """One cache folder per tile URL template: two servers never share their tiles."""
    digest = hashlib.sha256(bg.url.encode("utf-8")).hexdigest()[:16]
    return f"{bg.key}-{digest}"


def tile_path(bg: Background, z: int, x: int, y: int) -> Path:
    """Where one tile is cached (``{cache_dir}/tuiles/{fond}-{hash of its URL}/{z}/{x}/{y}``)."""
    return Path(settings.cache_dir, "tuiles", _cache_key(bg), str(z), str(x), f"{y}.{bg.extension}")


def _decode_tile(path: Path, where: str) -> np.ndarray:
    """A tile as a 256 × 256 RGB array; refused (``OrtError``) when it is not a bounded image."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            # The size is checked below, before anything is decoded.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            w, h = im.size
            if w * h > MAX_TILE_PIXELS:
                raise OrtError(
                    f"tuile {where} de {w} × {h} pixels refusée (au plus {MAX_TILE_PIXELS // 2**20} "
                    "mégapixel par tuile) : vérifiez l'URL du fond"
                )
            return np.asarray(im.convert("RGB").resize((256, 256)))
    except OrtError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise OrtError(f"tuile {where} refusée : image démesurée (bombe de décompression ?)") from None
    except (OSError, ValueError, SyntaxError):
        raise OrtError(f"tuile {where} illisible (ce n'est pas une image)") from None


def _download_tile(url: str, dest: Path, where: str, budget: TileBudget) -> np.ndarray:
    """Fetch one tile within the budget, check it, and only then put it in the cache."""
    import tempfile
    import urllib.error
    import urllib.request

    remaining = budget.remaining()
    if remaining <= 0:
        raise _Unreachable(f"délai de {budget.seconds:g} s pour les tuiles dépassé")
    dest.parent.mkdir(parents=True, exist_ok=True)
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    timeout = max(0.05, min(float(settings.http_timeout), TILE_TIMEOUT_S, remaining))
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    size = 0
                    while chunk := response.read1(1 << 16):
                        size += len(chunk)
                        if size > MAX_TILE_BYTES:
                            raise OrtError(
                                f"tuile {where} de plus de {MAX_TILE_BYTES // 2**20} Mo refusée : "
                                "vérifiez l'URL du fond"
                            )
                        if budget.remaining() <= 0:
                            raise _Unreachable(f"délai de {budget.seconds:g} s pour les tuiles dépassé")
                        out.write(chunk)
            except urllib.error.HTTPError as err:
                raise OrtError(f"tuile {where} : HTTP {err.code}") from None
            except (urllib.error.URLError, OSError) as err:
                reason = getattr(err, "reason", err)
                text = str(reason).lower()
                if isinstance(reason, TimeoutError) or "timed out" in text:
                    why = f"pas de réponse du serveur de tuiles en {timeout:.0f} s"
                elif "refused" in text:
                    why = "connexion refusée par le serveur de tuiles"
                else:
                    why = f"serveur de tuiles injoignable ({type(reason).__name__})"
                raise _Unreachable(why) from None
        image = _decode_tile(tmp, where)
        os.replace(tmp, dest)
        return image
    finally:
        tmp.unlink(missing_ok=True)


def fetch_tile(bg: Background, z: int, x: int, y: int, *, budget: TileBudget | None = None) -> np.ndarray:
    """One tile as a 256 × 256 RGB array, downloaded once into the cache (offline: the cache only).

    A tile is checked (an image of at most :data:`MAX_TILE_PIXELS` pixels and
    :data:`MAX_TILE_BYTES` bytes) before it enters the cache; a cached tile that fails the check
    is removed. Raises ``OrtError`` with the French reason.
    """
    budget = budget or TileBudget()
    dest = tile_path(bg, z, x, y)
    where = f"{z}/{x}/{y}"
    if dest.exists():
        try:
            return _decode_tile(dest, where)
        except OrtError:
            dest.unlink(missing_ok=True)
            raise
    if settings.offline:
        raise OrtError(f"tuile {where} absente du cache des tuiles, mode hors ligne")
    if budget.down:
        raise _Unreachable(budget.down)
    url = bg.url.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))
    try:
        return _download_tile(url, dest, where, budget)
    except _Unreachable as err:
        budget.down = str(err)
        raise


def background_image(
    bg: Background,
    extent: tuple[float, float, float, float],
    crs,
    *,
    width_px: int,
    max_tiles: int = 64,
    budget: TileBudget | None = None,
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
    budget : TileBudget, optional
        Time left for the tiles (shared by the pages of one document); default: a new budget of
        :data:`TILE_DEADLINE_S` seconds.

    Returns
    -------
    (image, None) or (None, reason)
        An RGB(A) array covering ``extent`` (row 0 at the top), or the French reason why
        there is none (tiles unreachable offline or in time, server error, a tile refused).
    """
    from pyproj import Transformer

    budget = budget or TileBudget()
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
                tile = fetch_tile(bg, z, tx, ty, budget=budget)
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
