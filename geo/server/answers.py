"""The answers the server gives, each from the application layer (:mod:`geo.app`) and the
library over the loaded catalogue.

A parcel's answer is its check (:func:`geo.app.answer_parcels`: the
:class:`geo.app.Verification` that ``ort check --json`` prints) and its eligibility
(:func:`geo.eligibility.service.answer_eligibility`: the :class:`ResultatEligibilite` that
``ort eligibility --json`` prints) at one date; an address is :func:`geo.app.answer_address`,
a note :func:`geo.app.note_pdf`. Nothing here changes the catalogue; per-call choices go in a
frozen :class:`geo.app.Settings`. Answers are kept once computed
(:class:`geo.server.catalogue.Memo`): the same question gets the same bytes.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import threading

from geo.errors import InputError, OrtError, ParcelIdError
from geo.server.catalogue import Catalogue, Loaded
from geo.server.problems import Problem


@functools.cache
def _settings():
    from geo.app import Settings

    return Settings(progress=False)


def parse_day(text: str | None) -> dt.date:
    """A date as a person types it (``2024-09-01`` or ``01/09/2024``), by the library's one parser;
    today when empty."""
    from geo.perimeters import parse_date

    if text is None or not str(text).strip():
        return dt.date.today()
    return parse_date(str(text)[:40])


def locate_parcel(cat: Catalogue, text: str, commune: str | None) -> tuple[str, Loaded | None]:
    """The IDU of ``text`` (any form a person types) and the convention covering its commune."""
    from geo.idu import parse_idu

    if len(text) > 64:
        raise ParcelIdError("identifiant de parcelle trop long", fix="ex. 62999000AB0012 ou AB 12")
    code = commune.strip().upper() if commune else cat.default_commune()
    try:
        parcel = parse_idu(text, code_insee=code)
    except ParcelIdError as err:
        if code is None and "sans commune" in str(err):
            communes = sorted({c for item in cat.conventions.values() for c in item.communes})
            raise ParcelIdError(
                err.message,
                fix=f"ajoutez la commune (paramètre commune=, l'une de {', '.join(communes)}) ou donnez "
                "l'identifiant complet, ex. 62999000AB0012",
            ) from None
        raise
    return parcel.idu, cat.for_commune(parcel.code_insee)


def _perimeters_at(cat: Catalogue, item: Loaded):
    """``item.convention.perimeters`` answered from the catalogue's perimeters of each date."""

    def at(day: dt.date):
        perims, error = cat.perimeters_in_force(item, day)
        if error is not None:  # a copy: the kept error's traceback never grows
            raise copy.copy(error).with_traceback(None)
        return perims

    return at


def parcel_answer(cat: Catalogue, text: str, day: dt.date, commune: str | None = None) -> bytes:
    """The check and the eligibility of one parcel at ``day``, as JSON bytes: put together from
    the structures prepared once (:mod:`geo.server.fast`) when they hold it, else computed; kept
    once given (the catalogue never changes), 64 MB of answers at most."""
    idu, item = locate_parcel(cat, text, commune)
    name = item.name if item else None
    return cat.answers.get(("parcelle", idu, name, day), lambda: _parcel_bytes(cat, idu, item, day))


def _parcel_bytes(cat: Catalogue, idu: str, item: Loaded | None, day: dt.date) -> bytes:
    """The answer's bytes: from the structures prepared once (:mod:`geo.server.fast`) when they
    answer it exactly, else computed by :func:`_compute`."""
    name = item.name if item else None

    def general(ident: str) -> bytes:
        return _json(_compute(cat, ident, name, day))

    def eligibility(ident: str) -> dict:
        return _eligibility(cat, day, item, parcels=[(ident, None)])

    fast = cat.fast_for(item) if item is not None else None
    found = fast.answer(cat, idu, day, general, eligibility) if fast is not None else None
    return found if found is not None else general(idu)


def _regime_days(conv) -> list[dt.date]:
    """The first day of each set of perimeters in force the convention knows (its versions and
    the periods of its OPAH-RU), by :func:`geo.check_digest.regime_intervals`."""
    from geo.check_digest import regime_intervals

    try:
        intervals = regime_intervals(conv)
    except (ValueError, OrtError):  # a date the digest cannot read: each date prepared when asked
        return [v.date_effet for v in conv.versions]
    firsts: dict = {}
    for start, _end, key in intervals:
        if key is not None:
            firsts.setdefault(key, dt.date.fromisoformat(start))
    return list(firsts.values())


def prepare(cat: Catalogue, days=()) -> None:
    """Prepare the fast parcel answers (:mod:`geo.server.fast`) of every convention with a
    cadastre for ``days``, the first day of each of its regimes and today: done at start, not by
    a request (a new date then costs one general answer, a new regime none)."""
    for item in cat.conventions.values():
        fast = cat.fast_for(item)
        if fast is None:
            continue
        wanted = [*days, *_regime_days(item.convention), dt.date.today()]

        def general_at(day, item=item):
            return lambda ident: _json(_compute(cat, ident, item.name, day))

        fast.warm(cat, list(dict.fromkeys(wanted)), general_at)


