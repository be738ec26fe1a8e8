"""What a commune or a parcel gets from an ORT, at a date — every answer explaining itself.

The rules are data (``data/regles-eligibilite.toml``, read by
:func:`geo.eligibility.rules.load_rules`); this module evaluates them with pure functions over the
national lists (:mod:`geo.sources.lists`) and, for parcels, the perimeters in force
(:mod:`geo.perimeters`). Each :class:`Answer` carries the verdict (``oui`` / ``non`` /
``partiellement`` with the share of a straddling parcel / ``inconnu`` when data is missing), the
reason naming the list row or perimeter used, the rule's legal reference, the date evaluated, the
period of the rule, the data used with their own dates, the caveats, the points still to verify
and the one-line disclaimer.

"non" is said only when the data say so: a convention signed at the date whose sectors are not
digitised answers "inconnu" for every effect decided by the place ("secteurs de l'ORT non
numérisés : vérifier dans la convention"), never "non".

A multi-commune convention is answered commune by commune: each commune's own row of the
national lists decides its commune-level effects.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import pandas as pd

from geo import fmt
from geo.eligibility.conditions import NOT_DIGITISED, REGISTRY, Context, condition_at, evaluate
from geo.eligibility.evidence import (
    ARRETE,
    INCONNU,
    NON,
    OUI,
    PARTIELLEMENT,
    Evidence,
    anah_opah_ru,
    arrete_evidence,
    arrete_table,
    convention_end,
    ended,
    ort_evidence,
)
from geo.eligibility.rules import PLACE_LEVELS, RULES_NAME, Rule, Rules, load_rules
from geo.errors import InputError
from geo.prepared import classified, derived
from geo.sources.lists import NationalLists

if TYPE_CHECKING:  # geopandas, shapely and classify load only for parcels: a commune answers faster
    import geopandas as gpd

__all__ = [
    "NOT_DIGITISED",
    "RULES_NAME",
    "VERDICTS",
    "Answer",
    "Rules",
    "answers_to_frame",
    "arrete_evidence",
    "counts_by_departement",
    "eligibility_for_commune",
    "eligibility_for_parcels",
    "eligible_communes",
    "load_rules",
    "ort_evidence",
    "signed_ort_by_departement",
    "signed_ort_communes",
]

VERDICTS = (OUI, NON, PARTIELLEMENT, INCONNU)
_fr = fmt.date_fr
# --------------------------------------------------------------------------------------------
# Answers


@dataclass
class Answer:
    """One effect for one commune (or parcel) at one date, with everything that explains it."""

    code_insee: str
    commune: str
    effect: str
    effect_label: str
    level: str
    verdict: str
    reason: str
    reference: str
    evaluated_on: dt.date
    period: str
    data_used: list[str]
    caveats: list[str]
    to_verify: list[str] = field(default_factory=list)
    idu: str | None = None
    share: float | None = None
    name: str = ""
    verdict_label: str = ""
    disclaimer: str = ""
    verified_on: dt.date | None = None
    routes: list[dict] = field(default_factory=list)

    @property
    def a_verifier(self) -> bool:
        """True exactly when points to verify are printed with the answer."""
        return bool(self.to_verify)

    def verdict_text(self) -> str:
        """The verdict as people read it: ``OUI``, ``PARTIELLEMENT``, ``non``, ``inconnu``, or the
        rule's own wording of a yes (``OUI (priorité de programmation, non opposable)``)."""
        if self.verdict in (OUI, PARTIELLEMENT) and self.verdict_label:
            word = self.verdict.upper()
            label = self.verdict_label
            return word + label[len(self.verdict) :] if label.startswith(self.verdict) else label
        return self.verdict.upper() if self.verdict in (OUI, PARTIELLEMENT) else self.verdict

    def scope(self) -> str:
        """At what level the verdict holds, in words: « toute la commune », « part dans les
        secteurs », « hors secteurs »… ('' when nothing useful can be said)."""
        if self.level == "commune":
            if self.verdict == PARTIELLEMENT and "centre" in self.verdict_label:
                return "centre de la commune seulement"
            if self.verdict != OUI:
                return ""
            return "effet communal : toute la commune" if self.idu else "toute la commune"
        if self.level == "ort":
            return "commune ayant conclu l'ORT" if self.verdict == OUI else ""
        if self.idu is None or self.share is None:
            return ""
        outside = self.level == "hors_secteurs"
        where = "hors des secteurs" if outside else "dans les secteurs"
        if self.level in ("perimetre", "deliberation"):
            where = "dans le périmètre"
        if self.verdict == PARTIELLEMENT:
            return f"{fmt.percent(self.share)} de la parcelle {where}"
        if self.share >= 1.0:
            return f"parcelle {where}"
        if self.share <= 0.0:
            return "parcelle dans les secteurs" if outside else "parcelle hors secteurs"
        return ""

    def summary(self) -> str:
        """One line: the dispositif, its verdict with its scope, and the first clause of the reason."""
        scope = self.scope()
        scope = f" [{scope}]" if scope else ""
        short = _first_clause(self.reason, (" (", " ; ", " — "))
        if len(short) > 80:  # the detail says the rest
            short = _first_clause(short, (" : ",))
        return f"{self.name or self.effect} : {self.verdict_text()}{scope} — {short}"

    def to_dict(self) -> dict:
        """JSON-ready, with the French keys of the CLI output."""
        return {
            "code_insee": self.code_insee,
            "commune": self.commune,
            "idu": self.idu,
            "regle": self.effect,
            "dispositif": self.name,
            "effet": self.effect_label,
            "niveau": LEVEL_LABELS.get(self.level, self.level),
            "portee": self.scope(),
            "verdict": self.verdict,
            "verdict_libelle": self.verdict_label or self.verdict,
            "part": None if self.share is None else round(float(self.share), 6),
            "motif": self.reason,
            "voies": [dict(r) for r in self.routes],
            "reference": self.reference,
            "date_evaluee": self.evaluated_on.isoformat(),
            "periode": self.period,
            "donnees": list(self.data_used),
            "mises_en_garde": list(self.caveats),
            "a_verifier": self.a_verifier,
            "points_a_verifier": list(self.to_verify),
            "verifie_le": self.verified_on.isoformat() if self.verified_on else None,
            "avertissement": self.disclaimer,
        }


