"""How long ``ort eligibility --commune 62907`` takes: the official files read in place (the old
default) against the dated Parquet copies shipped in the package (the new default).

Both run in the same session, alternately, as separate ``ort`` processes (what a user waits
for), after one warm-up run each; the script prints the wall time and the CPU time
(user + system) of each run, and the time to load the lists alone inside one process. The
machine is shared: the CPU time is the steadier figure, the wall time the one a user sees.
Not a test: timings are noisy. Run::

    python bench/bench_eligibility.py [--runs 7] [--lists ../shared/data]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Real open data read in place (never a product default): ORT_SHARED_DATA or ../shared/data.
SHARED_DATA = Path(os.environ.get("ORT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def _ort() -> list[str]:
    exe = Path(sys.executable).with_name("ort")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "geo"]


def _run(args: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """Wall and CPU seconds of one ``ort`` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([*_ort(), *args], cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"ort {' '.join(args)} a échoué :\n{done.stderr}")
    if "Libercourt" not in done.stdout:
        raise SystemExit(f"réponse inattendue de ort {' '.join(args)}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _in_process(lists_dir: Path, runs: int) -> dict[str, float]:
    """Seconds to load the lists inside one process (imports done), best of ``runs``."""
    from geo.sources import lists as lists_mod
    from geo.sources.snapshot import read_snapshots

    lists_mod.load_lists(lists_dir)  # imports and first reads out of the timing
    read_snapshots()
    out = {"fichiers officiels": float("inf"), "copies Parquet": float("inf")}
    for _ in range(runs):
        start = time.perf_counter()
        lists_mod.read_lists(lists_mod.locate_lists(lists_dir))
        out["fichiers officiels"] = min(out["fichiers officiels"], time.perf_counter() - start)
        start = time.perf_counter()
        read_snapshots()
        out["copies Parquet"] = min(out["copies Parquet"], time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--lists", type=Path, default=SHARED_DATA, help="fichiers officiels (ancien chemin)")
    args = parser.parse_args()
    if not args.lists.is_dir():
        raise SystemExit(f"dossier des listes introuvable : {args.lists} (ORT_SHARED_DATA)")
    common = ["eligibility", "--commune", "62907", "--date", "2024-01-01"]
    cases = {
        "ancien : fichiers officiels (--lists)": [*common, "--lists", str(args.lists.resolve())],
        "nouveau : copies intégrées (défaut)": common,
    }
    cache = Path(tempfile.mkdtemp(prefix="ort-bench-cache-"))
    env = dict(os.environ, ORT_CACHE_DIR=str(cache), ORT_OFFLINE="1")
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    try:
        with tempfile.TemporaryDirectory() as work:
            for argv in cases.values():  # warm-up: files in the page cache, bytecode compiled
                _run(argv, Path(work), env)
            for _ in range(args.runs):
                for name, argv in cases.items():
                    results[name].append(_run(argv, Path(work), env))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    load = os.getloadavg()[0]
    print(f"ort eligibility --commune 62907 ({args.runs} exécutions chacun, charge moyenne {load:.1f})")
    print(f"{'chemin':40} {'mur min':>8} {'mur méd.':>9} {'CPU min':>8} {'CPU méd.':>9}")
    for name, runs in results.items():
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        print(
            f"{name:40} {min(walls):7.2f}s {statistics.median(walls):8.2f}s "
            f"{min(cpus):7.2f}s {statistics.median(cpus):8.2f}s"
        )
    print("\nChargement des listes seul, dans un processus (meilleur de", args.runs, "essais) :")
    for name, seconds in _in_process(args.lists, args.runs).items():
        print(f"  {name:20} {seconds:6.3f}s")


if __name__ == "__main__":
    main()
