"""``ort check ID`` from the shell in a fraction of a second: a convention's answers kept on disk.

The first ``ort check`` of a convention reads its perimeters and cadastre (pandas, geopandas,
pyproj: about a second before any answer). It then leaves in the cache folder
(``ORT_CACHE_DIR``/verifications-rapides) a *digest* of what a one-parcel answer needs:

- the convention's facts (name, signature, end, versions) and, for every day, which *regime*
  applies: the version in force and its perimeters in force (days between the dates the
  convention and its perimeter files name share one);
- every parcel's commune, section, numéro, contenance, and the sections of each commune;
- for each regime met so far, every parcel's rows (statut, part, surfaces, distance), computed
  by the classification engine on the whole layer, with the version's provenance and the
  warnings of ``ort validate`` on it.

A later ``ort check ID --perimeters NAME`` with no other option reads the digest (JSON and a
few bytes of one binary file: no pandas, no geopandas, no shapely) and prints the same bytes as
the general path. Any doubt sends the command to the general path, which is always right: a
file of the convention or of the cadastre changed (size or date), a day whose regime was not
met yet, an address, an id rejected, absent or repeated, a parcel the engine set aside,
anything unexpected. ``tests/test_check_digest.py`` compares both outputs byte for byte.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import struct
from pathlib import Path
from types import SimpleNamespace

from geo import settings

FORMAT = 1
#: Status codes of a regime's rows (255: no row, the general path answers).
_CODES = {"inside": 0, "straddling": 1, "outside": 2}
_NAMES = {v: k for k, v in _CODES.items()}
_NONE = 255
#: Parcel ids only: an entry with three letters in a row may be an address (general path).
_WORDISH = re.compile(r"[^\W\d_]{3,}")
_FRENCH_DATE = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")


# --- where ------------------------------------------------------------------------------------


#: The modules whose code makes the rows and texts a digest keeps: another version of any of them
#: (an upgrade of ort, an edited checkout) starts a new digest.
_CODE = (
    "geo.check_digest",
    "geo.check_text",
    "geo.classify",
    "geo.kernels",
    "geo.native",
    "geo.check",
    "geo.perimeters",
)


def _code_stamp() -> list:
    """Size and modification time of the installed modules in :data:`_CODE` (no import)."""
    from importlib.util import find_spec

    stamp = []
    for name in _CODE:
        origin = getattr(find_spec(name), "origin", None)
        st = os.stat(origin) if origin else None
        stamp.append([st.st_size, st.st_mtime_ns] if st else None)
    return stamp


def digest_dir(convention_dir: Path) -> Path:
    """The digest's folder for a convention folder (with the settings and the code its answers
    depend on)."""
    folder = str(Path(convention_dir).resolve())
    key = json.dumps([FORMAT, folder, settings.tolerance_m2, settings.tolerance_pct, _code_stamp()])
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return Path(settings.cache_dir) / "verifications-rapides" / digest


def _watched(convention_dir: Path, cadastre_dir: Path | None, sources: list[str]) -> dict[str, list[int]]:
    """Size and modification time of every file the answers rest on."""
    paths = [p for p in Path(convention_dir).iterdir() if p.is_file()]
    if cadastre_dir is not None and cadastre_dir.is_dir():
        paths += [p for p in cadastre_dir.iterdir() if p.is_file()]
    paths += [Path(s) for s in sources if s]
    out = {}
    for p in paths:
        st = p.resolve().stat()
        out[str(p.resolve())] = [st.st_size, st.st_mtime_ns]
    return out


def _unchanged(files: dict) -> bool:
    try:
        return all(
            [(st := os.stat(path)).st_size, st.st_mtime_ns] == list(known) for path, known in files.items()
        )
    except OSError:
        return False


# --- written by the general path ----------------------------------------------------------------


def record(territoire, day: dt.date) -> None:
    """Add to the digest what ``ort check`` at ``day`` needs (the regime of that day), after the
    general path answered. Never fails the command: a digest not written only costs speed."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the engine's notes were said by the general path
            _record(territoire, day)
    except Exception:  # noqa: BLE001 - the answer was given; the digest is a cache
        return


def _regime_key(perims) -> str:
    return json.dumps([perims.attrs.get("version"), perims["perimeter_id"].tolist()])


def regime_intervals(conv) -> list:
    """``[start, end or None, regime key or None]`` covering every day from the first date the
    convention names on (before: no regime). The regime only changes on those dates."""
    from geo.errors import PerimeterError

    dates = set()
    for ver in conv.versions:
        for d in (ver.date_effet, ver.date_fin):
            if d is not None:
                dates |= {d, d + dt.timedelta(days=1)}
        frame = conv.perimeters(version=ver.id)
        for col in ("date_debut", "date_fin"):
            for value in frame[col].tolist() if col in frame.columns else []:
                if isinstance(value, str) and value:
                    value = dt.date.fromisoformat(value[:10])
                if isinstance(value, dt.datetime):
                    value = value.date()
                if isinstance(value, dt.date):
                    dates |= {value, value + dt.timedelta(days=1)}
                elif value is not None and value == value:  # a date we cannot read: no digest
                    raise ValueError(f"date de périmètre illisible : {value!r}")
    days = sorted(dates)
    out = []
    for k, start in enumerate(days):
        end = days[k + 1] if k + 1 < len(days) else None
        try:
            key = _regime_key(conv.perimeters(start, in_force_only=True))
        except PerimeterError:
            key = None
        out.append([start.isoformat(), end.isoformat() if end else None, key])
    return out


