"""A corpus of bad inputs, generated in code, for the cadastre, perimeter and parcel-id readers.

Each case writes one broken file, runs the reader (or the CLI) and asserts the error class,
the message (what, where, fix) and that no output file was written.
"""

from __future__ import annotations

import gzip
import json
import math
import shutil
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from excel import read_excel_csv

from geo.cli import main
from geo.errors import CRSError, InputError, OrtWarning, ParcelIdError, ValidationFailed
from geo.idu import parse_idu
from geo.perimeters import read_convention
from geo.sources.cadastre import load_cadastre, read_parcels

SQUARE = [[2.30, 48.60], [2.301, 48.60], [2.301, 48.601], [2.30, 48.601], [2.30, 48.60]]


def _parcel(idu="91216000AB0001", ring=None, geom_type="Polygon", **extra):
    props = {"id": idu, "commune": idu[:5], "prefixe": "000", "section": idu[8:10], "numero": idu[10:]}
    props.update(extra)
    coords = [ring or SQUARE] if geom_type == "Polygon" else (ring or SQUARE)[0]
    return {"type": "Feature", "properties": props, "geometry": {"type": geom_type, "coordinates": coords}}


def _fc(*features) -> str:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}, allow_nan=True)


def _shift(ring, dx=0.0, dy=0.0):
    return [[x + dx, y + dy] for x, y in ring]


GOOD_TWO = _fc(_parcel(), _parcel("91216000AB0002", ring=_shift(SQUARE, 0.001)))

# name → (file name, content builder, exception, message pattern)
CADASTRE_CASES = {
    "truncated-gzip": (
        "cadastre-91216-parcelles.json.gz",
        lambda: gzip.compress(GOOD_TWO.encode())[:60],
        InputError,
        "fichier illisible",
    ),
    "not-gzip": (
        "cadastre-91216-parcelles.json.gz",
        lambda: b"<html>503</html>",
        InputError,
        "fichier illisible",
    ),
    "invalid-json": (
        "cadastre-91216-parcelles.json",
        lambda: b'{"type": "FeatureCollection", "feat',
        InputError,
        "fichier illisible",
    ),
    "empty-layer": (
        "cadastre-91216-parcelles.json",
        lambda: _fc().encode(),
        InputError,
        "ne contient aucun objet",
    ),
    "no-id-columns": (
        "p.geojson",
        lambda: _fc({"type": "Feature", "properties": {"x": 1}, "geometry": _parcel()["geometry"]}).encode(),
        InputError,
        "sans colonne d'identifiant",
    ),
    "bad-idu": (
        "p.geojson",
        lambda: _fc(
            {"type": "Feature", "properties": {"id": "91216AB1"}, "geometry": _parcel()["geometry"]}
        ).encode(),
        InputError,
        "n'est pas un IDU de 14 caractères",
    ),
    "invalid-ring": (
        "p.geojson",
        lambda: _fc(
            _parcel(ring=[[2.3, 48.6], [2.31, 48.61], [2.31, 48.6], [2.3, 48.61], [2.3, 48.6]])
        ).encode(),
        InputError,
        "géométrie\\(s\\) invalide.*--fix",
    ),
    "zero-area": (
        "p.geojson",
        lambda: _fc(_parcel(ring=[[2.3, 48.6], [2.31, 48.6], [2.32, 48.6], [2.3, 48.6]])).encode(),
        InputError,
        "surface nulle",
    ),
    "mixed-geometry-types": (
        "p.geojson",
        lambda: _fc(
            _parcel(),
            {
                "type": "Feature",
                "properties": _parcel("91216000AB0009")["properties"],
                "geometry": {"type": "Point", "coordinates": [2.3, 48.6]},
            },
        ).encode(),  # fmt: skip
        InputError,
        "type Point là où des polygones sont attendus",
    ),
    "lambert-in-geojson": (
        "p.geojson",
        lambda: _fc(_parcel(ring=[[650000 + 10 * x, 6840000 + 10 * y] for x, y in SQUARE])).encode(),
        CRSError,
        "mètres Lambert-93",
    ),
    "swapped-axes": (
        "p.geojson",
        lambda: _fc(_parcel(ring=[[y, x] for x, y in SQUARE])).encode(),
        CRSError,
        "inversées",
    ),
    "enormous-coordinates": (
        "p.geojson",
        lambda: _fc(_parcel(ring=[[x * 1e12, y * 1e12] for x, y in SQUARE])).encode(),
        CRSError,
        "degrés",
    ),
    "nan-coordinates": (
        "p.geojson",
        lambda: _fc(_parcel(ring=[[math.nan, 48.6], *SQUARE[1:4], [math.nan, 48.6]])).encode(),
        (CRSError, InputError),
        "NaN|fichier illisible|invalide",
    ),
    "zip-without-shapefile": ("p.zip", None, InputError, "aucun shapefile"),
}


