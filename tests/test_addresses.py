"""From an address to a parcel: the real BAL extract, a 127.0.0.1 server answering like the BAN
API, the cache and offline mode, and ``ort check`` / ``ort eligibility`` given an address or an
id in every form notaires type.
"""

from __future__ import annotations

import gzip
import json
import math
import shutil
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from click.testing import CliRunner
from shapely.geometry import box

from geo import settings
from geo.cli import main
from geo.errors import DownloadError, InputError
from geo.sources import addresses as adr
from geo.sources import http

# --------------------------------------------------------------------------------------------
# The real BAL extract (Meylan, 38229)


@pytest.fixture(scope="module")
def meylan(shared_data):
    path = shared_data / "ban-bal-sample" / "bal-meylan-38229-extrait.csv"
    table = adr.read_addresses(path)
    return path, table, adr.index_addresses(table)


def test_bal_read_with_vintage_and_commune(meylan):
    _, table, index = meylan
    assert table.attrs["format"] == "BAL" and table.attrs["date"] == "2025-12-18"
    assert index.names["38229"] == "Meylan" and index.date == "2025-12-18"


def test_bal_address_found_with_its_parcel_link(meylan):
    _, _, index = meylan
    g = adr.geocode_in_table("7 a rue du Saint-Eynard, 38240 Meylan", index)
    assert g.status == adr.TROUVEE and g.best.score == 1.0
    assert (g.best.lon, g.best.lat) == (5.786941, 45.221307)  # the "7a" entrance, not the "7"
    assert g.best.parcelles == ("38229000AC0507",) and g.best.label == "7a Rue du Saint-Eynard Meylan"
    # Abbreviations and a typo still find it, with a lower score.
    near = adr.geocode_in_table("7A R. du St Eynard", index)
    assert near.status == adr.TROUVEE and near.best.parcelles == ("38229000AC0507",)
    typo = adr.geocode_in_table("3 rue des Abeiles", index)
    assert typo.status == adr.TROUVEE and 0.75 <= typo.best.score < 1


@pytest.mark.parametrize(
    "query, fragment",
    [
        (
            "12 rue du Saint-Eynard",
            "numéro 12 absent de la voie « Rue du Saint-Eynard » (numéros connus : 2, 7, 9)",
        ),
        ("5 avenue des Lilas", "voie inconnue"),
        ("rue des Abeilles", "sans numéro de voie"),
    ],
)
def test_bal_not_found_is_an_answer(meylan, query, fragment):
    _, _, index = meylan
    g = adr.geocode_in_table(query, index)
    assert g.status == adr.INTROUVABLE and g.best is None and fragment in g.message


def test_same_address_in_two_communes_is_ambiguous(meylan):
    _, table, _ = meylan
    twin = table[table["voie"] == "Rue des Abeilles"].assign(code_insee="38185", commune="Grenoble", lon=5.72)
    both = pd.concat([table, twin], ignore_index=True)
    both.attrs.update(table.attrs)
    index = adr.index_addresses(both)
    g = adr.geocode_in_table("6 rue des Abeilles", index)
    assert g.status == adr.AMBIGUE and len(g.candidates) == 2 and "précisez la commune" in g.message
    assert adr.geocode_in_table("6 rue des Abeilles, Meylan", index).status == adr.TROUVEE


def test_bal_parcel_link_used_when_the_point_is_on_no_parcel(meylan):
    """The entrance point of a BAL sits on the street: its cad_parcelles link names the parcel."""
    _, _, index = meylan
    far = gpd.GeoDataFrame(
        {"idu": ["38229000AC0507", "38229000AC0505"]},
        geometry=[box(919000, 6461000, 919010, 6461010), box(919100, 6461000, 919110, 6461010)],
        crs="EPSG:2154",
    )
    (ans,) = adr.parcels_for_addresses(["7a rue du Saint-Eynard"], far, index=index, communes=["38229"])
    assert ans.idu == "38229000AC0507" and "cad_parcelles" in ans.message


def test_address_and_id_detection():
    assert adr.looks_like_address("12 rue Jean Jaurès, 62820 Libercourt")
    for text in ("91216 AC 100", "91216000AC100", "AC100", "000 AC 0100", "bad"):
        assert not adr.looks_like_address(text), text


