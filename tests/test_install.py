"""The product as a new user gets it: a wheel installed in a fresh virtual environment.

The wheel is built from the project's files, installed (without its dependencies) and run from
an empty folder with no ../shared beside it, no network (ORT_OFFLINE=1 and an unreachable proxy)
and an empty cache: the demo and a commune's eligibility must work from the data shipped inside
the package. Runs in CI like every test (about 30 s).

The dependencies come from the environment running the tests, whatever it is: a virtualenv
made as the README says (without the system's packages), or CI's system Python. Its
site-packages folders are listed in a ``.pth`` file of the fresh environment, after the
environment's own folder, so the wheel's ``geo`` is the one imported and the checkout never is
(a plain path in a ``.pth`` file does not run the editable install's hooks of that folder).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: What the wheel is built from (copied, so the build leaves nothing in the checkout).
SOURCES = ("pyproject.toml", "README.md", "geo", "data", "perimeters", "notebooks")


def _run(args, *, cwd: Path, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, args))}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """The ``ort`` command of a fresh venv holding only the wheel, and a clean environment."""
    work = tmp_path_factory.mktemp("install")
    src = work / "src"
    src.mkdir()
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", ".*")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=skip)
        else:
            shutil.copy2(path, src / name)
    dist = work / "dist"
    # Offline with the running environment's setuptools when it has one (CI, the README's venv
    # on Python 3.11); else pip fetches the build backend (Python ≥ 3.12 venvs have none).
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation, "-w", dist, src],
        cwd=work,
        timeout=300,
    )
    (wheel,) = dist.glob("ort-*.whl")
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=work)
    python = venv / "bin" / "python"
    purelib = _run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=work
    ).stdout.strip()
    (Path(purelib) / "ort-test-dependances.pth").write_text(
        "".join(f"{p}\n" for p in _dependency_folders()), encoding="utf-8"
    )
    _run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", "--no-index", wheel],
        cwd=work,
        timeout=300,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORT_", "PYTHON"))}
    env.update(
        ORT_OFFLINE="1",
        ORT_CACHE_DIR=str(work / "cache"),
        http_proxy="http://127.0.0.1:9",  # nothing listens there: any request would fail
        https_proxy="http://127.0.0.1:9",
        NO_PROXY="",
    )
    return {"work": work, "wheel": wheel, "python": python, "ort": venv / "bin" / "ort", "env": env}


def _dependency_folders() -> list[str]:
    """The site-packages folders of the running interpreter (its venv's, the system's, the
    user's), never the checkout: where the fresh environment finds numpy, geopandas…"""
    folders = []
    for entry in sys.path:
        path = Path(entry or ".").resolve()
        if path.name not in ("site-packages", "dist-packages") or not path.is_dir():
            continue
        if path.is_relative_to(ROOT) or str(path) in folders:
            continue
        folders.append(str(path))
    return folders


def _empty_folder(installed, name: str) -> Path:
    folder = installed["work"] / "utilisateur" / name
    folder.mkdir(parents=True)
    assert not (folder.parent / "shared").exists() and not (folder.parent.parent / "shared").exists()
    return folder


def test_wheel_ships_the_data_and_runs_from_the_venv(installed):
    import zipfile

    names = zipfile.ZipFile(installed["wheel"]).namelist()
    for needed in (
        "geo/data/regles-eligibilite.toml",
        "geo/data/listes/manifeste.json",
        "geo/data/listes/ort.parquet",
        "geo/data/listes/acv-arrete.parquet",
        "geo/data/listes/communes.parquet",
        "geo/conventions/demo/convention.toml",
    ):
        assert needed in names, needed
    cfg = (installed["work"] / "venv" / "pyvenv.cfg").read_text(encoding="utf-8")
    assert "include-system-site-packages = false" in cfg  # as the README's venv: no system packages
    where = _run([installed["python"], "-c", "import geo; print(geo.__file__)"], cwd=installed["work"])
    assert Path(where.stdout.strip()).is_relative_to(installed["work"] / "venv")


def test_demo_writes_its_map_where_the_user_is(installed):
    folder = _empty_folder(installed, "demo")
    done = _run([installed["ort"], "demo"], cwd=folder, env=installed["env"], timeout=300)
    assert (folder / "maps" / "demo.html").is_file(), done.stdout
    assert "Traceback" not in done.stderr


def test_eligibility_of_a_commune_from_the_embedded_lists(installed):
    folder = _empty_folder(installed, "eligibilite")
    args = [installed["ort"], "eligibility", "--commune", "62907", "--date", "2024-01-01", "--json"]
    done = _run(args, cwd=folder, env=installed["env"])
    doc = json.loads(done.stdout)
    (result,) = doc["resultats"]
    denormandie = next(a for a in result["reponses"] if a["regle"] == "denormandie")
    assert denormandie["verdict"] == "oui" and "ORT signée le 18/01/2023" in denormandie["motif"]
    ort = next(x for x in doc["listes"] if x["nom"] == "ort")
    assert ort["date"] == "2024-09-18" and ort["copie"] == "intégrée"
    assert Path(ort["fichier"]).is_relative_to(installed["work"] / "venv")
    assert any("dernière actualisation 18/09/2024 (copie intégrée)" in d for d in denormandie["donnees"])
    assert list(folder.iterdir()) == []  # an answer writes nothing where the user is
