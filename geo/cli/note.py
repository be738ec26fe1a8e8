"""``ort note``: the one-page "note de renseignement ORT" of a parcel or an address (PDF, PNG).

Reads the convention, the cadastre, the national lists and the rules, answers for each parcel
(or address put on its parcel) and writes one note each, by default ``maps/note-{idu}.pdf``
under the current folder. Never overwrites a note without ``--force``.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from geo.cli.eligibility import _lists_options, _load
from geo.cli.options import (
    EXIT_BAD_INPUT,
    Command,
    addresses_option,
    cadastre_option,
    date_option,
    fix_option,
    force_option,
    load_parcels,
    millesime_option,
    parse_date,
    perimeters_option,
    split_addresses,
)
from geo.errors import InputError, PerimeterError

#: Columns read by ``--file``: parcel ids, or addresses.
ID_COLUMNS = ("idu", "id", "parcelle", "id_parcelle", "identifiant", "ref_cadastrale")
ADDRESS_COLUMNS = ("adresse", "address", "adresse_postale")


def _read_rows(path: Path) -> list[str]:
    """One entry per row of a CSV/XLSX: its parcel id, else its address."""
    from geo.sources.tables import read_user_table

    df = read_user_table(path)
    cols = {str(c).strip().lower(): c for c in df.columns}
    id_col = next((cols[n] for n in ID_COLUMNS if n in cols), None)
    addr_col = next((cols[n] for n in ADDRESS_COLUMNS if n in cols), None)
    if id_col is None and addr_col is None:
        raise InputError(
            f"ni colonne d'identifiants ni colonne d'adresses (colonnes : {', '.join(map(str, df.columns))})",
            source=str(path),
            fix="nommez la colonne 'idu' (parcelles) ou 'adresse'",
        )
    out = []
    for rec in df.to_dict("records"):
        ident = str(rec.get(id_col) or "").strip() if id_col is not None else ""
        addr = str(rec.get(addr_col) or "").strip() if addr_col is not None else ""
        if ident and ident.lower() != "nan":
            out.append(ident)
        elif addr and addr.lower() != "nan":
            out.append(addr)
    return out


@click.command("note", cls=Command)
@click.argument("entries", nargs=-1)
@perimeters_option()
@date_option
@click.option(
    "--file",
    "rows_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV/XLSX : une note par ligne (colonne idu, ou adresse).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Fichier PDF de la note (une seule parcelle) ; défaut : maps/note-<idu>.pdf.",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Dossier des notes (défaut : maps/ sous le dossier courant).",
)
@click.option("--png", is_flag=True, help="Écrire aussi chaque page en PNG à côté du PDF.")
@addresses_option
@_lists_options
@cadastre_option
@millesime_option
@force_option
@fix_option
def note(
    entries,
    perimeters,
    when,
    rows_file,
    output,
    output_dir,
    png,
    address_file,
    lists_dir,
    rules_path,
    denormandie_end,
    cadastre,
    millesime,
    force,
    fix,
):
    """Note de renseignement ORT d'une parcelle ou d'une adresse : PDF d'une page (et PNG).

    La parcelle, un extrait de plan, les périmètres en vigueur avec la part de la parcelle, la
    convention et la version en vigueur, chaque dispositif avec son verdict, sa référence et ses
    réserves, les millésimes des données, la date et la mention de non-valeur juridique.

    \b
    ort note "91216 AC 100" --perimeters perimeters/epinay --date 2025-03-01
    ort note "12 rue Jean Jaurès, 62820 Libercourt" --perimeters libercourt --png
    ort note --file demandes.csv --perimeters perimeters/demo --output-dir maps/notes
    """
    import pandas as pd

    from geo.classify import classify_parcels
    from geo.eligibility.answers import eligibility_for_parcels
    from geo.idu import parse_many
    from geo.io import check_writable
    from geo.note import note_pages, write_note
    from geo.perimeters import read_convention
    from geo.sources.addresses import load_address_index, parcels_for_addresses

    texts = list(entries) + (_read_rows(rows_file) if rows_file else [])
    if not texts:
        raise click.UsageError("donnez un identifiant de parcelle, une adresse ou --file demandes.csv")
    ids, addresses = split_addresses(texts)
    if output is not None and len(texts) > 1:
        raise click.UsageError("--output ne vaut que pour une seule note : utilisez --output-dir")
    out_dir = output_dir or Path("maps")
    if output is not None:
        check_writable(output, force=force)
    day = parse_date(when)
    started = time.perf_counter()
    conv = read_convention(perimeters)
    try:
        perims = conv.perimeters(day)
    except PerimeterError as err:  # no version in force: the note says so, rules answer "non"
        perims = None
        click.echo(f"Avertissement : {err}", err=True)
    lists, rules = _load(lists_dir, rules_path, denormandie_end)
    parcels = load_parcels(conv, cadastre, millesime, fix)
    default = conv.communes[0] if len(conv.communes) == 1 else None

    wanted: list[tuple[str, object]] = []  # (idu, AddressParcel or None)
    rejected: list[tuple[str, str]] = []
    ok, bad = parse_many(ids, code_insee=default, communes=conv.communes)
    wanted += [(p.idu, None) for p in ok]
    rejected += bad
    index = None
    if addresses:
        index = load_address_index(address_file, communes=conv.communes)
        for a in parcels_for_addresses(addresses, parcels, index=index, communes=conv.communes):
            click.echo(a.describe())
            if a.idu:
                wanted.append((a.idu, a))
    elif address_file is not None:
        index = load_address_index(address_file, communes=conv.communes)
    known = set(parcels["idu"])
    points = None
    if index is not None:
        recs = [
            {"label": f"{r['numero']}{r['suffixe'].lower()} {r['voie']}", "lon": r["lon"], "lat": r["lat"]}
            for r in index.addresses.values()
            if isinstance(r["lon"], float)
        ]
        points = pd.DataFrame(recs, columns=["label", "lon", "lat"])
    sources = [rules.label()]  # the lists an answer used are quoted by the answer itself
    written = []
    by_idu: dict[str, object] = {}
    for idu, located in wanted:  # the same parcel asked twice: one note, with its address if any
        by_idu[idu] = by_idu.get(idu) or located
    for idu, located in by_idu.items():
        if idu not in known:
            mill = parcels.attrs.get("millesime", "inconnu")
            rejected.append((idu, f"parcelle absente du cadastre chargé (millésime {mill})"))
            continue
        t0 = time.perf_counter()
        row = parcels[parcels["idu"] == idu]
        target = row.geometry.iloc[0]
        near = parcels.iloc[parcels.sindex.query(target.buffer(250), predicate="intersects")]
        classification = classify_parcels(near, perims, with_distance=False) if perims is not None else None
        answers = eligibility_for_parcels(row, perims, day, lists=lists, rules=rules, convention=conv)
        pts, addr_sources = points, []
        if located is not None and located.geocoded.best is not None:
            best = located.geocoded.best
            found = pd.DataFrame([{"label": best.label, "lon": best.lon, "lat": best.lat}])
            pts = found if points is None else pd.concat([points, found], ignore_index=True)
            pts = pts.drop_duplicates(["lon", "lat"])  # the file's own point, once
            addr_sources = [f"Adresses : {located.geocoded.source}"]
        elif index is not None:
            vintage = f", mis à jour le {index.date}" if index.date else ""
            addr_sources = [f"Adresses : fichier {index.format} {Path(index.source).name}{vintage}"]
        doc = note_pages(
            idu,
            parcels=near,
            perimeters=perims,
            classification=classification,
            answers=answers,
            convention=conv,
            addresses=pts,
            query=located.query if located is not None else None,
            match_line=located.match_line() if located is not None else None,
            sources=sources + addr_sources,
            when=day,
        )
        path = output or out_dir / f"note-{idu}.pdf"
        files = write_note(doc, path, png=png, force=force)
        written += files
        pages = f"{len(doc.pages)} page{'s' if len(doc.pages) > 1 else ''}"
        click.echo(f"Note écrite : {', '.join(map(str, files))} ({pages}, {time.perf_counter() - t0:.1f} s)")
    if written:
        click.echo(f"{len(written)} fichier(s) en {time.perf_counter() - started:.1f} s")
    if rejected:
        click.echo(f"{len(rejected)} entrée(s) sans note :", err=True)
        for text, message in rejected:
            click.echo(f"  {text}: {message}", err=True)
        if not written:
            raise SystemExit(EXIT_BAD_INPUT)


COMMANDS = [note]
