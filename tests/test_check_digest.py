"""``ort check ID`` from a convention's digest (:mod:`geo.check_digest`) prints what the general
path prints, byte for byte, and imports neither pandas nor geopandas.

Each case runs the real command twice as fresh processes with an empty cache folder: the first
answer comes from the general path (which leaves the digest), the second from the digest when it
can answer. Both must print the same bytes on stdout and stderr and end with the same code —
ids in every form a person types, several ids, JSON, dates before the ORT, on the day the
amendment takes effect, after the convention's end, and errors (which the general path answers).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ID = "62999000AB0012"
CASES = [
    [ID, "--date", "2024-09-01"],
    [ID, "--date", "2024-09-01", "--json"],
    ["AB 12", "--commune", "62999", "--date", "2024-09-01"],
    ["AB 12", "--date", "01/09/2024"],
    ["62999 AB 35", "--date", "2023-06-01"],
    ["000 AB 0012", "62999000AB0035", "--date", "2024-07-01", "--json"],
    [ID, "--date", "2028-06-01"],  # after the convention's end: the expiry note
    [ID],  # today
    # errors: answered by the general path both times
    ["62999000ZZ9999", "--date", "2024-09-01"],
    ["AB 12", "--commune", "62998", "--date", "2024-09-01"],
    [ID, "--date", "2023-01-02"],  # before the first version
    [ID, "--date", "2024-13-45"],
]


def _run(args: list[str], cache: Path, cwd: Path) -> tuple[int, str, str]:
    env = {**os.environ, "ORT_CACHE_DIR": str(cache), "ORT_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "geo", "check", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("args", CASES, ids=lambda a: " ".join(a))
def test_digest_answer_is_the_general_answer(args, tmp_path):
    cache = tmp_path / "cache"
    full = [*args[:1], *args[1:], "--perimeters", "demo"]
    general = _run(full, cache, tmp_path)
    assert not general[0] or general[2].strip(), general  # an error says why
    again = _run(full, cache, tmp_path)
    assert again == general


def _modules_after(args: list[str], cache: Path, cwd: Path) -> set[str]:
    code = (
        "import json, sys\n"
        "from geo.cli import main\n"
        f"main({args!r}, standalone_mode=False)\n"
        "print('\\nMODULES', json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    env = {**os.environ, "ORT_CACHE_DIR": str(cache), "ORT_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return set(json.loads(done.stdout.rsplit("MODULES ", 1)[1]))


HEAVY = {"pandas", "geopandas", "shapely", "pyproj", "pyarrow", "numpy", "matplotlib", "numba"}


def test_one_parcel_check_imports_no_pandas(tmp_path):
    """The second `ort check ID` of a convention (and the first at another date of the same
    version) reads the digest: none of the scientific stack is imported; --json needs pydantic."""
    cache = tmp_path / "cache"
    args = ["check", ID, "--perimeters", "demo", "--date", "2024-09-01"]
    assert "geopandas" in _modules_after(args, cache, tmp_path)  # the first: the general path
    for more in ([], ["--json"], ["--commune", "62999"]):
        loaded = _modules_after([*args, *more], cache, tmp_path)
        assert not loaded & HEAVY, f"ort check {more} imports {sorted(loaded & HEAVY)}"
    other_day = ["check", "AB 35", "--perimeters", "demo", "--date", "2025-02-01"]
    assert not _modules_after(other_day, cache, tmp_path) & HEAVY


def test_a_changed_file_sends_back_to_the_general_path(tmp_path):
    """A perimeter file edited after the digest was written: the digest is not trusted."""
    from geo import embedded

    folder = tmp_path / "demo"
    shutil.copytree(embedded.convention_dir("demo"), folder)
    toml = folder / "convention.toml"
    text = toml.read_text(encoding="utf-8")
    here = f'cadastre_dir = "{embedded.demo_dir().as_posix()}"'
    toml.write_text(text.replace('cadastre_dir = "../../data/demo"', here), encoding="utf-8")
    cache = tmp_path / "cache"
    args = ["check", ID, "--perimeters", str(folder), "--date", "2024-09-01"]
    first = _modules_after(args, cache, tmp_path)
    assert "geopandas" in first
    assert not _modules_after(args, cache, tmp_path) & HEAVY
    geojson = folder / "perimetres-avenant-1.geojson"
    geojson.write_text(geojson.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert "geopandas" in _modules_after(args, cache, tmp_path)  # changed: general path again
    assert not _modules_after(args, cache, tmp_path) & HEAVY  # and a new digest


def test_status_labels_are_the_engines():
    from geo.check_text import STATUS_LABELS
    from geo.classify import STATUS_LABELS as ENGINE

    assert STATUS_LABELS == ENGINE


def test_a_check_that_warned_leaves_no_digest():
    """The warnings shown during the general path are noted (and still shown): `ort check` writes
    no digest then, since the digest's answer would not say them again."""
    import warnings

    from geo.cli.parcels import _noting_warnings
    from geo.errors import OrtWarning

    shown = []
    with warnings.catch_warnings():
        warnings.simplefilter("always", OrtWarning)
        warnings.showwarning = lambda message, *args, **kwargs: shown.append(str(message))
        with _noting_warnings() as said:
            warnings.warn("parcelle réparée", OrtWarning, stacklevel=1)
        with _noting_warnings() as quiet:
            pass
    assert said == [OrtWarning] and shown == ["parcelle réparée"] and quiet == []


def test_another_version_of_the_code_starts_a_new_digest(monkeypatch, tmp_path):
    """A digest is keyed by the code that made its rows and texts: after an upgrade of ort (or an
    edited module) the next check is answered by the general path, never from old rows."""
    from geo import check_digest

    stamp = check_digest._code_stamp()
    assert len(stamp) == len(check_digest._CODE) and all(s and s[0] > 0 for s in stamp)
    before = check_digest.digest_dir(tmp_path)
    assert check_digest.digest_dir(tmp_path) == before
    upgraded = [list(s) for s in stamp]
    upgraded[2][1] += 1  # geo.classify installed anew
    monkeypatch.setattr(check_digest, "_code_stamp", lambda: upgraded)
    assert check_digest.digest_dir(tmp_path) != before
