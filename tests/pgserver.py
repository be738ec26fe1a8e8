"""A throwaway PostgreSQL + PostGIS server on 127.0.0.1, for the tests and the benchmark.

Not part of the product: :func:`start_temp_cluster` starts a server in a temporary folder
(Debian ``postgresql-15-postgis-3``; as root, the server runs as the ``postgres`` user) and
:func:`missing_reason` says why it cannot (used to skip, or to fail under ``CI=true``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from geo.errors import OrtError
from geo.scale.postgis import _sql


def _bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name)
    )
    return versions[-1].parent if versions else None


def missing_reason() -> str | None:
    """Why a throwaway PostGIS server cannot be started here (``None`` when it can)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg 3 is not installed (pip install 'psycopg[binary]')"
    bindir = _bin_dir()
    if bindir is None or not (bindir / "initdb").exists():
        return "PostgreSQL server binaries (initdb, pg_ctl) not found (bash .ci/install-postgis)"
    share = subprocess.run(
        [str(bindir / "pg_config"), "--sharedir"], capture_output=True, text=True
    ).stdout.strip()
    candidates = [Path(share) / "extension", *Path("/usr/share/postgresql").glob("*/extension")]
    if not any((c / "postgis.control").exists() for c in candidates):
        return "the PostGIS extension is not installed (bash .ci/install-postgis)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser to start the server as 'postgres'"
    return None


@dataclass
class TempCluster:
    """A PostgreSQL + PostGIS server on 127.0.0.1, in a temporary folder, until :meth:`stop`."""

    dsn: str
    port: int
    folder: Path
    bin_dir: Path
    _as_postgres: list[str] = field(default_factory=list, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    def server_pids(self) -> list[int]:
        """Process ids of the server and its backends (for memory measurements)."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            main = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return []
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(main)], capture_output=True, text=True).stdout
        return [main, *(int(p) for p in out.split())]

    def stop(self) -> None:
        """Stop the server and delete its folder."""
        if self.data_dir.exists():
            subprocess.run(
                [
                    *self._as_postgres,
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
                capture_output=True,
                check=False,
            )
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> TempCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_temp_cluster(
    *, server_settings: dict[str, str] | None = None, database: str = "ort"
) -> TempCluster:
    """Start a throwaway PostgreSQL server with PostGIS on 127.0.0.1.

    The data folder lives under the system temporary directory and is owned by ``postgres``
    when run as root (``initdb`` refuses root). Durability is switched off (``fsync=off``):
    the server is for tests and benchmarks only.

    Parameters
    ----------
    server_settings : dict, optional
        Extra ``postgresql.conf`` settings, e.g. ``{"shared_buffers": "1GB"}``.
    database : str
        Database created with the ``postgis`` extension.

    Returns
    -------
    TempCluster
        Use it as a context manager, or call :meth:`TempCluster.stop`.
    """
    reason = missing_reason()
    if reason:
        raise OrtError(f"cannot start a PostGIS server: {reason}")
    bindir = _bin_dir()
    folder = Path(tempfile.mkdtemp(prefix="ort-postgis-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        import pwd

        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        as_postgres = ["runuser", "-u", "postgres", "--"]
    cluster = TempCluster("", 0, folder, bindir, as_postgres)
    try:
        data = folder / "data"
        _run(
            [
                *as_postgres,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{folder}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_wal_size": "'4GB'",
            **{
                k: (v if str(v).replace(".", "").isdigit() else f"'{v}'")
                for k, v in (server_settings or {}).items()
            },
        }
        for _ in range(5):
            port = _free_port()
            conf["port"] = str(port)
            with open(data / "postgresql.auto.conf", "a", encoding="utf-8") as fh:
                fh.write("".join(f"{k} = {v}\n" for k, v in conf.items()))
            started = subprocess.run(
                [
                    *as_postgres,
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(folder / "server.log"),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
                capture_output=True,
                text=True,
            )
            if started.returncode == 0:
                break
        else:
            log = (
                (folder / "server.log").read_text(errors="replace")[-500:]
                if (folder / "server.log").exists()
                else ""
            )
            raise OrtError(f"PostgreSQL did not start: {started.stderr.strip() or log}")
        psycopg, sql = _sql()
        admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        cluster.dsn = f"postgresql://postgres@127.0.0.1:{port}/{database}"
        cluster.port = port
        with psycopg.connect(cluster.dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tool = next(Path(c).name for c in cmd if "/" in c)
        raise OrtError(f"{tool} failed: {done.stderr.strip()[-500:]}")
