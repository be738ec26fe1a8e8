"""Settings: typed, documented module variables, read at call time.

Change them from code (``geo.settings.offline = True``) or from the environment variables
named below, which are read once at import. Functions read ``settings.X`` when they run, so a
test or a notebook can override a value in one place.

The choices a user makes per run (:data:`PER_CALL`: offline, progress bars, CSV dialect) are
never changed globally by a front end: a frozen :class:`Settings` is taken once
(:func:`current`, e.g. when a server starts) and handed to each call, which applies it with
:func:`use` — for the calling thread (or task) only, restored at the end. Two calls with
different settings in two threads each see their own.

Environment variables are parsed strictly: ``ORT_OFFLINE=no`` means *off*, and a value that
is not one of the accepted ones (``ORT_OFFLINE=peut-être``) is refused with a French message
naming the variable and the accepted values, raised where the setting is first used (so the
CLI prints it on one line) or at once by :func:`check`.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime as dt
import os
import sys
import types
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

from geo.errors import InputError, one_line

T = TypeVar("T")


class SettingsError(InputError):
    """An ``ORT_*`` environment variable holds a value that is not accepted."""


#: Settings whose environment variable was refused: name → error (raised on access).
_INVALID: dict[str, SettingsError] = {}

_TRUE = ("1", "true", "oui", "vrai", "yes", "on")
_FALSE = ("0", "false", "non", "faux", "no", "off", "")


def parse_bool(text: str) -> bool:
    """``"1"``, ``"true"``, ``"oui"``, ``"yes"``, ``"on"`` → True; ``"0"``, ``"false"``,
    ``"non"``, ``"no"``, ``"off"``, ``""`` → False (case and surrounding spaces ignored).

    >>> parse_bool("non"), parse_bool(" OUI ")
    (False, True)
    """
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    on, off = ", ".join(_TRUE), ", ".join(v for v in _FALSE if v)
    raise ValueError(f"valeurs acceptées : {on} (activé) ; {off} ou vide (désactivé)")


def parse_millesime(text: str) -> str:
    """``"latest"`` or a real date ``YYYY-MM-DD`` (the Etalab cadastre's millésimes)."""
    value = text.strip()
    if value == "latest":
        return value
    try:
        if len(value) == 10:
            return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        pass
    raise ValueError("valeurs acceptées : latest, ou une date AAAA-MM-JJ (p. ex. 2024-01-01)")


def parse_url(text: str) -> str:
    """An ``http://`` or ``https://`` address, without trailing slash."""
    value = text.strip()
    if not value.startswith(("http://", "https://")) or len(value) < 9 or any(c.isspace() for c in value):
        raise ValueError(
            "valeur acceptée : une adresse http:// ou https://, "
            "p. ex. https://cadastre.data.gouv.fr/data/etalab-cadastre"
        )
    return value.rstrip("/")


def parse_path(text: str) -> Path:
    """A non-empty folder path (``~`` expanded)."""
    if not text.strip():
        raise ValueError("valeur acceptée : un chemin de dossier non vide")
    return Path(text).expanduser()


def parse_choice(*choices: str) -> Callable[[str], str]:
    """One of ``choices``, exactly."""

    def parse(text: str) -> str:
        if text.strip() not in choices:
            raise ValueError(f"valeurs acceptées : {', '.join(choices)}")
        return text.strip()

    return parse


def parse_positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    """A positive whole number (``kind=int``) or decimal number (``kind=float``)."""

    def parse(text: str) -> int | float:
        what = "un nombre entier" if kind is int else "un nombre"
        try:
            value = kind(text.strip())
        except ValueError:
            raise ValueError(f"valeur acceptée : {what} strictement positif") from None
        if not 0 < value < float("inf"):
            raise ValueError(f"valeur acceptée : {what} strictement positif")
        return value

    return parse


def _env(attr: str, var: str, parse: Callable[[str], T], default: T) -> T:
    """The value of ``var`` parsed by ``parse``, or ``default`` when unset.

    A refused value is remembered and the setting ``attr`` removed from the module at the end
    of the import, so that reading it raises the :class:`SettingsError` (see ``__getattr__``).
    """
    raw = os.environ.get(var)
    if raw is None:
        return default
    try:
        return parse(raw)
    except ValueError as err:
        _INVALID[attr] = SettingsError(
            f"variable d'environnement {var} = {one_line(repr(raw))} refusée",
            fix=f"{err} ; corrigez-la ou supprimez-la (unset {var})",
        )
        return default


#: Base URL of the Etalab cadastre distribution. The full pattern is
#: ``{cadastre_base_url}/{millesime}/geojson/communes/{dep}/{insee}/cadastre-{insee}-{layer}.json.gz``.
#: Env: ``ORT_CADASTRE_URL`` (an http(s) address).
cadastre_base_url: str = _env(
    "cadastre_base_url", "ORT_CADASTRE_URL", parse_url, "https://cadastre.data.gouv.fr/data/etalab-cadastre"
)

#: Base URL of the BAN geocoding API (``{ban_api_url}/search/?q=...``). Env: ``ORT_BAN_URL``
#: (an http(s) address).
ban_api_url: str = _env("ban_api_url", "ORT_BAN_URL", parse_url, "https://api-adresse.data.gouv.fr")
#: Longest wait for one answer of the BAN API, all attempts together (seconds), and its
#: largest size (bytes; a real answer of 5 candidates holds a few kilobytes).
ban_deadline: float = 20.0
ban_max_bytes: int = 2**20

#: Cadastre millésime: ``"latest"`` or a date ``"YYYY-MM-DD"``. Env: ``ORT_MILLESIME``.
cadastre_millesime: str = _env("cadastre_millesime", "ORT_MILLESIME", parse_millesime, "latest")

#: Where downloads are cached, one file per URL and millésime. Env: ``ORT_CACHE_DIR``.
cache_dir: Path = _env(
    "cache_dir",
    "ORT_CACHE_DIR",
    parse_path,
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ort",
)

#: Use the cache only, never the network. Env: ``ORT_OFFLINE`` (1/true/oui/yes/on, or
#: 0/false/non/no/off).
offline: bool = _env("offline", "ORT_OFFLINE", parse_bool, False)

#: HTTP timeout in seconds (connect and read) and the number of attempts per download.
http_timeout: float = 30.0
http_retries: int = 3
#: First back-off delay between attempts, in seconds (doubled each time).
http_backoff: float = 0.5
#: Largest download accepted, in bytes, by cadastre layer (``"*"``: any other file). A body
#: over the limit is cut and refused: an endless or mistaken answer cannot fill the disk.
download_max_bytes: dict[str, int] = {
    "parcelles": 300 * 2**20,
    "batiments": 500 * 2**20,
    "*": 200 * 2**20,
}
#: Longest time for one download, all attempts together, in seconds.
download_deadline: float = 900.0
#: A gzip file may hold at most this many times its size limit once decompressed.
max_gzip_ratio: int = 20
#: Largest table read from a user's file (CSV, or its content once a .gz is decompressed), in
#: bytes: a small compressed file cannot expand to gigabytes in memory.
max_table_bytes: int = 256 * 2**20

#: Engine used to read and write vector files: ``"pyogrio"`` (default, fast) or ``"fiona"``.
#: Env: ``ORT_IO_ENGINE``.
io_engine: str = _env("io_engine", "ORT_IO_ENGINE", parse_choice("pyogrio", "fiona"), "pyogrio")

#: Largest hand-edited TOML file read (convention, action register, rules), in bytes; a larger
#: file is refused before parsing. Env: ``ORT_MAX_TOML_OCTETS``.
max_toml_bytes: int = _env("max_toml_bytes", "ORT_MAX_TOML_OCTETS", parse_positive(int), 1_000_000)

#: Largest JSON / GeoJSON file parsed in memory (perimeters, friches), in bytes; a larger file
#: is refused before parsing. Env: ``ORT_MAX_JSON_OCTETS``.
max_json_bytes: int = _env("max_json_bytes", "ORT_MAX_JSON_OCTETS", parse_positive(int), 200_000_000)

#: Deepest nesting accepted in a TOML or JSON file (tables, arrays, dotted keys), checked by a
#: cheap scan before parsing: real files need fewer than 10 levels, while a few hundred
#: kilobytes of deeply dotted keys make the TOML parser use gigabytes. Env: ``ORT_MAX_IMBRICATION``.
max_nesting: int = _env("max_nesting", "ORT_MAX_IMBRICATION", parse_positive(int), 32)

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
csv_format: str = _env("csv_format", "ORT_CSV_FORMAT", parse_choice("fr", "international"), "fr")

#: Show progress bars on long runs (the CLI's ``--quiet`` turns them off for its run).
progress: bool = True

#: Settings a caller may choose per call (:func:`use`), without changing them for other threads.
PER_CALL = ("offline", "progress", "csv_format")


@dataclasses.dataclass(frozen=True)
class Settings:
    """The per-call settings of one run, frozen: what a front end passes to the library.

    >>> Settings(offline=True, progress=False, csv_format="fr").offline
    True
    """

    offline: bool = False
    progress: bool = True
    csv_format: str = "fr"

    def __post_init__(self) -> None:
        if self.csv_format not in ("fr", "international"):
            raise InputError(
                f"format CSV {one_line(repr(self.csv_format))} inconnu", fix="choisissez fr ou international"
            )


def current(**changes) -> Settings:
    """The settings in effect now (environment, code, :func:`use`), frozen, with ``changes``."""
    module = sys.modules[__name__]
    return dataclasses.replace(Settings(**{name: getattr(module, name) for name in PER_CALL}), **changes)


#: The values set by :func:`use` for the current thread or task (a dict, never mutated).
_OVERRIDES: contextvars.ContextVar[Mapping] = contextvars.ContextVar(
    "ort_settings", default=types.MappingProxyType({})
)


@contextlib.contextmanager
def use(chosen: Settings | None = None, /, **changes) -> Iterator[Settings]:
    """Within the block, this thread (or asyncio task) reads ``chosen`` (and ``changes``).

    Nothing global is changed: other threads keep their own values; the previous ones come back
    at the end of the block, even on error.

    >>> with use(offline=True):
    ...     current().offline
    True
    """
    values = dict(_OVERRIDES.get())
    if chosen is not None:
        values.update(dataclasses.asdict(chosen))
    unknown = set(changes) - set(PER_CALL)
    if unknown:
        raise TypeError(f"réglage(s) inconnu(s) : {', '.join(sorted(unknown))}")
    values.update(changes)
    token = _OVERRIDES.set(values)
    try:
        yield current()
    finally:
        _OVERRIDES.reset(token)


#: Values of :data:`PER_CALL` for the whole process (environment, or set from code).
_BASE: dict = {}


def _per_call(name: str) -> property:
    def get(module):
        overrides = _OVERRIDES.get()
        if name in overrides:
            return overrides[name]
        if name in _BASE:
            return _BASE[name]
        if name in _INVALID:
            raise _INVALID[name]
        raise AttributeError(f"module 'geo.settings' has no attribute {name!r}")

    def set_(module, value) -> None:  # a notebook or a test: for the whole process
        _BASE[name] = value

    def delete(module) -> None:
        _BASE.pop(name, None)

    return property(get, set_, delete)


class _SettingsModule(types.ModuleType):
    """This module, with :data:`PER_CALL` read through :func:`use`'s values first."""


for _name in PER_CALL:
    if _name not in _INVALID:
        _BASE[_name] = globals()[_name]
    setattr(_SettingsModule, _name, _per_call(_name))
    globals().pop(_name, None)

# A refused variable leaves no value behind: reading the setting raises its error.
for _name in _INVALID:
    globals().pop(_name, None)

sys.modules[__name__].__class__ = _SettingsModule


def __getattr__(name: str):
    if name in _INVALID:
        raise _INVALID[name]
    raise AttributeError(f"module 'geo.settings' has no attribute {name!r}")


def check() -> None:
    """Raise :class:`SettingsError` naming every refused ``ORT_*`` variable, all at once."""
    if _INVALID:
        errors = list(_INVALID.values())
        if len(errors) == 1:
            raise errors[0]
        raise SettingsError(
            " ; ".join(f"{e.message} ({e.fix})" for e in errors),
            fix="corrigez ces variables d'environnement ou supprimez-les",
        )
