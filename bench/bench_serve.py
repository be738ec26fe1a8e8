"""Load and faults of ``ort serve`` (a script, not a timed test).

Starts ``ort serve --perimeters demo --workers 2`` from an empty folder on a free port, then:

- load: p50/p95/p99 latency and throughput of parcel answers (a counter's working set of 100
  parcels, answers kept once computed; and "froide": random parcels × dates, each computed),
  addresses, commune answers and notes at 1, 16 and 64 concurrent clients (a minimal keep-alive
  HTTP/1.1 client on asyncio, in this process: its CPU, given as ``client_cpu_pct``, is taken
  from the same 2 cores as the server's; ``--client httpx`` for the former client), every
  answer checked; a 503 (notes queue full, with Retry-After) counts as an error and is shown in
  ``of_which_503``;
- memory per worker (RSS and USS, psutil);
- faults: slow clients (connections that dribble their headers) during load, huge uploads (with
  and without Content-Length), path-like convention and collection names, a worker killed with
  SIGKILL while requests are in flight (the supervisor replaces it), SIGTERM while requests are in
  flight (they finish, then the server exits).

The machine's load average is printed with the figures: on a shared machine they are an upper
bound of the latency.

    python bench/bench_serve.py [--seconds 8] [--clients 1,16,64]
    python bench/bench_serve.py --against main --no-faults      # main's server in the same rounds
    python bench/bench_serve.py --only parcelle,parcelle_froide --clients 16
    python bench/bench_serve.py --in-process 150   # single answers in this process, no HTTP
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
from _checkout import extract  # bench/, beside this file

DAY_CHOICES = ("2023-06-01", "2024-09-01", "2025-03-01")
WORKING_SET = 50
TARGETS = {"parcel_p95_ms_16": 50.0, "parcel_rps": 300.0, "note_s": 1.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_parcels() -> list[str]:
    from geo import embedded
    from geo.sources.cadastre import read_parcels

    return sorted(read_parcels(embedded.demo_dir() / "cadastre-62999-parcelles.json.gz")["idu"])


def address_file(folder: Path) -> Path:
    """BAN-layout addresses of the demo commune, one per parcel (numbered streets)."""
    import pandas as pd

    from geo import embedded
    from geo.sources.cadastre import read_parcels

    parcels = read_parcels(embedded.demo_dir() / "cadastre-62999-parcelles.json.gz").head(300)
    pts = parcels.geometry.representative_point().to_crs(4326)
    streets = ["Rue de la Gare", "Rue Victor Hugo", "Avenue Jean Jaurès", "Rue des Écoles"]
    rows = [
        {"id": f"62999_{k:05d}", "numero": k // 4 + 1, "rep": "", "nom_voie": streets[k % 4],
         "code_postal": "62990", "code_insee": "62999", "nom_commune": "Ormeval-sur-Mer",
         "lon": round(p.x, 6), "lat": round(p.y, 6), "type_position": "entrée", "cad_parcelles": idu}
        for k, (idu, p) in enumerate(zip(parcels["idu"], pts, strict=True))
    ]  # fmt: skip
    path = folder / "adresses-62.csv"
    pd.DataFrame(rows).to_csv(path, sep=";", index=False)
    return path


class Server:
    def __init__(self, workers: int, folder: Path, addresses: Path, tree: Path | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = folder / f"serve-{self.port}.log"
        args = [sys.executable, "-m", "geo", "serve", "--perimeters", "demo", "--adresses", str(addresses),
                "--port", str(self.port), "--workers", str(workers)]  # fmt: skip
        env = dict(os.environ)
        if tree is not None:  # another revision's code (the baseline), this checkout's embedded data
            env["PYTHONPATH"] = str(tree)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(args, cwd=folder, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.started = time.perf_counter()
        self.wait_ready(workers)

    def wait_ready(self, workers: int, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"ort serve exited: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                ok = httpx.get(f"{self.base}/ogc", timeout=5).status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok and len(self.workers()) >= workers:
                self.first_pids = {w.pid for w in self.workers()}
                # every worker ready: a few answers each
                for _ in range(4 * workers):
                    httpx.get(f"{self.base}/ogc/collections", timeout=30)
                return
            time.sleep(0.5)
        raise SystemExit("ort serve did not start in time")

    def workers(self) -> list[psutil.Process]:
        try:
            kids = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        # uvicorn's workers are the python children that hold the app (not the resource tracker)
        return [k for k in kids if "multiprocessing.resource_tracker" not in " ".join(k.cmdline())]

    def memory(self) -> list[dict]:
        out = []
        for w in self.workers():
            try:
                full = w.memory_full_info()
                out.append(
                    {"pid": w.pid, "rss_mib": round(full.rss / 2**20), "uss_mib": round(full.uss / 2**20)}
                )
            except psutil.Error:
                pass
        return out

    def replaced_workers(self) -> int:
        """Workers started since the server was ready (one that died or was killed is replaced)."""
        return len({w.pid for w in self.workers()} - self.first_pids)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {
        "p50_ms": round(q[49] * 1000, 1),
        "p95_ms": round(q[94] * 1000, 1),
        "p99_ms": round(q[98] * 1000, 1),
    }


class RawResponse:
    """What :class:`RawClient` read: status, headers (lower-case names), body."""

    def __init__(self, status: int, headers: dict, content: bytes) -> None:
        self.status_code, self.headers, self.content = status, headers, content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content)


class RawClient:
    """A keep-alive HTTP/1.1 client on one connection, on plain asyncio streams: a few tens of
    microseconds of CPU per request (httpx spends ~1 ms), so the load generator, which shares the
    2 cores with the server, takes little from it. Answers must carry Content-Length."""

    def __init__(self, base: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.reader = self.writer = None

    async def request(self, method: str, url: str, params: dict | None = None) -> RawResponse:
        from urllib.parse import quote, urlencode

        target = quote(url, safe="/%:@") + (("?" + urlencode(params)) if params else "")
        head = f"{method} {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode()
        if self.writer is None:  # no retry: a request cut (a worker killed) is an error
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(head)
        await self.writer.drain()
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return RawResponse(status, headers, body)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def load(base: str, make_request, check, clients: int, seconds: float, raw: bool = True) -> dict:
    """``clients`` loops sending requests for ``seconds``; latencies of the answers, errors counted.
    ``raw``: :class:`RawClient` connections (else httpx); the CPU the client spent is given."""
    if raw:
        return await _load_raw(base, make_request, check, clients, seconds)
    return await _load_httpx(base, make_request, check, clients, seconds)


async def _load_raw(base: str, make_request, check, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    stop_at = time.perf_counter() + seconds
    status_503 = 0

    async def one_client(k: int) -> None:
        nonlocal status_503
        rng = random.Random(k)
        client = RawClient(base)
        try:
            while time.perf_counter() < stop_at:
                method, url, kwargs = make_request(rng)
                t0 = time.perf_counter()
                try:
                    r = await client.request(method, url, kwargs.get("params"))
                    status_503 += r.status_code == 503
                    problem = check(r)
                except (OSError, asyncio.IncompleteReadError, ValueError) as err:
                    problem = f"{type(err).__name__}"
                    await client.close()
                dt = time.perf_counter() - t0
                if problem:
                    errors.append(problem)
                else:
                    latencies.append(dt)
        finally:
            await client.close()

    summary = await _timed(clients, one_client, latencies, errors)
    return {**summary, "of_which_503": status_503}  # counted while the clients ran


async def _timed(clients: int, one_client, latencies: list[float], errors: list[str]) -> dict:
    """Run ``clients`` copies of ``one_client`` at once; their answers, errors, rate, latency
    percentiles and the load generator's own CPU."""
    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one_client(k) for k in range(clients)))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "clients": clients,
        "answers": len(latencies),
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:3],
        "per_s": round(len(latencies) / elapsed, 1),
        **percentiles(latencies),
        "client_cpu_pct": round(100 * cpu / elapsed),
    }


