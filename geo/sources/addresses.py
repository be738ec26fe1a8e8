"""Address files (BAN, BAL) and finding a written address in them.

Two real layouts are read (see ``../shared/data/ban-bal-sample/``):

- the **Base Adresse Nationale** per département, ``adresses-{dep}.csv.gz`` (``code_insee``,
  ``numero``, ``rep``, ``nom_voie``, ``lon``, ``lat``, optional ``cad_parcelles``);
- a **Base Adresse Locale** (BAL 1.x) export of a commune (``commune_insee``, ``numero``,
  ``suffixe``, ``voie_nom``, ``long``, ``lat``, ``position``, ``cad_parcelles``), whose
  ``cad_parcelles`` links each address to its parcels.

:func:`read_addresses` gives one table for both, read as a stream bounded by
``settings.max_table_bytes`` whatever the compression (:func:`open_address_file`: a
decompression bomb is refused before it fills the memory); :func:`index_addresses` and
:func:`find_address` match an address written by hand (a landlord's file: number, suffix,
street type and name, or one free-text ``adresse``) and, when it is not found, say why in
French (unknown street with the closest names, number absent with the known ones…).
Street names are compared by :func:`voie_key`: upper case, no accents, FANTOIR / RPLS
abbreviations of street types expanded, small words left out.
"""

from __future__ import annotations

import datetime as dt
import difflib
import io
import math
import re
import unicodedata
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from geo import embedded, settings
from geo.errors import DownloadError, InputError
from geo.places.friches import split_list

# FANTOIR / RPLS abbreviations of street types, and the small words left out of street keys.
_VOIE_TYPES = dict(
    pair.split("=")
    for pair in (
        "R=RUE AV=AVENUE AVE=AVENUE BD=BOULEVARD BLD=BOULEVARD CHE=CHEMIN CHEM=CHEMIN ALL=ALLEE PL=PLACE "
        "IMP=IMPASSE RTE=ROUTE SQ=SQUARE RES=RESIDENCE PASS=PASSAGE FG=FAUBOURG LOT=LOTISSEMENT CRS=COURS "
        "HAM=HAMEAU SEN=SENTIER SENT=SENTIER PROM=PROMENADE QU=QUAI QUA=QUARTIER CTRE=CENTRE ESP=ESPLANADE "
        "VLA=VILLA"
    ).split()
)
_SMALL_WORDS = {"DE", "DU", "DES", "LA", "LE", "LES", "L", "D", "A", "AU", "AUX", "ET"}
# Abbreviations inside street names (après le type de voie).
_NAME_WORDS = {
    "ST": "SAINT", "STE": "SAINTE", "GAL": "GENERAL", "GEN": "GENERAL", "MAL": "MARECHAL",
    "PDT": "PRESIDENT", "DR": "DOCTEUR", "PR": "PROFESSEUR", "CDT": "COMMANDANT",
}  # fmt: skip
_TYPE_WORDS = set(_VOIE_TYPES.values()) | {
    "RUE",
    "AVENUE",
    "BOULEVARD",
    "PLACE",
    "CHEMIN",
    "ALLEE",
    "QUAI",
    "COURS",
}
_SUFFIXES = {"BIS": "B", "TER": "T", "QUATER": "Q", "QUINQUIES": "C"}
_ADDRESS = re.compile(
    r"^\s*(?P<num>\d+)\s*(?P<suf>bis|ter|quater|[a-z])?\b[\s,]*(?P<voie>.+)$", re.IGNORECASE
)
_NULLS = ("", "nan", "na", "none", "null")
# The magic bytes of the compressions read (as a stream, bounded) whatever the file's name.
_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz", b"PK\x03\x04": "zip"}
# A damaged .gz raises OSError, EOFError or zlib.error; a non-UTF-8 file UnicodeDecodeError (a ValueError).
_READ_ERRORS = (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError, EOFError, zlib.error)


def voie_key(text: str | None) -> str:
    """Key of a street name for matching: upper case, no accents, types expanded, small words out.

    >>> voie_key("Allée de Chateauvieux") == voie_key("ALL CHATEAUVIEUX")
    True
    >>> voie_key("R DES ABEILLES")
    'RUE ABEILLES'
    """
    if not text:
        return ""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().upper()
    words = re.sub(r"[^A-Z0-9]+", " ", plain).split()
    if words:
        words = [_VOIE_TYPES.get(words[0], words[0]), *(_NAME_WORDS.get(w, w) for w in words[1:])]
    return " ".join(w for w in words if w not in _SMALL_WORDS)


def street_score(a: str, b: str) -> float:
    """Similarity (0–1) of two street keys (:func:`voie_key`): the names compared, a different
    street type costs 10 %.

    >>> street_score("RUE JEAN JAURES", "RUE JEAN JAURES")
    1.0
    >>> street_score("RUE JEAN JAURES", "AVENUE JEAN JAURES")
    0.9
    """
    if a == b:
        return 1.0
    (ta, na), (tb, nb) = _type_and_name(a), _type_and_name(b)
    ratio = difflib.SequenceMatcher(None, na, nb).ratio()
    return ratio * (1.0 if ta == tb or not ta or not tb else 0.9)


