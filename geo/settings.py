"""Settings: typed, documented module variables, read at call time.

Change them from code (``geo.settings.offline = True``) or from the environment variables
named below, which are read once at import. Functions read ``settings.X`` when they run, so a
test or a notebook can override a value in one place.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Base URL of the Etalab cadastre distribution. The full pattern is
#: ``{cadastre_base_url}/{millesime}/geojson/communes/{dep}/{insee}/cadastre-{insee}-{layer}.json.gz``.
#: Env: ``ORT_CADASTRE_URL``.
cadastre_base_url: str = os.environ.get(
    "ORT_CADASTRE_URL", "https://cadastre.data.gouv.fr/data/etalab-cadastre"
)

#: Base URL of the BAN geocoding API (``{ban_api_url}/search/?q=...``). Env: ``ORT_BAN_URL``.
ban_api_url: str = os.environ.get("ORT_BAN_URL", "https://api-adresse.data.gouv.fr")

#: Cadastre millésime: ``"latest"`` or a date ``"YYYY-MM-DD"``. Env: ``ORT_MILLESIME``.
cadastre_millesime: str = os.environ.get("ORT_MILLESIME", "latest")

#: Where downloads are cached, one file per URL and millésime. Env: ``ORT_CACHE_DIR``.
cache_dir: Path = Path(
    os.environ.get("ORT_CACHE_DIR", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ort")
)

#: Use the cache only, never the network. Env: ``ORT_OFFLINE=1``.
offline: bool = os.environ.get("ORT_OFFLINE", "") not in ("", "0", "false")

#: HTTP timeout in seconds (connect and read) and the number of attempts per download.
http_timeout: float = 30.0
http_retries: int = 3
#: First back-off delay between attempts, in seconds (doubled each time).
http_backoff: float = 0.5

#: Engine used to read and write vector files: ``"pyogrio"`` (default, fast) or ``"fiona"``.
io_engine: str = os.environ.get("ORT_IO_ENGINE", "pyogrio")

#: Classification tolerances. A parcel whose area inside a perimeter is at most
#: ``tolerance_m2`` m² or ``tolerance_pct`` % of its area is *outside*; one whose area
#: outside is at most as much is *inside*. They absorb digitising noise along boundaries.
tolerance_m2: float = 1.0
tolerance_pct: float = 0.5

#: Below this area (m²), a piece of a perimeter is reported as a sliver by validation.
sliver_m2: float = 10.0

#: CSV written for people: ``"fr"`` (French Excel by double-click: ``;``, UTF-8 with BOM,
#: decimal comma) or ``"international"`` (``,``, UTF-8, decimal point). CLI:
#: ``--csv-international``. Env: ``ORT_CSV_FORMAT``.
csv_format: str = os.environ.get("ORT_CSV_FORMAT", "fr")

#: Show progress bars on long runs (CLI sets it from ``--quiet``).
progress: bool = True
