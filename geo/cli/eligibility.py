"""``ort eligibility`` and ``ort communes``: what a parcel or a commune gets, and national views.

Every answer prints its verdict with the reason (the list row or perimeter used), the legal
reference, the date evaluated, the rule's period (the Denormandie end date is printed every
time), the data used with their dates, and the caveats.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import click

from geo import fmt
from geo.cli.options import (
    EXIT_BAD_INPUT,
    Command,
    addresses_option,
    cadastre_option,
    date_option,
    fix_option,
    force_option,
    load_parcels,
    locate_addresses,
    millesime_option,
    parse_date,
    perimeters_option,
    split_addresses,
)
from geo.errors import InputError, PerimeterError

_VERDICT_LABELS = {"oui": "OUI", "non": "non", "partiellement": "PARTIELLEMENT", "inconnu": "inconnu"}


def _lists_options(f):
    f = click.option(
        "--denormandie-fin",
        "denormandie_end",
        default=None,
        help="Fin de la période d'acquisition Denormandie, AAAA-MM-JJ (défaut : celle du fichier de règles).",
    )(f)
    f = click.option(
        "--rules",
        "rules_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Fichier de règles (défaut : data/regles-eligibilite.toml).",
    )(f)
    return click.option(
        "--lists",
        "lists_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Dossier des fichiers officiels des listes nationales (défaut : les copies datées livrées "
        "avec ort, ou celles de « ort listes --mettre-a-jour »).",
    )(f)


def _load(lists_dir, rules_path, denormandie_end):
    from geo.eligibility.rules import load_rules
    from geo.sources.lists import load_lists

    end = None
    if denormandie_end:
        try:
            end = dt.date.fromisoformat(denormandie_end)
        except ValueError:
            raise InputError(
                f"--denormandie-fin {denormandie_end!r} n'est pas une date", fix="écrivez AAAA-MM-JJ"
            ) from None
    return load_lists(lists_dir), load_rules(rules_path, denormandie_end=end)


def _header(day: dt.date, lists, rules) -> str:
    from geo import fmt

    rule = next((r for r in rules if r.id == "denormandie"), None)
    lines = [f"Éligibilité évaluée au {fmt.date_fr(day)} — {rules.label()}"]
    if rule is not None:
        lines.append(f"Denormandie : acquisitions {rule.period()}")
        history = rules.parameters.get("denormandie_historique") or []
        if history:
            lines.append("  textes successifs : " + " → ".join(history))
    lines += [f"Liste : {info.label()}" for info in lists.info.values()]
    return "\n".join(lines)


# --- ort eligibility ------------------------------------------------------------------------


@click.command("eligibility", cls=Command)
@click.argument("ids", nargs=-1)
@click.option("--commune", "communes", multiple=True, help="Code INSEE (5 caractères), ex. 62907.")
@perimeters_option(required=False)
@date_option
@click.option(
    "--file",
    "batch",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV/XLSX avec une colonne idu (parcelles) et/ou code_insee (communes).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Réponses en .csv, .xlsx ou .parquet.",
)
@click.option("--json", "as_json", is_flag=True, help="Afficher en JSON.")
@_lists_options
@addresses_option
@cadastre_option
@millesime_option
@force_option
@fix_option
def eligibility(
    ids,
    communes,
    perimeters,
    when,
    batch,
    output,
    as_json,
    lists_dir,
    rules_path,
    denormandie_end,
    address_file,
    cadastre,
    millesime,
    force,
    fix,
):
    """Qu'apporte l'ORT à une parcelle, une adresse ou une commune, à une date — et pourquoi ?

    \b
    ort eligibility 62907000AB0685 --perimeters perimeters/libercourt --date 2025-03-01
    ort eligibility "12 rue Jean Jaurès, 62820 Libercourt" --perimeters perimeters/libercourt
    ort eligibility --commune 62907 --date 2023-06-01
    ort eligibility --file demandes.csv --date 2025-03-01 -o reponses.xlsx
    """
    # Imports stay lazy: a commune's answer needs neither geopandas nor the writers.
    from geo.eligibility.answers import answers_to_frame, eligibility_for_commune, eligibility_for_parcels
    from geo.idu import parse_many
    from geo.sources.lists import normalise_code

    ids, addresses = split_addresses(ids) if ids else ((), [])
    if not ids and not addresses and not communes and not batch:
        raise click.UsageError("donnez des identifiants de parcelles, --commune CODE ou --file demandes.csv")
    if addresses and not perimeters:
        raise click.UsageError("une adresse se place sur le cadastre de la convention : donnez --perimeters")
    if output:
        from geo.io import check_writable

        check_writable(output, force=force)
    day = parse_date(when)
    lists, rules = _load(lists_dir, rules_path, denormandie_end)
    if perimeters:
        from geo.perimeters import read_convention
    conv = read_convention(perimeters) if perimeters else None
    perims, no_version = None, ""
    if conv is not None:
        try:
            perims = conv.perimeters(day)
        except PerimeterError as err:  # no version in force at that date: place rules say "inconnu"
            no_version = str(err)

    parcel_texts = [(t, None) for t in ids]
    commune_texts = [(c, "--commune") for c in communes] if not ids and not addresses else []
    layer, located = None, []
    if addresses:
        layer = load_parcels(conv, cadastre, millesime, fix)
        located = locate_addresses(addresses, conv, layer, address_file)
        parcel_texts += [(a.idu, None) for a in located if a.idu]
    if batch:
        more_parcels, more_communes = _read_batch(batch)
        parcel_texts += more_parcels
        commune_texts += more_communes
    default = (communes[0] if len(communes) == 1 else None) or (
        conv.communes[0] if conv is not None and len(conv.communes) == 1 else None
    )
    rejected: list[tuple[str, str]] = []
    answers = []
    for text, where in commune_texts:
        code, note = normalise_code(text)
        if code is None or (note and where == "--commune"):
            rejected.append((text, note + (" — écrivez-le sur 5 caractères, ex. 01004" if code else "")))
            continue
        if note:
            click.echo(f"Avertissement : {where} : {note}", err=True)
        try:
            in_conv = conv if conv is not None and code in conv.communes else None
            answers += eligibility_for_commune(code, day, lists=lists, rules=rules, convention=in_conv)
        except InputError as err:
            rejected.append((text, str(err)))
    valid = []
    for code in dict.fromkeys(c for _, c in parcel_texts):
        texts = [t for t, c in parcel_texts if c == code]
        ok, bad = parse_many(texts, code_insee=code or default)
        valid += ok
        rejected += bad
    if valid and conv is None:
        for p in valid:
            try:
                answers += _without_perimeters(p, day, lists, rules)
            except InputError as err:
                rejected.append((p.idu, str(err)))
    elif valid and perims is None:
        # No perimeter version in force at the date (sectors not digitised, or not yet in force):
        # the place-level effects are "inconnu" (or "non" without an ORT); no cadastre is needed.
        for p in valid:
            if p.code_insee not in conv.communes:
                rejected.append(
                    (p.idu, f"commune {p.code_insee} hors de la convention ({', '.join(conv.communes)})")
                )
                continue
            answers += eligibility_for_commune(
                p.code_insee, day, lists=lists, rules=rules, convention=conv, idu=p.idu
            )
    elif valid:
        layer = layer if layer is not None else load_parcels(conv, cadastre, millesime, fix)
        known = layer[layer["idu"].isin([p.idu for p in valid])]
        found = set(known["idu"])
        for p in valid:
            if p.code_insee not in conv.communes:
                rejected.append(
                    (p.idu, f"commune {p.code_insee} hors de la convention ({', '.join(conv.communes)})")
                )
            elif p.idu not in found:
                mill = layer.attrs.get("millesime", "inconnu")
                rejected.append((p.idu, f"parcelle absente du cadastre chargé (millésime {mill})"))
        answers += eligibility_for_parcels(known, perims, day, lists=lists, rules=rules, convention=conv)

    if output and answers:
        from geo.columns import ELIGIBILITY
        from geo.io import write_table

        write_table(
            answers_to_frame(answers),
            output,
            force=force,
            layout=ELIGIBILITY,
            title=f"Éligibilité aux effets de l'ORT au {fmt.date_fr(day)}",
            source=_source_line(day, lists, rules, conv, perims),
        )
    if as_json:
        out = _as_json(answers, day, lists, rules, conv, perims, no_version, rejected)
        if located:
            out["adresses"] = [a.to_dict() for a in located]
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        for a in located:  # ambiguous or not found: an answer, not an error
            click.echo(a.describe())
        click.echo(_header(day, lists, rules))
        if conv is not None:
            click.echo(_perimeters_line(conv, perims, no_version))
        click.echo(_describe(answers, lists, rules, brief=bool(batch) and len(answers) > 40))
        if output and answers:
            click.echo(f"Réponses écrites : {output}")
    if rejected:
        click.echo(f"{len(rejected)} entrée(s) non reconnue(s) :", err=True)
        for text, message in rejected:
            click.echo(f"  {text}: {message}", err=True)
        if not batch or not answers:
            sys.exit(EXIT_BAD_INPUT)


def _without_perimeters(p, day, lists, rules):
    from geo.eligibility.answers import eligibility_for_commune
    from geo.eligibility.rules import PLACE_LEVELS

    out = eligibility_for_commune(p.code_insee, day, lists=lists, rules=rules, idu=p.idu)
    for a in out:
        if a.level in PLACE_LEVELS and a.verdict == "inconnu":
            a.reason = "aucun dossier de périmètres donné (--perimeters) : " + a.reason.split(" : ")[0]
    return out


def _source_line(day, lists, rules, conv, perims) -> str:
    """Rules, lists and perimeters used, on one line (source row of the XLSX tables)."""
    parts = [rules.label(), *(info.label() for info in lists.info.values())]
    if conv is not None:
        parts.append(_perimeters_line(conv, perims, ""))
    return " ; ".join(parts)


def _perimeters_line(conv, perims, no_version: str) -> str:
    from geo import fmt
    from geo.eligibility.answers import NOT_DIGITISED

    fict = " — COMMUNE FICTIVE (démonstration)" if conv.fictif else ""
    if perims is None:
        why = NOT_DIGITISED if not conv.versions else no_version
        return f"Convention : {conv.nom}{fict} — {why}"
    a = perims.attrs
    return (
        f"Convention : {conv.nom}{fict} — périmètres, version « {a.get('version_libelle')} » "
        f"en vigueur depuis le {fmt.date_fr(a.get('version_date'))}"
    )


def _context(profile: dict) -> str:
    parts = [
        f"EPCI {profile['epci']}" if profile["epci"] else "",
        f"{profile['population']} hab." if profile["population"] else "",
        f"programmes : {', '.join(profile['programmes'])}" if profile["programmes"] else "",
        f"QPV 2024 : {', '.join(profile['qpv_2024'])}" if profile["qpv_2024"] else "",
        profile["remarque"],
    ]
    return "  " + " ; ".join(p for p in parts if p)


def _describe(answers, lists, rules, *, brief: bool) -> str:
    """Per target: one line per dispositif first, the detail below; the disclaimer closes it."""
    from geo.eligibility.answers import answers_to_frame

    if not answers:
        return "Aucune réponse."
    if brief:
        table = answers_to_frame(answers)
        table["cible"] = table["idu"].fillna(table["code_insee"])
        pivot = table.pivot_table(
            index="cible", columns="regle", values="verdict", aggfunc="first", sort=False
        )
        return pivot.to_string() + "\n\n" + _closing(rules)
    groups: dict = {}
    for a in answers:
        groups.setdefault((a.idu, a.code_insee), []).append(a)
    lines = []
    for (idu, code), group in groups.items():
        first = group[0]
        head = f"{idu} — commune {code} {first.commune}" if idu else f"{code} {first.commune}"
        lines += [f"\n{head}", _context(lists.profile(code)), "  En bref :"]
        lines += [f"    {a.summary()}" for a in group]
        lines.append("  Détail :")
        shared = set.intersection(*(set(a.data_used) for a in group))
        for a in group:
            lines.append(f"  {a.name} — {a.effect_label}")
            lines.append(f"    → {a.verdict_text()} : {a.reason}")
            lines.append(f"    référence : {a.reference} ; période : {a.period}")
            own = [d for d in a.data_used if d not in shared]
            if own:
                lines.append(f"    données : {' ; '.join(own)}")
            lines += [f"    ⚠ {c}" for c in a.caveats]
            lines += [f"    à vérifier : {v}" for v in a.to_verify]
        lines.append(f"  Données : {' ; '.join(d for d in first.data_used if d in shared)}")
    lines.append("\n" + _closing(rules))
    return "\n".join(lines)


def _closing(rules) -> str:
    """The one-line disclaimer that ends every answer."""
    bofip = next((r.bofip for r in rules if r.bofip), "")
    return rules.disclaimer + (f" Denormandie : {bofip}." if bofip else "")


def _as_json(answers, day, lists, rules, conv, perims, no_version, rejected) -> dict:
    from geo.eligibility.answers import NOT_DIGITISED

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
    return {
        "date": day.isoformat(),
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
            "version": perims.attrs.get("version") if perims is not None else None,
            "version_date": perims.attrs.get("version_date") if perims is not None else None,
            "remarque": (NOT_DIGITISED if not conv.versions else no_version) or None,
        },
        "resultats": list(targets.values()),
        "rejetes": [{"entree": t, "erreur": m} for t, m in rejected],
        "avertissement": _closing(rules),
    }


def _read_batch(path: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Parcel entries ``(id, commune or None)`` and commune entries ``(code, 'ligne N')`` of a file."""
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


