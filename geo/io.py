"""Writing outputs: atomically, deterministically, never over an existing file unless asked.

Every writer renders into a temporary file in the destination folder, then renames it over
the target (an atomic step on POSIX), so an interrupted run leaves either the old file or
nothing — never a half-written one that looks complete.

Three guards apply to every output:

- names that come from data (a perimeter id in ``parcelles-<id>.csv``) follow the slug rule
  of convention folders, and every path written stays inside its output folder
  (:func:`safe_name`, :func:`path_inside`);
- ``--force`` replaces a folder, or a file inside an output folder, only when the tool
  recognises it as its own: the folder holds a ``_manifest.json`` written by ort that lists it
  (:func:`check_output_folder`, :func:`check_folder_files`, :func:`record_folder_files`);
- text from inputs never becomes a live spreadsheet formula: in CSV a cell starting with
  ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading ``'`` (OWASP "CSV
  injection"), in XLSX it is written as a string cell, never a formula; numbers stay numbers.

A failing write (disk full, read-only file system, a parent that is a file) raises
:class:`~geo.errors.OutputError`, one French line naming the file and the fix.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from geo import settings
from geo.errors import InputError, OrtError, OutputError, OutputExistsError, OutputNotOursError, one_line

if TYPE_CHECKING:
    import pandas as pd

#: The writers' guards of :mod:`geo.cells`, also named here (one import for callers); read at
#: first use, as pandas is (``ort classify`` checks its output folder without either).
_FROM_CELLS = (
    "FORMULA_START",
    "escape_formula",
    "is_formula_like",
    "spreadsheet_safe",
    "strings_not_formulas",
)


def __getattr__(name: str):
    if name in _FROM_CELLS:
        from geo import cells

        return getattr(cells, name)
    raise AttributeError(f"module 'geo.io' has no attribute {name!r}")


#: Output formats by file suffix.
TABLE_SUFFIXES = {
    ".csv": "csv",
    ".xlsx": "xlsx",
    ".gpkg": "gpkg",
    ".parquet": "parquet",
    ".geojson": "geojson",
    ".json": "json",
}

#: The file by which ort recognises an output folder as its own.
MANIFEST = "_manifest.json"
#: Value of ``producteur`` in every manifest ort writes.
PRODUCER = "ort"

# Same rule as convention folder names (geo.perimeters): lower-case letters, digits and '-'.
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


# --------------------------------------------------------------------------------------------
# Names and paths


def safe_name(value: object, *, what: str = "identifiant") -> str:
    """Return ``value`` when it can be part of a file name: the slug rule of convention folders.

    Lower-case ASCII letters, digits and ``-``, 1 to 64 characters, not starting with ``-``:
    no ``/``, ``\\``, ``..``, spaces or control characters can reach a path.

    Raises
    ------
    InputError
        Naming the value and the fix.

    >>> safe_name("centre-ville")
    'centre-ville'
    """
    text = str(value)
    if _SLUG.match(text):
        return text
    raise InputError(
        f"{what} {one_line(repr(text))[:80]} ne peut pas servir de nom de fichier "
        "(lettres minuscules sans accent, chiffres et « - », 64 caractères au plus)",
        fix="renommez-le, par exemple « centre-ville »",
    )


def path_inside(folder: str | os.PathLike, name: str) -> Path:
    """``folder / name``, refused unless it is a plain file name that stays inside ``folder``.

    Symbolic links are resolved: a link in the folder that points elsewhere is refused too.

    Raises
    ------
    OutputError
        ``name`` holds a separator or ``..``, or the resolved path leaves ``folder``.
    """
    folder = Path(folder)
    bad = (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\x00" in name
        or not name.isprintable()
    )
    target = folder / name
    if not bad:
        base = folder.resolve()
        resolved = target.resolve()
        bad = resolved == base or not resolved.is_relative_to(base)
    if bad:
        raise OutputError(
            f"le chemin {one_line(repr(str(target)))[:120]} sortirait du dossier de sortie {folder}",
            fix="les noms de fichiers viennent des identifiants : "
            "corrigez l'identifiant (lettres, chiffres, « - »)",
        )
    return target


# --------------------------------------------------------------------------------------------
# Existing outputs and --force


def _first_existing_ancestor(path: Path) -> Path | None:
    for parent in path.parents:
        if parent.exists() or parent.is_symlink():
            return parent
    return None


def _check_parents(path: Path) -> None:
    parent = _first_existing_ancestor(path)
    if parent is not None and not parent.is_dir():
        raise OutputError(
            f"impossible d'écrire {path} : {parent} est un fichier, pas un dossier",
            fix="choisissez un autre chemin de sortie (-o), ou renommez ce fichier",
        )


def check_writable(path: str | os.PathLike, *, force: bool = False) -> Path:
    """Refuse an existing output unless ``force``, a folder in place of a file, or a parent that is
    a file; return the path."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(
            f"{path} est un dossier : ort n'écrit pas un fichier à sa place",
            fix="donnez un nom de fichier, ex. " + str(path / "resultat.csv"),
        )
    if path.exists() and not force:
        raise OutputExistsError(
            f"{path} existe déjà — ajoutez --force pour le remplacer (force=True depuis Python)"
        )
    _check_parents(path)
    return path


