"""Shared fixtures: the real open data of ../shared/data, read in place.

Tests that need it use the ``shared_data`` fixture: they skip with a clear reason where the
folder is absent (a user's clone) and fail when ``CI=true`` (CI always has it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from geo import settings

SHARED_DATA = settings.shared_data


def _require_shared(path: Path) -> Path:
    if path.exists():
        return path
    reason = (
        f"real open data not found at {path} (clone the project beside ../shared, or set ORT_SHARED_DATA)"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ../shared/data folder (skip when absent, fail under CI=true)."""
    return _require_shared(SHARED_DATA)


@pytest.fixture(scope="session")
def epinay_parcelles(shared_data: Path) -> Path:
    """Real Etalab parcels of Épinay-sur-Orge (91216, millésime 2022-01-01), WGS84 GeoJSON."""
    return _require_shared(
        shared_data / "cadastre-etalab-sample" / "91216-epinay-sur-orge" / "cadastre-91216-parcelles.json"
    )


@pytest.fixture(scope="session")
def saint_marcel_dir(shared_data: Path) -> Path:
    """Real Etalab parcelles, sections and feuilles of Saint-Marcel (73253, millésime 2019)."""
    return _require_shared(shared_data / "cadastre-etalab-sample" / "73253-saint-marcel")


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path_factory, monkeypatch):
    """Each test gets its own download cache and no progress bars."""
    monkeypatch.setattr(settings, "cache_dir", tmp_path_factory.mktemp("cache"))
    monkeypatch.setattr(settings, "progress", False)
    monkeypatch.setattr(settings, "offline", False)