#: French names of the levels a rule applies at (``level`` of the rules file), for people.
LEVEL_LABELS = {
    "commune": "commune",
    "ort": "ORT",
    "perimetre": "périmètre",
    "secteur": "secteur",
    "hors_secteurs": "hors secteurs",
    "deliberation": "délibération",
}


def _first_clause(text: str, cuts: tuple[str, ...]) -> str:
    """``text`` up to the first of ``cuts`` that is not inside « … » (a quoted name)."""
    depth = 0
    for i, ch in enumerate(text):
        depth += (ch == "«") - (ch == "»")
        if depth == 0 and any(text.startswith(c, i) for c in cuts):
            return text[:i]
    return text


def answers_to_frame(answers: list[Answer]) -> pd.DataFrame:
    """One row per answer; lists joined with `` | `` for CSV/XLSX."""
    rows = [a.to_dict() for a in answers]
    for row in rows:
        for key in ("donnees", "mises_en_garde", "points_a_verifier"):
            row[key] = " | ".join(row[key])
        row["voies"] = " | ".join(f"{v['voie']} : {v['verdict']}" for v in row["voies"])
    return pd.DataFrame(rows, columns=list(rows[0]) if rows else None)


# --------------------------------------------------------------------------------------------
# Evaluating the rules


def _answer(rule: Rule, rules: Rules, code: str, commune: str, day: dt.date, ev: Evidence, **kw) -> Answer:
    caveats = list(dict.fromkeys([*ev.caveats, *rule.caveats]))
    label = ev.label or (rule.yes_label if ev.verdict == OUI and rule.yes_label else "")
    return Answer(
        code,
        commune,
        rule.id,
        rule.effect,
        rule.level,
        ev.verdict,
        ev.reason,
        rule.reference,
        day,
        rule.period(),
        list(dict.fromkeys(ev.data)),
        caveats,
        list(rule.to_verify),
        name=rule.name,
        verdict_label=label,
        disclaimer=rules.disclaimer_for(rule),
        verified_on=rules.verified_on,
        routes=list(ev.routes),
        **kw,
    )


