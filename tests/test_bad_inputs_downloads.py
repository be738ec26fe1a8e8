"""Hostile download servers and damaged cache entries (127.0.0.1, generated in code).

An endless body, a huge announced length, a server that trickles bytes, SIGTERM in the middle
of a download, and a corrupt cache entry that used to be reported as success.
"""

from __future__ import annotations

import gzip
import http.server
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from geo import settings
from geo.cli import main
from geo.errors import DownloadError
from geo.sources.cadastre import cadastre_url
from geo.sources.http import cache_path, cached_download, max_bytes_for, verify_cached

FC = json.dumps({"type": "FeatureCollection", "features": []}).encode()
GOOD = gzip.compress(FC, mtime=0)


class _Hostile(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    hits: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        name = self.path  # the fault is named anywhere in the path
        self.hits.append(name)
        try:
            if "endless" in name:  # no Content-Length, never ends
                self.send_response(200)
                self.end_headers()
                block = b"\0" * 65536
                while True:
                    self.wfile.write(block)
            elif "announced" in name:  # says 10 GB
                self.send_response(200)
                self.send_header("Content-Length", str(10 * 2**30))
                self.end_headers()
                self.wfile.write(b"x" * 1000)
            elif "trickle" in name:  # one byte every 0.1 s, forever
                self.send_response(200)
                self.end_headers()
                while True:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
            else:
                self.send_response(200)
                self.send_header("Content-Length", str(len(GOOD)))
                self.end_headers()
                self.wfile.write(GOOD)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture(scope="module")
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    monkeypatch.setattr(settings, "http_retries", 2)
    monkeypatch.setattr(settings, "http_backoff", 0.01)
    monkeypatch.setattr(settings, "http_timeout", 2.0)


def _cache_files() -> list[Path]:
    return [p for p in Path(settings.cache_dir).rglob("*") if p.is_file()]


def test_endless_body_is_cut_at_the_layer_limit(server, monkeypatch):
    monkeypatch.setitem(settings.download_max_bytes, "parcelles", 2 * 2**20)
    start = time.monotonic()
    with pytest.raises(DownloadError, match="au-delà de la limite de 2 Mo"):
        cached_download(f"{server}/endless/cadastre-62907-parcelles.json.gz")
    assert time.monotonic() - start < 10
    assert _cache_files() == []


def test_limit_is_per_layer():
    assert max_bytes_for(cadastre_url("62907", "batiments")) == settings.download_max_bytes["batiments"]
    assert max_bytes_for(cadastre_url("62907", "parcelles")) == settings.download_max_bytes["parcelles"]
    assert max_bytes_for("https://example.org/liste.csv") == settings.download_max_bytes["*"]


def test_announced_length_over_the_limit_is_refused_at_once(server):
    with pytest.raises(DownloadError, match="annoncés"):
        cached_download(f"{server}/announced.json.gz")
    assert _cache_files() == []


def test_trickling_server_meets_the_overall_deadline(server, monkeypatch):
    monkeypatch.setattr(settings, "download_deadline", 1.5)
    start = time.monotonic()
    with pytest.raises(DownloadError, match="délai total de 1.5 s"):
        cached_download(f"{server}/trickle.json.gz")
    assert time.monotonic() - start < 5
    assert _cache_files() == []


def test_sigterm_removes_the_partial_file(server, tmp_path):
    script = textwrap.dedent(
        f"""
        import faulthandler, signal
        faulthandler.register(signal.SIGUSR1, all_threads=True)
        from geo import settings
        from geo.cli import main
        settings.cache_dir = {str(tmp_path)!r}
        settings.download_deadline = 60
        settings.cadastre_base_url = {server + "/trickle"!r}
        main(["fetch", "62907"])
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    for _ in range(200):  # wait until the partial file exists
        if any(p.name.endswith(".part") for p in tmp_path.rglob("*")):
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("the download never started")
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:  # where it hangs: the stacks of its threads (seen once)
        proc.send_signal(signal.SIGUSR1)
        time.sleep(1)
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"no exit 20 s after SIGTERM; stacks:\n{err}")
    assert proc.returncode == 143, err
    assert "Interrompu" in err and "Traceback" not in err
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_corrupt_cache_entry_is_not_success(server, monkeypatch):
    monkeypatch.setattr(settings, "cadastre_base_url", server)
    url = cadastre_url("62907", "parcelles")
    dest = cache_path(url)
    dest.parent.mkdir(parents=True)
    dest.write_bytes(GOOD[: len(GOOD) // 2])  # truncated gzip left by an old version or a crash
    assert verify_cached(dest) is not None
    monkeypatch.setattr(settings, "offline", True)
    r = CliRunner().invoke(main, ["fetch", "62907"])
    assert r.exit_code == 1 and "endommagé" in r.output and "ort fetch --refresh" in r.output, r.output
    monkeypatch.setattr(settings, "offline", False)
    r = CliRunner().invoke(main, ["fetch", "62907", "--refresh"])
    assert r.exit_code == 0 and "vérifié" in r.output, r.output
    assert dest.read_bytes() == GOOD


def test_damaged_json_inside_a_good_gzip(tmp_path):
    path = tmp_path / "cadastre-62907-parcelles.json.gz"
    path.write_bytes(gzip.compress(FC[:-5]))
    assert "JSON" in verify_cached(path)
    path.write_bytes(gzip.compress(FC.replace(b":", b"#", 1)))
    assert verify_cached(path) is None and "JSON invalide" in verify_cached(path, deep=True)


def test_gzip_bomb_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setitem(settings.download_max_bytes, "*", 1024)
    path = tmp_path / "liste.csv.gz"
    path.write_bytes(gzip.compress(b"a" * (1024 * settings.max_gzip_ratio + 10)))
    assert "décompressé" in verify_cached(path)


def test_sigterm_handler_is_restored():
    from geo.io import sigterm_as_interrupt

    before = signal.getsignal(signal.SIGTERM)
    with sigterm_as_interrupt():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before
    assert os.getpid()


# --- each refusal said once, naming the setting to change (issue 23) ----------------------------


def test_size_refusal_is_not_retried(server, monkeypatch):
    """An over-size file is refused at its first attempt, not fetched again (was: 3 times)."""
    monkeypatch.setattr(settings, "http_retries", 3)
    monkeypatch.setitem(settings.download_max_bytes, "parcelles", 2**20)
    for fault in ("announced", "endless"):
        _Hostile.hits.clear()
        with pytest.raises(DownloadError, match="au-delà de la limite de 1 Mo"):
            cached_download(f"{server}/{fault}/cadastre-62907-parcelles.json.gz")
        assert len(_Hostile.hits) == 1, (fault, _Hostile.hits)
    assert _cache_files() == []


def test_each_download_names_its_own_setting(server, monkeypatch):
    """The cadastre names ORT_CADASTRE_URL, the BAN ORT_BAN_URL, tiles --fond, other files their
    own address — never ORT_CADASTRE_URL for a download that does not come from it."""
    from geo.sources.http import download, url_setting

    monkeypatch.setattr(settings, "cadastre_base_url", f"{server}/cadastre")
    monkeypatch.setattr(settings, "ban_api_url", f"{server}/ban")
    monkeypatch.setattr(settings, "download_deadline", 1.0)
    cases = [
        (f"{server}/cadastre/trickle/cadastre-62907-parcelles.json.gz", None, "ORT_CADASTRE_URL"),
        (f"{server}/ban/search/trickle", None, "ORT_BAN_URL"),
        (f"{server}/trickle/tuile.png", Path(settings.cache_dir, "tuiles", "x", "1.png"), "--fond"),
        (f"{server}/trickle/liste.csv", None, "l'adresse du fichier"),
    ]
    for url, dest, name in cases:
        with pytest.raises(DownloadError, match="délai total") as err:
            download(url, dest or cache_path(url))
        text = str(err.value)
        assert name in text, text
        assert name == "ORT_CADASTRE_URL" or "ORT_CADASTRE_URL" not in text, text
        assert url_setting(url, dest).endswith(name) or name in url_setting(url, dest)
    assert "data.gouv.fr" in url_setting("https://www.data.gouv.fr/api/1/datasets/x/")


def test_unusable_cache_folder_names_ort_cache_dir(tmp_path, monkeypatch, server):
    """A cache folder that is a file: the error names ORT_CACHE_DIR, not the output (-o)."""
    blocker = tmp_path / "fichier"
    blocker.write_text("x")
    monkeypatch.setattr(settings, "cache_dir", blocker)
    monkeypatch.setattr(settings, "cadastre_base_url", f"{server}/cadastre")
    with pytest.raises(DownloadError) as err:
        cached_download(f"{server}/cadastre/latest/cadastre-62907-parcelles.json.gz")
    text = str(err.value)
    assert "ORT_CACHE_DIR" in text and "(-o)" not in text and "pas un dossier" in text, text
    res = CliRunner().invoke(main, ["fetch", "62907"])
    assert res.exit_code != 0 and "ORT_CACHE_DIR" in res.output and "(-o)" not in res.output, res.output


def test_not_found_names_its_own_setting(server, monkeypatch, tmp_path):
    """A 404 from the BAN or a tile server does not send the user to the cadastre's INSEE code."""
    from fileserver import serve

    from geo.sources.http import download

    base, _, httpd = serve(tmp_path)
    try:
        monkeypatch.setattr(settings, "ban_api_url", f"{base}/ban")
        monkeypatch.setattr(settings, "cadastre_base_url", f"{base}/cadastre")
        with pytest.raises(DownloadError, match="introuvable \\(HTTP 404\\)") as err:
            download(f"{base}/ban/search/x", cache_path(f"{base}/ban/search/x"))
        assert "ORT_BAN_URL" in str(err.value) and "INSEE" not in str(err.value)
        with pytest.raises(DownloadError) as err:
            download(f"{base}/t/1/2/3.png", Path(settings.cache_dir, "tuiles", "f", "3.png"))
        assert "--fond" in str(err.value) and "INSEE" not in str(err.value)
        with pytest.raises(DownloadError) as err:
            cached_download(f"{base}/cadastre/latest/x/cadastre-62907-parcelles.json.gz")
        assert "code INSEE et le millésime" in str(err.value)
    finally:
        httpd.shutdown()