def _type_and_name(key: str) -> tuple[str, str]:
    head, _, rest = key.partition(" ")
    return (head, rest) if head in _TYPE_WORDS and rest else ("", key)


def suffix_key(text: str | None) -> str:
    """Key of a number suffix (*indice de répétition*): ``bis`` → ``B``, ``ter`` → ``T``.

    >>> suffix_key("bis"), suffix_key(" b "), suffix_key(None)
    ('B', 'B', '')
    """
    if not text:
        return ""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    t = re.sub(r"[^A-Z0-9]+", "", plain.upper())
    return _SUFFIXES.get(t, t)


def number_key(value: object) -> str:
    """Key of a street number: ``"12"``, ``12.0`` and ``" 012 "`` give ``"12"``; other text is kept.

    >>> number_key("012"), number_key(12.0), number_key("12b"), number_key("inf")
    ('12', '12', '12B', 'INF')
    """
    t = _text(value)
    if t is None:
        return ""
    try:
        number = float(t)
    except ValueError:
        return t.upper()
    return str(int(number)) if math.isfinite(number) else t.upper()


def _text(value: object) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return None if text.lower() in _NULLS else text


def _float(value: object) -> float | None:
    t = _text(value)
    if t is None:
        return None
    try:
        return float(t.replace(",", "."))
    except ValueError:
        return None


def _coordinates(lons, lats) -> tuple[list[float], list[float]]:
    """Longitudes and latitudes (WGS84 degrees) of an address file; a point with a missing,
    infinite or out-of-globe coordinate has neither (NaN, NaN): half a point is no point."""
    out_lon, out_lat = [], []
    for a, b in zip(lons, lats, strict=True):
        x, y = _float(a), _float(b)
        if x is None or y is None or not (-180 <= x <= 180 and -90 <= y <= 90):  # NaN fails too
            x = y = math.nan
        out_lon.append(x)
        out_lat.append(y)
    return out_lon, out_lat


def _has_point(rec: dict) -> bool:
    return all(isinstance(rec[k], float) and math.isfinite(rec[k]) for k in ("lon", "lat"))


# --------------------------------------------------------------------------------------------
# Reading


class AddressFileTooLarge(Exception):
    """The content of an address file passed ``settings.max_table_bytes`` while being read."""


class _Bounded(io.RawIOBase):
    """A binary stream that refuses to give more than ``limit`` bytes (:class:`AddressFileTooLarge`).

    A few megabytes of gzip can expand to gigabytes: counting what is read, chunk by chunk,
    stops a decompression bomb before it is in memory.
    """

    def __init__(self, raw, limit: int) -> None:
        super().__init__()
        self._raw, self._limit, self.count = raw, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._raw.read(min(len(buffer), 1 << 20))
        self.count += len(data)
        if self.count > self._limit:
            raise AddressFileTooLarge(self.count)
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


def open_address_file(path: str | Path) -> io.BufferedReader:
    """The content of an address file as a bounded binary stream, decompressed when it is
    gzip, bzip2, xz or a zip of one CSV (told by its first bytes, not by its name).

    Every reader of addresses goes through here: reading more than ``settings.max_table_bytes``
    bytes of content (a département's BAN file holds less than 200 Mo; a decompression bomb
    much more) raises :class:`AddressFileTooLarge` as soon as the bound is passed.
    """
    import bz2
    import gzip
    import lzma
    import zipfile

    path = Path(path)
    with path.open("rb") as f:
        head = f.read(8)
    kind = next((k for magic, k in _MAGIC.items() if head.startswith(magic)), None)
    if kind == "gzip":
        raw = gzip.open(path, "rb")
    elif kind == "bz2":
        raw = bz2.open(path, "rb")
    elif kind == "xz":
        raw = lzma.open(path, "rb")
    elif kind == "zip":
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise ValueError("archive zip abîmée") from None
        names = [n for n in archive.namelist() if not n.endswith("/")]
        if len(names) != 1:
            archive.close()
            raise ValueError(f"archive zip de {len(names)} fichiers, un seul CSV attendu")
        raw = archive.open(names[0])
    else:
        raw = path.open("rb")
    return io.BufferedReader(_Bounded(raw, int(settings.max_table_bytes)), buffer_size=1 << 20)


def _too_large(src: str) -> InputError:
    limit = int(settings.max_table_bytes)
    return InputError(
        f"fichier d'adresses trop volumineux : plus de {limit // 2**20} Mo une fois décompressé "
        "(limite geo.settings.max_table_bytes ; une archive piégée, « bombe » de compression, "
        "ou le fichier national)",
        source=src,
        fix="donnez le fichier du département (adresses-{dep}.csv.gz) ou l'export BAL de la commune",
    )


