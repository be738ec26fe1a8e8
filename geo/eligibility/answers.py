"""What a commune or a parcel gets from an ORT, at a date — every answer explaining itself.

The rules are data (``data/regles-eligibilite.toml``, read by
:func:`geo.eligibility.rules.load_rules`); this module
evaluates them with pure functions over the national lists (:mod:`geo.sources.lists`) and, for parcels,
the perimeters in force (:mod:`geo.perimeters`). Each :class:`Answer` carries the verdict
(``oui`` / ``non`` / ``partiellement`` with the share of a straddling parcel / ``inconnu`` when
data is missing), the reason naming the list row or perimeter used, the rule's legal reference,
the date evaluated, the period of the rule, the data used with their own dates, and the caveats.

A multi-commune convention is answered commune by commune: each commune's own row of the
national lists decides its commune-level effects.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import geopandas as gpd
import pandas as pd
import shapely

from geo.classify import INSIDE, OUTSIDE, STRADDLING, classify_parcels
from geo.eligibility.evidence import (
    INCONNU,
    NON,
    OUI,
    PARTIELLEMENT,
    Evidence,
    acv_evidence,
    anah_opah_ru,
    combine,
    ort_evidence,
)
from geo.eligibility.rules import RULES_NAME, Rule, Rules, load_rules
from geo.errors import InputError
from geo.sources.lists import NationalLists

__all__ = [
    "RULES_NAME",
    "VERDICTS",
    "Answer",
    "Rules",
    "acv_evidence",
    "answers_to_frame",
    "counts_by_departement",
    "eligibility_for_commune",
    "eligibility_for_parcels",
    "eligible_communes",
    "load_rules",
    "ort_evidence",
    "signed_ort_by_departement",
]

VERDICTS = (OUI, NON, PARTIELLEMENT, INCONNU)
_AREA_NAMES = {
    "opah_ru_en_vigueur": "un périmètre OPAH-RU en vigueur",
    "ort_ou_opah_ru": "l'ORT ou un périmètre OPAH-RU",
    "ort": "l'ORT (union des secteurs d'intervention)",
    "secteur_centre_ville": "un secteur d'intervention comprenant un centre-ville",
}


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
    a_verifier: bool = False
    idu: str | None = None
    share: float | None = None

    def to_dict(self) -> dict:
        """JSON-ready, with the French keys of the CLI output."""
        return {
            "code_insee": self.code_insee,
            "commune": self.commune,
            "idu": self.idu,
            "regle": self.effect,
            "effet": self.effect_label,
            "niveau": self.level,
            "verdict": self.verdict,
            "part": None if self.share is None else round(float(self.share), 6),
            "motif": self.reason,
            "reference": self.reference,
            "date_evaluee": self.evaluated_on.isoformat(),
            "periode": self.period,
            "donnees": list(self.data_used),
            "mises_en_garde": list(self.caveats),
            "a_verifier": self.a_verifier,
        }


def answers_to_frame(answers: list[Answer]) -> pd.DataFrame:
    """One row per answer; lists joined with `` | `` for CSV/XLSX."""
    rows = [a.to_dict() for a in answers]
    for row in rows:
        row["donnees"] = " | ".join(row["donnees"])
        row["mises_en_garde"] = " | ".join(row["mises_en_garde"])
    return pd.DataFrame(rows, columns=list(rows[0]) if rows else None)


# --------------------------------------------------------------------------------------------
# Evaluating the rules


def _answer(rule: Rule, code: str, commune: str, day: dt.date, ev: Evidence, **kw) -> Answer:
    caveats = list(dict.fromkeys([*ev.caveats, *rule.caveats]))
    if rule.a_verifier:
        caveats.append("règle marquée « à vérifier » dans le fichier de règles")
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
        rule.a_verifier,
        **kw,
    )


def _out_of_period(rule: Rule, day: dt.date) -> Evidence | None:
    if rule.in_period(day):
        return None
    if rule.valid_from and day < rule.valid_from:
        return Evidence(NON, f"le {day} est antérieur à l'entrée en vigueur de la règle ({rule.valid_from})")
    return Evidence(
        NON, f"le {day} est postérieur à la fin de la règle ({rule.valid_to}, {rule.valid_to_source})"
    )


def _commune_evidence(rule: Rule, code: str, day: dt.date, lists, rules: Rules, convention, ort) -> Evidence:
    if rule.condition == "acv_ou_ort_signee":
        acv = acv_evidence(code, day, lists)
        parts = [acv, ort]
        ev = Evidence(combine(parts), "", [*acv.data, *ort.data], [*acv.caveats, *ort.caveats])
        ev.reason = " ; ".join(e.reason for e in parts if e.verdict == ev.verdict) or ort.reason
        since = rules.parameters.get("denormandie_tout_le_territoire_depuis")
        if ev.verdict == OUI and since and day < since:
            ev.caveats.append(f"avant le {since}, seuls les logements du centre de la commune étaient visés")
        note = rules.parameters.get("denormandie_date_fin_note")
        ev.caveats.insert(0, f"période d'acquisition : {rule.period()}" + (f" — {note}" if note else ""))
        return ev
    if rule.condition == "ort_signee":
        return ort.copy()
    if rule.condition == "ort_information":
        if ort.verdict == NON:
            return ort.copy()
        return ort.copy(verdict=INCONNU, reason=ort.reason + " : effet à vérifier dans la convention")
    # A perimeter or sector rule without geometry: only the absence of an ORT can answer "non".
    anah = anah_opah_ru(code, day, lists) if "opah_ru" in rule.condition else None
    if rule.condition == "opah_ru_en_vigueur":
        return anah or Evidence(INCONNU, "périmètre OPAH-RU non fourni (donnez --perimeters et une parcelle)")
    if ort.verdict == NON and (rule.condition != "ort_ou_opah_ru" or (anah and anah.verdict == NON)):
        data = ort.data + (anah.data if anah else [])
        return Evidence(NON, f"pas d'ORT signée au {day} ({ort.reason})", data, list(ort.caveats))
    return Evidence(
        INCONNU,
        f"dépend de la localisation dans {_AREA_NAMES[rule.condition]} : donnez une parcelle et le dossier "
        "de périmètres (--perimeters)",
        list(ort.data),
        list(ort.caveats),
    )


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
        A convention covering the commune: its signature counts when the national list lacks it.
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
    record = lists.commune(current) if current else None
    rows = lists.rows("ort", code) or lists.rows("acv", code)
    name = (rows[0]["commune"] if rows else "") or (record or {}).get("nom") or ""
    if record and current != code:
        name = f"{name} (rattachée à {current} {record['nom']})".strip()
    elif record:
        name = record["nom"]
    elif not name and convention is not None:
        name = f"(commune de la convention « {convention.nom} »)"
    ort = ort_evidence(code, when, lists, convention)
    if how:
        ort.caveats.append(how)
    answers = []
    for rule in rules:
        ev = _out_of_period(rule, when) or _commune_evidence(rule, code, when, lists, rules, convention, ort)
        if rule.condition == "acv_ou_ort_signee" and ev.verdict == NON and not rule.in_period(when):
            ev.caveats.insert(0, f"période d'acquisition : {rule.period()}")
        ev.data.append(rules.label())
        answers.append(_answer(rule, code, name, when, ev, idu=idu))
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
    """Every rule for each parcel: commune-level rules from its commune, perimeter and sector
    rules from the share of the parcel inside the perimeters in force.

    Parameters
    ----------
    parcels : GeoDataFrame
        Parcels with ``idu`` (and ``code_insee``), polygons in a metric CRS (metres).
    perimeters : GeoDataFrame or None
        :meth:`geo.perimeters.Convention.perimeters` at ``when`` (same metric CRS; OPAH-RU
        perimeters whose ``en_vigueur`` is false do not count), or ``None`` when no version is
        in force (perimeter and sector rules then answer ``non``).
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
        the area a perimeter or sector rule asks for.
    """
    areas = _areas(perimeters) if perimeters is not None else {}
    hits: dict[tuple[str, str], object] = {}
    touched: dict[str, list[tuple[str, str, float]]] = {}
    if areas and len(parcels):
        layer = gpd.GeoDataFrame(
            {"perimeter_id": list(areas)}, geometry=[a[0] for a in areas.values()], crs=perimeters.crs
        )
        tol = {"tolerance_m2": tolerance_m2, "tolerance_pct": tolerance_pct, "with_distance": False}
        result = classify_parcels(parcels, layer, **tol)
        hits = {(r.idu, r.perimeter_id): r for r in result.itertuples()}
        detail = classify_parcels(parcels, perimeters[["perimeter_id", "nom", "geometry"]], **tol)
        for r in detail[detail["status"] != OUTSIDE].itertuples():
            touched.setdefault(r.idu, []).append((r.perimeter_id, r.perimeter_nom, r.share))
    version = ""
    if perimeters is not None:
        a = perimeters.attrs
        version = (
            f"Périmètres : {a.get('convention', '')}, version « {a.get('version_libelle')} » "
            f"du {a.get('version_date')}"
        )
    by_commune: dict[str, list[Answer]] = {}
    answers = []
    for parcel in parcels.itertuples():
        code = getattr(parcel, "code_insee", None) or parcel.idu[:5]
        if code not in by_commune:
            by_commune[code] = eligibility_for_commune(
                code, when, lists=lists, rules=rules, convention=convention
            )
        for ans in by_commune[code]:
            rule = rules.get(ans.effect)
            if rule.level not in ("perimeter", "sector") or not rule.in_period(when):
                answers.append(
                    replace(ans, idu=parcel.idu, data_used=list(ans.data_used), caveats=list(ans.caveats))
                )
                continue
            key = _AREA_OF[rule.condition]
            if key in areas:
                members = areas[key][1]
                near = [t for t in touched.get(parcel.idu, []) if t[0] in members]
                ev = _parcel_evidence(rule, hits[(parcel.idu, key)], near)
            else:
                why = (
                    "aucun n'est délimité ou en vigueur à cette date"
                    if version
                    else "aucune version des périmètres en vigueur"
                )
                ev = Evidence(NON, f"pas dans {_AREA_NAMES[rule.condition]} le {when} ({why})", share=0.0)
            ev.data += [version] if version else []
            ev.data.append(rules.label())
            if rule.condition == "opah_ru_en_vigueur" and key not in areas:
                ev.caveats += _expired_opah(perimeters, when)
                anah = anah_opah_ru(code, when, lists)
                if anah is not None and anah.verdict == INCONNU:
                    ev = Evidence(INCONNU, anah.reason, ev.data + anah.data, ev.caveats)
            if convention is not None and when > convention.date_fin:
                ev.caveats.append(
                    f"la convention a pris fin le {convention.date_fin} : vérifier sa prorogation"
                )
            answers.append(
                _answer(rule, ans.code_insee, ans.commune, when, ev, idu=parcel.idu, share=ev.share)
            )
    return answers


_AREA_OF = {
    "opah_ru_en_vigueur": "__opah_ru__",
    "ort_ou_opah_ru": "__ort_ou_opah_ru__",
    "ort": "__ort__",
    "secteur_centre_ville": "__centre_ville__",
}


def _areas(perimeters: gpd.GeoDataFrame) -> dict[str, tuple]:
    """The area each perimeter rule asks for: ``key -> (geometry, ids of the perimeters in it)``."""
    in_force = perimeters["en_vigueur"].fillna(True).astype(bool) if "en_vigueur" in perimeters else True
    secteurs = perimeters[(perimeters["type"] == "secteur") & in_force]
    opah = perimeters[(perimeters["type"] == "opah_ru") & in_force]
    centre = secteurs[secteurs["centre_ville"].fillna(False).astype(bool)]
    parts = {
        "__ort__": secteurs,
        "__opah_ru__": opah,
        "__centre_ville__": centre,
        "__ort_ou_opah_ru__": pd.concat([secteurs, opah]),
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
        f"l'OPAH-RU « {r.nom} » n'est pas en vigueur le {day} "
        f"(du {r.date_debut or '…'} au {r.date_fin or '…'})"
        for r in off.itertuples()
    ]


def _of(area: str) -> str:
    """French elision: « hors d'un périmètre », « hors de l'ORT »."""
    return f"d'{area}" if area.startswith("un") else f"de {area}"


def _parcel_evidence(rule: Rule, hit, mine: list[tuple[str, str, float]]) -> Evidence:
    """Verdict from the parcel's status in the rule's area; ``mine``: the perimeters it touches."""
    area = _AREA_NAMES[rule.condition]
    names = ", ".join(f"« {nom} » ({share:.0%})" for _, nom, share in mine)
    if hit.status == INSIDE:
        ev = Evidence(OUI, f"parcelle incluse dans {area} : {names}")
    elif hit.status == STRADDLING:
        ev = Evidence(
            PARTIELLEMENT, f"parcelle à cheval : {hit.share:.1%} de sa surface dans {area} ({names})"
        )
        ev.caveats.append(
            "aucune règle juridique ne tranche le cas d'une parcelle à cheval : c'est la localisation de "
            "l'immeuble ou du projet qui compte"
        )
    else:
        ev = Evidence(NON, f"parcelle hors {_of(area)}")
    ev.share = float(hit.share)
    return ev


# --------------------------------------------------------------------------------------------
# National views


def eligible_communes(
    rule_id: str, when: dt.date, *, lists: NationalLists, rules: Rules, departement: str | None = None
) -> pd.DataFrame:
    """Every commune of the lists with its verdict for a commune- or ORT-level rule at ``when``.

    Returns
    -------
    DataFrame
        ``code_insee, commune, departement, programme`` (ACV/PVD/autre), ``verdict, motif, via``.
    """
    from geo.projection import departement_of

    rule = rules.get(rule_id)
    if rule.level not in ("commune", "ort"):
        raise InputError(
            f"la règle « {rule_id} » se décide à la parcelle, pas à la commune",
            fix="utilisez denormandie, anah_prioritaire ou autres_effets_ort",
        )
    tables = [lists["ort"]] + ([lists["acv"]] if rule.condition == "acv_ou_ort_signee" else [])
    codes = dict.fromkeys(c for t in tables for c in t["code_insee"] if c)
    pvd = set(lists["pvd"]["code_actuel"].dropna()) if "pvd" in lists else set()
    rows = []
    for code in codes:
        current = lists.resolve(code)[0] or code
        dep = (lists.commune(current) or {}).get("departement") or departement_of(code)
        if departement and dep != departement:
            continue
        ans = next(
            a for a in eligibility_for_commune(code, when, lists=lists, rules=rules) if a.effect == rule_id
        )
        acv = bool(lists.rows("acv", code))
        ort_rows = lists.rows("ort", code)
        programme = (
            "ACV" if acv else (ort_rows[0]["programme"] if ort_rows else "PVD" if current in pvd else "autre")
        )
        via = "ACV" if acv and "Action cœur de ville" in ans.reason else "ORT" if ans.verdict == OUI else ""
        rows.append(
            {
                "code_insee": code,
                "commune": ans.commune,
                "departement": dep,
                "programme": programme,
                "verdict": ans.verdict,
                "motif": ans.reason,
                "via": via,
            }
        )
    out = pd.DataFrame(
        rows, columns=["code_insee", "commune", "departement", "programme", "verdict", "motif", "via"]
    )
    return out.sort_values(["departement", "code_insee"]).reset_index(drop=True)


def counts_by_departement(table: pd.DataFrame) -> pd.DataFrame:
    """Eligible communes (verdict ``oui``) per département and programme, with a total row."""
    yes = table[table["verdict"] == OUI]
    counts = pd.crosstab(yes["departement"], yes["programme"]).reindex(
        columns=["ACV", "PVD", "autre"], fill_value=0
    )
    counts["total"] = counts.sum(axis=1)
    counts.loc["total"] = counts.sum()
    counts.columns.name = None
    return counts.reset_index(names="departement")


def signed_ort_by_departement(lists: NationalLists, when: dt.date | None = None) -> pd.Series:
    """Rows « Signée » of the ORT follow-up per département (signed on or before ``when`` if given)."""
    from geo.projection import departement_of

    ort = lists["ort"]
    mask = ort["signee"] == "signee"
    if when is not None:
        mask &= ort["date_signature"].map(lambda d: d is not None and d <= when)
    deps = ort.loc[mask, "code_insee"].dropna().map(departement_of)
    return deps.value_counts().sort_index()
