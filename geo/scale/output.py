"""The output folder of ``ort classify``: parts, manifest, invalid parcels, ``--force``, reading back.

A run is built in a hidden folder beside the output (``.<name>.partiel-*``): the parts
(``departement=62/part-00000.parquet`` …, written by the workers or by the process that runs
the units), the invalid parcels of the units, gathered into :data:`INVALID_FILE`, then
:data:`MANIFEST` (what was done and every file written) and, when every parcel has its
verdict, :data:`SUCCESS`. The folder then takes the output's place. Over a previous run
(``force``), only the files that run wrote — named as ort names them *and* listed in its
manifest — are replaced: whatever else a user put there stays, and a file of theirs in the
way stops the run before anything is removed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

from geo import classify, validity
from geo.errors import InputError, OutputNotOursError
from geo.io import PRODUCER, check_output_folder, read_manifest

if TYPE_CHECKING:
    import pandas as pd

MANIFEST = "_manifest.json"
SUCCESS = "_SUCCESS"
#: Beside the verdicts: the invalid parcels set aside or repaired (:mod:`geo.validity`).
INVALID_FILE = "invalides.parquet"
INVALID_PARTS = ".invalides"
#: The names ort gives what it writes in an output folder: ``force`` never touches another.
_OURS = re.compile(
    r"^(_manifest\.json|_SUCCESS|invalides\.parquet|[a-z_]+=[0-9A-Z?]{2,5}/part-[0-9]{5}\.parquet"
    r"|part-[0-9]{5}/part-[0-9]{5}\.parquet)$"
)


def write_part(res, tmp: Path, partition_by: str) -> None:
    """Write a unit's verdicts (``res.table``) into the run's hidden folder, then drop them."""
    folder = tmp / partition_folder(partition_by, res.key)
    # Not parents=True: a run interrupted meanwhile has removed ``tmp``, and a worker still busy
    # must not make it again (a hidden staging folder left behind).
    folder.mkdir(exist_ok=True)
    pq.write_table(res.table, folder / f"part-{res.seq:05d}.parquet")
    res.rows, res.written, res.table = res.table.num_rows, True, None


def partition_folder(partition_by: str, key: str) -> str:
    return key if partition_by == "rows" else f"{partition_by}={key}"


def finish(tmp: Path, output: Path, report, *, force: bool, seconds: float) -> None:
    """Write the manifest (and ``_SUCCESS``) of ``report`` (a :class:`geo.scale.run.RunReport`) and put
    the run in place."""
    failed_keys = {f["partition"] for f in report.failed}
    for key in failed_keys:
        # A partition with a broken unit is left out whole: no half département in the output.
        shutil.rmtree(tmp / partition_folder(report.partition_by, key), ignore_errors=True)
        report.partitions.pop(key, None)
    _gather_invalid(tmp, report, failed_keys)
    report.parcels = sum(p["parcels"] for p in report.partitions.values())
    report.rows = sum(p["rows"] for p in report.partitions.values())
    # Complete: every parcel has its verdict (none in a failed partition, none set aside).
    report.complete = not report.failed and not report.invalides["ecartees"]
    report.seconds = round(seconds, 3)
    report.provenance.setdefault("date_run", dt.datetime.now().isoformat(timespec="seconds"))
    report.fichiers = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
    report.fichiers = sorted([*report.fichiers, MANIFEST] + ([SUCCESS] if report.complete else []))
    manifest = {"producteur": PRODUCER, **asdict(report)}  # how --force knows the folder is ours
    (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    if report.complete:
        (tmp / SUCCESS).write_text("", encoding="utf-8")
    if output.exists():
        check_output_folder(output, force=force)  # it may have appeared during the run
        _replace_ours(tmp, output)
    else:
        os.replace(tmp, output)


def _gather_invalid(tmp: Path, report, failed_keys: set[str]) -> None:
    """The units' invalid parcels (not those of failed partitions) into :data:`INVALID_FILE`."""
    folder = tmp / INVALID_PARTS
    if not folder.is_dir():
        return
    import pandas as pd  # (only when some parcels are invalid)

    parts = [pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))]
    shutil.rmtree(folder)
    table = pd.concat(parts, ignore_index=True)
    table = table[~table["partition"].isin(failed_keys)].reset_index(drop=True)
    if table.empty:
        return
    table.to_parquet(tmp / INVALID_FILE, index=False)
    aside = table["traitement"] == validity.SET_ASIDE
    report.invalides = {
        "ecartees": int(aside.sum()),
        "reparees": int((~aside).sum()),
        "fichier": INVALID_FILE,
        "exemples": table.head(5)[validity.INVALID_COLUMNS].to_dict("records"),
    }