async def _load_httpx(base: str, make_request, check, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:

        async def one_client(k: int) -> None:
            rng = random.Random(k)
            while time.perf_counter() < stop_at:
                method, url, kwargs = make_request(rng)
                t0 = time.perf_counter()
                try:
                    r = await client.request(method, url, **kwargs)
                    problem = check(r)
                except httpx.HTTPError as err:
                    problem = f"{type(err).__name__}"
                dt = time.perf_counter() - t0
                if problem:
                    errors.append(problem)
                else:
                    latencies.append(dt)

        return await _timed(clients, one_client, latencies, errors)


def workloads(parcels: list[str]) -> dict:
    def ok_json(r):
        return (
            None
            if r.status_code == 200 and r.headers["content-type"].startswith("application/json")
            else (f"{r.status_code} {r.text[:80]}")
        )

    def ok_pdf(r):
        return (
            None
            if r.status_code == 200 and r.content.startswith(b"%PDF")
            else f"{r.status_code} {r.text[:80]}"
        )

    def ok_address(r):
        if r.status_code != 200:
            return f"{r.status_code} {r.text[:80]}"
        return None if r.json()["reponse"] is not None else "adresse non placée"

    streets = ["Rue de la Gare", "Rue Victor Hugo", "Avenue Jean Jaurès", "Rue des Écoles"]
    communes = ["62999", "62907", "62498", "19275", "59350", "75056"]
    return {
        # a counter's day: 50 parcels asked again and again (answers kept once computed)
        "parcelle": (lambda rng: ("GET", f"/api/parcelles/{rng.choice(parcels[:WORKING_SET])}",
                                  {"params": {"date": "2024-09-01"}}), ok_json),
        # every answer new: 2 539 parcels × 3 dates, computed by the library
        "parcelle_froide": (lambda rng: ("GET", f"/api/parcelles/{rng.choice(parcels)}",
                                         {"params": {"date": rng.choice(DAY_CHOICES)}}), ok_json),
        "adresse": (lambda rng: ("GET", "/api/adresses",
                                 {"params": {"q": f"{rng.randrange(1, 60)} {rng.choice(streets)}",
                                             "date": rng.choice(DAY_CHOICES)}}), ok_address),
        "commune": (lambda rng: ("GET", f"/api/communes/{rng.choice(communes)}/eligibilite",
                                 {"params": {"date": rng.choice(DAY_CHOICES)}}), ok_json),
        "note": (lambda rng: ("GET", f"/api/parcelles/{rng.choice(parcels[:200])}/note.pdf",
                              {"params": {"date": "2024-09-01"}}), ok_pdf),
    }  # fmt: skip


# --- faults -------------------------------------------------------------------------------------


async def slow_clients(base: str, parcels: list[str], n: int, seconds: float) -> dict:
    """``n`` connections dribbling their request line one byte at a time while 16 clients ask."""
    host, port = base.removeprefix("http://").split(":")
    stop = asyncio.Event()

    async def dribble() -> None:
        try:
            reader, writer = await asyncio.open_connection(host, int(port))
            request = f"GET /api/parcelles/{parcels[0]}?date=2024-09-01 HTTP/1.1\r\nHost: x\r\n"
            for ch in request.encode():
                if stop.is_set():
                    break
                writer.write(bytes([ch]))
                await writer.drain()
                await asyncio.sleep(0.5)
            writer.close()
        except OSError:
            pass

    tasks = [asyncio.create_task(dribble()) for _ in range(n)]
    make, check = workloads(parcels)["parcelle"]
    result = await load(base, make, check, 16, seconds)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"slow_connections": n, **result}


