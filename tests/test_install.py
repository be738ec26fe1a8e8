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

import json
from pathlib import Path

import pytest
from fresh_install import offline_env, run

_run = run


@pytest.fixture(scope="module")
def installed(ort_wheel, tmp_path_factory) -> dict:
    """The ``ort`` command of a fresh venv holding only the wheel, and a clean environment."""
    work = tmp_path_factory.mktemp("install")
    return {**ort_wheel, "work": work, "env": offline_env(ort_wheel["venv"], work / "cache")}


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
    cfg = (installed["venv"] / "pyvenv.cfg").read_text(encoding="utf-8")
    assert "include-system-site-packages = false" in cfg  # as the README's venv: no system packages
    where = _run([installed["python"], "-c", "import geo; print(geo.__file__)"], cwd=installed["work"])
    assert Path(where.stdout.strip()).is_relative_to(installed["venv"])


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
    assert Path(ort["fichier"]).is_relative_to(installed["venv"])
    assert any("dernière actualisation 18/09/2024 (copie intégrée)" in d for d in denormandie["donnees"])
    assert list(folder.iterdir()) == []  # an answer writes nothing where the user is
