"""The embedded demo: deterministic, in the real Etalab format, and what the repository ships."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

from geo import embedded
from geo.demo.commune import DEMO_INSEE, build_demo
from geo.idu import parse_many
from geo.perimeters import read_convention
from geo.sources.cadastre import load_cadastre, read_parcels
from geo.validate import validate_convention


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return build_demo(data_dir=root / "data" / "demo", perimeters_dir=root / "perimeters" / "demo")


def test_two_builds_are_byte_identical(demo, tmp_path):
    again = build_demo(data_dir=tmp_path / "data" / "demo", perimeters_dir=tmp_path / "perimeters" / "demo")
    for name, path in demo.layers.items():
        assert path.read_bytes() == again.layers[name].read_bytes(), name
    for f in demo.perimeters_dir.iterdir():
        assert f.read_bytes() == (again.perimeters_dir / f.name).read_bytes(), f.name
    assert demo.addresses.read_bytes() == again.addresses.read_bytes()


def test_etalab_format(demo):
    raw = json.loads(gzip.decompress(demo.layers["parcelles"].read_bytes()))
    assert "crs" not in raw  # like the real files: WGS84 by RFC 7946
    props = raw["features"][0]["properties"]
    assert set(props) >= {"id", "commune", "prefixe", "section", "numero", "contenance"}
    assert not props["numero"].startswith("0") and props["commune"] == DEMO_INSEE
    lon, lat = raw["features"][0]["geometry"]["coordinates"][0][0]
    assert -2.0 < lon < 1.6 and 50.0 < lat < 51.5  # in the Channel, off the Côte d'Opale
    assert len(str(lon).split(".")[1]) <= 7
    parcels = read_parcels(demo.layers["parcelles"])
    assert 2500 <= len(parcels) <= 4000
    assert parcels["idu"].is_unique
    ratio = (parcels.area / parcels["contenance"] - 1).abs()
    assert ratio.median() < 0.01
    layers = load_cadastre([DEMO_INSEE], ("sections", "communes", "batiments"), source_dir=demo.data_dir)
    sections = layers["sections"]
    assert len(sections) >= 6 and "0A" in set(sections["section"])
    assert set(sections["section"]) == set(parcels["section"])
    assert len(layers["communes"]) == 1 and "fictive" in layers["communes"]["nom"].iloc[0]
    commune = layers["communes"].geometry.iloc[0]
    assert parcels.geometry.within(commune.buffer(0.01)).all()
    assert len(layers["batiments"]) > 1000


def test_convention_is_valid_and_fictional(demo):
    conv = read_convention(demo.perimeters_dir)
    assert (
        conv.fictif and tuple(conv.communes) == (DEMO_INSEE,) and conv.cadastre_dir == demo.data_dir.resolve()
    )
    parcels = read_parcels(demo.layers["parcelles"])
    report = validate_convention(demo.perimeters_dir, parcels=parcels)
    assert report.ok, str(report)
    assert "parcels-cut" in report.codes()  # sectors drawn freehand cut some parcels
    initial = conv.perimeters("2023-06-01")
    amended = conv.perimeters("2024-09-01")
    gare = (initial.set_index("perimeter_id").area["gare"], amended.set_index("perimeter_id").area["gare"])
    assert gare[1] > 1.5 * gare[0]
    faubourg = amended.set_index("perimeter_id").geometry["faubourg"]
    assert faubourg.geom_type == "MultiPolygon" and any(len(p.interiors) for p in faubourg.geoms)
    assert "opah-ru-centre" not in set(conv.perimeters("2023-06-01", in_force_only=True)["perimeter_id"])


def test_sample_ids_hold_deliberate_mistakes(demo):
    sample = pd.read_csv(demo.sample_ids, dtype=str)
    assert 25 <= len(sample) <= 40
    parcels = read_parcels(demo.layers["parcelles"])
    ok, bad = parse_many(sample["idu"], code_insee=DEMO_INSEE, sections=set(parcels["section"]))
    assert [t for t, _ in bad] == ["62999000ZZ0001", "629990OOAB0012"]
    assert {p.idu for p in ok} <= set(parcels["idu"])
    assert any(" " in t for t in sample["idu"]) and any(t.islower() for t in sample["idu"])


def test_repository_ships_the_generated_demo(demo):
    """The embedded demo (perimeters/demo and data/demo, reviewed in git) is what the generator writes."""
    shipped = embedded.convention_dir("demo")
    for name, path in demo.layers.items():
        assert (embedded.demo_dir() / path.name).read_bytes() == path.read_bytes(), name
    assert (embedded.demo_dir() / demo.addresses.name).read_bytes() == demo.addresses.read_bytes()
    for f in demo.perimeters_dir.iterdir():
        if f.name == "convention.toml":
            continue  # cadastre_dir is relative to where it was built
        fix = "run `python -m geo.demo data/demo perimeters/demo --force`"
        assert (shipped / f.name).read_bytes() == f.read_bytes(), f"{f.name} differs: {fix}"
    toml = (shipped / "convention.toml").read_text()
    assert 'cadastre_dir = "../../data/demo"' in toml and "fictif = true" in toml


def test_addresses_are_a_bal_linked_to_the_parcels(demo):
    """The demo's address file (issue 25, item 4): BAL 1.4 columns, every point on its parcel."""
    import geopandas as gpd

    from geo.demo.addresses import BAL_COLUMNS
    from geo.sources.addresses import read_addresses

    raw = pd.read_csv(demo.addresses, sep=";", dtype=str, keep_default_na=False)
    assert tuple(raw.columns) == BAL_COLUMNS
    assert raw["cle_interop"].is_unique and raw["cle_interop"].str.fullmatch(r"62999_\d{4}_\d{5}").all()
    assert (raw["commune_insee"] == DEMO_INSEE).all() and (raw["position"] == "entrée").all()
    parcels = read_parcels(demo.layers["parcelles"]).set_index("idu")
    assert set(raw["cad_parcelles"]) == set(parcels.index)  # one address per parcel
    # odd numbers on one side of a street, even on the other, each once
    assert not raw.duplicated(["voie_nom", "numero"]).any()
    points = gpd.GeoSeries.from_xy(raw["x"].astype(float), raw["y"].astype(float), crs=2154)
    holders = parcels.geometry.loc[raw["cad_parcelles"]].to_crs(2154)
    assert points.within(holders.reset_index(drop=True)).all()
    wgs = gpd.GeoSeries.from_xy(raw["long"].astype(float), raw["lat"].astype(float), crs=4326).to_crs(2154)
    assert (wgs.distance(points) < 0.5).all()  # the two coordinate pairs agree
    table = read_addresses(demo.addresses)
    assert table.attrs["format"] == "BAL" and table.attrs["date"] == "2024-01-15" and len(table) == len(raw)