def huge_uploads(base: str) -> list[dict]:
    out = []
    big = b"idu\n" + b"62999000AB0012\n" * 3_500_000  # 52 MB
    t0 = time.perf_counter()
    r = httpx.post(f"{base}/api/verifications", files={"fichier": ("p.csv", big, "text/csv")}, timeout=120)
    out.append({"cas": "52 Mo avec Content-Length", "statut": r.status_code,
                "secondes": round(time.perf_counter() - t0, 2)})  # fmt: skip

    def chunks():
        yield b'--x\r\nContent-Disposition: form-data; name="fichier"; filename="p.csv"\r\n\r\n'
        for _ in range(1000):
            yield b"62999000AB0012\n" * 4000  # 60 MB in all
        yield b"\r\n--x--\r\n"

    t0 = time.perf_counter()
    try:
        r = httpx.post(f"{base}/api/verifications", content=chunks(), timeout=120,
                       headers={"content-type": "multipart/form-data; boundary=x"})  # fmt: skip
        status = r.status_code
    except httpx.HTTPError as err:  # the server may close the connection while we still send
        status = f"connexion fermée ({type(err).__name__})"
    out.append(
        {"cas": "60 Mo sans Content-Length", "statut": status, "secondes": round(time.perf_counter() - t0, 2)}
    )
    rows = "idu\n" + "\n".join(f"62999000AB{k:04d}" for k in range(6000))
    r = httpx.post(
        f"{base}/api/verifications", files={"fichier": ("p.csv", rows.encode(), "text/csv")}, timeout=120
    )
    out.append({"cas": "6 000 lignes (limite 5 000)", "statut": r.status_code})
    out.append({"cas": "serveur répond encore", "statut": httpx.get(f"{base}/ogc", timeout=30).status_code})
    return out


