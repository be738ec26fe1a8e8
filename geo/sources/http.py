"""Downloads with a local cache: one download per URL, never a partial file in the cache.

The cache mirrors the URL (``{settings.cache_dir}/{host}/{path}``), so a cadastre file of
one millésime is downloaded once and reused. A download goes to a temporary file beside its
final place, is checked (length announced by the server, complete gzip stream), then renamed.
With ``settings.offline`` the cache is the only source.
"""

from __future__ import annotations

import gzip
import logging
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

from geo import settings
from geo.errors import DownloadError

log = logging.getLogger(__name__)

_USER_AGENT = "ort (opérations de revitalisation de territoire; +https://pypi.org/project/ort)"


def cache_path(url: str) -> Path:
    """Return where ``url`` is cached: ``{settings.cache_dir}/{host}/{path}``."""
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "local") + (f"_{parts.port}" if parts.port else "")
    segments = [s for s in parts.path.split("/") if s not in ("", ".", "..")]
    if not segments:
        segments = ["index"]
    return Path(settings.cache_dir, host, *segments)


def cached_download(url: str, *, refresh: bool = False) -> Path:
    """Return a local copy of ``url``, downloading it only when it is not in the cache.

    Parameters
    ----------
    url : str
        http(s) URL of the file.
    refresh : bool
        Download again even when cached (ignored offline).

    Raises
    ------
    DownloadError
        Offline and not cached, not found (404), or failed after ``settings.http_retries`` attempts.
    """
    dest = cache_path(url)
    if dest.exists() and (not refresh or settings.offline):
        log.debug("cache hit %s", dest)
        return dest
    if settings.offline:
        raise DownloadError(
            f"{url} is not in the cache ({dest}) and offline mode is on — "
            "run once without --offline (or `ort fetch`) to fill the cache"
        )
    return download(url, dest)


def download(url: str, dest: str | os.PathLike) -> Path:
    """Download ``url`` to ``dest`` atomically, with retries and back-off.

    A truncated body (fewer bytes than ``Content-Length``) or a broken gzip stream (for
    ``.gz`` files) counts as a failed attempt; no partial file is ever left at ``dest``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    attempts = max(1, int(settings.http_retries))
    delay = float(settings.http_backoff)
    last = ""
    for attempt in range(1, attempts + 1):
        try:
            _fetch_once(url, dest)
            return dest
        except urllib.error.HTTPError as err:
            if err.code in (404, 410):
                raise DownloadError(
                    f"{url} not found (HTTP {err.code}) — check the INSEE code and the millésime "
                    "(the Etalab cadastre publishes 'latest' and dated millésimes such as 2024-01-01)"
                ) from None
            last = (
                f"HTTP {err.code} redirect loop" if 300 <= err.code < 400 else f"HTTP {err.code} {err.reason}"
            )
        except (urllib.error.URLError, OSError, _Incomplete) as err:
            last = " ".join(str(getattr(err, "reason", None) or err).split())
        if attempt < attempts:
            log.info("download of %s failed (%s); retry %d/%d in %.1fs", url, last, attempt, attempts, delay)
            time.sleep(delay)
            delay *= 2
    raise DownloadError(
        f"could not download {url} after {attempts} attempt(s): {last} — "
        "check the network or the base URL (ORT_CADASTRE_URL), or work --offline from the cache"
    )


class _Incomplete(Exception):
    pass


def _fetch_once(url: str, dest: Path) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            with urllib.request.urlopen(request, timeout=settings.http_timeout) as response:
                expected = response.headers.get("Content-Length")
                size = 0
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    size += len(chunk)
        if expected is not None and size != int(expected):
            raise _Incomplete(f"truncated download: {size} of {expected} bytes")
        if dest.name.endswith(".gz"):
            _check_gzip(tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _check_gzip(path: Path) -> None:
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(1 << 20):
                pass
    except (OSError, EOFError, zlib.error) as err:
        raise _Incomplete(f"broken gzip stream ({err})") from None