def _record(territoire, day: dt.date) -> None:
    from geo import prepared

    conv, parcels = territoire.convention, territoire.parcels
    folder = digest_dir(conv.path)
    index_path = folder / "index.json"
    index = _read_index(index_path)
    sources = [str(parcels.attrs.get("source") or "")]
    if index is None:
        files = _watched(conv.path, conv.cadastre_dir, sources)
        rows = {}
        twice = set()
        cols = {c: parcels[c].tolist() if c in parcels.columns else [None] * len(parcels)
                for c in ("code_insee", "section", "numero", "contenance")}  # fmt: skip
        for idu, ks in prepared.idu_positions(parcels).items():
            if len(ks) > 1:
                twice.add(idu)
                continue
            k = ks[0]
            rows[idu] = [k] + [_plain(cols[c][k]) for c in ("code_insee", "section", "numero", "contenance")]
        sections: dict = {}
        for code, section in zip(cols["code_insee"], cols["section"], strict=True):
            sections.setdefault(code, set()).add(section)
        index = {
            "format": FORMAT,
            "files": files,
            "convention": {
                "nom": conv.nom,
                "fictif": bool(conv.fictif),
                "communes": list(conv.communes),
                "date_signature": conv.date_signature.isoformat(),
                "date_fin": conv.date_fin.isoformat(),
                "duree_ans": conv.duree_ans,
                "versions": [
                    [v.id, v.date_effet.isoformat(), v.date_fin.isoformat() if v.date_fin else None]
                    for v in conv.versions
                ],
            },
            "millesime": parcels.attrs.get("millesime"),
            "n": len(parcels),
            "parcelles": rows,
            "doublons": sorted(twice),
            "sections": {str(c): sorted(s) for c, s in sections.items() if isinstance(c, str)},
            "intervalles": regime_intervals(conv),
            "regimes": {},
        }
    perims = territoire.perimeters_at(day)
    key = _regime_key(perims)
    if key in index["regimes"] or key not in {i[2] for i in index["intervalles"]}:
        return
    name = "regime-" + hashlib.sha256(key.encode()).hexdigest()[:16] + ".bin"
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomic(folder / name, _regime_bytes(parcels, perims))
    index["regimes"][key] = {
        "fichier": name,
        "attrs": {k: v for k, v in perims.attrs.items() if isinstance(v, str | int | float | bool)},
        "ids": perims["perimeter_id"].tolist(),
        "noms": perims["nom"].tolist(),
        "types": perims["type"].tolist(),
        "avertissements": territoire.version_warnings(perims),
    }
    _write_atomic(index_path, json.dumps(index, ensure_ascii=False).encode())


def _plain(value):
    """A cell as JSON: text, number or None (NaN and pandas' NA are None)."""
    if value is None or type(value).__name__ == "NAType":
        return None
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if not isinstance(value, str | int | float | bool):
        raise ValueError(f"valeur de cadastre inattendue : {type(value).__name__}")
    return value


def _regime_bytes(parcels, perims) -> bytes:
    """Every parcel's rows: per parcel, per perimeter, a status byte then share, surface inside
    and distance as float64 (status 255: the engine gave no row)."""
    from geo.classify import classify_parcels

    n, m = len(parcels), len(perims)
    table = classify_parcels(parcels.reset_index(drop=True), perims)
    order = {pid: j for j, pid in enumerate(perims["perimeter_id"].tolist())}
    where = {}
    for k, idu in enumerate(parcels["idu"].tolist()):
        where.setdefault(idu, k)
    record = struct.Struct("<Bddd")
    out = bytearray(record.pack(_NONE, 0.0, 0.0, 0.0) * (n * m))
    for idu, pid, status, share, inside, distance in zip(
        table["idu"].tolist(), table["perimeter_id"].tolist(), table["status"].tolist(),
        table["share"].tolist(), table["area_inside_m2"].tolist(), table["distance_m"].tolist(),
        strict=True,
    ):  # fmt: skip
        slot = where[idu] * m + order[pid]
        record.pack_into(out, slot * record.size, _CODES[status], share, inside, distance)
    return bytes(out)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partiel")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _read_index(path: Path) -> dict | None:
    try:
        index = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if index.get("format") != FORMAT or not _unchanged(index.get("files", {})):
        return None
    return index


# --- read by ``ort check`` ---------------------------------------------------------------------