def _json(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _eligibility(cat: Catalogue, day: dt.date, item: Loaded | None, **asked):
    """:func:`geo.eligibility.service.answer_eligibility` over the catalogue: what
    ``ort eligibility --json`` prints; a refused entry is a 4xx with the library's reason."""
    from geo.eligibility.service import answer_eligibility

    result = answer_eligibility(
        day,
        lists=cat.lists,
        rules=cat.rules,
        convention=item.convention if item is not None else None,
        parcel_layer=(lambda: item.parcels) if item is not None and item.parcels is not None else None,
        perimeters_at=_perimeters_at(cat, item) if item is not None else None,
        **asked,
    )
    if result.rejetes and not result.resultats:
        message = result.rejetes[0].erreur
        error = ParcelIdError if "absente" in message else InputError
        raise error(message, fix="vérifiez l'identifiant ou le code INSEE")
    return result.model_dump(mode="json", exclude_none=False)


def _compute(cat: Catalogue, idu: str, name: str | None, day: dt.date) -> dict:
    item = cat.conventions.get(name) if name else None
    out: dict = {"idu": idu, "date": day.isoformat(), "convention_id": name, "verification": None}
    if item is None:  # no convention of this server covers the commune: commune-level answers only
        out["eligibilite"] = _eligibility(cat, day, None, parcels=[(idu, None)])
        out["remarque"] = "aucune convention de ce serveur ne couvre cette commune"
        return out
    perims, no_version = cat.perimeters_in_force(item, day)
    no_version = str(no_version) if no_version is not None else ""
    if perims is not None and item.territoire is None and item.problem:
        raise InputError(item.problem)
    if perims is None or item.territoire is None:
        out["eligibilite"] = _eligibility(cat, day, item, parcels=[(idu, None)])
        out["remarque"] = no_version or "secteurs de l'ORT non numérisés : vérifier dans la convention"
        return out
    from geo.app import answer_parcels

    check = answer_parcels([idu], territoire=item.territoire, date=day, settings=_settings())
    if check.rejetes:
        raise ParcelIdError(
            check.rejetes[0].erreur, fix="vérifiez la section et le numéro sur le cadastre de la commune"
        )
    out["verification"] = check.model_dump(mode="json")
    out["eligibilite"] = _eligibility(cat, day, item, parcels=[(idu, None)])
    return out


def commune_answer(cat: Catalogue, code: str, day: dt.date) -> bytes:
    """The eligibility of a commune at ``day`` (national lists, and its convention when loaded),
    as JSON bytes (computed once per commune and day)."""
    from geo.sources.lists import normalise_code

    value, note = normalise_code(code)
    if value is None or note:
        raise InputError(f"code INSEE {code[:20]!r} refusé : {note}", fix="5 caractères, ex. 62907 ou 2A004")
    item = cat.for_commune(value)
    compute = lambda: _json(_eligibility(cat, day, item, communes=[(value, "--commune")]))  # noqa: E731
    return cat.answers.get(("commune", value, day), compute)


def address_answer(cat: Catalogue, query: str, day: dt.date) -> bytes:
    """Geocode ``query`` (the server's address file, else BAN), then answer the parcel holding its
    point; an ambiguous address gives its candidates and no answer. JSON bytes, kept once computed."""
    if len(query) > 200:
        raise InputError("adresse trop longue (plus de 200 caractères)", fix="ex. 12 rue de la Gare, Ormeval")
    items = [i for i in cat.conventions.values() if i.territoire is not None]
    if not items:
        raise InputError("aucun cadastre chargé : ce serveur ne place pas d'adresse")
    key = ("adresse", " ".join(query.split()).casefold(), day)
    return cat.answers.get(key, lambda: _address_answer(cat, items, query, day))


def _address_answer(cat: Catalogue, items: list[Loaded], query: str, day: dt.date) -> bytes:
    from geo.app import answer_address

    found = None
    for item in items:
        located = answer_address(query, territoire=item.territoire, date=day, settings=_settings())
        found = found or located
        if located.adresses and located.adresses[0].idu:
            found = located
            break
    adresse = found.adresses[0].model_dump(mode="json") if found.adresses else None
    idu = adresse["idu"] if adresse else None
    head = _json({"requete": query, "adresse": adresse})[:-1]  # the parcel's answer, as computed, inside
    return head + b',"reponse":' + (parcel_answer(cat, idu, day, None) if idu else b"null") + b"}"


#: Notes drawn at once by one worker process, and how long a request waits for its turn. Drawing
#: holds the interpreter: beyond this a busy worker would miss its health check (uvicorn then
#: kills it with every request in flight), so a note past the queue is a 503 with Retry-After.
NOTES_IN_FLIGHT = 4
NOTE_WAIT_S = 20.0
_notes_gate = threading.BoundedSemaphore(NOTES_IN_FLIGHT)


def note_pdf(cat: Catalogue, text: str, day: dt.date, commune: str | None = None) -> tuple[str, bytes]:
    """The note of one parcel as PDF bytes (:func:`geo.app.note_pdf`; nothing left on disk)."""
    from geo import app

    idu, item = locate_parcel(cat, text, commune)
    if item is None or item.territoire is None:
        raise InputError(
            f"pas de note pour {idu} : aucune convention avec périmètres et cadastre ne couvre sa commune",
            fix=f"demandez l'éligibilité de la commune : /api/communes/{idu[:5]}/eligibilite",
        )
    if not (item.parcels["idu"] == idu).any():
        raise ParcelIdError(
            f"parcelle {idu} absente du cadastre chargé "
            f"(millésime {item.parcels.attrs.get('millesime', 'inconnu')})",
            fix="vérifiez la section et le numéro",
        )

    def draw() -> bytes:
        return app.note_pdf(
            idu, territoire=item.territoire, date=day, lists=cat.lists, rules=cat.rules, settings=_settings()
        )

    def drawn_in_turn() -> bytes:
        if not _notes_gate.acquire(timeout=NOTE_WAIT_S):
            raise Problem(
                503,
                f"trop de notes en cours de dessin sur ce serveur : la note de {idu} n'a pas pu être faite",
                fix="réessayez dans quelques secondes",
                headers={"Retry-After": "5"},
            )
        try:
            return draw()
        finally:
            _notes_gate.release()

    return idu, cat.notes.get((idu, day), drawn_in_turn)
