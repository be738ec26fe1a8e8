"""One parcel, cold, from the shell: ``ort check`` and ``ort note`` as fresh processes.

Each round starts every command once as a new process (order rotated from round to round, so
a burst of load falls on all of them); the table gives the median and the minimum over the
rounds, the ratio of each median to the in-run baselines (``python -c pass``, ``python -c
"import geopandas"``), the number of modules each command imports (``-X importtime``) and the
load average before and after. On a shared machine compare the ratios and import counts, not
the seconds: the baselines run in the same rounds, under the same load.

    python bench/bench_cold.py                       # 7 rounds
    python bench/bench_cold.py --rounds 11 --json cold.json
    python bench/bench_cold.py --against main        # before → after, in the same rounds

Bytecode is cached as after ``pip install`` (``PYTHONDONTWRITEBYTECODE`` is dropped for the
children and ``PYTHONPYCACHEPREFIX`` points to a temporary folder, warmed by one untimed round:
nothing is written in the source tree). The parsed-cadastre cache (``ORT_CACHE_DIR``) is a
temporary folder too, filled by that untimed round: the rows are "a planner's second question
of the day"; the row ``first check, empty cache`` times the very first one (GeoJSON parsed).

``ort note`` keeps in that cache folder what any note reuses (the font subsets, the texts laid
out: :mod:`geo.pdf_fonts`, :mod:`geo.pdf_text`): so that a round does not time the note of the
round before, each round asks the note of another parcel (the same for every code), and the
row ``first note, empty cache`` times the very first note (nothing kept, cadastre parsed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _checkout import extract  # bench/, beside this file

PARCEL = "62999000AB0012"
#: Stands for the parcel of the round in the note's arguments.
ROUND_PARCEL = "{parcelle}"


def note_parcels(n: int, seed: int = 26) -> list[str]:
    """``n`` distinct parcels of the demo commune (fixed seed): one note per round."""
    import random

    from geo import embedded
    from geo.sources.cadastre import read_parcels

    idus = sorted(read_parcels(embedded.demo_dir() / "cadastre-62999-parcelles.json.gz")["idu"])
    return random.Random(seed).sample(idus, n)


def commands(out: Path, against: tuple[str, Path] | None = None) -> dict[str, tuple[list[str], dict]]:
    """Label → (argv, extra environment). ``ort`` is the console script of this interpreter;
    ``against`` (a git revision and its extracted tree) adds its check and note, run with that
    tree first on ``PYTHONPATH`` (``python -m geo``, what the console script runs)."""
    py = sys.executable
    ort = shutil.which("ort", path=str(Path(py).parent)) or shutil.which("ort")
    if ort is None:
        raise SystemExit("bench_cold: la commande `ort` est introuvable (pip install -e .)")
    check = ["check", PARCEL, "--perimeters", "demo"]
    note = ["note", ROUND_PARCEL, "--perimeters", "demo", "-o", str(out / "note.pdf"), "--force"]
    cmds = {
        "python -c pass": ([py, "-c", "pass"], {}),
        'python -c "import pandas"': ([py, "-c", "import pandas"], {}),
        'python -c "import geopandas"': ([py, "-c", "import geopandas"], {}),
        "ort --help": ([ort, "--help"], {}),
        f"ort {' '.join(check)}": ([ort, *check], {}),
        f"ort {' '.join(note[:4])}": ([ort, *note], {}),
    }
    if against is not None:
        rev, tree = against
        for args in (check, note):
            cmds[f"{rev}: ort {' '.join(args[:4])}"] = ([py, "-m", "geo", *args], {"PYTHONPATH": str(tree)})
    return cmds


def run(argv: list[str], env: dict[str, str], cwd: Path, parcel: str = PARCEL) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one fresh process: CPU time suffers less from
    other developers' load than wall time (the process waits for a core, it does not burn it)."""
    argv = [parcel if a == ROUND_PARCEL else a for a in argv]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        failed = " ".join(argv)
        raise SystemExit(f"bench_cold: {failed} a échoué ({done.returncode}) :\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def imported(argv: list[str], env: dict[str, str], cwd: Path) -> int:
    """Modules imported by the command (``-X importtime`` lines), the interpreter's own included."""
    if Path(argv[0]).name == "ort":  # the console script is `from geo.cli import main; main()`
        argv = [sys.executable, "-m", "geo", *argv[1:]]
    argv = [argv[0], "-X", "importtime", *(PARCEL if a == ROUND_PARCEL else a for a in argv[1:])]
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    return sum(1 for line in done.stderr.splitlines() if line.startswith("import time:") and "|" in line) - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None, help="write the figures as JSON too")
    parser.add_argument(
        "--against",
        metavar="REV",
        default=None,
        help="also time check and note of this git revision's code (the embedded data stay this "
        "checkout's: give the commit the branch started from, e.g. $(git merge-base main HEAD))",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ort-bench-cold-") as tmp:
        tmp = Path(tmp)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(PYTHONPYCACHEPREFIX=str(tmp / "pyc"), ORT_CACHE_DIR=str(tmp / "cache"), ORT_OFFLINE="1")
        against = (args.against, extract(args.against, tmp / "rev")) if args.against else None
        cmds = commands(tmp, against)
        check = cmds[f"ort check {PARCEL} --perimeters demo"][0]
        note = cmds[f"ort note {ROUND_PARCEL} --perimeters demo"][0]
        parcels = note_parcels(args.rounds + 4)

        load_before = os.getloadavg()
        for argv, extra in cmds.values():  # untimed: bytecode, parsed cadastre, fonts, texts kept
            run(argv, {**env, **extra}, tmp, parcels[-1])
        first, first_note = [], []  # the very first check and note of a commune: empty cache
        for i in range(3):
            first.append(run(check, dict(env, ORT_CACHE_DIR=str(tmp / f"cache-first-{i}")), tmp))
            empty = dict(env, ORT_CACHE_DIR=str(tmp / f"cache-first-note-{i}"))
            first_note.append(run(note, empty, tmp, parcels[-2 - i]))
        times: dict[str, list[tuple[float, float]]] = {label: [] for label in cmds}
        labels = list(cmds)
        for r in range(args.rounds):
            for label in labels[r % len(labels) :] + labels[: r % len(labels)]:
                argv, extra = cmds[label]
                times[label].append(run(argv, {**env, **extra}, tmp, parcels[r]))
        load_after = os.getloadavg()
        counts = {label: imported(argv, {**env, **extra}, tmp) for label, (argv, extra) in cmds.items()}

    check_label = f"ort check {PARCEL} --perimeters demo"
    times[f"{check_label} (first check, empty cache)"] = first
    counts[f"{check_label} (first check, empty cache)"] = counts[check_label]
    note_label = f"ort note {ROUND_PARCEL} --perimeters demo"
    times[f"{note_label} (first note, empty cache)"] = first_note
    counts[f"{note_label} (first note, empty cache)"] = counts[note_label]
    wall = {label: statistics.median(t for t, _ in ts) for label, ts in times.items()}
    cpu = {label: statistics.median(c for _, c in ts) for label, ts in times.items()}
    gpd = 'python -c "import geopandas"'
    rows = [
        {
            "command": label,
            "median_s": round(wall[label], 3),
            "min_s": round(min(t for t, _ in ts), 3),
            "x_python": round(wall[label] / wall["python -c pass"], 2),
            "x_geopandas": round(wall[label] / wall[gpd], 2),
            "cpu_s": round(cpu[label], 3),
            "cpu_x_geopandas": round(cpu[label] / cpu[gpd], 2),
            "modules": counts[label],
        }
        for label, ts in times.items()
    ]
    load = f"load average {load_before[0]:.1f} → {load_after[0]:.1f} (1 min), {os.cpu_count()} CPU"
    print(f"# ort cold start — {args.rounds} rounds, fresh processes, {load}")
    print(f"# {platform.python_implementation()} {platform.python_version()}, {platform.machine()}")
    print()
    head = [
        "command",
        "median s",
        "min s",
        "× python -c pass",
        "× import geopandas",
        "CPU s",
        "CPU × geopandas",
    ]
    print("| " + " | ".join([*head, "modules"]) + " |")
    print("|---|" + "---:|" * len(head))
    for row in rows:
        cells = [
            f"`{row['command']}`",
            f"{row['median_s']:.3f}",
            f"{row['min_s']:.3f}",
            f"{row['x_python']:.1f}",
        ]
        cells += [f"{row['x_geopandas']:.2f}", f"{row['cpu_s']:.3f}", f"{row['cpu_x_geopandas']:.2f}"]
        print("| " + " | ".join([*cells, str(row["modules"])]) + " |")
    if args.json:
        args.json.write_text(
            json.dumps({"rounds": args.rounds, "load": [load_before, load_after], "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
