"""The server's fast parcel answers (:mod:`geo.server.fast`) are the general answers, byte for byte.

A parcel's answer put together from the rows prepared once per regime, the check's parcel-free
part kept per date and the eligibility kept per situation must be the bytes that
:func:`geo.server.answers._compute` gives: on the demo's real shapes, at a date before the ORT
(no version in force: left to the general answer), under the initial version, on the day the
amendment takes effect, after it, and after the convention's end; on Libercourt (a convention
without digitised sectors: general answers only).
"""

from __future__ import annotations

import datetime as dt

import pytest

from geo.server import answers
from geo.server.catalogue import load_catalogue

BEFORE_ORT = dt.date(2023, 1, 2)
DAYS = [dt.date(2023, 6, 1), dt.date(2024, 7, 1), dt.date(2024, 9, 1), dt.date(2028, 6, 1)]


@pytest.fixture(scope="module")
def cat():
    return load_catalogue(["demo", "libercourt"])


def _general(cat, idu, name, day) -> bytes:
    return answers._json(answers._compute(cat, idu, name, day))


def _fast(cat, idu, item, day) -> bytes | None:
    fast = cat.fast_for(item)
    return fast.answer(
        cat,
        idu,
        day,
        lambda i: _general(cat, i, item.name, day),
        lambda i: answers._eligibility(cat, day, item, parcels=[(i, None)]),
    )


@pytest.mark.parametrize("day", DAYS)
def test_every_parcels_check_rows_are_the_general_check(cat, day):
    """The rows prepared for every parcel of the demo are those of ``ort check`` on all of them."""
    from geo.app import Settings, answer_parcels

    item = cat.conventions["demo"]
    fast = cat.fast_for(item)
    idus = item.parcels["idu"].tolist()
    d = fast._day(cat, day, lambda i: _general(cat, i, item.name, day))
    assert d  # prepared
    check = answer_parcels(idus, territoire=item.territoire, date=day, settings=Settings(progress=False))
    expected = {p.idu: p.model_dump(mode="json") for p in check.parcelles}
    assert len(expected) == len(idus) > 2000
    straddling = 0
    for idu in idus:
        got = fast._parcel(fast.positions[idu], idu, d.check)
        assert got == expected[idu], idu
        straddling += any(p["statut"] == "à cheval" for p in got["perimetres"])
    assert straddling > 50  # parcels on a perimeter's edge, not only easy cases


@pytest.mark.parametrize("day", DAYS)
def test_fast_answers_are_the_general_answers(cat, day):
    item = cat.conventions["demo"]
    idus = sorted(item.parcels["idu"])[::9]
    fast = cat.fast_for(item)
    answered = 0
    for idu in idus:
        got = _fast(cat, idu, item, day)
        assert got is not None, idu
        assert got == _general(cat, idu, "demo", day), idu
        answered += 1
    d = fast._days[day]
    kept = [s for s in d.situations.values() if s is not None]
    # most parcels share their situation with others: the kept eligibility served many of them
    assert answered > 250 and 0 < len(kept) < answered / 2


def test_no_version_in_force_is_left_to_the_general_answer(cat):
    item = cat.conventions["demo"]
    for idu in sorted(item.parcels["idu"])[:20]:
        assert _fast(cat, idu, item, BEFORE_ORT) is None
    body = answers.parcel_answer(cat, "62999000AB0012", BEFORE_ORT)
    assert body == _general(cat, "62999000AB0012", "demo", BEFORE_ORT)
    assert b'"verification":null' in body


def test_server_answers_through_the_fast_path_are_the_general_ones(cat):
    """``parcel_answer`` (what the route calls) gives the general bytes."""
    day = dt.date(2024, 9, 1)
    for text, commune in (("62999000AB0012", None), ("AB 12", "62999"), ("62999 AB 35", None)):
        body = answers.parcel_answer(cat, text, day, commune)
        idu, _ = answers.locate_parcel(cat, text, commune)
        assert body == _general(cat, idu, "demo", day)


