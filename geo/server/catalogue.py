"""What the server answers from: the conventions, their cadastre, the national lists and the rules,
loaded once at start and only read afterwards.

:func:`load_catalogue` reads every convention asked (shipped names such as ``demo``, folders,
or every convention folder inside a ``--conventions`` folder), its cadastre when it has
perimeters, the national lists and the eligibility rules. Requests never change any of it: a
request's date, commune or file are arguments of the library's functions, never settings.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from geo.errors import InputError, OrtError, PerimeterError

if TYPE_CHECKING:
    import geopandas as gpd

    from geo.app import Territoire
    from geo.eligibility.rules import Rules
    from geo.perimeters import Convention
    from geo.sources.lists import NationalLists

#: A convention's name in a URL: lower-case letters, digits and dashes (a folder's own name).
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def check_name(name: str, *, what: str = "convention") -> str:
    """``name`` if it is a plain convention name, else an :class:`InputError` (``../x``, ``a/b``,
    ``C:``, ``%2e%2e``): a name from a request is looked up in memory, never turned into a path."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InputError(
            f"nom de {what} refusé : {name!r}",
            fix="un nom de convention s'écrit en minuscules, chiffres et tirets (ex. demo, libercourt), "
            "sans / ni ..",
        )
    return name


@dataclass
class Loaded:
    """One convention and the data its answers need."""

    name: str
    convention: Convention
    territoire: Territoire | None = None  # None: no perimeters drawn, or the cadastre is missing
    problem: str | None = None  # why the cadastre is missing, said to whoever asks for a parcel

    @property
    def parcels(self) -> gpd.GeoDataFrame | None:
        return self.territoire.parcels if self.territoire is not None else None

    @property
    def communes(self) -> tuple[str, ...]:
        return tuple(self.convention.communes)


class Memo:
    """Answers already computed, most recent kept (``size`` at most, and ``max_bytes`` of bytes
    values at most), safe across threads.

    The catalogue never changes, so an answer for the same question is the same answer: a
    counter asked about the same parcels all day answers them from here.
    """

    def __init__(self, size: int, max_bytes: int | None = None) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self._bytes = 0
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _weight(value) -> int:
        return len(value) if isinstance(value, bytes | bytearray) else 0

    def get(self, key, compute: Callable[[], object]):
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        value = compute()  # outside the lock: two threads may compute the same answer once each
        with self._lock:
            if key in self._data:
                self._bytes -= self._weight(self._data[key])
            self._data[key] = value
            self._bytes += self._weight(value)
            while len(self._data) > self.size or (
                self.max_bytes is not None and self._bytes > self.max_bytes and len(self._data) > 1
            ):
                _, gone = self._data.popitem(last=False)
                self._bytes -= self._weight(gone)
        return value


@dataclass
class Catalogue:
    """Everything the server answers from (read-only once built), and the answers given."""

    conventions: dict[str, Loaded]
    lists: NationalLists
    rules: Rules
    warnings: list[str] = field(default_factory=list)
    answers: Memo = field(default_factory=lambda: Memo(4096, max_bytes=64 * 2**20))  # ~28 kB each
    perimeters: Memo = field(default_factory=lambda: Memo(256))
    notes: Memo = field(default_factory=lambda: Memo(64))  # PDFs of ~80 kB
    _fast: dict = field(default_factory=dict, repr=False)
    _fast_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fast_for(self, item: Loaded):
        """The parcel answers of ``item`` prepared once (:class:`geo.server.fast.FastParcels`),
        or None when it has no cadastre."""
        if item.territoire is None:
            return None
        with self._fast_lock:
            if item.name not in self._fast:
                from geo.server.fast import FastParcels

                self._fast[item.name] = FastParcels(item)
            return self._fast[item.name]

    def perimeters_in_force(self, item: Loaded, day):
        """The perimeters of ``item`` in force on ``day`` (read once per convention and day, then
        shared), or None and the :class:`~geo.errors.PerimeterError` saying why there are none."""

        def read():
            try:
                return item.convention.perimeters(day), None
            except PerimeterError as err:  # no version in force: place rules say "inconnu", never "non"
                return None, err

        return self.perimeters.get((item.name, day), read)

    def get(self, name: str) -> Loaded:
        """The convention called ``name``; a path-like or unknown name is an :class:`InputError`."""
        check_name(name)
        if name not in self.conventions:
            raise InputError(
                f"convention {name!r} inconnue de ce serveur",
                fix=f"choisissez parmi : {', '.join(self.conventions)}",
            )
        return self.conventions[name]

    def for_commune(self, code: str) -> Loaded | None:
        """The convention covering commune ``code`` (the first, when several do), else None."""
        return next((c for c in self.conventions.values() if code in c.communes), None)

    def default_commune(self) -> str | None:
        """The commune of the only single-commune convention, for short ids typed without one."""
        singles = [c.communes[0] for c in self.conventions.values() if len(c.communes) == 1]
        return singles[0] if len(singles) == 1 else None


