"""Downloads with a local cache: one download per URL, never a partial file in the cache.

The cache mirrors the URL (``{settings.cache_dir}/{host}/{path}``), so a cadastre file of
one millésime is downloaded once and reused. A download goes to a temporary file beside its
final place, is checked (length announced by the server, complete gzip stream), then renamed.
With ``settings.offline`` the cache is the only source.

Every download is bounded: at most ``settings.download_max_bytes`` bytes for its layer (an
endless body is cut and refused, at once and never retried), at most
``settings.download_deadline`` seconds for all its attempts together (a caller may ask for
less: the BAN API's ``settings.ban_deadline``); a watchdog shuts the connection at the deadline,
so a server that trickles its headers or body a byte at a time cannot hang a run. The
temporary file is removed on SIGTERM as on Ctrl-C. Errors name the setting the URL comes from
(:func:`url_setting`), and ``ORT_CACHE_DIR`` when the cache folder cannot be written. A cache
entry is checked before it is used; a damaged one is downloaded again (``ort fetch --refresh``
forces it), or refused offline.
"""

from __future__ import annotations

import gzip
import http.client
import json
import logging
import os
import re
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

from geo import settings
from geo.errors import DownloadError, OrtError

log = logging.getLogger(__name__)

_USER_AGENT = "ort (opérations de revitalisation de territoire; +https://pypi.org/project/ort)"
_CHUNK = 1 << 16


def cache_path(url: str) -> Path:
    """Return where ``url`` is cached: ``{settings.cache_dir}/{host}/{path}``."""
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "local") + (f"_{parts.port}" if parts.port else "")
    segments = [s for s in parts.path.split("/") if s not in ("", ".", "..")]
    if not segments:
        segments = ["index"]
    return Path(settings.cache_dir, host, *segments)


def max_bytes_for(url: str) -> int:
    """The size limit of one download: ``settings.download_max_bytes`` of the cadastre layer named
    in the URL (``cadastre-62907-batiments.json.gz`` → ``batiments``), else its ``"*"`` entry."""
    limits = settings.download_max_bytes
    name = urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]
    m = re.fullmatch(r"cadastre-[0-9][0-9AB][0-9]{3}-([a-z_]+)\..*", name, flags=re.IGNORECASE)
    layer = m.group(1).lower() if m else ""
    return int(limits.get(layer, limits.get("*", 500 * 2**20)))


def _mb(n: float) -> str:
    return f"{n / 2**20:.0f} Mo" if n >= 2**20 else f"{n / 1024:.0f} Ko"


def verify_cached(path: Path, *, deep: bool = False, max_bytes: int | None = None) -> str | None:
    """Why a cache entry cannot be used (``"flux gzip incomplet"``…), or None when it looks sound.

    A ``.gz`` file is decompressed to its end (CRC and length checked), bounded by
    ``max_bytes`` × ``settings.max_gzip_ratio``; a JSON document must start with ``{`` or ``[``
    and end with the matching bracket. ``deep`` parses the whole JSON document.
    """
    try:
        if path.stat().st_size == 0:
            return "fichier vide"
        limit = (max_bytes or max_bytes_for(path.name)) * settings.max_gzip_ratio
        if path.name.endswith(".gz"):
            size, head, tail, whole = 0, b"", b"", []
            with gzip.open(path, "rb") as stream:
                while chunk := stream.read(1 << 20):
                    size += len(chunk)
                    if size > limit:
                        return f"contenu décompressé de plus de {_mb(limit)}"
                    head = head or chunk[:64]
                    tail = (tail + chunk)[-64:]
                    if deep:
                        whole.append(chunk)
            content = b"".join(whole) if deep else None
        else:
            with path.open("rb") as f:
                head = f.read(64)
                f.seek(max(0, path.stat().st_size - 64))
                tail = f.read()
            content = path.read_bytes() if deep else None
    except (OSError, EOFError, zlib.error) as err:
        return f"flux gzip incomplet ou corrompu ({' '.join(str(err).split())[:80]})"
    stem = path.name.removesuffix(".gz")
    if stem.endswith((".json", ".geojson")):
        first, last = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1], tail.rstrip(b" \t\r\n")[-1:]
        if first not in (b"{", b"[") or last != {b"{": b"}", b"[": b"]"}[first]:
            return "document JSON tronqué ou qui n'est pas du JSON"
        if content is not None:
            try:
                json.loads(content)
            except (ValueError, RecursionError) as err:
                return f"JSON invalide ({' '.join(str(err).split())[:80]})"
    return None


