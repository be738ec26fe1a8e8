"""What the national lists say about one commune at one date, as evidence for a rule.

Private helpers of :mod:`geo.eligibility.answers`: each returns an :class:`Evidence` (verdict, reason
naming the list row used, data used, caveats). Whether a commune signed an ORT comes from its
own row of the ORT follow-up (never a neighbour's), or from the convention folder given.
Denormandie's "ACV" route is the list of the arrêté of 26 March 2019 (the communes of the ACV
conventions of 2018), not the ACV programme file, which only serves for display.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

import pandas as pd

from geo import fmt
from geo.sources.lists import NationalLists

OUI, NON, PARTIELLEMENT, INCONNU = "oui", "non", "partiellement", "inconnu"
#: The arrêté of 26 March 2019 (list of the communes for Denormandie's first route).
ARRETE = "arrêté du 26 mars 2019"
_ARRETE_NAME = "acv_arrete"


@dataclass
class Evidence:
    """A verdict with its reason, the data used and the caveats (``share`` for parcels).

    ``routes`` lists, for a rule with several ways in (Denormandie), each way's own verdict.
    """

    verdict: str
    reason: str
    data: list[str] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)
    share: float | None = None
    routes: list[dict] = field(default_factory=list)
    #: The verdict in the rule's own words when it is not plain (« partiellement (centre seulement) »).
    label: str = ""

    def copy(self, **changes) -> Evidence:
        return replace(
            self, data=list(self.data), caveats=list(self.caveats), routes=list(self.routes), **changes
        )


def current_of(lists: NationalLists, code: str) -> str | None:
    """The current commune (COG) of a former, delegated or associated commune ``code``; None when
    ``code`` is itself current or unknown."""
    current, _ = lists.resolve(code)
    return current if current and current != code else None


def own_rows(lists: NationalLists, name: str, code: str) -> list[dict]:
    """Rows of list ``name`` for ``code`` as written, then, for a former or delegated commune, the
    rows of its current commune: the commune nouvelle's listing covers its whole territory."""
    rows = list(lists.rows(name, code))
    current = current_of(lists, code)
    if current:
        rows += [r for r in lists.rows(name, current) if r not in rows]
    return rows


def combine(items: list[Evidence]) -> str:
    verdicts = {e.verdict for e in items}
    return OUI if OUI in verdicts else INCONNU if INCONNU in verdicts else NON


def _fr(day) -> str:
    return fmt.date_fr(day)


# --------------------------------------------------------------------------------------------
# Commune-level evidence from the national lists


def ort_evidence(code: str, day: dt.date, lists: NationalLists, convention=None) -> Evidence:
    """Has commune ``code`` concluded an ORT convention on or before ``day``, and is it still
    running? From its own row of the ORT follow-up (or its current commune's, for a former or
    delegated commune; named in the reason), then the convention folder given."""
    ev, rows = _from_follow_up(code, day, lists)
    real = lists.resolve(code)[0] is not None and "communes" in lists
    if convention is not None and code in convention.communes and convention.fictif and real:
        ev.caveats.append(
            f"la convention « {convention.nom} » est fictive : ignorée pour cette commune réelle"
        )
    elif convention is not None and code in convention.communes:
        ev = _from_folder(ev, rows, day, convention)
    return ev


def _from_follow_up(code: str, day: dt.date, lists: NationalLists) -> tuple[Evidence, list[dict]]:
    info = lists.info["ort"]
    ev = Evidence(NON, "", [info.label()])
    rows = own_rows(lists, "ort", code)
    found = [_ort_row(r, day, info.date) for r in rows]
    if found:
        ev.verdict = combine(found) if len({f.verdict for f in found}) == 1 else INCONNU
        ev.reason = " ; ".join(f.reason for f in found)
        ev.caveats = [c for f in found for c in f.caveats]
        if len(found) > 1:
            ev.caveats.append(f"commune présente {len(found)} fois dans le suivi des ORT")
        return ev, rows
    ev.reason = f"commune absente du suivi des ORT (actualisé au {_fr(info.date)})"
    for r in lists.rows("ort", code, absorbed=True):
        part = _ort_row(r, day, info.date)
        if part.verdict == OUI:
            ev.verdict = INCONNU
            ev.caveats.append(
                f"l'ancienne commune {r['commune']} ({r['code_insee']}), aujourd'hui rattachée à {code}, "
                f"figure au suivi : {part.reason} — l'ORT couvre-t-elle toute la commune actuelle ?"
            )
    if day > dt.date.fromisoformat(info.date[:10]):
        ev.caveats.append(f"une ORT signée après le {_fr(info.date)} ne figure pas dans cette liste")
    if ev.verdict == NON:
        ev = _later_acv_convention(code, day, lists, ev)
    return ev, rows


