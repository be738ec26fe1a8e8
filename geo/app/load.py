"""What every job starts from: a convention, its cadastre and the entries people give.

:func:`open_territory` reads a convention and its parcels once (a server keeps the
:class:`Territoire` in memory and answers from it); the readers of entries split what people
type into parcel ids and addresses, and read spreadsheets of requests.
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from geo import settings as ort_settings
from geo.errors import InputError, OrtError

if TYPE_CHECKING:  # heavy imports where they are used: `ort --help` stays quick
    import geopandas as gpd
    import pandas as pd

    from geo.perimeters import Convention
    from geo.sources.addresses import AddressIndex, AddressParcel

#: Column names holding parcel ids, and addresses, in a spreadsheet of requests.
ID_COLUMNS = ("idu", "id", "parcelle", "id_parcelle", "identifiant", "ref_cadastrale")
ADDRESS_COLUMNS = ("adresse", "address", "adresse_postale")


def convention_folder(value: str | Path) -> Path:
    """A folder as given, or the folder of a convention shipped with ort (``demo``, ``libercourt``).

    A name is looked up only among the shipped conventions: it never becomes a path unchecked.
    """
    path = Path(value)
    if path.exists() or len(path.parts) != 1:
        return path
    from geo import embedded

    if path.name in embedded.convention_names():
        return embedded.convention_dir(path.name)
    return path


@dataclass(frozen=True)
class Territoire:
    """A convention and its cadastre, loaded once, read by every job (never changed by one).

    Attributes
    ----------
    convention : Convention
    parcels : GeoDataFrame
        The cadastre's parcels, in the convention's metric CRS (spatial index built).
    cadastre : Path or None
        The cadastre file or folder given (None: the convention's ``cadastre_dir`` or the cache).
    communes : GeoDataFrame or None
        Commune boundaries when the cadastre folder has them (checks of ``ort validate``).
    addresses : AddressIndex or None
        An address file, indexed, to locate addresses offline.

    The perimeters in force on a date and the warnings of ``ort validate`` on a version are
    computed once and kept (:meth:`perimeters_at`, :meth:`version_warnings`): a server answers
    the next request on that date from memory. Nothing a call sends changes them.
    """

    convention: Convention
    parcels: gpd.GeoDataFrame
    cadastre: Path | None = None
    communes: gpd.GeoDataFrame | None = None
    addresses: AddressIndex | None = None
    _memo: dict = field(default_factory=dict, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    #: Most dates whose perimeters are kept (the oldest asked is dropped first).
    MEMO_SIZE = 256

    def perimeters_at(self, day: dt.date) -> gpd.GeoDataFrame:
        """The perimeters in force on ``day`` (:meth:`Convention.perimeters`, ``in_force_only``),
        shared between calls: read them, never change them."""
        return self._remember(
            ("perimetres", day), lambda: self.convention.perimeters(day, in_force_only=True)
        )

    def version_warnings(self, perimeters) -> list[str]:
        """The problems :func:`geo.validate.validate_version` finds on these perimeters, as lines."""
        key = ("validation", perimeters.attrs.get("version"), tuple(sorted(perimeters["perimeter_id"])))

        def compute() -> list[str]:
            from geo.validate import validate_version

            checked = validate_version(
                self.convention, perimeters, parcels=self.parcels, communes=self.communes
            )
            return [f"{p.code} [{p.feature}] : {p.message}" for p in checked.problems]

        return list(self._remember(key, compute))

    def _remember(self, key, compute):
        with self._lock:
            if key in self._memo:
                return self._memo[key]
        value = compute()  # outside the lock: two threads may compute the same value once each
        with self._lock:
            if len(self._memo) >= self.MEMO_SIZE:
                self._memo.pop(next(iter(self._memo)))
            return self._memo.setdefault(key, value)

    @property
    def default_commune(self) -> str | None:
        """The commune of short ids (``AB 12``) when the convention has only one."""
        communes = self.convention.communes
        return communes[0] if len(communes) == 1 else None


def open_territory(
    perimeters: str | Path | Convention,
    *,
    cadastre: str | Path | None = None,
    millesime: str | None = None,
    fix: bool = False,
    date: dt.date | str | None = None,
    address_file: str | Path | None = None,
    with_communes: bool = True,
    settings: ort_settings.Settings | None = None,
) -> Territoire:
    """Read a convention and its cadastre.

    Parameters
    ----------
    perimeters : folder, name of a shipped convention, or Convention
    cadastre : file or folder, optional
        Default: the convention's ``cadastre_dir``, else the download cache (or the network).
    millesime : str, optional
        Cadastre millésime to download (``latest`` or ``AAAA-MM-JJ``).
    fix : bool
        Repair invalid geometries while reading.
    date : date or str, optional
        When given, a date without perimeters in force is refused before the cadastre is read.
    address_file : file, optional
        BAN or BAL CSV of the communes, indexed to locate addresses offline.
    settings : Settings, optional
        Offline mode and the like for this call (default: the settings in effect).
    """
    from geo.perimeters import Convention, parse_date, read_convention

    with ort_settings.use(settings):
        conv = (
            perimeters
            if isinstance(perimeters, Convention)
            else read_convention(convention_folder(perimeters))
        )
        if date is not None:
            conv.version_at(parse_date(date))
        source = Path(cadastre) if cadastre is not None else None
        parcels = load_parcels(conv, source, millesime, fix)
        parcels.sindex  # noqa: B018 - built once here, not by two threads at the first request
        communes = load_communes(conv, source) if with_communes else None
        index = None
        if address_file is not None:
            from geo.sources.addresses import load_address_index

            index = load_address_index(Path(address_file), communes=conv.communes)
    return Territoire(conv, parcels, source, communes, index)


def load_parcels(
    conv: Convention, cadastre: Path | None, millesime: str | None, fix: bool
) -> gpd.GeoDataFrame:
    """The convention's parcels from ``cadastre`` (file or folder), its ``cadastre_dir`` or the
    cache, in its metric CRS."""
    from geo.sources import cadastre as cad

    source = cadastre or conv.cadastre_dir
    if source is not None and source.is_file():
        return cad.read_parcels(source, metric_crs=conv.metric_crs, fix=fix)
    layers = cad.load_cadastre(conv.communes, ("parcelles",), millesime=millesime, source_dir=source, fix=fix)
    return layers["parcelles"].to_crs(conv.metric_crs)


def load_communes(conv: Convention, cadastre: Path | None) -> gpd.GeoDataFrame | None:
    """The communes layer of the cadastre folder, or None (never downloaded)."""
    from geo.sources import cadastre as cad

    source = cadastre or conv.cadastre_dir
    if source is None or not source.is_dir():
        return None
    try:
        layers = cad.load_cadastre(conv.communes, ("communes",), source_dir=source)
    except OrtError:
        return None
    return layers.get("communes")


def provenance(conv: Convention, perimeters, parcels, day: dt.date) -> str:
    """The lines printed above every answer: convention, version and date, cadastre millésime."""
    from geo.check import provenance_text

    return provenance_text(conv, perimeters, parcels.attrs.get("millesime"), day)


def classify_with_progress(
    parcels,
    perimeters,
    tolerance_m2: float | None,
    tolerance_pct: float | None,
    *,
    progress: bool | None = None,
) -> pd.DataFrame:
    """:func:`geo.classify.classify_parcels`, with a progress bar on stderr for large layers
    (``progress``; default ``settings.progress``, which ``ort --quiet`` turns off)."""
    from geo.classify import classify_parcels
    from geo.prepared import classify_frame

    few = classify_frame(parcels, perimeters, tolerance_m2=tolerance_m2, tolerance_pct=tolerance_pct)
    if few is not None:  # a request's few parcels: the engine's kernels, without its tables
        return few
    chunk = 20_000
    show = ort_settings.progress if progress is None else progress
    if len(parcels) <= chunk or not show:
        return classify_parcels(parcels, perimeters, tolerance_m2=tolerance_m2, tolerance_pct=tolerance_pct)
    from tqdm import tqdm

    parts = []
    with tqdm(total=len(parcels), unit=" parcelles", desc="Classement", file=sys.stderr) as bar:
        for start in range(0, len(parcels), chunk):
            part = parcels.iloc[start : start + chunk]
            parts.append(
                classify_parcels(part, perimeters, tolerance_m2=tolerance_m2, tolerance_pct=tolerance_pct)
            )
            bar.update(len(part))
    import pandas as pd

    out = pd.concat(parts, ignore_index=True)
    out.attrs.update(parts[0].attrs)
    return out


def with_parcel_columns(result: pd.DataFrame, parcels) -> pd.DataFrame:
    """The classification with the parcel's commune, section, numéro and contenance in front."""
    from geo.check import with_parcel_fields

    return with_parcel_fields(result, parcels)


# --- entries ---------------------------------------------------------------------------------


def split_addresses(texts) -> tuple[list[str], list[str]]:
    """Typed entries split into parcel ids and addresses ("12 rue Jean Jaurès, 62820 Libercourt")."""
    from geo.sources.addresses import looks_like_address

    texts = list(texts)
    ids = [t for t in texts if not looks_like_address(t)]
    return ids, [t for t in texts if looks_like_address(t)]


def address_index(territoire: Territoire, address_file: str | Path | None = None) -> AddressIndex | None:
    """The address file to use: ``address_file``, else the territory's, else (offline) one of
    the cache; None to ask the BAN API."""
    from geo.sources.addresses import load_address_index

    if address_file is None and territoire.addresses is not None:
        return territoire.addresses
    path = Path(address_file) if address_file is not None else None
    return load_address_index(path, communes=territoire.convention.communes)


def locate_addresses(
    addresses, conv: Convention, parcels, address_file: Path | None = None, *, index=None
) -> list[AddressParcel]:
    """Each address geocoded (file, cache or BAN API) and put on the parcel holding its point."""
    from geo.sources.addresses import load_address_index, parcels_for_addresses

    if index is None:
        index = load_address_index(address_file, communes=conv.communes)
    return parcels_for_addresses(list(addresses), parcels, index=index, communes=conv.communes)


def read_entries_file(path: Path) -> tuple[list[tuple[str, str | None]], list[str]]:
    """A spreadsheet of requests: parcel ids ``(id, commune)`` and addresses (rows without an id).

    The id column is read by :func:`geo.check.read_id_table`; a file with only an ``adresse``
    column is a list of addresses.
    """
    from geo.check import read_id_table
    from geo.sources.tables import read_user_table

    df = read_user_table(path)
    cols = {str(c).strip().lower(): c for c in df.columns}
    id_col = next((cols[n] for n in ID_COLUMNS if n in cols), None)
    addr_col = next((cols[n] for n in ADDRESS_COLUMNS if n in cols), None)
    addresses = []
    if addr_col is not None:
        ids = df[id_col].fillna("").astype(str).str.strip() if id_col is not None else [""] * len(df)
        for ident, addr in zip(ids, df[addr_col].fillna("").astype(str).str.strip(), strict=True):
            if addr and not ident:
                addresses.append(addr)
    if id_col is None and addresses:
        return [], addresses
    try:
        return read_id_table(path), addresses
    except InputError:  # no id at all: fine when the rows are addresses
        if addresses:
            return [], addresses
        raise


def read_rows(path: Path) -> list[str]:
    """One entry per row of a CSV/XLSX: its parcel id, else its address (``ort note --file``)."""
    from geo.sources.tables import read_user_table

    df = read_user_table(path)
    cols = {str(c).strip().lower(): c for c in df.columns}
    id_col = next((cols[n] for n in ID_COLUMNS if n in cols), None)
    addr_col = next((cols[n] for n in ADDRESS_COLUMNS if n in cols), None)
    if id_col is None and addr_col is None:
        raise InputError(
            f"ni colonne d'identifiants ni colonne d'adresses (colonnes : {', '.join(map(str, df.columns))})",
            source=str(path),
            fix="nommez la colonne 'idu' (parcelles) ou 'adresse'",
        )
    out = []
    for rec in df.to_dict("records"):
        ident = str(rec.get(id_col) or "").strip() if id_col is not None else ""
        addr = str(rec.get(addr_col) or "").strip() if addr_col is not None else ""
        if ident and ident.lower() != "nan":
            out.append(ident)
        elif addr and addr.lower() != "nan":
            out.append(addr)
    return out


#: Matplotlib keeps its settings (``rcParams``) and figures in globals: notes and annexes are
#: drawn one at a time per process, whatever the number of threads asking.
drawing_lock = threading.RLock()