def cached_download(url: str, *, refresh: bool = False, setting: str | None = None) -> Path:
    """Return a local copy of ``url``, downloading it only when it is not in the cache.

    A cached copy is checked first (:func:`verify_cached`): a damaged one is downloaded again,
    or refused offline.

    Parameters
    ----------
    url : str
        http(s) URL of the file.
    refresh : bool
        Download again even when cached (refused offline).
    setting : str, optional
        What the user changes when the URL is wrong, named in the errors (default
        :func:`url_setting`).

    Raises
    ------
    DownloadError
        Offline and not cached (or damaged), not found (404), too large, over the deadline, or
        failed after ``settings.http_retries`` attempts.
    """
    dest = cache_path(url)
    if dest.exists() and not refresh:
        problem = verify_cached(dest, max_bytes=max_bytes_for(url))
        if problem is None:
            log.debug("cache hit %s", dest)
            return dest
        if settings.offline:
            raise DownloadError(
                f"le fichier en cache {dest} est endommagé ({problem}) et le mode hors ligne est actif — "
                "relancez sans --offline : `ort fetch --refresh` le télécharge à nouveau"
            )
        log.warning("fichier en cache endommagé (%s) : %s — nouveau téléchargement", problem, dest)
    if settings.offline:
        if refresh:
            raise DownloadError(
                f"--refresh télécharge à nouveau {url}, impossible en mode hors ligne — "
                "relancez sans --offline"
            )
        raise DownloadError(
            f"{url} n'est pas dans le cache ({dest}) et le mode hors ligne est actif — "
            "lancez une fois sans --offline (ou `ort fetch`) pour remplir le cache"
        )
    return download(url, dest, setting=setting)


def url_setting(url: str, dest: str | os.PathLike | None = None) -> str:
    """What the user changes when ``url`` is wrong, for the error messages: the setting or
    option the URL comes from (``ORT_CADASTRE_URL``, ``ORT_BAN_URL``, ``--fond``…).

    >>> from geo import settings
    >>> url_setting(settings.ban_api_url + "/search/?q=1")
    "l'adresse de l'API BAN (ORT_BAN_URL)"
    """
    if url.startswith(settings.cadastre_base_url.rstrip("/") + "/"):
        return "l'URL de base du cadastre (ORT_CADASTRE_URL)"
    if url.startswith(settings.ban_api_url.rstrip("/") + "/"):
        return "l'adresse de l'API BAN (ORT_BAN_URL)"
    if dest is not None and Path(dest).is_relative_to(Path(settings.cache_dir, "tuiles")):
        return "l'adresse du fond de carte (--fond)"
    if urllib.parse.urlsplit(url).hostname in ("www.data.gouv.fr", "data.gouv.fr", "static.data.gouv.fr"):
        return "la ressource publiée sur data.gouv.fr (relancez plus tard)"
    return "l'adresse du fichier"