def path_like_names(base: str) -> list[dict]:
    names = ["..%2F..%2Fetc%2Fpasswd", "%2e%2e", "..%5C..%5Cwindows", "demo%00", "C:%5Cx",
             "demo-perimetres%2F..", "a" * 300, "%252e%252e%252f"]  # fmt: skip
    out = []
    for name in names:
        r = httpx.get(f"{base}/ogc/collections/{name}/items", timeout=30)
        out.append(
            {
                "nom": name[:40],
                "statut": r.status_code,
                "problem+json": "problem+json" in r.headers.get("content-type", ""),
            }
        )
    for q in ["../../etc/passwd", "..\\..\\x", "%2e%2e/%2e%2e"]:
        r = httpx.get(f"{base}/api/parcelles/{q}", timeout=30)
        out.append(
            {
                "nom": f"parcelle {q}",
                "statut": r.status_code,
                "problem+json": "problem+json" in r.headers.get("content-type", ""),
            }
        )
    return out


async def _in_flight(base: str, urls: list[str]) -> list:
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        return await asyncio.gather(*(client.get(u) for u in urls), return_exceptions=True)


#: ort-note-* folders already in the temporary folder (other runs): not counted as ours.
TEMP_BEFORE = {p.name for p in Path(tempfile.gettempdir()).glob("ort-note-*")}


async def _in_flight_limited(base: str, urls: list[str], n: int) -> None:
    gate = asyncio.Semaphore(n)
    async with httpx.AsyncClient(base_url=base, timeout=300) as client:

        async def one(u: str) -> None:
            async with gate:
                await client.get(u)

        await asyncio.gather(*(one(u) for u in urls))


def kill_worker(server: Server, parcels: list[str]) -> dict:
    before = {w.pid for w in server.workers()}
    urls = [f"/api/parcelles/{p}/note.pdf?date=2023-06-01" for p in parcels[300:316]]
    victim = sorted(before)[0]

    async def scenario():
        task = asyncio.create_task(_in_flight(server.base, urls))
        await asyncio.sleep(0.4)
        os.kill(victim, signal.SIGKILL)
        return await task

    results = asyncio.run(scenario())
    done = sum(1 for r in results if isinstance(r, httpx.Response) and r.status_code == 200)
    failed = len(results) - done
    deadline = time.monotonic() + 120
    after = set()
    while time.monotonic() < deadline:
        after = {w.pid for w in server.workers()}
        if len(after) >= len(before) and victim not in after:
            break
        time.sleep(0.5)
    replaced = len(after) >= len(before) and victim not in after
    time.sleep(2)
    later = [
        httpx.get(f"{server.base}/api/parcelles/{p}?date=2024-09-01", timeout=60).status_code
        for p in parcels[:20]
    ]
    leftovers = {p.name for p in Path(tempfile.gettempdir()).glob("ort-note-*")} - TEMP_BEFORE
    return {
        "requetes_en_vol": len(urls),
        "abouties": done,
        "coupees": failed,
        "worker_remplace": replaced,
        "ensuite_200": sum(s == 200 for s in later),
        "ensuite_total": len(later),
        "fichiers_temporaires_restes": len(leftovers),
    }


