"""The ``ort`` command end to end on the embedded demo: exit codes, messages, output files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner
from excel import read_excel_csv

from geo.cli import main
from geo.demo.commune import DEMO_INSEE, build_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return build_demo(data_dir=root / "data" / "demo", perimeters_dir=root / "perimeters" / "demo")


@pytest.fixture(scope="module")
def demo_result(demo):
    """Classification of every demo parcel on 2024-09-01, from the library."""
    from geo.classify import classify_parcels
    from geo.perimeters import read_convention
    from geo.sources.cadastre import read_parcels

    conv = read_convention(demo.perimeters_dir)
    parcels = read_parcels(demo.layers["parcelles"])
    return classify_parcels(parcels, conv.perimeters("2024-09-01", in_force_only=True))


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def _pick(result, status, perimeter="centre-ville"):
    rows = result[(result["perimeter_id"] == perimeter) & (result["status"] == status)]
    return rows.iloc[0]


def test_check_one_parcel(demo, demo_result):
    inside = _pick(demo_result, "inside")
    r = run(
        "check", inside.idu, "-p", demo.perimeters_dir, "--cadastre", demo.data_dir, "--date", "2024-09-01"
    )
    assert r.exit_code == 0, r.output
    assert inside.idu in r.output and "Centre-ville" in r.output and "inclus" in r.output
    assert "COMMUNE FICTIVE" in r.output


def test_check_json_and_short_form(demo, demo_result):
    strad = _pick(demo_result, "straddling")
    section, numero = strad.idu[8:10].lstrip("0"), int(strad.idu[10:])
    r = run(
        "check",
        f"{section} {numero}",
        "-p",
        demo.perimeters_dir,
        "--cadastre",
        demo.data_dir,
        "--date",
        "2024-09-01",
        "--json",
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["fictif"] is True and data["version"] == "avenant-1"
    (parcel,) = data["parcelles"]
    assert parcel["idu"] == strad.idu
    cv = next(p for p in parcel["perimetres"] if p["perimetre_id"] == "centre-ville")
    assert cv["statut"] == "à cheval" and cv["part"] == pytest.approx(strad.share, abs=1e-6)


def test_check_version_changes_with_date(demo, demo_result):
    """A parcel added to the gare sector by the avenant is outside it before 2024-07-01."""
    from geo.classify import classify_parcels
    from geo.perimeters import read_convention
    from geo.sources.cadastre import read_parcels

    conv = read_convention(demo.perimeters_dir)
    parcels = read_parcels(demo.layers["parcelles"])
    before = classify_parcels(parcels, conv.perimeters("2024-06-30", in_force_only=True))
    after = demo_result
    b = before[(before.perimeter_id == "gare") & (before.status == "inside")]
    a = after[(after.perimeter_id == "gare") & (after.status == "inside")]
    gained = sorted(set(a.idu) - set(b.idu))
    assert gained, "the avenant should add parcels to the gare sector"
    r = run(
        "check",
        gained[0],
        "-p",
        demo.perimeters_dir,
        "--cadastre",
        demo.data_dir,
        "--date",
        "2024-06-30",
        "--json",
    )
    gare = next(p for p in json.loads(r.stdout)["parcelles"][0]["perimetres"] if p["perimetre_id"] == "gare")
    assert gare["statut"] == "hors périmètre" and gare["distance_m"] >= 0


def test_check_bad_ids(demo):
    r = run(
        "check",
        "62999000ZZ0001",
        "629990OOAB0012",
        "12",
        "-p",
        demo.perimeters_dir,
        "--cadastre",
        demo.data_dir,
    )
    assert r.exit_code == 2
    assert "62999000ZZ0001" in r.output and "section" in r.output
    assert "lettre 'O'" in r.output


def test_check_file_batch(demo, tmp_path):
    out = tmp_path / "resultat.csv"
    r = run(
        "check",
        "--file",
        demo.sample_ids,
        "-p",
        demo.perimeters_dir,
        "--cadastre",
        demo.data_dir,
        "--date",
        "2024-09-01",
        "-o",
        out,
    )
    assert r.exit_code == 0, r.output
    table = read_excel_csv(out)
    assert set(table["statut"]) <= {"incluse", "à cheval", "hors périmètre"}
    assert table.groupby("idu")["perimetre_id"].count().nunique() == 1  # every parcel × every perimeter
    assert (table["code_insee"] == DEMO_INSEE).all()
    assert "non reconnu" in r.output  # the sample holds deliberately wrong ids, listed, not fatal
    # not overwritten without --force
    again = run(
        "check", "--file", demo.sample_ids, "-p", demo.perimeters_dir, "--cadastre", demo.data_dir, "-o", out
    )
    assert again.exit_code != 0 and "existe déjà" in again.output
    for suffix in (".gpkg", ".parquet", ".xlsx"):
        r = run(
            "check",
            "--file",
            demo.sample_ids,
            "-p",
            demo.perimeters_dir,
            "--cadastre",
            demo.data_dir,
            "-o",
            tmp_path / f"r{suffix}",
        )
        assert r.exit_code == 0, r.output
        assert (tmp_path / f"r{suffix}").stat().st_size > 0


def test_check_file_latin1_semicolon(demo, demo_result, tmp_path):
    ids = demo_result["idu"].unique()[:3]
    f = tmp_path / "ids.csv"
    f.write_bytes(("Parcelle;Commentaire\n" + "".join(f"{i};é à voir\n" for i in ids)).encode("latin-1"))
    out = tmp_path / "o.csv"
    r = run("check", "--file", f, "-p", demo.perimeters_dir, "--cadastre", demo.data_dir, "-o", out)
    assert r.exit_code == 0, r.output
    table = read_excel_csv(out)
    assert set(table["idu"]) == set(ids) and set(table["Commentaire"]) == {"é à voir"}
    bad = tmp_path / "nocol.csv"
    bad.write_text("foo,bar\n1,2\n")
    r = run("check", "--file", bad, "-p", demo.perimeters_dir, "--cadastre", demo.data_dir)
    assert r.exit_code == 1 and "pas de colonne d'identifiant de parcelle" in r.output


def test_parcels_of_a_sector(demo, demo_result, tmp_path):
    out = tmp_path / "cv.csv"
    r = run(
        "parcels",
        "-p",
        demo.perimeters_dir,
        "--sector",
        "Centre-ville",
        "--cadastre",
        demo.data_dir,
        "--date",
        "2024-09-01",
        "-o",
        out,
    )
    assert r.exit_code == 0, r.output
    table = read_excel_csv(out)
    expected = demo_result[(demo_result.perimeter_id == "centre-ville") & (demo_result.status != "outside")]
    assert sorted(table["idu"]) == sorted(expected["idu"])
    assert set(table["statut"]) == {"incluse", "à cheval"}
    r = run(
        "parcels",
        "-p",
        demo.perimeters_dir,
        "--sector",
        "Nulle part",
        "--cadastre",
        demo.data_dir,
        "-o",
        tmp_path / "x.csv",
    )
    assert r.exit_code == 1 and "secteur 'Nulle part' inconnu" in r.output and "centre-ville" in r.output
    assert not (tmp_path / "x.csv").exists()


def test_validate(demo, tmp_path):
    r = run("validate", demo.perimeters_dir, "--cadastre", demo.data_dir)
    assert r.exit_code == 0, r.output
    assert "0 erreur(s)" in r.output and "parcels-cut" in r.output
    broken = tmp_path / "broken"
    shutil.copytree(demo.perimeters_dir, broken)
    toml = (broken / "convention.toml").read_text().replace("2024-07-01", "2022-07-01")
    (broken / "convention.toml").write_text(toml)
    r = run("validate", broken)
    assert r.exit_code == 1 and "version-dates" in r.output


def test_bad_input_one_line(demo, tmp_path):
    r = run("check", "x", "-p", tmp_path / "missing")
    assert r.exit_code == 1 and r.output.startswith("Erreur :")
    assert "dossier de convention introuvable" in r.output
    r = run(
        "check",
        "62999000AB0001",
        "-p",
        demo.perimeters_dir,
        "--cadastre",
        demo.data_dir,
        "--date",
        "2024-13-01",
    )
    assert r.exit_code == 1 and "AAAA-MM-JJ" in r.output
    r = run(
        "check",
        "62999000AB0001",
        "-p",
        demo.perimeters_dir,
        "--cadastre",
        demo.data_dir,
        "--date",
        "2020-01-01",
    )
    assert r.exit_code == 1 and "aucune version des périmètres n'est en vigueur le 01/01/2020" in r.output
    gz = tmp_path / "cadastre-62999-parcelles.json.gz"
    gz.write_bytes(demo.layers["parcelles"].read_bytes()[:500])
    r = run("check", "62999000AB0001", "-p", demo.perimeters_dir, "--cadastre", gz)
    assert r.exit_code == 1 and str(gz.name) in r.output and len(r.output.strip().splitlines()) == 1


def test_perimeter_from_parcels_cli(demo, demo_result, tmp_path):
    ids = list(demo_result[demo_result.perimeter_id == "centre-ville"]["idu"].unique()[:3])
    out = tmp_path / "ilot.geojson"
    r = run(
        "perimeter-from-parcels",
        *ids,
        "--commune",
        DEMO_INSEE,
        "--id",
        "ilot",
        "--nom",
        "Îlot test",
        "--cadastre",
        demo.data_dir,
        "-o",
        out,
    )
    assert r.exit_code == 0, r.output
    feat = json.loads(out.read_text())["features"][0]
    assert feat["properties"] == {"id": "ilot", "type": "secteur", "nom": "Îlot test", "centre_ville": False}


def test_demo_command(demo, tmp_path, monkeypatch):
    import geo.demo.commune

    monkeypatch.setattr(geo.demo.commune, "build_demo", lambda force=False: demo)
    r = run("demo", "--output-dir", tmp_path)
    assert r.exit_code == 0, r.output
    assert "commune fictive" in r.output and "Centre-ville" in r.output
    table = read_excel_csv(tmp_path / "demo-parcelles.csv")
    assert table["idu"].nunique() > 2000
    again = run("demo", "--output-dir", tmp_path)
    assert again.exit_code == 0 and "Conservé" in again.output


# --- the light path: what a fresh `ort` process imports (issue 26) ----------------------------

#: Libraries a parcel check never needs: the web map (folium, branca, jinja2, requests), the
#: printed pages (matplotlib, fontTools), the compiled engine (numba), spreadsheets, fiona.
NOT_FOR_CHECK = (
    "matplotlib", "fontTools", "folium", "branca", "jinja2", "requests",
    "numba", "llvmlite", "openpyxl", "fiona", "duckdb", "dask",
)  # fmt: skip
#: ``ort --help`` (and ``import geo.cli``) needs none of the scientific stack either.
NOT_FOR_HELP = (*NOT_FOR_CHECK, "numpy", "pandas", "geopandas", "shapely", "pyproj", "pyarrow", "pydantic")


def _imported_by(args: list[str], tmp_path) -> set[str]:
    """Top-level packages held by a fresh interpreter after ``ort ARGS`` (run in-process there)."""
    code = (
        "import json, sys\n"
        "from geo.cli import main\n"
        f"main({args!r}, standalone_mode=False)\n"
        "print('\\nMODULES', json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    env = {**os.environ, "ORT_CACHE_DIR": str(tmp_path / "cache"), "ORT_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return set(json.loads(done.stdout.rsplit("MODULES ", 1)[1]))


def test_help_imports_no_heavy_library(tmp_path):
    """`ort --help` / `ort check --help` stay light: a command module imports what it needs
    when it runs (an eager `import geopandas` or `folium` at the top of a geo.cli module fails here)."""
    for args in (["--help"], ["check", "--help"], ["note", "--help"]):
        heavy = _imported_by(args, tmp_path) & set(NOT_FOR_HELP)
        assert not heavy, f"`ort {' '.join(args)}` imports {sorted(heavy)}"


def test_check_imports_no_map_print_or_compiled_engine(tmp_path):
    """One parcel's check (the cadastre read twice: parsed, then from the parsed cache) imports
    neither the map, nor the printed note, nor numba: they cost seconds at each `ort check`."""
    args = ["check", "62999000AB0012", "--perimeters", "demo", "--date", "2024-09-01"]
    for run in range(2):
        loaded = _imported_by(args, tmp_path)
        assert ("geopandas" in loaded) == (run == 0)  # the check did run; then from its digest
        heavy = loaded & set(NOT_FOR_CHECK)
        assert not heavy, f"`ort check` imports {sorted(heavy)}"


def test_every_command_turns_sigterm_into_an_interrupt():
    """SIGTERM is caught by :class:`geo.cli.options.Command` when a command runs (not at start,
    so that `--help` stays light): every command must be one."""
    from geo.cli.options import Command

    plain = [name for name, cmd in main.commands.items() if not isinstance(cmd, Command)]
    assert not plain, f"commandes sans cls=Command : {plain}"
