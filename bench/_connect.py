"""DuckDB with its spatial extension, loaded from the wheel: shared by the benchmarks, and light
(only ``duckdb``), so that a fresh DuckDB process in ``bench_fresh.py`` pays for nothing else."""

from __future__ import annotations

import os
from pathlib import Path


def quoted(path: Path) -> str:
    """A SQL string literal of a path (the benchmark's own paths only)."""
    return "'" + str(path).replace("'", "''") + "'"


def duckdb_connect():
    """A DuckDB connection with the spatial extension loaded by path, both cores allowed."""
    import duckdb
    import duckdb_extension_spatial

    # The wheel ships the binary as extensions/v<duckdb version>/spatial.duckdb_extension: load
    # it by path, never from the network. Its version must be DuckDB's own (pin both).
    ext = Path(duckdb_extension_spatial.__file__).parent / "extensions" / f"v{duckdb.__version__}"
    binary = ext / "spatial.duckdb_extension"
    if not binary.is_file():
        shipped = sorted(p.parent.name for p in ext.parent.glob("*/spatial.duckdb_extension"))
        raise SystemExit(
            f"duckdb-extension-spatial ships {shipped} but DuckDB is v{duckdb.__version__}: "
            "install the same version of both (pip install duckdb==X duckdb-extension-spatial==X)"
        )
    conn = duckdb.connect(
        config={"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}
    )
    conn.execute(f"LOAD {quoted(binary)}")
    conn.execute(f"SET threads = {os.cpu_count()}")
    return conn