# --- ort communes ----------------------------------------------------------------------------


@click.command("communes", cls=Command)
@click.option(
    "--eligible",
    "rule_id",
    default=None,
    help="Règle décidée à l'échelle de la commune : denormandie, anah_prioritaire, "
    "information_fermeture_service, zrcv, autres_effets_ort.",
)
@date_option
@click.option("--dep", "departement", default=None, help="Code du département, ex. 62, 2A, 974.")
@click.option("--report", "consistency", is_flag=True, help="Rapport de cohérence entre les listes.")
@click.option("--json", "as_json", is_flag=True, help="Afficher en JSON.")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Tableau : .csv, .xlsx."
)
@_lists_options
@force_option
def communes_cmd(
    rule_id, when, departement, consistency, as_json, output, lists_dir, rules_path, denormandie_end, force
):
    """Communes éligibles à un effet décidé à l'échelle de la commune, avec le motif ; comptes ;
    cohérence des listes.

    \b
    ort communes --eligible denormandie --date 2025-03-01 --dep 62
    ort communes --report
    """
    from geo import fmt
    from geo.eligibility.answers import counts_by_departement, eligible_communes, signed_ort_communes
    from geo.io import check_writable, write_table
    from geo.sources.lists import check_consistency

    if not rule_id and not consistency:
        raise click.UsageError("donnez --eligible denormandie (ou une autre règle) et/ou --report")
    if output:
        check_writable(output, force=force)
    day = parse_date(when)
    if departement:
        departement = departement.strip().upper()
        departement = departement.zfill(2) if departement.isdigit() and len(departement) < 2 else departement
    lists, rules = _load(lists_dir, rules_path, denormandie_end)
    out: dict = {"date": day.isoformat()}
    text: list[str] = [_header(day, lists, rules)]
    if rule_id:
        table = eligible_communes(rule_id, day, lists=lists, rules=rules, departement=departement)
        if departement and table.empty:
            raise InputError(
                f"aucune commune des listes dans le département {departement!r}", fix="ex. --dep 62, 2A, 974"
            )
        yes, unknown = table[table["verdict"] == "oui"], table[table["verdict"] == "inconnu"]
        counts = counts_by_departement(table)
        rule = rules.get(rule_id)
        out.update(
            regle=rule_id,
            periode=rule.period(),
            communes=yes.to_dict("records"),
            a_verifier=unknown.to_dict("records"),
            comptes=counts.to_dict("records"),
        )
        text.append(
            f"\n{rule.effect} — {fmt.number(len(yes))} commune(s) éligible(s) "
            f"au {fmt.date_fr(day)}, comptées "
            f"au code officiel actuel ; période : {rule.period()}"
        )
        text += [
            f"  {r.code_insee} {r.commune} ({r.departement}, {r.programme}) — {r.motif}"
            for r in yes.itertuples()
        ]
        if len(unknown):
            text.append(f"\n{len(unknown)} commune(s) à vérifier (données incomplètes) :")
            text += [f"  {r.code_insee} {r.commune} — {r.motif}" for r in unknown.itertuples()]
        text.append("\nPar département et programme (communes éligibles) :")
        text.append(counts.to_string(index=False))
        via = yes["via"].value_counts()
        text.append(
            f"Par motif : liste de l'arrêté du 26 mars 2019 (ACV 2018) {via.get('arrêté ACV', 0)}, "
            f"ORT conclue {via.get('ORT', 0)}"
        )
        signed = signed_ort_communes(lists)
        out["ort_signees"] = signed
        text.append(signed["texte"])
        if output:
            write_table(
                table,
                output,
                force=force,
                title=f"{rule.effect} — communes au {fmt.date_fr(day)}",
                source=_source_line(day, lists, rules, None, None),
            )
            text.append(f"Tableau écrit : {output}")
    if consistency:
        from geo.sources.arrete_report import compare_arrete

        comparison = compare_arrete(lists, departement=departement)
        if comparison is not None:
            out["liste_arrete"] = comparison.to_dict()
            text += ["", *comparison.lines()]
        report = check_consistency(lists)
        out["coherence"] = [
            {
                "gravite": p.severity,
                "code": p.code,
                "source": p.source,
                "ligne": p.feature,
                "message": p.message,
            }
            for p in report.problems
        ]
        text.append("\n" + str(report))
    text.append("\n" + _closing(rules))
    out["avertissement"] = _closing(rules)
    click.echo(json.dumps(out, ensure_ascii=False, indent=2, default=str) if as_json else "\n".join(text))


COMMANDS = [eligibility, communes_cmd]
