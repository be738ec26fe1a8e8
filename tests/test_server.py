"""``ort serve`` as a real process on a free port, asked by real clients: httpx for the API, GDAL's
OAPIF driver (through pyogrio) for the OGC API – Features, the CLI for the acceptance comparison.

The server (fixture ``ort_server`` in conftest) serves the embedded demo convention from an empty
folder, with an address file generated from the demo's parcels.
"""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

PARCEL, DAY = "62999000AB0012", "2024-09-01"


@pytest.fixture(scope="module")
def client(ort_server):
    with httpx.Client(base_url=ort_server, timeout=60) as c:
        yield c


def _problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


# --- acceptance: the server answers what the CLI answers ----------------------------------------


def _cli_json(args: list[str], cwd) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "geo", *args, "--json"], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_parcel_answer_equals_ort_check_and_eligibility(client, tmp_path):
    """From an empty folder, field by field: the perimeters of ``ort check --json`` and the
    dispositifs of ``ort eligibility --json`` for 62999000AB0012 on 2024-09-01."""
    r = client.get(f"/api/parcelles/{PARCEL}", params={"date": DAY})
    assert r.status_code == 200, r.text
    api = r.json()
    check = _cli_json(["check", PARCEL, "--perimeters", "demo", "--date", DAY], tmp_path)
    elig = _cli_json(["eligibility", PARCEL, "--perimeters", "demo", "--date", DAY], tmp_path)

    verif = api["verification"]
    for key in ("convention", "fictif", "date", "version", "version_date", "validite", "millesime_cadastre"):
        assert verif[key] == check[key], key
    assert len(verif["parcelles"]) == len(check["parcelles"]) == 1
    mine, theirs = verif["parcelles"][0], check["parcelles"][0]
    for key in ("idu", "code_insee", "section", "numero", "contenance"):
        assert mine[key] == theirs[key], key
    assert len(mine["perimetres"]) == len(theirs["perimetres"]) >= 4
    for a, b in zip(mine["perimetres"], theirs["perimetres"], strict=True):
        assert a == b
    statuts = {p["perimetre_id"]: p["statut"] for p in mine["perimetres"]}
    assert statuts["centre-ville"] == "à cheval"  # the demo's straddling parcel

    def without_empty_addresses(d: dict) -> dict:
        return {k: v for k, v in d.items() if not (k == "adresses" and not v)}

    # the same models, every field
    assert without_empty_addresses(api["eligibilite"]) == without_empty_addresses(elig)
    assert without_empty_addresses(verif) == without_empty_addresses(check)
    got, want = api["eligibilite"]["resultats"], elig["resultats"]
    assert [t["idu"] for t in got] == [t["idu"] for t in want] == [PARCEL]
    assert got[0]["contexte"] == want[0]["contexte"]
    assert len(got[0]["reponses"]) == len(want[0]["reponses"]) >= 5
    for a, b in zip(got[0]["reponses"], want[0]["reponses"], strict=True):
        for key in b:  # verdict, motif, reference, dates, caveats… every field the CLI prints
            assert a[key] == b[key], (b["regle"], key)
    assert api["eligibilite"]["convention"]["version"] == elig["convention"]["version"]


# --- the API -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "params"),
    [
        ("62999000AB0012", {}),
        ("62999 AB 12", {}),
        ("62999000AB12", {}),
        ("AB 12", {"commune": "62999"}),
        ("ab0012", {"commune": "62999"}),
    ],
)
def test_ids_as_people_type_them(client, typed, params):
    r = client.get(f"/api/parcelles/{typed}", params={"date": "01/09/2024", **params})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["idu"] == PARCEL and body["date"] == DAY
    assert body["verification"]["parcelles"][0]["idu"] == PARCEL


