"""Shared fixtures: the real open data of ../shared/data, read in place.

Tests that need it use the ``shared_data`` fixture: they skip with a clear reason where the
folder is absent (a user's clone) and fail when ``CI=true`` (CI always has it).
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from geo import settings

_REPO = Path(__file__).resolve().parent.parent

#: The real open data, read in place: ``ORT_SHARED_DATA``, else ``../shared/data`` beside the checkout.
#: Only the tests know this folder; the product never defaults to it.
SHARED_DATA = Path(os.environ.get("ORT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def _require_shared(path: Path) -> Path:
    if path.exists():
        return path
    reason = (
        f"real open data not found at {path} (clone the project beside ../shared, or set ORT_SHARED_DATA)"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ../shared/data folder (skip when absent, fail under CI=true)."""
    return _require_shared(SHARED_DATA)


@pytest.fixture(scope="session")
def epinay_parcelles(shared_data: Path) -> Path:
    """Real Etalab parcels of Épinay-sur-Orge (91216, millésime 2022-01-01), WGS84 GeoJSON."""
    return _require_shared(
        shared_data / "cadastre-etalab-sample" / "91216-epinay-sur-orge" / "cadastre-91216-parcelles.json"
    )


@pytest.fixture(scope="session")
def saint_marcel_dir(shared_data: Path) -> Path:
    """Real Etalab parcelles, sections and feuilles of Saint-Marcel (73253, millésime 2019)."""
    return _require_shared(shared_data / "cadastre-etalab-sample" / "73253-saint-marcel")


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path_factory, monkeypatch):
    """Each test gets its own download cache and no progress bars."""
    monkeypatch.setattr(settings, "cache_dir", tmp_path_factory.mktemp("cache"))
    monkeypatch.setattr(settings, "progress", False)
    monkeypatch.setattr(settings, "offline", False)


#: The parcel the counter tests ask about, and the address written on it.
EPINAY_PARCEL = "91216000AC0100"
EPINAY_ADDRESS = "12 Rue Jean Jaurès"


@pytest.fixture(scope="session")
def epinay_ort(tmp_path_factory, epinay_parcelles: Path) -> dict:
    """A test convention on the real parcels of Épinay-sur-Orge (91216), with an address file.

    Drawn here around parcel AC 100 (:data:`EPINAY_PARCEL`): a centre-ville sector (disc of
    250 m), a station sector (box 500 m east), and an OPAH-RU perimeter whose western edge cuts
    AC 100 (from the avenant of 2024-07-01). The address file (BAN layout) is generated in code:
    one point per parcel within 700 m, at the parcel's representative point, on invented streets,
    with ``12 Rue Jean Jaurès`` on AC 100. Returns paths and the parcels (Lambert-93).
    """
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import box

    from geo.perimeters import perimeters_to_geojson
    from geo.sources.cadastre import read_parcels

    parcels = read_parcels(epinay_parcelles)
    target = parcels.set_index("idu").geometry[EPINAY_PARCEL]
    c = target.centroid
    x0, _, x1, _ = target.bounds
    sectors = {
        "initiale": [("centre-ville", "secteur", "Centre-ville", True, c.buffer(250))],
        "avenant-1": [
            ("centre-ville", "secteur", "Centre-ville", True, c.buffer(250)),
            (
                "gare",
                "secteur",
                "Quartier de la gare",
                False,
                box(c.x + 400, c.y - 250, c.x + 900, c.y + 250),
            ),
            (
                "opah-ru",
                "opah_ru",
                "OPAH-RU du centre",
                False,
                box((x0 + x1) / 2, c.y - 150, c.x + 300, c.y + 150),
            ),
        ],
    }
    folder = tmp_path_factory.mktemp("epinay-ort") / "epinay"
    folder.mkdir()
    for version, rows in sectors.items():
        gdf = gpd.GeoDataFrame(
            [{"id": i, "type": t, "nom": n, "centre_ville": cv} for i, t, n, cv, _ in rows],
            geometry=[g for *_, g in rows],
            crs=parcels.crs,
        )
        (folder / f"perimetres-{version}.geojson").write_text(perimeters_to_geojson(gdf), encoding="utf-8")
    (folder / "convention.toml").write_text(
        'nom = "ORT d\'Épinay-sur-Orge (essai)"\nprogramme = "PVD"\ncommunes = ["91216"]\n'
        "date_signature = 2023-01-18\nduree_ans = 5\nfictif = true\n"
        f'cadastre_dir = "{epinay_parcelles.parent.as_posix()}"\n'
        '[[versions]]\nid = "initiale"\nlibelle = "Convention initiale"\ndate_effet = 2023-01-18\n'
        'fichier = "perimetres-initiale.geojson"\n'
        '[[versions]]\nid = "avenant-1"\nlibelle = "Avenant n° 1 — gare et OPAH-RU"\n'
        "date_effet = 2024-07-01\n"
        'fichier = "perimetres-avenant-1.geojson"\n',
        encoding="utf-8",
    )
    near = parcels[parcels.geometry.distance(c) < 700].copy()
    near = near.assign(d=near.geometry.distance(c)).sort_values(["d", "idu"])
    streets = [
        "Rue Jean Jaurès",
        "Avenue de la Gare",
        "Rue de l'Église",
        "Allée des Tilleuls",
        "Rue Victor Hugo",
    ]
    pts = gpd.GeoSeries(near.geometry.representative_point(), crs=parcels.crs).to_crs(4326)
    rows, counters = [], {s: 0 for s in streets}
    for k, (idu, pt) in enumerate(zip(near["idu"], pts, strict=True)):
        if idu == EPINAY_PARCEL:
            street, num = "Rue Jean Jaurès", 12
        else:
            street = streets[k % len(streets)]
            counters[street] += 2
            num = counters[street] + (1 if street == "Rue Jean Jaurès" else 0)  # odd: 12 stays free
        rows.append(
            {
                "id": f"91216_{k:04d}_{num:05d}", "numero": num, "rep": "", "nom_voie": street,
                "code_postal": "91360", "code_insee": "91216", "nom_commune": "Épinay-sur-Orge",
                "lon": round(pt.x, 6), "lat": round(pt.y, 6), "type_position": "entrée", "cad_parcelles": idu,
            }
        )  # fmt: skip
    addresses = folder.parent / "adresses-91.csv"
    pd.DataFrame(rows).to_csv(addresses, sep=";", index=False)
    return {"folder": folder, "addresses": addresses, "parcels": parcels, "idu": EPINAY_PARCEL}