@pytest.mark.parametrize("case", sorted(CADASTRE_CASES))
def test_cadastre_corpus(case, tmp_path):
    name, build, exc, pattern = CADASTRE_CASES[case]
    path = tmp_path / name
    if build is None:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("readme.txt", "no shapefile here")
    else:
        path.write_bytes(build())
    with pytest.raises(exc, match=pattern) as err:
        read_parcels(path)
    message = str(err.value)
    assert path.name in message and "\n" not in message


def test_cadastre_corpus_through_the_cli(tmp_path):
    """The same broken files, through `ort check`: one line, exit 1, no result file."""
    conv = _convention(tmp_path / "conv")
    for case in ("truncated-gzip", "invalid-ring", "lambert-in-geojson", "mixed-geometry-types"):
        name, build, _, pattern = CADASTRE_CASES[case]
        path = tmp_path / case / name
        path.parent.mkdir()
        path.write_bytes(build())
        out = tmp_path / f"{case}.csv"
        r = CliRunner().invoke(
            main, ["check", "91216000AB0001", "-p", str(conv), "--cadastre", str(path), "-o", str(out)]
        )
        assert r.exit_code == 1, (case, r.output)
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Erreur :") and "Traceback" not in r.output
        assert not out.exists() and not list(tmp_path.glob(f".{case}*"))


def test_insee_written_as_number():
    with pytest.raises(InputError, match="zéro initial.*'01004'"):
        load_cadastre([1004])


def test_duplicate_parcel_ids_are_reported(tmp_path):
    path = tmp_path / "p.geojson"
    path.write_text(_fc(_parcel(), _parcel(ring=_shift(SQUARE, 0.001))))
    with pytest.warns(OrtWarning, match="2 lignes partagent un IDU .*91216000AB0001"):
        parcels = read_parcels(path)
    assert len(parcels) == 2


def test_shapefile_without_prj(tmp_path):
    import geopandas as gpd
    from shapely.geometry import box

    gdf = gpd.GeoDataFrame(
        {"id": ["91216000AB0001"]}, geometry=[box(650000, 6840000, 650010, 6840010)], crs=2154
    )
    gdf.to_file(tmp_path / "p.shp")
    (tmp_path / "p.prj").unlink()
    with pytest.raises(CRSError, match="pas de système de coordonnées.*--crs EPSG:2154"):
        read_parcels(tmp_path / "p.shp")


# --- perimeters ---------------------------------------------------------------------------------

TOML = """nom = "Test"
programme = "PVD"
communes = ["91216"]
date_signature = 2023-01-18
duree_ans = 5
crs = "EPSG:4326"

[[versions]]
id = "initiale"
libelle = "Convention initiale"
date_effet = 2023-01-18
fichier = "perimetres.geojson"
"""

SECTOR = {
    "type": "Feature",
    "properties": {"id": "centre", "type": "secteur", "nom": "Centre", "centre_ville": True},
    "geometry": {"type": "Polygon", "coordinates": [SQUARE]},
}


