"""Same inputs, same bytes: CSV, GeoJSON and GeoParquet written by the commands on the demo.

Every command runs twice on the fictional demo commune (:func:`geo.demo.commune.build_demo`): once in
this process (``CliRunner``) and once in a fresh Python process started with another
``PYTHONHASHSEED`` (set iteration order, hence any order that leaks from a set, changes between
processes). The two runs write into two different folders under the same file name (a GeoJSON
carries its file's stem as its ``name`` member), and the files must be byte-identical.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from click.testing import CliRunner
from excel import read_excel_csv

from geo import settings
from geo.cli import main
from geo.sources.cadastre import read_parcels

DATE = "2024-09-01"
FORMATS = ("csv", "geojson", "parquet")
# Run the given command lines in one fresh process; print the failures as the last line.
RUNNER = """
import json, sys
from geo.cli import main
failures = {}
for name, args in json.loads(sys.argv[1]).items():
    try:
        main(args, standalone_mode=True)
    except SystemExit as exit:
        if exit.code:
            failures[name] = f"exit {exit.code}"
print("FAILURES=" + json.dumps(failures))
"""


def _demo_inputs(root: Path):
    """The demo, its action register, and a friches and a housing file on its parcels."""
    from geo.demo.commune import build_demo

    demo = build_demo(data_dir=root / "data", perimeters_dir=root / "perimeters" / "demo")
    ids = list(pd.read_csv(demo.sample_ids, dtype=str)["idu"])
    parcels = read_parcels(demo.layers["parcelles"]).set_index("idu")
    points = gpd.GeoSeries(parcels.loc[ids[:6]].geometry.representative_point()).to_crs("EPSG:4326")
    lonlat = [(round(p.x, 6), round(p.y, 6)) for p in points]

    statuts = ["friche sans projet", "friche avec projet", "friche potentielle", "reconvertie"]
    friches = root / "friches.csv"
    friches.write_text(
        "site_id;site_nom;site_statut;comm_insee;unite_fonciere_refcad;unite_fonciere_surface;geompoint\n"
        + "".join(
            f"62999_{k};Site {k} (fictif);{statuts[k % 4]};62999;{ids[k]}|{ids[k + 1]};{1000 * (k + 1)};"
            f"POINT ({lon} {lat})\n"
            for k, (lon, lat) in enumerate(lonlat[:4])
        ),
        encoding="utf-8",
    )
    housing = root / "logements.csv"
    housing.write_text(
        "site_id;bailleur;programme;logements;lon;lat;parcelles;code_insee;annee\n"
        + "".join(
            f"H{k};{'Ormeval Habitat' if k % 2 else 'Littoral Logement'};Résidence {k};{12 + k};"
            f"{lon if k != 3 else ''};{lat if k != 3 else ''};{ids[k] if k >= 3 else ''};"
            f"62999;{1960 + 5 * k}\n"
            for k, (lon, lat) in enumerate(lonlat)
        ),
        encoding="utf-8",
    )
    (demo.perimeters_dir / "actions.toml").write_text(
        '[axes]\n1 = "Habitat"\n2 = "Commerce"\n'
        '[[actions]]\nid = "A1"\ntitre = "OPAH-RU du centre"\naxe = 1\nstatut = "en cours"\n'
        'budget = 120000\n[[actions.financements]]\nfinanceur = "Anah"\nmontant = 60000\n'
        f'[actions.localisation]\nsecteur = "centre-ville"\nparcelles = ["{ids[0]}", "{ids[1]}"]\n'
        '[[actions]]\nid = "A2"\ntitre = "Halle du marché"\naxe = 2\nstatut = "projetée"\n'
        f"[actions.localisation]\npoint = [{lonlat[2][0]}, {lonlat[2][1]}]\n"
        '[[actions]]\nid = "A3"\ntitre = "Étude commerce"\naxe = 2\nstatut = "en réflexion"\n',
        encoding="utf-8",
    )
    return demo, friches, housing


def _commands(demo, friches: Path, housing: Path, out: Path) -> dict[str, list[str]]:
    """Output file name → command line (global options first: offline, no progress bars)."""
    p = str(demo.perimeters_dir)
    cmds = {}
    for fmt in FORMATS:
        cmds[f"check.{fmt}"] = ["check", "--file", str(demo.sample_ids), "-p", p, "--date", DATE]
        cmds[f"parcels.{fmt}"] = ["parcels", "-p", p, "--date", DATE]
        cmds[f"friches.{fmt}"] = ["friches", "--file", str(friches), "-p", p, "--date", DATE]
        cmds[f"logements.{fmt}"] = ["logements", str(housing), "-p", p, "--date", DATE]
    cmds["actions.csv"] = ["actions", "-p", p, "--cadastre", str(demo.data_dir), "--date", DATE]
    return {name: ["--offline", "-q", *args, "-o", str(out / name)] for name, args in cmds.items()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Folders written in this process and by a fresh process, and the commands that failed."""
    root = tmp_path_factory.mktemp("determinism")
    failed: dict[str, str] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(settings, "cache_dir", root / "cache")
        mp.setattr(settings, "progress", False)
        demo, friches, housing = _demo_inputs(root)
        here, there = root / "in-process", root / "fresh-process"
        for name, args in _commands(demo, friches, housing, here).items():
            r = CliRunner().invoke(main, args)
            if r.exit_code != 0:
                failed[name] = f"in-process exit {r.exit_code}: {r.output.strip().splitlines()[-1]}"
        mp.setattr(settings, "offline", False)  # `--offline` set it in this process
    env = {**os.environ, "PYTHONHASHSEED": "4242", "ORT_CACHE_DIR": str(root / "cache")}
    commands = _commands(demo, friches, housing, there)
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps(commands)], capture_output=True, text=True, env=env
    )
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0 and last.startswith("FAILURES="), proc.stderr[-2000:]
    for name, why in json.loads(last.removeprefix("FAILURES=")).items():
        failed.setdefault(name, f"fresh process {why}")
    return here, there, failed