def _from_folder(ev: Evidence, rows: list[dict], day: dt.date, convention) -> Evidence:
    """The convention folder given: its signature counts when the follow-up lacks it; after its
    end (signature + duration, or a later version's end), the ORT effects are unknown."""
    signed = convention.date_signature
    fict = " (commune fictive)" if convention.fictif else ""
    ev.data.append(f"Convention « {convention.nom} » signée le {_fr(signed)}{fict}")
    end = convention_end(convention)
    national = f"le suivi national dit : {ev.reason}" if ev.reason else ""
    if signed <= day and end < day:
        ev.caveats += [national] if national else []
        ev.verdict = INCONNU
        ev.reason = f"convention d'ORT « {convention.nom} » signée le {_fr(signed)}{fict}, {ended(end)}"
    elif signed <= day and ev.verdict != OUI:
        ev.caveats += [national] if national else []
        ev.verdict, ev.reason = OUI, f"convention d'ORT « {convention.nom} » signée le {_fr(signed)}{fict}"
    elif ev.verdict == OUI and rows and rows[0]["date_signature"] not in (None, signed):
        ev.caveats.append(f"date de signature différente dans la convention ({_fr(signed)}) : à vérifier")
    for note in getattr(convention, "divergences", ()) or ():
        ev.caveats.append(f"sources divergentes ({convention.nom}) : {note}")
    return ev


def ended(end: dt.date) -> str:
    """The words of every ORT effect after the convention's end (issue 22, item 4)."""
    return f"convention échue le {_fr(end)}, vérifier un avenant de prolongation"


def convention_end(convention) -> dt.date:
    """End of a convention folder: signature + duration, or later when a version of its
    perimeters (an avenant) runs beyond it."""
    end = convention.date_fin
    for v in getattr(convention, "versions", ()) or ():
        later = getattr(v, "date_fin", None)
        if later is not None and later > end:
            end = later
    return end


#: ACV conventions signed from this day (the programme's second phase) may be worth an ORT.
ACV_LATER_FROM = dt.date(2023, 1, 1)


def _later_acv_convention(code: str, day: dt.date, lists: NationalLists, ev: Evidence) -> Evidence:
    """A commune absent from the ORT follow-up whose ACV convention was signed from 2023: the
    convention may be worth an ORT, so "inconnu" with the reason, not "non" (issue 22, item 5)."""
    acv = _programme_row(lists, code)
    signed = (acv or {}).get("date_signature")
    if not isinstance(signed, dt.date) or signed < ACV_LATER_FROM or signed > day:
        return ev
    return ev.copy(
        verdict=INCONNU,
        reason=(
            f"{ev.reason} ; mais convention Action cœur de ville signée le {_fr(signed)} "
            f"({_programme_text(acv)}) : une convention ACV signée depuis 2023 peut valoir convention d'ORT, "
            "à vérifier dans la convention ou auprès de la préfecture"
        ),
    )


def concluded_caveats(code: str, day: dt.date, lists: NationalLists) -> list[str]:
    """The tax text says a commune *having concluded* an ORT; the national table lists the communes
    *covered*: what to check when an answer rests on the table."""
    out = []
    for r in own_rows(lists, "ort", code):
        if r["signee"] != "signee":
            continue
        if r.get("programme") == "autre":
            out.append(
                "le suivi national liste les communes couvertes par une ORT ; la loi vise la commune qui a "
                "conclu la convention : commune ni ACV ni PVD, vérifier qu'elle en est signataire"
            )
    return list(dict.fromkeys(out))


