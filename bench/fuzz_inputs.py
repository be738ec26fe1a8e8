"""Fuzz targets of the inputs: address files and BAN servers (issue 23), added to ``bench/fuzz.py``.

``addresses``: BAN and BAL files generated from their real layouts, then broken (columns
missing or renamed, NaN/infinite/out-of-globe coordinates, binary bytes, other encodings, gzip,
bzip2, xz and zip, decompression bombs over a 256 KiB bound) through ``read_addresses``,
``index_addresses``, ``geocode_in_table`` and ``find_address``. Invariants: a point found has
finite coordinates on the globe; the content read never passes the bound.

``ban``: a BAN API on 127.0.0.1 answering each query with a generated body — valid answers,
NaN, huge numbers, wrong types, deep nesting, over-size bodies, truncated or slow answers,
headers or bodies trickled, HTTP errors — through ``geocode_online`` under a 1 s deadline.
Invariants: the call ends within the deadline (plus a margin), a candidate has finite
coordinates on the globe and a score in 0…1, and a refused answer is never kept in the cache.
"""

from __future__ import annotations

import bz2
import gzip
import http.server
import io
import json
import lzma
import math
import threading
import time
import zipfile
from pathlib import Path

from hypothesis import strategies as st

from geo import settings as ort_settings

BAN_COLUMNS = ["id", "numero", "rep", "nom_voie", "code_postal", "code_insee", "nom_commune", "lon", "lat"]
BAL_COLUMNS = ["commune_insee", "numero", "suffixe", "voie_nom", "long", "lat", "position", "cad_parcelles"]
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "1e308", "", "2,31", "48.67", "abc", "NaN", "1e-320"]),
    st.floats(-200, 200).map(lambda v: f"{v:.5f}"),
)
WORDS = st.one_of(
    st.sampled_from(["Rue Jean Jaurès", "R DES ABEILLES", "Allée de Chateauvieux", "", "ß", "{{ 7*7 }}"]),
    st.text(max_size=30),
)
CELL = {
    "id": st.just("91216_0010_00012"),
    "numero": st.one_of(st.integers(0, 9999).map(str), st.sampled_from(["12", "12.0", "", "inf", "x"])),
    "rep": st.sampled_from(["", "bis", "b", "ter", "Q"]),
    "suffixe": st.sampled_from(["", "bis", "b", "ter", "Q"]),
    "nom_voie": WORDS,
    "voie_nom": WORDS,
    "code_postal": st.sampled_from(["91360", "", "9136"]),
    "code_insee": st.sampled_from(["91216", "91027", "", "2A004", "97411"]),
    "commune_insee": st.sampled_from(["91216", "91027", "", "2A004"]),
    "nom_commune": WORDS,
    "lon": NUMBERS,
    "long": NUMBERS,
    "lat": NUMBERS,
    "position": st.sampled_from(["bâtiment", "entrée", "", "x"]),
    "cad_parcelles": st.sampled_from(["", "91216000AC0100", "91216000AC0100|91216000AC0011", "x|y"]),
}
LIMIT = 256 * 1024  # the content bound of the fuzzed address files


def _compress(kind: str, data: bytes) -> bytes:
    if kind == "gzip":
        return gzip.compress(data, mtime=0)
    if kind == "bz2":
        return bz2.compress(data)
    if kind == "xz":
        return lzma.compress(data)
    if kind == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("adresses.csv", data)
        return buf.getvalue()
    return data