def _folders(perimeters: Iterable[str | Path], conventions_dirs: Iterable[str | Path]) -> list[Path]:
    from geo import embedded

    folders: list[Path] = []
    for item in perimeters:
        path = Path(item)
        if not path.exists() and len(path.parts) == 1 and path.name in embedded.convention_names():
            path = embedded.convention_dir(path.name)
        if not (path / "convention.toml").is_file():
            raise InputError(
                f"{item} : ni une convention fournie avec ort, ni un dossier de convention",
                source=str(item),
                fix=f"donnez un dossier contenant convention.toml, ou l'un des noms : "
                f"{', '.join(embedded.convention_names())}",
            )
        folders.append(path)
    for item in conventions_dirs:
        root = Path(item)
        if not root.is_dir():
            raise InputError("dossier de conventions introuvable", source=str(root), fix="vérifiez le chemin")
        found = sorted(p for p in root.iterdir() if (p / "convention.toml").is_file())
        if not found:
            raise InputError(
                "aucun dossier de convention (avec convention.toml) dans ce dossier",
                source=str(root),
                fix="donnez le dossier qui contient les dossiers des conventions",
            )
        folders += found
    if not folders:  # the default: every convention shipped with ort (the demo among them)
        folders = [embedded.convention_dir(n) for n in embedded.convention_names()]
    return folders


def _name_of(folder: Path, taken: dict) -> str:
    base = re.sub(r"[^a-z0-9_-]+", "-", folder.resolve().name.lower()).strip("-") or "convention"
    name, k = base[:60], 2
    while name in taken:
        name, k = f"{base[:57]}-{k}", k + 1
    return name


def load_catalogue(
    perimeters: Iterable[str | Path] = (),
    *,
    conventions_dirs: Iterable[str | Path] = (),
    address_file: str | Path | None = None,
    lists_dir: str | Path | None = None,
    rules_path: str | Path | None = None,
) -> Catalogue:
    """Read every convention, its cadastre, the national lists and the rules, once.

    Parameters
    ----------
    perimeters : iterable of str or Path
        Shipped convention names (``demo``) or convention folders; with ``conventions_dirs``
        empty too, every convention shipped with ort.
    conventions_dirs : iterable of str or Path
        Folders whose sub-folders are conventions (a département's, for instance).
    address_file : str or Path, optional
        BAN or BAL CSV to geocode offline; without it addresses are asked to the BAN API.
    lists_dir, rules_path : optional
        As ``ort eligibility --lists`` and ``--rules``.
    """
    from geo.app import Settings, open_territory
    from geo.eligibility.rules import load_rules
    from geo.perimeters import read_convention
    from geo.sources.lists import load_lists

    loaded: dict[str, Loaded] = {}
    warnings: list[str] = []
    offline = Settings(offline=True)  # a server never downloads a cadastre at start
    for folder in _folders(perimeters, conventions_dirs):
        conv = read_convention(folder)
        item = Loaded(_name_of(folder, loaded), conv)
        if conv.versions:  # perimeters drawn: their parcels are classified, so load the cadastre
            try:
                item.territoire = open_territory(conv, address_file=address_file, settings=offline)
            except OrtError as err:
                item.problem = (
                    f"cadastre de la convention « {conv.nom} » non chargé ({err}) — téléchargez-le avec "
                    f"`ort fetch {' '.join(conv.communes)}` puis relancez ort serve"
                )
                warnings.append(item.problem)
            for ver in conv.versions:  # every version read now: requests only read them
                conv.perimeters(version=ver.id)
        loaded[item.name] = item
    return Catalogue(
        conventions=loaded,
        lists=load_lists(Path(lists_dir) if lists_dir else None),
        rules=load_rules(Path(rules_path) if rules_path else None),
        warnings=warnings,
    )
