"""QGIS itself reads the perimeters and parcels that ``ort serve`` publishes (OGC API – Features).

The client is QGIS 3.22's OAPIF provider, run by QGIS's own Python in a separate process
(``tests/qgis_client.py``), against ``ort serve`` started as a process on a free port. QGIS comes from
Debian (``bash .ci/install-qgis``); without it the test skips, and fails under ``CI=true``.
"""

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

QGIS_PYTHON = "/usr/bin/python3"
CLIENT = Path(__file__).with_name("qgis_client.py")


def _require_qgis() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    probe = [QGIS_PYTHON, "-c", "import qgis.core"]
    found = Path(QGIS_PYTHON).exists() and subprocess.run(probe, capture_output=True, env=env).returncode == 0
    if not found:
        reason = "QGIS (python3-qgis) is not installed: bash .ci/install-qgis"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)


def _all_items(base: str, collection: str) -> list[dict]:
    features, url = [], f"{base}/ogc/collections/{collection}/items?limit=1000"
    while url:
        page = httpx.get(url, timeout=60).json()
        features += page["features"]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    return features


def test_qgis_reads_the_perimeters_and_the_parcels(ort_server):
    _require_qgis()
    names = ["demo-perimetres", "demo-parcelles"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    run = subprocess.run(
        [QGIS_PYTHON, str(CLIENT), ort_server, *names], capture_output=True, text=True, timeout=300, env=env
    )
    assert run.returncode == 0, run.stderr[-2000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    for name in names:
        layer, served = seen[name], _all_items(ort_server, name)
        assert layer["valid"], f"QGIS refused {name}"
        assert layer["crs"] == "EPSG:4326"
        assert layer["count"] == len(served) > 0  # QGIS followed every `next` link
        assert layer["ids"] == sorted(str(f["id"]) for f in served)
        assert layer["empty_geometries"] == 0
        xs = [x for f in served for x in _coords(f["geometry"])[0]]
        ys = [y for f in served for y in _coords(f["geometry"])[1]]
        assert layer["extent"] == pytest.approx([min(xs), min(ys), max(xs), max(ys)], abs=1e-6)
    perimeters = seen["demo-perimetres"]
    assert {"perimetre_id", "nom", "type", "version"} <= set(perimeters["fields"])
    assert {"idu", "statut", "part"} <= set(seen["demo-parcelles"]["fields"])
    assert perimeters["qgis"].startswith("3.")


def _coords(geometry: dict) -> tuple[list[float], list[float]]:
    def flat(c):
        if isinstance(c[0], (int, float)):
            yield c
        else:
            for part in c:
                yield from flat(part)

    points = list(flat(geometry["coordinates"]))
    return [p[0] for p in points], [p[1] for p in points]
