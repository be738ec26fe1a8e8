"""The "note de renseignement ORT": the PDF's text holds the parcel, the sectors, the verdicts and
their references; ``--file`` gives one note per row; nothing is overwritten without ``--force``.

Real parcels of Épinay-sur-Orge (91216) with the test convention of ``conftest.epinay_ort``.
"""

from __future__ import annotations

import datetime as dt
import os
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
