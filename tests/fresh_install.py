"""The product as a new user installs it: the wheel built from the project's files, installed
without its dependencies in a fresh virtual environment (no system packages, as the README's).

Shared by ``tests/test_install.py`` and ``tests/test_readme_examples.py`` through the
session fixture ``ort_wheel`` (conftest): built once per run. The dependencies come from the
environment running the tests, whatever it is (a virtualenv made as the README says, or CI's
system Python): its site-packages folders are listed in a ``.pth`` file of the fresh
environment, after the environment's own folder, so the wheel's ``geo`` is the one imported and
the checkout never is (a plain path in a ``.pth`` file does not run the hooks of an editable
install of that folder).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: What the wheel is built from (copied, so the build leaves nothing in the checkout).
SOURCES = ("pyproject.toml", "setup.py", "README.md", "geo", "data", "perimeters", "notebooks")


def run(args, *, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``args`` run to completion; a non-zero exit fails the test with the command's output."""
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (
        f"{' '.join(map(str, args))}\nexit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done


def dependency_folders() -> list[str]:
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


def copy_sources(src: Path, *, built: bool = False) -> Path:
    """The project's files a wheel is built from, copied into ``src`` (created); ``built``:
    without what a build leaves in the checkout (the C library, numba's shipped code)."""
    src.mkdir()
    extra = ("numba_cache", "*.so") if built else ()
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", ".*", *extra)
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=skip)
        else:
            shutil.copy2(path, src / name)
    return src


def install_wheel(work: Path) -> dict:
    """Build the wheel into ``work/dist`` and install it in the fresh venv ``work/venv``.

    Returns ``wheel``, ``venv``, ``python`` and ``ort`` (paths).
    """
    src = copy_sources(work / "src")
    dist = work / "dist"
    # Offline with the running environment's setuptools when it has one (CI, the README's venv
    # on Python 3.11); else pip fetches the build backend (Python ≥ 3.12 venvs have none).
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation, "-w", dist, src], cwd=work)
    (wheel,) = dist.glob("ort-*.whl")
    venv = work / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=work)
    python = venv / "bin" / "python"
    purelib = run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=work
    ).stdout.strip()
    (Path(purelib) / "ort-test-dependances.pth").write_text(
        "".join(f"{p}\n" for p in dependency_folders()), encoding="utf-8"
    )
    install = [python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", "--no-index", wheel]
    run(install, cwd=work)
    where = run([python, "-c", "import geo; print(geo.__file__)"], cwd=work)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout
    return {"wheel": wheel, "venv": venv, "python": python, "ort": venv / "bin" / "ort"}


def offline_env(venv: Path, cache: Path) -> dict:
    """The environment of a machine without network, ``venv`` first on PATH, an empty cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORT_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(venv),
        ORT_OFFLINE="1",
        ORT_CACHE_DIR=str(cache),
        MPLBACKEND="Agg",
        http_proxy="http://127.0.0.1:9",  # nothing listens there: any request would fail
        https_proxy="http://127.0.0.1:9",
        NO_PROXY="",
    )
    return env