def _ours(output: Path) -> tuple[list[Path], list[Path]]:
    """The files of an existing output that ort wrote (named as ort names them, and listed in
    its manifest when it lists files), and all the others."""
    manifest = read_manifest(output) or {}
    listed = manifest.get("fichiers")
    listed = set(listed) if isinstance(listed, list) else None
    ours, others = [], []
    for path in sorted(output.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        rel = path.relative_to(output).as_posix()
        mine = bool(_OURS.match(rel)) and not path.is_symlink() and (listed is None or rel in listed)
        (ours if mine else others).append(path)
    return ours, others


def _replace_ours(tmp: Path, output: Path) -> None:
    """Put the new run (``tmp``) in place of the previous one in ``output``, replacing only the
    files the previous run wrote: whatever else the folder holds stays (a user's notes)."""
    ours, others = _ours(output)
    new = sorted(p for p in tmp.rglob("*") if p.is_file())
    theirs = {p.relative_to(output).as_posix() for p in others}
    clash = [p for p in new if p.relative_to(tmp).as_posix() in theirs]
    if clash:  # checked before anything is removed
        raise OutputNotOursError(
            f"{output / clash[0].relative_to(tmp)} existe et ort ne l'a pas écrit "
            "(absent de son _manifest.json) : --force ne le remplace pas",
            fix="choisissez un autre dossier de sortie (-o), ou déplacez ce fichier vous-même",
        )
    if not others:  # only ort's files: the whole folder is swapped at once
        old = output.with_name(f".{output.name}.ancien-{os.getpid()}")
        os.replace(output, old)
        os.replace(tmp, output)
        shutil.rmtree(old) if old.is_dir() else os.unlink(old)
        return
    for path in ours:
        path.unlink()
    for folder in sorted({p.parent for p in ours if p.parent != output}, reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()  # emptied; one that holds a user's file stays
    last = [tmp / MANIFEST, tmp / SUCCESS]  # the manifest and _SUCCESS last: a crash before
    for path in [p for p in new if p not in last] + [p for p in last if p.exists()]:
        target = output / path.relative_to(tmp)
        target.parent.mkdir(exist_ok=True)
        os.replace(path, target)
    shutil.rmtree(tmp, ignore_errors=True)


def read_results(output: str | Path, *, allow_partial: bool = False) -> pd.DataFrame:
    """Read the verdicts of a finished :func:`classify_dataset` run.

    Parameters
    ----------
    output : path
        The output folder of the run.
    allow_partial : bool
        Read the partitions that were done even when others failed.

    Returns
    -------
    DataFrame
        Inside and straddling pairs, columns :data:`geo.classify.RESULT_COLUMNS`.

    Raises
    ------
    geo.errors.InputError
        No manifest (the run did not finish), or failed partitions or invalid parcels set aside
        (:data:`INVALID_FILE`), and not ``allow_partial``.
    """
    import pandas as pd

    output = Path(output)
    manifest = output / MANIFEST
    if not manifest.is_file():
        raise InputError(
            "pas de _manifest.json : ce calcul n'est pas allé au bout", source=str(output), fix="relancez-le"
        )
    meta = json.loads(manifest.read_text(encoding="utf-8"))
    if meta["failed"] and not allow_partial:
        keys = ", ".join(f["partition"] for f in meta["failed"])
        raise InputError(f"partitions {keys} en échec", source=str(output), fix="voir _manifest.json")
    aside = (meta.get("invalides") or {}).get("ecartees", 0)
    if aside and not allow_partial:
        raise InputError(
            f"{aside} parcelle(s) invalide(s) écartée(s), sans verdict (liste : {INVALID_FILE})",
            source=str(output),
            fix="réparez-les à la source ou relancez avec --fix ; allow_partial=True lit le reste",
        )
    listed = meta.get("fichiers")
    if isinstance(listed, list):  # only what the run wrote: never a user's file named alike
        parts = sorted(output / f for f in listed if _OURS.match(f) and f.endswith(".parquet") and "/" in f)
    else:
        parts = sorted(output.rglob("part-*.parquet"))
    if not parts:
        return pd.DataFrame(columns=classify.RESULT_COLUMNS)
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