def test_date_selects_the_version_in_force(client):
    before = client.get(f"/api/parcelles/{PARCEL}", params={"date": "2023-06-01"}).json()
    after = client.get(f"/api/parcelles/{PARCEL}", params={"date": DAY}).json()
    assert before["verification"]["version"] == "initiale"
    assert after["verification"]["version"] == "avenant-1"


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/api/parcelles/XX?date=2024-09-01", 400, "14"),
        ("/api/parcelles/62999000AB0012?date=31/02/2024", 400, "date"),
        ("/api/parcelles/62999000ZZ0012?date=2024-09-01", 400, "section"),
        ("/api/parcelles/62999000AB9999?date=2024-09-01", 404, "absente"),
        ("/api/communes/999/eligibilite", 400, "INSEE"),
        ("/api/communes/00000/eligibilite", 400, "inconnu"),
        ("/api/adresses?q=ab", 400, "q"),
        ("/api/nulle-part", 404, "aucune ressource"),
        ("/ogc/collections/..%2F..%2Fetc%2Fpasswd/items", 404, ""),
        ("/ogc/collections/..%5Cdemo/items", 400, "refusé"),
        ("/ogc/collections/demo-perimetres/items?bbox=1,2,3", 400, "bbox"),
        ("/ogc/collections/demo-perimetres/items?limit=0", 400, "limit"),
        ("/ogc/collections/demo-perimetres/items?datetime=hier", 400, "datetime"),
    ],
)
def test_bad_input_is_a_french_problem_never_a_500(client, path, status, words):
    body = _problem(client.get(path), status)
    assert words.lower() in json.dumps(body, ensure_ascii=False).lower()
    assert "Traceback" not in body["detail"]


def test_problem_carries_the_fix(client):
    body = _problem(client.get(f"/api/parcelles/{PARCEL}", params={"date": "2024-13-45"}), 400)
    assert "2024-13-45" in body["detail"] and "AAAA-MM-JJ" in body["correction"]
    body = _problem(client.get("/api/parcelles/62999000ZZ0012", params={"date": DAY}), 400)
    assert "0A, 0B" in body["detail"] and "section" in body["correction"]


def test_commune_answer(client):
    r = client.get("/api/communes/62999/eligibilite", params={"date": DAY})
    assert r.status_code == 200, r.text
    body = r.json()
    answers = body["resultats"][0]["reponses"]
    denormandie = next(a for a in answers if a["regle"] == "denormandie")
    assert denormandie["verdict"] == "oui" and denormandie["reference"]
    assert body["convention"]["nom"].startswith("ORT d'Ormeval")
    # A real commune served by no convention here: the national lists answer.
    r = client.get("/api/communes/62907/eligibilite", params={"date": DAY})
    assert r.status_code == 200 and r.json()["resultats"][0]["code_insee"] == "62907"


def test_address_found_then_answered(client):
    r = client.get("/api/adresses", params={"q": "12 rue de la Gare, Ormeval-sur-Mer", "date": DAY})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["adresse"]["statut"] == "trouvée" and body["adresse"]["idu"] == PARCEL
    assert body["reponse"]["idu"] == PARCEL and body["reponse"]["verification"]["version"] == "avenant-1"


def test_ambiguous_address_gives_candidates(client):
    r = client.get("/api/adresses", params={"q": "3 de la Mairie", "date": DAY})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["adresse"]["statut"] == "ambiguë" and body["reponse"] is None
    assert {c["libelle"].split(" ", 1)[1].split(" Ormeval")[0] for c in body["adresse"]["candidats"]} == {
        "Rue de la Mairie",
        "Place de la Mairie",
    }


def test_note_pdf(client, tmp_path):
    r = client.get(f"/api/parcelles/{PARCEL}/note.pdf", params={"date": DAY})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf" and r.content.startswith(b"%PDF")
    pdf = tmp_path / "note.pdf"
    pdf.write_bytes(r.content)
    import shutil

    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
        assert "AB" in text and "0012" in text and "Denormandie" in text


