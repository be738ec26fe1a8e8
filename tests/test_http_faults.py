"""The downloader against a misbehaving HTTP server on 127.0.0.1.

Slow answers, truncated bodies, wrong Content-Length, 500 then 200, 404, a redirect loop and
a corrupt gzip: bounded retries with back-off, one clear error, never a corrupt cache entry,
and a resumed run reuses the good entries.
"""

from __future__ import annotations

import gzip
import http.server
import threading
import time
from pathlib import Path

import pytest

from geo import settings
from geo.errors import DownloadError
from geo.sources.http import cache_path, cached_download

GOOD = gzip.compress(b'{"type": "FeatureCollection", "features": []}' * 200, mtime=0)


class _Faulty(http.server.BaseHTTPRequestHandler):
    """Each path names its fault; ``hits`` counts requests per path."""

    hits: dict[str, int] = {}

    def log_message(self, *args):
        pass

    def _send(self, code: int, body: bytes, length: int | None = None, headers=()) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        n = self.hits[self.path] = self.hits.get(self.path, 0) + 1
        name = self.path.rsplit("/", 1)[-1]
        if name.startswith("good"):
            self._send(200, GOOD)
        elif name.startswith("slow"):
            time.sleep(1.0)
            self._send(200, GOOD)
        elif name.startswith("truncated"):
            self._send(200, GOOD[: len(GOOD) // 3], length=len(GOOD))
            self.close_connection = True
        elif name.startswith("flaky"):  # 500 on the first request, then the file
            self._send(500, b"oops") if n == 1 else self._send(200, GOOD)
        elif name.startswith("missing"):
            self._send(404, b"not found")
        elif name.startswith("loop"):
            self._send(302, b"", headers=[("Location", self.path)])
        elif name.startswith("corrupt"):
            self._send(200, GOOD[:20] + b"\x00garbage" * 50)
        elif name.startswith("notgzip"):
            self._send(200, b"<html>maintenance</html>")
        else:
            self._send(400, b"?")


@pytest.fixture(scope="module")
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Faulty)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/data"
    srv.shutdown()


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(settings, "http_retries", 3)
    monkeypatch.setattr(settings, "http_backoff", 0.01)
    monkeypatch.setattr(settings, "http_timeout", 0.3)
    _Faulty.hits.clear()


def _cache_files() -> list[Path]:
    return [p for p in Path(settings.cache_dir).rglob("*") if p.is_file()]


def test_good_file_downloaded_once(server):
    url = f"{server}/good.json.gz"
    path = cached_download(url)
    assert path == cache_path(url) and path.read_bytes() == GOOD
    assert cached_download(url) == path and _Faulty.hits["/data/good.json.gz"] == 1


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("slow.json.gz", "délai dépassé"),
        ("truncated.json.gz", "téléchargement tronqué"),
        ("corrupt.json.gz", "gzip abîmé"),
        ("notgzip.json.gz", "gzip abîmé"),
        ("loop.json.gz", "HTTP 302"),
    ],
)
def test_faults_retry_then_fail_cleanly(server, name, message):
    with pytest.raises(DownloadError, match=message) as err:
        cached_download(f"{server}/{name}")
    assert "après 3 essai(s)" in str(err.value) and "\n" not in str(err.value)
    assert _Faulty.hits[f"/data/{name}"] >= 3  # bounded: 3 attempts (redirects count per attempt)
    assert _cache_files() == [], "no partial or corrupt file may stay in the cache"


def test_500_then_200_succeeds(server):
    path = cached_download(f"{server}/flaky.json.gz")
    assert path.read_bytes() == GOOD and _Faulty.hits["/data/flaky.json.gz"] == 2


def test_404_is_not_retried(server):
    with pytest.raises(DownloadError, match="introuvable \\(HTTP 404\\)"):
        cached_download(f"{server}/missing.json.gz")
    assert _Faulty.hits["/data/missing.json.gz"] == 1 and _cache_files() == []


def test_backoff_doubles(server, monkeypatch):
    monkeypatch.setattr(settings, "http_backoff", 0.2)
    start = time.perf_counter()
    with pytest.raises(DownloadError):
        cached_download(f"{server}/corrupt.json.gz")
    assert time.perf_counter() - start >= 0.2 + 0.4 - 0.05


def test_resumed_run_reuses_good_entries(server):
    good = [f"{server}/good-{i}.json.gz" for i in range(3)]
    for url in good:
        cached_download(url)
    with pytest.raises(DownloadError):
        cached_download(f"{server}/truncated-2.json.gz")
    before = dict(_Faulty.hits)
    for url in good:  # the second run: nothing downloaded again
        assert cached_download(url).read_bytes() == GOOD
    assert _Faulty.hits == before
    assert sorted(p.name for p in _cache_files()) == [f"good-{i}.json.gz" for i in range(3)]


def test_refresh_replaces_atomically(server):
    url = f"{server}/good-refresh.json.gz"
    path = cached_download(url)
    stale = gzip.compress(b'{"type": "FeatureCollection", "features": [], "old": 1}', mtime=0)
    path.write_bytes(stale)
    assert cached_download(url).read_bytes() == stale  # a sound entry is used as it is
    assert cached_download(url, refresh=True).read_bytes() == GOOD


def test_damaged_entry_is_downloaded_again(server):
    url = f"{server}/good-damaged.json.gz"
    path = cached_download(url)
    path.write_bytes(b"stale")  # not gzip any more: never reported as a cache hit
    assert cached_download(url).read_bytes() == GOOD


def test_fuzz_targets_of_addresses_and_ban_servers_run_clean(tmp_path):
    """bench/fuzz.py's address-file and BAN-server targets, a few seconds each: no crash."""
    import subprocess
    import sys

    bench = Path(__file__).resolve().parents[1] / "bench"
    out = tmp_path / "FUZZ.md"
    done = subprocess.run(
        [sys.executable, "fuzz.py", "--budget", "4", "--targets", "addresses,ban", "--out", out],
        cwd=bench, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = out.read_text(encoding="utf-8")
    assert "| addresses |" in report and "| ban |" in report
    assert "0 distinct crash(es)" in report, report