@pytest.fixture
def demo_copy(tmp_path) -> Path:
    """The embedded demo convention and its cadastre, copied (the convention points at ../../data/demo)."""
    shutil.copytree(_REPO / "perimeters" / "demo", tmp_path / "perimeters" / "demo")
    shutil.copytree(_REPO / "data" / "demo", tmp_path / "data" / "demo")
    return tmp_path / "perimeters" / "demo"


# --- ort serve as a real process (tests/test_server*.py) -------------------------------------


def at_once(n: int, ask) -> None:
    """``ask(k)`` for k in 0…n-1, in n threads released together (a barrier), then joined."""
    barrier = threading.Barrier(n)

    def run(k: int) -> None:
        barrier.wait()
        ask(k)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pdf_text(path, *, layout: bool = False) -> str:
    """The text of a PDF as ``pdftotext -raw`` (or ``-layout``) reads it (skip without poppler,
    fail under CI=true)."""
    import subprocess

    if not shutil.which("pdftotext"):
        msg = "pdftotext (poppler-utils, .ci/install-browser) is not installed"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    mode = "-layout" if layout else "-raw"
    out = subprocess.run(["pdftotext", mode, str(path), "-"], capture_output=True, check=True)
    return out.stdout.decode()


def wait_for_server(proc, base: str, *, seconds: float, log=None) -> None:
    """Wait until the ``ort serve`` process ``proc`` answers ``base/ogc``; fail (and kill it) if it
    exits or ``seconds`` pass, showing the end of its ``log`` file when there is one."""
    import time

    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{base}/ogc", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            tail = log.read_text(errors="replace")[-2000:] if log is not None else ""
            pytest.fail(f"ort serve did not start: {tail}")
        time.sleep(0.3)


@pytest.fixture(scope="session")
def demo_addresses(tmp_path_factory) -> Path:
    """A BAN-layout address file of the demo commune (62999), generated from its parcels:
    ``12 Rue de la Gare`` on 62999000AB0012, and ``3 Rue de la Mairie`` / ``3 Place de la Mairie``
    on two other parcels (``3 de la Mairie`` is ambiguous between them)."""
    import pandas as pd

    from geo import embedded
    from geo.sources.cadastre import read_parcels

    parcels = read_parcels(embedded.demo_dir() / "cadastre-62999-parcelles.json.gz").set_index("idu")
    spots = [
        ("62999000AB0012", 12, "Rue de la Gare"),
        ("62999000AB0013", 3, "Rue de la Mairie"),
        ("62999000AC0020", 3, "Place de la Mairie"),
    ]
    rows = []
    for k, (idu, num, street) in enumerate(spots):
        pt = parcels.geometry[[idu]].representative_point().to_crs(4326).iloc[0]
        rows.append(
            {
                "id": f"62999_{k:04d}_{num:05d}", "numero": num, "rep": "", "nom_voie": street,
                "code_postal": "62990", "code_insee": "62999", "nom_commune": "Ormeval-sur-Mer",
                "lon": round(pt.x, 6), "lat": round(pt.y, 6), "type_position": "entrée", "cad_parcelles": idu,
            }
        )  # fmt: skip
    path = tmp_path_factory.mktemp("adresses") / "adresses-62.csv"
    pd.DataFrame(rows).to_csv(path, sep=";", index=False)
    return path


@pytest.fixture(scope="session")
def ort_server(tmp_path_factory, demo_addresses):
    """``ort serve --perimeters demo --adresses …`` started as a process from an empty folder, on a
    free port; yields its base URL and stops it (SIGTERM) at the end of the session."""
    import signal
    import subprocess
    import sys

    empty = tmp_path_factory.mktemp("empty")
    port = free_port()
    log = empty.parent / f"ort-serve-{port}.log"
    env = {**os.environ, "ORT_CACHE_DIR": str(tmp_path_factory.mktemp("serve-cache"))}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "geo", "serve", "--perimeters", "demo", "--adresses", str(demo_addresses),
             "--port", str(port)],
            cwd=empty, stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_for_server(proc, base, seconds=180, log=log)
    try:
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def ort_wheel(tmp_path_factory) -> dict:
    """The wheel installed in a fresh venv, once per run (:func:`fresh_install.install_wheel`)."""
    from fresh_install import install_wheel

    return install_wheel(tmp_path_factory.mktemp("wheel"))