def sigterm_drain(folder: Path, addresses: Path, parcels: list[str]) -> dict:
    server = Server(2, folder, addresses)
    urls = [f"/api/parcelles/{p}/note.pdf?date=2025-03-01" for p in parcels[400:406]]

    async def scenario():
        task = asyncio.create_task(_in_flight(server.base, urls))
        await asyncio.sleep(0.3)
        t0 = time.perf_counter()
        server.proc.send_signal(signal.SIGTERM)
        results = await task
        return results, t0

    results, t0 = asyncio.run(scenario())
    code = server.proc.wait(timeout=120)
    done = sum(1 for r in results if isinstance(r, httpx.Response) and r.status_code == 200)
    try:
        httpx.get(f"{server.base}/ogc", timeout=3)
        refused = False
    except httpx.HTTPError:
        refused = True
    return {
        "requetes_en_vol": len(urls),
        "abouties": done,
        "sortie": code,
        "secondes_jusqu_a_la_sortie": round(time.perf_counter() - t0, 1),
        "nouvelles_connexions_refusees": refused,
    }


# --- in process ----------------------------------------------------------------------------------


def in_process(n: int, notes: int) -> dict:
    """Single answers computed as a worker computes them (``geo.server.answers``, no answer kept,
    no HTTP): the cost of the library per request, which the load figures divide among clients."""
    import datetime as dt

    from geo import app
    from geo.server import answers
    from geo.server.catalogue import load_catalogue

    t0 = time.perf_counter()
    cat = load_catalogue(["demo"])
    out: dict = {"catalogue_s": round(time.perf_counter() - t0, 2)}
    item = cat.conventions["demo"]
    idus = sorted(item.parcels["idu"])
    days = [dt.date.fromisoformat(d) for d in DAY_CHOICES]
    for day in days:  # the perimeters of each date, read once as a worker does at its first request
        answers._compute(cat, idus[0], "demo", day)
    rng = random.Random(5)

    def timed(calls) -> list[float]:
        spent = []
        for call in calls:
            t = time.perf_counter()
            call()
            spent.append(time.perf_counter() - t)
        return spent

    asked = [(idu, rng.choice(days)) for idu in rng.sample(idus, n)]
    parcel = timed(lambda i=i, d=d: answers._json(answers._compute(cat, i, "demo", d)) for i, d in asked)
    communes = [(c, rng.choice(days)) for c in ["62999", "62907", "62498", "19275", "59350", "75056"] * 5]
    commune = timed(
        lambda c=c, d=d: answers._json(
            answers._eligibility(cat, d, cat.for_commune(c), communes=[(c, "--commune")])
        )
        for c, d in communes
    )
    note = timed(
        lambda i=i: app.note_pdf(
            i, territoire=item.territoire, date=days[1], lists=cat.lists, rules=cat.rules
        )
        for i in rng.sample(idus, notes)
    )
    out["parcelle_premiere_fois"] = {"n": len(parcel), **percentiles(parcel)}
    out["commune"] = {"n": len(commune), **percentiles(commune)}
    out["note"] = {"n": len(note), "secondes": [round(x, 2) for x in note]}
    return out