def read_manifest(folder: str | os.PathLike) -> dict | None:
    """The manifest of an output folder written by ort, or None (absent, unreadable or foreign)."""
    manifest = Path(folder) / MANIFEST
    try:
        if not manifest.is_file() or manifest.stat().st_size > 50_000_000:
            return None
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    # Runs of ort classify written before the "producteur" key still carry their own fields.
    if data.get("producteur") == PRODUCER or {"engine", "partition_by", "partitions"} <= data.keys():
        return data
    return None


def _not_ours(path: Path, why: str) -> OutputNotOursError:
    return OutputNotOursError(
        f"{path} existe et {why} : --force ne remplace que ce qu'ort a lui-même écrit "
        f"(reconnu par son {MANIFEST})",
        fix="choisissez un autre dossier de sortie (-o), ou déplacez ce contenu vous-même",
    )


def check_output_folder(path: str | os.PathLike, *, force: bool = False) -> Path:
    """Check that a whole output folder may be (re)placed at ``path``.

    Absent: fine. Otherwise refused without ``force``; with ``force``, accepted only when it is
    an empty folder or one holding ort's :data:`MANIFEST` (a previous run's output).

    Raises
    ------
    OutputExistsError, OutputNotOursError, OutputError
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        _check_parents(path)
        return path
    if not force:
        raise OutputExistsError(
            f"{path} existe déjà — ajoutez --force pour le remplacer (force=True depuis Python)"
        )
    if path.is_symlink() or not path.is_dir():
        raise _not_ours(path, "n'est pas un dossier produit par ort")
    if any(path.iterdir()) and read_manifest(path) is None:
        raise _not_ours(path, f"n'a pas de {MANIFEST} écrit par ort (dossier d'un autre usage ?)")
    return path


def check_folder_files(folder: str | os.PathLike, names: Iterable[str], *, force: bool = False) -> list[Path]:
    """The paths of ``names`` in ``folder``, each checked before anything is written.

    Each name must be a plain file name inside ``folder`` (:func:`path_inside`). An existing
    file is refused without ``force``; with ``force`` it is replaced only if the folder's
    manifest lists it (ort wrote it), so a user's own file of the same name is never lost.
    """
    folder = Path(folder)
    paths = [path_inside(folder, n) for n in names]
    _check_parents(folder / MANIFEST)  # the folder itself, or a parent, must not be a file
    existing = [p for p in paths if p.exists() or p.is_symlink()]
    if not existing:
        return paths
    if not force:
        raise OutputExistsError(
            f"{existing[0]} existe déjà — ajoutez --force pour le remplacer (force=True depuis Python)"
        )
    manifest = read_manifest(folder) or {}
    own = set(manifest.get("fichiers") or [])
    for p in existing:
        if p.name not in own or p.is_symlink() or not p.is_file():
            raise _not_ours(p, f"n'est pas listé dans le {MANIFEST} du dossier (ort ne l'a pas écrit)")
    return paths


def record_folder_files(folder: str | os.PathLike, names: Iterable[str], *, command: str) -> Path:
    """Add ``names`` to the folder's manifest (created if absent): ort wrote these files."""
    folder = Path(folder)
    manifest = read_manifest(folder) or {}
    files = sorted(set(manifest.get("fichiers") or []) | {str(n) for n in names})
    data = {
        "producteur": PRODUCER,
        "commande": command,
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "fichiers": files,
    }
    return write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", folder / MANIFEST, force=True)


