"""France scale: ``ort classify`` file to file on tens of millions of real parcels, locally and on Dask.

    python3 bench/bench_france.py make --n 30000000 --folder /tmp/ort-france
    python3 bench/bench_france.py run --folder /tmp/ort-france --out bench/RESULTS-france.md
    python3 bench/bench_france.py clean --folder /tmp/ort-france

``make`` writes one GeoParquet file per département (``--per-file`` parcels, 1 000 000 by default:
a French département holds 0,5 to 2 million parcels): the real Etalab parcels of Épinay-sur-Orge
and Saint-Marcel tiled by ``bench/bench_scale.py``'s generator into one block, then that block
translated for each file, its IDUs given the file's département (every IDU unique), and
``--perimeters`` perimeters drawn over each block (``bench_scale.synthetic_perimeters``), all in
one GeoPackage — 1 500 perimeters for 30 files, about the number of ORT perimeters in France.

``run`` times, each as a fresh process and with the machine's load noted:

- ``ort classify FOLDER --perimeters-file perimetres.gpkg -o OUT`` (``local``: as the command
  runs, worker processes or threads of its own process, whichever it uses);
- ``threads``: the library's thread executor (``classify_dataset(..., processes=False)``) in a
  fresh process, the perimeters read by geopandas;
- the same with ``--engine dask --scheduler tcp://127.0.0.1:PORT``: a ``dask scheduler`` and two
  ``dask worker`` processes (one thread each) started beforehand on 127.0.0.1, over TCP.

Peak memory: summed RSS of the process tree (and of the scheduler and workers for Dask), every
200 ms. Disk: sizes of the input and output folders.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Départements of metropolitan France, one per file (their metric CRS is Lambert-93).
DEPARTEMENTS = [f"{d:02d}" for d in range(1, 96) if d != 20]
#: Where the blocks are laid out (Lambert-93, metres): inside metropolitan France.
BOX = (200_000.0, 6_250_000.0, 1_050_000.0, 7_000_000.0)


def _bench_scale():
    spec = importlib.util.spec_from_file_location("bench_scale", HERE / "bench_scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make(args) -> None:
    import geopandas as gpd
    import numpy as np
    import pandas as pd
    import shapely

    b = _bench_scale()
    folder = args.folder
    (folder / "parcelles").mkdir(parents=True, exist_ok=True)
    files = -(-args.n // args.per_file)
    if files > len(DEPARTEMENTS):
        raise SystemExit(f"at most {len(DEPARTEMENTS) * args.per_file:,} parcels")
    t = time.perf_counter()
    block = b.real_parcels(args.per_file, args.etalab, departements=("00",), origin=(0.0, 0.0))
    perims = b.synthetic_perimeters(block, args.perimeters, seed=args.seed)
    minx, miny, maxx, maxy = block.total_bounds
    cols = int(np.ceil(np.sqrt(files)))
    rows = -(-files // cols)
    # Side by side when France has room, else overlapping (parcels of two départements may overlap:
    # nothing in the engine depends on it).
    step_x = min(maxx - minx + 100.0, (BOX[2] - BOX[0] - (maxx - minx)) / max(cols - 1, 1))
    step_y = min(maxy - miny + 100.0, (BOX[3] - BOX[1] - (maxy - miny)) / max(rows - 1, 1))
    geoms = block.geometry.to_numpy()
    tails = block["idu"].str[2:].to_numpy(dtype=object)
    all_perims = []
    written = 0
    for k in range(files):
        n = min(args.per_file, args.n - written)
        dep = DEPARTEMENTS[k]
        dx = BOX[0] - minx + (k % cols) * step_x
        dy = BOX[1] - miny + (k // cols) * step_y
        moved = shapely.transform(geoms[:n], lambda xy, dx=dx, dy=dy: xy + [dx, dy])
        idu = dep + tails[:n]
        frame = gpd.GeoDataFrame(
            {"idu": idu, "code_insee": [i[:5] for i in idu]}, geometry=moved, crs=block.crs
        )
        frame.to_parquet(folder / "parcelles" / f"parcelles-{dep}.parquet", row_group_size=100_000)
        p = perims.copy()
        p["perimeter_id"] = [f"{dep}-{x}" for x in perims["perimeter_id"]]
        p["geometry"] = shapely.transform(perims.geometry.to_numpy(), lambda xy, dx=dx, dy=dy: xy + [dx, dy])
        all_perims.append(p)
        written += n
        print(f"  {dep}: {n:,} parcels ({time.perf_counter() - t:.0f} s)", flush=True)
    out = pd.concat(all_perims, ignore_index=True).rename(columns={"perimeter_id": "id"})
    gpd.GeoDataFrame(out, geometry="geometry", crs=block.crs)[["id", "type", "nom", "geometry"]].to_file(
        folder / "perimetres.gpkg"
    )
    facts = {
        "parcels": written,
        "files": files,
        "perimeters": len(out),
        "vertices_per_parcel": float(shapely.get_num_coordinates(geoms).mean()),
        "seconds": time.perf_counter() - t,
    }
    (folder / "facts.json").write_text(json.dumps(facts), encoding="utf-8")
    print(json.dumps(facts))


class _Peak(threading.Thread):
    """Peak of the summed RSS of some process trees, every 200 ms."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids, self.peak, self.stop = pids, 0, threading.Event()
        #: Bytes each process of the trees read from and wrote to storage (/proc/PID/io), last seen.
        self.io: dict[int, tuple[int, int]] = {}
        self.start_io: dict[int, tuple[int, int]] = {}
        #: CPU seconds (user + system) of each process, last seen, by the tree it belongs to.
        self.cpu: dict[int, tuple[int, float]] = {}

    def run(self) -> None:
        import psutil

        while not self.stop.is_set():
            total = 0
            for tree, pid in enumerate(self.pids):
                try:
                    root = psutil.Process(pid)
                    for p in [root, *root.children(recursive=True)]:
                        try:
                            total += p.memory_info().rss
                            times = p.cpu_times()
                            # The command's own process apart (-1): the client, the writer with Dask.
                            mine = -1 if p.pid == self.pids[0] else tree
                            self.cpu[p.pid] = (mine, times.user + times.system)
                            io = p.io_counters()
                            self.start_io.setdefault(p.pid, (io.read_bytes, io.write_bytes))
                            self.io[p.pid] = (io.read_bytes, io.write_bytes)
                        except (psutil.NoSuchProcess, psutil.AccessDenied):
                            pass
                except psutil.NoSuchProcess:
                    pass
            self.peak = max(self.peak, total)
            self.stop.wait(0.2)

    def disk(self) -> tuple[int, int]:
        """Bytes read from and written to storage by the trees during the run (as last seen)."""
        read = sum(self.io[p][0] - self.start_io[p][0] for p in self.io)
        written = sum(self.io[p][1] - self.start_io[p][1] for p in self.io)
        return read, written


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _timed(cmd: list[str], also: list[int] = (), roles: list[str] | None = None) -> dict:
    load = os.getloadavg()
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = _Peak([proc.pid, *also])
    peak.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - t
    peak.stop.set()
    peak.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-2000:]}\n{err[-4000:]}")
    read, written = peak.disk()
    cpu: dict[str, float] = {}
    names = [
        "la commande",
        "ses processus fils",
        *(roles or [f"arbre {k}" for k in range(1, len(peak.pids))]),
    ]
    for tree, used in peak.cpu.values():
        cpu[names[tree + 1]] = cpu.get(names[tree + 1], 0.0) + used
    return {
        "cpu_seconds": cpu,
        "seconds": seconds,
        "peak_mb": peak.peak / 2**20,
        "disk_read_bytes": read,
        "disk_written_bytes": written,
        "load_start": load,
        "load_end": os.getloadavg(),
        "stdout_tail": out.strip().splitlines()[-3:],
    }