def _ort_row(r: dict, day: dt.date, vintage: str) -> Evidence:
    where = f"suivi des ORT, {r['ligne']} « {r['code_insee']} {r['commune']} »"
    signed, maj = r["date_signature"], r["derniere_actualisation"]
    status = r["signee"]
    if status == "signee" and signed is not None:
        end = r.get("date_fin_estimee")
        if signed <= day and isinstance(end, dt.date) and end < day:
            return Evidence(
                INCONNU,
                f"ORT signée le {_fr(signed)}, {ended(end)} (date de fin estimée du suivi national, {where})",
            )
        if signed <= day:
            return Evidence(OUI, f"ORT signée le {_fr(signed)} ({where})")
        return Evidence(NON, f"ORT signée le {_fr(signed)}, après le {_fr(day)} ({where})")
    if status == "signee":
        if maj is not None and maj <= day:
            return Evidence(OUI, f"ORT « Signée » sans date, au plus tard le {_fr(maj)} ({where})")
        return Evidence(INCONNU, f"ORT « Signée » sans date de signature ({where})")
    label = {"non_signee": "Non signée", "en_cours": "En cours", "": "statut vide"}[status]
    if status == "" and signed is not None:
        return Evidence(INCONNU, f"ORT au statut vide avec une date de signature {_fr(signed)} ({where})")
    ev = Evidence(NON, f"ORT « {label} » à l'actualisation du {_fr(maj or vintage)} ({where})")
    if maj is not None and day > maj:
        ev.caveats.append(
            f"statut connu au {_fr(maj)} : une signature postérieure ne figure pas dans la liste"
        )
    if signed is not None:
        ev.caveats.append(
            f"une date ({_fr(signed)}) figure pourtant dans la colonne de signature : statut retenu"
        )
    return ev


# --------------------------------------------------------------------------------------------
# The arrêté of 26 March 2019 and the ACV programme


def arrete_table(lists: NationalLists) -> pd.DataFrame | None:
    """The list of the arrêté of 26 March 2019 (``NationalLists.acv_arrete``), or None."""
    tables = getattr(lists, "tables", {})
    return tables.get(_ARRETE_NAME) if _ARRETE_NAME in tables else None


def arrete_label(lists: NationalLists) -> str:
    info = getattr(lists, "info", {}).get(_ARRETE_NAME)
    if info is not None:
        return info.label()
    table = arrete_table(lists)
    label = table.attrs.get("label") if table is not None else None
    return label or f"Liste des communes de l'{ARRETE} (CGI art. 199 novovicies, IV bis)"


def _arrete_rows(lists: NationalLists, code: str) -> tuple[list[dict], list[dict]]:
    """Rows of the arrêté for ``code`` as written, and rows of former communes now part of it."""
    if arrete_table(lists) is None:
        return [], []
    return own_rows(lists, _ARRETE_NAME, code), lists.rows(_ARRETE_NAME, code, absorbed=True)


def _programme_row(lists: NationalLists, code: str) -> dict | None:
    rows = own_rows(lists, "acv", code) or lists.rows("acv", code, absorbed=True)
    return rows[0] if rows else None


def _programme_text(r: dict) -> str:
    name = " ".join(x for x in (r.get("lib_acv") or r.get("commune"), r.get("id_acv")) if x)
    signed = f", convention ACV du {_fr(r['date_signature'])}" if r.get("date_signature") else ""
    return f"programme ACV : « {name} »{signed} ({r['ligne']} de la liste ACV)"


