"""One parcel, cold, from the shell: ``ort check`` and ``ort note`` as fresh processes.

Each round starts every command once as a new process (order rotated from round to round, so
a burst of load falls on all of them); the table gives the median and the minimum over the
rounds, the ratio of each median to the in-run baselines (``python -c pass``, ``python -c
"import geopandas"``), the number of modules each command imports (``-X importtime``) and the
load average before and after. On a shared machine compare the ratios and import counts, not
the seconds: the baselines run in the same rounds, under the same load.

    python bench/bench_cold.py                       # 7 rounds
    python bench/bench_cold.py --rounds 11 --json cold.json

Bytecode is cached as after ``pip install`` (``PYTHONDONTWRITEBYTECODE`` is dropped for the
children and ``PYTHONPYCACHEPREFIX`` points to a temporary folder, warmed by one untimed round:
nothing is written in the source tree). The parsed-cadastre cache (``ORT_CACHE_DIR``) is a
temporary folder too, filled by that untimed round: the rows are "a planner's second question
of the day"; the row ``first check, empty cache`` times the very first one (GeoJSON parsed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PARCEL = "62999000AB0012"


def commands(out: Path) -> dict[str, list[str]]:
    """Label → argv; the ``ort`` entries run the installed console script of this interpreter."""
    py = sys.executable
    ort = shutil.which("ort", path=str(Path(py).parent)) or shutil.which("ort")
    if ort is None:
        raise SystemExit("bench_cold: la commande `ort` est introuvable (pip install -e .)")
    return {
        "python -c pass": [py, "-c", "pass"],
        'python -c "import pandas"': [py, "-c", "import pandas"],
        'python -c "import geopandas"': [py, "-c", "import geopandas"],
        "ort --help": [ort, "--help"],
        f"ort check {PARCEL} --perimeters demo": [ort, "check", PARCEL, "--perimeters", "demo"],
        f"ort note {PARCEL} --perimeters demo": [ort, "note", PARCEL, "--perimeters", "demo"]
        + ["-o", str(out / "note.pdf"), "--force"],
    }


def run(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        failed = " ".join(argv)
        raise SystemExit(f"bench_cold: {failed} a échoué ({done.returncode}) :\n{done.stderr[-2000:]}")
    return elapsed


def imported(argv: list[str], env: dict[str, str], cwd: Path) -> int:
    """Modules imported by the command (``-X importtime`` lines), the interpreter's own included."""
    if Path(argv[0]).name == "ort":  # the console script is `from geo.cli import main; main()`
        argv = [sys.executable, "-X", "importtime", "-m", "geo", *argv[1:]]
    else:
        argv = [argv[0], "-X", "importtime", *argv[1:]]
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    return sum(1 for line in done.stderr.splitlines() if line.startswith("import time:") and "|" in line) - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None, help="write the figures as JSON too")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ort-bench-cold-") as tmp:
        tmp = Path(tmp)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(PYTHONPYCACHEPREFIX=str(tmp / "pyc"), ORT_CACHE_DIR=str(tmp / "cache"), ORT_OFFLINE="1")
        cmds = commands(tmp)
        check = cmds[f"ort check {PARCEL} --perimeters demo"]

        load_before = os.getloadavg()
        for argv in cmds.values():  # untimed: bytecode and parsed cadastre written
            run(argv, env, tmp)
        first = []  # the very first check of a commune: empty parsed-cadastre cache
        for i in range(3):
            first.append(run(check, dict(env, ORT_CACHE_DIR=str(tmp / f"cache-first-{i}")), tmp))
        times: dict[str, list[float]] = {label: [] for label in cmds}
        labels = list(cmds)
        for r in range(args.rounds):
            for label in labels[r % len(labels) :] + labels[: r % len(labels)]:
                times[label].append(run(cmds[label], env, tmp))
        load_after = os.getloadavg()
        counts = {label: imported(argv, env, tmp) for label, argv in cmds.items()}

    base_py = statistics.median(times["python -c pass"])
    base_gpd = statistics.median(times['python -c "import geopandas"'])
    rows = []
    for label, ts in times.items():
        med = statistics.median(ts)
        rows.append(
            {
                "command": label,
                "median_s": round(med, 3),
                "min_s": round(min(ts), 3),
                "x_python": round(med / base_py, 2),
                "x_geopandas": round(med / base_gpd, 2),
                "modules": counts[label],
            }
        )
    rows.append(
        {
            "command": f"ort check {PARCEL} --perimeters demo (first check, empty cache)",
            "median_s": round(statistics.median(first), 3),
            "min_s": round(min(first), 3),
            "x_python": round(statistics.median(first) / base_py, 2),
            "x_geopandas": round(statistics.median(first) / base_gpd, 2),
            "modules": counts[f"ort check {PARCEL} --perimeters demo"],
        }
    )
    load = f"load average {load_before[0]:.1f} → {load_after[0]:.1f} (1 min), {os.cpu_count()} CPU"
    print(f"# ort cold start — {args.rounds} rounds, fresh processes, {load}")
    print(f"# {platform.python_implementation()} {platform.python_version()}, {platform.machine()}")
    print()
    print("| command | median s | min s | × python -c pass | × import geopandas | modules |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| `{row['command']}` | {row['median_s']:.3f} | {row['min_s']:.3f} | {row['x_python']:.1f} "
            f"| {row['x_geopandas']:.2f} | {row['modules']} |"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"rounds": args.rounds, "load": [load_before, load_after], "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
