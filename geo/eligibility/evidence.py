"""What the national lists say about one commune at one date, as evidence for a rule.

Private helpers of :mod:`geo.eligibility.answers`: each returns an :class:`Evidence` (verdict, reason
naming the list row used, data used, caveats). Whether a commune signed an ORT comes from its
own row of the ORT follow-up (never a neighbour's), or from the convention folder given.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from geo.sources.lists import NationalLists

OUI, NON, PARTIELLEMENT, INCONNU = "oui", "non", "partiellement", "inconnu"


@dataclass
class Evidence:
    """A verdict with its reason, the data used and the caveats (``share`` for parcels)."""

    verdict: str
    reason: str
    data: list[str] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)
    share: float | None = None

    def copy(self, **changes) -> Evidence:
        return replace(self, data=list(self.data), caveats=list(self.caveats), **changes)


def combine(items: list[Evidence]) -> str:
    verdicts = {e.verdict for e in items}
    return OUI if OUI in verdicts else INCONNU if INCONNU in verdicts else NON


# --------------------------------------------------------------------------------------------
# Commune-level evidence from the national lists


def ort_evidence(code: str, day: dt.date, lists: NationalLists, convention=None) -> Evidence:
    """Has commune ``code`` signed an ORT convention on or before ``day``? From its own row of
    the ORT follow-up (named in the reason), else the convention folder given."""
    info = lists.info["ort"]
    ev = Evidence(NON, "", [info.label()])
    rows = lists.rows("ort", code)
    found = [_ort_row(r, day, info.date) for r in rows]
    if found:
        ev.verdict = combine(found) if len({f.verdict for f in found}) == 1 else INCONNU
        ev.reason = " ; ".join(f.reason for f in found)
        ev.caveats = [c for f in found for c in f.caveats]
        if len(found) > 1:
            ev.caveats.append(f"commune présente {len(found)} fois dans le suivi des ORT")
    else:
        ev.reason = f"commune absente du suivi des ORT (actualisé au {info.date})"
        for r in lists.rows("ort", code, absorbed=True):
            part = _ort_row(r, day, info.date)
            if part.verdict == OUI:
                ev.verdict = INCONNU
                ev.caveats.append(
                    f"l'ancienne commune {r['commune']} ({r['code_insee']}), aujourd'hui rattachée à {code}, "
                    f"figure au suivi : {part.reason} — l'ORT couvre-t-elle toute la commune actuelle ?"
                )
        if day > dt.date.fromisoformat(info.date[:10]):
            ev.caveats.append(f"une ORT signée après le {info.date} ne figure pas dans cette liste")
    real = lists.resolve(code)[0] is not None and "communes" in lists
    if convention is not None and code in convention.communes and convention.fictif and real:
        ev.caveats.append(
            f"la convention « {convention.nom} » est fictive : ignorée pour cette commune réelle"
        )
    elif convention is not None and code in convention.communes:
        signed = convention.date_signature
        fict = " (commune fictive)" if convention.fictif else ""
        ev.data.append(f"Convention « {convention.nom} » signée le {signed}{fict}")
        if signed <= day and ev.verdict != OUI:
            ev.caveats.append(f"le suivi national dit : {ev.reason}")
            ev.verdict, ev.reason = OUI, f"convention d'ORT « {convention.nom} » signée le {signed}{fict}"
        elif ev.verdict == OUI and found and rows[0]["date_signature"] not in (None, signed):
            ev.caveats.append(f"date de signature différente dans la convention ({signed}) : à vérifier")
    return ev


def _ort_row(r: dict, day: dt.date, vintage: str) -> Evidence:
    where = f"suivi des ORT, {r['ligne']} « {r['code_insee']} {r['commune']} »"
    signed, maj = r["date_signature"], r["derniere_actualisation"]
    status = r["signee"]
    if status == "signee" and signed is not None:
        if signed <= day:
            return Evidence(OUI, f"ORT signée le {signed} ({where})")
        return Evidence(NON, f"ORT signée le {signed}, après le {day} ({where})")
    if status == "signee":
        if maj is not None and maj <= day:
            return Evidence(OUI, f"ORT « Signée » sans date, au plus tard le {maj} ({where})")
        return Evidence(INCONNU, f"ORT « Signée » sans date de signature ({where})")
    label = {"non_signee": "Non signée", "en_cours": "En cours", "": "statut vide"}[status]
    if status == "" and signed is not None:
        return Evidence(INCONNU, f"ORT au statut vide avec une date de signature {signed} ({where})")
    ev = Evidence(NON, f"ORT « {label} » à l'actualisation du {maj or vintage} ({where})")
    if maj is not None and day > maj:
        ev.caveats.append(f"statut connu au {maj} : une signature postérieure ne figure pas dans la liste")
    if signed is not None:
        ev.caveats.append(f"une date ({signed}) figure pourtant dans la colonne de signature : statut retenu")
    return ev


def acv_evidence(code: str, day: dt.date, lists: NationalLists) -> Evidence:
    """Is commune ``code`` on the ACV list on ``day``? (from its convention ACV date when known)"""
    info = lists.info["acv"]
    rows = lists.rows("acv", code) or [r for r in lists.rows("acv", code, absorbed=True)]
    if not rows:
        ev = Evidence(NON, "commune absente de la liste Action cœur de ville", [info.label()])
        if any(r["acv"] for r in lists.rows("ort", code)):
            ev.caveats.append("le suivi des ORT la marque pourtant ACV : à vérifier")
        return ev
    r = rows[0]
    name = " ".join(x for x in (r.get("lib_acv") or r["commune"], r.get("id_acv")) if x)
    where = f"liste ACV, {r['ligne']} « {r['code_insee']} {name} »"
    signed = r["date_signature"]
    if signed is not None and day < signed:
        return Evidence(
            NON, f"commune entrée au programme ACV le {signed}, après le {day} ({where})", [info.label()]
        )
    ev = Evidence(OUI, f"commune du programme Action cœur de ville ({where})", [info.label()])
    if signed is not None and signed > dt.date(2019, 3, 26):
        ev.caveats.append(
            f"entrée au programme ACV le {signed}, après l'arrêté du 26 mars 2019 : vérifier son inscription "
            "sur la liste des communes éligibles"
        )
    return ev


def anah_opah_ru(code: str, day: dt.date, lists: NationalLists) -> Evidence | None:
    if "anah" not in lists:
        return None
    info = lists.info["anah"]
    ops = [
        r
        for r in lists.rows("anah", code)
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
        NON, f"aucune OPAH-RU en vigueur le {day} pour la commune dans la liste Anah", [info.label()]
    )
