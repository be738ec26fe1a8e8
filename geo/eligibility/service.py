"""The job « what does an ORT bring to these parcels or communes at this date? » as one library
function with explicit arguments, returning typed results (:mod:`geo.eligibility.models`).

:func:`answer_eligibility` is what ``ort eligibility`` and the web API call: it reads nothing
global and changes nothing global (the lists, rules and convention are arguments; the parcel
layer is loaded through the function given, only when a parcel needs it), so it is safe to call
from several threads with the same loaded data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from geo.eligibility import text
from geo.eligibility.answers import Answer, eligibility_for_commune, eligibility_for_parcels
from geo.eligibility.conditions import NOT_DIGITISED
from geo.eligibility.models import ResultatEligibilite
from geo.eligibility.rules import PLACE_LEVELS
from geo.errors import InputError, PerimeterError
from geo.prepared import rows_with_idu


def answer_eligibility(
    when: dt.date,
    *,
    lists,
    rules,
    parcels: Sequence[tuple[str, str | None]] = (),
    communes: Sequence[tuple[str, str]] = (),
    convention=None,
    parcel_layer: Callable[[], object] | None = None,
    default_commune: str | None = None,
    located: Sequence = (),
    perimeters_at: Callable[[dt.date], object] | None = None,
) -> ResultatEligibilite:
    """Every dispositif for each parcel and commune asked, at ``when``.

    Parameters
    ----------
    when : date
        Date evaluated (for Denormandie, the date of acquisition).
    lists, rules
        :func:`geo.sources.lists.load_lists`, :func:`geo.eligibility.rules.load_rules`.
    parcels : sequence of (text, commune or None)
        Parcel ids as people type them, each with its commune when known (``("AB 12", "62907")``).
    communes : sequence of (text, where)
        INSEE codes, each with where it was read (``"--commune"``, ``"demandes.csv ligne 3"``).
    convention : geo.perimeters.Convention, optional
        The convention whose perimeters decide the place-level effects.
    parcel_layer : callable, optional
        Returns the cadastre parcels of the convention (called once, only when needed).
    default_commune : str, optional
        Commune of parcel ids written without one (``AB 12``).
    located : sequence
        Addresses geocoded by the caller (returned in ``adresses``).
    perimeters_at : callable, optional
        ``convention.perimeters`` kept by the caller for each date (a server's, read once per
        date): the same perimeters, or the same :class:`PerimeterError`, without reading them again.

    Returns
    -------
    ResultatEligibilite
        The model of ``ort eligibility --json``; ``answers`` holds the answers as objects and
        ``rejetes`` the entries refused, each with its reason.
    """
    from geo.idu import parse_many
    from geo.sources.lists import normalise_code

    perims, no_version = None, ""
    if convention is not None:
        try:
            perims = (perimeters_at or convention.perimeters)(when)
        except PerimeterError as err:  # no version in force at that date: place rules say "inconnu"
            no_version = str(err)
    rejected: list[tuple[str, str]] = []
    notices: list[str] = []
    answers: list[Answer] = []
    for raw, where in communes:
        code, note = normalise_code(raw)
        if code is None or (note and where == "--commune"):
            rejected.append((raw, note + (" — écrivez-le sur 5 caractères, ex. 01004" if code else "")))
            continue
        if note:
            notices.append(f"{where} : {note}")
        try:
            in_conv = convention if convention is not None and code in convention.communes else None
            answers += eligibility_for_commune(code, when, lists=lists, rules=rules, convention=in_conv)
        except InputError as err:
            rejected.append((raw, str(err)))
    valid = []
    for code in dict.fromkeys(c for _, c in parcels):
        ok, bad = parse_many([t for t, c in parcels if c == code], code_insee=code or default_commune)
        valid += ok
        rejected += bad
    answers += _parcel_answers(valid, when, lists, rules, convention, perims, parcel_layer, rejected)
    result = _result(answers, when, lists, rules, convention, perims, no_version, rejected)
    if located:
        result.adresses = [a.to_dict() for a in located]
    result._notices = notices
    result._lines = {
        "perimetres": text.perimeters_line(convention, perims, no_version) if convention is not None else "",
        "source": text.source_line(lists, rules, convention, perims),
    }
    return result


def _parcel_answers(valid, when, lists, rules, conv, perims, parcel_layer, rejected) -> list[Answer]:
    answers: list[Answer] = []
    if not valid:
        return answers
    if conv is None:  # no perimeters: the commune's answers, place effects said unknown
        return _without_perimeters(valid, when, lists, rules, rejected)
    outside = [p for p in valid if p.code_insee not in conv.communes]
    for p in outside:
        rejected.append((p.idu, f"commune {p.code_insee} hors de la convention ({', '.join(conv.communes)})"))
    inside = [p for p in valid if p.code_insee in conv.communes]
    if perims is None:
        # No perimeter version in force (sectors not digitised, not yet in force): no cadastre needed.
        return [
            a
            for p in inside
            for a in eligibility_for_commune(
                p.code_insee, when, lists=lists, rules=rules, convention=conv, idu=p.idu
            )
        ]
    if not inside:
        return answers
    if parcel_layer is None:
        raise InputError("aucun cadastre pour placer les parcelles", fix="donnez --cadastre DOSSIER")
    layer = parcel_layer()
    known = rows_with_idu(layer, [p.idu for p in inside])
    found = set(known["idu"])
    for p in inside:
        if p.idu not in found:
            mill = layer.attrs.get("millesime", "inconnu")
            rejected.append((p.idu, f"parcelle absente du cadastre chargé (millésime {mill})"))
    return eligibility_for_parcels(known, perims, when, lists=lists, rules=rules, convention=conv)


def _without_perimeters(valid, when, lists, rules, rejected) -> list[Answer]:
    out: list[Answer] = []
    for p in valid:
        try:
            found = eligibility_for_commune(p.code_insee, when, lists=lists, rules=rules, idu=p.idu)
        except InputError as err:
            rejected.append((p.idu, str(err)))
            continue
        for a in found:
            if a.level in PLACE_LEVELS and a.verdict == "inconnu":
                a.reason = "aucun dossier de périmètres donné (--perimeters) : " + a.reason.split(" : ")[0]
        out += found
    return out


def _result(answers, when, lists, rules, conv, perims, no_version, rejected) -> ResultatEligibilite:
    denorm = next((r for r in rules if r.id == "denormandie"), None)
    targets: dict = {}
    for a in answers:
        entry = targets.setdefault(
            (a.idu, a.code_insee),
            {
                "code_insee": a.code_insee,
                "commune": a.commune,
                "idu": a.idu,
                "contexte": lists.profile(a.code_insee),
                "reponses": [],
            },
        )
        entry["reponses"].append(a.to_dict())
    version = perims.attrs.get("version") if perims is not None else None
    version_date = perims.attrs.get("version_date") if perims is not None else None
    data = {
        "date": when.isoformat(),
        "regles": {
            "fichier": rules.source,
            "version": rules.version,
            "verifie_le": rules.verified_on.isoformat() if rules.verified_on else None,
            "denormandie_textes": list(rules.parameters.get("denormandie_historique") or []),
            "denormandie_fin": denorm.valid_to.isoformat() if denorm and denorm.valid_to else None,
            "denormandie_fin_source": denorm.valid_to_source if denorm else None,
        },
        "listes": [i.to_dict() for i in lists.info.values()],
        "convention": None
        if conv is None
        else {
            "nom": conv.nom,
            "fictif": conv.fictif,
            "version": None if version is None else str(version),
            "version_date": None if version_date is None else str(version_date),
            "remarque": (NOT_DIGITISED if not conv.versions else no_version) or None,
        },
        "resultats": list(targets.values()),
        "rejetes": [{"entree": t, "erreur": m} for t, m in rejected],
        "avertissement": text.closing(rules),
    }
    result = ResultatEligibilite.model_validate(data)
    result._answers = list(answers)
    return result


@dataclass(frozen=True)
class CommunesView:
    """The communes eligible to a commune-level rule at a date: JSON part, text lines, table."""

    data: dict
    lines: list[str]
    table: object


def eligible_communes_view(
    rule_id: str, when: dt.date, *, lists, rules, departement: str | None = None
) -> CommunesView:
    """``ort communes --eligible RULE``: every commune of the lists by its current code, the
    eligible ones with their reason, those to verify, counts per département and programme.

    Raises
    ------
    InputError
        A rule decided at the parcel, or a département without any commune in the lists.
    """
    import pandas as pd

    from geo import fmt
    from geo.eligibility.answers import counts_by_departement, eligible_communes, signed_ort_communes
    from geo.eligibility.evidence import arrete_label

    table = eligible_communes(rule_id, when, lists=lists, rules=rules, departement=departement)
    if departement and table.empty:
        raise InputError(
            f"aucune commune des listes dans le département {departement!r}", fix="ex. --dep 62, 2A, 974"
        )
    yes, unknown = table[table["verdict"] == "oui"], table[table["verdict"] == "inconnu"]
    partial = table[table["verdict"] == "partiellement"]
    counts = counts_by_departement(table)
    rule = rules.get(rule_id)
    signed = signed_ort_communes(lists)
    data = {
        "regle": rule_id,
        "periode": rule.period(),
        "communes": yes.to_dict("records"),
        "partiellement": partial.to_dict("records"),
        "a_verifier": unknown.to_dict("records"),
        "comptes": counts.to_dict("records"),
        "ort_signees": signed,
    }
    lines = [
        f"\n{rule.effect} — {fmt.number(len(yes))} commune(s) éligible(s) au {fmt.date_fr(when)}, "
        f"comptées au code officiel actuel ; période : {rule.period()}"
    ]
    lines += [
        f"  {r.code_insee} {r.commune} ({r.departement}, {r.programme}) — {r.motif}" for r in yes.itertuples()
    ]
    if len(partial):
        lines.append(f"\n{len(partial)} commune(s) éligible(s) en partie seulement (centre de la commune) :")
        lines += [f"  {r.code_insee} {r.commune} — {r.motif}" for r in partial.itertuples()]
    if len(unknown):
        lines.append(f"\n{len(unknown)} commune(s) à vérifier (données incomplètes) :")
        lines += [f"  {r.code_insee} {r.commune} — {r.motif}" for r in unknown.itertuples()]
    lines += ["\nPar département et programme (communes éligibles, en tout ou en partie) :"]
    lines.append(counts.to_string(index=False))
    if rule.condition == "arrete_denormandie_ou_ort":  # the other rules have one route: the ORT
        via = pd.concat([yes["via"], partial["via"]]).value_counts()
        by_list, by_ort = via.get("arrêté", 0), via.get("ORT", 0)
        lines.append(
            f"Par motif : commune de la liste de l'arrêté du 26 mars 2019 {fmt.number(by_list)}, "
            f"ORT conclue hors de cette liste {fmt.number(by_ort)} — liste lue : {arrete_label(lists)}"
        )
    lines.append(signed["texte"])
    return CommunesView(data, lines, table)


def read_requests(path: Path) -> tuple[list[tuple[str, str | None]], list[tuple[str, str]]]:
    """Parcel entries ``(id, commune or None)`` and commune entries ``(code, 'ligne N')`` of a
    CSV/XLSX file with an ``idu`` and/or a ``code_insee`` column."""
    from geo.sources.tables import read_user_table

    df = read_user_table(path)
    cols = {str(c).strip().lower(): c for c in df.columns}
    id_col = next(
        (cols[n] for n in ("idu", "id", "parcelle", "id_parcelle", "identifiant") if n in cols), None
    )
    code_col = next(
        (cols[n] for n in ("code_insee", "commune", "insee", "code_commune", "insee_com") if n in cols), None
    )
    if id_col is None and code_col is None:
        raise InputError(
            f"ni colonne de parcelles ni colonne de communes (colonnes : {', '.join(map(str, df.columns))})",
            source=str(path),
            fix="nommez les colonnes 'idu' et/ou 'code_insee'",
        )
    parcels, communes = [], []
    for i, rec in enumerate(df.to_dict("records"), start=2):
        ident = str(rec.get(id_col, "") or "").strip() if id_col is not None else ""
        code = str(rec.get(code_col, "") or "").strip() if code_col is not None else ""
        if ident:
            # A spreadsheet drops the leading zero of an INSEE code read as a number (1004 → 01004).
            parcels.append((ident, (code.zfill(5) if code.isdigit() else code.upper()) or None))
        elif code:
            communes.append((code, f"{path.name} ligne {i}"))
    return parcels, communes