def verdicts_checksum(folder: Path) -> dict:
    """Rows and an order-free checksum of a verdicts folder: the sum (mod 2**64) of a hash of
    each row's id, perimeter, status and the bits of its share and areas."""
    import pandas as pd
    import pyarrow.parquet as pq

    columns = ["idu", "perimeter_id", "status", "share", "area_inside_m2", "parcel_area_m2"]
    rows, total = 0, 0
    for part in sorted(folder.rglob("part-*.parquet")):
        frame = pq.read_table(part, columns=columns).to_pandas()
        rows += len(frame)
        hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
        total = (total + int(hashed.sum(dtype="uint64"))) % 2**64
    return {"rows": rows, "checksum": f"{total:016x}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dask_cluster(workdir: Path, workers: int):
    port = _free_port()
    # This interpreter's dask (python -m dask): the workers import this checkout's geo.
    dask = [sys.executable, "-m", "dask"]
    address = f"tcp://127.0.0.1:{port}"
    procs = [
        subprocess.Popen(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=workdir,
        )
    ]
    time.sleep(2.0)
    for k in range(workers):
        procs.append(
            subprocess.Popen(
                [
                    *dask,
                    "worker",
                    address,
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--name",
                    f"w{k}",
                    "--local-directory",
                    str(workdir / f"w{k}"),
                ],  # fmt: skip
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=workdir,
            )
        )
    from distributed import Client

    with Client(address, timeout="60s") as client:
        client.wait_for_workers(workers, timeout=120)
    return address, procs


def run(args) -> None:
    folder = args.folder
    facts = json.loads((folder / "facts.json").read_text(encoding="utf-8"))
    ort = str(Path(sys.executable).parent / "ort")
    source = folder / "parcelles"
    perims = folder / "perimetres.gpkg"
    results = {"facts": facts, "input_bytes": _du(source), "runs": {}}
    if "local" in args.engines:
        out = folder / "verdicts-local"
        cmd = [ort, "classify", str(source), "--perimeters-file", str(perims), "-o", str(out), "--force"]
        res = _timed(cmd)
        res["output_bytes"] = _du(out)
        res["command"] = "ort classify " + " ".join(cmd[2:])
        res["verdicts"] = verdicts_checksum(out)
        results["runs"]["local"] = res
        print("local", json.dumps(res), flush=True)
    if "threads" in args.engines:
        # The library's thread executor (classify_dataset(processes=False)) in a fresh process.
        out = folder / "verdicts-threads"
        code = (
            "import sys, geopandas as gpd; from geo.scale import run; "
            "p = gpd.read_file(sys.argv[2]).rename(columns={'id': 'perimeter_id'}); "
            "r = run.classify_dataset(sys.argv[1], p, sys.argv[3], force=True, processes=False); "
            "print(r.parcels, 'parcelles', r.rows, 'couples')"
        )
        cmd = [sys.executable, "-c", code, str(source), str(perims), str(out)]
        res = _timed(cmd)
        res["output_bytes"] = _du(out)
        res["command"] = f'python -c "{code}" {source} {perims} {out}'
        res["verdicts"] = verdicts_checksum(out)
        results["runs"]["threads"] = res
        print("threads", json.dumps(res), flush=True)
    if "dask" in args.engines:
        work = folder / "dask-work"
        work.mkdir(exist_ok=True)
        address, procs = _dask_cluster(work, args.dask_workers)
        try:
            out = folder / "verdicts-dask"
            cmd = [ort, "classify", str(source), "--perimeters-file", str(perims), "-o", str(out), "--force",
                   "--engine", "dask", "--scheduler", address]  # fmt: skip
            roles = ["ordonnanceur Dask", *(f"travailleur Dask {k}" for k in range(1, len(procs)))]
            res = _timed(cmd, also=[p.pid for p in procs], roles=roles)
            res["output_bytes"] = _du(out)
            res["command"] = "ort classify " + " ".join(cmd[2:])
            res["verdicts"] = verdicts_checksum(out)
            results["runs"]["dask"] = res
            print("dask", json.dumps(res), flush=True)
        finally:
            for p in procs[::-1]:
                p.terminate()
            for p in procs:
                p.wait(timeout=30)
            shutil.rmtree(work, ignore_errors=True)
    (folder / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    if args.out:
        args.out.write_text(markdown(results), encoding="utf-8")
    print(markdown(results))


def _fr(x: float, digits: int = 1) -> str:
    return f"{x:,.{digits}f}".replace(",", "\u202f").replace(".", ",")


def markdown(results: dict) -> str:
    f = results["facts"]
    n = f["parcels"]
    lines = [
        f"## {_fr(n, 0)} parcelles réelles en mosaïque, {f['files']} fichiers (un par département), "
        f"{f['perimeters']} périmètres",
        "",
        f"Entrée : {_fr(results['input_bytes'] / 1e9, 2)} Go de GeoParquet.",
        "",
        "| moteur | secondes | parcelles/s | pic RSS Go (somme des processus) | lu / écrit sur disque Mo | "
        "sortie Mo | verdicts (lignes, somme de contrôle) | charge (début → fin, 1 min) | "
        "France (100 M), extrapolé |",
        "|---|---:|---:|---:|---:|---:|---|---|---:|",
    ]
    for name, r in results["runs"].items():
        rate = n / r["seconds"]
        v = r.get("verdicts", {})
        lines.append(
            f"| {name} | {_fr(r['seconds'])} | {_fr(rate, 0)} | {_fr(r['peak_mb'] / 1024, 2)} | "
            f"{_fr(r.get('disk_read_bytes', 0) / 1e6, 0)} / {_fr(r.get('disk_written_bytes', 0) / 1e6, 0)} | "
            f"{_fr(r['output_bytes'] / 1e6, 0)} | {_fr(v.get('rows', 0), 0)}, `{v.get('checksum', '')}` | "
            f"{_fr(r['load_start'][0], 2)} → {_fr(r['load_end'][0], 2)} | "
            f"{_fr(100e6 / rate / 60, 1)} min |"
        )
    lines.append("")
    sums = {r.get("verdicts", {}).get("checksum") for r in results["runs"].values()}
    if len(results["runs"]) > 1:
        same = "oui" if len(sums) == 1 else "NON"
        lines.append(f"Sorties identiques (lignes et somme de contrôle) : {same}")
        lines.append("")
    for name, r in results["runs"].items():
        lines.append(f"- {name} : `{r['command']}`")
        cpu = ", ".join(f"{role} {_fr(sec)} s" for role, sec in r.get("cpu_seconds", {}).items())
        lines.append(f"  - temps CPU (utilisateur + système) : {cpu}")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["make", "run", "clean"])
    ap.add_argument("--folder", type=Path, required=True)
    ap.add_argument("--n", type=int, default=30_000_000)
    ap.add_argument("--per-file", type=int, default=1_000_000)
    ap.add_argument("--perimeters", type=int, default=50, help="perimeters per file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--engines", nargs="+", default=["local", "threads", "dask"], choices=["local", "threads", "dask"]
    )
    ap.add_argument("--dask-workers", type=int, default=2)
    ap.add_argument("--etalab", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.etalab is None:
        shared = os.environ.get("ORT_SHARED_DATA", HERE.parents[1] / "shared" / "data")
        args.etalab = Path(shared) / "cadastre-etalab-sample"
    if args.action == "make":
        make(args)
    elif args.action == "run":
        run(args)
    else:
        shutil.rmtree(args.folder, ignore_errors=True)


if __name__ == "__main__":
    main()