def read_addresses(path: str | Path, *, communes: list[str] | tuple[str, ...] | None = None) -> pd.DataFrame:
    """Read a BAN ``adresses-{dep}.csv(.gz)`` or a BAL 1.x CSV into one address table.

    Parameters
    ----------
    path : str or Path
        BAN layout (``code_insee``, ``numero``, ``rep``, ``nom_voie``, ``lon``, ``lat``,
        optional ``cad_parcelles``) or BAL layout (``commune_insee``, ``numero``, ``suffixe``,
        ``voie_nom``, ``long``, ``lat``, ``position``, ``cad_parcelles``); ``;``-separated UTF-8.
    communes : list of str, optional
        Keep only these INSEE codes (read in chunks: a département file is large).

    Returns
    -------
    DataFrame
        ``code_insee``, ``numero``, ``suffixe``, ``voie`` (as written), ``voie_key``,
        ``lon``, ``lat`` (WGS84 degrees), ``parcelles`` (``|``-separated ids, may be empty),
        ``position``, and ``attrs["format"]`` ``"BAN"`` or ``"BAL"``.

    Raises
    ------
    geo.errors.InputError
        Missing or unreadable file (damaged gzip, unbalanced quotes, not UTF-8), neither the
        BAN nor the BAL layout, or a layout without its number or coordinate columns.
    """
    path = Path(path)
    src = str(path)
    if not path.is_file():
        raise InputError("fichier d'adresses introuvable", source=src, fix="vérifiez le chemin")
    try:
        with open_address_file(path) as stream:
            head = pd.read_csv(stream, sep=";", dtype=str, nrows=0)
    except AddressFileTooLarge:
        raise _too_large(src) from None
    except _READ_ERRORS as err:
        raise InputError(
            f"fichier d'adresses illisible ({' '.join(str(err).split())[:200]})",
            source=src,
            fix="donnez un CSV BAN ou BAL",
        ) from None
    cols = set(head.columns)
    if {"commune_insee", "voie_nom"} <= cols:
        fmt, names = (
            "BAL",
            {
                "commune_insee": "code_insee",
                "suffixe": "suffixe",
                "voie_nom": "voie",
                "long": "lon",
                "commune_nom": "commune",
            },
        )
    elif {"code_insee", "nom_voie"} <= cols:
        fmt, names = (
            "BAN",
            {
                "code_insee": "code_insee",
                "rep": "suffixe",
                "nom_voie": "voie",
                "type_position": "position",
                "nom_commune": "commune",
            },
        )
    else:
        raise InputError(
            f"ni BAN ni BAL : colonnes {', '.join(sorted(cols)[:10])}",
            source=src,
            fix="donnez adresses-{dep}.csv.gz (BAN) "
            "ou un fichier BAL (commune_insee, voie_nom, cad_parcelles)",
        )
    needed = {"numero", "lat", "long" if fmt == "BAL" else "lon"} - cols
    if needed:
        raise InputError(
            f"fichier {fmt} sans colonne(s) {', '.join(sorted(needed))}",
            source=src,
            fix=f"donnez le fichier {fmt} complet, tel que publié",
        )
    wanted = {str(c) for c in communes} if communes else None
    parts = []
    try:
        with open_address_file(path) as stream:
            chunks = pd.read_csv(
                stream, sep=";", dtype=str, keep_default_na=False, index_col=False, chunksize=50_000
            )
            for chunk in chunks:
                chunk = chunk.rename(columns=names)
                if wanted is not None:
                    chunk = chunk[chunk["code_insee"].isin(wanted)]
                parts.append(chunk)
    except AddressFileTooLarge:
        raise _too_large(src) from None
    except _READ_ERRORS as err:
        raise InputError(
            f"fichier d'adresses illisible ({' '.join(str(err).split())[:200]})",
            source=src,
            fix="retéléchargez-le (BAN : adresses-{dep}.csv.gz ; BAL : export CSV de la commune)",
        ) from None
    df = pd.concat(parts, ignore_index=True) if parts else head.rename(columns=names)
    empty = pd.Series([""] * len(df), index=df.index)
    lon, lat = _coordinates(df["lon"], df["lat"])
    out = pd.DataFrame(
        {
            "code_insee": df["code_insee"].astype(str),
            "numero": [number_key(v) for v in df["numero"]],
            "suffixe": [suffix_key(v) for v in df.get("suffixe", empty)],
            "voie": df["voie"].astype(str),
            "voie_key": [voie_key(v) for v in df["voie"]],
            "lon": lon,
            "lat": lat,
            "parcelles": ["|".join(split_list(v)) for v in df.get("cad_parcelles", empty)],
            "position": df.get("position", empty).astype(str),
            "commune": df.get("commune", empty).astype(str),
            "code_postal": df.get("code_postal", empty).astype(str),
        }
    )
    # Several positions per address in a BAL: prefer the building, then the entrance.
    rank = out["position"].map({"bâtiment": 0, "entrée": 1}).fillna(2)
    out = (
        out.assign(_rank=rank)
        .sort_values("_rank", kind="stable")
        .drop(columns="_rank")
        .reset_index(drop=True)
    )
    out.attrs["format"] = fmt
    out.attrs["source"] = src
    # The vintage of a BAL: its most recent update (date_der_maj); a BAN file carries none.
    dates = [d for d in df.get("date_der_maj", empty).astype(str) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", d)]
    out.attrs["date"] = max(dates) if dates else ""
    return out


# --------------------------------------------------------------------------------------------
# Matching


@dataclass
class AddressIndex:
    """The addresses of :func:`read_addresses`, by commune, street key, number and suffix.

    Attributes
    ----------
    addresses : dict
        ``(code_insee, voie_key, numero, suffixe)`` → the address record (first position
        kept: the building, then the entrance).
    numbers : dict
        ``(code_insee, voie_key)`` → the numbers known in that street.
    streets : dict
        ``code_insee`` → ``{voie_key: street name as written}``.
    format : str
        ``"BAN"`` or ``"BAL"``.
    names, postcodes : dict
        ``code_insee`` → commune name, and the postcodes seen in it.
    source, date : str
        The file read and its vintage (a BAL's latest ``date_der_maj``; empty when unknown).
    """

    addresses: dict = field(default_factory=dict)
    numbers: dict = field(default_factory=dict)
    streets: dict = field(default_factory=dict)
    format: str = "BAN"
    names: dict = field(default_factory=dict)
    postcodes: dict = field(default_factory=dict)
    source: str = ""
    date: str = ""


def index_addresses(addresses: pd.DataFrame) -> AddressIndex:
    """Index an address table (from :func:`read_addresses`) for :func:`find_address`."""
    index = AddressIndex(
        format=addresses.attrs.get("format", "BAN"),
        source=addresses.attrs.get("source", ""),
        date=addresses.attrs.get("date", ""),
    )
    for rec in addresses.to_dict("records"):
        code, key = rec["code_insee"], rec["voie_key"]
        if rec.get("commune") and code not in index.names:
            index.names[code] = rec["commune"]
        if rec.get("code_postal"):
            index.postcodes.setdefault(code, set()).add(rec["code_postal"])
        index.addresses.setdefault((code, key, rec["numero"], rec["suffixe"]), rec)  # sorted: building first
        index.numbers.setdefault((code, key), set()).add(rec["numero"])
        index.streets.setdefault(code, {}).setdefault(key, rec["voie"])
    return index


def find_address(
    index: AddressIndex,
    *,
    code_insee: str | None,
    numero: object = None,
    suffixe: str | None = None,
    type_voie: str | None = None,
    nom_voie: str | None = None,
    adresse: str | None = None,
) -> tuple[dict | None, str | None]:
    """Find an address written by hand: by its parts (``nom_voie`` given), else in ``adresse``.

    Parameters
    ----------
    index : AddressIndex
        From :func:`index_addresses`.
    code_insee : str, optional
        The commune; without it, the address file must hold a single commune.
    numero, suffixe, type_voie, nom_voie : optional
        The parts (RPLS ``NUMVOIE``, ``INDREP``, ``TYPVOIE``, ``NOMVOIE``).
    adresse : str, optional
        A free-text address, ``"12 bis rue des Abeilles, 62907 Libercourt"``, used when
        ``nom_voie`` is not given.

    Returns
    -------
    (record, reason)
        The address record (``lon``, ``lat`` in WGS84 degrees, ``parcelles``…) and None, or
        None and the French reason it was not found.
    """
    if nom_voie:
        num, suf, voie = number_key(numero), suffix_key(suffixe), f"{type_voie or ''} {nom_voie}"
    else:
        m = _ADDRESS.match(re.split(r",|\b\d{5}\b", adresse or "")[0])
        if not m:
            return None, f"adresse « {adresse} » sans numéro de voie"
        num, suf, voie = number_key(m["num"]), suffix_key(m["suf"]), m["voie"]
    key = voie_key(voie)
    codes = [code_insee] if code_insee else sorted(index.streets)
    for c in codes:
        hit = index.addresses.get((c, key, num, suf))
        if hit is not None:
            if not _has_point(hit):
                return (
                    None,
                    f"n° {num} de la voie « {voie.strip()} » sans coordonnées valables (lon/lat) "
                    "dans le fichier d'adresses",
                )
            return hit, None
    if not code_insee and len(codes) != 1:
        return None, "commune inconnue (colonne DEPCOM / code_insee) et fichier d'adresses multi-communes"
    c = codes[0] if codes else code_insee
    names = index.streets.get(c)
    if not names:
        return None, f"aucune adresse de la commune {c} dans le fichier d'adresses"
    if (c, key) not in index.numbers:
        close = difflib.get_close_matches(key, list(names), n=2, cutoff=0.75)
        hint = f" (voies proches : {', '.join(names[k] for k in close)})" if close else ""
        return None, f"voie « {voie.strip()} » inconnue dans la commune {c}{hint}"
    known = sorted(index.numbers[(c, key)], key=lambda n: (len(n), n))
    return None, (
        f"numéro {num}{suf.lower()} absent de la voie « {voie.strip()} » "
        f"(numéros connus : {', '.join(known[:12])}{'…' if len(known) > 12 else ''})"
    )


# --------------------------------------------------------------------------------------------
# Geocoding a written address: the BAN API online, an address file offline

#: Status of a geocoding answer.
TROUVEE, AMBIGUE, INTROUVABLE = "trouvée", "ambiguë", "introuvable"
#: Below this score (0–1) a match is not trusted; between candidates closer than
#: :data:`AMBIGUITY_GAP`, the answer is ambiguous.
MIN_SCORE = 0.75
AMBIGUITY_GAP = 0.05
_HINT_SCORE = 0.5
_ADDRESS_WORD = re.compile(r"[^\W\d_]{3,}")


def looks_like_address(text: str) -> bool:
    """Whether a typed entry is an address rather than a parcel id.

    Parcel ids hold at most two letters in a row (the section); an address has a street word
    and at least two words.

    >>> looks_like_address("12 rue Jean Jaurès, 62820 Libercourt"), looks_like_address("91216 AC 100")
    (True, False)
    """
    t = str(text or "").strip()
    return bool(_ADDRESS_WORD.search(t)) and len(t.split()) >= 2


@dataclass
class Candidate:
    """One place an address may designate (WGS84 degrees)."""

    label: str
    score: float
    lon: float
    lat: float
    code_insee: str
    kind: str = "housenumber"
    parcelles: tuple[str, ...] = ()


@dataclass
class Geocoded:
    """The answer to "where is this address?": status, candidates best first, French message.

    ``status`` is :data:`TROUVEE` (``best`` is the address), :data:`AMBIGUE` (several
    candidates, none clearly better: ``candidates`` lists them) or :data:`INTROUVABLE`
    (``message`` says why). ``source`` names the data used and its date.
    """

    query: str
    status: str
    candidates: list[Candidate]
    message: str
    source: str

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.status == TROUVEE and self.candidates else None


def _fmt_score(score: float) -> str:
    return f"{score:.2f}".replace(".", ",")


def _decide(query: str, candidates: list[Candidate], source: str, *, why: str = "") -> Geocoded:
    """Status from scored candidates: one clear house number, several close ones, or none."""
    candidates = sorted(candidates, key=lambda c: -c.score)
    usable = [c for c in candidates if c.score >= MIN_SCORE]
    numbered = [c for c in usable if c.kind == "housenumber"]
    if not numbered:
        if usable:
            c = usable[0]
            msg = (
                f"adresse « {query} » introuvable au numéro près : la base ne situe que "
                f"« {c.label} » ({c.kind}, score {_fmt_score(c.score)})"
            )
        else:
            msg = why or f"adresse « {query} » introuvable"
            if candidates and not why:
                best = candidates[0]
                msg += f" (meilleure proposition : « {best.label} », score {_fmt_score(best.score)})"
        return Geocoded(query, INTROUVABLE, candidates[:5], msg, source)
    top = numbered[0]
    close = [top] + [
        c
        for c in numbered[1:]
        if top.score - c.score < AMBIGUITY_GAP and (c.lon, c.lat) != (top.lon, top.lat)
    ]
    if len(close) > 1:
        names = " ; ".join(f"« {c.label} » ({_fmt_score(c.score)})" for c in close[:5])
        return Geocoded(
            query,
            AMBIGUE,
            close[:5],
            f"adresse « {query} » ambiguë : {len(close)} adresses correspondent — {names} ; "
            "précisez la commune ou le code postal",
            source,
        )
    return Geocoded(query, TROUVEE, [top, *[c for c in numbered[1:5]]], "", source)


def _ban_url(query: str, *, citycode: str | None, limit: int) -> str:
    from urllib.parse import urlencode

    params = {"q": query, "limit": str(limit)}
    if citycode:
        params["citycode"] = citycode
    return f"{settings.ban_api_url.rstrip('/')}/search/?{urlencode(params)}"


def geocode_online(query: str, *, citycode: str | None = None, limit: int = 5) -> Geocoded:
    """Geocode with the BAN API (``settings.ban_api_url``), each answer cached once.

    The answer of one query is kept in the download cache (``{cache}/{host}/search/{hash}.json``):
    asked again, even offline, it is read from there.

    Parameters
    ----------
    query : str
        The address as written, e.g. ``"12 rue Jean Jaurès, 62820 Libercourt"``.
    citycode : str, optional
        Restrict to one commune (INSEE code).

    Raises
    ------
    geo.errors.DownloadError
        Offline and not cached, or the API did not answer.
    geo.errors.InputError
        The API answered something that is not its GeoJSON.
    """
    import hashlib

    from geo.sources import http

    url = _ban_url(query, citycode=citycode, limit=limit)
    key = hashlib.sha256(url.split("?", 1)[1].encode()).hexdigest()[:24]
    base = url.split("?", 1)[0].rstrip("/")
    dest = http.cache_path(f"{base}/{key}.json")
    if not dest.exists():
        if settings.offline:
            raise DownloadError(
                f"adresse « {query} » : l'API BAN n'est pas joignable hors ligne et la réponse n'est pas "
                "dans le cache — donnez le fichier d'adresses de la commune (--adresses adresses-62.csv.gz "
                "ou export BAL)"
            )
        try:
            http.download(
                url,
                dest,
                max_bytes=int(settings.ban_max_bytes),
                deadline_s=float(settings.ban_deadline),
                setting="l'adresse de l'API BAN (ORT_BAN_URL)",
            )
        except DownloadError as err:
            raise DownloadError(
                f"adresse « {query} » : l'API BAN ({base}) n'a pas donné de réponse utilisable : "
                f"{err.reason or err} — réessayez plus tard, vérifiez son adresse (ORT_BAN_URL), ou "
                "donnez le fichier d'adresses de la commune (--adresses adresses-62.csv.gz ou export BAL) "
                "pour chercher hors ligne"
            ) from None
    try:
        cands = _ban_candidates(dest.read_bytes())
    except ValueError as err:
        dest.unlink(missing_ok=True)  # a bad answer is not kept
        raise InputError(
            f"réponse de l'API BAN illisible ({err})",
            source=url,
            fix="vérifiez l'adresse de l'API (ORT_BAN_URL) ou travaillez avec --adresses",
        ) from None
    except OSError:
        raise InputError(
            "réponse de l'API BAN illisible dans le cache",
            source=str(dest),
            fix="supprimez ce fichier, ou travaillez avec --adresses",
        ) from None
    stamp = dt.datetime.fromtimestamp(dest.stat().st_mtime).date().isoformat()
    source = f"API Adresse (BAN) {base.rsplit('/search', 1)[0]}, réponse du {stamp}"
    return _decide(query, cands, source)


def _ban_candidates(raw: bytes) -> list[Candidate]:
    """The candidates of one BAN API answer, every field checked.

    The answer must be a GeoJSON FeatureCollection of at most ``settings.ban_max_bytes``,
    nested no deeper than ``settings.max_nesting``, without NaN or Infinity; each feature a point
    in longitude −180…180 and latitude −90…90 with a score in 0…1. A server that answers
    otherwise is broken (or not the BAN): its whole answer is refused, never half used.

    Raises
    ------
    ValueError
        What is wrong, in French.
    """
    import json

    from geo.schema import json_depth

    if len(raw) > int(settings.ban_max_bytes):
        raise ValueError(f"réponse de {len(raw)} octets, au-delà de {int(settings.ban_max_bytes)}")
    depth = json_depth(raw)
    if depth > settings.max_nesting:
        raise ValueError(f"JSON imbriqué sur {depth} niveaux")

    def no_constant(name: str):
        raise ValueError(f"valeur {name} dans le JSON")

    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=no_constant)
    except UnicodeDecodeError:
        raise ValueError("pas du texte UTF-8") from None
    except RecursionError:
        raise ValueError("JSON trop imbriqué") from None
    except json.JSONDecodeError:
        raise ValueError("pas un GeoJSON FeatureCollection") from None
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, list):
        raise ValueError("pas un GeoJSON FeatureCollection")
    cands = []
    for i, f in enumerate(features[:100]):
        try:
            props = f.get("properties") or {}
            lon, lat = (float(v) for v in f["geometry"]["coordinates"][:2])
            score = float(props.get("score", 0.0))
            label, code = props.get("label", ""), props.get("citycode", "")
            kind = props.get("type", "housenumber")
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ValueError(f"proposition {i + 1} sans point ni propriétés lisibles") from None
        if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
            raise ValueError(f"proposition {i + 1} : coordonnées hors du globe ({lon!r}, {lat!r})")
        if not (math.isfinite(score) and 0 <= score <= 1):
            raise ValueError(f"proposition {i + 1} : score {score!r} hors de 0…1")
        if not all(isinstance(v, str) and len(v) <= 500 for v in (label, code, kind)):
            raise ValueError(f"proposition {i + 1} : libellé, code ou type qui n'est pas un texte court")
        cands.append(Candidate(label=label, score=score, lon=lon, lat=lat, code_insee=code, kind=kind))
    return cands