# --- main ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="durée de chaque mesure de charge")
    parser.add_argument("--clients", default="1,16,64")
    parser.add_argument("--json", type=Path, default=None, help="écrire aussi les résultats en JSON")
    parser.add_argument(
        "--against",
        metavar="REV",
        default=None,
        help="mesurer aussi le serveur de cette révision git (ex. main), dans les mêmes tours, en "
        "alternance (ses workers tournent en même temps que ceux de la branche, au repos)",
    )
    parser.add_argument(
        "--only", default="", help="charges à mesurer, ex. parcelle,parcelle_froide (défaut : toutes)"
    )
    parser.add_argument("--no-faults", action="store_true", help="sans les essais de pannes")
    parser.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="raw : client HTTP/1.1 minimal sur asyncio (peu de CPU pris au serveur) ; httpx : l'ancien",
    )
    parser.add_argument(
        "--in-process",
        type=int,
        metavar="N",
        default=0,
        help="seulement N réponses de parcelle (et 6 notes) calculées dans ce processus, sans HTTP",
    )
    args = parser.parse_args()
    if args.in_process:
        before = os.getloadavg()
        figures = in_process(args.in_process, 6)
        print(json.dumps({"charge_avant": before, **figures, "charge_apres": os.getloadavg()}, indent=2))
        return
    levels = [int(c) for c in args.clients.split(",")]
    raw = args.client == "raw"
    report: dict = {"charge_machine_avant": os.getloadavg(), "coeurs": os.cpu_count(), "client": args.client}
    parcels = demo_parcels()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        folder = Path(tmp)
        addresses = address_file(folder)
        servers: dict[str, Server] = {}
        try:
            trees = {"branche": None}
            if args.against:
                trees[args.against] = extract(args.against, folder / "rev")
            for label, tree in trees.items():
                t0 = time.perf_counter()
                servers[label] = Server(2, folder, addresses, tree)
                report[f"demarrage_s[{label}]"] = round(time.perf_counter() - t0, 1)
                report[f"memoire_workers_au_demarrage[{label}]"] = servers[label].memory()
            jobs = workloads(parcels)
            if args.only:
                jobs = {k: v for k, v in jobs.items() if k in args.only.split(",")}
            for label, server in servers.items():  # the counter's working set asked 3 times
                t0 = time.perf_counter()
                warm = [f"/api/parcelles/{p}?date=2024-09-01" for p in parcels[:WORKING_SET]] * 3
                asyncio.run(_in_flight_limited(server.base, warm, 4))
                report[f"mise_en_route_s[{label}]"] = round(time.perf_counter() - t0, 1)
            report["charge"] = {label: {} for label in servers}
            turn = 0
            for name, (make, check) in jobs.items():
                for n in levels:
                    order = list(servers) if turn % 2 == 0 else list(servers)[::-1]
                    turn += 1
                    for label in order:
                        seconds = args.seconds if name != "note" else max(args.seconds, 10)
                        before = {w.pid for w in servers[label].workers()}
                        row = asyncio.run(load(servers[label].base, make, check, n, seconds, raw))
                        row["load_1min"] = round(os.getloadavg()[0], 1)
                        row["workers_replaced"] = len({w.pid for w in servers[label].workers()} - before)
                        report["charge"][label].setdefault(name, []).append(row)
                        print(label, name, json.dumps(row, ensure_ascii=False), flush=True)
            for label, server in servers.items():
                report[f"workers_remplaces[{label}]"] = server.replaced_workers()
                report[f"memoire_workers_apres_charge[{label}]"] = server.memory()
                print(label, "memoire", report[f"memoire_workers_apres_charge[{label}]"], flush=True)
            server = servers["branche"]
            if not args.no_faults:
                report["client_lent"] = asyncio.run(slow_clients(server.base, parcels, 50, args.seconds))
                print("slow", report["client_lent"], flush=True)
                report["gros_envois"] = huge_uploads(server.base)
                print("uploads", report["gros_envois"], flush=True)
                report["noms_en_chemin"] = path_like_names(server.base)
                print("paths", report["noms_en_chemin"], flush=True)
                report["worker_tue"] = kill_worker(server, parcels)
                print("kill", report["worker_tue"], flush=True)
        finally:
            for server in servers.values():
                server.stop()
        if not args.no_faults:
            report["sigterm"] = sigterm_drain(folder, addresses, parcels)
            print("sigterm", report["sigterm"], flush=True)
    report["charge_machine_apres"] = os.getloadavg()
    ours = report["charge"]["branche"]
    if 16 in levels and "parcelle" in ours:
        p16 = next(r for r in ours["parcelle"] if r["clients"] == 16)
        report["objectifs"] = {
            "parcelle_p95_16_clients_ms": (p16["p95_ms"], TARGETS["parcel_p95_ms_16"]),
            "parcelle_reponses_par_s": (max(r["per_s"] for r in ours["parcelle"]), TARGETS["parcel_rps"]),
            "erreurs": sum(r["errors"] for rows in ours.values() for r in rows),
        }
        if "note" in ours:
            report["objectifs"]["note_p95_1_client_s"] = (ours["note"][0]["p95_ms"] / 1000, TARGETS["note_s"])
    text = json.dumps(report, ensure_ascii=False, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