def _day(text: str | None) -> dt.date | None:
    """The date as :func:`geo.perimeters.parse_date` reads it; None when it would refuse it
    (the general path then says why)."""
    if text is None:
        return dt.date.today()
    if not isinstance(text, str):
        return None
    text = text.strip()
    try:
        french = _FRENCH_DATE.fullmatch(text)
        if french:
            d, m, y = (int(g) for g in french.groups())
            return dt.date(y, m, d)
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _convention(facts: dict):
    versions = [
        SimpleNamespace(
            id=i,
            date_effet=dt.date.fromisoformat(start),
            date_fin=dt.date.fromisoformat(end) if end else None,
        )
        for i, start, end in facts["versions"]
    ]
    return SimpleNamespace(
        nom=facts["nom"],
        fictif=facts["fictif"],
        communes=facts["communes"],
        date_signature=dt.date.fromisoformat(facts["date_signature"]),
        date_fin=dt.date.fromisoformat(facts["date_fin"]),
        duree_ans=facts["duree_ans"],
        versions=versions,
    )


def answer(convention_dir: Path, ids, when: str | None, commune: str | None):
    """The one-parcel answer from the digest, or None (then the general path answers).

    Returns
    -------
    (dict, list of str, str, str) or None
        What ``ort check --json`` prints (before the model), the warnings, the provenance lines
        and each parcel's lines.
    """
    ids = list(ids)
    if not ids or len(ids) > 20 or any(_WORDISH.search(str(t)) for t in ids):
        return None
    day = _day(when)
    if day is None:
        return None
    folder = digest_dir(convention_dir)
    index = _read_index(folder / "index.json")
    if index is None:
        return None
    iso = day.isoformat()
    key = next(
        (k for start, end, k in index["intervalles"] if start <= iso and (end is None or iso < end)), None
    )
    regime = index["regimes"].get(key) if key else None
    if regime is None:
        return None
    conv = _convention(index["convention"])
    from geo.errors import InputError
    from geo.idu import parse_many

    code = commune or (conv.communes[0] if len(conv.communes) == 1 else None)
    sections = set(index["sections"].get(code, ())) if code else None
    try:
        valid, rejected = parse_many(ids, code_insee=code, communes=conv.communes, sections=sections)
    except InputError:
        return None
    wanted = list(dict.fromkeys(p.idu for p in valid))
    table = index["parcelles"]
    if rejected or not wanted or any(i not in table or i in index["doublons"] for i in wanted):
        return None
    wanted.sort(key=lambda i: table[i][0])  # the cadastre's order, as the general path's table
    m, n = len(regime["ids"]), index["n"]
    record = struct.Struct("<Bddd")
    found = []
    with open(folder / regime["fichier"], "rb") as f:
        if os.fstat(f.fileno()).st_size != n * m * record.size:
            return None
        for idu in wanted:
            k = table[idu][0]
            f.seek(k * m * record.size)
            raw = f.read(m * record.size)
            rows = [record.unpack_from(raw, j * record.size) for j in range(m)]
            if any(r[0] == _NONE for r in rows):
                return None
            found.append((idu, table[idu][1:], rows))
    return _present(conv, index, regime, day, found)


def _present(conv, index, regime, day, found):
    from geo.check_text import STATUS_LABELS, parcel_lines, provenance_text, validity

    perims = SimpleNamespace(attrs=regime["attrs"])
    millesime = index["millesime"]
    valid = validity(conv, perims, day)
    a = regime["attrs"]
    data = {
        "convention": conv.nom,
        "fictif": conv.fictif,
        "date": day.isoformat(),
        "version": a.get("version"),
        "version_date": a.get("version_date"),
        "validite": valid,
        "avertissements": ([valid["avertissement"]] if valid["avertissement"] else [])
        + list(regime["avertissements"]),
        "millesime_cadastre": millesime,
        "parcelles": [],
        "rejetes": [],
        "adresses": [],
    }
    lines = []
    for idu, (code, section, numero, contenance), rows in found:
        named = list(zip(regime["ids"], regime["noms"], regime["types"], rows, strict=True))
        data["parcelles"].append(
            {
                "idu": idu,
                "code_insee": None if code is None else str(code),
                "section": None if section is None else str(section),
                "numero": None if numero is None else str(numero),
                "contenance": None if contenance is None else float(contenance),
                "perimetres": [
                    {
                        "perimetre_id": pid,
                        "nom": nom,
                        "type": typ,
                        "statut": STATUS_LABELS[_NAMES[st]],
                        "part": round(float(share), 6),
                        "surface_m2": round(float(inside), 2),
                        "distance_m": None if distance != distance else round(float(distance), 2),
                    }
                    for pid, nom, typ, (st, share, inside, distance) in named
                ],
            }
        )
        lines.append(
            parcel_lines(
                idu,
                code,
                section,
                numero,
                contenance,
                [(nom, _NAMES[st], share, distance) for _, nom, _, (st, share, _, distance) in named],
            )  # fmt: skip
        )
    provenance = provenance_text(conv, perims, millesime, day)
    return data, list(regime["avertissements"]), provenance, "\n".join(lines)