def _out_of_period(rule: Rule, day: dt.date) -> Evidence | None:
    if rule.in_period(day):
        return None
    if rule.valid_from and day < rule.valid_from:
        return Evidence(
            NON,
            f"le {_fr(day)} est antérieur à l'entrée en vigueur de la règle ({_fr(rule.valid_from)})",
        )
    return Evidence(
        NON,
        f"le {_fr(day)} est postérieur à la fin de la règle ({_fr(rule.valid_to)}, {rule.valid_to_source})",
    )


def _commune_name(code: str, lists: NationalLists, convention) -> str:
    current, _ = lists.resolve(code)
    record = lists.commune(current) if current else None
    rows = lists.rows("ort", code) or lists.rows("acv", code)
    name = (rows[0]["commune"] if rows else "") or (record or {}).get("nom") or ""
    if record and current != code:
        name = f"{name} (rattachée à {current} {record['nom']})".strip()
    elif record:
        name = record["nom"]
    elif not name and convention is not None:
        name = f"(commune de la convention « {convention.nom} »)"
    return name


def eligibility_for_commune(
    code_insee: str,
    when: dt.date,
    *,
    lists: NationalLists,
    rules: Rules,
    convention=None,
    idu: str | None = None,
) -> list[Answer]:
    """Every rule for one commune at a date, from the national lists (no geometry needed).

    Parameters
    ----------
    code_insee : str
        INSEE code, 5 characters (``"62907"``, ``"2A004"``); a former code is answered with a caveat.
    when : date
        Date evaluated (for Denormandie: the date of acquisition).
    lists, rules
        From :func:`geo.sources.lists.load_lists` and :func:`load_rules`.
    convention : geo.perimeters.Convention, optional
        A convention covering the commune: its signature counts when the national list lacks it,
        and its perimeters' state (not digitised, not yet in force) explains place-level answers.
    idu : str, optional
        Tag the answers with a parcel id.

    Raises
    ------
    InputError
        A code that is neither in the official commune list nor in any national list.
    """
    code = str(code_insee).strip().upper()
    current, how = lists.resolve(code)
    known = current or any(lists.rows(n, code) for n in ("ort", "acv", "pvd"))
    if not known and not (convention is not None and code in convention.communes):
        raise InputError(
            f"code INSEE {code} inconnu : ni dans la liste officielle des communes, ni dans les listes "
            "nationales",
            feature=code,
            fix="vérifiez le code (5 caractères, ex. 62907 ou 2A004 ; 01004 et non 1004)",
        )
    name = _commune_name(code, lists, convention)
    ort = ort_evidence(code, when, lists, convention)
    if how:
        ort.caveats.append(how)
    # Sources of the convention that disagree: quoted in every answer for its communes.
    conflicts = [c for c in ort.caveats if c.startswith("sources divergentes")]
    answers = []
    for rule in rules:
        ctx = Context(rule, rules, code, when, lists, convention, ort)
        ev = _out_of_period(rule, when) or evaluate(ctx)
        if rule.id == "denormandie" and ev.verdict == NON and not rule.in_period(when):
            ev.caveats.insert(0, f"période d'acquisition : {rule.period()}")
        ev.caveats += [c for c in conflicts if c not in ev.caveats]
        ev.data.append(rules.label())
        answers.append(_answer(rule, rules, code, name, when, ev, idu=idu))
    return answers


