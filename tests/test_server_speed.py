"""The structures a server prepares once give the answers the general code gives.

A request for one parcel reads structures derived once from the loaded layers
(:mod:`geo.prepared`: an index of ids, the sections of each commune, the eligibility areas of a
date, the engine's rows without its tables) and embeds the font subsets already made
(:mod:`geo.pdf_fonts`). These tests compare each with the code it stands for, on the demo's
real shapes: same rows, same tables, same PDF bytes.
"""

from __future__ import annotations

import datetime as dt
import gc
import math
import re

import pandas as pd
import pytest

from geo import classify, prepared
from geo.check import PARCEL_FIELDS, _few_with_parcel_fields, with_parcel_fields

DAYS = [dt.date(2023, 6, 1), dt.date(2024, 9, 1), dt.date(2025, 3, 1)]


@pytest.fixture(scope="module")
def territoire():
    from geo.app import Settings, open_territory

    return open_territory("demo", settings=Settings(offline=True, progress=False))


def _same(a, b) -> bool:
    return all(
        x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))
        for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("day", DAYS)
def test_classify_rows_are_the_engines_rows(territoire, day):
    perimeters = territoire.perimeters_at(day)
    parcels = territoire.parcels
    picks = [[k] for k in range(0, len(parcels), 97)] + [[3, 500, 501, 2000]]
    straddling = 0
    for positions in picks:
        few = parcels.iloc[positions]
        for with_distance in (True, False):
            expected = [
                tuple(r)
                for r in classify.classify_parcels(few, perimeters, with_distance=with_distance).itertuples()
            ]
            got = [tuple(r) for r in prepared.classify_rows(few, perimeters, with_distance=with_distance)]
            assert len(got) == len(expected)
            assert all(_same(g, e) for g, e in zip(got, expected, strict=True)), (positions, got, expected)
            straddling += sum(r[5] == classify.STRADDLING for r in got)
    assert straddling > 0  # the sample has parcels on a perimeter's edge, not only easy cases
    assert prepared.classify_rows(parcels.iloc[:100], perimeters) is None  # many parcels: the engine


def test_few_parcels_table_is_the_merged_table(territoire):
    perimeters = territoire.perimeters_at(DAYS[1])
    few = territoire.parcels.iloc[[5, 7, 2000]]
    result = classify.classify_parcels(few, perimeters)
    cols = [c for c in PARCEL_FIELDS if c in few.columns]
    fast = _few_with_parcel_fields(result, few, cols, {"version": "v1"})
    merged = result.merge(pd.DataFrame(few[cols]), on="idu", how="left")
    merged.insert(
        merged.columns.get_loc("status") + 1, "statut", merged["status"].map(classify.STATUS_LABELS)
    )
    merged = merged[cols + [c for c in merged.columns if c not in cols]].assign(version="v1")
    assert list(fast.columns) == list(merged.columns)
    assert fast.dtypes.to_dict() == merged.dtypes.to_dict()
    assert fast.astype(object).equals(merged.astype(object))
    assert with_parcel_fields(result, few, {"version": "v1"}).astype(object).equals(merged.astype(object))


def test_rows_with_idu_is_isin_with_repeats_and_unknown_ids(territoire):
    parcels = territoire.parcels
    ids = [parcels["idu"].iloc[k] for k in (900, 3, 3)] + ["62999000ZZ9999"]
    assert prepared.rows_with_idu(parcels, ids).equals(parcels[parcels["idu"].isin(ids)])
    doubled = pd.concat([parcels.iloc[:10], parcels.iloc[[4]]])  # a cadastre holding one id twice
    got = prepared.rows_with_idu(doubled, [doubled["idu"].iloc[4]])
    assert len(got) == 2 and got.equals(doubled[doubled["idu"] == doubled["idu"].iloc[4]])
    code = parcels["code_insee"].iloc[0]
    assert prepared.sections_of(parcels, code) == set(parcels[parcels["code_insee"] == code]["section"])


def test_structures_go_with_their_frame():
    import geopandas as gpd

    before = len(prepared._by_frame)
    for k in range(50):
        frame = gpd.GeoDataFrame({"idu": [f"62999000AB{k:04d}"], "code_insee": ["62999"], "section": ["AB"]})
        assert prepared.rows_with_idu(frame, [f"62999000AB{k:04d}"]).equals(frame)
        del frame
    gc.collect()
    assert len(prepared._by_frame) <= before


def test_commune_record_is_a_copy():
    from geo.sources.lists import load_lists

    lists = load_lists(None)
    first = lists.commune("62907")
    assert first is not None and first["code_insee"] == "62907"
    first["nom"] = "changé"
    assert lists.commune("62907")["nom"] != "changé"
    assert lists.commune("99999") is None


def test_note_with_kept_font_subsets_is_the_same_pdf(territoire, tmp_path):
    """A server's next notes embed the font subsets and text layouts it kept: the same PDF bytes as
    the note a fresh process draws with an empty cache (fonts cut, texts laid out anew)."""
    import os
    import subprocess
    import sys

    from geo import app

    idu = "62999000AB0012"

    def bare(pdf: bytes) -> bytes:
        return re.sub(rb"/CreationDate \(D:\d+Z\)", b"", pdf)

    def note() -> bytes:
        return bare(app.note_pdf(idu, territoire=territoire, date=DAYS[1]))

    kept = [note(), note()]  # the second from what the first kept
    fresh = tmp_path / "fresh.pdf"
    script = (
        "import datetime as dt, sys\n"
        "from pathlib import Path\n"
        "from geo.app import Settings, open_territory, note_pdf\n"
        "t = open_territory('demo', settings=Settings(offline=True, progress=False))\n"
        f"day = dt.date.fromisoformat({DAYS[1].isoformat()!r})\n"
        f"Path(sys.argv[1]).write_bytes(note_pdf({idu!r}, territoire=t, date=day))\n"
    )
    env = {**os.environ, "ORT_CACHE_DIR": str(tmp_path / "empty-cache")}
    subprocess.run([sys.executable, "-c", script, str(fresh)], check=True, env=env, timeout=300)
    assert any((tmp_path / "empty-cache").rglob("*"))  # the fresh process cut its fonts there
    assert kept[0] == kept[1] == bare(fresh.read_bytes())


def test_a_note_past_the_queue_is_a_503_with_retry_after(monkeypatch):
    """Notes drawn at once are bounded per worker: past the queue the answer is a French problem
    document with Retry-After (before, a worker busy drawing missed its health check and was killed
    with every request in flight)."""
    from fastapi.testclient import TestClient

    from geo.server import answers
    from geo.server.app import create_app

    monkeypatch.setattr(answers, "NOTE_WAIT_S", 0.05)
    gate = answers._notes_gate
    taken = 0
    while gate.acquire(blocking=False):
        taken += 1
    try:
        assert taken == answers.NOTES_IN_FLIGHT
        client = TestClient(create_app(["demo"]))
        r = client.get("/api/parcelles/62999000AB0012/note.pdf", params={"date": "2024-09-01"})
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "trop de notes" in r.json()["detail"] and "réessayez" in r.json()["correction"]
    finally:
        for _ in range(taken):
            gate.release()
    r = client.get("/api/parcelles/62999000AB0012/note.pdf", params={"date": "2024-09-01"})
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
