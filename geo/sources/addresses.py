"""Address files (BAN, BAL) and finding a written address in them.

Two real layouts are read (see ``../shared/data/ban-bal-sample/``):

- the **Base Adresse Nationale** per département, ``adresses-{dep}.csv.gz`` (``code_insee``,
  ``numero``, ``rep``, ``nom_voie``, ``lon``, ``lat``, optional ``cad_parcelles``);
- a **Base Adresse Locale** (BAL 1.x) export of a commune (``commune_insee``, ``numero``,
  ``suffixe``, ``voie_nom``, ``long``, ``lat``, ``position``, ``cad_parcelles``), whose
  ``cad_parcelles`` links each address to its parcels.

:func:`read_addresses` gives one table for both; :func:`index_addresses` and
:func:`find_address` match an address written by hand (a landlord's file: number, suffix,
street type and name, or one free-text ``adresse``) and, when it is not found, say why in
French (unknown street with the closest names, number absent with the known ones…).
Street names are compared by :func:`voie_key`: upper case, no accents, FANTOIR / RPLS
abbreviations of street types expanded, small words left out.
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from geo.errors import InputError
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
_SUFFIXES = {"BIS": "B", "TER": "T", "QUATER": "Q", "QUINQUIES": "C"}
_ADDRESS = re.compile(
    r"^\s*(?P<num>\d+)\s*(?P<suf>bis|ter|quater|[a-z])?\b[\s,]*(?P<voie>.+)$", re.IGNORECASE
)
_NULLS = ("", "nan", "na", "none", "null")
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
        words[0] = _VOIE_TYPES.get(words[0], words[0])
    return " ".join(w for w in words if w not in _SMALL_WORDS)


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


# --------------------------------------------------------------------------------------------
# Reading


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
        head = pd.read_csv(path, sep=";", dtype=str, nrows=0)
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
            {"commune_insee": "code_insee", "suffixe": "suffixe", "voie_nom": "voie", "long": "lon"},
        )
    elif {"code_insee", "nom_voie"} <= cols:
        fmt, names = (
            "BAN",
            {"code_insee": "code_insee", "rep": "suffixe", "nom_voie": "voie", "type_position": "position"},
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
        chunks = pd.read_csv(
            path, sep=";", dtype=str, keep_default_na=False, index_col=False, chunksize=200_000
        )
        for chunk in chunks:
            chunk = chunk.rename(columns=names)
            if wanted is not None:
                chunk = chunk[chunk["code_insee"].isin(wanted)]
            parts.append(chunk)
    except _READ_ERRORS as err:
        raise InputError(
            f"fichier d'adresses illisible ({' '.join(str(err).split())[:200]})",
            source=src,
            fix="retéléchargez-le (BAN : adresses-{dep}.csv.gz ; BAL : export CSV de la commune)",
        ) from None
    df = pd.concat(parts, ignore_index=True) if parts else head.rename(columns=names)
    empty = pd.Series([""] * len(df), index=df.index)
    out = pd.DataFrame(
        {
            "code_insee": df["code_insee"].astype(str),
            "numero": [number_key(v) for v in df["numero"]],
            "suffixe": [suffix_key(v) for v in df.get("suffixe", empty)],
            "voie": df["voie"].astype(str),
            "voie_key": [voie_key(v) for v in df["voie"]],
            "lon": [_float(v) for v in df["lon"]],
            "lat": [_float(v) for v in df["lat"]],
            "parcelles": ["|".join(split_list(v)) for v in df.get("cad_parcelles", empty)],
            "position": df.get("position", empty).astype(str),
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
    """

    addresses: dict = field(default_factory=dict)
    numbers: dict = field(default_factory=dict)
    streets: dict = field(default_factory=dict)
    format: str = "BAN"


def index_addresses(addresses: pd.DataFrame) -> AddressIndex:
    """Index an address table (from :func:`read_addresses`) for :func:`find_address`."""
    index = AddressIndex(format=addresses.attrs.get("format", "BAN"))
    for rec in addresses.to_dict("records"):
        code, key = rec["code_insee"], rec["voie_key"]
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
            if not all(isinstance(hit[k], float) and math.isfinite(hit[k]) for k in ("lon", "lat")):
                return (
                    None,
                    f"n° {num} de la voie « {voie.strip()} » sans coordonnées dans le fichier d'adresses",
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
