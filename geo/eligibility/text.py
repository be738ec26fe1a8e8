"""Eligibility answers as people read them in a terminal (shared by the CLI and other front ends).

Per target: one line per dispositif with its verdict and scope (« toute la commune », « part
dans les secteurs », « hors secteurs »), the detail below, the warnings shared by several
dispositifs printed once, the disclaimer last.
"""

from __future__ import annotations

import datetime as dt

from geo import fmt


def header(day: dt.date, lists, rules) -> str:
    """Date evaluated, rules file, Denormandie's period and chain of texts, lists used."""
    rule = next((r for r in rules if r.id == "denormandie"), None)
    lines = [f"Éligibilité évaluée au {fmt.date_fr(day)} — {rules.label()}"]
    if rule is not None:
        lines.append(f"Denormandie : acquisitions {rule.period()}")
        history = rules.parameters.get("denormandie_historique") or []
        if history:
            lines.append("  textes successifs : " + " → ".join(history))
    lines += [f"Liste : {info.label()}" for info in lists.info.values()]
    return "\n".join(lines)


def closing(rules) -> str:
    """The one-line disclaimer that ends every answer."""
    bofip = next((r.bofip for r in rules if r.bofip), "")
    return rules.disclaimer + (f" Denormandie : {bofip}." if bofip else "")


def perimeters_line(conv, perims, no_version: str) -> str:
    from geo.eligibility.conditions import NOT_DIGITISED

    fict = " — COMMUNE FICTIVE (démonstration)" if conv.fictif else ""
    if perims is None:
        why = NOT_DIGITISED if not conv.versions else no_version
        return f"Convention : {conv.nom}{fict} — {why}"
    a = perims.attrs
    return (
        f"Convention : {conv.nom}{fict} — périmètres, version « {a.get('version_libelle')} » "
        f"en vigueur depuis le {fmt.date_fr(a.get('version_date'))}"
    )


def source_line(lists, rules, conv, perims) -> str:
    """Rules, lists and perimeters used, on one line (source row of the XLSX tables)."""
    parts = [rules.label(), *(info.label() for info in lists.info.values())]
    if conv is not None:
        parts.append(perimeters_line(conv, perims, ""))
    return " ; ".join(parts)


def _context(profile: dict) -> str:
    parts = [
        f"EPCI {profile['epci']}" if profile["epci"] else "",
        f"{profile['population']} hab." if profile["population"] else "",
        f"programmes : {', '.join(profile['programmes'])}" if profile["programmes"] else "",
        f"QPV 2024 : {', '.join(profile['qpv_2024'])}" if profile["qpv_2024"] else "",
        profile["remarque"],
    ]
    return "  " + " ; ".join(p for p in parts if p)


def _said_more_than_once(group, items) -> dict[str, list[str]]:
    """Texts given by more than one answer of ``group``, with the names of those answers."""
    said: dict[str, list[str]] = {}
    for a in group:
        for text_ in dict.fromkeys(items(a)):
            said.setdefault(text_, []).append(a.name)
    return {t: names for t, names in said.items() if len(names) > 1}


def describe(answers, lists, rules, *, brief: bool) -> str:
    """Per target: one line per dispositif first, the warnings shared by several dispositifs
    once, the detail below; the disclaimer closes it."""
    from geo.eligibility.answers import answers_to_frame

    if not answers:
        return "Aucune réponse."
    if brief:
        table = answers_to_frame(answers)
        table["cible"] = table["idu"].fillna(table["code_insee"])
        pivot = table.pivot_table(
            index="cible", columns="regle", values="verdict", aggfunc="first", sort=False
        )
        return pivot.to_string() + "\n\n" + closing(rules)
    groups: dict = {}
    for a in answers:
        groups.setdefault((a.idu, a.code_insee), []).append(a)
    lines = []
    for (idu, code), group in groups.items():
        first = group[0]
        head = f"{idu} — commune {code} {first.commune}" if idu else f"{code} {first.commune}"
        lines += [f"\n{head}", _context(lists.profile(code)), "  En bref :"]
        lines += [f"    {a.summary()}" for a in group]
        common = _said_more_than_once(
            group, lambda a: [*a.caveats, *(f"à vérifier : {v}" for v in a.to_verify)]
        )
        if common:
            lines.append("  Mises en garde communes (dites une fois) :")
            lines += [f"    ⚠ {c} ({', '.join(n)})" for c, n in common.items()]
        used = _said_more_than_once(group, lambda a: a.data_used)
        lines.append("  Détail :")
        for a in group:
            lines.append(f"  {a.name} — {a.effect_label}")
            lines.append(f"    → {a.verdict_text()} : {a.reason}")
            lines.append(f"    référence : {a.reference} ; période : {a.period}")
            own = [d for d in a.data_used if d not in used]
            if own:
                lines.append(f"    données : {' ; '.join(own)}")
            lines += [f"    ⚠ {c}" for c in a.caveats if c not in common]
            lines += [f"    à vérifier : {v}" for v in a.to_verify if f"à vérifier : {v}" not in common]
        everyone = len(group)
        lines.append("  Données :")
        lines += [
            f"    {d}" + ("" if len(names) == everyone else f" ({', '.join(names)})")
            for d, names in used.items()
        ]
    lines.append("\n" + closing(rules))
    return "\n".join(lines)
