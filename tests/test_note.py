"""The "note de renseignement ORT": the PDF's text holds the parcel, the sectors, the verdicts and
their references; ``--file`` gives one note per row; nothing is overwritten without ``--force``.

Real parcels of Épinay-sur-Orge (91216) with the test convention of ``conftest.epinay_ort``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner
from conftest import pdf_text

from geo.classify import STATUS_LABELS
from geo.cli import main
from geo.errors import InputError
from geo.note import DISCLAIMER, note_pages


def _pdf_text(path) -> str:
    return " ".join(pdf_text(path).split())


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


@pytest.fixture(scope="module")
def note_pdf(epinay_ort, tmp_path_factory):
    out = tmp_path_factory.mktemp("notes")
    res = run(
        "note", "91216 AC 100", "--perimeters", epinay_ort["folder"], "--adresses", epinay_ort["addresses"],
        "--date", "2025-03-01", "--output-dir", out, "--png",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return out, res.output


def test_note_text_holds_the_parcel_sectors_verdicts_and_references(note_pdf):
    out, output = note_pdf
    pdf = out / "note-91216000AC0100.pdf"
    pages = int(re.search(r"\((\d+) pages?,", output).group(1))
    assert pdf.exists() and pages in (1, 2)
    pngs = ["note-91216000AC0100.png"] if pages == 1 else [f"note-91216000AC0100-{k}.png" for k in (1, 2)]
    assert all((out / name).exists() for name in pngs)
    text = _pdf_text(pdf)
    assert all(f"page {k}/{pages}" in text for k in range(1, pages + 1))
    for fragment in (
        "Note de renseignement ORT",
        "91216000AC0100",
        "Section : AC Numéro : 100",
        "Contenance cadastrale : 563",
        "Points d'adresse sur la parcelle : 12 Rue Jean Jaurès",
        f"Centre-ville — secteur d'intervention (centre-ville) : {STATUS_LABELS['inside']} — 100,0",
        f"OPAH-RU du centre — périmètre OPAH-RU : {STATUS_LABELS['straddling']} — 49,8",
        "Signée le 18/01/2023 pour 5 ans",
        "Version en vigueur : « Avenant n° 1 — gare et OPAH-RU », depuis le 01/07/2024",
        "Dispositifs au 01/03/2025",
        "PARTIELLEMENT (49,8",
        "CCH L303-1",
        "CGI art. 199 novovicies",
        "Code de commerce L752-1-1",
        "millésime données à jour au 15/12/2021",
        "Établie le",
        DISCLAIMER,
        "Fond de plan : DGFiP cadastre (Etalab)",
        "COMMUNE FICTIVE",
    ):
        assert fragment in text, fragment
    assert text.count("→ OUI") >= 2 and "→ NON" in text


def test_note_never_overwrites_and_file_gives_one_note_per_row(note_pdf, epinay_ort, tmp_path):
    out, _ = note_pdf
    before = (out / "note-91216000AC0100.pdf").read_bytes()
    res = run("note", "AC 100", "--perimeters", epinay_ort["folder"], "--output-dir", out)
    assert res.exit_code != 0 and "--force" in res.output
    assert (out / "note-91216000AC0100.pdf").read_bytes() == before
    rows = tmp_path / "demandes.csv"
    rows.write_text(
        "idu;adresse\n91216000AC0100;\n;13 rue Jean Jaurès\n;12 rue des Lilas\n", encoding="utf-8"
    )
    res = run(
        "note", "--file", rows, "--perimeters", epinay_ort["folder"], "--adresses", epinay_ort["addresses"],
        "--date", "2025-03-01", "--output-dir", tmp_path / "notes",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "notes").iterdir()) == [
        "note-91216000AC0011.pdf",
        "note-91216000AC0100.pdf",
    ]
    assert "introuvable : voie inconnue" in res.output  # the third row is answered, not an error
    text = _pdf_text(tmp_path / "notes" / "note-91216000AC0011.pdf")
    assert "Adresse demandée : 13 rue Jean Jaurès" in text and "score 1,00" in text


def test_note_library_refuses_an_unknown_parcel(epinay_ort):
    parcels = epinay_ort["parcels"]
    with pytest.raises(InputError, match="91216000ZZ9999 absente du cadastre"):
        note_pages(
            "91216000ZZ9999", parcels=parcels, perimeters=None, classification=None, answers=[],
            when=dt.date(2025, 3, 1),
        )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Names from data: bounded, and never reversing the note's text (issue 23). The embedded demo.


def test_clean_text_and_short_name():
    from geo.maps.text import NAME_MAX, clean_text, short_name

    assert clean_text("Centre \u202eelliv\u202c\u2066x\u2069\u200f\x07\n  gare") == "Centre ellivx gare"
    assert short_name("a" * 10_000) == "a" * (NAME_MAX - 1) + "…"
    assert short_name("Gare") == "Gare" and short_name(None) == ""


def _demo_note(folder, out):
    res = run("note", "62999000AB0049", "--perimeters", folder, "--date", "2024-09-01", "--output-dir", out)
    assert res.exit_code == 0, res.output
    return res.output, next(out.glob("*.pdf"))


def test_long_and_right_to_left_names_keep_the_note_short_and_in_order(demo_copy, tmp_path):
    import json

    _, clean_pdf = _demo_note(demo_copy, tmp_path / "propre")
    clean_pages = _pdf_text(clean_pdf).count("Note de renseignement ORT")
    long_name = ("Très long nom " * 800)[:10_000]
    for path in demo_copy.glob("perimetres-*.geojson"):
        data = json.loads(path.read_text(encoding="utf-8"))
        for k, f in enumerate(data["features"]):
            f["properties"]["nom"] = ("Secteur \u202egare " if k == 0 else "") + long_name
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    output, pdf = _demo_note(demo_copy, tmp_path / "hostile")
    text = _pdf_text(pdf)
    # Same number of pages as with short names (it ran to 10 pages), every name cut with "…".
    assert text.count("Note de renseignement ORT") == clean_pages <= 2
    assert long_name not in text and "Très long nom Très… —" in text.replace("\n", " ")
    # The override is gone: the name and the note's own words after it read left to right.
    assert "\u202e" not in text and "sèrT" not in text and "erag" not in text
    assert re.search(
        r"Secteur gare Très long nom .*?… — secteur d'intervention \(centre-ville\) : incluse", text
    )


# --------------------------------------------------------------------------------------------
# The note as a document to send (issue 25, item 5): the embedded demo, straddling and outside.


@pytest.fixture(scope="module")
def demo_notes(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo-notes")
    for entry in ("62999000AB0012", "629990000C0273", "78 Avenue de la Gare, 62999 Ormeval-sur-Mer"):
        sub = out / ("adresse" if " " in entry else entry)
        res = run("note", entry, "--perimeters", "demo", "--date", "2025-03-01", "--output-dir", sub)
        assert res.exit_code == 0, res.output
    return out


def test_demo_note_is_a_document_to_send(demo_notes):
    """Commune named, "page 1/2", human data names and French dates only, the Denormandie
    period once, reference, service, contact and a box to sign, street names on the extract."""
    raw = subprocess.run(
        ["pdftotext", "-layout", str(demo_notes / "62999000AB0012" / "note-62999000AB0012.pdf"), "-"],
        capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    pages = raw.split("\f")
    assert len([p for p in pages if p.strip()]) == 2
    assert "page 1/2" in pages[0] and "page 2/2" in pages[1]
    text = " ".join(raw.split())
    assert "Commune : Ormeval-sur-Mer (INSEE 62999)" in text
    assert "Parcelle AB 12 — Ormeval-sur-Mer (62999)" in text
    assert not re.search(r"\b\d{4}-\d{2}-\d{2}\b", text), re.findall(r"\b\d{4}-\d{2}-\d{2}\b", text)
    assert not re.search(r"\.(toml|yaml|csv|gz)\b", text), re.findall(r"\S+\.(?:toml|yaml|csv|gz)\b", text)
    assert "Règles d'éligibilité d'ort" in text and "Suivi national des ORT (DGALN/ANCT), dernière" in text
    assert "du 01/07/2024" in text  # the version date, French
    assert "période : du 01/01/2019 au 31/12/2027 ⚠" in text  # the law is in the reference, once
    for fragment in (
        "Réf. ORT-DEMO-2023-01/000AB0012",
        "Délivrance de la note",
        "Service : Service urbanisme — mairie d'Ormeval-sur-Mer (fictive)",
        "Contact : urbanisme@ormeval-sur-mer.example",
        "Pour le maire, l'adjoint délégué à l'urbanisme",
        "Signature et cachet",
        "Avenue de la Gare",  # a street name on the map extract
        "Points d'adresse sur la parcelle : 78 Avenue de la Gare",
        "Parcelle à cheval : partie dans l'ORT",
    ):
        assert fragment in text, fragment


def test_demo_note_outside_says_the_nearest_sector_and_address_titles(demo_notes):
    text = _pdf_text(demo_notes / "629990000C0273" / "note-629990000C0273.pdf")
    assert "le plus proche, « Faubourg », est à 61 m de la parcelle" in text
    assert "Distance au secteur le plus proche" in text and "61 m" in text
    text = _pdf_text(demo_notes / "adresse" / "note-62999000AB0012.pdf")
    assert "78 Avenue de la Gare, 62999 Ormeval-sur-Mer — parcelle AB 12, Ormeval-sur-Mer (62999)" in text


def test_demo_note_dispositifs_readable_and_map_texts_apart(demo_territory_note):
    """Dispositifs at 8 pt at least; the scale bar's labels, the inset and the legend apart."""
    note = demo_territory_note
    sizes = [
        t.get_fontsize()
        for fig in note.pages
        for t in fig.texts
        if t.get_text().lstrip().startswith(("→", "Référence :", "Réserves communes"))
    ]
    assert sizes and min(sizes) >= 8.0
    assert any(t.get_text() == "0" for t in note.pages[0].axes[0].texts)  # the scale bar is drawn