def arrete_evidence(code: str, day: dt.date, lists: NationalLists) -> Evidence:
    """Is commune ``code`` on the list of the arrêté of 26 March 2019? (Denormandie, first route)

    The list is dated (the communes of the ACV conventions of 2018): a commune that joined ACV
    later is not on it, whatever its ACV convention date; an original ACV commune is on it from
    the start of the scheme (acquisitions from 2019-01-01), even if its ACV convention was
    signed in 2019.
    """
    label = arrete_label(lists)
    acv = _programme_row(lists, code)
    shown = f" — {_programme_text(acv)}" if acv else ""
    data = [label] + ([lists.info["acv"].label()] if acv and "acv" in lists.info else [])
    if arrete_table(lists) is None:
        if acv is None:
            return Evidence(NON, f"commune absente du programme ACV, donc de l'{ARRETE}", data)
        return Evidence(
            INCONNU,
            f"liste de l'{ARRETE} non chargée : commune du programme ACV, inscription à vérifier{shown}",
            data,
        )
    same, merged = _arrete_rows(lists, code)
    if same:
        r = same[0]
        conv = " ".join(x for x in (r.get("id_acv"), f"« {r['lib_acv']} »" if r.get("lib_acv") else "") if x)
        row = f"{r.get('ligne', '')} de {r.get('fichier') or 'la liste'}".strip()
        where = ", ".join(x for x in (f"convention ACV de 2018 {conv}" if conv else "", row) if x)
        listed = r.get("code_actuel") or r.get("code_insee")
        whose = "commune" if listed == code else f"commune nouvelle {listed}, dont {code} fait partie,"
        ev = Evidence(OUI, f"{whose} de la liste de l'{ARRETE} ({where})", data)
        if listed != code:
            ev.caveats.append(
                f"{code} est une ancienne commune ou une commune déléguée de {listed} : si la commune "
                "nouvelle a été créée après le 26/03/2019, vérifier que l'inscription couvre le "
                f"territoire de {code}"
            )
        if acv and acv.get("date_signature") and acv["date_signature"] > dt.date(2019, 1, 1):
            ev.caveats.append(
                f"convention ACV signée le {_fr(acv['date_signature'])}, mais commune de l'arrêté : "
                "acquisitions éligibles dès le 01/01/2019"
            )
        return ev
    if merged:
        names = ", ".join(f"{r['code_insee']} {r.get('commune', '')}".strip() for r in merged)
        return Evidence(
            INCONNU,
            f"l'ancienne commune {names}, aujourd'hui rattachée à {code}, "
            f"figure sur la liste de l'{ARRETE} : "
            "le logement est-il sur son territoire ?",
            data,
        )
    if acv is not None:
        return Evidence(
            NON,
            f"commune entrée au programme ACV après 2018, absente de la liste de l'{ARRETE} : "
            f"éligible seulement par une ORT conclue{shown}",
            data,
        )
    ev = Evidence(NON, f"commune absente de la liste de l'{ARRETE}", data)
    if any(r.get("acv") for r in lists.rows("ort", code)):
        ev.caveats.append("le suivi des ORT la marque pourtant ACV : à vérifier")
    return ev


def acv_2018_evidence(code: str, day: dt.date, lists: NationalLists) -> Evidence:
    """Did commune ``code`` sign its (2018 programme) ACV convention on or before ``day``?"""
    acv = _programme_row(lists, code)
    on_arrete = arrete_evidence(code, day, lists)
    if acv is None:
        return Evidence(NON, "pas de convention Action cœur de ville", on_arrete.data)
    if on_arrete.verdict == NON:  # a later ACV entrant: its own convention may carry the priority
        signed = acv.get("date_signature")
        if signed is not None and signed <= day:
            return Evidence(
                INCONNU,
                f"convention ACV signée le {_fr(signed)}, entrée au programme après 2018 : "
                f"priorité de l'Anah à vérifier dans la convention ({_programme_text(acv)})",
                on_arrete.data,
            )
        return Evidence(NON, "pas de convention Action cœur de ville signée à cette date", on_arrete.data)
    if on_arrete.verdict == INCONNU:
        return Evidence(INCONNU, on_arrete.reason, on_arrete.data)
    signed = acv.get("date_signature")
    if signed is None:
        return Evidence(
            INCONNU, f"convention ACV sans date de signature ({_programme_text(acv)})", on_arrete.data
        )
    if signed > day:
        return Evidence(NON, f"convention ACV signée le {_fr(signed)}, après le {_fr(day)}", on_arrete.data)
    return Evidence(
        OUI,
        f"convention Action cœur de ville signée le {_fr(signed)} ({_programme_text(acv)})",
        on_arrete.data,
    )


def anah_opah_ru(code: str, day: dt.date, lists: NationalLists) -> Evidence | None:
    if "anah" not in lists:
        return None
    info = lists.info["anah"]
    ops = [
        r
        for r in own_rows(lists, "anah", code)
        if r["operation"] == "OPAH-RU"
        and (r["date_debut"] is None or r["date_debut"] <= day)
        and (r["date_fin"] is None or day <= r["date_fin"])
    ]
    if ops:
        names = ", ".join(f"« {r['nom'] or r['operation']} » ({r['ligne']})" for r in ops)
        return Evidence(
            INCONNU,
            f"la commune a une OPAH-RU en vigueur ({names}) : la réponse dépend de son périmètre",
            [info.label()],
        )
    return Evidence(
        NON, f"aucune OPAH-RU en vigueur le {_fr(day)} pour la commune dans la liste Anah", [info.label()]
    )
