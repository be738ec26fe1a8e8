"""The table of issue 26 as a user meets it: each run a fresh process, preparation counted.

    python3 bench/bench_fresh.py --sizes 1000000 --repeat 3 --warm --out bench/RESULTS-fresh.md

Same data as ``bench/bench_scale.py`` (its generator: real Etalab parcels tiled, perimeters
drawn over them). Each round starts every engine as a new process, interleaved (the order
rotates), and waits for it to end (what it wrote is ``sync``-ed before the next):

- end to end: ``ort classify FILE --perimeters-file … -o DIR`` (the command as typed); one
  DuckDB ``COPY`` statement that reads the GeoParquet, **cuts its own perimeter pieces** (a grid
  of 8 × 8 cells over each perimeter, ``ST_Intersection`` + ``ST_Dump``) and writes Parquet;
  SedonaDB reading the files (its pieces cut beforehand by ort: it has no ``ST_Subdivide``, and
  the cut is not timed — an advantage to SedonaDB); geopandas reading and writing the parcels
  (the floor: no classification). Timed from outside: interpreter, imports, everything. The
  DuckDB and SedonaDB processes import their engine only (their SQL is written beforehand),
  and every child, like ``ort classify``, ends without the interpreter's teardown.
  ``--against DIR`` adds the ``ort classify`` of another checkout (e.g. a worktree of main).
- in memory, first call in a fresh process: the data loaded untimed in each engine's form
  (GeoDataFrame; DuckDB tables, its spatial extension loaded; SedonaDB memtables), then the first
  classification timed, its preparation counted (ort: importing the engine, loading the compiled
  code, perimeter grids, threads; DuckDB: cutting its pieces; SedonaDB: pieces given).

``--warm`` adds the warm rows of ``bench/bench_scale.py`` (2nd call in a warm process; PostGIS)
on the same data, in the same run. Memory: peak of the summed RSS of the process tree (sampled
every 50 ms; RSS counts pages shared by several processes more than once: the fork server
and workers of ``--against`` main).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _bench_scale():
    spec = importlib.util.spec_from_file_location("bench_scale", HERE / "bench_scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# DuckDB cuts its own pieces: an 8 × 8 grid over each perimeter's box, each cell's intersection
# with the perimeter, dumped to polygons. Only the benchmark's own paths go in.
_DUCKDB_CUT = """(SELECT perimeter_id, geom AS geometry FROM (
  SELECT perimeter_id, unnest(ST_Dump(g), recursive := true) FROM (
    SELECT m.perimeter_id, ST_Intersection(m.geometry, ST_MakeEnvelope(
        x0 + i * w, y0 + j * h, x0 + (i + 1) * w, y0 + (j + 1) * h)) AS g
    FROM (SELECT perimeter_id, geometry, ST_XMin(geometry) AS x0, ST_YMin(geometry) AS y0,
                 (ST_XMax(geometry) - ST_XMin(geometry)) / 8 AS w,
                 (ST_YMax(geometry) - ST_YMin(geometry)) / 8 AS h
          FROM {perimeters}) m, range(8) r1(i), range(8) r2(j)))
  WHERE ST_GeometryType(geom) = 'POLYGON' AND NOT ST_IsEmpty(geom))"""


# --- the child processes (one per run) ---------------------------------------------------------


def statements(data: Path, out: Path) -> None:
    """Write the SQL of the end-to-end DuckDB and SedonaDB runs beside the data: their fresh
    processes then import nothing but their engine (not this benchmark's geopandas)."""
    b = _bench_scale()
    q = b._quoted
    cut = _DUCKDB_CUT.format(perimeters=f"read_parquet({q(data / 'perimeters.parquet')})")
    select = b._pairs_sql(f"read_parquet({q(data / 'parcels.parquet')})", cut)
    copy = f"COPY ({select}) TO {q(out / 'duckdb-copy.parquet')} (FORMAT parquet)"
    (out / "duckdb-copy.sql").write_text(copy, encoding="utf-8")
    sedona = b._pairs_sql("parcels", "pieces", "ST_Contains", materialized=False)
    (out / "sedona-file.sql").write_text(sedona, encoding="utf-8")


def _leave() -> None:
    """End a child at once (what ``ort classify`` does): no interpreter teardown for anyone."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def child(name: str, data: Path, out: Path) -> None:
    """One engine's run in this fresh process; in-memory ones print their first call's time."""
    if name == "duckdb-copy":
        import _connect  # bench/, beside this file: duckdb only

        _connect.duckdb_connect().execute((out / "duckdb-copy.sql").read_text(encoding="utf-8"))
        _leave()
    elif name == "sedona-file":
        import sedonadb

        ctx = sedonadb.connect()
        ctx.read_parquet(str(data / "parcels.parquet")).to_view("parcels")
        ctx.read_parquet(str(data / "pieces.parquet")).to_view("pieces")
        ctx.sql((out / "sedona-file.sql").read_text(encoding="utf-8")).to_parquet(
            str(out / "sedona-file.parquet")
        )
        _leave()
    elif name == "floor":
        import geopandas as gpd

        gpd.read_parquet(data / "parcels.parquet").to_parquet(out / "floor.parquet")
        _leave()
    b = _bench_scale()
    q = b._quoted
    if name == "ort-first":
        import geopandas as gpd

        parcels = gpd.read_parquet(data / "parcels.parquet", columns=["idu", "geometry"])
        perims = gpd.read_parquet(data / "perimeters.parquet")
        t = time.perf_counter()
        from geo.scale.run import classify_frame  # the engine, its compiled code, grids: counted

        verdicts = classify_frame(parcels, perims, workers=os.cpu_count())
        seconds = time.perf_counter() - t
        b._verdict_frame(verdicts).to_parquet(out / "first-ort.parquet")
        print(json.dumps({"seconds": seconds}))
    elif name == "duckdb-first":
        conn = b._duckdb_connect()
        conn.execute(
            f"CREATE TABLE parcels AS SELECT idu, geometry FROM read_parquet({q(data / 'parcels.parquet')})"
        )
        conn.execute(f"CREATE TABLE perims AS SELECT * FROM read_parquet({q(data / 'perimeters.parquet')})")
        t = time.perf_counter()
        conn.execute(
            "CREATE TABLE verdicts AS " + b._pairs_sql("parcels", _DUCKDB_CUT.format(perimeters="perims"))
        )
        seconds = time.perf_counter() - t
        b._verdict_frame(conn.execute("SELECT * FROM verdicts").df()).to_parquet(out / "first-duckdb.parquet")
        print(json.dumps({"seconds": seconds}))
    elif name == "sedona-first":
        import sedonadb

        ctx = sedonadb.connect()
        ctx.read_parquet(str(data / "parcels.parquet")).select("idu", "geometry").to_memtable().to_view(
            "parcels"
        )
        ctx.read_parquet(str(data / "pieces.parquet")).to_memtable().to_view("pieces")
        t = time.perf_counter()
        frame = ctx.sql(b._pairs_sql("parcels", "pieces", "ST_Contains", materialized=False)).to_pandas()
        seconds = time.perf_counter() - t
        b._verdict_frame(frame).to_parquet(out / "first-sedona.parquet")
        print(json.dumps({"seconds": seconds}))
    else:
        raise SystemExit(f"unknown child {name}")


#: ``--against DIR``: the engine row of that checkout (its ``geo`` first on ``PYTHONPATH``).
AGAINST = "ort classify (--against)"


def _check_against(checkout: Path, env: dict) -> None:
    """The ``--against`` runs import that checkout's ``geo``, not this one's."""
    where = subprocess.run(
        [sys.executable, "-P", "-c", "import geo; print(geo.__file__)"],
        env=env,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not Path(where).resolve().is_relative_to(Path(checkout).resolve()):
        raise SystemExit(f"--against {checkout}: its geo is not the one imported ({where})")


def _command(name: str, data: Path, out: Path) -> list[str]:
    args = ["classify", str(data / "parcels.parquet"), "--perimeters-file", str(data / "perimetres.gpkg")]
    if name == "ort classify":
        return [shutil.which("ort") or "ort", *args, "-o", str(out / "ort-cli"), "--force"]
    if name == AGAINST:  # as a user runs it there too: the command in its own process
        # -P: the current folder is not put first on sys.path (run from a checkout, its `geo`
        # would be imported instead of the one on PYTHONPATH).
        return [sys.executable, "-P", "-m", "geo", *args, "-o", str(out / "ort-against"), "--force"]
    kid = {"duckdb COPY": "duckdb-copy", "sedonadb": "sedona-file", "geopandas read+write": "floor"}.get(
        name, name
    )
    return [sys.executable, __file__, "--child", kid, "--data", str(data), "--work", str(out)]


END_TO_END = ["ort classify", "duckdb COPY", "sedonadb", "geopandas read+write"]
FIRST_CALL = {"ort": "ort-first", "duckdb": "duckdb-first", "sedonadb": "sedona-first"}


class _Peak(threading.Thread):
    """Peak of the summed RSS of a process and its descendants, every 50 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self) -> None:
        import psutil

        while not self.stop.is_set():
            try:
                root = psutil.Process(self.pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
            self.peak = max(self.peak, total)
            self.stop.wait(0.05)


def run_fresh(cmd: list[str], env: dict | None = None) -> tuple[float, float, dict]:
    """Wall seconds of a fresh process, its peak RSS (MB), and the JSON it printed (if any)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = _Peak(proc.pid)
    peak.start()
    stdout, stderr = proc.communicate()
    seconds = time.perf_counter() - t
    peak.stop.set()
    peak.join()
    if proc.returncode not in (0,):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stdout}\n{stderr}")
    os.sync()
    printed = {}
    for line in stdout.splitlines()[::-1]:
        if line.startswith("{"):
            printed = json.loads(line)
            break
    return seconds, peak.peak / 2**20, printed


def bench_size(n: int, args, root: Path) -> dict:
    b = _bench_scale()
    data = root / f"real-{n}"
    import geopandas as gpd

    facts_file = data / "facts.json"
    if facts_file.exists():  # made before (--data-dir): the same seed gives the same data
        facts = json.loads(facts_file.read_text(encoding="utf-8"))
    else:
        # More départements as n grows: a tile's two communes are numbered within a band of
        # départements, 1 000 communes per département at most (ids stay unique).
        band = ("62", "59", "80", "02", "60", "76", "27", "14", "50", "61", "72", "28")
        real = b.real_parcels
        b.real_parcels = functools.partial(real, departements=band[: max(2, -(-n // 1_000_000))])
        facts = b.make_data("real", n, data, args)
        b.real_parcels = real
        perims = gpd.read_parquet(data / "perimeters.parquet").rename(columns={"perimeter_id": "id"})
        perims[["id", "type", "nom", "geometry"]].to_file(data / "perimetres.gpkg")
        facts_file.write_text(json.dumps(facts), encoding="utf-8")
    if args.make_only:
        return {"n": n, "facts": facts, "rows": {}}
    print(f"\n== real {n:,} parcels × {facts['perimeters']} perimeters", flush=True)
    statements(data, data)
    rows: dict = {}
    jobs = [("file", name) for name in args.file_engines] + [("first", name) for name in args.first_engines]
    for r in range(args.repeat):
        shift = r % len(jobs)
        for table, name in jobs[shift:] + jobs[:shift]:
            cmd = _command(name, data, data) if table == "file" else _command(FIRST_CALL[name], data, data)
            load = os.getloadavg()[0]
            env = None
            if name == AGAINST:
                env = dict(os.environ, PYTHONPATH=str(args.against))
                _check_against(args.against, env)
            wall, peak, printed = run_fresh(cmd, env)
            seconds = printed.get("seconds", wall)
            row = rows.setdefault((table, name), {"times": [], "walls": [], "peaks": [], "loads": []})
            row["times"].append(seconds)
            row["walls"].append(wall)
            row["peaks"].append(peak)
            row["loads"].append(load)
            print(f"   [{table}] round {r + 1} {name:22s} {seconds:7.2f} s (process {wall:.2f} s, "
                  f"{peak:,.0f} MB)  load {load:.1f}", flush=True)  # fmt: skip
    # ort's in-memory result, else (no in-memory row) what `ort classify` wrote
    ref_key = ("first", "ort") if "ort" in args.first_engines else ("file", "ort classify")
    reference = None
    outputs = {
        ("file", "ort classify"): lambda: b._verdict_frame(_ort_results(data / "ort-cli")),
        ("file", AGAINST): lambda: b._verdict_frame(_ort_results(data / "ort-against")),
        ("file", "duckdb COPY"): lambda: b._verdict_frame(
            __import__("pandas").read_parquet(data / "duckdb-copy.parquet")
        ),
        ("file", "sedonadb"): lambda: b._verdict_frame(
            __import__("pandas").read_parquet(data / "sedona-file.parquet")
        ),
        ("first", "duckdb"): lambda: __import__("pandas").read_parquet(data / "first-duckdb.parquet"),
        ("first", "sedonadb"): lambda: __import__("pandas").read_parquet(data / "first-sedona.parquet"),
    }
    if ref_key == ("first", "ort"):
        reference = b._verdict_frame(__import__("pandas").read_parquet(data / "first-ort.parquet"))
    elif ref_key in rows:
        reference = outputs[ref_key]()
    for key, row in rows.items():
        row["seconds"] = statistics.median(row["times"])
        row["peak_mb"] = max(row["peaks"])
        if key == ref_key:
            row["agree"] = "référence"
        elif key in outputs and reference is not None:
            row["agree"] = b.compare(reference, outputs[key]())
        else:
            row["agree"] = "sans objet"
    result = {"n": n, "facts": facts, "rows": rows}
    if args.warm:
        warm = argparse.Namespace(**vars(args))
        warm.file_engines = [name for name in args.file_engines if name in b.END_TO_END]
        result["warm"] = b.bench_dataset("real", n, warm, args.cluster, root)
    return result


def _ort_results(folder: Path):
    from geo.scale import run as scale

    return scale.read_results(folder)


def _fr(x: float, digits: int = 2) -> str:
    return f"{x:,.{digits}f}".replace(",", "\u202f").replace(".", ",")


def markdown(results: list[dict], command: str, load: tuple[str, str]) -> str:
    lines = [
        "# Comme un utilisateur le lance : processus neufs, préparation comptée (issue 26)",
        "",
        f"Produit par `{command}`. Charge moyenne (1, 5, 15 min) : {load[0]} au début, {load[1]} à la fin ; "
        "la charge au lancement de chaque essai est dans la colonne « charge ».",
        "",
    ]
    for res in results:
        n = res["n"]
        lines += [f"## {_fr(n, 0)} parcelles réelles (Etalab 91216 + 73253 en mosaïque) × "
                  f"{res['facts']['perimeters']} périmètres", ""]  # fmt: skip
        lines += [
            "| mesure | moteur | secondes (médiane) | essais | charge | pic RSS Mo | accord avec ort |",
            "|---|---|---:|---|---|---:|---|",
        ]
        labels = {
            "file": "de bout en bout, processus neuf (fichier GeoParquet → Parquet)",
            "first": "en mémoire, 1er appel dans un processus neuf (préparation comptée)",
        }
        for (table, name), row in res["rows"].items():
            lines.append(
                f"| {labels[table]} | {name} | {_fr(row['seconds'])} | "
                f"{' ; '.join(_fr(t) for t in row['times'])} | "
                f"{' ; '.join(_fr(x, 1) for x in row['loads'])} | "
                f"{_fr(row['peak_mb'], 0)} | {row['agree']} |"
            )
        for table, a, b_ in (("file", "ort classify", "duckdb COPY"), ("file", "ort classify", "sedonadb"),
                             ("first", "ort", "duckdb"), ("first", "ort", "sedonadb")):  # fmt: skip
            if (table, a) in res["rows"] and (table, b_) in res["rows"]:
                ratio = res["rows"][(table, b_)]["seconds"] / res["rows"][(table, a)]["seconds"]
                goal = 2.0 if table == "file" else 3.0
                lines.append(
                    f"- {labels[table]} : {a} {_fr(ratio)} × plus rapide que {b_} "
                    f"(objectif ≥ {_fr(goal, 0)} × : {'atteint' if ratio >= goal else 'non atteint'})."
                )
        if ("file", "ort classify") in res["rows"] and ("file", AGAINST) in res["rows"]:
            rows = res["rows"]
            ratio = rows[("file", AGAINST)]["seconds"] / rows[("file", "ort classify")]["seconds"]
            lines.append(
                f"- {labels['file']} : ort classify {_fr(ratio)} × plus rapide que la version "
                f"de référence (`--against`, même exécution, entrelacée)."
            )
        lines.append("")
        if "warm" in res:
            lines += ["### Processus chaud (2e appel et suivants) — `bench_scale.py`, même exécution", ""]
            warm = res["warm"]["tables"]
            for table, label in (
                ("memory", "en mémoire, processus chaud"),
                ("file", "de bout en bout, processus chaud"),
            ):
                for name, row in warm.get(table, {}).items():
                    if "skipped" in row:
                        continue
                    lines.append(f"- {label} — {name} : {_fr(row['seconds'])} s (médiane de "
                                 f"{' ; '.join(_fr(t) for t in row['times'])}), {row['agree']}")  # fmt: skip
            lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--perimeters", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--file-engines", nargs="*", default=END_TO_END)
    ap.add_argument("--first-engines", nargs="*", default=list(FIRST_CALL))
    ap.add_argument("--warm", action="store_true", help="add bench_scale.py's warm rows (and PostGIS)")
    ap.add_argument("--etalab", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--data-dir", type=Path, default=None, help="keep (and reuse) the data here")
    ap.add_argument("--make-only", action="store_true", help="make the data (--data-dir) and stop")
    ap.add_argument(
        "--against",
        type=Path,
        default=None,
        help="a checkout (e.g. a git worktree of main): its `ort classify` runs too, interleaved",
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.against is not None and AGAINST not in args.file_engines:
        args.file_engines = [*args.file_engines, AGAINST]
    if args.child:
        child(args.child, args.data, args.work)
        return
    if args.etalab is None:
        shared = os.environ.get("ORT_SHARED_DATA", HERE.parents[1] / "shared" / "data")
        args.etalab = Path(shared) / "cadastre-etalab-sample"
    command = "python3 bench/bench_fresh.py " + shlex.join(sys.argv[1:])
    start = " / ".join(_fr(x) for x in os.getloadavg())
    args.cluster = None
    b = _bench_scale()
    # bench_scale's options for its warm rows
    args.engines, args.overlay_max = ["ort", "ort-1core", "duckdb", "sedonadb", "postgis"], 100_000
    if args.warm:
        sys.path.insert(0, str(HERE.parent / "tests"))
        import pgserver

        if not pgserver.missing_reason():
            args.cluster = pgserver.start_temp_cluster(server_settings=b.PG_SETTINGS)
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="ort-fresh-") as tmp:
            for n in args.sizes:
                results.append(bench_size(n, args, args.data_dir or Path(tmp)))
    finally:
        if args.cluster is not None:
            args.cluster.stop()
    report = markdown(results, command, (start, " / ".join(_fr(x) for x in os.getloadavg())))
    print("\n" + report)
    if args.out:
        args.out.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
