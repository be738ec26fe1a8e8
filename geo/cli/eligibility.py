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
from geo.errors import InputError

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
    if denormandie_end:  # the one date parser of the CLI, its message naming this option
        try:
            end = parse_date(denormandie_end)
        except InputError:
            raise InputError(
                f"--denormandie-fin {denormandie_end!r} n'est pas une date",
                fix="écrivez-la AAAA-MM-JJ (2027-12-31) ou JJ/MM/AAAA (31/12/2027)",
            ) from None
    return load_lists(lists_dir), load_rules(rules_path, denormandie_end=end)


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
    ort eligibility 62907000AB0685 --perimeters libercourt --date 2025-03-01
    ort eligibility "12 rue Jean Jaurès, 62820 Libercourt" --perimeters libercourt
    ort eligibility --commune 62907 --date 2023-06-01
    ort eligibility --file demandes.csv --date 2025-03-01 -o reponses.xlsx
    """
    # Imports stay lazy: a commune's answer needs neither geopandas nor the writers.
    from geo.eligibility.service import answer_eligibility, read_requests

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
    conv = _convention(perimeters)
    layer = _layer_loader(conv, cadastre, millesime, fix)
    located = locate_addresses(addresses, conv, layer(), address_file) if addresses else []
    parcels = [(t, None) for t in ids] + [(a.idu, None) for a in located if a.idu]
    asked = [(c, "--commune") for c in communes] if not ids and not addresses else []
    if batch:
        more_parcels, more_communes = read_requests(batch)
        parcels, asked = parcels + more_parcels, asked + more_communes
    default = (communes[0] if len(communes) == 1 else None) or (
        conv.communes[0] if conv is not None and len(conv.communes) == 1 else None
    )
    result = answer_eligibility(
        day,
        lists=lists,
        rules=rules,
        parcels=parcels,
        communes=asked,
        convention=conv,
        parcel_layer=layer,
        default_commune=default,
        located=located,
    )
    for notice in result.notices:
        click.echo(f"Avertissement : {notice}", err=True)
    if output and result.answers:
        _write_answers(result, output, day, force)
    if as_json:
        click.echo(result.to_json())
    else:
        _print_text(result, located, day, lists, rules, brief=bool(batch), output=output)
    _exit_on_rejected(result, batch)


def _convention(perimeters):
    if not perimeters:
        return None
    from geo.perimeters import read_convention

    return read_convention(perimeters)


def _layer_loader(conv, cadastre, millesime, fix):
    """The convention's parcels, loaded once on first use."""
    loaded: list = []

    def layer():
        if not loaded:
            loaded.append(load_parcels(conv, cadastre, millesime, fix))
        return loaded[0]

    return layer


def _write_answers(result, output, day, force) -> None:
    from geo.columns import ELIGIBILITY
    from geo.eligibility.answers import answers_to_frame
    from geo.io import write_table

    write_table(
        answers_to_frame(result.answers),
        output,
        force=force,
        layout=ELIGIBILITY,
        title=f"Éligibilité aux effets de l'ORT au {fmt.date_fr(day)}",
        source=result.source_line,
    )


def _print_text(result, located, day, lists, rules, *, brief: bool, output) -> None:
    from geo.eligibility import text

    for a in located:  # ambiguous or not found: an answer, not an error
        click.echo(a.describe())
    click.echo(text.header(day, lists, rules))
    if result.perimeters_line:
        click.echo(result.perimeters_line)
    click.echo(text.describe(result.answers, lists, rules, brief=brief and len(result.answers) > 40))
    if output and result.answers:
        click.echo(f"Réponses écrites : {output}")


def _exit_on_rejected(result, batch) -> None:
    if not result.rejetes:
        return
    click.echo(f"{len(result.rejetes)} entrée(s) non reconnue(s) :", err=True)
    for r in result.rejetes:
        click.echo(f"  {r.entree}: {r.erreur}", err=True)
    if not batch or not result.answers:
        sys.exit(EXIT_BAD_INPUT)


def _header(day: dt.date, lists, rules) -> str:
    from geo.eligibility import text

    return text.header(day, lists, rules)


def _closing(rules) -> str:
    from geo.eligibility import text

    return text.closing(rules)


def _source_line(day, lists, rules, conv, perims) -> str:
    from geo.eligibility import text

    return text.source_line(lists, rules, conv, perims)


# --- ort communes ----------------------------------------------------------------------------


@click.command("communes", cls=Command)
@click.option(
    "--eligible",
    "rule_id",
    default=None,
    help="Règle décidée à l'échelle de la commune : denormandie, anah_prioritaire, "
    "information_fermeture_service, autres_effets_ort.",
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
    from geo.eligibility.service import eligible_communes_view
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
        view = eligible_communes_view(rule_id, day, lists=lists, rules=rules, departement=departement)
        out.update(view.data)
        text += view.lines
        if output:
            rule = rules.get(rule_id)
            write_table(
                view.table,
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