@st.composite
def address_file(draw):
    """(suffix, bytes) of a BAN or BAL address file, sometimes broken, compressed or a bomb."""
    columns = BAN_COLUMNS if draw(st.booleans()) else BAL_COLUMNS
    names = [c for c in columns if draw(st.integers(0, 9)) > 0]  # now and then a column is missing
    rows = [[draw(CELL[c]) for c in names] for _ in range(draw(st.integers(0, 6)))]
    sep = draw(st.sampled_from([";", ";", ";", ",", "\t"]))
    text = "\n".join(sep.join(r) for r in [names, *rows]) + "\n"
    data = text.encode(draw(st.sampled_from(["utf-8", "utf-8", "cp1252", "utf-16"])), errors="replace")
    if draw(st.integers(0, 9)) == 0:  # a bomb: valid rows far over the bound
        data = data + data.split(b"\n", 1)[-1] * (4 * LIMIT // max(1, len(data)) + 1)
    if draw(st.integers(0, 9)) == 0:
        data = draw(st.binary(max_size=200))
    kind = draw(st.sampled_from(["plain", "plain", "gzip", "bz2", "xz", "zip"]))
    data = _compress(kind, data)
    if draw(st.integers(0, 7)) == 0:  # truncated
        data = data[: draw(st.integers(0, len(data)))]
    suffix = draw(st.sampled_from([".csv", ".csv.gz", ".txt", ".csv.xz"]))
    return suffix, data


def run_addresses(data, work: Path, require, write) -> str | None:
    from geo.sources import addresses as adr

    suffix, content = data
    limit = ort_settings.max_table_bytes
    ort_settings.max_table_bytes = LIMIT
    try:
        path = write(work, f"adresses{suffix}", bytes(content))
        counted = 0
        try:
            with adr.open_address_file(path) as stream:
                try:
                    while stream.read(1 << 16):
                        pass
                finally:
                    counted = stream.raw.count
        except adr.AddressFileTooLarge:
            pass
        except (OSError, EOFError, ValueError, zipfile.BadZipFile, lzma.LZMAError):
            pass  # damaged archives are read_addresses' to refuse
        require(counted <= LIMIT + (1 << 20), "content read past the bound")
        table = adr.read_addresses(path)
        index = adr.index_addresses(table)
        for query in ("12 rue Jean Jaurès", "12 bis R DES ABEILLES, 91360", "1 ß"):
            g = adr.geocode_in_table(query, index)
            for c in g.candidates:
                require(math.isfinite(c.lon) and math.isfinite(c.lat), "candidate without a finite point")
                require(-180 <= c.lon <= 180 and -90 <= c.lat <= 90, "candidate off the globe")
            hit, why = adr.find_address(index, code_insee="91216", adresse=query)
            require((hit is None) != (why is None), "find_address: both or neither of hit and reason")
            if hit is not None:
                require(math.isfinite(hit["lon"]) and math.isfinite(hit["lat"]), "hit without a point")
    finally:
        ort_settings.max_table_bytes = limit
    return None


# --- a BAN API on 127.0.0.1 ----------------------------------------------------------------------

_ANSWERS: dict[str, tuple[str, bytes]] = {}  # query → (behaviour, body)


class _Ban(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        import urllib.parse

        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("q", [""])[0]
        how, body = _ANSWERS.get(q, ("404", b""))
        try:
            if how == "404":
                self.send_error(404)
            elif how == "500":
                self.send_error(500)
            elif how == "trickle-headers":
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.05)
            else:
                self.send_response(200)
                length = len(body) + (50 if how == "short" else 0)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(length))
                self.end_headers()
                if how == "slow":
                    time.sleep(1.5)
                if how == "trickle-body":
                    for byte in body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(0.05)
                else:
                    self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


_SERVER: list = []


def _ban_url() -> str:
    if not _SERVER:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ban)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        _SERVER.append(server)
    return f"http://127.0.0.1:{_SERVER[0].server_port}"


def _feature(draw) -> dict:
    lon = draw(
        st.one_of(st.floats(-180, 180), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5))
    )
    lat = draw(st.one_of(st.floats(-90, 90), st.floats(allow_nan=True, allow_infinity=True), st.none()))
    props = {
        "label": draw(st.one_of(st.text(max_size=40), st.integers(), st.none(), st.just("x" * 1000))),
        "score": draw(
            st.one_of(st.floats(0, 1), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4))
        ),
        "type": draw(st.sampled_from(["housenumber", "street", "municipality", 3])),
        "citycode": draw(st.sampled_from(["91216", "91027", 91216, None])),
    }
    geometry = {"type": "Point", "coordinates": [lon, lat][: draw(st.integers(0, 2))]}
    return {
        "type": "Feature",
        "geometry": draw(st.sampled_from([geometry, geometry, None, []])),
        "properties": props,
    }