def eligibility_for_parcels(
    parcels: gpd.GeoDataFrame,
    perimeters: gpd.GeoDataFrame | None,
    when: dt.date,
    *,
    lists: NationalLists,
    rules: Rules,
    convention=None,
    tolerance_m2: float | None = None,
    tolerance_pct: float | None = None,
) -> list[Answer]:
    """Every rule for each parcel: commune-level rules from its commune, place-level rules from
    the share of the parcel inside the perimeters in force.

    Parameters
    ----------
    parcels : GeoDataFrame
        Parcels with ``idu`` (and ``code_insee``), polygons in a metric CRS (metres).
    perimeters : GeoDataFrame or None
        :meth:`geo.perimeters.Convention.perimeters` at ``when`` (same metric CRS; OPAH-RU
        perimeters whose ``en_vigueur`` is false do not count), or ``None`` when no version is
        in force: place-level rules then answer "inconnu" where the convention is signed (sectors
        not digitised), "non" only where no ORT is concluded at the date.
    when : date
        Date evaluated.
    lists, rules
        From :func:`geo.sources.lists.load_lists` and :func:`geo.eligibility.rules.load_rules`.
    convention : geo.perimeters.Convention, optional
        The convention of the perimeters (its signature and end date are quoted).
    tolerance_m2, tolerance_pct : float, optional
        Digitising tolerance, as in :func:`geo.classify.classify_parcels`.

    Returns
    -------
    list of Answer
        For each parcel, one answer per rule; ``share`` is the share of the parcel's area inside
        the area a place rule asks for (outside it, for "hors secteurs").
    """

    from geo.classify import OUTSIDE

    # The areas, their layer and the perimeters' columns: derived once per perimeters frame.
    areas, layer, named = (
        _area_layers(None)
        if perimeters is None
        else derived(perimeters, "eligibility-areas", lambda: _area_layers(perimeters))
    )
    hits: dict[tuple[str, str], object] = {}
    touched: dict[str, list[tuple[str, str, float]]] = {}
    if areas and len(parcels):
        tol = {"tolerance_m2": tolerance_m2, "tolerance_pct": tolerance_pct, "with_distance": False}
        hits = {(r.idu, r.perimeter_id): r for r in classified(parcels, layer, **tol)}
        for r in classified(parcels, named, **tol):
            if r.status != OUTSIDE:
                touched.setdefault(r.idu, []).append((r.perimeter_id, r.perimeter_nom, r.share))
    version = ""
    if perimeters is not None:
        a = perimeters.attrs
        version = (
            f"Périmètres : {a.get('convention', '')}, version « {a.get('version_libelle')} » "
            f"du {_fr(a.get('version_date'))}"
        )
    by_commune: dict[str, tuple[list[Answer], Evidence]] = {}
    answers = []
    ended_on = convention_end(convention) if convention is not None else None
    idus = parcels["idu"].tolist()
    codes = parcels["code_insee"].tolist() if "code_insee" in parcels.columns else [None] * len(idus)
    for idu, code in zip(idus, codes, strict=True):
        code = code or idu[:5]
        if code not in by_commune:
            by_commune[code] = (
                eligibility_for_commune(code, when, lists=lists, rules=rules, convention=convention),
                ort_evidence(code, when, lists, convention),
            )
        commune_answers, ort = by_commune[code]
        for ans in commune_answers:
            rule = rules.get(ans.effect)
            if rule.level not in PLACE_LEVELS or not rule.in_period(when) or perimeters is None:
                answers.append(
                    replace(ans, idu=idu, data_used=list(ans.data_used), caveats=list(ans.caveats))
                )
                continue
            ctx = Context(rule, rules, code, when, lists, convention, ort)
            ev = _parcel_place(ctx, idu, areas, hits, touched, perimeters)
            if ended_on is not None and when > ended_on and rule.condition != "opah_ru":
                if ev.verdict != NON and "convention échue" not in ev.reason:
                    ev = ev.copy(verdict=INCONNU, reason=f"{ended(ended_on)} — {ev.reason}")
            ev.data += [version] if version else []
            ev.data.append(rules.label())
            answers.append(
                _answer(rule, rules, ans.code_insee, ans.commune, when, ev, idu=idu, share=ev.share)
            )
    return answers


