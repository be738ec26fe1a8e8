"""A revision of this repository extracted for a benchmark's baseline (``--against REV``)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def extract(rev: str, into: Path) -> Path:
    """The tree of ``rev`` (this repository) extracted into ``into``; nothing written in the repo."""
    repo = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(repo), "archive", rev], capture_output=True, check=True).stdout
    into.mkdir()
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into
