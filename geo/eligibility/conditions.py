"""The conditions the rules file refers to: a small registry of named, tested functions.

Each ``condition = "…"`` of ``data/regles-eligibilite.toml`` names one :class:`Condition` of
:data:`REGISTRY`: the level it is decided at, what it means in words, the function answering it
from the national lists (without the parcel's geometry) and, for a condition decided by the place,
the area of the convention's perimeters a parcel is tested against (and a hook adjusting the
parcel's verdict where the law adds another route, such as a QPV). The rules file is checked
against this registry (:mod:`geo.eligibility.rules`): an unknown condition, or one at the wrong
level, is an error of the file.

Every function is pure: it reads its :class:`Context` and returns an
:class:`~geo.eligibility.evidence.Evidence`; nothing global is changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from geo import fmt
from geo.eligibility.evidence import (
    ARRETE,
    INCONNU,
    NON,
    OUI,
    PARTIELLEMENT,
    Evidence,
    acv_2018_evidence,
    anah_opah_ru,
    arrete_evidence,
    combine,
    concluded_caveats,
    current_of,
)

if TYPE_CHECKING:
    from geo.sources.lists import NationalLists

_fr = fmt.date_fr
#: Reason given for every place-level effect when the convention's sectors are not drawn.
NOT_DIGITISED = "secteurs de l'ORT non numérisés : vérifier dans la convention"
#: Label of Denormandie's 2019 partial verdict (centre of the commune only).
CENTRE_ONLY = "partiellement (centre seulement)"


@dataclass(frozen=True)
class Context:
    """What a condition reads: the rule, the commune (code as given), the date, the lists, the
    convention folder (if any) and the evidence of an ORT concluded by the commune."""

    # geo.eligibility.rules.Rule and Rules: that module imports this registry, not the reverse
    rule: Any
    rules: Any
    code: str
    day: dt.date
    lists: NationalLists
    convention: object | None
    ort: Evidence


@dataclass(frozen=True)
class Condition:
    """One named condition of the rules file."""

    name: str
    level: str
    text: str
    evaluate: Callable[[Context], Evidence]
    #: For place levels: the area of the perimeters tested (see ``answers._areas``) and its name.
    area: str = ""
    area_name: str = ""
    #: The effect applies outside the area (CDAC suspension).
    outside: bool = False
    #: The place condition needs an ORT concluded by the commune.
    needs_ort: bool = False
    #: Adjusts a parcel's evidence from its place (another route the perimeters do not hold).
    parcel: Callable[[Evidence, Context], Evidence] | None = None


REGISTRY: dict[str, Condition] = {}


def register(name: str, level: str, text: str, **place) -> Callable:
    """Decorator: register ``function`` as condition ``name`` decided at ``level``."""

    def wrap(function: Callable[[Context], Evidence]) -> Callable[[Context], Evidence]:
        REGISTRY[name] = Condition(name, level, text, function, **place)
        return function

    return wrap


def condition_at(ctx: Context) -> Condition:
    """The condition of ``ctx.rule`` in its wording at ``ctx.day``.

    The CDAC suspension (C. com. L752-1-2) reached, in the loi ELAN's wording, projects outside
    the operation's intervention sectors; since the loi 3DS (n° 2022-217, art. 96, in force on
    the date of the parameter ``cdac_centre_ville_depuis``), outside the sectors that include a
    centre-ville. Before that date the area tested is every intervention sector.
    """
    cond = REGISTRY[ctx.rule.condition]
    since = ctx.rules.parameters.get("cdac_centre_ville_depuis")
    if cond.name == "hors_secteurs_centre_ville" and since and ctx.day < since:
        return replace(
            cond,
            text="commune signataire, HORS des secteurs d'intervention de l'ORT (rédaction de la loi ELAN)",
            area="__secteurs__",
            area_name="un secteur d'intervention de l'ORT",
        )
    return cond


def levels() -> dict[str, str]:
    """``condition name -> level`` (what the rules file is checked against)."""
    return {name: c.level for name, c in REGISTRY.items()}


# --------------------------------------------------------------------------------------------
# Commune and ORT levels


@register(
    "arrete_denormandie_ou_ort",
    "commune",
    "commune de la liste de l'arrêté du 26 mars 2019 ou ayant conclu une ORT",
)
def denormandie(ctx: Context) -> Evidence:
    """Three routes: the arrêté's list, an ORT concluded, a copropriété in difficulty (since
    2024-04-11). Acquisitions of 2019: the centre of the commune only, never a plain "oui"."""
    day, lists, ort = ctx.day, ctx.lists, ctx.ort
    arrete = arrete_evidence(ctx.code, day, lists)
    ort_route = ort.copy()
    if ort_route.verdict == OUI:
        ort_route.caveats += concluded_caveats(ctx.code, day, lists)
    parts = [arrete, ort_route]
    ev = Evidence(combine(parts), "", [*arrete.data, *ort.data], [*arrete.caveats, *ort_route.caveats])
    ev.reason = " ; ".join(e.reason for e in parts if e.verdict == ev.verdict) or ort.reason
    ev.routes = [
        {"voie": f"liste de l'{ARRETE}", "verdict": arrete.verdict, "motif": arrete.reason},
        {"voie": "ORT conclue", "verdict": ort_route.verdict, "motif": ort_route.reason},
    ]
    p = ctx.rules.parameters
    since = p.get("denormandie_tout_le_territoire_depuis")
    if ev.verdict == OUI and since and day < since:
        ev.verdict, ev.label = PARTIELLEMENT, CENTRE_ONLY
        ev.reason = (
            f"acquisition avant le {_fr(since)} : seuls les logements du centre de la commune sont visés "
            f"(IV bis, rédaction de la LF 2019 ; toute la commune pour les acquisitions depuis le "
            f"01/01/2020 : LF 2020, loi n° 2019-1479, art. 115) — {ev.reason}"
        )
    copro = p.get("denormandie_coproprietes_depuis")
    if copro and day >= copro:
        ev.routes.append(
            {
                "voie": "copropriété en difficulté",
                "verdict": INCONNU,
                "motif": "dépend du logement : copropriété sous administration provisoire (loi n° 65-557, "
                "art. 29-1) ou dans le périmètre d'une ORCOD (CCH L741-1, L741-2), dans toute commune",
            }
        )
        if ev.verdict != OUI:
            ev.reason += (
                f" — sauf logement d'une copropriété sous administration provisoire ou en ORCOD, "
                f"éligible dans toute commune depuis le {_fr(copro)} (loi n° 2024-322, art. 42)"
            )
    elif copro:
        ev.routes.append(
            {
                "voie": "copropriété en difficulté",
                "verdict": NON,
                "motif": f"voie ouverte le {_fr(copro)} (loi n° 2024-322, art. 42), après le {_fr(day)}",
            }
        )
    return ev  # the acquisition period is the rule's period, said with every answer (« période : »)


@register("ort_conclue", "ort", "commune ayant conclu une ORT")
def ort_concluded(ctx: Context) -> Evidence:
    return ctx.ort.copy()


@register(
    "ort_services_perimetre",
    "ort",
    "commune ayant conclu une ORT : vaut pour les services publics situés dans le périmètre de l'opération",
)
def ort_services(ctx: Context) -> Evidence:
    """Information before a public service closes: an obligation about the services inside the
    operation's perimeter, not a property of a parcel. Since the loi 3DS (n° 2022-217, art. 156)
    CGCT L2255-1 no longer names the communes signatory of an ORT: without an ORT the answer is
    "inconnu" (the article still speaks of « le périmètre de l'opération »), never "non"."""
    ev = ctx.ort.copy()
    since = ctx.rules.parameters.get("fermeture_service_toutes_communes_depuis")
    if ev.verdict == NON and since and ctx.day >= since:
        return ev.copy(
            verdict=INCONNU,
            reason=(
                f"L2255-1 n'exige plus d'ORT depuis le {_fr(since)} (loi 3DS) : portée à vérifier "
                f"— {ev.reason}"
            ),
        )
    if ev.verdict == NON:
        return ev
    ev.reason += " — vaut pour les services situés dans le périmètre de l'opération, pas pour une parcelle"
    return ev


@register("ort_ou_acv_2018", "ort", "ORT conclue, ou convention ACV de 2018 signée")
def ort_or_acv_2018(ctx: Context) -> Evidence:
    ort = ctx.ort
    acv = acv_2018_evidence(ctx.code, ctx.day, ctx.lists)
    ev = Evidence(combine([acv, ort]), "", [*ort.data, *acv.data], list(ort.caveats))
    ev.reason = " ; ".join(e.reason for e in (ort, acv) if e.verdict == ev.verdict) or ort.reason
    return ev


@register("ort_information", "ort", "effet de l'ORT à vérifier dans la convention et les délibérations")
def ort_information(ctx: Context) -> Evidence:
    if ctx.ort.verdict == NON:
        return ctx.ort.copy()
    return ctx.ort.copy(
        verdict=INCONNU, reason=ctx.ort.reason + " : effet à vérifier dans la convention et les délibérations"
    )


# --------------------------------------------------------------------------------------------
# Place levels: answered for a commune without geometry, for a parcel from the perimeters


def sectors_state(convention, code: str, day: dt.date) -> str:
    """Why a convention covering ``code`` has no perimeter to read at ``day`` ('' if it has)."""
    from geo.errors import PerimeterError

    if convention is None or code not in convention.communes:
        return ""
    if not convention.versions:
        return NOT_DIGITISED
    try:
        convention.version_at(day)
    except PerimeterError:
        first = convention.versions[0].date_effet
        return (
            f"aucune version des périmètres en vigueur le {_fr(day)} (première le {_fr(first)}) : "
            "secteurs à vérifier dans la convention"
        )
    return ""


def qpv_of(lists: NationalLists, code: str) -> list[str]:
    """The QPV 2024 of the commune (its current code), ``code name`` each."""
    found = []
    for r in lists.rows("qpv", current_of(lists, code) or code):
        names = list(r.get("libs_qp") or []) + [""] * len(r.get("codes_qp") or [])
        found += [f"{c} {n}".strip() for c, n in zip(r.get("codes_qp") or [], names, strict=False)]
    return found


def _place(ctx: Context) -> Evidence:
    """A place-level condition for a commune, without the parcel's geometry: "non" only when no
    ORT (and, for OPAH-RU, the Anah list; for the artificialisation derogation, no QPV) rules
    it out."""
    cond = condition_at(ctx)
    ort, code, day, lists = ctx.ort, ctx.code, ctx.day, ctx.lists
    anah = anah_opah_ru(code, day, lists) if "opah_ru" in cond.name else None
    data = list(ort.data) + (anah.data if anah else [])
    state = sectors_state(ctx.convention, code, day)
    if cond.name == "opah_ru":
        if anah is not None and anah.verdict == NON:
            return anah
        why = anah.reason if anah is not None else "périmètre OPAH-RU non fourni"
        return Evidence(
            INCONNU, f"{why} ({state or 'donnez une parcelle et le dossier de périmètres'})", data
        )
    if ort.verdict == NON and (cond.name != "secteurs_ort_ou_opah_ru" or (anah and anah.verdict == NON)):
        return _without_ort(ctx, cond, data)
    if state:
        reason = state
    elif ort.verdict == INCONNU and ort.reason:
        reason = ort.reason
    elif cond.level == "deliberation":
        reason = deliberation_reason(cond)
    elif cond.name == "zrcv_centre_ville":
        reason = ZRCV_REASON
    else:
        reason = (
            f"dépend de la localisation par rapport à {cond.area_name} : donnez une parcelle et le dossier "
            "de périmètres (--perimeters)"
        )
    return Evidence(INCONNU, reason, data, list(ort.caveats))


def _without_ort(ctx: Context, cond: Condition, data: list[str]) -> Evidence:
    """No ORT concluded at the date: "non", unless another route stays open (a QPV for the
    artificialisation derogation; the EPCI of signatory communes for the CDAC suspension)."""
    ort, code, day, lists = ctx.ort, ctx.code, ctx.day, ctx.lists
    qpv = qpv_of(lists, code) if cond.name == "secteurs_ort_ou_qpv" else []
    if qpv:
        return Evidence(
            INCONNU,
            f"pas d'ORT conclue au {_fr(day)}, mais la commune a un quartier prioritaire "
            f"({', '.join(qpv)}) : dépend de la localisation du projet dans le QPV",
            data,
            list(ort.caveats),
        )
    partners = epci_signatories(code, day, lists) if cond.outside else ""
    if partners:
        return Evidence(
            INCONNU,
            f"commune non signataire, mais de l'EPCI de communes ayant conclu une ORT ({partners}) : "
            "le préfet peut y suspendre aussi les projets (L752-1-2, 2e alinéa), selon leur zone de "
            "chalandise",
            data,
            list(ort.caveats),
        )
    ev = Evidence(NON, f"pas d'ORT conclue au {_fr(day)} ({ort.reason})", data, list(ort.caveats))
    if cond.name == "secteurs_ort_ou_qpv":
        ev.reason += " ; aucun quartier prioritaire dans la commune (liste QPV 2024)"
    if cond.outside:
        ev.caveats.append(
            "L752-1-2, 2e alinéa : une commune d'un EPCI limitrophe d'un EPCI signataire peut aussi être "
            "visée par la suspension (non calculé)"
        )
    return ev


def deliberation_reason(cond: Condition) -> str:
    """Where to look for a perimeter set by a municipal deliberation."""
    return (
        f"fixé par délibération municipale, pas par la convention : {cond.area_name} à vérifier "
        "(délibérations, annexes du PLU)"
    )


ZRCV_REASON = (
    "selon l'arrêté ZRCV et les délibérations : secteurs centre-ville des communes de l'arrêté, "
    "exonérations sur délibération"
)


def _place_condition(name: str, level: str, text: str, area: str, area_name: str, **kw) -> None:
    REGISTRY[name] = Condition(name, level, text, _place, area=area, area_name=area_name, **kw)


def _qpv_route(ev: Evidence, ctx: Context) -> Evidence:
    """Artificialisation derogation: outside the ORT sectors, a QPV of the commune is another route."""
    if ev.verdict not in (NON, PARTIELLEMENT):
        return ev
    qpv = qpv_of(ctx.lists, ctx.code)
    if not qpv:
        if ev.verdict == NON:
            ev.reason += " ; aucun quartier prioritaire dans la commune (liste QPV 2024)"
        return ev
    where = (
        f"la commune a un quartier prioritaire ({', '.join(qpv)}) : le QPV est l'autre voie de la dérogation"
    )
    if ev.verdict == NON:
        return ev.copy(verdict=INCONNU, reason=f"{ev.reason} ; mais {where}, localisation à vérifier")
    ev.caveats.append(where)
    return ev


def _zrcv_place(ev: Evidence, ctx: Context) -> Evidence:
    """ZRCV: inside a centre-ville sector, still subject to the arrêté's list and deliberations."""
    if ev.verdict == NON:
        return ev.copy(reason=ev.reason + " : hors ZRCV")
    return ev.copy(verdict=INCONNU, reason=f"{ev.reason} ; selon l'arrêté ZRCV et délibération")


_place_condition(
    "opah_ru",
    "perimetre",
    "dans un périmètre OPAH-RU en vigueur",
    "__opah_ru__",
    "un périmètre OPAH-RU en vigueur",
)
_place_condition(
    "secteurs_ort_ou_opah_ru",
    "perimetre",
    "dans un secteur d'intervention de l'ORT ou une OPAH-RU en vigueur",
    "__secteurs_ou_opah_ru__",
    "un secteur d'intervention de l'ORT ou un périmètre OPAH-RU",
)
_place_condition(
    "secteurs_ort",
    "secteur",
    "dans un secteur d'intervention de l'ORT",
    "__secteurs__",
    "un secteur d'intervention de l'ORT",
    needs_ort=True,
)
_place_condition(
    "secteurs_ort_ou_qpv",
    "secteur",
    "dans un secteur d'intervention de l'ORT ou dans un QPV",
    "__secteurs__",
    "un secteur d'intervention de l'ORT",
    parcel=_qpv_route,
)
_place_condition(
    "secteur_centre_ville",
    "secteur",
    "dans un secteur d'intervention comprenant un centre-ville",
    "__centre_ville__",
    "un secteur d'intervention comprenant un centre-ville",
    needs_ort=True,
)
_place_condition(
    "zrcv_centre_ville",
    "secteur",
    "dans un secteur comprenant un centre-ville d'une commune de l'arrêté ZRCV, sur délibération",
    "__centre_ville__",
    "un secteur d'intervention comprenant un centre-ville",
    needs_ort=True,
    parcel=_zrcv_place,
)
_place_condition(
    "hors_secteurs_centre_ville",
    "hors_secteurs",
    "commune signataire, HORS des secteurs comprenant un centre-ville",
    "__centre_ville__",
    "un secteur d'intervention comprenant un centre-ville",
    outside=True,
    needs_ort=True,
)
_place_condition(
    "dpu_renforce",
    "deliberation",
    "dans un périmètre de DPU renforcé fixé par délibération",
    "__dpu_renforce__",
    "un périmètre de DPU renforcé",
    needs_ort=True,
)
_place_condition(
    "preemption_commerciale",
    "deliberation",
    "dans un périmètre de préemption commerciale fixé par délibération",
    "__preemption_commerciale__",
    "un périmètre de préemption commerciale",
    needs_ort=True,
)


def epci_signatories(code: str, day: dt.date, lists: NationalLists) -> str:
    """Communes of ``code``'s EPCI whose ORT is signed on or before ``day`` ('' if none)."""
    record = lists.commune(lists.resolve(code)[0] or code)
    epci = (record or {}).get("epci_code")
    if not isinstance(epci, str) or not epci or "communes" not in lists:
        return ""
    key = ("epci_ort", day)
    index = lists._index.get(key)
    if index is None:
        ort, communes = lists["ort"], lists["communes"]
        signed = ort[
            (ort["signee"] == "signee")
            & ort["date_signature"].map(lambda d: d is not None and d <= day)
            & ort["code_actuel"].notna()
        ]
        index = {}
        for current, name in zip(signed["code_actuel"], signed["commune"], strict=True):
            if current in communes.index:
                index.setdefault(communes.at[current, "epci_code"], []).append(f"{current} {name}")
        lists._index[key] = index  # a cache: built the same by any thread
    found = sorted({c for c in index.get(epci, []) if not c.startswith(code)})
    return ", ".join(found[:5]) + (" …" if len(found) > 5 else "")


def evaluate(ctx: Context) -> Evidence:
    """The evidence of ``ctx.rule``'s condition for a commune (no geometry)."""
    return REGISTRY[ctx.rule.condition].evaluate(ctx)