def test_batch_csv_for_french_excel_and_xlsx(client, tmp_path):
    src = "idu;commune\n62999000AB0012;\nAB 13;62999\n"
    files = {"fichier": ("parcelles.csv", src.encode("utf-8"), "text/csv")}
    r = client.post("/api/verifications", params={"date": DAY}, files=files)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    text = r.content.decode("utf-8-sig")
    head, *rows = text.splitlines()
    assert head.split(";")[0] == "idu" and "statut" in head.split(";")
    assert {row.split(";")[0] for row in rows} == {PARCEL, "62999000AB0013"}
    assert any(",0" in row for row in rows)  # decimal comma
    r = client.post("/api/verifications", params={"date": DAY, "format": "xlsx"}, files=files)
    assert r.status_code == 200 and r.content[:2] == b"PK"
    import openpyxl

    path = tmp_path / "r.xlsx"
    path.write_bytes(r.content)
    cells = [c for row in openpyxl.load_workbook(path).active.iter_rows(values_only=True) for c in row]
    assert PARCEL in cells


def test_batch_formula_stays_text(client):
    files = {"fichier": ("p.csv", b'idu;note\n62999000AB0012;=HYPERLINK("http://x")\n', "text/csv")}
    r = client.post("/api/verifications", params={"date": DAY}, files=files)
    assert r.status_code == 200, r.text
    assert ";=HYPERLINK" not in r.content.decode("utf-8-sig")


def test_huge_upload_refused_before_it_is_read(client):
    big = b"idu\n" + b"62999000AB0012\n" * 300_000  # 4.5 MB
    r = client.post("/api/verifications", files={"fichier": ("p.csv", big, "text/csv")})
    body = _problem(r, 413)
    assert "Mo" in body["correction"]

    def chunks():  # no Content-Length: cut while streaming
        boundary = b'--x\r\nContent-Disposition: form-data; name="fichier"; filename="p.csv"\r\n\r\n'
        yield boundary
        for _ in range(80):
            yield b"62999000AB0012\n" * 4000
        yield b"\r\n--x--\r\n"

    r = client.post(
        "/api/verifications", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"}
    )
    _problem(r, 413)


@pytest.mark.parametrize(
    ("name", "content", "status"),
    [("p.exe", b"MZ", 415), ("p.csv", b"autre\nx\n", 400), ("p.csv", b"\xff\xfe\x00garbage", 400)],
)
def test_bad_uploads(client, name, content, status):
    r = client.post("/api/verifications", files={"fichier": (name, content, "text/csv")})
    _problem(r, status)


def test_openapi_and_offline_docs(client):
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    paths = ["/api/parcelles/{idu}", "/api/adresses", "/api/communes/{insee}/eligibilite"]
    paths += ["/api/parcelles/{idu}/note.pdf", "/api/verifications", "/ogc/collections/{collection_id}/items"]
    for path in paths:
        assert path in spec["paths"], path
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "https://" not in docs.text and "//cdn" not in docs.text
    for asset in ("/static/swagger/swagger-ui-bundle.js", "/static/swagger/swagger-ui.css"):
        assert client.get(asset).status_code == 200


def test_page_served_with_local_assets(client):
    page = client.get("/")
    assert page.status_code == 200
    assert "https://" not in page.text and "http://" not in page.text
    for asset in ("/static/leaflet/leaflet.js", "/static/leaflet/leaflet.css", "/static/ort/page.js",
                  "/static/ort/page.css"):  # fmt: skip
        assert asset in page.text
        assert client.get(asset).status_code == 200
    assert client.get("/static/ort/../../catalogue.py").status_code == 404


# --- OGC API – Features ------------------------------------------------------------------------