# --------------------------------------------------------------------------------------------
# Interruptions


class Terminated(KeyboardInterrupt):
    """SIGTERM received: raised like Ctrl-C so every ``finally`` removes its partial file."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``) instead of
    killing the process outright, so temporary files are cleaned up as on Ctrl-C.

    Only in the main thread (where Python handles signals); elsewhere a no-op.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):  # not allowed here (embedded interpreter)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --------------------------------------------------------------------------------------------
# Atomic writes


_OS_REASONS = {
    errno.ENOSPC: ("disque plein", "libérez de la place ou écrivez ailleurs (-o)"),
    errno.EDQUOT: ("quota disque dépassé", "libérez de la place ou écrivez ailleurs (-o)"),
    errno.EROFS: (
        "système de fichiers en lecture seule",
        "choisissez un dossier de sortie où vous pouvez écrire (-o)",
    ),
    errno.EACCES: ("permission refusée", "choisissez un dossier de sortie où vous pouvez écrire (-o)"),
    errno.EPERM: ("opération non permise", "choisissez un dossier de sortie où vous pouvez écrire (-o)"),
    errno.ENOTDIR: (
        "un élément du chemin est un fichier, pas un dossier",
        "corrigez le chemin de sortie (-o)",
    ),
    errno.EISDIR: ("la sortie est un dossier", "donnez un nom de fichier"),
    errno.ENAMETOOLONG: ("nom de fichier trop long", "raccourcissez le chemin de sortie"),
}


def os_error_text(err: OSError) -> tuple[str, str]:
    """The reason (French) and the fix for an ``OSError``, e.g. ``("disque plein", "libérez…")``."""
    if isinstance(err, FileExistsError):  # mkdir over a file
        return "un élément du chemin est un fichier, pas un dossier", "corrigez le chemin de sortie (-o)"
    return _OS_REASONS.get(
        err.errno or 0, (err.strerror or type(err).__name__, "vérifiez le chemin et l'espace disque")
    )


def output_error(err: OSError, path: str | os.PathLike) -> OutputError:
    """A French, one-line :class:`OutputError` for an ``OSError`` met while writing ``path``."""
    reason, fix = os_error_text(err)
    return OutputError(f"impossible d'écrire {path} : {reason}", fix=fix)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched. An ``OSError``
    (disk full, read-only file system, a parent that is a file) becomes an
    :class:`~geo.errors.OutputError` naming ``path``.
    """
    path = check_writable(path, force=force)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{path.suffix}", dir=path.parent)
        os.close(fd)
        os.unlink(tmp)  # writers such as GDAL want to create the file themselves
    except OSError as err:
        raise output_error(err, path) from None
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
            if not tmp_path.exists():
                raise OSError(errno.EIO, f"rien n'a été écrit dans {path}")
            os.replace(tmp_path, path)
        except OrtError:
            raise
        except OSError as err:
            raise output_error(err, path) from None
    finally:
        with contextlib.suppress(OSError):
            if tmp_path.exists():
                tmp_path.unlink()


