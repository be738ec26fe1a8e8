"""The files shipped inside ort, copied out where a planner can open and change them.

``ort demo --fichiers DIR`` and ``ort carnets --copier DIR`` call these. The copies keep the
repository's layout (``perimeters/demo/``, ``data/demo/``, ``carnets/``), so the README's
examples and the notebooks' relative paths (``../perimeters/demo``) work the same in a copy as
in a checkout of the project.

Nothing is ever replaced without ``force``, and with ``force`` only files that ort itself copied
there (listed in the destination's ``_manifest.json``) are; a folder name never comes from data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources import as_file, files
from pathlib import Path

from geo import embedded
from geo.errors import InputError, OutputExistsError, OutputNotOursError
from geo.io import MANIFEST, read_manifest, record_folder_files, write_bytes

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


def _copy(files_: list[tuple[Path, str]], dest: Path, *, force: bool, command: str) -> list[Path]:
    """Copy ``(source, path relative to dest)`` pairs, every target checked before anything is written.

    The list of what ort copied is kept in ``dest/_manifest.json`` (one for the whole copy: a
    manifest inside ``data/demo`` would be one more file for the readers of that folder).
    """
    own = set((read_manifest(dest) or {}).get("fichiers") or [])
    targets = []
    for _, relative in files_:
        target = dest / relative
        if target.exists() or target.is_symlink():
            if not force:
                raise OutputExistsError(
                    f"{target} existe déjà — ajoutez --force pour le remplacer (force=True depuis Python)"
                )
            if relative not in own or target.is_symlink() or not target.is_file():
                raise OutputNotOursError(
                    f"{target} existe et n'est pas listé dans {dest / MANIFEST} (ort ne l'a pas écrit) : "
                    "--force ne remplace que ce qu'ort a lui-même copié",
                    fix="choisissez un autre dossier, ou déplacez ce fichier vous-même",
                )
        targets.append(target)
    for (src, _), target in zip(files_, targets, strict=True):
        write_bytes(src.read_bytes(), target, force=True)
    record_folder_files(dest, [relative for _, relative in files_], command=command)
    return targets


def _convention_files(names) -> list[tuple[Path, str]]:
    """The files of shipped conventions, at ``perimeters/<name>/``; the demo brings its data."""
    pairs = []
    for name in names:
        folder = embedded.convention_dir(name)  # refuses a name that is not shipped
        pairs += [(p, f"perimeters/{name}/{p.name}") for p in _shipped_files(folder)]
        if name == "demo":
            pairs += [(p, f"data/demo/{p.name}") for p in _shipped_files(embedded.demo_dir())]
    return pairs


def copy_conventions(dest: str | Path, names, *, force: bool = False, command: str = "demo") -> list[Path]:
    """Copy shipped conventions into ``dest/perimeters/<name>/``; the demo brings its data.

    The demo's cadastre, addresses and social housing list go to ``dest/data/demo/``, where its
    ``convention.toml`` looks for them (``cadastre_dir = "../../data/demo"``).
    """
    return _copy(_convention_files(names), Path(dest), force=force, command=command)


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
    except ModuleNotFoundError:  # an install made before the notebooks were packaged
        raise InputError(
            "carnets introuvables dans l'installation d'ort",
            fix="réinstallez ort (pip install --force-reinstall ort, ou pip install -e . dans le dépôt)",
        ) from None
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
    notebooks = [(p, f"carnets/{p.name}") for p in sorted(notebooks_dir().glob(f"*{NOTEBOOK_SUFFIX}"))]
    pairs = notebooks + _convention_files(NOTEBOOK_CONVENTIONS)
    return CopiedFiles(dest, _copy(pairs, dest, force=force, command="carnets --copier"))