def _split_query(text: str) -> tuple[str, str | None, str | None]:
    """(street part, postcode, commune name) of ``"12 rue X, 62820 Libercourt"``."""
    postcode = re.search(r"\b(\d{5})\b", text)
    head = re.split(r",|\b\d{5}\b", text)[0]
    tail = (
        text[postcode.end() :].strip(" ,")
        if postcode
        else (text.split(",", 1)[1].strip() if "," in text else "")
    )
    return head, postcode.group(1) if postcode else None, tail or None


def geocode_in_table(
    query: str, index: AddressIndex, *, communes: list[str] | tuple[str, ...] | None = None
) -> Geocoded:
    """Geocode against an address file (:func:`read_addresses`, :func:`index_addresses`), offline.

    The street name is compared by :func:`voie_key` (exact: score 1) or by similarity; the number
    and suffix must exist in that street. Score = street similarity (1 for the same key).
    """
    vintage = f" (mis à jour le {index.date})" if index.date else ""
    source = f"fichier {index.format} {Path(index.source).name}{vintage}"
    head, postcode, city = _split_query(query)
    m = _ADDRESS.match(head)
    if not m:
        return Geocoded(query, INTROUVABLE, [], f"adresse « {query} » sans numéro de voie", source)
    num, suf, key = number_key(m["num"]), suffix_key(m["suf"]), voie_key(m["voie"])
    codes = [c for c in (communes or sorted(index.streets)) if c in index.streets]
    if city and len(codes) > 1:
        wanted = voie_key(city)
        named = [c for c in codes if index.names.get(c) and voie_key(index.names[c]) == wanted]
        codes = named or codes
    if postcode and len(codes) > 1:
        coded = [c for c in codes if postcode in index.postcodes.get(c, set()) or c == postcode]
        codes = coded or codes
    if not codes:
        return Geocoded(query, INTROUVABLE, [], f"aucune adresse de la commune dans le {source}", source)
    cands = []
    street_only = []
    pointless = []
    for c in codes:
        for k, name in index.streets[c].items():
            score = street_score(key, k)
            if score < _HINT_SCORE:
                continue
            hit = index.addresses.get((c, k, num, suf))
            place = index.names.get(c, c)
            if hit is not None and not _has_point(hit):
                pointless.append((score, name))
            elif hit is not None:
                label = f"{num}{suf.lower()} {name} {place}".strip()
                cands.append(
                    Candidate(
                        label,
                        round(score, 3),
                        hit["lon"],
                        hit["lat"],
                        c,
                        "housenumber",
                        tuple(p for p in hit["parcelles"].split("|") if p),
                    )
                )
            else:
                street_only.append((score, c, k, name))
    if any(c.score >= MIN_SCORE for c in cands):
        return _decide(query, cands, source)
    pointless = [x for x in pointless if x[0] >= MIN_SCORE]
    if pointless:
        why = (
            f"adresse « {query} » sans point : le n° {num}{suf.lower()} de la voie « {max(pointless)[1]} » "
            "est dans le fichier d'adresses mais ses coordonnées manquent ou sont invalides (lon/lat)"
        )
        return Geocoded(query, INTROUVABLE, [], why, source)
    street_only = [x for x in street_only if x[0] >= MIN_SCORE]
    if street_only:
        score, c, k, name = max(street_only)
        known = sorted(index.numbers[(c, k)], key=lambda n: (len(n), n))
        why = (
            f"adresse « {query} » introuvable : numéro {num}{suf.lower()} absent de la voie « {name} » "
            f"(numéros connus : {', '.join(known[:12])}{'…' if len(known) > 12 else ''})"
        )
        return Geocoded(query, INTROUVABLE, [], why, source)
    names = {k: n for c in codes for k, n in index.streets[c].items()}
    close = sorted(((street_score(key, k), n) for k, n in names.items()), reverse=True)
    close = [n for sc, n in close[:3] if sc >= _HINT_SCORE]
    hint = f" (voies proches : {', '.join(close)})" if close else ""
    return Geocoded(query, INTROUVABLE, [], f"adresse « {query} » introuvable : voie inconnue{hint}", source)