@pytest.mark.parametrize("frame_mm", [25, 40, 60, 86, 120, 277])
@pytest.mark.parametrize("width_m", [37, 80, 110, 260, 900, 4100])
def test_scale_bar_labels_never_touch(frame_mm, width_m):
    """At any frame width and extent, the scale bar's labels ("0", middle, end) keep at least
    1 mm apart on paper (the note's "1020 m")."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from geo.maps.drawing import draw_scale_bar

    fig = Figure(figsize=(frame_mm / 25.4, frame_mm / 25.4 * 0.8), dpi=200)
    ax = fig.add_axes((0, 0, 1, 1))
    extent = (0.0, 0.0, float(width_m), width_m * 0.8)
    ax.set_xlim(0, width_m)
    ax.set_ylim(0, width_m * 0.8)
    draw_scale_bar(ax, extent, frame_mm)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    boxes = sorted((t.get_window_extent(canvas.get_renderer()) for t in ax.texts), key=lambda b: b.x0)
    assert len(boxes) >= 2
    px_per_mm = 200 / 25.4
    for a, b in zip(boxes, boxes[1:], strict=False):
        assert b.x0 - a.x1 >= 1.0 * px_per_mm, [t.get_text() for t in ax.texts]


@pytest.fixture(scope="module")
def demo_territory_note():
    from geo.app import open_territory
    from geo.app.note import _Job

    t = open_territory("demo")
    job = _Job(t, dt.date(2025, 3, 1), None, None, None, ["62999000AB0012"])
    return job.draw("62999000AB0012", None)


def test_human_source_and_period():
    from geo.note import _period, human_source

    assert human_source("Adresses : fichier BAL adresses-62999.csv.gz, mis à jour le 2023-01-15") == (
        "Adresses : fichier BAL, mis à jour le 15/01/2023"
    )
    ref = "CGI art. 199 novovicies ; loi n° 2024-322, art. 42"
    assert _period("du 01/01/2019 au 31/12/2027 (loi n° 2024-322 du 9 avril 2024, art. 42)", ref) == (
        "du 01/01/2019 au 31/12/2027"
    )
    assert _period("depuis le 25/11/2018 (loi ELAN)", ref) == "depuis le 25/11/2018 (loi ELAN)"


# --------------------------------------------------------------------------------------------
# Fast from the shell and in a server (issue 26): no web map library, fonts subset once.


def test_cold_note_imports_no_web_map_library(tmp_path):
    """A fresh `ort note` draws its extract with matplotlib: folium, branca, jinja2 and requests
    (the web map's libraries, half a second of imports) stay out of the process, and so does
    pyplot (its style sheets); the next note, fonts kept, runs no font subsetting at all."""
    import json
    import sys

    def modules(parcel):
        code = (
            "import json, sys\n"
            "from geo.cli import main\n"
            f"main(['note', {parcel!r}, '--perimeters', 'demo', '--date', '2025-03-01',"
            " '-o', 'n.pdf', '--force'], standalone_mode=False)\n"
            "print('\\nMODULES', json.dumps(sorted(sys.modules)))\n"
        )
        env = {**os.environ, "ORT_CACHE_DIR": str(tmp_path / "cache"), "ORT_OFFLINE": "1"}
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert (tmp_path / "n.pdf").stat().st_size > 10_000  # the note was written
        return set(json.loads(done.stdout.rsplit("MODULES ", 1)[1]))

    loaded = modules("62999000AB0012")
    packages = {m.split(".")[0] for m in loaded}
    assert "matplotlib" in packages and "geopandas" in packages
    heavy = packages & {"folium", "branca", "jinja2", "requests", "numba", "openpyxl", "fiona"}
    assert not heavy, f"`ort note` imports {sorted(heavy)}"
    assert "matplotlib.pyplot" not in loaded
    again = modules("629990000C0273")  # another parcel: fonts read from the cache folder
    assert not [m for m in again if m.startswith("fontTools.subset.")], "the subsetter ran"


def _french_page(path, *, extra: str = "") -> str:
    """A PDF page of French text in regular and bold (ligatures "fi", "ff" included)."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    from geo.note import _RC

    fig = Figure(figsize=(8.27, 11.69))
    lines = [
        "Référence : CGI art. 199 novovicies — période : du 01/01/2019 au 31/12/2027 ⚠ réserve ;",
        "Contenance cadastrale : 5 635 m² — 15,0 % de la parcelle → OUI « Œuvre » … • efficacité",
        "Surface calculée : 1 020 m — Sœur, Ÿ, ç, ñ, ß, Ł, 2 € ‘a’ “b” ‰" + extra,
    ]
    for k, line in enumerate(lines):
        fig.text(0.05, 0.9 - 0.05 * k, line, fontsize=8, weight="bold" if k == 1 else "normal")
    with rc_context(_RC), PdfPages(path) as doc:
        doc.savefig(fig)
    return " ".join(lines)


def test_fonts_from_the_repertoire_give_the_same_text_embedded(tmp_path, monkeypatch):
    """The repertoire subset (made once, then read from the cache folder) gives the same text as
    matplotlib's own subsetting, every font embedded; a character outside the repertoire (Greek)
    falls back to matplotlib's subsetting, still right."""
    from matplotlib.backends import _backend_pdf_ps

    from geo import pdf_fonts, settings

    if not shutil.which("pdffonts"):
        pytest.skip("pdffonts (poppler-utils) is not installed")
    pdf_fonts.install()  # maybe done by an earlier test: start again from matplotlib's own
    monkeypatch.setattr(_backend_pdf_ps, "get_glyphs_subset", pdf_fonts._original)
    monkeypatch.setattr(pdf_fonts, "_installed", False)
    monkeypatch.setattr(pdf_fonts, "_repertoires", {})
    monkeypatch.setattr(settings, "cache_dir", tmp_path / "cache")
    # matplotlib's own subsetting, for reference
    reference_pdf = tmp_path / "reference.pdf"
    wanted = _french_page(reference_pdf)
    pdf_fonts.install()
    made = tmp_path / "made.pdf"
    _french_page(made)
    saved = sorted((tmp_path / "cache" / "polices").glob("*.ttf"))
    assert len(saved) >= 2  # regular and bold, kept for the next process
    monkeypatch.setattr(pdf_fonts, "_repertoires", {})
    monkeypatch.setattr(pdf_fonts, "_make_repertoire", lambda *a: pytest.fail("read from the cache"))
    again = tmp_path / "again.pdf"
    _french_page(again)
    greek = tmp_path / "greek.pdf"
    wanted_greek = _french_page(greek, extra=" Αθήνα")
    for pdf, text in ((reference_pdf, wanted), (made, wanted), (again, wanted), (greek, wanted_greek)):
        assert _pdf_text(pdf) == " ".join(text.split()), pdf.name
        fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
        rows = [r.split() for r in fonts.splitlines()[2:]]
        assert rows and all(r[-5:-3] == ["yes", "yes"] for r in rows), fonts  # embedded, subset
    assert made.stat().st_size < 150_000


def test_pdf_text_laid_out_without_outlines_is_the_same_file(tmp_path, monkeypatch):
    """The PDF writer's text laid out without glyph outlines and kept between files
    (geo.pdf_text) writes the same bytes as matplotlib's own, the first time and the next."""
    import matplotlib._text_helpers
    from matplotlib import rc_context
    from matplotlib.backends import backend_pdf
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    from geo import pdf_text, settings
    from geo.note import _RC

    pdf_text.install()
    assert isinstance(backend_pdf._text_helpers, pdf_text._PdfTextLayout)
    fig = Figure(figsize=(8.27, 11.69))
    fig.text(0.05, 0.9, "Référence : CGI art. 199 novovicies → OUI ⚠ 5 635 m² « efficacité »", fontsize=8)
    fig.text(0.05, 0.8, "Délivrance de la note", fontsize=9, weight="bold", rotation=12)

    def written(path):
        with rc_context(_RC), PdfPages(path, metadata={"CreationDate": None}) as doc:
            doc.savefig(fig)
        return path.read_bytes()

    light = written(tmp_path / "light.pdf")
    assert written(tmp_path / "again.pdf") == light  # from the layouts and measures kept
    assert pdf_text._layouts and pdf_text._measures
    # saved for the next process, read back there: the same bytes again
    monkeypatch.setattr(settings, "cache_dir", tmp_path / "cache")
    monkeypatch.setitem(pdf_text._state, "saved", False)
    monkeypatch.setitem(pdf_text._state, "dirty", True)
    pdf_text.save()
    assert pdf_text._cache_file().exists()
    monkeypatch.setattr(pdf_text, "_layouts", pdf_text.OrderedDict())
    monkeypatch.setattr(pdf_text, "_measures", pdf_text.OrderedDict())
    monkeypatch.setitem(pdf_text._state, "loaded", False)
    pdf_text._load()
    assert pdf_text._layouts and all(isinstance(v, list) for v in pdf_text._layouts.values())
    assert written(tmp_path / "next-process.pdf") == light
    assert any(v and isinstance(v[0], pdf_text._Item) for v in pdf_text._layouts.values())  # used
    monkeypatch.setattr(backend_pdf, "_text_helpers", matplotlib._text_helpers)  # matplotlib's own
    for name in ("draw_text", "get_text_width_height_descent"):
        monkeypatch.setattr(backend_pdf.RendererPdf, name, pdf_text.originals[name])
    assert written(tmp_path / "matplotlib.pdf") == light
