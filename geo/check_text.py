"""What ``ort check`` prints and the validity it reports, from plain values (no tables).

The parcel check (:mod:`geo.check`) and its one-parcel answer from the shell
(:mod:`geo.check_digest`, which must not import pandas) print with the same functions: the
provenance lines, the expiry note, the validity of the version used and a parcel's lines.
``convention`` is a :class:`geo.perimeters.Convention` or any object with the same attributes
(``nom``, ``fictif``, ``date_signature``, ``date_fin``, ``duree_ans``, ``versions``); only the
``attrs`` of ``perimeters`` are read.
"""

from __future__ import annotations

import datetime as dt
import math

from geo import fmt

#: French labels of the statuses of :mod:`geo.classify` (``inside``, ``straddling``, ``outside``).
STATUS_LABELS = {"inside": "incluse", "straddling": "à cheval", "outside": "hors périmètre"}


def provenance_text(convention, perimeters, millesime: str | None, when: dt.date) -> str:
    """The lines printed above every answer: convention, perimeter version and date, cadastre."""
    a = perimeters.attrs if perimeters is not None else {}
    fict = " — COMMUNE FICTIVE (démonstration)" if convention.fictif else ""
    note = expiry_note(convention, when)
    return (
        f"Convention : {convention.nom}{fict}\n"
        f"Périmètres : version « {a.get('version_libelle')} » en vigueur depuis le "
        f"{fmt.date_fr(a.get('version_date'))}, évalués au {fmt.date_fr(when)} ; "
        f"cadastre : millésime {millesime or 'inconnu'}" + (f"\n{note}" if note else "")
    )


def expiry_note(convention, when: dt.date) -> str:
    """A warning when ``when`` falls after the convention's end (signature + duration), else ''."""
    end = convention.date_fin
    if when <= end:
        return ""
    return (
        f"⚠ la convention a pris fin le {fmt.date_fr(end)} (signée le "
        f"{fmt.date_fr(convention.date_signature)} pour {_years(convention.duree_ans)} ans) : "
        "sauf prorogation ou avenant, ses périmètres ne sont plus en vigueur au "
        f"{fmt.date_fr(when)}"
    )


def _years(value: float) -> str:
    return fmt.number(value, 0 if value == int(value) else 1)


def validity(convention, perimeters, when: dt.date) -> dict:
    """Whether the convention and the version of its perimeters are in force on ``when``.

    Returns
    -------
    dict
        ``convention_date_signature``, ``convention_date_fin`` (signature + duration),
        ``convention_en_vigueur``, ``version``, ``version_date_effet``, ``version_date_fin`` (its
        own end, else the day before the next version, else None), ``avertissement`` (the
        expiry note, or "").
    """
    a = perimeters.attrs if perimeters is not None else {}
    version_end = None
    ids = [v.id for v in convention.versions]
    if a.get("version") in ids:
        k = ids.index(a["version"])
        ver = convention.versions[k]
        if ver.date_fin:
            version_end = ver.date_fin.isoformat()
        elif k + 1 < len(convention.versions):
            version_end = (convention.versions[k + 1].date_effet - dt.timedelta(days=1)).isoformat()
    end = convention.date_fin
    return {
        "convention_date_signature": convention.date_signature.isoformat(),
        "convention_date_fin": end.isoformat(),
        "convention_en_vigueur": when <= end,
        "version": a.get("version"),
        "version_date_effet": a.get("version_date"),
        "version_date_fin": version_end,
        "avertissement": expiry_note(convention, when),
    }


def _missing(value) -> bool:
    """None or NaN (as ``pd.isna`` says of a table's cell)."""
    if value is None or type(value).__name__ == "NAType":
        return True
    try:
        return bool(value != value) or (isinstance(value, float) and math.isnan(value))
    except (TypeError, ValueError):
        return False


def parcel_lines(idu, code_insee, section, numero, contenance, rows) -> str:
    """A parcel's identity, then its status in each perimeter: ``rows`` of
    ``(perimeter_nom, status, share, distance_m)``."""
    cont = fmt.area_m2(contenance) if not _missing(contenance) else "inconnue"
    lines = [
        f"\n{idu} — commune {code_insee}, section {str(section).lstrip('0') or '0'}, "
        f"n° {int(numero)}, contenance {cont}"
    ]
    for nom, status, share, distance in rows:
        far = status == "outside" and not _missing(distance) and distance > 0
        where = f" (à {fmt.number(distance)} m)" if far else ""
        lines.append(f"  {nom:<38} {STATUS_LABELS[status]:<15} {fmt.percent(share):>8}{where}")
    return "\n".join(lines)