def write_text(text: str, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write UTF-8 text atomically."""
    with atomic_path(path, force=force) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(data: bytes, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write bytes atomically."""
    with atomic_path(path, force=force) as tmp:
        tmp.write_bytes(data)
    return Path(path)


# --------------------------------------------------------------------------------------------
# Tables


def gpkg_layers(df, stem: str) -> list[tuple[str, object, str | None]]:
    """The GeoPackage layers of a table: ``(layer name, rows, perimeter name)``.

    A table of parcels × perimeters (a ``perimetre_id`` column with several values) gives one
    layer per perimeter, named ``<stem>-<perimetre_id>`` (characters other than ASCII letters,
    digits, ``-`` and ``_`` become ``_``), each holding every parcel once; any other table is one
    layer named ``stem``.
    """
    if "perimetre_id" not in df.columns or df["perimetre_id"].nunique(dropna=True) < 2:
        return [(stem, df, None)]
    out, seen = [], set()
    for pid, part in df.groupby("perimetre_id", sort=False, dropna=True):
        name = part["perimetre_nom"].iloc[0] if "perimetre_nom" in part.columns else None
        layer = f"{stem}-{re.sub(r'[^A-Za-z0-9_-]', '_', str(pid))[:60]}"
        while layer in seen:  # two ids that differ only by such characters
            layer += "_"
        seen.add(layer)
        out.append((layer, part, None if name is None or _missing(name) else str(name)))
    return out


def _missing(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def _writer_for(path: Path, sheet: dict | None = None) -> Callable[[pd.DataFrame, Path], None]:
    """The writer for ``path``'s suffix; ``sheet`` holds the XLSX layout (title, source, labels)."""
    from geo import formats
    from geo.cells import spreadsheet_safe

    sheet = sheet or {}
    suffix = path.suffix
    kind = TABLE_SUFFIXES.get(suffix.lower())
    if kind is None:
        raise InputError(
            f"format de sortie '{suffix}' inconnu",
            fix=f"choisissez parmi {', '.join(sorted(TABLE_SUFFIXES))}",
        )

    def csv(df: pd.DataFrame, tmp: Path) -> None:
        out = df.drop(columns="geometry") if "geometry" in df.columns else df
        formats.write_csv(spreadsheet_safe(out, kind="csv"), tmp)  # text never read as a formula

    def xlsx(df: pd.DataFrame, tmp: Path) -> None:
        options = {k: v for k, v in sheet.items() if k in ("title", "labels", "kinds")}
        options.setdefault("title", path.stem)
        out = df.drop(columns="geometry") if "geometry" in df.columns else df
        # formats.write_xlsx writes text cells as strings, never formulas (strings_not_formulas)
        formats.write_xlsx(
            [(sheet.get("name") or path.stem, spreadsheet_safe(out, kind="xlsx"), options)],
            tmp,
            source=sheet.get("source"),
        )

    def vector(driver: str) -> Callable[[pd.DataFrame, Path], None]:
        def write(df: pd.DataFrame, tmp: Path) -> None:
            import geopandas as gpd  # here: the CLI imports this module before any command runs

            if not isinstance(df, gpd.GeoDataFrame):
                raise InputError("ce tableau n'a pas de géométrie", fix="écrivez-le plutôt en .csv ou .xlsx")
            if driver == "GPKG":
                # One layer per perimeter: stacked in one layer, a parcel's identical polygons
                # (one per perimeter) would show whichever QGIS draws last.
                for layer, part, name in gpkg_layers(df, path.stem):
                    part.to_file(
                        tmp,
                        driver=driver,
                        layer=layer,
                        engine=settings.io_engine,
                        mode="a" if tmp.exists() and tmp.stat().st_size else "w",
                    )
                    formats.add_layer_style(tmp, layer, part, title=name)  # QGIS: web map colours
                return
            # The layer is named after the final file, not the temporary one: same bytes every run.
            df.to_file(tmp, driver=driver, layer=path.stem, engine=settings.io_engine)

        return write

    def parquet(df: pd.DataFrame, tmp: Path) -> None:
        # pandas stores df.attrs as JSON in the file; ours may hold reports and dates.
        out = df.copy(deep=False)
        out.attrs = {}
        out.to_parquet(tmp, index=False)

    return {
        "csv": csv,
        "xlsx": xlsx,
        "gpkg": vector("GPKG"),
        "geojson": vector("GeoJSON"),
        "json": vector("GeoJSON"),
        "parquet": parquet,
    }[kind]


def write_table(
    df: pd.DataFrame,
    path: str | os.PathLike,
    *,
    force: bool = False,
    layout=None,
    title: str | None = None,
    source: str | None = None,
) -> Path:
    """Write a table or GeoDataFrame by suffix (.csv, .xlsx, .gpkg, .geojson, .parquet).

    CSV and XLSX drop the geometry column. CSV is written for French Excel unless
    ``settings.csv_format`` says otherwise; XLSX is laid out as an annex (``title``, ``source``
    and the date above the table); a GeoPackage carries its QGIS style (:mod:`geo.formats`).
    ``layout`` (a :class:`geo.columns.Layout`) renames and converts the columns to the
    documented French schema first. The write is atomic and refuses an existing file
    unless ``force``.
    """
    path = Path(path)
    sheet: dict = {"title": title, "source": source}
    if layout is not None:
        df = layout.apply(df)
        sheet.update(name=layout.sheet, labels=layout.labels(), kinds=layout.kinds())
        sheet["title"] = title or layout.title
    writer = _writer_for(path, sheet)
    with atomic_path(path, force=force) as tmp:
        writer(df, tmp)
    return path
