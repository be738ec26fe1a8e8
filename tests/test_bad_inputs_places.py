"""A corpus of bad inputs, generated in code, for the friches, social-housing, action-register
and national-list readers.

Each case writes one broken file and checks, on the reader, the error class (or the problem
code when the reader reports instead of raising) and the message (file, feature, fix); then,
through the command (``ort friches``, ``ort logements``, ``ort actions``, ``ort communes``
with ``-o``): a non-zero exit, a clean ``Erreur :`` line without traceback nor "Erreur
interne", and no output file (nor temporary file) afterwards.

Readers that crash with a non-project exception are bugs: their cases are marked
``xfail(strict=True, raises=...)`` with the reason, so they turn red once fixed (remove the mark).
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from excel import read_excel_csv

from geo.cli import main
from geo.errors import CRSError, InputError, ValidationFailed, ValidationReport
from geo.places.actions import actions_table, read_register
from geo.places.friches import read_friches
from geo.places.housing import locate_sites, read_housing
from geo.sources.lists import read_acv, read_ort, read_pvd, read_qpv

LIBERCOURT = [3.0121, 50.4808]  # lon, lat of Libercourt (62907), WGS84
AMBERIEU = [5.3599, 45.9581]  # Ambérieu-en-Bugey (01004), WGS84
HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
PATH_LIKE = "../../etc/passwd"


@dataclass(frozen=True)
class Case:
    """One broken file: name, content, and what the reader must do with it.

    ``raises`` is the expected project error; ``pattern`` must appear in its message;
    ``codes`` are the problem codes expected in its report (``ValidationFailed``), ``feature``
    the feature named, ``errors`` how many errors; ``bug`` / ``crash`` describe a known defect
    (the exception raised today instead, e.g. a non-project ``KeyError``).
    """

    file: str
    content: Callable[[], bytes]
    raises: type[Exception] | None = None
    pattern: str = ""
    codes: frozenset[str] = field(default_factory=frozenset)
    bug: str = ""
    crash: type[BaseException] | None = None
    feature: str = ""
    errors: int = 0


def _params(cases: dict[str, Case], *, through_cli: bool = False):
    """pytest params, the known crashes marked xfail(strict) on the exception they raise today."""
    out = []
    for name, case in sorted(cases.items()):
        marks = ()
        if case.bug:
            raises = AssertionError if through_cli else case.crash
            marks = pytest.mark.xfail(strict=True, raises=raises, reason=f"bug: {case.bug}")
        out.append(pytest.param(name, marks=marks, id=name))
    return out


def _write(tmp_path: Path, case: Case) -> Path:
    path = tmp_path / case.file
    path.write_bytes(case.content())
    return path


def _check_error(err: BaseException, case: Case, path: Path) -> None:
    """The message names the file, the feature when there is one, and says how to fix it."""
    message = str(err)
    assert re.search(case.pattern, message), message
    assert "\n" not in message and "Traceback" not in message
    if isinstance(err, ValidationFailed):
        assert case.codes <= err.report.codes(), err.report
        for problem in err.report.errors:
            assert problem.source == str(path), problem
        if case.feature:
            assert any(p.feature == case.feature for p in err.report.errors), err.report
        if case.errors:
            assert len(err.report.errors) == case.errors, err.report
            assert f"(+{case.errors - 1} autres)" in message, message
    else:
        assert path.name in message, message
        assert isinstance(err, InputError) and err.fix, f"no fix in {message!r}"
        if case.feature:
            assert err.feature == case.feature, err.feature


def _assert_clean_failure(result, out: Path, *, exit_code: int | None = None, one_line: bool = True) -> str:
    """Non-zero exit, a last line 'Erreur : …', no traceback, no output nor temporary file."""
    text = result.output
    assert "Traceback" not in text and "Erreur interne" not in text, text
    assert result.exit_code not in (0, 3), (result.exit_code, text)  # 3: internal error
    if exit_code is not None:
        assert result.exit_code == exit_code, (result.exit_code, text)
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("Erreur :"), text
    if one_line:
        assert len(lines) == 1, text
    assert not out.exists(), f"{out} was written"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")], "temporary file left"
    return lines[-1]


def _fc(*features, **members) -> bytes:
    return json.dumps({"type": "FeatureCollection", **members, "features": list(features)}).encode()


# === friches ====================================================================================


def _site(coords=None, **props) -> dict:
    """A Cartofriches feature at Libercourt (WGS84 point) with the required properties."""
    base = {
        "site_id": "62907_24789",
        "site_nom": "Friche Loyez",
        "site_statut": "friche sans projet",
        "comm_insee": "62907",
        "l_idpar": "{62907000AN0213,62907000AN0212}",
        "site_surface": 12500.0,
    }
    base.update(props)
    geom = {"type": "Point", "coordinates": coords or LIBERCOURT}
    return {"type": "Feature", "properties": base, "geometry": geom}


CNIG_HEADER = "site_id;site_nom;site_statut;comm_insee;unite_fonciere_refcad;unite_fonciere_surface;geompoint"


def _cnig(*rows: str, sep: str = ";", header: str = CNIG_HEADER, encoding: str = "utf-8") -> bytes:
    text = "\n".join([header, *rows]) + "\n"
    return text.replace(";", sep).encode(encoding)


CNIG_ROW = (
    "62907_1;Sucrerie de Béthune;friche avec projet;62907;62907000AB0006|62907000AB0009;3400;"
    "POINT (3.0121 50.4808)"
)

FRICHES_FAIL = {
    "fr-invalid-json": Case(
        "f.geojson", lambda: _fc(_site())[:45], InputError, r"GeoJSON illisible.*réexportez"
    ),
    "fr-empty-file": Case("f.geojson", lambda: b"", InputError, "GeoJSON illisible"),
    "fr-not-a-collection": Case(
        "f.geojson", lambda: json.dumps(_site()).encode(), InputError, "pas une FeatureCollection GeoJSON"
    ),
    "fr-renamed-columns": Case(
        "f.geojson",
        lambda: _fc({**_site(), "properties": {"id": "62907_1", "statut": "friche", "insee": "62907"}}),
        InputError,
        "colonnes manquantes : site_id, site_statut, comm_insee",
    ),
    "fr-unsupported-suffix": Case("f.xlsx", lambda: b"PK\x03\x04", InputError, "non pris en charge"),
    "fr-lambert-in-wgs84": Case(
        "f.geojson", lambda: _fc(_site([700_800.0, 7_042_650.0])), CRSError, "mètres Lambert-93.*EPSG:4326"
    ),
    "fr-swapped-axes": Case("f.geojson", lambda: _fc(_site(LIBERCOURT[::-1])), CRSError, "inversées"),
    "fr-nan-coordinates": Case(
        "f.geojson",
        lambda: json.dumps({"type": "FeatureCollection", "features": [_site([math.nan, 50.48])]}).encode(),
        CRSError,
        "NaN ou infinies",
        feature="site_id=62907_24789",  # the site named, not its position
    ),
    "fr-infinite-coordinates": Case(
        "f.geojson",
        lambda: json.dumps({"type": "FeatureCollection", "features": [_site([math.inf, 50.48])]}).encode(),
        CRSError,
        "NaN ou infinies",
    ),
    "fr-enormous-coordinates": Case(
        "f.geojson", lambda: _fc(_site([1e300, -1e300])), CRSError, "mètres projetés"
    ),
    "fr-csv-empty": Case("f.csv", lambda: b"", InputError, r"CSV illisible.*ligne d'en-tête"),
    "fr-csv-renamed-columns": Case(
        "f.csv",
        lambda: _cnig(CNIG_ROW, header=CNIG_HEADER.replace("site_id", "identifiant")),
        InputError,
        "colonnes manquantes : site_id",
    ),
    "fr-csv-unbalanced-quote": Case("f.csv", lambda: _cnig('"' + CNIG_ROW), InputError, "CSV illisible"),
    "fr-csv-wkt-in-lambert": Case(
        "f.csv",
        lambda: _cnig(CNIG_ROW.replace("POINT (3.0121 50.4808)", "POINT (700800 7042650)")),
        CRSError,
        "mètres Lambert-93",
    ),
    "fr-csv-nan-wkt": Case(
        "f.csv", lambda: _cnig(CNIG_ROW.replace("3.0121 50.4808", "nan nan")), CRSError, "NaN ou infinies"
    ),
    "fr-csv-extra-field": Case(
        "f.csv",
        lambda: _cnig(CNIG_ROW, CNIG_ROW + ";en trop"),
        InputError,
        "CSV illisible",
    ),
    # --- formerly crashing (non-project exceptions), kept as regressions -------------------------
    "fr-gz-truncated": Case(
        "f.geojson.gz",
        lambda: gzip.compress(_fc(_site()))[:40],
        InputError,
        "GeoJSON illisible",
    ),
    "fr-csv-gz-not-gzip": Case(
        "f.csv.gz",
        lambda: b"<html>503 Service Unavailable</html>",
        InputError,
        "gzip|CSV",
    ),
    "fr-csv-gz-truncated": Case(
        "f.csv.gz",
        lambda: gzip.compress(_cnig(CNIG_ROW))[:30],
        InputError,
        "gzip|CSV",
    ),
    "fr-feature-not-an-object": Case(
        "f.geojson",
        lambda: _fc(_site(), "not a feature"),
        InputError,
        "feature",
    ),
    "fr-properties-not-an-object": Case(
        "f.geojson",
        lambda: _fc({"type": "Feature", "properties": [1, 2], "geometry": None}),
        InputError,
        "properties",
    ),
    "fr-crs-member-malformed": Case(
        "f.geojson",
        lambda: _fc(_site(), crs={"type": "name", "properties": "EPSG:2154"}),
        InputError,
        "crs",
    ),
    "fr-deeply-nested-json": Case(
        "f.geojson",
        lambda: b"[" * 100_000 + b"]" * 100_000,
        InputError,
        "GeoJSON",
    ),
}


@pytest.mark.parametrize("name", _params(FRICHES_FAIL))
def test_friches_reader_refuses(name, tmp_path):
    case = FRICHES_FAIL[name]
    path = _write(tmp_path, case)
    with pytest.raises(case.raises) as err:
        read_friches(path)
    _check_error(err.value, case, path)


@pytest.mark.parametrize("name", _params(FRICHES_FAIL, through_cli=True))
def test_friches_command_refuses(name, tmp_path):
    case = FRICHES_FAIL[name]
    path = _write(tmp_path, case)
    out = tmp_path / "friches.csv"
    r = CliRunner().invoke(main, ["friches", "--file", str(path), "-o", str(out)])
    line = _assert_clean_failure(r, out, exit_code=1)
    assert re.search(case.pattern, line), line


def test_friches_duplicate_ids_are_reported(tmp_path):
    path = tmp_path / "f.geojson"
    path.write_bytes(_fc(_site(), _site(site_nom="Autre site")))
    layer = read_friches(path)
    report = layer.attrs["report"]
    dup = [p for p in report.errors if p.code == "duplicate-id"]
    assert len(dup) == 1 and dup[0].feature == "62907_24789" and dup[0].source == str(path)
    assert len(layer) == 2  # nothing dropped silently


def test_friches_duplicate_ids_stop_the_command(tmp_path):
    path = tmp_path / "f.geojson"
    path.write_bytes(_fc(_site(), _site(site_nom="Autre site")))
    out = tmp_path / "friches.csv"
    r = CliRunner().invoke(main, ["friches", "--file", str(path), "-o", str(out)])
    _assert_clean_failure(r, out, one_line=False)


def test_friches_latin1_bom_and_separators_read_alike(tmp_path):
    """Latin-1 with ';', UTF-8 BOM with ',', plain UTF-8: the same sites, the encoding reported."""
    rows = [CNIG_ROW, CNIG_ROW.replace("62907_1", "62907_2").replace("friche avec", "friche sans")]
    files = {
        "latin1.csv": _cnig(*rows, encoding="latin-1"),
        "bom.csv": _cnig(*rows, sep=",", encoding="utf-8-sig"),
        "utf8.csv": _cnig(*rows),
    }
    tables = {}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        tables[name] = read_friches(tmp_path / name)
    assert "encoding" in tables["latin1.csv"].attrs["report"].codes()
    assert "encoding" not in tables["bom.csv"].attrs["report"].codes()
    for t in tables.values():
        assert list(t["site_id"]) == ["62907_1", "62907_2"]
        assert list(t["site_nom"]) == ["Sucrerie de Béthune"] * 2
        assert list(t["parcelles"]) == ["62907000AB0006|62907000AB0009"] * 2
        assert list(t["site_statut"]) == ["friche avec projet", "friche sans projet"]


def test_friches_insee_written_as_number(tmp_path):
    """1004 (a spreadsheet's number) is INSEE 01004, kept as a 5-character string to the output."""
    path = tmp_path / "f.geojson"
    path.write_bytes(_fc(_site(AMBERIEU, site_id="1004_7", comm_insee=1004, l_idpar="{01004000AB0001}")))
    layer = read_friches(path)
    assert list(layer["code_insee"]) == ["01004"] and list(layer["parcelles"]) == ["01004000AB0001"]
    out = tmp_path / "friches.csv"
    r = CliRunner().invoke(main, ["friches", "--file", str(path), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert list(read_excel_csv(out)["code_insee"]) == ["01004"]


@pytest.mark.parametrize(
    ("props", "codes"),
    [
        ({"site_statut": "en friche depuis 2012"}, {"unknown-status"}),
        ({"l_idpar": "{1004AB12,62907000AN0213}"}, {"bad-parcel-id"}),
        ({"site_surface": -12.0}, {"bad-surface"}),
        ({"site_surface": "douze mille"}, {"bad-surface"}),
        ({"comm_insee": "Libercourt", "site_id": "x"}, {"bad-insee"}),
    ],
    ids=["unknown-status", "bad-parcel-id", "negative-surface", "surface-text", "insee-text"],
)
def test_friches_bad_values_are_reported_per_site(tmp_path, props, codes):
    path = tmp_path / "f.geojson"
    path.write_bytes(_fc(_site(**props)))
    layer = read_friches(path)
    report = layer.attrs["report"]
    assert codes <= report.codes(), report
    site = layer["site_id"].iloc[0]
    assert all(p.feature == site and p.source == str(path) for p in report.problems if p.code in codes)
    assert len(layer) == 1


def test_friches_bad_wkt_is_reported_and_the_site_kept(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(_cnig(CNIG_ROW.replace("POINT (3.0121 50.4808)", "POINT (3.0121")))
    layer = read_friches(path)
    assert {"bad-geometry", "no-geometry"} <= layer.attrs["report"].codes()
    assert len(layer) == 1 and layer.geometry.iloc[0] is None


def test_friches_html_and_path_like_values_are_kept_as_text(tmp_path):
    """Script and path-like values are data: read verbatim, written verbatim, nothing else touched."""
    path = tmp_path / "f.geojson"
    path.write_bytes(_fc(_site(site_nom=HOSTILE, site_id=PATH_LIKE)))
    layer = read_friches(path)
    assert layer["site_nom"].iloc[0] == HOSTILE and layer["site_id"].iloc[0] == PATH_LIKE
    out = tmp_path / "out" / "friches.csv"
    r = CliRunner().invoke(main, ["friches", "--file", str(path), "-o", str(out)])
    assert r.exit_code == 0, r.output
    table = read_excel_csv(out)
    assert table["site_nom"].iloc[0] == HOSTILE and table["site_id"].iloc[0] == PATH_LIKE
    assert sorted(p.name for p in out.parent.iterdir()) == ["friches.csv"]


# === social housing =============================================================================

HS_HEADER = "site_id;bailleur;programme;logements;lon;lat;code_insee;annee"
HS_ROW = "PDCH-1;Pas-de-Calais Habitat;Résidence des Tilleuls;24;3.0121;50.4808;62907;1998"


def _hs(*rows: str, header: str = HS_HEADER, sep: str = ";", encoding: str = "utf-8") -> bytes:
    return ("\n".join([header, *rows]) + "\n").replace(";", sep).encode(encoding)


HOUSING_FAIL = {
    "hs-empty-file": Case("h.csv", lambda: b"", InputError, r"CSV illisible.*en-tête"),
    "hs-no-landlord-column": Case(
        "h.csv",
        lambda: _hs(HS_ROW, header=HS_HEADER.replace("bailleur", "gestionnaire")),
        InputError,
        r"colonne\(s\) manquante\(s\) : bailleur",
    ),
    "hs-no-locator": Case(
        "h.csv",
        lambda: _hs("PDCH-1;PDCH;R;24;62907", header="site_id;bailleur;programme;logements;code_insee"),
        InputError,
        "une localisation",
    ),
    "hs-unnamed-column": Case(
        "h.csv", lambda: _hs(HS_ROW + ";x", header=HS_HEADER + ";"), InputError, "colonne.* sans nom"
    ),
    "hs-xlsx-not-a-workbook": Case("h.xlsx", lambda: b"PK\x03\x04garbage", InputError, "XLSX illisible"),
    "hs-unsupported-suffix": Case("h.ods", lambda: b"x", InputError, "non pris en charge"),
    "hs-unbalanced-quote": Case("h.csv", lambda: _hs('"' + HS_ROW), InputError, "CSV illisible"),
    "hs-duplicate-ids": Case(
        "h.csv",
        lambda: _hs(HS_ROW, HS_ROW.replace("Tilleuls", "Acacias")),
        ValidationFailed,
        r"PDCH-1.*plusieurs lignes \(2, 3\)",
        frozenset({"duplicate-id"}),
        feature="PDCH-1",
    ),
    "hs-count-not-a-number": Case(
        "h.csv",
        lambda: _hs(
            HS_ROW.replace(";24;", ";douze;"), HS_ROW.replace("PDCH-1", "PDCH-2").replace(";24;", ";12,5;")
        ),
        ValidationFailed,
        "nombre de logements 'douze' n'est pas un entier positif",
        frozenset({"bad-count"}),
        feature="ligne 2",
        errors=2,
    ),
    "hs-extra-field": Case(
        "h.csv",
        lambda: _hs(HS_ROW, HS_ROW + ";en trop"),
        InputError,
        "CSV illisible",
    ),
    # --- formerly crashing (non-project exceptions), kept as regressions -------------------------
    "hs-count-infinite": Case(
        "h.csv",
        lambda: _hs(HS_ROW.replace(";24;", ";inf;")),
        ValidationFailed,
        "nombre de logements 'inf'",
        frozenset({"bad-count"}),
    ),
    "hs-count-beyond-int64": Case(
        "h.csv",
        lambda: _hs(HS_ROW.replace(";24;", ";99999999999999999999;")),
        ValidationFailed,
        "nombre de logements",
        frozenset({"bad-count"}),
    ),
    "hs-gz-truncated": Case(
        "h.csv.gz",
        lambda: gzip.compress(_hs(HS_ROW))[:30],
        InputError,
        "CSV illisible|gzip",
    ),
    "hs-gz-not-gzip": Case(
        "h.csv.gz",
        lambda: _hs(HS_ROW),
        InputError,
        "CSV illisible|gzip",
    ),
}


@pytest.mark.parametrize("name", _params(HOUSING_FAIL))
def test_housing_reader_refuses(name, tmp_path):
    case = HOUSING_FAIL[name]
    path = _write(tmp_path, case)
    with pytest.raises(case.raises) as err:
        read_housing(path)
    _check_error(err.value, case, path)


@pytest.mark.parametrize("name", _params(HOUSING_FAIL, through_cli=True))
def test_housing_command_refuses(name, tmp_path):
    case = HOUSING_FAIL[name]
    path = _write(tmp_path, case)
    out = tmp_path / "sites.csv"
    r = CliRunner().invoke(main, ["logements", str(path), "-o", str(out)])
    one_line = case.raises is not ValidationFailed
    line = _assert_clean_failure(r, out, exit_code=1, one_line=one_line)
    assert re.search(case.pattern, line), line
    if not one_line:  # every problem is listed before the last line
        lines = r.stderr.strip().splitlines()[:-1]
        assert all(re.match(r"(ERREUR|AVERTISSEMENT) ", x) for x in lines), r.stderr


def test_housing_header_only_through_the_command(tmp_path):
    path = tmp_path / "h.csv"
    path.write_bytes(_hs())
    assert read_housing(path).empty  # the library reads it; the command refuses it
    out = tmp_path / "sites.csv"
    r = CliRunner().invoke(main, ["logements", str(path), "-o", str(out)])
    assert "Erreur interne" not in r.output and r.exit_code == 1 and not out.exists(), r.output
    assert "aucune ligne de données" in r.output  # no silent "0 logement", exit 0


def test_housing_empty_insee_cell_among_filled_ones(tmp_path):
    """A common spreadsheet: the commune is filled on some rows only."""
    path = tmp_path / "h.csv"
    path.write_bytes(_hs(HS_ROW.replace(";62907;", ";;"), HS_ROW.replace("PDCH-1", "PDCH-2")))
    sites = read_housing(path)
    assert sites["code_insee"].iloc[1] == "62907" and pd.isna(sites["code_insee"].iloc[0])


def test_housing_latin1_bom_and_separators_read_alike(tmp_path):
    rows = [HS_ROW, HS_ROW.replace("PDCH-1", "PDCH-2").replace("Tilleuls", "Érables")]
    files = {
        "latin1.csv": _hs(*rows, encoding="latin-1"),
        "bom.csv": _hs(*rows, sep=",", encoding="utf-8-sig"),
        "tab.csv": _hs(*rows, sep="\t"),
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        sites = read_housing(tmp_path / name)
        assert list(sites["site_id"]) == ["PDCH-1", "PDCH-2"], name
        assert list(sites["programme"]) == ["Résidence des Tilleuls", "Résidence des Érables"], name
        assert list(sites["logements"]) == [24, 24] and list(sites["code_insee"]) == ["62907"] * 2
        assert ("encoding" in sites.attrs["report"].codes()) == (name == "latin1.csv")


def test_housing_insee_written_as_number(tmp_path):
    path = tmp_path / "h.csv"
    path.write_bytes(_hs(f"B-1;Dynacité;Les Allymes;10;{AMBERIEU[0]};{AMBERIEU[1]};1004;1975"))
    sites = read_housing(path)
    assert list(sites["code_insee"]) == ["01004"]
    out = tmp_path / "sites.csv"
    r = CliRunner().invoke(main, ["logements", str(path), "-o", str(out)])
    assert r.exit_code == 0, r.output
    table = read_excel_csv(out)
    assert list(table["code_insee"]) == ["01004"] and table["localisation"].iloc[0] == "coordonnées"


@pytest.mark.parametrize("annee", ["1998-06-01", "juin 1998", "98/06", "3000"])
def test_housing_year_in_a_wrong_format_is_reported(tmp_path, annee):
    path = tmp_path / "h.csv"
    path.write_bytes(_hs(HS_ROW.replace(";1998", f";{annee}")))
    sites = read_housing(path)
    bad = [p for p in sites.attrs["report"].problems if p.code == "bad-year"]
    assert len(bad) == 1 and bad[0].feature == "ligne 2" and annee in bad[0].message
    assert sites["annee"].isna().all() and list(sites["logements"]) == [24]


@pytest.mark.parametrize(
    ("lon", "lat", "motif"),
    [
        (50.4808, 3.0121, "longitude et latitude inversées"),
        (700800, 7042650, "hors de France"),
        ("inf", 50.48, "hors de France"),
        ("-inf", "nan", "ni coordonnées|coordonnée incomplète"),
        ("1e300", "1e300", "hors de France"),
    ],
    ids=["swapped", "lambert-as-degrees", "infinite", "nan", "enormous"],
)
def test_housing_coordinates_in_the_wrong_crs_are_reported(tmp_path, lon, lat, motif):
    """The site is kept, not located, with the reason; nothing is guessed."""
    path = tmp_path / "h.csv"
    path.write_bytes(_hs(f"PDCH-1;PDCH;R;24;{lon};{lat};62907;1998"))
    located = locate_sites(read_housing(path), metric_crs="EPSG:2154", communes=["62907"])
    site = located.sites.iloc[0]
    assert site.geometry is None and re.search(motif, site["motif"]), site["motif"]
    problems = [p for p in located.report.problems if p.code == "unlocated"]
    assert [p.feature for p in problems] == ["PDCH-1"]


def test_housing_degrees_in_xy_columns_are_reported(tmp_path):
    path = tmp_path / "h.csv"
    path.write_bytes(
        _hs(
            "PDCH-1;PDCH;R;24;3.0121;50.4808;62907",
            header="site_id;bailleur;programme;logements;x;y;code_insee",
        )
    )
    located = locate_sites(read_housing(path), metric_crs="EPSG:2154")
    assert located.sites.geometry.iloc[0] is None
    assert "ressemblent à des degrés" in located.sites["motif"].iloc[0]


def test_housing_only_the_outsider_is_flagged(tmp_path):
    path = tmp_path / "h.csv"
    path.write_bytes(_hs(HS_ROW, f"B-1;Dynacité;Les Allymes;10;{AMBERIEU[0]};{AMBERIEU[1]};01004;1975"))
    located = locate_sites(read_housing(path), metric_crs="EPSG:2154", communes=["62907"])
    flagged = [p.feature for p in located.report.problems if p.code == "outside-communes"]
    assert flagged == ["B-1"], [str(p) for p in located.report.problems]


def test_housing_html_and_path_like_values_are_kept_as_text(tmp_path):
    path = tmp_path / "h.csv"
    path.write_bytes(_hs(f"{PATH_LIKE};{HOSTILE};{HOSTILE};24;3.0121;50.4808;62907;1998"))
    sites = read_housing(path)
    assert sites["site_id"].iloc[0] == PATH_LIKE and sites["bailleur"].iloc[0] == HOSTILE
    out = tmp_path / "out" / "sites.csv"
    r = CliRunner().invoke(main, ["logements", str(path), "-o", str(out)])
    assert r.exit_code == 0, r.output
    table = read_excel_csv(out)
    assert table["bailleur"].iloc[0] == HOSTILE and table["site_id"].iloc[0] == PATH_LIKE
    assert sorted(p.name for p in out.parent.iterdir()) == ["sites.csv"]


# === action register ============================================================================

AXES = '[axes]\n1 = "Habitat"\n2 = "Commerce"\n'


def _action(extra: str = "", *, aid: str = "A1", loc: str = "") -> str:
    text = f'[[actions]]\nid = "{aid}"\ntitre = "Étude OPAH-RU"\naxe = 1\nstatut = "projetée"\n{extra}'
    return text + (f"[actions.localisation]\n{loc}" if loc else "")


def _register(*actions: str, head: str = AXES, encoding: str = "utf-8") -> bytes:
    return (head + "\n".join(actions)).encode(encoding)


ACTIONS_FAIL = {
    "ac-invalid-toml": Case(
        "actions.toml",
        lambda: _register(_action("budget = 12 000\n")),
        InputError,
        r"TOML invalide : fin de ligne attendue après la valeur, ligne 9, colonne 13 — corrigez",
    ),
    "ac-latin1": Case(
        "actions.toml", lambda: _register(_action(), encoding="latin-1"), InputError, "pas en UTF-8"
    ),
    "ac-empty-file": Case("actions.toml", lambda: b"", ValidationFailed, "aucun axe", frozenset({"no-axes"})),
    "ac-truncated": Case(
        "actions.toml", lambda: _register(_action()).rstrip(b'"\n'), InputError, "TOML invalide"
    ),
    "ac-duplicate-ids": Case(
        "actions.toml",
        lambda: _register(_action(), _action()),
        ValidationFailed,
        "identifiant 'A1' déjà utilisé",
        frozenset({"duplicate-id"}),
        feature="action A1",
    ),
    "ac-missing-fields": Case(
        "actions.toml",
        lambda: _register('[[actions]]\nid = "A9"\n'),
        ValidationFailed,
        "champ 'titre' absent — ajoutez titre = \"Étude préalable d'OPAH-RU\"",
        frozenset({"missing-field"}),
        feature="action A9",
        errors=3,
    ),
    "ac-renamed-field": Case(
        "actions.toml",
        lambda: _register(_action().replace("statut =", "statu =")),
        ValidationFailed,
        "champ 'statut' absent — ajoutez statut = \"projetée\"",
        frozenset({"missing-field", "unknown-field"}),
    ),
    "ac-date-dmy": Case(
        "actions.toml",
        lambda: _register(_action('date_debut = "18/01/2023"\n')),
        ValidationFailed,
        r'date_debut = "18/01/2023" n\'est pas une date — écrivez AAAA-MM-JJ sans guillemets, ou une année',
        frozenset({"bad-date"}),
        feature="action A1",
    ),
    "ac-date-end-before-start": Case(
        "actions.toml",
        lambda: _register(_action("date_debut = 2024-01-01\ndate_fin = 2023-01-01\n")),
        ValidationFailed,
        "date_fin 2023-01-01 avant date_debut 2024-01-01",
        frozenset({"bad-date"}),
    ),
    "ac-amount-as-text": Case(
        "actions.toml",
        lambda: _register(_action('budget = "12 000 €"\n')),
        ValidationFailed,
        "n'est pas un montant — écrivez un nombre",
        frozenset({"bad-amount"}),
    ),
    "ac-amount-nan": Case(
        "actions.toml",
        lambda: _register(_action("budget = nan\n")),
        ValidationFailed,
        "budget = nan n'est pas un montant",
        frozenset({"bad-amount"}),
    ),
    "ac-unknown-status-and-axe": Case(
        "actions.toml",
        lambda: _register(_action().replace('"projetée"', '"Projetté"').replace("axe = 1", "axe = 7")),
        ValidationFailed,
        r'statut = "Projetté" n\'est pas une valeur permise — vouliez-vous dire « projetée » \?',
        frozenset({"unknown-axe", "unknown-status"}),
        errors=2,
    ),
    "ac-point-swapped": Case(
        "actions.toml",
        lambda: _register(_action(loc=f"point = {LIBERCOURT[::-1]}\n")),
        ValidationFailed,
        "longitude et latitude inversées",
        frozenset({"bad-point"}),
    ),
    "ac-point-lambert": Case(
        "actions.toml",
        lambda: _register(_action(loc="point = [700800.0, 7042650.0]\n")),
        ValidationFailed,
        "hors de France",
        frozenset({"bad-point"}),
    ),
    "ac-point-nan-inf": Case(
        "actions.toml",
        lambda: _register(_action(loc="point = [nan, inf]\n")),
        ValidationFailed,
        "hors de France",
        frozenset({"bad-point"}),
    ),
    "ac-insee-as-number": Case(
        "actions.toml",
        lambda: _register(_action(loc='commune = 1004\nparcelles = ["AB 12"]\n')),
        ValidationFailed,
        r"localisation.commune = 1004 est écrit comme un nombre : un code INSEE est un texte de 5 "
        r'caractères — écrivez "01004" entre guillemets',
        frozenset({"insee-as-number", "bad-parcel-id"}),  # "AB 12" cannot be read without its commune
        errors=2,
    ),
    "ac-parcel-id-as-number": Case(
        "actions.toml",
        lambda: _register(_action(loc="parcelles = [62907000]\n")),
        ValidationFailed,
        r"localisation.parcelles\[0\] = 62907000 est écrit comme un nombre : "
        r"un identifiant de parcelle est un texte",
        frozenset({"bad-parcel-id"}),
    ),
    "ac-path-like-file-missing": Case(
        "actions.toml",
        lambda: _register(_action(loc=f'fichier = "{PATH_LIKE}"\n')),
        ValidationFailed,
        "fichier de localisation ../../etc/passwd introuvable",
        frozenset({"missing-file"}),
    ),
    # --- formerly crashing or accepted, kept as regressions --------------------------------------
    "ac-amount-beyond-float": Case(
        "actions.toml",
        lambda: _register(_action("budget = 99_999_999_999_999_999_999_999\n")),
        ValidationFailed,
        "montant",
        frozenset({"bad-amount"}),
    ),
    "ac-amount-infinite": Case(
        "actions.toml",
        lambda: _register(_action("budget = inf\n")),
        ValidationFailed,
        "budget = inf n'est pas un montant",
        frozenset({"bad-amount"}),
    ),
    "ac-absolute-file-outside-folder": Case(
        "actions.toml",
        lambda: _register(_action(loc='fichier = "/etc/passwd"\n')),
        ValidationFailed,
        "fichier",
        frozenset({"bad-path"}),
    ),
    "ac-deeply-nested": Case(
        "actions.toml",
        lambda: _register(_action("indicateurs = " + "[" * 5000 + "]" * 5000 + "\n")),
        InputError,
        r"imbrication trop profonde \(5000 niveaux.*au plus 32\) : fichier refusé avant lecture",
    ),
}


@pytest.mark.parametrize("name", _params(ACTIONS_FAIL))
def test_register_reader_refuses(name, tmp_path):
    case = ACTIONS_FAIL[name]
    path = _write(tmp_path, case)
    with pytest.raises(case.raises) as err:
        read_register(path)
    _check_error(err.value, case, path)


@pytest.mark.parametrize("name", _params(ACTIONS_FAIL, through_cli=True))
def test_actions_command_refuses(name, tmp_path):
    case = ACTIONS_FAIL[name]
    path = _write(tmp_path, case)
    out = tmp_path / "tableau.csv"
    r = CliRunner().invoke(main, ["actions", "--register", str(path), "-o", str(out)])
    if case.raises is ValidationFailed:
        line = _assert_clean_failure(r, out, exit_code=2, one_line=False)
        assert "le registre contient des erreurs" in line
        head, *problems = r.stderr.strip().splitlines()[:-1]
        assert head.startswith(f"{path}: ") and f"{case.errors or 1} erreur(s)" in head, head
        assert problems and all(re.match(r"(ERREUR|AVERTISSEMENT) ", p) for p in problems), r.stderr
        assert re.search(case.pattern, r.stderr), r.stderr
    else:
        line = _assert_clean_failure(r, out, exit_code=1)
        assert re.search(case.pattern, line) and str(path) in line, line


def test_register_html_and_path_like_text_kept_verbatim(tmp_path):
    path = tmp_path / "actions.toml"
    text = _action(f"commentaire = '{HOSTILE}'\nmaitre_ouvrage = '{PATH_LIKE}'\n").replace(
        'titre = "Étude OPAH-RU"', f"titre = '{HOSTILE}'"
    )
    path.write_bytes(_register(text))
    reg = read_register(path)
    assert reg.report.problems == []
    row = actions_table(reg).iloc[0]
    assert row["titre"] == HOSTILE and row["commentaire"] == HOSTILE and row["maitre_ouvrage"] == PATH_LIKE
    out = tmp_path / "out" / "tableau.csv"
    r = CliRunner().invoke(main, ["actions", "--register", str(path), "-o", str(out)])
    assert r.exit_code == 0, r.output
    table = read_excel_csv(out)
    assert table["titre"].iloc[0] == HOSTILE and table["maitre_ouvrage"].iloc[0] == PATH_LIKE
    assert sorted(p.name for p in out.parent.iterdir()) == ["tableau.csv"]


# === national lists =============================================================================

PVD_HEADER = "id_pvd,insee_com,lib_com,date_signature"


def _csv(header: str, *rows: str, sep: str = ",", encoding: str = "utf-8") -> bytes:
    return ("\n".join([header, *rows]) + "\n").replace(",", sep).encode(encoding)


LIST_READERS = {"pvd": read_pvd, "acv": read_acv, "ort": read_ort, "qpv": read_qpv}

LISTS_FAIL = {
    "li-empty-file": Case("pvd.csv", lambda: b"", InputError, "CSV illisible"),
    "li-renamed-column": Case(
        "pvd.csv",
        lambda: _csv(PVD_HEADER.replace("insee_com", "code_com"), "pvd-1,62907,Libercourt,2021-01-22"),
        InputError,
        r"colonne « insee_com » absente \(colonnes trouvées : id_pvd, code_com",
    ),
    "li-invalid-json": Case(
        "acv.geojson", lambda: _fc({"properties": {}})[:30], InputError, "JSON illisible"
    ),
    "li-ort-missing-date-column": Case(
        "ort.csv",
        lambda: _csv("Code commune,Signée ?", "62907,Signée"),
        InputError,
        "colonne « Si signée, date de signature » absente",
    ),
    # --- formerly crashing (non-project exceptions), kept as regressions -------------------------
    "li-zip-not-a-workbook": Case(
        "pvd.csv",
        lambda: b"PK\x03\x04 this is not a workbook",
        InputError,
        "illisible",
    ),
    "li-feature-not-an-object": Case(
        "acv.geojson",
        lambda: _fc({"properties": {"insee_com": "62907"}}, "x"),
        InputError,
        "entité|feature",
    ),
    "li-features-null": Case(
        "acv.geojson",
        lambda: json.dumps({"type": "FeatureCollection", "features": None}).encode(),
        InputError,
        "features",
    ),
    "li-json-array-of-numbers": Case(
        "pvd.json",
        lambda: b"[62907, 1004]",
        InputError,
        "JSON",
    ),
    "li-deeply-nested-json": Case(
        "pvd.json",
        lambda: b"[" * 100_000 + b"]" * 100_000,
        InputError,
        "JSON",
    ),
}


def _list_reader(case: Case):
    return LIST_READERS[Path(case.file).stem]


@pytest.mark.parametrize("name", _params(LISTS_FAIL))
def test_list_reader_refuses(name, tmp_path):
    case = LISTS_FAIL[name]
    path = _write(tmp_path, case)
    with pytest.raises(case.raises) as err:
        _list_reader(case)(path, report=ValidationReport(str(path)))
    message = str(err.value)
    assert re.search(case.pattern, message) and path.name in message, message


@pytest.mark.parametrize(
    ("rows", "code", "pattern", "expected"),
    [
        (["pvd-1,1004,Ambérieu-en-Bugey,2021-01-22"], "code_nombre", r"'1004'.*zéro initial.*01004", "01004"),
        (["pvd-1,62907,Libercourt,22/13/2021"], "date_format", "22/13/2021", "62907"),
        (["pvd-1,62907,Libercourt,2021/01/22"], "date_format", "format inattendu", "62907"),
        (["pvd-1,62-907,Libercourt,"], "code_invalide", "'62-907' n'est pas un code INSEE", None),
        (["pvd-1,62907,Libercourt,", "pvd-2,62907,Libercourt bis,"], "doublon", "déjà présente", "62907"),
    ],
    ids=["insee-as-number", "date-impossible", "date-wrong-format", "insee-invalid", "duplicate"],
)
def test_list_rows_are_reported_never_dropped(tmp_path, rows, code, pattern, expected):
    path = tmp_path / "pvd.csv"
    path.write_bytes(_csv(PVD_HEADER, *rows))
    report = ValidationReport(str(path))
    table = read_pvd(path, report=report)
    assert len(table) == len(rows)  # nothing dropped
    hits = [p for p in report.problems if p.code == code]
    assert hits and re.search(pattern, hits[0].message), report
    assert hits[0].source == str(path) and hits[0].feature == f"ligne {len(rows) + 1}"
    assert table["code_insee"].iloc[0] == expected


def test_list_encodings_and_separators_read_alike(tmp_path):
    rows = ["pvd-1,62427,Hénin-Beaumont,2021-01-22", "pvd-2,01004,Ambérieu-en-Bugey,"]
    files = {
        "latin1.csv": _csv(PVD_HEADER, *rows, sep=";", encoding="latin-1"),
        "bom.csv": _csv(PVD_HEADER, *rows, encoding="utf-8-sig"),
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        report = ValidationReport(name)
        table = read_pvd(tmp_path / name, report=report)
        assert list(table["code_insee"]) == ["62427", "01004"], name
        assert list(table["commune"]) == ["Hénin-Beaumont", "Ambérieu-en-Bugey"], name
        assert report.problems == [], report


def test_list_html_kept_as_text(tmp_path):
    path = tmp_path / "pvd.csv"
    path.write_bytes(_csv(PVD_HEADER, f'pvd-1,62907,"{HOSTILE.replace(chr(34), chr(39))}",2021-01-22'))
    table = read_pvd(path, report=ValidationReport(str(path)))
    assert table["commune"].iloc[0] == HOSTILE.replace('"', "'")


def _lists_dir(tmp_path: Path, ort: bytes) -> Path:
    folder = tmp_path / "listes"
    folder.mkdir()
    (folder / "ort.csv").write_bytes(ort)
    (folder / "acv.csv").write_bytes(_csv("insee_com,lib_com,id_acv,lib_acv,date_signature"))
    return folder


@pytest.mark.parametrize(
    ("ort", "pattern"),
    [
        pytest.param(
            _csv("Code commune,Signée ?", "62907,Signée"),
            "colonne « Si signée, date de signature »",
            id="renamed",
        ),
        pytest.param(b"", "CSV illisible", id="empty"),
        pytest.param(
            b"PK\x03\x04 not a workbook",
            "illisible",
            id="zip-not-a-workbook",
        ),
    ],
)
def test_lists_through_the_command(tmp_path, ort, pattern):
    folder = _lists_dir(tmp_path, ort)
    out = tmp_path / "communes.csv"
    r = CliRunner().invoke(
        main, ["communes", "--eligible", "denormandie", "--lists", str(folder), "-o", str(out)]
    )
    line = _assert_clean_failure(r, out, exit_code=1)
    assert re.search(pattern, line) and "ort.csv" in line, line


def test_housing_rpls_header_only_is_an_empty_table(tmp_path):
    path = tmp_path / "h.csv"
    path.write_bytes(_hs(header="bailleur;programme;lon;lat"))
    assert read_housing(path).empty


def test_qpv_header_only_is_an_empty_table(tmp_path):
    path = tmp_path / "qpv.csv"
    path.write_bytes(_csv("insee_com,code_qp,lib_qp"))
    table = read_qpv(path, report=ValidationReport(str(path)))
    assert table.empty and list(table.columns[:3]) == ["code_insee", "code_actuel", "ligne"]


def test_communes_list_that_is_not_an_array(tmp_path):
    from geo.sources.lists import read_communes

    path = tmp_path / "communes.json"
    path.write_text('{"code": "62907", "nom": "Libercourt"}', encoding="utf-8")
    with pytest.raises(InputError, match="format inattendu") as err:
        read_communes(path)
    assert err.value.source == str(path)


def test_friches_trailing_separator_keeps_the_columns(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(_cnig(CNIG_ROW + ";"))
    layer = read_friches(path)
    assert list(layer["site_id"]) == ["62907_1"] and list(layer["code_insee"]) == ["62907"]
    assert list(layer["site_statut"]) == ["friche avec projet"]


def test_housing_trailing_separator_keeps_the_columns(tmp_path):
    path = tmp_path / "h.csv"
    path.write_bytes(_hs(HS_ROW + ";", HS_ROW.replace("PDCH-1", "PDCH-2") + ";"))
    sites = read_housing(path)
    assert list(sites["site_id"]) == ["PDCH-1", "PDCH-2"] and list(sites["logements"]) == [24, 24]


def test_list_trailing_separator_keeps_the_columns(tmp_path):
    path = tmp_path / "pvd.csv"
    path.write_bytes(_csv(PVD_HEADER, "pvd-1,62907,Libercourt,2021-01-22,", "pvd-2,62427,Hénin-Beaumont,,"))
    report = ValidationReport(str(path))
    table = read_pvd(path, report=report)
    assert list(table["code_insee"]) == ["62907", "62427"] and report.problems == [], report
