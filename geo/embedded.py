"""Data shipped inside the package, reached through :mod:`importlib.resources`.

In the repository it lives at the top (``data/``: rules, demo cadastre, national-list snapshots;
``perimeters/``: conventions) and ships in the wheel as ``geo.data`` and ``geo.conventions``
(see ``pyproject.toml``). Nothing here is ever written by the tool: outputs go where the user
is (``./maps`` by default), and the demo is regenerated only by the developers' command
``python -m geo.demo data/demo perimeters/demo``.
"""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path

from geo.errors import InputError

#: Where the tool writes its outputs when no path is given: ``./maps`` in the current folder.
DEFAULT_OUTPUT_DIR = Path("maps")


def _folder(package: str) -> Path:
    # Installed from a wheel or editable, both are plain folders; as_file keeps that explicit.
    with as_file(files(package)) as path:
        return Path(path)


def data_dir() -> Path:
    """The embedded data folder (``data/`` of the repository)."""
    return _folder("geo.data")


def path(name: str) -> Path:
    """An embedded data file by its name relative to ``data/``, e.g. ``"regles-eligibilite.toml"``."""
    found = data_dir() / name
    if not found.exists():
        raise InputError(
            f"fichier embarqué introuvable : {name}",
            source=str(found),
            fix="réinstallez ort (pip install --force-reinstall ort) : l'installation est incomplète",
        )
    return found


def demo_dir() -> Path:
    """The demo commune's cadastre and social housing list (``data/demo``)."""
    return path("demo")


def address_file(communes) -> Path | None:
    """The address file (BAL) shipped for one of these communes, if any: the demo's
    ``data/demo/adresses-62999.csv.gz``, so its address search works offline by default."""
    for code in communes or ():
        found = data_dir() / "demo" / f"adresses-{code}.csv.gz"
        if found.is_file():
            return found
    return None


def lists_dir() -> Path:
    """The dated snapshots of the national lists (``data/listes``)."""
    return data_dir() / "listes"


def conventions_dir() -> Path:
    """The conventions shipped with the tool (``perimeters/`` of the repository)."""
    return _folder("geo.conventions")


def convention_names() -> list[str]:
    """Names of the embedded conventions, e.g. ``["demo", "libercourt"]``."""
    return sorted(p.name for p in conventions_dir().iterdir() if (p / "convention.toml").is_file())


def convention_dir(name: str) -> Path:
    """An embedded convention folder by its name (``"demo"``, ``"libercourt"``...)."""
    if name not in convention_names():
        raise InputError(
            f"convention embarquée inconnue : {name!r}",
            source=name,
            fix=f"choisissez parmi {', '.join(convention_names())}, ou donnez le chemin d'un dossier",
        )
    return conventions_dir() / name