# --------------------------------------------------------------------------------------------
# From an address to the parcel that holds its point

#: Where the address files of the BAN are published (also the cache paths looked at offline).
BAN_DEPARTEMENT_URL = "https://adresse.data.gouv.fr/data/ban/adresses/latest/csv/adresses-{dep}.csv.gz"
BAN_COMMUNE_URL = "https://plateforme.adresse.data.gouv.fr/ban/communes/{insee}/download/csv-legacy/adresses"
BAL_COMMUNE_URL = "https://plateforme.adresse.data.gouv.fr/ban/communes/{insee}/download/csv-bal/adresses"
#: An address point outside every parcel (on the street) goes to the nearest parcel within this
#: distance (metres).
MAX_DISTANCE_M = 30.0


def _departement(code_insee: str) -> str:
    return code_insee[:3] if code_insee.startswith("97") else code_insee[:2]


def cached_address_file(communes: list[str] | tuple[str, ...]) -> Path | None:
    """An address file of these communes already in the download cache (BAL, BAN commune, BAN département)."""
    from geo.sources import http

    for code in communes:
        for url in (
            BAL_COMMUNE_URL.format(insee=code),
            BAN_COMMUNE_URL.format(insee=code),
            BAN_DEPARTEMENT_URL.format(dep=_departement(code)),
        ):
            path = http.cache_path(url)
            if path.is_file():
                return path
    return None