def _cache_dir_error(dest: Path, err: OSError) -> DownloadError:
    """The cache folder is the setting's, not the output's (``-o``): say which to change."""
    from geo.io import os_error_text

    return DownloadError(
        f"dossier du cache de téléchargement inutilisable : {dest.parent} ({os_error_text(err)[0]}) — "
        f"choisissez un dossier où vous pouvez écrire : ORT_CACHE_DIR (actuellement {settings.cache_dir})"
    )


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    max_bytes: int | None = None,
    deadline_s: float | None = None,
    setting: str | None = None,
) -> Path:
    """Download ``url`` to ``dest`` atomically, with retries and back-off, within bounds.

    A truncated body (fewer bytes than ``Content-Length``) or a broken gzip stream (for
    ``.gz`` files) counts as a failed attempt; a body over the size limit or a run over the
    deadline stops at once, never retried. No partial file is ever left at ``dest``, even on
    SIGTERM.

    Parameters
    ----------
    max_bytes : int, optional
        Largest body accepted (default :func:`max_bytes_for`).
    deadline_s : float, optional
        Longest time for all attempts together, in seconds (default
        ``settings.download_deadline``); a server that answers slowly or trickles its headers or
        body is cut at this deadline.
    setting : str, optional
        What the user changes when the URL is wrong (default :func:`url_setting`).
    """
    from geo.io import sigterm_as_interrupt

    dest = Path(dest)
    setting = setting or url_setting(url, dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _cache_dir_error(dest, err) from None
    attempts = max(1, int(settings.http_retries))
    delay = float(settings.http_backoff)
    total = float(settings.download_deadline if deadline_s is None else deadline_s)
    deadline = time.monotonic() + total
    limit = max_bytes_for(url) if max_bytes is None else int(max_bytes)
    last = ""
    with sigterm_as_interrupt():
        for attempt in range(1, attempts + 1):
            try:
                _fetch_once(url, dest, limit=limit, deadline=deadline, setting=setting)
                return dest
            except DownloadError:  # too large, a gzip bomb, a cache folder we cannot use: final
                raise
            except urllib.error.HTTPError as err:
                if err.code in (404, 410):
                    hint = (
                        "vérifiez le code INSEE et le millésime (le cadastre Etalab publie 'latest' et "
                        "des millésimes datés comme 2024-01-01)"
                        if "ORT_CADASTRE_URL" in setting
                        else f"vérifiez {setting}"
                    )
                    raise DownloadError(
                        f"{url} introuvable (HTTP {err.code}) — {hint}",
                        reason=f"introuvable (HTTP {err.code})",
                    ) from None
                last = (
                    f"HTTP {err.code}, redirections en boucle"
                    if 300 <= err.code < 400
                    else f"HTTP {err.code}"
                )
            except _Deadline:
                last = f"délai total de {total:g} s dépassé"
                break
            except (urllib.error.URLError, OSError, _Incomplete, http.client.HTTPException) as err:
                if time.monotonic() >= deadline:
                    last = f"délai total de {total:g} s dépassé"
                    break
                last = _reason(err)
            if attempt < attempts:
                if time.monotonic() + delay >= deadline:
                    last += f" ; délai total de {total:g} s atteint"
                    break
                log.info(
                    "download of %s failed (%s); retry %d/%d in %.1fs", url, last, attempt, attempts, delay
                )
                time.sleep(delay)
                delay *= 2
    raise DownloadError(
        f"téléchargement de {url} impossible après {attempt} essai(s) : {last} — "
        f"vérifiez le réseau ou {setting}, ou travaillez en --offline depuis le cache",
        reason=f"{last} ({attempt} essai(s))",
    )


class _Incomplete(Exception):
    pass


def _reason(err: BaseException) -> str:
    """Why an attempt failed, in French (the network library's own words are English)."""
    if isinstance(err, (_Incomplete, OrtError)):  # our own words, already French
        return " ".join(str(err).split())
    reason = getattr(err, "reason", None) or err
    text = str(reason).lower()
    if isinstance(reason, TimeoutError) or "timed out" in text:
        return "délai dépassé"
    if "refused" in text:
        return "connexion refusée"
    if "name or service" in text or "nodename" in text or "getaddrinfo" in text:
        return "nom de serveur inconnu"
    if "ssl" in text or "certificate" in text:
        return "erreur de certificat TLS"
    if "gzip" in text or "crc" in text or "end of" in text:
        return "fichier gzip abîmé"
    return f"erreur réseau ({type(reason).__name__})"


class _Deadline(Exception):
    pass


def _too_large(url: str, limit: int, size: str, setting: str) -> DownloadError:
    return DownloadError(
        f"{url} : {size}, au-delà de la limite de {_mb(limit)} pour ce fichier — "
        f"vérifiez {setting} ; pour un fichier vraiment plus gros, augmentez "
        "geo.settings.download_max_bytes",
        reason=f"{size}, au-delà de la limite de {_mb(limit)}",
    )


class _Watchdog(urllib.request.HTTPHandler, urllib.request.HTTPSHandler):
    """Opens connections whose socket is shut down at the deadline: a server that trickles its
    status line, headers or body a byte at a time cannot hold a download past it (a socket
    timeout only bounds each wait, not their sum)."""

    def __init__(self, deadline: float) -> None:
        urllib.request.HTTPHandler.__init__(self)
        urllib.request.HTTPSHandler.__init__(self)
        self.deadline = deadline
        self.timers: list[threading.Timer] = []

    def _guard(self, connection_class):
        handler = self

        class Guarded(connection_class):
            def connect(self) -> None:
                super().connect()
                sock = self.sock
                timer = threading.Timer(max(0.0, handler.deadline - time.monotonic()), _shut, (sock,))
                timer.daemon = True
                timer.start()
                handler.timers.append(timer)

        return Guarded

    def http_open(self, req):
        return self.do_open(self._guard(http.client.HTTPConnection), req)

    def https_open(self, req):
        return self.do_open(self._guard(http.client.HTTPSConnection), req, context=self._context)

    def cancel(self) -> None:
        for timer in self.timers:
            timer.cancel()


def _shut(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _fetch_once(url: str, dest: Path, *, limit: int, deadline: float, setting: str) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _Deadline()
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as err:
        raise _cache_dir_error(dest, err) from None
    tmp = Path(tmp_name)
    watchdog = _Watchdog(deadline)
    opener = urllib.request.build_opener(watchdog)
    try:
        with os.fdopen(fd, "wb") as out:
            timeout = max(0.05, min(float(settings.http_timeout), remaining))
            with opener.open(request, timeout=timeout) as response:
                expected = response.headers.get("Content-Length")
                if expected is not None and expected.isdigit() and int(expected) > limit:
                    raise _too_large(url, limit, f"{_mb(int(expected))} annoncés", setting)
                size = 0
                # read1: at most one read from the socket, so the deadline is checked even when
                # the server trickles a few bytes at a time.
                while chunk := response.read1(_CHUNK):
                    out.write(chunk)
                    size += len(chunk)
                    if size > limit:
                        raise _too_large(url, limit, f"plus de {_mb(limit)} reçus", setting)
                    if time.monotonic() > deadline:
                        raise _Deadline()
        if time.monotonic() > deadline:  # the watchdog cut the body: not a short answer
            raise _Deadline()
        if expected is not None and size != int(expected):
            raise _Incomplete(f"téléchargement tronqué : {size} octets sur {expected}")
        if dest.name.endswith(".gz"):
            _check_gzip(tmp, limit * settings.max_gzip_ratio, setting)
        os.replace(tmp, dest)
    finally:
        watchdog.cancel()
        tmp.unlink(missing_ok=True)


def _check_gzip(path: Path, limit: float, setting: str) -> None:
    size = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise DownloadError(
                        f"{path.name} : contenu décompressé de plus de {_mb(limit)} (bombe gzip ?) — "
                        f"vérifiez {setting}"
                    )
    except DownloadError:
        raise
    except (OSError, EOFError, zlib.error):
        raise _Incomplete("flux gzip abîmé") from None