def test_address_search_works_offline_for_the_demo(monkeypatch, tmp_path):
    """``ort check "64 rue Jean Jaurès, 62999 Ormeval-sur-Mer" --perimeters demo``: the shipped BAL."""
    from click.testing import CliRunner

    from geo import settings
    from geo.cli import main

    monkeypatch.setattr(settings, "offline", True)
    monkeypatch.setattr(settings, "cache_dir", tmp_path / "cache")  # nothing cached: the file is shipped
    result = CliRunner().invoke(
        main,
        [
            "-q",
            "check",
            "64 rue Jean Jaurès, 62999 Ormeval-sur-Mer",
            "--perimeters",
            "demo",
            "--date",
            "2024-09-01",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        "« 64 Rue Jean Jaurès Ormeval-sur-Mer » (score 1,00 ; fichier BAL adresses-62999.csv.gz"
        in result.output
    )
    assert "62999000AC0013" in result.output
    centre = next(line for line in result.output.splitlines() if line.strip().startswith("Centre-ville"))
    assert "incluse" in centre


def test_bal_columns_are_those_of_a_real_bal(shared_data):
    from geo.demo.addresses import BAL_COLUMNS

    sample = shared_data / "ban-bal-sample" / "bal-meylan-38229-extrait.csv"
    if not sample.is_file():
        pytest.skip(f"{sample} absent")
    assert tuple(pd.read_csv(sample, sep=";", nrows=0).columns) == BAL_COLUMNS


def test_demo_files_copied_out_run_the_readme_paths(tmp_path, monkeypatch):
    """``ort demo --fichiers DIR``: perimeters/demo and data/demo, usable as the README writes them."""
    from click.testing import CliRunner

    from geo.cli import main

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    done = runner.invoke(main, ["demo", "--fichiers", "."])
    assert done.exit_code == 0, done.output
    shipped = embedded.convention_dir("demo")
    for name in ("convention.toml", "parcelles-exemple.csv", "perimetres-avenant-1.geojson"):
        assert (tmp_path / "perimeters" / "demo" / name).read_bytes() == (shipped / name).read_bytes()
    assert (tmp_path / "data" / "demo" / "adresses-62999.csv.gz").is_file()
    conv = read_convention(tmp_path / "perimeters" / "demo")
    assert conv.cadastre_dir == (tmp_path / "data" / "demo").resolve()  # the copy reads its own data
    check = runner.invoke(
        main,
        [
            "-q",
            "check",
            "--file",
            "perimeters/demo/parcelles-exemple.csv",
            "-p",
            "perimeters/demo",
            "--date",
            "2024-09-01",
        ],
    )
    assert check.exit_code == 0, check.output
    # a second copy refuses to replace; --force replaces what the first copy wrote, nothing else
    again = runner.invoke(main, ["demo", "--fichiers", "."])
    assert again.exit_code == 1 and "existe déjà" in again.output
    assert runner.invoke(main, ["demo", "--fichiers", ".", "--force"]).exit_code == 0
    assert not (tmp_path / "data" / "demo" / "_manifest.json").exists()  # ort classify data/demo reads it all
    (tmp_path / "_manifest.json").unlink()
    mine = runner.invoke(main, ["demo", "--fichiers", ".", "--force"])
    assert mine.exit_code == 1 and "ort ne l'a pas écrit" in mine.output


def test_notebooks_copied_with_the_data_they_read(tmp_path):
    from click.testing import CliRunner

    from geo.cli import main

    done = CliRunner().invoke(main, ["carnets", "--copier", str(tmp_path / "c")])
    assert done.exit_code == 0, done.output
    names = sorted(p.name for p in (tmp_path / "c" / "carnets").glob("*.ipynb"))
    assert names[0] == "01_verifier_une_parcelle.ipynb" and len(names) >= 3
    for relative in (
        "perimeters/demo/convention.toml",
        "data/demo/logements-sociaux-62999.csv",
        "perimeters/libercourt/actions.toml",
    ):
        assert (tmp_path / "c" / relative).is_file(), relative