def _convention(folder: Path, toml: str = TOML, features=(SECTOR,), geojson: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "convention.toml").write_text(toml)
    (folder / "perimetres.geojson").write_text(geojson if geojson is not None else _fc(*features))
    return folder


def _with(**props):
    return {**SECTOR, "properties": {**SECTOR["properties"], **props}}


PERIMETER_CASES = {
    "invalid-toml": (
        {"toml": TOML.replace('nom = "Test"', "nom = Test")},
        "TOML invalide.*ligne 1, colonne 7",
    ),
    "date-wrong-format": (
        {"toml": TOML.replace("date_signature = 2023-01-18", 'date_signature = "18/01/2023"')},
        "bad-date",
    ),
    "insee-as-number": ({"toml": TOML.replace('["91216"]', "[1004]")}, "insee-as-number|bad-insee"),
    "path-escape": ({"toml": TOML.replace('"perimetres.geojson"', '"../../etc/passwd"')}, "bad-path"),
    "missing-geometry-file": (
        {"toml": TOML.replace('"perimetres.geojson"', '"absent.geojson"')},
        "missing-file",
    ),
    "invalid-json": ({"geojson": '{"type": "FeatureCollection", "features": [{'}, "invalid-json"),
    "empty-layer": ({"features": ()}, "empty-layer"),
    "point-geometry": (
        {"features": ({**SECTOR, "geometry": {"type": "Point", "coordinates": [2.3, 48.6]}},)},
        "geometry-type",
    ),
    "duplicate-id": ({"features": (SECTOR, SECTOR)}, "duplicate-id"),
    "unknown-type": ({"features": (_with(type="zone"),)}, "bad-type"),
    "lambert-declared-wgs84": (
        {
            "features": (
                {
                    **SECTOR,
                    "geometry": {
                        "type": "Polygon",
                        "coordinates": [[[650000 + 100 * x, 6840000 + 100 * y] for x, y in SQUARE]],
                    },
                },
            )
        },
        "crs",
    ),  # fmt: skip
    "bowtie": (
        {
            "features": (
                {
                    **SECTOR,
                    "geometry": {
                        "type": "Polygon",
                        "coordinates": [
                            [[2.3, 48.6], [2.31, 48.61], [2.31, 48.6], [2.3, 48.61], [2.3, 48.6]]
                        ],
                    },
                },
            )
        },
        "invalid-geometry",
    ),  # fmt: skip
    "no-programme": ({"toml": TOML.replace('programme = "PVD"', 'programme = "XYZ"')}, "programme"),
}


@pytest.mark.parametrize("case", sorted(PERIMETER_CASES))
def test_perimeter_corpus(case, tmp_path):
    kwargs, pattern = PERIMETER_CASES[case]
    folder = _convention(tmp_path / "conv", **kwargs)

    def load():
        conv = read_convention(folder)
        return conv.perimeters("2024-01-01")

    with pytest.raises((ValidationFailed, InputError)) as err:
        load()
    text = str(err.value) + "".join(
        f" {p.code} {p}" for p in getattr(getattr(err.value, "report", None), "problems", [])
    )
    assert pytest.importorskip("re").search(pattern, text), text
    # Through the CLI: a clean message, exit code ≠ 0, no output written.
    out = tmp_path / "out.csv"
    r = CliRunner().invoke(main, ["parcels", "-p", str(folder), "--sector", "Centre", "-o", str(out)])
    assert r.exit_code != 0 and "Traceback" not in r.output and not out.exists()


def test_path_like_slug_refused(tmp_path):
    folder = _convention(tmp_path / "x" / "...")
    with pytest.raises(ValidationFailed) as err:
        read_convention(folder)
    assert "bad-slug" in err.value.report.codes()


def test_html_in_names_is_kept_as_text(tmp_path):
    """Script in a name is data, not code: read verbatim (maps escape it, see test_maps)."""
    hostile = "<img src=x onerror=alert(1)>"
    folder = _convention(tmp_path / "conv", features=(_with(nom=hostile),))
    perims = read_convention(folder).perimeters("2024-01-01")
    assert hostile in set(perims["nom"])


