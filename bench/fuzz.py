"""Fuzz the readers with Hypothesis for a fixed time budget per target (not a unit test).

Goal: whatever the input, a reader either returns or raises one of the project's own errors
(:class:`geo.errors.OrtError`); warnings are counted, not failures. Any other exception
(KeyError, TypeError, a raw GDAL or JSON error, RecursionError…) is a crash. Crashes are
grouped by exception type and the deepest ``geo/`` frame; the first input of each group is
shrunk by Hypothesis, and the smallest input seen is recorded with the traceback's last line.
A few invariants are checked too (a parsed IDU parses to itself, ``parse_many`` never
raises, output columns and CRS): a violation is recorded as an ``InvariantViolation``.

Targets: ``idu`` (``parse_idu`` / ``parse_many``), ``perimeters`` (``read_convention`` on a
generated ``convention.toml`` + GeoJSON, then every version's perimeters), ``id_table``
(``geo.check.read_id_table``), ``friches``, ``housing`` (``read_housing`` + ``locate_sites``),
``actions`` (``read_register`` + dashboard), ``lists`` (the national-list readers), and the
hardening classes: ``paths`` (ids as file names never leave the output folder), ``spreadsheets``
(CSV/XLSX text never a live formula, numbers unchanged) and ``sizes`` (decompression bombs,
encodings, the size limit of user tables). Inputs
are generated from the real layouts, then broken: wrong types, NaN/infinite/enormous or
swapped coordinates, codes as numbers, dates in other formats, path-like and HTML values,
other encodings and separators, truncated or mutated bytes, gzip, deep nesting.

Run (total ≤ 10 min with the default targets)::

    python3 bench/fuzz.py --budget 60            # seconds per target, writes bench/FUZZ.md
    python3 bench/fuzz.py --budget 10 --targets idu,actions --seed 3 --out /tmp/FUZZ.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import io
import json
import math
import platform
import re
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import hypothesis
import pandas as pd
from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis import strategies as st

from geo import settings as ort_settings
from geo.errors import OrtError

ROOT = Path(__file__).resolve().parent.parent
GEO_DIR = str(ROOT / "geo")
CHUNK = 40  # examples per Hypothesis run; the budget is checked between and within runs
SHRINK_SECONDS = 1.5  # at most this long shrinking the first input of each new crash group


class InvariantViolation(AssertionError):
    """A reader returned, but its result breaks a documented property."""


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise InvariantViolation(what)


# ------------------------------------------------------------------------------------------------
# Building blocks

HTML = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
NASTY = [
    "", " ", "NA", "nan", "NaN", "NULL", "None", "{}", "[]", "../../etc/passwd", "/etc/passwd", HTML,
    "\x00", "\ufeff", "é", '="01004"', "1e400", "inf", "-inf", "0", "-1", "1,5", "12 000 €", "2023-13-45",
    "18/01/2023", "2023/01/18", "01/2021", "a\nb", '"', "'", ";", ",", "|", "\t", "\\", "{a,\"b\"}",
    "62907000AB0685", "62907 000 AB 0685", "AB 685", "629O7000AB0685", "2A0040000A0012", "1004",
]  # fmt: skip


def texts(max_size: int = 24) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(NASTY), st.text(max_size=max_size))


INSEE_TEXT = st.one_of(
    st.from_regex(r"\A(?:[0-9]{5}|2[AB][0-9]{3})\Z"),
    st.sampled_from(["62907", "01004", "2A004", "2B033", "97411", "62999", "75056", "99999", "00000"]),
)
INSEE_ANY = st.one_of(
    INSEE_TEXT,
    st.integers(-10, 100_000),
    st.integers(0, 99_999).map(str),
    st.from_regex(r"\A\d{5}\Z"),  # any Unicode digits: "isdigit" but not ASCII
    texts(6),
)
FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf, 1e300, -1e300, 5e-324, 1e16]),
)
WGS84_XY = st.tuples(st.floats(-6.0, 10.0), st.floats(41.0, 51.6))
LAMBERT_XY = st.tuples(st.floats(50_000, 1_300_000), st.floats(6_000_000, 7_200_000))
ANY_XY = st.one_of(
    WGS84_XY,
    WGS84_XY.map(lambda p: (p[1], p[0])),  # swapped
    LAMBERT_XY,
    st.tuples(FLOATS, FLOATS),
)
DATES = st.one_of(
    st.dates(dt.date(1800, 1, 1), dt.date(2200, 12, 31)),
    st.dates(dt.date(1990, 1, 1), dt.date(2035, 12, 31)).map(
        lambda d: d.strftime(["%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%Y/%m/%d", "%d/%m/%y", "%m/%Y"][d.day % 6])
    ),
    st.integers(-5, 3000),
    texts(12),
)
JSON_ANY = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), FLOATS, texts(12)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts(8), inner, max_size=3)),
    max_leaves=8,
)
MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["delete", "insert", "replace", "truncate"]),
        st.floats(0, 1),
        st.binary(min_size=1, max_size=6),
    ),
    max_size=3,
)
# About one input in 50 is a deep nesting of JSON or TOML arrays.
DEPTH = st.integers(0, 49).map(lambda k: 3000 if k == 25 else 0)


def often(valid: st.SearchStrategy, broken: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly the valid value (three times in four), so that inputs get past the first check."""
    # (st.one_of(valid, valid, valid, broken) would not do: it merges repeated strategies)
    return st.sampled_from([valid, valid, valid, broken]).flatmap(lambda strategy: strategy)


SOME_MUTATIONS = often(st.just([]), MUTATIONS)


def mutate(data: bytes, mutations: list[tuple[str, float, bytes]]) -> bytes:
    """Delete, insert, overwrite bytes or truncate, at relative positions."""
    for op, where, chunk in mutations:
        i = int(where * len(data))
        if op == "delete":
            data = data[:i] + data[i + len(chunk) :]
        elif op == "insert":
            data = data[:i] + chunk + data[i:]
        elif op == "replace":
            data = data[:i] + chunk + data[i + len(chunk) :]
        else:
            data = data[:i]
    return data


