"""A parcel's answer from structures prepared once, without tables at request time.

The general answer (:func:`geo.server.answers._compute`) builds a check and an eligibility with
pandas and pydantic for every parcel asked: ~20 ms of one core. Here the same answer is put
together from what does not change between requests:

- the **rows of every parcel** (statut, part, surfaces, distance in each perimeter in force) for
  each set of perimeters in force — a *regime*: the version and the perimeters of it in force,
  shared by every date with the same ones — computed once by the same kernel as one parcel's
  check (:func:`geo.prepared.classify_rows`, by chunks), kept as arrays;
- the **rest of the check** (convention, version, validity, warnings, cadastre) once per date,
  from the general answer of a first parcel;
- the **eligibility** once per date and *situation*: the parcel's commune, its status and share in
  each area a place rule asks for, and the perimeters it touches with their shares — everything
  :func:`geo.eligibility.answers.eligibility_for_parcels` reads of a parcel. The general answer of
  the first parcel of a situation is kept as JSON with its id left blank, and filled in for the
  next parcels of that situation; an answer that names its parcel anywhere else is never kept.

Whatever this module cannot answer exactly (no version in force, a parcel absent, repeated or
invalid in the cadastre, a commune outside the convention) is left to the general answer: it
returns None. ``tests/test_server_fast.py`` compares both answers on every parcel of the demo
and of Libercourt at several dates, byte for byte.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from array import array
from dataclasses import dataclass

from geo import prepared

#: Parcels classified per call of the few-parcel kernel while a regime is prepared.
CHUNK = prepared.FEW_PARCELS
#: Stands for the parcel's id in a kept eligibility answer (14 characters, never an IDU).
BLANK = "#IDU#IDU#IDU##"
_BLANK = json.dumps(BLANK).encode()


def _json(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _text(value) -> str | None:
    """As :func:`geo.check._text`: a cadastral field as text, None if empty."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if not isinstance(value, str):
        try:
            import pandas as pd

            if pd.isna(value):
                return None
        except (TypeError, ValueError):
            pass
    return str(value)


_CODES = {"inside": 0, "straddling": 1, "outside": 2}
_NAMES = ("inside", "straddling", "outside")
_NONE = 255


@dataclass
class _Rows:
    """A regime's rows, flat (parcel ``k``, perimeter ``j`` at ``k * m + j``): status codes
    (255: no row, the general answer), shares, surfaces inside, distances. Flat arrays rather
    than a list per parcel: a few objects for the collector to walk, whatever the cadastre."""

    ids: list[str]
    noms: list[str]
    types: list
    status: bytearray
    share: array
    inside: array
    distance: array

    def has(self, k: int) -> bool:
        m = len(self.ids)
        return _NONE not in self.status[k * m : (k + 1) * m]

    def of(self, k: int):
        """Parcel ``k``'s rows: ``(id, nom, type, status, share, inside, distance)``."""
        m = len(self.ids)
        at = slice(k * m, (k + 1) * m)
        codes = (_NAMES[c] for c in self.status[at])
        return zip(
            self.ids, self.noms, self.types, codes, self.share[at], self.inside[at], self.distance[at],
            strict=True,
        )  # fmt: skip