# --- parcel ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kwargs", "pattern"),
    [
        ("62907AB0685", {}, "11 caractères au lieu de 14"),
        ("629O7000AB0685", {}, "lettre 'O'"),
        ("62907000AB0685", {"communes": {"62908"}}, "62907"),
        ("AB 685", {}, "commune"),
        ("62907000ZZ0685", {"sections": {"AB", "AC"}}, "section"),
        ("", {}, "vide|identifiant"),
    ],
)
def test_parcel_id_corpus(text, kwargs, pattern):
    with pytest.raises(ParcelIdError, match=pattern):
        parse_idu(text, **kwargs)


# --- spreadsheets of ids ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from geo.demo.commune import build_demo

    root = tmp_path_factory.mktemp("demo")
    return build_demo(data_dir=root / "data", perimeters_dir=root / "perimeters" / "demo")


@pytest.mark.parametrize(
    ("encoding", "sep", "header"),
    [("utf-8-sig", ",", "idu"), ("latin-1", ";", "Parcelle"), ("utf-8", "\t", "IDU"), ("cp1252", ";", "id")],
)
def test_id_files_in_every_dialect(demo, tmp_path, encoding, sep, header):
    ids = ["62999000AB0001", "62999000AB0002"]
    f = tmp_path / "ids.csv"
    f.write_bytes(
        (f"{header}{sep}commentaire\n" + "".join(f"{i}{sep}à vérifier\n" for i in ids)).encode(encoding)
    )
    out = tmp_path / "o.csv"
    r = CliRunner().invoke(main, ["check", "--file", str(f), "-p", str(demo.perimeters_dir), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert set(read_excel_csv(out)["idu"]) == set(ids)


def test_existing_output_never_replaced(demo, tmp_path):
    out = tmp_path / "o.csv"
    out.write_text("précieux")
    r = CliRunner().invoke(main, ["check", "62999000AB0001", "-p", str(demo.perimeters_dir), "-o", str(out)])
    assert r.exit_code == 1 and "existe déjà" in r.output and "--force" in r.output
    assert out.read_text() == "précieux"


def test_copy_of_demo_with_html_sample(demo, tmp_path):
    """A spreadsheet cell holding HTML is just a bad id, reported as text."""
    folder = tmp_path / "demo"
    shutil.copytree(demo.perimeters_dir, folder)
    f = tmp_path / "ids.csv"
    f.write_text("idu\n<script>alert(1)</script>\n62999000AB0001\n")
    r = CliRunner().invoke(main, ["check", "--file", str(f), "-p", str(demo.perimeters_dir)])
    assert r.exit_code == 0 and "non reconnu" in r.output and "<script>alert(1)</script>" in r.output


# --- found by bench/fuzz.py -----------------------------------------------------------------------


def test_messages_stay_on_one_line():
    with pytest.raises(ParcelIdError) as err:
        parse_idu("a\nb")
    assert "\n" not in str(err.value) and "a\\nb" in str(err.value)


@pytest.mark.parametrize(
    ("toml_change", "pattern"),
    [
        (("duree_ans = 5", "duree_ans = inf"), "bad-duration"),
        (("duree_ans = 5", "duree_ans = nan"), "bad-duration"),
        (("duree_ans = 5", "duree_ans = 1e+300"), "bad-duration"),
        (
            ('fichier = "perimetres.geojson"', 'fichier = "perimetres.geojson"\nx = ' + "[" * 2000),
            "imbrication trop profonde",
        ),
    ],
)
def test_fuzzed_conventions(tmp_path, toml_change, pattern):
    folder = _convention(tmp_path / "conv", toml=TOML.replace(*toml_change))
    with pytest.raises((ValidationFailed, InputError)) as err:
        read_convention(folder).perimeters("2024-01-01")
    text = str(err.value) + " ".join(
        p.code for p in getattr(getattr(err.value, "report", None), "problems", [])
    )
    assert pattern in text


@pytest.mark.parametrize("features", [["inf", SECTOR], [[], SECTOR], [{**SECTOR, "properties": [[]]}]])
def test_features_that_are_not_objects(tmp_path, features):
    folder = _convention(tmp_path / "conv", features=features)
    with pytest.raises(ValidationFailed) as err:
        read_convention(folder).perimeters("2024-01-01")
    assert "invalid-json" in err.value.report.codes()


def test_spreadsheet_that_is_not_one(tmp_path):
    from geo.check import read_id_table

    f = tmp_path / "ids.xls"
    f.write_bytes(b"PK\x03\x04")
    with pytest.raises(InputError, match="classeur illisible"):
        read_id_table(f)
    g = tmp_path / "ids.csv"
    g.write_bytes(b'\xef\xbb\xbf"a\nb"\n""\n')
    with pytest.raises(InputError, match=r"pas de colonne d'identifiant de parcelle \(colonnes : a\\nb\)"):
        read_id_table(g)


def test_id_table_with_trailing_separators(tmp_path):
    """Spreadsheet exports end every line with ';': the columns must not shift."""
    from geo.check import read_id_table

    f = tmp_path / "ids.csv"
    f.write_text("idu;commune;\n62999000AB0001;62999;\nAB 2;62999;\n")
    assert read_id_table(f) == [("62999000AB0001", "62999"), ("AB 2", "62999")]


# --- perimeters far from the convention's communes (issue 23) ---------------------------------


def _moved(src: Path, dest: Path, communes: str, *, fictif: bool = False) -> Path:
    """A copy of a convention folder naming other communes (its perimeters stay where they are)."""
    import re

    shutil.copytree(src, dest)
    toml = dest / "convention.toml"
    text = re.sub(r"(?m)^communes = .*$", f"communes = {communes}", toml.read_text(encoding="utf-8"))
    text = re.sub(r"(?m)^fictif = .*$", f"fictif = {str(fictif).lower()}", text)
    text = re.sub(r"(?m)^cadastre_dir = .*$", "", text)
    toml.write_text(text, encoding="utf-8")
    return dest


@pytest.mark.parametrize(
    ("communes", "departement"),
    [('["97411"]', "974"), ('["01001"]', "01"), ('["2A004"]', "2A")],
)
def test_validate_refuses_perimeters_outside_the_communes_departement(tmp_path, communes, departement):
    """The demo's perimeters (off the Pas-de-Calais coast) under a La Réunion, Ain or Corse-du-Sud
    code: `ort validate` says where they are and which département they should be in (was: 0 error)."""
    from geo.validate import validate_convention

    folder = _moved(Path(__file__).resolve().parents[1] / "perimeters" / "demo", tmp_path / "x", communes)
    report = validate_convention(folder)
    # Overseas, the CRS check of every reader already refuses them (coordinates outside the
    # territory: code "crs"); in metropolitan France, the département check ("outside-territory").
    code, where = ("crs", "hors de La Réunion") if departement == "974" else (
        "outside-territory", f"hors du département {departement} "
    )
    far = [p for p in report.errors if p.code == code]
    assert far and len(far) == len(report.errors), str(report)
    assert where in far[0].message and "lat 50,8" in far[0].message
    res = CliRunner().invoke(main, ["validate", str(folder)])
    assert res.exit_code != 0 and code in res.output


def test_validate_accepts_real_perimeters_in_their_departement(epinay_ort, tmp_path):
    """Real perimeters drawn on Épinay-sur-Orge's cadastre (91): within their département; the
    same files under a Nord code are refused."""
    from geo.validate import validate_convention

    assert "outside-territory" not in validate_convention(epinay_ort["folder"]).codes()
    moved = _moved(epinay_ort["folder"], tmp_path / "nord", '["59350"]')
    assert "outside-territory" in validate_convention(moved).codes()
