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
    for f in demo.perimeters_dir.iterdir():
        if f.name == "convention.toml":
            continue  # cadastre_dir is relative to where it was built
        fix = "run `python -m geo.demo data/demo perimeters/demo --force`"
        assert (shipped / f.name).read_bytes() == f.read_bytes(), f"{f.name} differs: {fix}"
    toml = (shipped / "convention.toml").read_text()
    assert 'cadastre_dir = "../../data/demo"' in toml and "fictif = true" in toml
