"""Warm notes: ``geo.app.note_pdf`` in a long-lived process, and over HTTP from ``ort serve``.

What a server does for each note, for varied parcels of the demo commune (each asked once, so no
answer is served from a cache of notes), with the code of this checkout and of a baseline
revision side by side, interleaved note by note (the order swapped at each note), so that a
burst of load on the shared machine falls on both:

- in process (default): one worker process per code, the territory opened once, then one note
  per parcel; wall time and CPU time (the worker's own, less sensitive to other people's load);
- ``--http``: ``ort serve --perimeters demo --workers 2`` per code on a free port, one client,
  ``GET /api/parcelles/{id}/note.pdf``; wall time seen by the client.

    python bench/bench_note.py --against main                 # 40 parcels, in process
    python bench/bench_note.py --against main --http --notes 30
    python bench/bench_note.py                                # this checkout only

The baseline's tree is extracted from git into a temporary folder (nothing written in the
repository) and put first on ``PYTHONPATH``; the embedded data stay this checkout's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _checkout import extract  # bench/, beside this file

DAYS = ("2023-06-01", "2024-09-01", "2025-03-01")

WORKER = r"""
import json, sys, time
from geo import app
t = app.open_territory("demo")
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    idu, day = line.split()
    w, c = time.perf_counter(), time.process_time()
    pdf = app.note_pdf(idu, territoire=t, date=day)
    out = {"wall": time.perf_counter() - w, "cpu": time.process_time() - c, "bytes": len(pdf)}
    print(json.dumps(out), flush=True)
"""


def parcels(n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` distinct (parcel, date) pairs of the demo commune."""
    from geo import embedded
    from geo.sources.cadastre import read_parcels

    idus = sorted(read_parcels(embedded.demo_dir() / "cadastre-62999-parcelles.json.gz")["idu"])
    rng = random.Random(seed)
    return [(idu, rng.choice(DAYS)) for idu in rng.sample(idus, n)]


class InProcess:
    """A worker process drawing notes on request (the territory opened once)."""

    def __init__(self, env: dict, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env=env, cwd=cwd,
        )  # fmt: skip
        assert json.loads(self.proc.stdout.readline())["ready"]

    def note(self, idu: str, day: str) -> dict:
        self.proc.stdin.write(f"{idu} {day}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"bench_note: le processus de notes s'est arrêté ({idu} {day})")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


class Http:
    """``ort serve --perimeters demo --workers 2`` on a free port, asked by one client."""

    def __init__(self, env: dict, cwd: Path) -> None:
        import httpx

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        argv = [sys.executable, "-m", "geo", "serve", "--perimeters", "demo", "--workers", "2"]
        self.proc = subprocess.Popen(
            [*argv, "--port", str(self.port)], env=env, cwd=cwd, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=120)
        deadline = time.monotonic() + 120
        while True:
            try:
                if self.client.get("/api/parcelles/62999000AB0012?date=2024-09-01").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("bench_note: ort serve n'a pas répondu")
            time.sleep(0.5)

    def note(self, idu: str, day: str) -> dict:
        started = time.perf_counter()
        r = self.client.get(f"/api/parcelles/{idu}/note.pdf", params={"date": day})
        wall = time.perf_counter() - started
        if r.status_code != 200 or not r.content.startswith(b"%PDF"):
            raise SystemExit(f"bench_note: {idu} {day} → {r.status_code} {r.text[:300]}")
        return {"wall": wall, "bytes": len(r.content)}

    def close(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(timeout=60)


def summary(label: str, rows: list[dict]) -> dict:
    walls = sorted(r["wall"] for r in rows)
    out = {
        "code": label,
        "n": len(rows),
        "p50_s": round(statistics.median(walls), 3),
        "p95_s": round(walls[min(len(walls) - 1, round(0.95 * (len(walls) - 1)))], 3),
        "max_s": round(walls[-1], 3),
        "kB": round(statistics.median(r["bytes"] for r in rows) / 1000, 1),
    }
    if "cpu" in rows[0]:
        cpus = sorted(r["cpu"] for r in rows)
        out["cpu_p50_s"] = round(statistics.median(cpus), 3)
        out["cpu_p95_s"] = round(cpus[min(len(cpus) - 1, round(0.95 * (len(cpus) - 1)))], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=40, help="parcels (each asked once)")
    parser.add_argument("--against", metavar="REV", default=None, help="baseline git revision, e.g. main")
    parser.add_argument("--http", action="store_true", help="through ort serve (1 client) instead")
    parser.add_argument("--seed", type=int, default=26)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    asked = parcels(args.notes + 1, args.seed)
    with tempfile.TemporaryDirectory(prefix="ort-bench-note-") as tmp:
        tmp = Path(tmp)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(PYTHONPYCACHEPREFIX=str(tmp / "pyc"), ORT_CACHE_DIR=str(tmp / "cache"), ORT_OFFLINE="1")
        codes = {"this checkout": env}
        if args.against:
            tree = extract(args.against, tmp / "rev")
            codes[args.against] = {**env, "PYTHONPATH": str(tree)}
        kind = Http if args.http else InProcess
        load_before = os.getloadavg()
        runners = {label: kind(e, tmp) for label, e in codes.items()}
        try:
            for runner in runners.values():  # first note: fonts, lists, rules (not a warm note)
                runner.note(*asked[0])
            times: dict[str, list[dict]] = {label: [] for label in runners}
            labels = list(runners)
            for k, (idu, day) in enumerate(asked[1:]):
                for label in labels if k % 2 == 0 else labels[::-1]:
                    times[label].append(runners[label].note(idu, day))
        finally:
            for runner in runners.values():
                runner.close()
        load_after = os.getloadavg()

    rows = [summary(label, ts) for label, ts in times.items()]
    where = "HTTP, ort serve --workers 2, 1 client" if args.http else "in process (geo.app.note_pdf)"
    load = f"load average {load_before[0]:.1f} → {load_after[0]:.1f} (1 min), {os.cpu_count()} CPU"
    print(f"# warm notes, {where} — {args.notes} parcels × dates, each once, interleaved; {load}")
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * (len(keys) - 1))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")
    if len(rows) == 2:
        ratio = rows[1]["p50_s"] / rows[0]["p50_s"]
        print(f"\n{rows[1]['code']} / this checkout, p50: {ratio:.2f}×")
    if args.json:
        args.json.write_text(json.dumps({"load": [load_before, load_after], "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
