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

from geo.classify import STATUS_LABELS
from geo.cli import main
from geo.errors import InputError
from geo.note import DISCLAIMER, note_pages


def _pdf_text(path) -> str:
    if not shutil.which("pdftotext"):
        msg = "pdftotext (poppler-utils, .ci/install-browser) is not installed"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    out = subprocess.run(["pdftotext", "-raw", str(path), "-"], capture_output=True, check=True)
    return " ".join(out.stdout.decode().split())


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
    assert pdf.exists() and (out / "note-91216000AC0100.png").exists()  # one page: one PNG
    assert "Note écrite" in output and "1 page" in output
    text = _pdf_text(pdf)
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
