"""``ort listes``: the national lists in use (vintage, source, copy), and their update."""

from __future__ import annotations

import json
import sys

import click

from geo.cli.options import Command


@click.command("listes", cls=Command)
@click.option(
    "--mettre-a-jour",
    "update",
    is_flag=True,
    help="Télécharger les fichiers officiels actuels (data.gouv.fr), les vérifier et les utiliser désormais.",
)
@click.option(
    "--accepter-baisse",
    "accept_drop",
    is_flag=True,
    help="Avec --mettre-a-jour : garder une liste qui perd plus de 1 % de ses lignes, communes, ORT signées.",
)
@click.option(
    "--revenir",
    "restore",
    is_flag=True,
    help="Rétablir, pour chaque liste mise à jour, la copie que la dernière mise à jour a remplacée.",
)
@click.option("--json", "as_json", is_flag=True, help="Afficher en JSON.")
def listes(update: bool, accept_drop: bool, restore: bool, as_json: bool) -> None:
    """Listes nationales utilisées par les réponses : millésime, source, copie en service.

    Par défaut, les copies datées livrées avec ort (copie intégrée) ; après
    « ort listes --mettre-a-jour », les copies téléchargées quand elles sont au moins aussi
    récentes (copie mise à jour). Un téléchargement refusé laisse la copie précédente en service ;
    une liste qui perd plus de 1 % de ses lignes, de ses communes ou de ses ORT signées est refusée
    sauf avec --accepter-baisse. La copie remplacée est gardée : --revenir la rétablit.

    \b
    ort listes
    ort listes --mettre-a-jour
    ort listes --mettre-a-jour --accepter-baisse
    ort listes --revenir
    """
    from geo.errors import InputError
    from geo.sources import snapshot

    if update and restore:
        raise InputError("--mettre-a-jour et --revenir ensemble", fix="choisissez l'un des deux")
    if accept_drop and not update:
        raise InputError(
            "--accepter-baisse va avec --mettre-a-jour", fix="ort listes --mettre-a-jour --accepter-baisse"
        )
    failed = False
    outcomes = []
    if update:
        from geo.sources.list_update import update_lists

        outcomes = update_lists(accept_drop=accept_drop)
        failed = not all(o.ok for o in outcomes)
    elif restore:
        from geo.sources.list_update import restore_lists

        outcomes = restore_lists()
    chosen, notes = snapshot.in_use()
    rows = [
        snapshot.info_of(use).to_dict()
        | {"remarque": use.entry.get("remarque", ""), "copie_precedente": _previous(use)}
        for use in chosen.values()
    ]
    if as_json:
        out = {
            "listes": rows,
            "remarques": notes,
            "mise_a_jour": [
                {"liste": o.name, "statut": o.status, "message": o.message}
                | ({"pertes": o.drop.to_dict()} if o.drop is not None else {})
                for o in outcomes
            ],
        }
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        if outcomes:
            click.echo("Copie précédente rétablie :" if restore else "Mise à jour des listes :")
            for o in outcomes:
                click.echo(f"  {o.name} : {o.status} — {o.message}")
            click.echo("")
        click.echo(_table(rows))
        for note in notes:
            click.echo(f"⚠ {note}")
        if not update:
            click.echo("\nMettre à jour depuis data.gouv.fr : ort listes --mettre-a-jour")
    if failed:
        click.echo(
            "Erreur : une ou plusieurs listes n'ont pas été mises à jour (voir ci-dessus) ; "
            "les copies précédentes restent en service",
            err=True,
        )
        sys.exit(1)


def _table(rows: list[dict]) -> str:
    from geo import fmt
    from geo.sources.snapshot import UPDATABLE

    lines = ["Listes nationales en service :"]
    for r in rows:
        fixed = "" if r["nom"] in UPDATABLE else " ; pas de mise à jour en ligne"
        lines.append(f"\n  {r['nom']} — {r['titre']}")
        lines.append(
            f"    millésime : {r['base_date']} {r['date']} ; {fmt.number(r['lignes'])} lignes ; "
            f"copie {r['copie']}{fixed}"
        )
        lines.append(f"    source : {r['source']}")
        lines.append(f"    fichier officiel : {r['fichier_officiel']} ; licence : {r['licence']}")
        if r.get("copie_precedente"):
            p = r["copie_precedente"]
            lines.append(
                f"    copie précédente gardée : copie {p['copie']} ({p['base_date']} {p['date']}, "
                f"{fmt.number(p['lignes'])} lignes) ; « ort listes --revenir » la rétablit"
            )
    return "\n".join(lines)


def _previous(use) -> dict | None:
    """The copy an updated list replaced, kept for « ort listes --revenir » (None if none)."""
    from geo.sources.snapshot import EMBEDDED

    before = use.entry.get("precedente") if use.copy != EMBEDDED else None
    if not before:
        return None
    copy = before.get("copie") or f"mise à jour le {before.get('mise_a_jour', '?')}"
    return {
        "copie": copy,
        "date": before.get("millesime"),
        "base_date": before.get("base_millesime"),
        "lignes": before.get("lignes"),
    }


COMMANDS = [listes]