# --------------------------------------------------------------------------------------------
# A 127.0.0.1 server answering like api-adresse.data.gouv.fr/search/


class _BanHandler(BaseHTTPRequestHandler):
    answers: dict = {}
    seen: list = []

    def do_GET(self):  # noqa: N802 - http.server API
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        self.seen.append((url.path, query))
        if url.path.rstrip("/") != "/search":
            self.send_error(404)
            return
        q = query.get("q", [""])[0]
        features = self.answers.get(q, [])
        body = json.dumps(
            {"type": "FeatureCollection", "version": "draft", "features": features, "attribution": "BAN",
             "licence": "ETALAB-2.0", "query": q, "limit": int(query.get("limit", ["5"])[0])}
        ).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _feature(label, score, lon, lat, *, kind="housenumber", citycode="91216"):
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"label": label, "score": score, "type": kind, "citycode": citycode,
                       "city": "Épinay-sur-Orge", "postcode": "91360", "id": "x"},
    }  # fmt: skip


@pytest.fixture
def ban_server(monkeypatch, epinay_ort):
    """The BAN API on 127.0.0.1, knowing the test address file's points."""
    table = pd.read_csv(epinay_ort["addresses"], sep=";", dtype=str)
    main_row = table[(table["numero"] == "12") & (table["nom_voie"] == "Rue Jean Jaurès")].iloc[0]
    answers = {
        "12 rue Jean Jaurès, 91360 Épinay-sur-Orge": [
            _feature(
                "12 Rue Jean Jaurès 91360 Épinay-sur-Orge", 0.97, float(main_row.lon), float(main_row.lat)
            ),
            _feature("Rue Jean Jaurès 91360 Épinay-sur-Orge", 0.71, 2.3185, 48.6795, kind="street"),
        ],
        "3 rue de la Paix": [
            _feature("3 Rue de la Paix 91360 Épinay-sur-Orge", 0.82, 2.31, 48.67),
            _feature("3 Rue de la Paix 91200 Athis-Mons", 0.81, 2.38, 48.70, citycode="91027"),
        ],
        "99 rue Imaginaire": [
            _feature("Rue Imaginée 91360 Épinay-sur-Orge", 0.42, 2.31, 48.67, kind="street")
        ],
    }
    handler = type("Handler", (_BanHandler,), {"answers": answers, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(settings, "ban_api_url", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setattr(settings, "http_retries", 1)
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


def test_ban_api_found_then_cached_and_offline(ban_server, monkeypatch):
    g = adr.geocode_online("12 rue Jean Jaurès, 91360 Épinay-sur-Orge", citycode="91216")
    assert g.status == adr.TROUVEE and g.best.score == 0.97 and g.best.code_insee == "91216"
    assert "API Adresse (BAN) http://127.0.0.1" in g.source
    path, query = ban_server.seen[0]
    assert path == "/search/" and query["citycode"] == ["91216"] and query["q"][0].startswith("12 rue")
    again = adr.geocode_online("12 rue Jean Jaurès, 91360 Épinay-sur-Orge", citycode="91216")
    assert again.best == g.best and len(ban_server.seen) == 1  # from the cache
    monkeypatch.setattr(settings, "offline", True)
    assert adr.geocode_online("12 rue Jean Jaurès, 91360 Épinay-sur-Orge", citycode="91216").best == g.best
    with pytest.raises(DownloadError, match="hors ligne.*--adresses"):
        adr.geocode_online("1 rue Nouvelle, 91360 Épinay-sur-Orge")


def test_ban_api_ambiguous_and_not_found_are_answers(ban_server):
    amb = adr.geocode_online("3 rue de la Paix")
    assert amb.status == adr.AMBIGUE and "Athis-Mons" in amb.message and "Épinay" in amb.message
    nf = adr.geocode_online("99 rue Imaginaire")
    assert nf.status == adr.INTROUVABLE and nf.best is None and "introuvable" in nf.message


def test_ban_api_garbage_is_refused_clearly(ban_server, monkeypatch, tmp_path):
    url = adr._ban_url("x y z", citycode=None, limit=5)
    key = __import__("hashlib").sha256(url.split("?", 1)[1].encode()).hexdigest()[:24]
    dest = http.cache_path(f"{url.split('?', 1)[0].rstrip('/')}/{key}.json")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text("<html>503</html>", encoding="utf-8")
    with pytest.raises(InputError, match="réponse de l'API BAN illisible"):
        adr.geocode_online("x y z")
    assert not dest.exists()  # a bad answer is not kept


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


def test_cli_check_address_through_the_ban_api(ban_server, epinay_ort):
    res = run(
        "check", "12 rue Jean Jaurès, 91360 Épinay-sur-Orge", "--perimeters", epinay_ort["folder"],
        "--date", "2025-03-01",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "Adresse trouvée : « 12 Rue Jean Jaurès 91360 Épinay-sur-Orge » (score 0,97" in res.output
    assert "parcelle AC 100 (91216000AC0100)" in res.output
    assert "91216000AC0100 — commune 91216, section AC, n° 100" in res.output
    res = run("check", "3 rue de la Paix", "--perimeters", epinay_ort["folder"], "--json")
    data = json.loads(res.stdout)
    assert res.exit_code == 0 and data["adresses"][0]["statut"] == "ambiguë" and data["parcelles"] == []


def test_cli_every_id_form_and_an_offline_address(epinay_ort):
    folder, addresses = epinay_ort["folder"], epinay_ort["addresses"]
    res = run(
        "check", "91216 AC 100", "91216000AC100", "AC100", "000 AC 0100", "12 rue Jean Jaurès",
        "--perimeters", folder, "--adresses", addresses, "--date", "2025-03-01", "--json",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [p["idu"] for p in data["parcelles"]] == ["91216000AC0100"]  # five entries, one parcel
    (found,) = data["adresses"]
    assert found["statut"] == "trouvée" and found["idu"] == "91216000AC0100" and found["score"] == 1.0
    assert found["source"].startswith("fichier BAN")
    res = run("check", "12 rue des Lilas", "--perimeters", folder, "--adresses", addresses)
    assert res.exit_code == 0 and "introuvable : voie inconnue" in res.output


def test_offline_address_file_found_in_the_cache(epinay_ort, monkeypatch):
    """Offline, the BAN file of the département already in the cache answers."""
    dest = http.cache_path(adr.BAN_DEPARTEMENT_URL.format(dep="91"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(epinay_ort["addresses"], "rb") as src, gzip.open(dest, "wb") as out:
        shutil.copyfileobj(src, out)
    monkeypatch.setattr(settings, "offline", True)
    res = run(
        "eligibility", "12 rue Jean Jaurès, 91360 Épinay-sur-Orge", "--perimeters", epinay_ort["folder"],
        "--date", "2025-03-01",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "parcelle AC 100 (91216000AC0100)" in res.output and "fichier BAN adresses-91.csv.gz" in res.output
    assert "Aides renforcées de l'Anah en OPAH-RU" in res.output and "CCH L303-1" in res.output


def test_cli_check_file_with_ids_and_addresses(epinay_ort, tmp_path):
    rows = tmp_path / "demandes.csv"
    rows.write_text(
        "idu;adresse;note\n91216 AC 100;;premier\n;13 rue Jean Jaurès;second\n;12 rue des Lilas;troisième\n",
        encoding="utf-8",
    )
    res = run(
        "check", "--file", rows, "--perimeters", epinay_ort["folder"], "--adresses", epinay_ort["addresses"],
        "--date", "2025-03-01", "--json",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert {p["idu"] for p in data["parcelles"]} == {"91216000AC0100", "91216000AC0011"}
    assert [a["statut"] for a in data["adresses"]] == ["trouvée", "introuvable"]
    only = tmp_path / "adresses.csv"
    only.write_text("adresse\n12 rue Jean Jaurès\n", encoding="utf-8")
    res = run(
        "check", "--file", only, "--perimeters", epinay_ort["folder"], "--adresses", epinay_ort["addresses"]
    )
    assert res.exit_code == 0 and "parcelle AC 100 (91216000AC0100)" in res.output


# --------------------------------------------------------------------------------------------
# Hostile address files: decompression bombs, rows without a usable point (issue 23)

_BAN_HEADER = b"id;numero;rep;nom_voie;code_postal;code_insee;nom_commune;lon;lat\n"
_BAN_ROW = b"91216_0010_00012;12;;Rue Jean Jaures;91360;91216;Epinay-sur-Orge;2.31;48.67\n"


def _bomb(path, size: int, opener=gzip.open) -> None:
    """An address file whose content is ``size`` bytes of valid BAN rows, compressed by ``opener``."""
    with opener(path, "wb") as f:
        f.write(_BAN_HEADER)
        block = _BAN_ROW * (2**20 // len(_BAN_ROW))
        for _ in range(size // len(block) + 1):
            f.write(block)


def test_address_bomb_refused_while_streaming(tmp_path, monkeypatch):
    """A few hundred kilobytes that expand to 24 Mo, under a 1 Mo bound: refused in French,
    whatever the compression and the file's name, and read no further than the bound."""
    import bz2
    import lzma

    monkeypatch.setattr(settings, "max_table_bytes", 2**20)
    for name, opener in (
        ("adresses-91.csv.gz", gzip.open),
        ("adresses-91.csv", gzip.open),  # gzip named .csv: told by its bytes
        ("adresses-91.csv.bz2", bz2.open),
        ("adresses-91.csv.xz", lzma.open),
    ):
        bomb = tmp_path / name
        _bomb(bomb, 24 * 2**20, opener)
        assert bomb.stat().st_size < 2**20
        for communes in (["91216"], None):
            with pytest.raises(InputError, match="trop volumineux : plus de 1 Mo une fois décomp") as err:
                adr.read_addresses(bomb, communes=communes)
            assert name in str(err.value) and "adresses-{dep}.csv.gz" in str(err.value)
    stream = adr.open_address_file(tmp_path / "adresses-91.csv.gz")
    with pytest.raises(adr.AddressFileTooLarge):
        stream.read()
    assert stream.raw.count <= 2**20 + 2**20  # stopped within one chunk of the bound
    small = tmp_path / "petit.csv.gz"
    with gzip.open(small, "wb") as f:
        f.write(_BAN_HEADER + _BAN_ROW * 10)
    assert len(adr.read_addresses(small)) == 10  # under the bound: read as before


def test_address_bomb_refused_by_every_front_end(epinay_ort, tmp_path, monkeypatch):
    """``ort check``, ``ort map``, ``ort note`` given the bomb: one French line, no internal error."""
    monkeypatch.setattr(settings, "max_table_bytes", 2**20)
    bomb = tmp_path / "adresses-91.csv.gz"
    _bomb(bomb, 24 * 2**20)
    folder = epinay_ort["folder"]
    for args in (
        ("check", "12 rue Jean Jaurès", "--perimeters", folder, "--adresses", bomb),
        ("map", "--perimeters", folder, "-o", tmp_path / "carte.html", "--adresses", bomb),
        ("note", "12 rue Jean Jaurès", "--perimeters", folder, "--adresses", bomb,
         "--output-dir", tmp_path / "notes"),
    ):  # fmt: skip
        res = run(*args)
        assert res.exit_code != 0, (args[0], res.output)
        assert "trop volumineux" in res.output and "Erreur interne" not in res.output, res.output
    assert not (tmp_path / "carte.html").exists() and not (tmp_path / "notes").exists()


def test_address_row_with_nan_and_inf_has_no_point(tmp_path):
    """``nan;inf`` coordinates: the number is known, without a point — said so, not "absent"."""
    path = tmp_path / "adresses.csv"
    path.write_text(
        "code_insee;numero;rep;nom_voie;lon;lat\n"
        "91216;12;;Rue Jean Jaurès;nan;inf\n91216;13;;Rue Jean Jaurès;2.31;1e308\n"
        "91216;14;;Rue Jean Jaurès;2.31;48.67\n",
        encoding="utf-8",
    )
    table = adr.read_addresses(path)
    assert table[["lon", "lat"]].iloc[:2].isna().all().all()  # neither half of a broken point
    index = adr.index_addresses(table)
    for number in ("12", "13"):
        g = adr.geocode_in_table(f"{number} rue Jean Jaurès", index)
        assert g.status == adr.INTROUVABLE and "absent" not in g.message, g.message
        assert f"n° {number} de la voie « Rue Jean Jaurès » est dans le fichier" in g.message
        assert "coordonnées manquent ou sont invalides" in g.message
        _, why = adr.find_address(index, code_insee="91216", adresse=f"{number} rue Jean Jaurès")
        assert "sans coordonnées valables" in why
    assert adr.geocode_in_table("14 rue Jean Jaurès", index).best.lat == 48.67


# --------------------------------------------------------------------------------------------
# Hostile BAN servers: slow, trickling, huge, malformed (issue 23)


class _HostileBan(BaseHTTPRequestHandler):
    """Each query ``q`` names a fault."""

    protocol_version = "HTTP/1.1"
    hits: list = []

    def log_message(self, *args):
        pass

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        import time

        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("q", [""])[0]
        self.hits.append(q)
        good = {"type": "FeatureCollection", "features": [_feature("1 Rue A 91360 X", 0.9, 2.3, 48.6)]}
        try:
            if q == "lent":  # answers after 6 s
                time.sleep(6)
                self._send(json.dumps(good).encode())
            elif q == "goutte":  # the status line a byte every 0.2 s (each wait under any timeout)
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}":
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.2)
            elif q == "corps-goutte":  # headers at once, then the body a byte every 0.2 s
                body = json.dumps(good).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.2)
            elif q == "nan":
                good["features"][0]["geometry"]["coordinates"] = [math.nan, 48.6]
                self._send(json.dumps(good).encode())  # NaN: what Python's json writes
            elif q == "hors-globe":
                bad = _feature("1 Rue A", 0.9, 2.3, 1e300)
                self._send(json.dumps({"type": "FeatureCollection", "features": [bad]}).encode())
            elif q == "score":
                bad = _feature("1 Rue A", 1e308, 2.3, 48.6)
                self._send(json.dumps({"type": "FeatureCollection", "features": [bad]}).encode())
            elif q == "profond":
                deep = b"[" * 100_000 + b"]" * 100_000
                self._send(b'{"type": "FeatureCollection", "features": ' + deep + b"}")
            elif q == "enorme":  # 3 Mo of valid JSON, over the 1 Mo bound
                pad = "x" * (3 * 2**20)
                self._send(json.dumps({"type": "FeatureCollection", "features": [], "pad": pad}).encode())
            else:
                self._send(json.dumps(good).encode())
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def hostile_ban(monkeypatch):
    _HostileBan.hits.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HostileBan)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(settings, "ban_api_url", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setattr(settings, "ban_deadline", 1.5)
    monkeypatch.setattr(settings, "http_timeout", 30.0)  # the default: only the deadline bounds a call
    monkeypatch.setattr(settings, "http_retries", 3)
    monkeypatch.setattr(settings, "http_backoff", 0.05)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("query", ["lent", "goutte", "corps-goutte"])
def test_slow_ban_server_cut_at_the_deadline(hostile_ban, query):
    import time

    start = time.monotonic()
    with pytest.raises(DownloadError) as err:
        adr.geocode_online(query)
    elapsed = time.monotonic() - start
    assert elapsed < 4, f"{query}: {elapsed:.1f} s"
    text = str(err.value)
    assert f"adresse « {query} »" in text and "délai total de 1.5 s dépassé" in text, text
    assert "ORT_BAN_URL" in text and "ORT_CADASTRE_URL" not in text and "--adresses" in text
    assert not [p for p in Path(settings.cache_dir).rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("nan", "valeur NaN"),
        ("hors-globe", "coordonnées hors du globe"),
        ("score", "score 1e+308 hors de 0…1"),
        ("profond", "JSON imbriqué sur 100001 niveaux"),
    ],
)
def test_malformed_ban_answer_refused_in_french(hostile_ban, query, why):
    with pytest.raises(InputError, match="réponse de l'API BAN illisible") as err:
        adr.geocode_online(query)
    assert why in str(err.value) and "ORT_BAN_URL" in str(err.value)
    assert not [p for p in Path(settings.cache_dir).rglob("*.json")]  # never kept


def test_huge_ban_answer_refused_once(hostile_ban):
    with pytest.raises(DownloadError, match="au-delà de la limite de 1 Mo") as err:
        adr.geocode_online("enorme")
    assert "ORT_BAN_URL" in str(err.value) and _HostileBan.hits.count("enorme") == 1  # not retried
    assert adr.geocode_online("bonne").best.label == "1 Rue A 91360 X"  # the server itself works
