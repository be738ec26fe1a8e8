"""The files shipped inside ort, copied out where a planner can open and change them.

``ort demo --fichiers DIR`` and ``ort carnets --copier DIR`` call these. The copies keep the
repository's layout (``perimeters/demo/``, ``data/demo/``, ``carnets/``), so the README's
examples and the notebooks' relative paths (``../perimeters/demo``) work the same in a copy as
in a checkout of the project.

Nothing is ever replaced without ``force``, and with ``force`` only files that ort itself copied
there (listed in each folder's ``_manifest.json``) are; a folder name never comes from data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources import as_file, files
from pathlib import Path

from geo import embedded
from geo.errors import InputError
from geo.io import check_folder_files, record_folder_files, write_bytes

#: The notebooks shipped with ort (``notebooks/`` of the repository, package ``geo.notebooks``).
NOTEBOOK_SUFFIX = ".ipynb"
#: Real conventions the notebooks read beside the demo (notebook 02 compares with Libercourt's plan).
NOTEBOOK_CONVENTIONS = ("demo", "libercourt")


@dataclass(frozen=True)
class CopiedFiles:
    """What was copied: the destination folder and every file written, in order."""

    folder: Path
    written: list[Path] = field(default_factory=list)

    def describe(self) -> str:
        """One French line per folder written, e.g. ``perimeters/demo/ : 5 fichiers``."""
        per_folder: dict[Path, int] = {}
        for path in self.written:
            per_folder[path.parent] = per_folder.get(path.parent, 0) + 1
        return "\n".join(f"{folder}/ : {n} fichier(s)" for folder, n in per_folder.items())


def _shipped_files(folder: Path) -> list[Path]:
    """The data files of a shipped folder: no Python module, cache or hidden file."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith((".", "_")) and p.suffix not in (".py", ".pyc")
    )


def _copy_folder(sources: list[Path], dest: Path, *, force: bool, command: str) -> list[Path]:
    targets = check_folder_files(dest, [p.name for p in sources], force=force)  # all checked first
    for src, target in zip(sources, targets, strict=True):
        write_bytes(src.read_bytes(), target, force=True)
    record_folder_files(dest, [p.name for p in sources], command=command)
    return targets


def copy_conventions(dest: str | Path, names, *, force: bool = False, command: str = "demo") -> list[Path]:
    """Copy shipped conventions into ``dest/perimeters/<name>/``; the demo brings its data.

    The demo's cadastre, addresses and social housing list go to ``dest/data/demo/``, where its
    ``convention.toml`` looks for them (``cadastre_dir = "../../data/demo"``).
    """
    dest = Path(dest)
    written: list[Path] = []
    for name in names:
        folder = embedded.convention_dir(name)  # refuses a name that is not shipped
        written += _copy_folder(
            _shipped_files(folder), dest / "perimeters" / name, force=force, command=command
        )
        if name == "demo":
            data = _shipped_files(embedded.demo_dir())
            written += _copy_folder(data, dest / "data" / "demo", force=force, command=command)
    return written


def copy_demo_files(dest: str | Path, *, force: bool = False) -> CopiedFiles:
    """Copy the demo's convention (``perimeters/demo``) and data (``data/demo``) into ``dest``.

    Parameters
    ----------
    dest : path
        The folder to copy into (created if needed), e.g. ``"."``.
    force : bool
        Replace files a previous copy wrote (never a file of yours of the same name).

    Returns
    -------
    CopiedFiles

    Raises
    ------
    geo.errors.OutputExistsError, geo.errors.OutputNotOursError
        A file is already there (without ``force``), or was not written by ort.
    """
    return CopiedFiles(Path(dest), copy_conventions(dest, ["demo"], force=force, command="demo --fichiers"))


def notebooks_dir() -> Path:
    """The folder of the shipped notebooks (``notebooks/`` of the repository)."""
    try:
        with as_file(files("geo.notebooks")) as path:
            found = Path(path)
    except ModuleNotFoundError:  # an editable install made before the notebooks were packaged
        found = Path(__file__).resolve().parents[2] / "notebooks"
    if not found.is_dir() or not any(found.glob(f"*{NOTEBOOK_SUFFIX}")):
        raise InputError(
            "carnets introuvables dans l'installation d'ort",
            source=str(found),
            fix="réinstallez ort (pip install --force-reinstall ort) : l'installation est incomplète",
        )
    return found


def copy_notebooks(dest: str | Path, *, force: bool = False) -> CopiedFiles:
    """Copy the notebooks into ``dest/carnets/`` and the data they read beside them.

    The notebooks open ``../perimeters/demo``, ``../data/demo`` and Libercourt's action plan
    (``../perimeters/libercourt``): those are copied into ``dest`` too, so ``jupyter lab
    dest/carnets`` runs them as they are. Data they read from ``../shared/data`` (Cartofriches,
    the official national lists, commune outlines) is open data not shipped with ort: without
    it the notebooks say so and use the copies shipped with ort where there are some.
    """
    dest = Path(dest)
    notebooks = sorted(notebooks_dir().glob(f"*{NOTEBOOK_SUFFIX}"))
    written = _copy_folder(notebooks, dest / "carnets", force=force, command="carnets --copier")
    written += copy_conventions(dest, NOTEBOOK_CONVENTIONS, force=force, command="carnets --copier")
    return CopiedFiles(dest, written)
