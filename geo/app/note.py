"""The "note de renseignement ORT" of a parcel or an address: one PDF page (and PNG).

What ``ort note`` writes and ``GET /api/parcelles/{id}/note.pdf`` serves: the parcel, a map
extract, the perimeters in force with its share, the convention and its version, each
dispositif with its verdict, reference and caveats, the data's vintages, the date.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from geo import pdf_fonts, pdf_text
from geo import settings as ort_settings
from geo.app.load import Territoire, address_index, drawing_lock, locate_addresses, split_addresses
from geo.app.models import Adresse, Note, Notes, Rejet


def write_notes(
    entries: Iterable[str],
    *,
    territoire: Territoire,
    date: dt.date | str | None = None,
    output: str | Path | None = None,
    output_dir: str | Path = "maps",
    png: bool = False,
    address_file: str | Path | None = None,
    lists=None,
    rules=None,
    force: bool = False,
    settings: ort_settings.Settings | None = None,
) -> Notes:
    """One note per parcel id or address (the same parcel asked twice: one note).

    Parameters
    ----------
    entries : iterable of str
        Parcel ids as typed, or addresses.
    territoire : Territoire
        From :func:`geo.app.open_territory`.
    date : date or str, optional
        Date of the situation (default today). Without perimeters in force that day the note
        says so (a warning in ``avertissements``).
    output : path, optional
        The PDF of a single note; default ``{output_dir}/note-{idu}.pdf``.
    png : bool
        Also one PNG per page beside the PDF.
    address_file : path, optional
        BAN or BAL CSV (offline); its points are drawn on the map extract.
    lists, rules : optional
        :func:`geo.sources.lists.load_lists` and :func:`geo.eligibility.rules.load_rules`
        results (default: the shipped ones).
    force : bool
        Replace existing notes.
    """
    from geo.errors import InputError
    from geo.note import write_note
    from geo.perimeters import parse_date

    texts = list(entries)
    if output is not None and len(texts) > 1:
        raise InputError("--output ne vaut que pour une seule note", fix="utilisez --output-dir")
    with ort_settings.use(settings):
        day = parse_date(date)
        job = _Job(territoire, day, lists, rules, address_file, texts)
        notes = []
        for idu, located in job.wanted.items():
            t0 = time.perf_counter()
            doc = job.draw(idu, located)
            path = Path(output) if output is not None else Path(output_dir) / f"note-{idu}.pdf"
            with drawing_lock:
                pdf_fonts.install()  # fonts subset once per machine, not once per note
                pdf_text.install()  # each text laid out once per process, not once per note
                files = write_note(doc, path, png=png, force=force)
            notes.append(
                Note(
                    idu=idu,
                    adresse=located.query if located is not None else None,
                    fichiers=files,
                    pages=len(doc.pages),
                    secondes=round(time.perf_counter() - t0, 2),
                )
            )
    if notes:
        pdf_text.save()  # the texts laid out, for the next process (once per process)
    out = Notes(
        date=day,
        convention=territoire.convention.nom,
        notes=notes,
        adresses=[Adresse.model_validate(a.to_dict()) for a in job.located],
        rejetes=[Rejet(entree=t, erreur=m) for t, m in job.rejected],
        avertissements=job.warnings,
    )
    out._located = job.located
    return out


def load_drawing() -> None:
    """Import what drawing and writing a note needs (matplotlib, the fonts and texts kept):
    done by the first note anyway; a front end may do it first, e.g. while it pauses the
    cyclic garbage collector during its start (``ort note``)."""
    import geo.note  # noqa: F401 - matplotlib's figures

    pdf_fonts.install()
    pdf_text.install()


def note_pdf(
    entry: str,
    *,
    territoire: Territoire,
    date: dt.date | str | None = None,
    address_file: str | Path | None = None,
    lists=None,
    rules=None,
    settings: ort_settings.Settings | None = None,
) -> bytes:
    """The note of one parcel (id as typed, or an address) as the bytes of a PDF.

    Raises
    ------
    InputError
        When the entry gives no parcel (unusable id, absent parcel, ambiguous address).
    """
    from geo.errors import InputError

    with tempfile.TemporaryDirectory(prefix="ort-note-") as folder:
        path = Path(folder) / "note.pdf"
        done = write_notes(
            [entry], territoire=territoire, date=date, output=path, address_file=address_file,
            lists=lists, rules=rules, settings=settings,
        )  # fmt: skip
        if not done.notes:
            why = done.rejetes[0].erreur if done.rejetes else done.adresses[0].message
            raise InputError(f"pas de note pour {entry!r} : {why}", fix="vérifiez l'identifiant ou l'adresse")
        return path.read_bytes()


class _Job:
    """The entries of one call, resolved to parcels, and what every note shares."""

    def __init__(self, territoire: Territoire, day: dt.date, lists, rules, address_file, texts) -> None:
        from geo.errors import PerimeterError
        from geo.idu import parse_many

        self.territoire, self.day = territoire, day
        conv, parcels = territoire.convention, territoire.parcels
        self.warnings: list[str] = []
        try:  # kept by the territory: a server draws the next note of that date from memory
            self.perims = territoire._remember(("note", "perimetres", day), lambda: conv.perimeters(day))
        except PerimeterError as err:  # no version in force: the note says so, rules answer "non"
            self.perims = None
            self.warnings.append(str(err))
        self.lists, self.rules = _lists_and_rules(lists, rules)
        ids, addresses = split_addresses(texts)
        ok, self.rejected = parse_many(ids, code_insee=territoire.default_commune, communes=conv.communes)
        wanted = [(p.idu, None) for p in ok]
        self.index = None
        self.located = []
        from geo import embedded

        shipped = embedded.address_file(conv.communes)  # the demo's BAL: street names on the extract
        if address_file is None and (addresses or territoire.addresses is not None or shipped is not None):
            # the territory's, the shipped or the cached file: read once per territory
            self.index = territoire._remember(("note", "adresses"), lambda: address_index(territoire))
        elif address_file is not None:
            self.index = address_index(territoire, address_file)
        if addresses:
            self.located = locate_addresses(addresses, conv, parcels, index=self.index)
            wanted += [(a.idu, a) for a in self.located if a.idu]
        self.wanted: dict[str, object] = {}
        asked = parcels["idu"]
        known = set(asked[asked.isin([idu for idu, _ in wanted])])
        for idu, located in wanted:  # the same parcel asked twice: one note, with its address if any
            if idu not in known:
                mill = parcels.attrs.get("millesime", "inconnu")
                if idu not in self.wanted:
                    self.rejected.append((idu, f"parcelle absente du cadastre chargé (millésime {mill})"))
                continue
            self.wanted[idu] = self.wanted.get(idu) or located
        self.rejected = list(dict.fromkeys(self.rejected))
        if self.index is not None and address_file is None:
            self.points = territoire._remember(("note", "points"), lambda: _index_points(self.index))
        else:
            self.points = _index_points(self.index)

    def draw(self, idu: str, located):
        """The note of one parcel (matplotlib figures)."""
        import pandas as pd

        from geo.classify import classify_parcels
        from geo.eligibility.answers import eligibility_for_parcels
        from geo.note import note_pages

        t, perims = self.territoire, self.perims
        parcels = t.parcels
        row = parcels[parcels["idu"] == idu]
        near = parcels.iloc[parcels.sindex.query(row.geometry.iloc[0].buffer(250), predicate="intersects")]
        classification = classify_parcels(near, perims, with_distance=False) if perims is not None else None
        answers = eligibility_for_parcels(
            row, perims, self.day, lists=self.lists, rules=self.rules, convention=t.convention
        )
        pts, addr_sources = self.points, []
        if located is not None and located.geocoded.best is not None:
            best = located.geocoded.best
            found = pd.DataFrame([{"label": best.label, "lon": best.lon, "lat": best.lat}])
            pts = found if pts is None else pd.concat([pts, found], ignore_index=True)
            pts = pts.drop_duplicates(["lon", "lat"])  # the file's own point, once
            addr_sources = [f"Adresses : {located.geocoded.source}"]
        elif self.index is not None:
            vintage = f", mis à jour le {self.index.date}" if self.index.date else ""
            addr_sources = [f"Adresses : fichier {self.index.format} {Path(self.index.source).name}{vintage}"]
        with drawing_lock:
            return note_pages(
                idu,
                parcels=near,
                perimeters=perims,
                classification=classification,
                answers=answers,
                convention=t.convention,
                addresses=pts,
                query=located.query if located is not None else None,
                match_line=located.match_line() if located is not None else None,
                sources=[self.rules.label(), *addr_sources],  # lists: quoted by each answer
                when=self.day,
            )


def _lists_and_rules(lists, rules):
    if lists is None:
        from geo.sources.lists import load_lists

        lists = load_lists()
    if rules is None:
        from geo.eligibility.rules import load_rules

        rules = load_rules()
    return lists, rules


def _index_points(index):
    """The address points of an address file (label, lon, lat), drawn on the map extract."""
    if index is None:
        return None
    import pandas as pd

    recs = [
        {
            "label": f"{r['numero']}{r['suffixe'].lower()} {r['voie']}",
            "voie": r["voie"],
            "lon": r["lon"],
            "lat": r["lat"],
        }
        for r in index.addresses.values()
        if isinstance(r["lon"], float)
    ]
    return pd.DataFrame(recs, columns=["label", "voie", "lon", "lat"])


__all__ = ["load_drawing", "note_pdf", "write_notes"]