def test_libercourt_has_general_answers_only(cat):
    item = cat.conventions["libercourt"]
    assert item.territoire is None and cat.fast_for(item) is None
    day = dt.date(2024, 9, 1)
    for idu in ("62907000AB0685", "62907000AC0012"):
        body = answers.parcel_answer(cat, idu, day)
        assert body == _general(cat, idu, "libercourt", day)
        assert b'"remarque"' in body


def test_an_answer_naming_its_parcel_elsewhere_is_never_kept():
    from geo.server.fast import BLANK, _blanked

    idu = "62999000AB0012"
    reply = {"idu": idu, "motif": "dans le secteur"}
    plain = {"resultats": [{"idu": idu, "reponses": [reply]}], "rejetes": []}
    kept = _blanked(plain, idu)
    assert kept is not None and kept.count(BLANK.encode()) == 2 and idu.encode() not in kept
    reply = {"idu": idu, "motif": f"la parcelle {idu}"}
    named = {"resultats": [{"idu": idu, "reponses": [reply]}], "rejetes": []}
    assert _blanked(named, idu) is None


def test_kept_answers_are_bounded(cat, monkeypatch):
    """Past the budget of kept eligibility answers, the oldest dates' are dropped; answers stay
    the general ones."""
    from geo.server.fast import FastParcels

    item = cat.conventions["demo"]
    fast = FastParcels(item)
    monkeypatch.setattr(FastParcels, "KEPT_BYTES", 200_000)
    idus = sorted(item.parcels["idu"])[::60]
    for day in (dt.date(2024, 9, 1), dt.date(2024, 9, 2), dt.date(2024, 9, 3)):
        for idu in idus:
            got = fast.answer(
                cat,
                idu,
                day,
                lambda i, day=day: _general(cat, i, item.name, day),
                lambda i, day=day: answers._eligibility(cat, day, item, parcels=[(i, None)]),
            )
            assert got == _general(cat, idu, "demo", day)
    kept = sum(len(t or b"") for d in fast._days.values() if d for t in d.situations.values())
    assert kept == fast._kept <= 200_000 + 40_000  # one answer over the budget at most
    assert not fast._days[dt.date(2024, 9, 1)].situations  # the oldest date's dropped


STRESS = """
import datetime as dt, sys, threading
from geo import prepared
from geo.app import Settings, open_territory

t = open_territory("demo", settings=Settings(offline=True, progress=False))
parcels = t.parcels
barrier = threading.Barrier(8)

def work(k):
    for r in range(int(sys.argv[1])):
        perims = t.convention.perimeters(dt.date(2024, 9, 1), in_force_only=True)  # not prepared yet
        barrier.wait()  # every thread asks at once, as requests of one worker do
        for j in range(20):
            i = (k * 97 + j * 13 + r) % len(parcels)
            prepared.classify_rows(parcels.iloc[i : i + 1], perims)

threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
[x.start() for x in threads]
[x.join() for x in threads]
print("ok")
"""


def test_threads_classifying_at_once_do_not_crash_the_process(tmp_path):
    """Eight threads classifying parcels against the same perimeters at once (a server worker's
    requests): GEOS prepares the shared geometries once, under :data:`geo.prepared.GEOMETRY_LOCK`.
    Without the lock this script died of a segmentation fault in 3 of 5 runs (GEOS, in
    contains_properly), as server workers did under load."""
    import subprocess
    import sys

    script = tmp_path / "stress.py"
    script.write_text(STRESS, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-X", "faulthandler", str(script), "40"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_kept_answers_memo_is_bounded_in_bytes():
    from geo.server.catalogue import Memo

    memo = Memo(100, max_bytes=1000)
    for k in range(20):
        assert memo.get(k, lambda k=k: bytes(300)) == bytes(300)
    assert len(memo._data) == 3 and memo._bytes == 900  # the three most recent
    assert memo.get(19, lambda: b"other") == bytes(300)  # kept: not computed again
    assert memo.get(0, lambda: b"again") == b"again"  # dropped long ago: computed again