def _parcel_place(ctx: Context, idu, areas, hits, touched, perimeters) -> Evidence:
    """A place rule for one parcel, from the perimeters of the version in force."""
    cond = condition_at(ctx)
    when, lists, code = ctx.day, ctx.lists, ctx.code
    if cond.area in areas:
        members = areas[cond.area][1]
        near = [t for t in touched.get(idu, []) if t[0] in members]
        ev = _parcel_evidence(cond, hits[(idu, cond.area)], near)
        if cond.outside and ctx.ort.verdict == INCONNU and ev.verdict != NON:
            ev = ev.copy(
                verdict=INCONNU, reason=ev.reason + " ; signature de l'ORT par la commune à vérifier"
            )
        return cond.parcel(ev, ctx) if cond.parcel else ev
    has_sectors = "__secteurs__" in areas
    if cond.name == "opah_ru" or (cond.name == "secteurs_ort_ou_opah_ru" and not has_sectors):
        expired = _expired_opah(perimeters, when)
        if expired:  # the folder knows the OPAH-RU and its dates: not in force at that date
            return Evidence(
                NON, f"pas dans {REGISTRY['opah_ru'].area_name} le {_fr(when)}", caveats=expired, share=0.0
            )
        ev = Evidence(
            INCONNU,
            "aucun périmètre OPAH-RU dans le dossier de la convention : vérifier auprès de la collectivité",
        )
        anah = anah_opah_ru(code, when, lists)
        if anah is not None:
            ev = Evidence(
                anah.verdict,
                anah.reason,
                list(anah.data),
                ev.caveats,
                share=0.0 if anah.verdict == NON else None,
            )
        if cond.name == "secteurs_ort_ou_opah_ru" and not has_sectors and ev.verdict == NON:
            ev = Evidence(
                INCONNU,
                "aucun secteur d'intervention dans la version en vigueur : " + NOT_DIGITISED,
                ev.data,
                ev.caveats,
            )
        return ev
    if cond.level == "deliberation":
        from geo.eligibility.conditions import deliberation_reason

        return Evidence(INCONNU, deliberation_reason(cond))
    if not has_sectors:
        return Evidence(INCONNU, "aucun secteur d'intervention dans la version en vigueur : " + NOT_DIGITISED)
    # Sectors drawn, none marked as including a centre-ville: the convention must identify one.
    return Evidence(
        INCONNU,
        "aucun secteur marqué comme comprenant un centre-ville (propriété centre_ville) : "
        "vérifier dans la convention",
    )


def _area_layers(perimeters: gpd.GeoDataFrame | None) -> tuple[dict, object, object]:
    """:func:`_areas`, the layer of their geometries and the perimeters' id, name and geometry."""
    import geopandas as gpd

    if perimeters is None:
        return {}, None, None
    areas = _areas(perimeters)
    layer = gpd.GeoDataFrame(
        {"perimeter_id": list(areas)}, geometry=[a[0] for a in areas.values()], crs=perimeters.crs
    )
    return areas, layer, perimeters[["perimeter_id", "nom", "geometry"]]


def _areas(perimeters: gpd.GeoDataFrame) -> dict[str, tuple]:
    """The area each place rule asks for: ``key -> (geometry, ids of the perimeters in it)``."""
    import shapely

    in_force = perimeters["en_vigueur"].fillna(True).astype(bool) if "en_vigueur" in perimeters else True
    kept = perimeters[in_force] if not isinstance(in_force, bool) else perimeters
    secteurs = kept[kept["type"] == "secteur"]
    opah = kept[kept["type"] == "opah_ru"]
    centre = secteurs[secteurs["centre_ville"].fillna(False).astype(bool)]
    parts = {
        "__secteurs__": secteurs,
        "__opah_ru__": opah,
        "__centre_ville__": centre,
        "__secteurs_ou_opah_ru__": pd.concat([secteurs, opah]),
        "__dpu_renforce__": kept[kept["type"] == "dpu_renforce"],
        "__preemption_commerciale__": kept[kept["type"] == "preemption_commerciale"],
    }
    return {
        k: (shapely.union_all(v.geometry.to_numpy()), list(v["perimeter_id"]))
        for k, v in parts.items()
        if len(v)
    }