def _rows_of(parcels, perimeters, *, with_distance: bool) -> _Rows:
    """Every parcel's rows against ``perimeters``, by :func:`geo.prepared.classify_rows` (the
    kernel of one parcel's check) on chunks of parcels; a parcel it cannot classify alone (invalid
    near a perimeter) has no rows."""
    n, m = len(parcels), len(perimeters)
    status = bytearray([_NONE]) * (n * m)
    share, inside, distance = (array("d", bytes(8 * n * m)) for _ in range(3))

    def put(positions, rows) -> None:
        for r in rows:
            slot = positions[r.Index // m] * m + r.Index % m
            status[slot] = _CODES[r.status]
            share[slot], inside[slot], distance[slot] = r.share, r.area_inside_m2, r.distance_m

    for start in range(0, n, CHUNK):
        positions = list(range(start, min(n, start + CHUNK)))
        rows = prepared.classify_rows(parcels.iloc[positions], perimeters, with_distance=with_distance)
        if rows is not None:
            put(positions, rows)
            continue
        for k in positions:  # one invalid parcel in the chunk: the others alone
            one = prepared.classify_rows(parcels.iloc[[k]], perimeters, with_distance=with_distance)
            if one is not None:
                put([k], one)
    ids = perimeters["perimeter_id"].tolist()
    types = perimeters["type"].tolist() if "type" in perimeters.columns else [None] * m
    noms = perimeters["nom"].tolist() if "nom" in perimeters.columns else list(ids)
    return _Rows(ids, noms, types, status, share, inside, distance)


@dataclass
class _Day:
    """What a date shares with every parcel: the regimes and the check's parcel-free part."""

    check: _Rows
    areas: _Rows | None  # the parcel in each area of a place rule (None: no area drawn)
    named: _Rows | None  # the parcel in each perimeter (status, share), for the eligibility
    head: dict  # the check without its parcel
    situations: dict  # situation -> eligibility JSON with BLANK for the id, or None (never kept)


class FastParcels:
    """The answers of one loaded convention (:class:`geo.server.catalogue.Loaded`) prepared once.

    Thread-safe: two threads may prepare the same regime once each; the first kept is used.
    """

    #: Most dates prepared (each holds a few small dicts; the regimes are shared between dates).
    DAYS = 512
    #: Bytes of kept eligibility answers (~28 kB each for the demo); past it, the oldest dates'
    #: are dropped (computed again when asked).
    KEPT_BYTES = 48 * 2**20

    def __init__(self, item) -> None:
        self.item = item
        parcels = item.parcels
        self.parcels = parcels
        self.positions = {
            idu: ks[0] for idu, ks in prepared.idu_positions(parcels).items() if len(ks) == 1
        }  # an id repeated in the cadastre: the general answer refuses it
        cols = parcels.columns
        self.fields = {
            c: parcels[c].tolist() if c in cols else [None] * len(parcels)
            for c in ("code_insee", "section", "numero", "contenance")
        }
        self.communes = set(item.convention.communes)
        self._regimes: dict = {}
        self._days: dict = {}
        self._kept = 0  # bytes of the eligibility answers kept in the days' situations
        self._lock = threading.Lock()

    # --- regimes --------------------------------------------------------------------------

    def _regime(self, key, compute):
        with self._lock:
            if key in self._regimes:
                return self._regimes[key]
        value = compute()
        with self._lock:
            return self._regimes.setdefault(key, value)

    def _day(self, cat, day: dt.date, general) -> _Day | None | bool:
        """The date's structures; None when the general answer must give every answer of it;
        False when they are not prepared yet and ``general`` is None (nothing computed)."""
        with self._lock:
            if day in self._days:
                return self._days[day]
        if general is None:
            return False
        built = self._build_day(cat, day, general)
        with self._lock:
            if len(self._days) >= self.DAYS:
                gone = self._days.pop(next(iter(self._days)))
                if gone:
                    self._kept -= sum(len(t or b"") for t in gone.situations.values())
            return self._days.setdefault(day, built)

    def _build_day(self, cat, day: dt.date, general) -> _Day | None:
        from geo.eligibility.answers import _area_layers

        item = self.item
        perims, error = cat.perimeters_in_force(item, day)
        if error is not None or perims is None or item.territoire is None:
            return None
        in_force = item.territoire.perimeters_at(day)
        version = perims.attrs.get("version")
        key = ("check", version, tuple(in_force["perimeter_id"].tolist()))
        check = self._regime(key, lambda: _rows_of(self.parcels, in_force, with_distance=True))
        flags = tuple(perims["en_vigueur"].tolist()) if "en_vigueur" in perims.columns else ()
        ekey = ("eligibility", version, tuple(perims["perimeter_id"].tolist()), flags)
        areas, layer, named = prepared.derived(perims, "eligibility-areas", lambda: _area_layers(perims))

        def eligibility_rows():
            if not areas:
                return None, None
            return (
                _rows_of(self.parcels, layer, with_distance=False),
                _rows_of(self.parcels, named, with_distance=False),
            )

        area_rows, named_rows = self._regime(ekey, eligibility_rows)
        # The check without its parcel, from the general answer of a parcel this module answers.
        first = next(
            (idu for idu, k in self.positions.items() if self._answerable(k, check, area_rows, named_rows)),
            None,
        )
        if first is None:
            return None
        full = json.loads(general(first))
        head = full["verification"]
        if len(head["parcelles"]) != 1 or head["rejetes"] or head["adresses"]:
            return None
        head = {k: v for k, v in head.items() if k != "parcelles"}
        return _Day(check, area_rows, named_rows, head, {})

    def _trim(self, current: _Day) -> None:
        """Drop the kept eligibility answers of the oldest dates while over :attr:`KEPT_BYTES`
        (not those of ``current``). Called with the lock held."""
        for day in list(self._days):
            if self._kept <= self.KEPT_BYTES:
                return
            d = self._days[day]
            if d is current or not d:
                continue
            self._kept -= sum(len(t or b"") for t in d.situations.values())
            d.situations.clear()

    def _answerable(self, k: int, check: _Rows, areas: _Rows | None, named: _Rows | None) -> bool:
        code = self.fields["code_insee"][k]
        idu_code = code or None
        return (
            check.has(k)
            and (areas is None or (areas.has(k) and named.has(k)))
            and (idu_code is None or idu_code in self.communes)
        )

    # --- one answer ------------------------------------------------------------------------

    def warm(self, cat, days, general_at) -> None:
        """Prepare ``days`` now (at start: the first requests of a date then wait for nothing);
        ``general_at(day)`` gives the ``general`` of :meth:`answer` for that day."""
        for day in days:
            self._day(cat, day, general_at(day))

    def answer(self, cat, idu: str, day: dt.date, general, eligibility=None) -> bytes | None:
        """The JSON bytes of :func:`geo.server.answers._compute` for ``idu`` at ``day``, or None
        (then the caller computes it). ``general(idu)`` gives the general answer's bytes and
        ``eligibility(idu)`` its ``eligibilite`` part (a dict); with ``general`` None, only what is
        ready is answered (nothing computed: safe in an event loop)."""
        k = self.positions.get(idu)
        if k is None or idu[:5] not in self.communes:
            return None
        d = self._day(cat, day, general)
        if not d or not self._answerable(k, d.check, d.areas, d.named):
            return None
        eligibility = self._eligibility(d, k, idu, eligibility if general is not None else None)
        if eligibility is None:
            return None
        verification = dict(d.head)
        verification["parcelles"] = [self._parcel(k, idu, d.check)]
        order = ("convention", "fictif", "date", "version", "version_date", "validite", "avertissements",
                 "millesime_cadastre", "parcelles", "rejetes", "adresses")  # fmt: skip
        verification = {key: verification[key] for key in order}
        head = {"idu": idu, "date": day.isoformat(), "convention_id": self.item.name}
        return (
            _json(head)[:-1]
            + b',"verification":'
            + _json(verification)
            + b',"eligibilite":'
            + eligibility.replace(_BLANK, json.dumps(idu).encode())
            + b"}"
        )

    def _parcel(self, k: int, idu: str, rows: _Rows) -> dict:
        from geo.classify import STATUS_LABELS

        f = self.fields
        cont = f["contenance"][k]
        return {
            "idu": idu,
            "code_insee": _text(f["code_insee"][k]),
            "section": _text(f["section"][k]),
            "numero": _text(f["numero"][k]),
            "contenance": None if _text(cont) is None else float(cont),
            "perimetres": [
                {
                    "perimetre_id": pid,
                    "nom": nom,
                    "type": typ,
                    "statut": STATUS_LABELS[st],
                    "part": round(float(sh), 6),
                    "surface_m2": round(float(a), 2),
                    "distance_m": None if d != d else round(float(d), 2),
                }
                for pid, nom, typ, st, sh, a, d in rows.of(k)
            ],
        }

    def _eligibility(self, d: _Day, k: int, idu: str, compute) -> bytes | None:
        """The eligibility JSON of parcel ``k``, BLANK for its id, kept per situation."""
        from geo.classify import OUTSIDE

        code = self.fields["code_insee"][k] or idu[:5]
        if d.areas is None:
            situation = (code,)
        else:
            hits = tuple((pid, st, sh) for pid, _, _, st, sh, _, _ in d.areas.of(k))
            touched = tuple((pid, nom, sh) for pid, nom, _, st, sh, _, _ in d.named.of(k) if st != OUTSIDE)
            situation = (code, hits, touched)
        with self._lock:
            if situation in d.situations:
                return d.situations[situation]
        if compute is None:
            return None
        found = compute(idu)
        template = _blanked(found, idu)
        with self._lock:
            if situation not in d.situations:
                size = len(template or b"")
                d.situations[situation] = template
                self._kept += size
                self._trim(d)
                if self._kept > self.KEPT_BYTES:  # this date alone is over the budget: not kept
                    del d.situations[situation]
                    self._kept -= size
        return _json(found) if template is None else template


def _blanked(eligibility: dict, idu: str) -> bytes | None:
    """The eligibility JSON with ``idu`` replaced by BLANK where it is the parcel's id, or None
    when the id appears anywhere else (a text naming it: never shared with another parcel)."""
    results = eligibility.get("resultats") or []
    if eligibility.get("rejetes") or len(results) != 1 or results[0].get("idu") != idu:
        return None
    copy = dict(eligibility)
    entry = dict(results[0], idu=BLANK)
    replies = []
    for reply in entry.get("reponses", []):
        if reply.get("idu") not in (idu, None):
            return None
        replies.append(dict(reply, idu=BLANK) if reply.get("idu") == idu else reply)
    entry["reponses"] = replies
    copy["resultats"] = [entry]
    out = _json(copy)
    blanks = 1 + sum(r.get("idu") == idu for r in results[0].get("reponses", []))
    if idu.encode() in out or out.count(_BLANK) != blanks:
        return None
    return out
