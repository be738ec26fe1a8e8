"""From an address to a parcel: the real BAL extract, a 127.0.0.1 server answering like the BAN
API, the cache and offline mode, and ``ort check`` / ``ort eligibility`` given an address or an
id in every form notaires type.
"""

from __future__ import annotations

import gzip
import json
import shutil
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