def _expired_opah(perimeters: gpd.GeoDataFrame | None, day: dt.date) -> list[str]:
    if perimeters is None or "en_vigueur" not in perimeters:
        return []
    off = perimeters[(perimeters["type"] == "opah_ru") & ~perimeters["en_vigueur"].fillna(True).astype(bool)]
    return [
        f"l'OPAH-RU « {r.nom} » n'est pas en vigueur le {_fr(day)} "
        f"(du {_fr(r.date_debut) if r.date_debut else '…'} "
        f"au {_fr(r.date_fin) if r.date_fin else '…'})"
        for r in off.itertuples()
    ]


def _of(area: str) -> str:
    """French elision: « hors d'un périmètre », « hors de l'ORT »."""
    return f"d'{area}" if area.startswith("un") else f"de {area}"


def _parcel_evidence(cond, hit, mine: list[tuple[str, str, float]]) -> Evidence:
    """Verdict from the parcel's status in the condition's area; ``mine``: the perimeters it touches."""
    from geo.classify import INSIDE, STRADDLING

    area = cond.area_name
    names = ", ".join(f"« {nom} » ({fmt.percent(share, 0)})" for _, nom, share in mine)
    outside_wanted = cond.outside
    if hit.status == STRADDLING:
        inside = float(hit.share)
        share = 1.0 - inside if outside_wanted else inside
        where = f"hors {_of(area)}" if outside_wanted else f"dans {area}"
        ev = Evidence(
            PARTIELLEMENT,
            f"parcelle à cheval : {fmt.percent(share)} de sa surface {where} ({names})",
        )
        ev.caveats.append(
            "aucune règle juridique ne tranche le cas d'une parcelle à cheval : c'est la localisation de "
            "l'immeuble ou du projet qui compte"
        )
        ev.share = share
        return ev
    inside = hit.status == INSIDE
    if outside_wanted:
        if inside:
            ev = Evidence(
                NON,
                f"parcelle dans {area} ({names}) : "
                "la suspension ne vise que les projets hors de ces secteurs",
            )
        else:
            ev = Evidence(OUI, f"parcelle d'une commune signataire, hors {_of(area)}")
        ev.share = 0.0 if inside else 1.0
        return ev
    ev = (
        Evidence(OUI, f"parcelle incluse dans {area} : {names}")
        if inside
        else Evidence(NON, f"parcelle hors {_of(area)}")
    )
    ev.share = float(hit.share)
    return ev


# --------------------------------------------------------------------------------------------
# National views


def eligible_communes(
    rule_id: str, when: dt.date, *, lists: NationalLists, rules: Rules, departement: str | None = None
) -> pd.DataFrame:
    """Every commune of the lists, by its **current** code, with its verdict for a commune- or
    ORT-level rule at ``when`` (a commune merged from several listed former communes counts once).

    Returns
    -------
    DataFrame
        ``code_insee`` (current code), ``commune, departement, programme`` (ACV/PVD/autre),
        ``verdict, motif, via`` (« arrêté » : the list of the arrêté of 26 March 2019, or « ORT »),
        ``codes_listes`` (codes as written in the lists).
    """
    from geo.projection import departement_of

    rule = rules.get(rule_id)
    if rule.level not in ("commune", "ort"):
        raise InputError(
            f"la règle « {rule_id} » se décide à la parcelle, pas à la commune",
            fix="utilisez " + ", ".join(r.id for r in rules if r.level in ("commune", "ort")),
        )
    denormandie = REGISTRY[rule.condition].name == "arrete_denormandie_ou_ort"
    tables = [lists["ort"]] + ([lists["acv"]] if denormandie else [])
    arrete = arrete_table(lists)
    if arrete is not None and denormandie:
        tables.append(arrete)
    written: dict[str, list[str]] = {}
    for t in tables:
        for code, current in zip(t["code_insee"], t["code_actuel"], strict=True):
            if isinstance(code, str) and code:
                key = current if isinstance(current, str) and current else code
                written.setdefault(key, []).append(code)
    pvd = set(lists["pvd"]["code_actuel"].dropna()) if "pvd" in lists else set()
    rows = []
    for code, originals in written.items():
        dep = (lists.commune(code) or {}).get("departement") or departement_of(code)
        if departement and dep != departement:
            continue
        ans = next(
            a for a in eligibility_for_commune(code, when, lists=lists, rules=rules) if a.effect == rule_id
        )
        acv = bool(lists.rows("acv", code) or lists.rows("acv", code, absorbed=True))
        ort_rows = lists.rows("ort", code) or lists.rows("ort", code, absorbed=True)
        programme = (
            "ACV" if acv else (ort_rows[0]["programme"] if ort_rows else "PVD" if code in pvd else "autre")
        )
        routes = {r["voie"]: r["verdict"] for r in ans.routes}
        via = ""
        if ans.verdict in (OUI, PARTIELLEMENT):
            via = "arrêté" if routes.get(f"liste de l'{ARRETE}") == OUI else "ORT"
        rows.append(
            {
                "code_insee": code,
                "commune": ans.commune,
                "departement": dep,
                "programme": programme,
                "verdict": ans.verdict,
                "motif": ans.reason,
                "via": via,
                "codes_listes": " ".join(sorted(set(originals))),
            }
        )
    columns = ["code_insee", "commune", "departement", "programme", "verdict", "motif", "via", "codes_listes"]
    out = pd.DataFrame(rows, columns=columns)
    return out.sort_values(["departement", "code_insee"]).reset_index(drop=True)