def load_address_index(
    path: str | Path | None = None, *, communes: list[str] | tuple[str, ...] | None = None
) -> AddressIndex | None:
    """The address index to geocode with offline: ``path`` (BAN or BAL CSV), else the file
    shipped with ort for these communes (the demo's), else, when ``settings.offline``, a file of
    the communes found in the cache; None to use the BAN API."""
    if path is None and communes:
        path = embedded.address_file(communes)
    if path is None and settings.offline and communes:
        path = cached_address_file(communes)
    if path is None:
        return None
    return index_addresses(read_addresses(path, communes=list(communes) if communes else None))


def geocode(
    query: str, *, index: AddressIndex | None = None, communes: list[str] | tuple[str, ...] | None = None
) -> Geocoded:
    """Geocode with an address file when one is given, else with the BAN API (cached)."""
    if index is not None:
        return geocode_in_table(query, index, communes=communes)
    citycode = communes[0] if communes and len(communes) == 1 else None
    return geocode_online(query, citycode=citycode)


@dataclass
class AddressParcel:
    """An address, where it was found, and the parcel that holds its point.

    ``idu`` is None when the address is ambiguous, not found, or its point lies on no parcel of
    the cadastre given; ``message`` then says so in French.
    """

    query: str
    geocoded: Geocoded
    idu: str | None = None
    distance_m: float | None = None
    message: str = ""

    def to_dict(self) -> dict:
        """JSON-ready, with French keys (``ort check --json``)."""
        c = self.geocoded.best
        return {
            "adresse": self.query,
            "statut": self.geocoded.status,
            "libelle": c.label if c else None,
            "score": round(c.score, 3) if c else None,
            "lon": c.lon if c else None,
            "lat": c.lat if c else None,
            "source": self.geocoded.source,
            "idu": self.idu,
            "distance_m": None if self.distance_m is None else round(self.distance_m, 1),
            "message": self.message or self.geocoded.message or None,
            "candidats": [
                {"libelle": x.label, "score": round(x.score, 3), "code_insee": x.code_insee}
                for x in self.geocoded.candidates
            ],
        }

    def match_line(self) -> str:
        """``Adresse trouvée : « label » (score 0,97 ; source)``."""
        c = self.geocoded.best
        if c is None:
            return self.geocoded.message
        return f"Adresse trouvée : « {c.label} » (score {_fmt_score(c.score)} ; {self.geocoded.source})"

    def describe(self) -> str:
        """The French answer printed by the CLI."""
        lines = [f"Adresse « {self.query} »"]
        if self.geocoded.status in (AMBIGUE, INTROUVABLE):
            lines.append(f"  → {self.geocoded.message}")
            return "\n".join(lines)
        lines.append(f"  → {self.match_line()}")
        if self.idu:
            where = f"parcelle {self.idu[8:10].lstrip('0') or '0'} {int(self.idu[10:])} ({self.idu})"
            lines.append(f"  → {where}" + (f" — {self.message}" if self.message else ""))
        else:
            lines.append(f"  → {self.message}")
        return "\n".join(lines)