@st.composite
def ban_answer(draw):
    """(behaviour, body) of one BAN API answer."""
    how = draw(
        st.sampled_from(["ok"] * 8 + ["slow", "trickle-headers", "trickle-body", "short", "404", "500"])
    )
    shape = draw(st.integers(0, 9))
    if shape == 0:  # nested deep
        depth = draw(st.sampled_from([40, 1000, 100_000]))
        body = b'{"type": "FeatureCollection", "features": ' + b"[" * depth + b"]" * depth + b"}"
    elif shape == 1:  # over the size bound
        body = json.dumps({"type": "FeatureCollection", "features": [], "x": "y" * 70_000}).encode()
    elif shape == 2:
        body = draw(st.binary(max_size=300))
    else:
        doc = {
            "type": "FeatureCollection",
            "features": [_feature(draw) for _ in range(draw(st.integers(0, 4)))],
        }
        body = json.dumps(doc, allow_nan=True).encode()
    if how in ("trickle-headers", "trickle-body"):
        body = body[:200]
    return how, body


_COUNTER = [0]


def _cached_answer(query: str) -> Path:
    """Where geocode_online keeps the answer to ``query`` (see its docstring)."""
    import hashlib

    from geo.sources import addresses as adr
    from geo.sources import http

    url = adr._ban_url(query, citycode=None, limit=5)
    key = hashlib.sha256(url.split("?", 1)[1].encode()).hexdigest()[:24]
    return http.cache_path(f"{url.split('?', 1)[0].rstrip('/')}/{key}.json")


def run_ban(data, work: Path, require, write) -> str | None:
    from geo.errors import OrtError
    from geo.sources import addresses as adr

    how, body = data
    _COUNTER[0] += 1
    query = f"{_COUNTER[0]} rue du Fuzz"
    _ANSWERS[query] = (how, body)
    saved = {
        k: getattr(ort_settings, k)
        for k in (
            "offline",
            "ban_api_url",
            "ban_deadline",
            "ban_max_bytes",
            "http_retries",
            "http_backoff",
            "http_timeout",
        )
    }
    ort_settings.offline = False
    ort_settings.ban_api_url = _ban_url()
    ort_settings.ban_deadline = 1.0
    ort_settings.ban_max_bytes = 64 * 1024
    ort_settings.http_retries = 2
    ort_settings.http_backoff = 0.05
    ort_settings.http_timeout = 30.0
    start = time.monotonic()
    try:
        g = adr.geocode_online(query)
    except OrtError:
        require(not _cached_answer(query).exists(), "a refused BAN answer was kept in the cache")
        raise
    finally:
        elapsed = time.monotonic() - start
        for k, v in saved.items():
            setattr(ort_settings, k, v)
        _ANSWERS.pop(query, None)
        require(elapsed < 1.0 + 1.5, f"geocode_online took {elapsed:.1f} s (deadline 1 s)")
    for c in g.candidates:
        require(math.isfinite(c.lon) and -180 <= c.lon <= 180, "longitude off the globe")
        require(math.isfinite(c.lat) and -90 <= c.lat <= 90, "latitude off the globe")
        require(math.isfinite(c.score) and 0 <= c.score <= 1, "score outside 0…1")
    return None


def targets(target_class, require, write) -> list:
    """The Targets of this module, built with ``bench/fuzz.py``'s own classes and helpers."""
    return [
        target_class(
            "addresses",
            "geo.sources.addresses read_addresses + geocode_in_table / find_address (bombs, NaN, layouts)",
            address_file(),
            lambda d, w: run_addresses(d, w, require, write),
            lambda d: (
                f"{d[0]} {bytes(d[1][:600])!r}" + (f" … ({len(d[1])} bytes)" if len(d[1]) > 600 else "")
            ),
        ),
        target_class(
            "ban",
            "geo.sources.addresses.geocode_online against a BAN API on 127.0.0.1 (slow, huge, malformed)",
            ban_answer(),
            lambda d, w: run_ban(d, w, require, write),
            lambda d: (
                f"{d[0]} {bytes(d[1][:600])!r}" + (f" … ({len(d[1])} bytes)" if len(d[1]) > 600 else "")
            ),
        ),
    ]