def counts_by_departement(table: pd.DataFrame) -> pd.DataFrame:
    """Eligible communes (verdict ``oui``, or ``partiellement`` — the centre only, for Denormandie
    acquisitions of 2019), by current code, per département and programme, with a total row."""
    yes = table[table["verdict"].isin([OUI, PARTIELLEMENT])]
    counts = pd.crosstab(yes["departement"], yes["programme"]).reindex(
        columns=["ACV", "PVD", "autre"], fill_value=0
    )
    counts["total"] = counts.sum(axis=1)
    counts.loc["total"] = counts.sum()
    counts.columns.name = None
    return counts.reset_index(names="departement")


def signed_ort_by_departement(lists: NationalLists, when: dt.date | None = None) -> pd.Series:
    """Rows « Signée » of the ORT follow-up per département (signed on or before ``when`` if given).

    These are **rows of the table**, i.e. communes covered by a signed ORT as the table writes
    them (former codes included), not conventions: see :func:`signed_ort_communes` for the count
    by current commune.
    """
    from geo.projection import departement_of

    ort = lists["ort"]
    mask = ort["signee"] == "signee"
    if when is not None:
        mask &= ort["date_signature"].map(lambda d: d is not None and d <= when)
    deps = ort.loc[mask, "code_insee"].dropna().map(departement_of)
    return deps.value_counts().sort_index()


def signed_ort_communes(lists: NationalLists, when: dt.date | None = None) -> dict:
    """How many communes are covered by a signed ORT, said exactly.

    Returns
    -------
    dict
        ``lignes`` (rows « Signée » of the follow-up), ``communes_actuelles`` (distinct current
        communes they resolve to), ``codes_anciens`` (rows written with a former code),
        ``date`` (the table's last update) and ``texte``: a French sentence saying that these are
        communes covered by a signed ORT, not conventions.
    """
    ort = lists["ort"]
    mask = ort["signee"] == "signee"
    if when is not None:
        mask &= ort["date_signature"].map(lambda d: d is not None and d <= when)
    signed = ort[mask]
    current = signed["code_actuel"].where(signed["code_actuel"].notna(), signed["code_insee"])
    former = int((signed["code_actuel"].notna() & (signed["code_actuel"] != signed["code_insee"])).sum())
    date = lists.info["ort"].date
    n_rows, n_current = int(mask.sum()), int(current.dropna().nunique())
    texte = (
        f"{fmt.number(n_rows)} lignes « Signée » dans le suivi national des ORT "
        f"(actualisé au {_fr(date)}) : "
        f"ce sont des communes couvertes par une ORT signée, pas des conventions ; "
        f"{fmt.number(n_current)} communes au code officiel actuel "
        f"({fmt.number(former)} ligne(s) sous un ancien code)"
    )
    return {
        "lignes": n_rows,
        "communes_actuelles": n_current,
        "codes_anciens": former,
        "date": date,
        "texte": texte,
    }