def parcel_at(
    lon: float, lat: float, parcels, *, max_distance_m: float = MAX_DISTANCE_M
) -> tuple[str | None, float | None]:
    """The parcel holding a point (WGS84 degrees), else the nearest within ``max_distance_m``.

    Parameters
    ----------
    parcels : GeoDataFrame
        With ``idu``, metric CRS (metres).

    Returns
    -------
    (idu, distance in metres) — distance 0 when the point is on the parcel; (None, None) when
    no parcel is close enough.
    """
    import geopandas as gpd

    from geo import projection

    pt = gpd.GeoSeries(gpd.points_from_xy([lon], [lat]), crs=projection.WGS84).to_crs(parcels.crs).iloc[0]
    hit = parcels.sindex.query(pt, predicate="intersects")
    if len(hit):
        return str(parcels["idu"].iloc[int(sorted(hit)[0])]), 0.0
    near, dist = parcels.sindex.nearest(pt, max_distance=max_distance_m, return_distance=True)
    if len(near[1]):
        k = int(near[1][0])
        return str(parcels["idu"].iloc[k]), float(dist[0])
    return None, None


def parcels_for_addresses(
    queries: list[str],
    parcels,
    *,
    index: AddressIndex | None = None,
    communes: list[str] | tuple[str, ...] | None = None,
    max_distance_m: float = MAX_DISTANCE_M,
) -> list[AddressParcel]:
    """Geocode each address and find the parcel that contains its point.

    Parameters
    ----------
    queries : list of str
        Addresses as written, e.g. ``"12 rue Jean Jaurès, 62820 Libercourt"``.
    parcels : GeoDataFrame
        The cadastre (``idu``), metric CRS.
    index : AddressIndex, optional
        An address file (offline); without it the BAN API is asked (answers cached).
    communes : list of str, optional
        The communes searched (the convention's).

    Returns
    -------
    list of AddressParcel
        One per query, in order; ambiguity and "not found" are answers (``idu`` None), not errors.
    """
    out = []
    for query in queries:
        g = geocode(query, index=index, communes=communes)
        ans = AddressParcel(query, g)
        best = g.best
        if best is not None:
            if communes and best.code_insee and best.code_insee not in communes:
                ans.message = (
                    f"l'adresse est dans la commune {best.code_insee}, hors de la convention "
                    f"({', '.join(communes)})"
                )
            else:
                idu, dist = parcel_at(best.lon, best.lat, parcels, max_distance_m=max_distance_m)
                known = [p for p in best.parcelles if p in set(parcels["idu"])]
                if idu is not None and dist == 0:
                    ans.idu, ans.distance_m = idu, 0.0
                elif known:  # a BAL links its address to its parcel(s): trust the commune's link
                    ans.idu, ans.message = (
                        known[0],
                        "parcelle donnée par la Base Adresse Locale (cad_parcelles)",
                    )
                elif idu is not None:
                    ans.idu, ans.distance_m = idu, dist
                    ans.message = (
                        "point d'adresse hors parcelle (sur la voie) : parcelle la plus proche, "
                        f"à {dist:.0f} m"
                    )
                else:
                    ans.message = (
                        "aucune parcelle du cadastre chargé (millésime "
                        f"{parcels.attrs.get('millesime', 'inconnu')}) "
                        f"à moins de {max_distance_m:.0f} m du point d'adresse"
                    )
        out.append(ans)
    return out