def _written(runs, name: str) -> tuple[Path, Path]:
    here, there, failed = runs
    assert name not in failed, f"{name}: {failed[name]}"
    return here / name, there / name


NAMES = sorted({*(f"{c}.{f}" for c in ("check", "parcels", "friches", "logements") for f in FORMATS)})


@pytest.mark.parametrize("name", [*NAMES, "actions.csv"])
def test_same_inputs_give_the_same_bytes(runs, name):
    a, b = (p.read_bytes() for p in _written(runs, name))
    assert a == b, f"{name}: {len(a)} vs {len(b)} bytes, first difference at {_first_diff(a, b)}"


@pytest.mark.parametrize("name", NAMES)
def test_outputs_hold_the_expected_rows(runs, name):
    """The compared files are real results, not two empty files."""
    path, _ = _written(runs, name)
    if path.suffix == ".csv":
        table = read_excel_csv(path)
    else:
        table = gpd.read_parquet(path) if path.suffix == ".parquet" else gpd.read_file(path)
        assert table.crs is not None and table.crs.to_epsg() == 2154
        assert table.geometry.notna().all() and not table.geometry.is_empty.any()
    key = {"check": "idu", "parcels": "idu", "friches": "site_id", "logements": "site_id"}[name.split(".")[0]]
    assert len(table) > 0 and table[key].notna().all()
    if name.startswith(("friches", "logements")):
        assert table[key].is_unique and len(table) in (4, 6)
    if name.startswith("check"):
        # the sample's short forms ("AB 157", "ab0430") come out as full IDUs
        assert table["idu"].str.fullmatch(r"62999000[0-9A-Z]{2}\d{4}").all()
        assert {"62999000AB0049", "62999000AB0157", "62999000AB0430"} <= set(table["idu"])
    assert table.columns.is_unique


def test_actions_table_lists_every_action(runs):
    path, _ = _written(runs, "actions.csv")
    table = read_excel_csv(path)
    assert list(table["id"]) == ["A1", "A2", "A3"]
    assert list(table["localisation"]) == ["parcelles", "point", "non localisé"]


def test_the_comparison_sees_a_change(runs, tmp_path):
    """Another date (before the avenant extending the gare sector) gives other bytes."""
    here, _ = _written(runs, "parcels.csv")
    perims = here.parent.parent / "perimeters" / "demo"
    out = tmp_path / "parcels.csv"
    r = CliRunner().invoke(main, ["-q", "parcels", "-p", str(perims), "--date", "2023-06-01", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_bytes() != here.read_bytes()


def _first_diff(a: bytes, b: bytes) -> str:
    i = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return f"byte {i}: {a[max(0, i - 40) : i + 40]!r} vs {b[max(0, i - 40) : i + 40]!r}"
