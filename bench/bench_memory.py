"""Memory of ``ort classify`` against many perimeters: RSS against parcels done, 1, 4, 8 files.

    python3 bench/bench_memory.py --folder /work/france-data --files 1 4 8 \\
        --against /path/to/a/worktree/of/main --out /tmp/memory.md

Uses the files of ``bench/bench_france.py make`` (one GeoParquet file of 1 million real parcels
per département, ``perimetres.gpkg`` with 50 perimeters per file: 1 500 for 30 files). For each
count of files, a folder of links to the first files is classified against *all* the
perimeters by ``ort classify`` as a fresh process — the code of ``--against`` (its ``geo`` first
on ``PYTHONPATH``) and this checkout's, interleaved — while the summed RSS of the process tree
(the command, its fork server and workers) is sampled every 100 ms and the parcels done read
from its progress lines. A run whose tree passes ``--limit-gb`` is stopped (the machine is
shared): its row says where.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path


def _tree_rss(pid: int, kind: str = "rss") -> int:
    """Summed RSS of a process tree (pages shared by forked workers counted in each), or PSS
    (each shared page divided among the processes that share it: what the tree really holds)."""
    import psutil

    total = 0
    try:
        root = psutil.Process(pid)
        for p in [root, *root.children(recursive=True)]:
            try:
                total += p.memory_info().rss if kind == "rss" else p.memory_full_info().pss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
    except psutil.NoSuchProcess:
        pass
    return total


def one_run(cmd: list[str], env: dict, limit: float) -> dict:
    load = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd="/")
    done = [0]
    samples: list[tuple[float, int, int]] = []  # seconds, parcels done, RSS bytes
    err_lines: list[str] = []

    def read_progress() -> None:
        for line in proc.stderr:
            err_lines.append(line)
            if line.rstrip().endswith(" parcelles") and " : " in line:
                try:
                    done[0] += int(line.rstrip().rsplit(" : ", 1)[1].split()[0])
                except ValueError:
                    pass

    reader = threading.Thread(target=read_progress, daemon=True)
    reader.start()
    killed = False
    pss = 0
    while proc.poll() is None:
        rss = _tree_rss(proc.pid)
        samples.append((time.perf_counter() - t0, done[0], rss))
        if len(samples) % 5 == 0:  # reading smaps costs: every half second
            pss = max(pss, _tree_rss(proc.pid, "pss"))
        if rss > limit:
            killed = True
            import psutil

            for p in psutil.Process(proc.pid).children(recursive=True)[::-1] + [psutil.Process(proc.pid)]:
                try:
                    p.kill()
                except psutil.NoSuchProcess:
                    pass
            break
        time.sleep(0.1)
    proc.wait()
    reader.join(timeout=5)
    out = proc.stdout.read()
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "returncode": proc.returncode,
        "killed": killed,
        "parcels_done": done[0],
        "peak_rss": max((s[2] for s in samples), default=0),
        "peak_pss": pss,
        "samples": samples,
        "load_start": load,
        "load_end": os.getloadavg(),
        "tail": (out.strip().splitlines() or [""])[-1] if not killed else "",
        "stderr_tail": "".join(err_lines[-3:]) if proc.returncode not in (0,) and not killed else "",
    }


def rss_at(samples, parcels: int) -> float | None:
    """Largest RSS (GB) seen until ``parcels`` were done."""
    seen = [s[2] for s in samples if s[1] <= parcels]
    return max(seen) / 2**30 if seen and samples[-1][1] >= parcels else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, required=True)
    ap.add_argument("--files", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--against", type=Path, default=None, help="a checkout of the baseline (e.g. main)")
    ap.add_argument("--limit-gb", type=float, default=6.0)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    ort = str(Path(sys.executable).parent / "ort")
    files = sorted((args.folder / "parcelles").glob("*.parquet"))
    perims = args.folder / "perimetres.gpkg"
    variants = {"ce code": None}
    if args.against:
        variants = {"avant (--against)": args.against, **variants}
    rows = []
    for k in args.files:
        sub = args.folder / f"sous-ensemble-{k}"
        sub.mkdir(exist_ok=True)
        for f in files[:k]:
            link = sub / f.name
            if not link.exists():
                link.symlink_to(f)
        for name, path in variants.items():
            env = dict(os.environ)
            if path is not None:  # its geo first (no empty entry: that would be the current folder)
                env["PYTHONPATH"] = os.pathsep.join([str(path), *filter(None, [env.get("PYTHONPATH")])])
            used = subprocess.run(
                [sys.executable, "-c", "import geo; print(geo.__file__)"],
                env=env, cwd="/", capture_output=True, text=True, check=True,
            ).stdout.strip()  # fmt: skip
            out = args.folder / f"verdicts-memoire-{k}"
            cmd = [ort, "classify", str(sub), "--perimeters-file", str(perims), "-o", str(out), "--force"]
            if args.workers:
                cmd += ["--workers", str(args.workers)]
            res = one_run(cmd, env, args.limit_gb * 2**30)
            res.update(files=k, variant=name, geo=used)
            rows.append(res)
            at = {m: rss_at(res["samples"], m * 1_000_000) for m in (1, 2, 4, 8, 16)}
            print(
                json.dumps(
                    {
                        key: res[key]
                        for key in ("variant", "files", "seconds", "killed", "parcels_done", "returncode")
                    }
                    | {
                        "peak_gb": res["peak_rss"] / 2**30,
                        "pss_gb": res["peak_pss"] / 2**30,
                        "gb_at_millions": at,
                        "load": res["load_start"][0],
                    }
                ),
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(rows), encoding="utf-8")
    text = markdown(rows)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    print(text)


def _fr(x: float, digits: int = 2) -> str:
    return f"{x:,.{digits}f}".replace(",", "\u202f").replace(".", ",")


def markdown(rows: list[dict]) -> str:
    lines = [
        "| code | fichiers (1 M parcelles chacun) | secondes | parcelles faites | pic RSS Go (arbre) | "
        "pic PSS Go (arbre) | RSS Go à 1 / 2 / 4 / 8 / 16 M | charge 1 min (début → fin) |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        at = " / ".join(
            "—" if (v := rss_at(r["samples"], m * 1_000_000)) is None else _fr(v) for m in (1, 2, 4, 8, 16)
        )
        state = " (arrêté : limite de RSS)" if r["killed"] else ("" if r["returncode"] == 0 else " (échec)")
        lines.append(
            f"| {r['variant']} | {r['files']} | {_fr(r['seconds'], 1)}{state} | "
            f"{_fr(r['parcels_done'], 0)} | "
            f"{_fr(r['peak_rss'] / 2**30)} | {_fr(r.get('peak_pss', 0) / 2**30)} | {at} | "
            f"{_fr(r['load_start'][0])} → {_fr(r['load_end'][0])} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