def test_ogc_landing_conformance_collections(client):
    landing = client.get("/ogc").json()
    rels = {link["rel"] for link in landing["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= rels
    conf = client.get("/ogc/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conf
    ids = {c["id"] for c in client.get("/ogc/collections").json()["collections"]}
    assert ids == {"demo-perimetres", "demo-parcelles"}


def test_ogc_items_paging_bbox_datetime(client):
    url = "/ogc/collections/demo-parcelles/items"
    first = client.get(url, params={"limit": 50, "datetime": DAY})
    assert first.headers["content-type"].startswith("application/geo+json")
    body = first.json()
    assert body["numberReturned"] == 50 and body["numberMatched"] > 2000
    nxt = next(link["href"] for link in body["links"] if link["rel"] == "next")
    second = httpx.get(nxt, timeout=30).json()
    assert {f["id"] for f in second["features"]}.isdisjoint({f["id"] for f in body["features"]})
    one = next(f for f in client.get(url, params={"limit": 1000}).json()["features"])
    lon, lat = one["geometry"]["coordinates"][0][0][:2] if one["geometry"]["type"] == "Polygon" else (0, 0)
    small = client.get(url, params={"bbox": f"{lon - 1e-4},{lat - 1e-4},{lon + 1e-4},{lat + 1e-4}"}).json()
    assert 0 < small["numberMatched"] < 20
    cv = client.get(url + f"/{PARCEL}", params={"datetime": DAY}).json()
    assert cv["properties"]["statut"] == "à cheval"
    perims = "/ogc/collections/demo-perimetres/items"
    v1 = client.get(perims, params={"datetime": "2023-06-01"}).json()
    v2 = client.get(perims, params={"datetime": "2024-09-01T12:00:00Z"}).json()
    assert {f["properties"]["version"] for f in v1["features"]} == {"initiale"}
    assert {f["properties"]["version"] for f in v2["features"]} == {"avenant-1"}
    assert client.get(perims, params={"datetime": "2020-01-01"}).json()["numberMatched"] == 0


def test_gdal_oapif_driver_lists_and_reads_the_perimeters(ort_server):
    pyogrio = pytest.importorskip("pyogrio")
    source = f"OAPIF:{ort_server}/ogc"
    layers = {name for name, _ in pyogrio.list_layers(source)}
    assert {"demo-perimetres", "demo-parcelles"} <= layers
    gdf = pyogrio.read_dataframe(source, layer="demo-perimetres")
    assert len(gdf) == 5 and gdf.crs is not None and gdf.crs.to_string() == "OGC:CRS84"
    assert {"perimetre_id", "nom", "type", "version"} <= set(gdf.columns)
    assert gdf.geometry.is_valid.all()
    minx, miny, maxx, maxy = gdf.total_bounds
    assert 0 < minx < maxx < 2 and 50 < miny < maxy < 51.5  # lon/lat, not swapped
    parcels = pyogrio.read_dataframe(source, layer="demo-parcelles", max_features=300)
    assert len(parcels) == 300 and set(parcels["statut"].dropna()) <= {
        "incluse",
        "à cheval",
        "hors périmètre",
    }


def test_unknown_collection_names_the_known_ones(client):
    body = _problem(client.get("/ogc/collections/autre/items"), 404)
    assert "demo-perimetres" in body["correction"]


# --- ort serve's options ---------------------------------------------------------------------------


def test_serve_refuses_a_folder_that_is_no_convention(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "geo", "serve", "--perimeters", str(tmp_path / "nulle-part"), "--port", "0"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode != 0
    assert "convention" in out.stderr and "Traceback" not in out.stderr
    assert out.stderr.strip().startswith("Erreur :")


def test_conventions_folder_on_two_workers_then_sigterm(demo_copy, tmp_path):
    """``--conventions`` (a folder of convention folders) served by 2 worker processes, each
    answering from its own memory; SIGTERM stops them all."""
    import signal

    import psutil
    from conftest import free_port, wait_for_server

    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "geo", "serve", "--conventions", str(demo_copy.parent), "--workers", "2",
             "--port", str(port)],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=out,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(proc, base, seconds=240, log=log)
        kids = psutil.Process(proc.pid).children(recursive=True)
        assert len([k for k in kids if "resource_tracker" not in " ".join(k.cmdline())]) >= 2
        ids = {c["id"] for c in httpx.get(f"{base}/ogc/collections", timeout=30).json()["collections"]}
        assert ids == {"demo-perimetres", "demo-parcelles"}
        r = httpx.get(f"{base}/api/parcelles/{PARCEL}", params={"date": DAY}, timeout=120)
        assert r.status_code == 200 and r.json()["convention_id"] == "demo"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    _, alive = psutil.wait_procs(kids, timeout=20)
    assert [" ".join(k.cmdline()) for k in alive if k.status() != psutil.STATUS_ZOMBIE] == []


def test_every_subpackage_and_the_page_files_are_installed():
    """``pip install .`` ships every geo subpackage (geo.app, geo.server…) and the server's page
    files: pyproject lists its packages by name, so a new one must be added there."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    conf = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    subs = {f"geo.{p.name}" for p in (root / "geo").iterdir() if (p / "__init__.py").is_file()}
    assert subs - set(conf["packages"]) == set()
    data = conf["package-data"]["geo.server"]
    assert "static/*" in data and "templates/*" in data
    assert {"page.js", "page.css"} <= {p.name for p in (root / "geo" / "server" / "static").iterdir()}
    deps = " ".join(
        conf_deps
        for conf_deps in tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    )
    for name in ("fastapi", "uvicorn", "python-multipart", "swagger-ui-bundle-v2", "xstatic-leaflet"):
        assert name in deps, name


# --- real parcels ----------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_real_parcels_of_epinay_served_as_the_cli_answers(epinay_ort, tmp_path):
    """A convention drawn on the real Etalab parcels of Épinay-sur-Orge (91216) and a BAN address
    file: the server's parcel and address answers are the CLI's, GDAL reads its perimeters."""
    import signal

    from conftest import free_port, wait_for_server

    port = free_port()
    folder, addresses, idu = epinay_ort["folder"], epinay_ort["addresses"], epinay_ort["idu"]
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "geo", "serve", "--perimeters", str(folder), "--adresses", str(addresses),
             "--port", str(port)],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=out,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(proc, base, seconds=240, log=log)
        api = httpx.get(f"{base}/api/parcelles/91216 AC 100", params={"date": DAY}, timeout=120).json()
        cli = _cli_json(["check", idu, "--perimeters", str(folder), "--date", DAY], tmp_path)
        assert api["idu"] == idu
        assert api["verification"]["parcelles"] == cli["parcelles"]
        statuts = {p["perimetre_id"]: p["statut"] for p in api["verification"]["parcelles"][0]["perimetres"]}
        assert statuts["centre-ville"] == "incluse" and statuts["opah-ru"] == "à cheval"
        found = httpx.get(
            f"{base}/api/adresses",
            params={"q": "12 Rue Jean Jaurès, Épinay-sur-Orge", "date": DAY},
            timeout=120,
        ).json()
        assert found["adresse"]["idu"] == idu and found["reponse"]["idu"] == idu
        import pyogrio

        name = next(n for n, _ in pyogrio.list_layers(f"OAPIF:{base}/ogc") if n.endswith("-perimetres"))
        gdf = pyogrio.read_dataframe(f"OAPIF:{base}/ogc", layer=name)
        assert set(gdf["perimetre_id"]) == {"centre-ville", "gare", "opah-ru", "ort"}
        minx, miny, maxx, maxy = gdf.total_bounds
        assert 2.2 < minx < maxx < 2.4 and 48.6 < miny < maxy < 48.7  # Épinay-sur-Orge, lon/lat
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def test_sigterm_lets_requests_in_flight_finish(tmp_path):
    """SIGTERM while notes are being drawn: they are all delivered, then the server exits (0) and
    refuses new connections."""
    import signal
    import threading
    import time

    from conftest import free_port, wait_for_server

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "geo", "serve", "--perimeters", "demo", "--port", str(port)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_for_server(proc, base, seconds=240)
    results: list = []

    def ask(idu: str) -> None:
        try:
            r = httpx.get(f"{base}/api/parcelles/{idu}/note.pdf", params={"date": DAY}, timeout=120)
            results.append((r.status_code, r.content[:4]))
        except httpx.HTTPError as err:
            results.append((type(err).__name__, b""))

    threads = [threading.Thread(target=ask, args=(i,)) for i in ("62999000AB0012", "62999000AB0013")]
    for t in threads:
        t.start()
    time.sleep(0.5)  # the requests are in flight
    proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(timeout=120)
    assert proc.wait(timeout=60) == 0
    assert results == [(200, b"%PDF"), (200, b"%PDF")]
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{base}/ogc", timeout=5)