def json_bytes(value) -> bytes:
    return json.dumps(value, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")


def deep(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


def _square(center: tuple[float, float], size: float) -> list[list[float]]:
    x, y = center
    return [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]


RING = st.one_of(
    st.builds(_square, ANY_XY, st.one_of(st.floats(1e-6, 0.01), st.floats(1, 500), FLOATS)),
    st.lists(ANY_XY.map(list), max_size=6),
    st.builds(lambda r: r + r[:1], st.lists(ANY_XY.map(list), min_size=3, max_size=5)),  # closed
)
GEOMETRY = st.one_of(
    RING.map(lambda r: {"type": "Polygon", "coordinates": [r]}),
    st.lists(RING, min_size=1, max_size=3).map(
        lambda rs: {"type": "MultiPolygon", "coordinates": [[r] for r in rs]}
    ),
    ANY_XY.map(lambda p: {"type": "Point", "coordinates": list(p)}),
    st.builds(lambda t, c: {"type": t, "coordinates": c}, texts(12), JSON_ANY),
    st.none(),
    JSON_ANY,
)


def toml_value(value) -> str:
    """TOML text of a generated value (invalid TOML is fine: the reader must refuse it cleanly)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value))


def toml_key(key) -> str:
    key = str(key)
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def toml_document(top: dict, tables: dict[str, dict], arrays: dict[str, list[dict]]) -> str:
    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in top.items()]
    for name, table in tables.items():
        lines += [f"[{name}]", *(f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items())]
    for name, items in arrays.items():
        for item in items:
            lines.append(f"[[{name}]]")
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    """A value, or the key left out (``...``)."""
    return st.one_of(strategy, strategy, st.just(...))


def drop_missing(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not ...}


def encode_csv(header: list[str], rows: list[list[str]], sep: str, encoding: str, quote: bool) -> bytes:
    def cell(v: str) -> str:
        return '"' + v.replace('"', '""') + '"' if quote else v

    text = "\n".join(sep.join(cell(str(v)) for v in line) for line in [header, *rows]) + "\n"
    return text.encode(encoding, "replace") if encoding != "utf-8" else text.encode("utf-8", "surrogatepass")


CSV_DIALECT = st.tuples(
    st.sampled_from([";", ",", "\t", "|"]),
    st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16"]),
    st.booleans(),
)


def table_file(columns: dict[str, st.SearchStrategy], suffixes: list[str]) -> st.SearchStrategy:
    """(suffix, bytes) of a table with some of ``columns`` (some renamed), broken in various ways."""

    @st.composite
    def build(draw):
        if draw(st.booleans()):  # every column, in the usual order
            names = list(columns)
        else:
            names = draw(st.lists(st.sampled_from(list(columns)), max_size=len(columns), unique=True))
        # now and then a column is renamed, upper-cased or replaced by junk
        header = [draw(st.sampled_from([n, n, n, n, n.upper(), f" {n}", f"{n}_2"])) for n in names]
        if names and draw(st.integers(0, 5)) == 0:
            header[draw(st.integers(0, len(names) - 1))] = draw(texts(10))
        n_rows = draw(st.integers(0, 4))
        rows = [[draw(columns[n]) for n in names] for _ in range(n_rows)]
        suffix = draw(st.sampled_from(suffixes))
        kind = draw(st.integers(0, 9))
        if kind == 0 and ".xlsx" in suffixes:
            return ".xlsx", Blob.of(
                xlsx_bytes(header, rows), f"XLSX workbook of the rows {[header, *rows]!r}"
            )
        if kind == 1:
            records = [dict(zip(header, r, strict=False)) for r in rows]
            return ".json", json_bytes(records if draw(st.booleans()) else draw(JSON_ANY))
        sep, encoding, quote = draw(CSV_DIALECT)
        data = encode_csv(header, rows, sep, encoding, quote)
        if suffix.endswith(".gz"):
            data = gzip.compress(data, mtime=0) if draw(st.booleans()) else data
        return suffix, mutate(data, draw(SOME_MUTATIONS))

    return build()


class Blob(bytes):
    """File content that remembers how it was made (an XLSX is unreadable as bytes)."""

    note = ""

    @classmethod
    def of(cls, data: bytes, note: str) -> Blob:
        blob = cls(data)
        blob.note = note
        return blob


def xlsx_bytes(header: list[str], rows: list[list]) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    for line in [header, *rows]:
        ws.append([re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "", str(v)) for v in line])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def cell(strategy: st.SearchStrategy | None = None) -> st.SearchStrategy[str]:
    return often(strategy.map(str), texts(16)) if strategy is not None else texts(16)


# ------------------------------------------------------------------------------------------------
# Targets


@dataclass
class Target:
    name: str
    what: str
    strategy: st.SearchStrategy
    run: Callable[[object, Path], None]
    describe: Callable[[object], str] = repr


def _fresh(work: Path) -> Path:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    return work


def _write(work: Path, name: str, data: bytes) -> Path:
    path = _fresh(work) / name
    path.write_bytes(data)
    return path


def _describe_file(data) -> str:
    suffix, content = data[0], data[1]
    if getattr(content, "note", ""):
        return f"{suffix} {content.note[:1200]}"
    return f"{suffix} {bytes(content[:600])!r}" + (f" … ({len(content)} bytes)" if len(content) > 600 else "")


# --- idu ----------------------------------------------------------------------------------------

IDU_TEXT = st.builds(
    lambda insee, pre, sec, num, sep, case: case(
        sep.join(p for p in (insee, pre, sec, num) if p is not None)
    ),
    often(INSEE_TEXT, st.one_of(st.integers(0, 99999).map(str), st.none())),
    often(st.just("000"), st.one_of(st.from_regex(r"\A\d{1,3}\Z"), st.none())),
    often(st.from_regex(r"\A[0-9A-Z]?[A-Z]\Z"), st.from_regex(r"\A[0-9A-Za-z]{1,3}\Z")),
    often(
        st.integers(1, 9999).map(lambda n: f"{n:04d}"), st.one_of(st.integers(0, 99999).map(str), texts(4))
    ),
    often(st.sampled_from(["", " "]), st.sampled_from(["-", "/", ".", "\t", "\u00a0", "  ", "_", "\n"])),
    often(st.just(str), st.sampled_from([str.lower, lambda s: s.replace("0", "O"), lambda s: f" {s} "])),
)
IDU_DATA = st.tuples(
    often(IDU_TEXT, texts(20)),
    often(st.one_of(st.none(), INSEE_TEXT), INSEE_ANY),
    often(st.none(), st.lists(st.one_of(INSEE_TEXT, texts(5)), max_size=3)),
    often(st.none(), st.lists(st.one_of(st.from_regex(r"\A[0-9A-Z]{1,2}\Z"), texts(3)), max_size=3)),
    st.lists(st.one_of(IDU_TEXT, texts(20), st.integers(), FLOATS, st.none()), max_size=5),
)


def run_idu(data, work: Path) -> str | None:
    """parse_idu, then parse_many on a list holding the same text; 'refused' when parse_idu refused."""
    from geo.idu import ParcelId, parse_idu, parse_many

    text, code, communes, sections, many = data
    status = None
    try:
        pid = parse_idu(text, code_insee=code, communes=communes, sections=sections)
    except OrtError as err:
        _require("\n" not in str(err), f"multi-line {type(err).__name__} message {str(err)!r}")
        status = "refused"
    else:
        _require(len(pid.idu) == 14, f"idu {pid.idu!r} is not 14 characters")
        _require(pid.idu == pid.code_insee + pid.prefixe + pid.section + pid.numero, f"parts of {pid!r}")
        _require(parse_idu(pid.idu).idu == pid.idu, f"{pid.idu!r} does not parse to itself")
    try:
        valid, rejected = parse_many(many + [text], code_insee=code, communes=communes, sections=sections)
    except Exception as err:  # documented: "Never raises for the identifiers themselves"
        raise InvariantViolation(f"parse_many raised {type(err).__name__}: {err}") from err
    _require(all(isinstance(p, ParcelId) for p in valid), "parse_many returned a non-ParcelId")
    _require(all(isinstance(t, str) and isinstance(m, str) for t, m in rejected), "rejected not (str, str)")
    _require(len(valid) + len(rejected) <= len(many) + 1, "more results than inputs")
    if status == "refused":  # parse_many agrees with parse_idu on the same text and options
        _require(any(t == text for t, _ in rejected), f"{text!r} refused alone but not in a list")
    else:
        _require(pid in valid, f"{text!r} accepted alone but not in a list")
    return status


# --- perimeters ---------------------------------------------------------------------------------

PERIMETER_PROPS = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(
            st.sampled_from(["centre-ville", "gare", "ort", "opah"]), texts(10), st.integers(), st.none()
        ),
        "type": st.one_of(st.sampled_from(["secteur", "opah_ru", "autre", "ort", "Secteur"]), JSON_ANY),
        "nom": st.one_of(texts(20), st.just(HTML), JSON_ANY),
        "centre_ville": st.one_of(st.booleans(), JSON_ANY),
        "commune": st.one_of(INSEE_ANY, JSON_ANY),
        "date_debut": st.one_of(
            DATES.map(lambda d: d.isoformat() if isinstance(d, dt.date) else d), JSON_ANY
        ),
        "date_fin": st.one_of(DATES.map(lambda d: d.isoformat() if isinstance(d, dt.date) else d), JSON_ANY),
    },
)
FEATURE = st.one_of(
    st.builds(lambda p, g: {"type": "Feature", "properties": p, "geometry": g}, PERIMETER_PROPS, GEOMETRY),
    st.builds(lambda p, g: {"type": "Feature", "properties": p, "geometry": g}, JSON_ANY, GEOMETRY),
    JSON_ANY,
)
CRS_TEXT = st.one_of(
    st.sampled_from(["EPSG:4326", "EPSG:2154", "EPSG:3950", "EPSG:2975", "OGC:CRS84"]), texts(12)
)
VERSION = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.sampled_from(["initiale", "avenant-1"]), texts(8), st.integers()),
        "libelle": texts(20),
        "date_effet": st.one_of(DATES, st.just(dt.date(2023, 3, 15))),
        "date_fin": DATES,
        "fichier": st.one_of(
            st.just("p.geojson"),
            st.sampled_from(
                ["../../etc/passwd", "/etc/passwd", "p.gpkg", "p.shp", "absent.geojson", "sub/p.json"]
            ),
            texts(12),
            st.integers(),
        ),
    },
)
CONVENTION = st.fixed_dictionaries(
    {
        "nom": often(st.just("ORT de test"), maybe(st.one_of(texts(20), st.just(HTML)))),
        "programme": often(
            st.just("PVD"), maybe(st.one_of(st.sampled_from(["ACV", "autre", "XYZ"]), st.integers()))
        ),
        "communes": often(st.just(["62907"]), maybe(st.one_of(st.lists(INSEE_ANY, max_size=3), INSEE_ANY))),
        "date_signature": often(st.just(dt.date(2023, 1, 18)), maybe(DATES)),
        "duree_ans": often(st.just(5), maybe(st.one_of(st.integers(-2, 12), FLOATS, texts(4)))),
        "crs": often(st.just("EPSG:4326"), maybe(st.one_of(CRS_TEXT, st.integers()))),
        "fictif": maybe(st.one_of(st.booleans(), texts(4))),
        "cadastre_dir": st.one_of(
            st.just(...), st.sampled_from(["../../data", "/nonexistent", "../../../../etc"])
        ),
    }
)
VALID_VERSIONS = [
    {
        "id": "initiale",
        "libelle": "Convention initiale",
        "date_effet": dt.date(2023, 1, 18),
        "fichier": "p.geojson",
    },
    {"id": "avenant-1", "libelle": "Avenant n°1", "date_effet": dt.date(2024, 7, 1), "fichier": "p.geojson"},
]
SECTOR = st.builds(
    lambda pid, kind, nom, cv, center, size: {
        "type": "Feature",
        "properties": {"id": pid, "type": kind, "nom": nom, "centre_ville": cv},
        "geometry": {"type": "Polygon", "coordinates": [_square(center, size)]},
    },
    st.sampled_from(["centre-ville", "gare", "faubourg", "opah-ru-centre"]),
    st.sampled_from(["secteur", "secteur", "opah_ru", "autre"]),
    st.one_of(texts(16), st.just(HTML)),
    st.booleans(),
    st.tuples(st.floats(3.0, 3.02), st.floats(50.47, 50.49)),
    st.floats(0.0005, 0.01),
)
PERIMETERS_DATA = st.fixed_dictionaries(
    {
        "convention": CONVENTION,
        "versions": often(
            st.sampled_from([VALID_VERSIONS[:1], VALID_VERSIONS]),
            st.one_of(st.lists(VERSION, max_size=3), st.just([])),
        ),
        "features": often(
            st.lists(SECTOR, min_size=1, max_size=3, unique_by=lambda f: f["properties"]["id"]),
            st.lists(st.one_of(SECTOR, FEATURE), max_size=4),
        ),
        "members": often(
            st.just({}),
            st.fixed_dictionaries(
                {},
                optional={
                    "crs": st.one_of(
                        st.builds(lambda n: {"type": "name", "properties": {"name": n}}, CRS_TEXT), JSON_ANY
                    ),
                    "type": texts(20),
                },
            ),
        ),
        "toml_mutations": SOME_MUTATIONS,
        "json_mutations": SOME_MUTATIONS,
        "depth": DEPTH,
    }
)


def perimeter_files(data) -> tuple[bytes, bytes]:
    conv = drop_missing(dict(data["convention"]))
    toml = toml_document(conv, {}, {"versions": data["versions"]}).encode("utf-8", "surrogatepass")
    if data["depth"]:
        toml += f"extra = {deep(data['depth'])}\n".encode()
    fc = {"type": "FeatureCollection", **data["members"], "features": data["features"]}
    geojson = json_bytes(fc) if not data["depth"] else deep(data["depth"]).encode()
    return mutate(toml, data["toml_mutations"]), mutate(geojson, data["json_mutations"])


def run_perimeters(data, work: Path) -> None:
    from geo.perimeters import PERIMETER_COLUMNS, read_convention

    toml, geojson = perimeter_files(data)
    folder = _fresh(work) / "conv"
    folder.mkdir()
    (folder / "convention.toml").write_bytes(toml)
    for ver in data["versions"]:
        name = ver.get("fichier")
        if (
            isinstance(name, str)
            and name
            and "/" not in name
            and "\x00" not in name
            and name not in (".", "..")
        ):
            try:
                (folder / name).write_bytes(geojson)
            except OSError:
                pass
    conv = read_convention(folder)
    _require(conv.date_fin >= conv.date_signature, f"date_fin {conv.date_fin} before the signature")
    for ver in conv.versions[:3]:
        perims = conv.perimeters(version=ver.id)
        _require(list(perims.columns) == PERIMETER_COLUMNS, f"columns {list(perims.columns)}")
        _require(perims.crs is not None and perims.crs.is_projected, f"CRS {perims.crs}")
    if conv.versions:
        conv.perimeters(conv.versions[-1].date_effet, in_force_only=True)


def describe_perimeters(data) -> str:
    toml, geojson = perimeter_files(data)
    return f"convention.toml {toml[:500]!r}\nperimetres {geojson[:600]!r}"


# --- parcel-id spreadsheets ---------------------------------------------------------------------

ID_COLUMNS = {
    "idu": cell(IDU_TEXT),
    "id": cell(IDU_TEXT),
    "Parcelle": cell(IDU_TEXT),
    "ref_cadastrale": cell(IDU_TEXT),
    "commune": cell(INSEE_ANY),
    "commentaire": texts(20),
    "autre": texts(8),
}
ID_TABLE_DATA = st.one_of(
    table_file(ID_COLUMNS, [".csv", ".txt", ".xlsx", ".xls", "", ".CSV"]),
    st.tuples(st.sampled_from([".csv", ".xlsx", ".xls"]), st.binary(max_size=200)),
    st.tuples(st.just(".xlsx"), st.binary(max_size=60).map(lambda b: b"PK\x03\x04" + b)),
)


def run_id_table(data, work: Path) -> None:
    from geo.check import read_id_table
    from geo.idu import parse_many

    suffix, content = data
    rows = read_id_table(_write(work, f"ids{suffix}", content))
    _require(all(isinstance(t, str) and (c is None or isinstance(c, str)) for t, c in rows), "row types")
    for text, code in rows[:10]:
        parse_many([text], code_insee=code)


# --- friches ------------------------------------------------------------------------------------

STATUT = st.one_of(
    st.sampled_from(
        ["friche sans projet", "Friche avec PROJET", "reconvertie", "friche potentielle", "en friche"]
    ),
    texts(12),
)
PG_ARRAY = st.one_of(
    st.lists(st.one_of(IDU_TEXT, texts(14)), max_size=4).map(lambda xs: "{" + ",".join(xs) + "}"),
    st.lists(st.one_of(IDU_TEXT, texts(14)), max_size=4).map("|".join),
    JSON_ANY,
)
FRICHE_PROPS = st.fixed_dictionaries(
    {},
    optional={
        "site_id": st.one_of(st.builds(lambda c, n: f"{c}_{n}", INSEE_TEXT, st.integers(0, 99999)), JSON_ANY),
        "site_nom": st.one_of(texts(20), st.just(HTML)),
        "site_statut": st.one_of(STATUT, JSON_ANY),
        "comm_insee": INSEE_ANY,
        "comm_nom": texts(12),
        "l_idpar": PG_ARRAY,
        "unite_fonciere_refcad": PG_ARRAY,
        "site_surface": st.one_of(FLOATS, texts(8), JSON_ANY),
        "unite_fonciere_surface": st.one_of(FLOATS, texts(8)),
        "proprio_nom": st.one_of(PG_ARRAY, texts(12)),
        "proprio_type": PG_ARRAY,
        "l_catpro3txt": PG_ARRAY,
    },
)
WKT = st.one_of(
    ANY_XY.map(lambda p: f"POINT ({p[0]} {p[1]})"),
    RING.map(lambda r: "POLYGON ((" + ", ".join(f"{x} {y}" for x, y in r) + "))"),
    st.sampled_from(
        ["POINT EMPTY", "POINT (3", "GEOMETRYCOLLECTION EMPTY", "LINESTRING (0 0, 1 1)", "NA", ""]
    ),
    texts(12),
)
CNIG_COLUMNS = {
    "site_id": cell(st.builds(lambda c, n: f"{c}_{n}", INSEE_TEXT, st.integers(0, 999))),
    "site_nom": texts(16),
    "site_statut": cell(STATUT),
    "comm_insee": cell(INSEE_ANY),
    "unite_fonciere_refcad": cell(PG_ARRAY.map(str)),
    "unite_fonciere_surface": cell(FLOATS),
    "geompoint": cell(WKT),
    "geomsurf": cell(WKT),
    "proprio_nom": texts(12),
}


@st.composite
def friches_file(draw):
    if draw(st.booleans()):
        suffix, content = draw(table_file(CNIG_COLUMNS, [".csv", ".csv.gz"]))
        return (suffix if suffix in (".csv", ".csv.gz") else ".csv"), content
    features = draw(
        st.lists(
            st.one_of(
                st.builds(
                    lambda p, g: {"type": "Feature", "properties": p, "geometry": g}, FRICHE_PROPS, GEOMETRY
                ),
                JSON_ANY,
            ),
            max_size=4,
        )
    )
    members = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "crs": st.one_of(
                    st.builds(lambda n: {"type": "name", "properties": {"name": n}}, CRS_TEXT), JSON_ANY
                )
            },
        )
    )
    depth = draw(DEPTH)
    data = (
        json_bytes({"type": "FeatureCollection", **members, "features": features})
        if not depth
        else deep(depth).encode()
    )
    suffix = draw(st.sampled_from([".geojson", ".json", ".geojson.gz"]))
    if suffix.endswith(".gz") and draw(st.booleans()):
        data = gzip.compress(data, mtime=0)
    return suffix, mutate(data, draw(MUTATIONS))


def run_friches(data, work: Path) -> None:
    from geo.places.friches import FRICHE_COLUMNS, friches_for_export, read_friches

    suffix, content = data
    layer = read_friches(_write(work, f"friches{suffix}", content))
    _require(list(layer.columns) == FRICHE_COLUMNS, f"columns {list(layer.columns)}")
    _require(layer.crs is not None and layer.crs.is_projected, f"CRS {layer.crs}")
    _require(all(isinstance(c, str) or pd.isna(c) for c in layer["code_insee"]), "code_insee not a string")
    friches_for_export(layer)


# --- social housing -----------------------------------------------------------------------------

NUMBER_TEXT = st.one_of(
    st.integers(-5, 500).map(str),
    FLOATS.map(str),
    st.sampled_from(["12,5", "1 200", "douze", "1e400", "inf"]),
)
HOUSING_COLUMNS = {
    "site_id": texts(8),
    "bailleur": st.one_of(st.sampled_from(["Pas-de-Calais Habitat", "SIA", HTML]), texts(12)),
    "programme": texts(16),
    "logements": NUMBER_TEXT,
    "nb_logements": NUMBER_TEXT,
    "annee": cell(DATES),
    "code_insee": cell(INSEE_ANY),
    "DEPCOM": cell(INSEE_ANY),
    "lon": cell(st.one_of(WGS84_XY.map(lambda p: p[0]), FLOATS)),
    "lat": cell(st.one_of(WGS84_XY.map(lambda p: p[1]), FLOATS)),
    "x": cell(st.one_of(LAMBERT_XY.map(lambda p: p[0]), FLOATS)),
    "y": cell(st.one_of(LAMBERT_XY.map(lambda p: p[1]), FLOATS)),
    "parcelles": cell(PG_ARRAY.map(str)),
    "adresse": texts(20),
    "NUMVOIE": NUMBER_TEXT,
    "NOMVOIE": texts(12),
}


def run_housing(data, work: Path) -> None:
    from geo.places.housing import SITE_COLUMNS, locate_sites, read_housing

    suffix, content = data
    sites = read_housing(_write(work, f"logements{suffix}", content))
    codes = sorted({c for c in sites["code_insee"] if isinstance(c, str) and re.fullmatch(r"\d{5}", c)})
    located = locate_sites(sites, metric_crs="EPSG:2154", communes=codes[:1] or None)
    _require(list(located.sites.columns) == SITE_COLUMNS, f"columns {list(located.sites.columns)}")
    _require(len(located.sites) == len(sites), "sites lost while locating")


# --- action register ----------------------------------------------------------------------------

ACTION_VALUE = st.one_of(
    texts(16), st.integers(-(10**30), 10**30), FLOATS, st.booleans(), DATES, st.lists(texts(8), max_size=3)
)
LOCALISATION = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "secteur": st.one_of(st.sampled_from(["centre-ville", "Centre-ville", "gare"]), ACTION_VALUE),
            "parcelles": st.one_of(
                st.lists(st.one_of(IDU_TEXT, st.integers(), texts(10)), max_size=3), ACTION_VALUE
            ),
            "commune": st.one_of(INSEE_ANY, ACTION_VALUE),
            "point": st.one_of(
                ANY_XY.map(list), st.lists(st.one_of(FLOATS, st.integers(), texts(4)), max_size=3)
            ),
            "fichier": st.one_of(
                st.sampled_from(["../../etc/passwd", "/etc/passwd", "a.geojson", ""]), texts(10)
            ),
            "autre": ACTION_VALUE,
        },
    ),
    ACTION_VALUE,
)
FINANCEMENT = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "financeur": st.one_of(st.sampled_from(["Anah", "Banque des Territoires", HTML]), ACTION_VALUE),
            "montant": st.one_of(st.integers(-10, 10**25), FLOATS, texts(10)),
            "statut": st.one_of(
                st.sampled_from(["acquis", "sollicité", "Sollicite", "refuse"]), ACTION_VALUE
            ),
        },
    ),
    ACTION_VALUE,
)
ACTION = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.sampled_from(["A1", "A2", "A1-06"]), ACTION_VALUE),
        "titre": st.one_of(texts(20), st.just(HTML)),
        "axe": st.one_of(st.integers(0, 4), st.sampled_from(["1", "2", "x"]), ACTION_VALUE),
        "statut": st.one_of(
            st.sampled_from(["en cours", "projetée", "Projetee", "réalisée", "fini"]), ACTION_VALUE
        ),
        "fiche_action": st.one_of(st.booleans(), ACTION_VALUE),
        "maitre_ouvrage": ACTION_VALUE,
        "partenaires": st.one_of(st.lists(texts(10), max_size=3), ACTION_VALUE),
        "budget": st.one_of(st.integers(-10, 10**25), FLOATS, texts(10)),
        "financements": st.one_of(st.lists(FINANCEMENT, max_size=3), ACTION_VALUE),
        "indicateurs": st.one_of(
            st.lists(st.one_of(texts(10), st.dictionaries(texts(5), ACTION_VALUE, max_size=2)), max_size=3),
            ACTION_VALUE,
        ),
        "date_debut": DATES,
        "date_fin": DATES,
        "avancement": st.one_of(st.integers(-10, 200), FLOATS, ACTION_VALUE),
        "localisation": LOCALISATION,
        "commentaire": st.one_of(texts(20), st.just(HTML)),
        "statu": ACTION_VALUE,
    },
)
ACTIONS_DATA = st.fixed_dictionaries(
    {
        "top": st.fixed_dictionaries(
            {}, optional={"titre": texts(20), "source": texts(10), "date_maj": DATES, "x": ACTION_VALUE}
        ),
        "axes": st.one_of(
            st.dictionaries(
                st.one_of(st.integers(0, 5).map(str), texts(4)),
                st.one_of(texts(12), ACTION_VALUE),
                max_size=4,
            ),
            st.just({"1": "Habitat", "2": "Commerce"}),
        ),
        "actions": st.lists(ACTION, max_size=4),
        "mutations": SOME_MUTATIONS,
        "depth": DEPTH,
    }
)


def register_bytes(data) -> bytes:
    tables = {"axes": data["axes"]} if data["axes"] is not None else {}
    text = toml_document(data["top"], tables, {"actions": data["actions"]})
    if data["depth"]:
        text += f"x = {deep(data['depth'])}\n"
    return mutate(text.encode("utf-8", "surrogatepass"), data["mutations"])


def run_actions(data, work: Path) -> None:
    from geo.places.actions import ACTIONS_TABLE_COLUMNS, dashboard, read_register

    reg = read_register(_write(work, "actions.toml", register_bytes(data)), strict=False)
    tables = dashboard(reg)
    _require(list(tables["actions"].columns) == ACTIONS_TABLE_COLUMNS, "actions table columns")
    _require(len(tables["actions"]) == len(reg.actions), "actions lost in the dashboard")


# --- national lists -----------------------------------------------------------------------------

FLAG = st.one_of(st.sampled_from(["true", "false", "VRAI", "oui", "1", "", "peut-être"]), texts(5))
LIST_COLUMNS = {
    "ort": {
        "Code commune": cell(INSEE_ANY),
        "Signée ?": st.one_of(st.sampled_from(["Signée", "Non signée", "En cours", ""]), texts(8)),
        "Si signée, date de signature": cell(DATES),
        "Commune": st.builds(lambda d, n: f"{d} - {n}", st.integers(1, 99), texts(10)),
        "Statut de la commune": st.sampled_from(["1. Commune ACV", "2. Commune PVD", "3. Autre", ""]),
        "ACV": FLAG,
        "PVD": FLAG,
        "Dernière actualisation": cell(DATES),
    },
    "acv": {
        "insee_com": cell(INSEE_ANY),
        "lib_com": texts(12),
        "id_acv": texts(8),
        "date_signature": cell(DATES),
    },
    "pvd": {
        "insee_com": cell(INSEE_ANY),
        "lib_com": texts(12),
        "id_pvd": texts(8),
        "date_signature": cell(DATES),
    },
    "qpv": {
        "insee_com": st.one_of(cell(INSEE_ANY), st.lists(INSEE_TEXT, max_size=3).map(";".join)),
        "code_qp": st.lists(st.from_regex(r"\AQN\d{7}\Z"), max_size=3).map(",".join),
        "lib_qp": texts(12),
    },
    "anah": {
        "code_insee": cell(INSEE_ANY),
        "type_operation": st.one_of(st.sampled_from(["OPAH-RU", "opah ru", "PIG", "OPAH_CD"]), texts(8)),
        "date_debut": cell(DATES),
        "date_fin": cell(DATES),
    },
    "programmes": {
        "insee_com": cell(INSEE_ANY),
        "lib_com": texts(12),
        "id_pvd": texts(8),
        "id_acv": texts(8),
    },
}
COMMUNE = st.one_of(
    st.fixed_dictionaries(
        {"code": INSEE_ANY},
        optional={
            "nom": texts(10),
            "type": st.sampled_from(
                ["commune-actuelle", "commune-deleguee", "arrondissement-municipal", "x"]
            ),
            "population": st.one_of(st.integers(-5, 10**7), FLOATS, texts(4)),
            "anciensCodes": st.one_of(st.lists(INSEE_TEXT, max_size=2), JSON_ANY),
            "chefLieu": INSEE_ANY,
            "departement": texts(3),
        },
    ),
    JSON_ANY,
)


@st.composite
def lists_file(draw):
    name = draw(st.sampled_from([*LIST_COLUMNS, "communes"]))
    if name == "communes":
        data = json_bytes(draw(st.one_of(st.lists(COMMUNE, max_size=4), JSON_ANY)))
        return name, ".json", mutate(data, draw(MUTATIONS))
    kind = draw(st.integers(0, 11))  # 0 GeoJSON, 1 random bytes, 2 deep JSON, else a table
    if kind == 0:  # GeoJSON, like the ACV and QPV files
        props = st.fixed_dictionaries({}, optional=LIST_COLUMNS[name])
        features = draw(
            st.lists(
                st.one_of(
                    st.builds(lambda p: {"type": "Feature", "properties": p, "geometry": None}, props),
                    JSON_ANY,
                ),
                max_size=4,
            )
        )
        return (
            name,
            ".geojson",
            mutate(json_bytes({"type": "FeatureCollection", "features": features}), draw(MUTATIONS)),
        )
    if kind == 1:
        return (
            name,
            ".csv",
            draw(st.one_of(st.binary(max_size=100), st.binary(max_size=60).map(lambda b: b"PK\x03\x04" + b))),
        )
    if kind == 2:
        depth = draw(st.integers(1, 3000))
        return name, ".json", deep(depth).encode()
    suffix, content = draw(table_file(LIST_COLUMNS[name], [".csv"]))
    return name, suffix, content


def run_lists(data, work: Path) -> None:
    from geo.errors import ValidationReport
    from geo.sources import lists

    name, suffix, content = data
    path = _write(work, f"{name}{suffix}", content)
    if name == "communes":
        table, former = lists.read_communes(path)
        return
    reader = {
        "ort": lists.read_ort,
        "acv": lists.read_acv,
        "pvd": lists.read_pvd,
        "qpv": lists.read_qpv,
        "anah": lists.read_anah,
        "programmes": lists.read_programmes,
    }[name]

    def resolve(code: str):
        return (code, "") if code[:1] in "0123456" else (None, f"code {code} absent de la liste officielle")

    report = ValidationReport(str(path))
    table = reader(path, report=report, resolve=resolve)
    _require(
        list(table.columns[:3]) == ["code_insee", "code_actuel", "ligne"], f"columns {list(table.columns)}"
    )
    _require(
        all(isinstance(c, str) or pd.isna(c) for c in table["code_insee"]),
        f"code_insee not a string: {[c for c in table['code_insee'] if not isinstance(c, str)][:3]}",
    )


def _describe_list(data) -> str:
    name, suffix, content = data
    return f"{name}: " + _describe_file((suffix, content))


# --- paths: ids that become file names ---------------------------------------------------------

PATH_ID = st.one_of(
    st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,20}\Z"),
    st.sampled_from(
        [
            "../../evil",
            "..",
            ".",
            "a/b",
            "a\\b",
            "/etc/passwd",
            "x\x00y",
            "C:\\x",
            "é",
            "A",
            "-x",
            "x" * 80,
            "lien",
            "\u202e",
            " ",
            "",
            "\x1b[31m",
            "%2e%2e",
            "centre-ville/../../x",
        ]
    ),
    texts(20),
)


def run_paths(data, work: Path) -> None:
    """Ids written as annex file names: refused, or written inside the output folder only."""
    from geo import io as ort_io

    ids, force = data
    root = _fresh(work)
    out = root / "sorties" / "annexe"
    out.mkdir(parents=True)
    (out / "lien").symlink_to(root / "dehors")  # a link that points outside
    (root / "precieux.txt").write_text("x")
    names = [f"parcelles-{ort_io.safe_name(i, what='id')}.csv" for i in ids]
    paths = ort_io.check_folder_files(out, names, force=force)
    for path in paths:
        _require(path.resolve().is_relative_to(out.resolve()), f"path outside the folder: {path}")
        ort_io.write_text("x", path, force=force)
    ort_io.record_folder_files(out, names, command="fuzz")
    outside = sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_relative_to(out))
    _require(outside == ["precieux.txt", "sorties"], f"written outside the output folder: {outside}")


PATHS_DATA = st.tuples(st.lists(PATH_ID, min_size=1, max_size=4), st.booleans())


# --- spreadsheets: text never a formula, numbers stay numbers -----------------------------------

FORMULA_TEXT = st.one_of(
    st.builds(
        lambda c, t: c + t, st.sampled_from(["=", "+", "-", "@", "\t", "\r", "\uff1d", "'="]), texts(16)
    ),
    st.sampled_from(
        ['=HYPERLINK("http://x","y")', "=1+1", "+cmd|' /C calc'!A0", "@SUM(A1)", "-2+3", "-12,5"]
    ),
    texts(16),
)
SHEET_DATA = st.tuples(
    st.lists(FORMULA_TEXT, min_size=1, max_size=5),
    st.lists(
        st.one_of(st.floats(allow_nan=True, allow_infinity=False), st.integers(-(10**9), 10**9)),
        min_size=1,
        max_size=5,
    ),
    FORMULA_TEXT,
)


def run_spreadsheets(data, work: Path) -> None:
    """geo.io.write_table to CSV and XLSX: no formula cell, no live formula text, numbers kept."""
    import csv as csv_module
    import zipfile

    from geo import formats
    from geo import io as ort_io

    texts_, numbers, header = data
    n = max(len(texts_), len(numbers))
    df = pd.DataFrame(
        {
            header or "x": [texts_[i % len(texts_)] for i in range(n)],
            "nombre": pd.Series([float(numbers[i % len(numbers)]) for i in range(n)], dtype=float),
        }
    )
    root = _fresh(work)
    ort_io.write_table(df, root / "t.csv")
    d = formats.csv_format()
    with open(root / "t.csv", encoding=d["encoding"], newline="") as f:
        rows = list(csv_module.reader(f, delimiter=d["sep"]))
    _require(len(rows) == n + 1, f"CSV has {len(rows)} rows for {n} data rows (a line break leaked)")
    for row in rows:
        _require(not ort_io.is_formula_like(row[0]), f"live formula in CSV: {row[0]!r}")
    for row, value in zip(rows[1:], df["nombre"], strict=True):
        if not math.isnan(value):
            _require(
                float(row[1].replace(d["decimal"], ".")) == float(f"{value:.10g}"), f"number changed: {row}"
            )
    ort_io.write_table(df, root / "t.xlsx")
    with zipfile.ZipFile(root / "t.xlsx") as z:
        xml = "".join(z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/"))
    _require("<f>" not in xml and "<f " not in xml, "formula cell in XLSX")


# --- sizes and encodings: bombs and text in any encoding ------------------------------------------


@st.composite
def sized_file(draw):
    kind = draw(st.sampled_from(["bomb", "text", "binary", "utf16", "big"]))
    header = "idu;commentaire\n"
    body = draw(st.lists(st.one_of(IDU_TEXT, texts(20)), max_size=4))
    text = header + "".join(f"{t};{draw(texts(10))}\n" for t in body)
    if kind == "bomb":
        return ".csv.gz", Blob.of(
            gzip.compress(text.encode() + b"x" * draw(st.integers(0, 300_000)), mtime=0), "gzip bomb"
        )
    if kind == "text":
        enc = draw(
            st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16", "utf-16-le", "utf-16-be"])
        )
        return ".csv", text.encode(enc, "replace")
    if kind == "utf16":
        return ".csv", text.encode("utf-16-le") + draw(st.binary(max_size=3))
    if kind == "big":
        return ".csv", Blob.of(
            text.encode() + b"62999000AB0012;x\n" * draw(st.integers(0, 20_000)), "big CSV"
        )
    return draw(st.sampled_from([".csv", ".csv.gz"])), draw(st.binary(max_size=300))


def run_sizes(data, work: Path) -> None:
    """read_user_table and decode_text under a small size limit (128 KiB): refused, never read whole."""
    from geo.sources import tables

    suffix, content = data
    limit = ort_settings.max_table_bytes
    ort_settings.max_table_bytes = 128 * 1024
    try:
        text, _ = tables.decode_text(bytes(content))
        _require(isinstance(text, str), "decode_text returns text")
        if suffix.endswith(".gz"):
            try:
                out = tables.gunzip(bytes(content))
                _require(len(out) <= ort_settings.max_table_bytes, "gunzip over the limit")
            except ValueError:
                pass
        table = tables.read_user_table(_write(work, f"ids{suffix}", bytes(content)))
        _require(isinstance(table, pd.DataFrame), "a table")
    finally:
        ort_settings.max_table_bytes = limit


# ------------------------------------------------------------------------------------------------
# Hardening III (issue 23): geometry validity at scale, CRS/territory mismatch


def _broken_ring(draw, x: float, y: float, size: float):
    """A parcel that is often invalid: bow tie, spike, self-touch, flat, repeated points, a hole
    outside its shell, overlapping parts, random points in any order — or nothing."""
    from shapely.geometry import MultiPolygon, Polygon, box

    kind = draw(
        st.sampled_from(["bowtie", "spike", "touch", "flat", "repeat", "hole", "parts", "random", "none"])
    )
    s = size
    if kind == "bowtie":
        return Polygon([(x, y), (x + s, y + s), (x + s, y), (x, y + s)])
    if kind == "spike":
        return Polygon(
            [
                (x, y),
                (x + s, y),
                (x + s, y + s / 2),
                (x + 2 * s, y + s / 2),
                (x + s, y + s / 2),
                (x + s, y + s),
                (x, y + s),
            ]
        )
    if kind == "touch":
        return Polygon(
            [(x, y), (x + s, y), (x + s / 2, y + s / 2), (x + s, y + s), (x, y + s), (x + s / 2, y + s / 2)]
        )
    if kind == "flat":
        return Polygon([(x, y), (x + s / 2, y), (x + s, y)])
    if kind == "repeat":
        return Polygon([(x, y), (x + s, y), (x + s, y), (x + s, y + s), (x, y + s)])
    if kind == "hole":
        return Polygon(
            box(x, y, x + s / 2, y + s / 2).exterior.coords,
            [box(x + s, y + s, x + 2 * s, y + 2 * s).exterior.coords],
        )
    if kind == "parts":
        return MultiPolygon([box(x, y, x + s, y + s), box(x + s / 2, y, x + 1.5 * s, y + s)])
    if kind == "random":
        n = draw(st.integers(3, 9))
        pts = draw(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=n, max_size=n))
        return Polygon([(x + a * s, y + b * s) for a, b in pts])
    return None


@st.composite
def validity_data(draw):
    """A 12 × 12 tiling of 20 m squares in Lambert-93, some replaced by broken parcels, and a
    perimeter over part of it (boundary through the tiling, parcels well inside it too)."""
    broken = draw(st.lists(st.integers(0, 143), max_size=12, unique=True))
    rows = []
    for k in range(144):
        i, j = divmod(k, 12)
        rows.append((650_000.0 + 20 * j, 6_900_000.0 + 20 * i))
    shapes = {}
    for k in broken:
        x, y = rows[k]
        shapes[k] = _broken_ring(draw, x, y, 20.0)
    cut = draw(st.floats(40, 200))
    return shapes, cut


def run_validity(data, work: Path) -> None:
    """ort's engine on parcels some of which are invalid: each invalid parcel near the perimeter
    is listed in invalides.parquet and has no verdict (never silently absent, never called
    outside), the others get the verdicts of the valid layer; in memory: the same list."""
    import geopandas as gpd
    import shapely
    from shapely.geometry import box

    from geo.classify import classify_parcels
    from geo.scale import run as scale

    shapes, cut = data
    ids, geoms = [], []
    for k in range(144):
        i, j = divmod(k, 12)
        x, y = 650_000.0 + 20 * j, 6_900_000.0 + 20 * i
        ids.append(f"62001000AB{k + 1:04d}")
        geoms.append(shapes[k] if k in shapes else box(x, y, x + 20, y + 20))
    parcels = gpd.GeoDataFrame({"idu": ids}, geometry=geoms, crs="EPSG:2154")
    perims = gpd.GeoDataFrame(
        {"perimeter_id": ["p"], "type": ["secteur"], "nom": ["P"]},
        geometry=[box(649_990.0, 6_899_990.0, 650_000.0 + cut, 6_900_000.0 + 150.0)],
        crs="EPSG:2154",
    )
    work = _fresh(work)
    path = work / "parcelles.parquet"
    parcels.to_parquet(path)
    report = scale.classify_dataset(path, perims, work / "out", workers=1)
    if report.failed:  # refused whole: only for something else than an invalid polygon
        _require(
            not any("invalide" in f["error"] for f in report.failed),
            "a partition refused for an invalid parcel",
        )
        return
    got = scale.read_results(work / "out", allow_partial=True)
    listed = set()
    if (work / "out" / scale.INVALID_FILE).exists():
        listed = set(pd.read_parquet(work / "out" / scale.INVALID_FILE)["idu"])
    _require(not listed & set(got["idu"]), "an invalid parcel set aside has a verdict")
    g = parcels.geometry.to_numpy()
    bad = ~shapely.is_valid(g) | shapely.is_missing(g)
    near = shapely.intersects(g, perims.geometry.iloc[0].buffer(0.5)) | (shapely.is_missing(g))
    for idu, b, n in zip(ids, bad, near, strict=True):
        if b and n:
            _require(idu in listed, f"invalid parcel {idu} near the perimeter is not listed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        memory = classify_parcels(
            parcels[~shapely.is_missing(g)],
            perims,
            only_intersecting=True,
            with_distance=False,
            compiled=True,
        )
    mem_listed = {r["idu"] for r in memory.attrs.get("invalides", [])}
    _require(mem_listed <= listed, "in memory and end to end list different invalid parcels")
    _require(set(memory["idu"]) == set(got["idu"]), "in memory and end to end give different verdicts")


CRS_CANDIDATES = [
    "EPSG:2154",
    "EPSG:4326",
    "EPSG:3857",
    "EPSG:3944",
    "EPSG:3949",
    "EPSG:32631",
    "EPSG:2975",
    "EPSG:5490",
]
TERRITORIES = {"62001": (2.0, 50.3), "13055": (5.4, 43.3), "97411": (55.45, -20.9), "97105": (-61.5, 16.2)}


@st.composite
def crs_data(draw):
    code = draw(st.sampled_from(sorted(TERRITORIES)))
    lon, lat = TERRITORIES[code]
    jitter = 0.03 if code.startswith("97") else 0.2  # an island is small: stay on land
    dlon, dlat = draw(st.floats(-jitter, jitter)), draw(st.floats(-jitter, jitter))
    true = draw(st.sampled_from(CRS_CANDIDATES))
    declared = draw(st.one_of(st.just(true), st.sampled_from(CRS_CANDIDATES)))
    return code, lon + dlon, lat + dlat, true, declared


def run_crs(data, work: Path) -> None:
    """Parcels of a commune written in one CRS and declared in another, through ort classify's
    engine: when the run classifies them, their coordinates read in the declared CRS lie in the
    commune's territory; the territory's own metric CRS and degrees, declared truly, pass."""
    import geopandas as gpd
    import numpy as np
    from shapely.geometry import box

    from geo import projection
    from geo.errors import CRSError
    from geo.scale import run as scale

    code, lon, lat, true, declared = data
    centre = gpd.GeoSeries.from_xy([lon], [lat], crs=4326).to_crs(projection.metric_crs_for(code))
    x, y = float(centre.x.iloc[0]), float(centre.y.iloc[0])
    parcels = gpd.GeoDataFrame(
        {"idu": [f"{code}000AB{k:04d}" for k in range(1, 4)]},
        geometry=[box(x + 30 * k, y, x + 30 * k + 25, y + 25) for k in range(3)],
        crs=projection.metric_crs_for(code),
    )
    try:
        written = parcels.to_crs(true)
    except Exception:  # noqa: BLE001 - a CRS that cannot hold the place: not an input
        return
    if not np.isfinite(written.total_bounds).all():
        return
    lied = written.set_crs(declared, allow_override=True)
    perims = gpd.GeoDataFrame(
        {"perimeter_id": ["p"]}, geometry=[parcels.union_all().buffer(10)], crs=parcels.crs
    )
    work = _fresh(work)
    path = work / "parcelles.parquet"
    lied.to_parquet(path)
    report = scale.classify_dataset(path, perims, work / "out", workers=1)
    ext = projection.lonlat_extent(code)
    if not report.failed:
        back = gpd.GeoSeries(lied.geometry.to_numpy(), crs=declared).to_crs(4326).centroid
        inside = ((back.x >= ext[0]) & (back.x <= ext[2]) & (back.y >= ext[1]) & (back.y <= ext[3])).all()
        _require(bool(inside), f"{true} declared {declared} classified outside its territory")
    elif declared == true and true in (projection.metric_crs_for(code), "EPSG:4326"):
        raise InvariantViolation(f"true CRS {true} refused: {report.failed[0]['error'][:200]}")
    else:
        raise CRSError(report.failed[0]["error"])  # refused, as it should: counted as such


TARGETS = {
    t.name: t
    for t in (
        Target("idu", "geo.idu.parse_idu / parse_many", IDU_DATA, run_idu),
        Target(
            "perimeters",
            "geo.perimeters.read_convention + Convention.perimeters",
            PERIMETERS_DATA,
            run_perimeters,
            describe_perimeters,
        ),
        Target("id_table", "geo.check.read_id_table", ID_TABLE_DATA, run_id_table, _describe_file),
        Target(
            "friches",
            "geo.places.friches.read_friches + friches_for_export",
            friches_file(),
            run_friches,
            _describe_file,
        ),
        Target(
            "housing",
            "geo.places.housing.read_housing + locate_sites",
            table_file(HOUSING_COLUMNS, [".csv", ".txt", ".csv.gz", ".xlsx"]),
            run_housing,
            _describe_file,
        ),
        Target(
            "actions",
            "geo.places.actions.read_register + dashboard",
            ACTIONS_DATA,
            run_actions,
            lambda d: repr(register_bytes(d)[:800]),
        ),
        Target(
            "lists",
            "geo.sources.lists readers (ort, acv, pvd, qpv, anah, programmes, communes)",
            lists_file(),
            run_lists,
            _describe_list,
        ),
        Target(
            "paths",
            "geo.io.safe_name / check_folder_files / write_text (ids as annex file names)",
            PATHS_DATA,
            run_paths,
        ),
        Target(
            "spreadsheets",
            "geo.io.write_table to CSV and XLSX (formulas, line breaks, numbers)",
            SHEET_DATA,
            run_spreadsheets,
        ),
        Target(
            "sizes",
            "geo.sources.tables decode_text / gunzip / read_user_table (bombs, encodings, size limit)",
            sized_file(),
            run_sizes,
            _describe_file,
        ),
        Target(
            "validity",
            "geo.scale.run.classify_dataset + classify_parcels on invalid parcels (bow ties, spikes…)",
            validity_data(),
            run_validity,
        ),
        Target(
            "crs",
            "geo.scale.run.classify_dataset on coordinates declared in the wrong CRS, by territory",
            crs_data(),
            run_crs,
        ),
    )
}
# Address files and BAN servers (issue 23): bench/fuzz_inputs.py.
from fuzz_inputs import targets as _input_targets  # noqa: E402 - bench/ is the script's folder

TARGETS.update({t.name: t for t in _input_targets(Target, _require, _write)})


# ------------------------------------------------------------------------------------------------
# Engine


@dataclass
class Crash:
    exception: str
    where: str
    raised_at: str
    example: str
    count: int = 0


@dataclass
class Result:
    target: Target
    tried: int = 0
    accepted: int = 0
    refused: int = 0
    seconds: float = 0.0
    refused_by: Counter = field(default_factory=Counter)
    warnings: Counter = field(default_factory=Counter)
    crashes: dict[tuple[str, str], Crash] = field(default_factory=dict)


class _Shrink(Exception):
    """Raised to let Hypothesis shrink the first input of a new crash signature."""


def _frames(exc: BaseException) -> tuple[str, str]:
    """The deepest frame in geo/ and the frame that raised."""
    tb = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in tb if f.filename.startswith(GEO_DIR)]

    def fmt(frame: traceback.FrameSummary) -> str:
        name = Path(frame.filename)
        shown = name.relative_to(ROOT) if name.is_relative_to(ROOT) else name.name
        return f"{shown}:{frame.lineno} {frame.name}"

    where = fmt(ours[-1]) if ours else (fmt(tb[-1]) if tb else "?")
    return where, (fmt(tb[-1]) if tb else "?")


def fuzz(target: Target, budget: float, base_seed: int, work: Path) -> Result:
    result = Result(target)
    deadline = time.monotonic() + budget
    shrinking: list[tuple[str, str]] = []
    shrunk: set[tuple[str, str]] = set()
    start = time.monotonic()

    replaying = [False]  # True once a run is shrinking: its calls are replays, not new inputs

    shrink_started = [0.0]

    def one(data) -> None:
        if time.monotonic() > deadline and not shrinking:
            return
        if replaying[0] and time.monotonic() - shrink_started[0] > SHRINK_SECONDS:
            return  # enough shrinking: the smallest input seen so far is kept
        result.tried += not replaying[0]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                status = target.run(data, work)
            except OrtError as err:
                if not replaying[0]:
                    result.refused += 1
                    result.refused_by[type(err).__name__] += 1
                if "\n" in str(err):  # the CLI promises one line per error
                    _record(
                        err, data, kind="multi-line message", text=f"{type(err).__name__}: {str(err)[:300]!r}"
                    )
            except Exception as err:  # noqa: BLE001 - a crash is what we are looking for
                _record(err, data)
            else:
                if not replaying[0]:
                    result.accepted += status != "refused"
                    result.refused += status == "refused"
        for w in caught:
            origin = "geo" if str(w.filename).startswith(GEO_DIR) else Path(str(w.filename)).name
            result.warnings[f"{w.category.__name__} ({origin}): {str(w.message)[:90]}"] += 1

    def _record(err: BaseException, data, *, kind: str = "", text: str = "") -> None:
        where, raised_at = _frames(err)
        key = (kind or type(err).__name__, where)
        text = f"{kind}: {text}" if kind else f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
        example = target.describe(data)
        crash = result.crashes.get(key)
        if crash is None:
            crash = result.crashes[key] = Crash(text, where, raised_at, example)
        elif len(example) < len(crash.example):
            crash.exception, crash.example = text, example
        crash.count += not replaying[0] or crash.count == 0
        if not shrinking and key not in shrunk:
            shrinking.append(key)
        if shrinking and shrinking[0] == key:
            if not replaying[0]:
                replaying[0], shrink_started[0] = True, time.monotonic()
            raise _Shrink(key)

    chunk = 0
    while time.monotonic() < deadline:
        chunk += 1
        run = settings(
            max_examples=CHUNK,
            deadline=None,
            database=None,
            derandomize=False,
            phases=[Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
            report_multiple_bugs=False,
        )(seed(base_seed * 100_003 + chunk)(given(target.strategy)(one)))
        try:
            run()
        except _Shrink:
            pass
        except Exception as err:  # noqa: BLE001 - Hypothesis' own errors (flaky replay…): keep going
            if shrinking:
                pass
            else:
                result.warnings[f"hypothesis: {type(err).__name__}: {str(err)[:80]}"] += 1
        if shrinking:
            shrunk.add(shrinking.pop())
        replaying[0] = False
    result.seconds = time.monotonic() - start
    return result


def report(results: list[Result], *, budget: float, seed_value: int, command: str) -> str:
    total = sum(r.tried for r in results)
    crashes = sum(len(r.crashes) for r in results)
    lines = [
        "# Fuzzing the readers",
        "",
        f"Generated by `bench/fuzz.py` on {dt.datetime.now().strftime('%Y-%m-%d %H:%M')} — "
        f"`{command}` — Python {platform.python_version()}, Hypothesis {hypothesis.__version__}, "
        f"seed {seed_value}, budget {budget:g} s per target.",
        "",
        "Goal: every input is either read or refused with one of the project's errors "
        "(`geo.errors.OrtError`); anything else is a crash. Each crash group (exception type × "
        "deepest `geo/` frame) shows its smallest input (the first input of each group was "
        "shrunk by Hypothesis) and how often it was hit.",
        "",
        f"**{total} inputs tried, {crashes} distinct crash(es).**",
        "",
        "| target | function(s) | inputs tried | read | refused (OrtError) | distinct crashes | seconds |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.target.name} | {r.target.what} | {r.tried} | {r.accepted} | {r.refused} | "
            f"{len(r.crashes)} | {r.seconds:.0f} |"
        )
    for r in results:
        lines += ["", f"## {r.target.name}", ""]
        if r.refused_by:
            lines.append(
                "Refused with: " + ", ".join(f"{k} ×{v}" for k, v in r.refused_by.most_common()) + "."
            )
        if not r.crashes:
            lines.append("No crash.")
        for i, c in enumerate(sorted(r.crashes.values(), key=lambda c: -c.count), start=1):
            lines += [
                "",
                f"### {r.target.name}-{i}: `{c.exception[:160]}`",
                "",
                f"- where: `{c.where}` (raised in `{c.raised_at}`), hit {c.count} time(s)",
                "- smallest input:",
                "",
                "```",
                c.example[:1500],
                "```",
            ]
        if r.warnings:
            lines += ["", "Warnings (not failures):", ""]
            lines += [f"- {k} ×{v}" for k, v in r.warnings.most_common(8)]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=60.0, help="seconds per target (default 60)")
    ap.add_argument(
        "--targets", default=",".join(TARGETS), help=f"comma-separated, among {', '.join(TARGETS)}"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "FUZZ.md")
    args = ap.parse_args()
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        ap.error(f"unknown target(s) {', '.join(unknown)}; choose among {', '.join(TARGETS)}")

    with tempfile.TemporaryDirectory(prefix="ort-fuzz-") as tmp:
        ort_settings.cache_dir = Path(tmp) / "cache"
        ort_settings.offline = True  # never touch the network
        ort_settings.progress = False
        results = []
        for name in names:
            print(f"{name}: fuzzing for {args.budget:g} s…", flush=True)
            r = fuzz(TARGETS[name], args.budget, args.seed, Path(tmp) / name)
            print(
                f"  {r.tried} inputs, {r.accepted} read, {r.refused} refused, {len(r.crashes)} crash(es)",
                flush=True,
            )
            for c in r.crashes.values():
                print(f"    {c.exception[:120]} @ {c.where} ×{c.count}", flush=True)
            results.append(r)
    command = "python3 bench/fuzz.py " + " ".join(sys.argv[1:])
    args.out.write_text(
        report(results, budget=args.budget, seed_value=args.seed, command=command), encoding="utf-8"
    )
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
