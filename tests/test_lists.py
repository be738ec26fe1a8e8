"""National lists read in place from ../shared/data: codes, dates, rows reported, downloads.

The expected values are read from the raw files with the ``csv``/``json`` modules, independently
of the readers under test.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import Counter
from pathlib import Path

import fileserver
import pytest

from geo import settings
from geo.eligibility.answers import signed_ort_by_departement
from geo.errors import DownloadError, InputError, ValidationFailed, ValidationReport
from geo.sources.lists import (
    check_consistency,
    fetch_list,
    load_lists,
    normalise_code,
    parse_list_date,
    read_acv,
    read_ort,
    read_pvd,
)

ORT_CSV = Path("ort-anct/ort-suivi-anct-national.csv")
ACV_GEOJSON = Path("action-coeur-de-ville/acv-communes-2024-09-with-signature-dates.geojson")
PVD_CSV = Path("petites-villes-de-demain/pvd-communes-2021-01-22.csv")


@pytest.fixture(scope="module")
def lists(shared_data):
    return load_lists(shared_data)


def _raw_ort(shared_data) -> list[dict]:
    with open(shared_data / ORT_CSV, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


# --- codes and dates ------------------------------------------------------------------------


def test_normalise_code_keeps_corsica_and_restores_leading_zero():
    assert normalise_code("2a004") == ("2A004", "")
    assert normalise_code(" 62907 ") == ("62907", "")
    code, note = normalise_code("1004")
    assert code == "01004" and "1004" in note and "01004" in note
    assert normalise_code(1004.0)[0] == "01004"
    assert normalise_code('="01004"') == ("01004", "")
    for bad in ("999999", "62-907", "", "AB123"):
        code, note = normalise_code(bad)
        assert code is None and "code INSEE" in note


def test_parse_list_date_accepts_only_listed_formats():
    assert parse_list_date("20/09/2018", ("%d/%m/%Y", "%d-%m-%Y")) == dt.date(2018, 9, 20)
    assert parse_list_date("20-09-2018", ("%d/%m/%Y", "%d-%m-%Y")) == dt.date(2018, 9, 20)
    assert parse_list_date("", ("%Y-%m-%d",)) is None
    with pytest.raises(ValueError, match="01/2021"):
        parse_list_date("01/2021", ("%Y-%m-%d", "%d/%m/%Y"))
    with pytest.raises(ValueError, match="aaaa-mm-jj"):
        parse_list_date("18/01/23", ("%Y-%m-%d",))


# --- the real lists ------------------------------------------------------------------------


def test_ort_row_of_libercourt_names_its_spreadsheet_row(lists, shared_data):
    raw = _raw_ort(shared_data)
    index = next(i for i, r in enumerate(raw) if r["Code commune"] == "62907")
    (row,) = lists.rows("ort", "62907")
    assert row["ligne"] == f"ligne {index + 2}"  # header on row 1
    assert row["signee"] == "signee" and row["date_signature"] == dt.date(2023, 1, 18)
    assert row["programme"] == "PVD" and row["pvd"] and not row["acv"]
    assert row["commune"] == "Libercourt" and row["epci"] == "CA d'Hénin-Carvin"
    assert row["derniere_actualisation"] == dt.date(2023, 6, 5)  # "05-06-2023 13:42", dd-mm-yyyy
    assert lists.info["ort"].date == "2024-09-18"
    assert len(lists["ort"]) == len(raw) == 2290  # nothing dropped


def test_signed_ort_per_departement_matches_the_raw_table(lists, shared_data):
    expected = Counter()
    for r in _raw_ort(shared_data):
        if r["Signée ?"] == "Signée":
            code = r["Code commune"]
            expected[code[:3] if code.startswith("97") else code[:2]] += 1
    counts = signed_ort_by_departement(lists)
    assert dict(counts) == dict(expected)
    assert counts["62"] == 34 and counts.sum() == 1896
    assert counts["2A"] == sum(
        1 for r in _raw_ort(shared_data) if r["Code commune"].startswith("2A") and r["Signée ?"] == "Signée"
    )
    # Signed on or before a date: Libercourt (2023-01-18) is counted from that day only.
    before = signed_ort_by_departement(lists, dt.date(2023, 1, 17))["62"]
    after = signed_ort_by_departement(lists, dt.date(2023, 1, 18))["62"]
    assert after - before == 1


def test_acv_dates_are_day_first(lists, shared_data):
    raw = json.loads((shared_data / ACV_GEOJSON).read_text(encoding="utf-8"))["features"]
    lens = next(f["properties"] for f in raw if f["properties"]["insee_com"] == "62498")
    assert lens["date_signature"] == "20/09/2018"
    (row,) = lists.rows("acv", "62498")
    assert row["date_signature"] == dt.date(2018, 9, 20)
    assert row["id_acv"] == "acv-113" and row["ligne"].startswith("entité ")
    assert len(lists["acv"]) == len(raw) == 245
    assert lists.rows("acv", "62907") == []  # Libercourt is PVD, not ACV


def test_corsican_codes_are_kept_as_text(lists):
    for code in ("2A004", "2B033", "2A247"):
        (row,) = lists.rows("ort", code)
        assert row["code_insee"] == code and row["code_actuel"] == code
    assert lists.commune("2A004")["departement"] == "2A"
    assert lists.profile("2A004")["programmes"] == ["ACV (acv-004)", "ACV 2 (acv-004)"]
    assert all(isinstance(c, str) for c in lists["ort"]["code_insee"])


def test_pvd_snapshot_bad_row_is_reported_not_dropped(lists, shared_data):
    with open(shared_data / PVD_CSV, encoding="utf-8", newline="") as f:
        raw = list(csv.DictReader(f))
    bad_index = next(i for i, r in enumerate(raw) if r["insee_com"] == "999999")
    label = f"ligne {bad_index + 2}"
    table = lists["pvd"]
    assert len(table) == len(raw) == 1607
    kept = table[table["ligne"] == label].iloc[0]
    assert kept["code_insee"] is None and kept["date_signature"] is None
    problems = {(p.code, p.feature) for p in lists.report.problems if p.source.endswith(PVD_CSV.name)}
    assert ("code_invalide", label) in problems and ("date_format", label) in problems


def test_former_codes_resolve_to_the_current_commune_and_are_reported(lists):
    # Marconne (62549) merged into Hesdin-la-Forêt (62447): its ORT row is kept and reported.
    (row,) = lists.rows("ort", "62549")
    assert row["code_actuel"] == "62447"
    assert [r["code_insee"] for r in lists.rows("ort", "62447", absorbed=True)] == ["62549", "62743", "62461"]
    warn = [p for p in lists.report.problems if p.code == "code_ancien" and p.feature == row["ligne"]]
    assert warn and "62447" in warn[0].message


def test_qpv_and_programmes_per_commune(lists):
    profile = lists.profile("62907")
    assert profile["qpv_2024"] == ["QN06248M Quartier De La Haute Voie"]
    assert "PVD (pvd-32-62-22)" in profile["programmes"]
    assert profile["epci"] == "CA d'Hénin-Carvin" and profile["population"] == 7973
    assert len(lists.profile("62427")["qpv_2024"]) == 3  # Hénin-Beaumont: QN06241M, QN06242M, QN06244M


def test_profile_of_a_delegated_commune_goes_through_its_current_commune(lists):
    """Tourlaville 50602, commune déléguée of Cherbourg-en-Cotentin 50129 (COG 2026): no list
    row is written under 50602. Before: no programme. After: those of 50129, saying so."""
    profile = lists.profile("50602")
    assert profile["code_actuel"] == "50129"
    assert (
        profile["programmes"] == lists.profile("50129")["programmes"] == ["ACV (acv-060)", "ACV 2 (acv-060)"]
    )
    assert "programmes de la commune actuelle 50129" in profile["remarque"]
    assert "commune déléguée de 50129" in profile["remarque"]


def test_consistency_report_between_lists(lists):
    report = check_consistency(lists)
    by_code = Counter(p.code for p in report.problems)
    assert by_code["acv_sans_ort"] == 6  # ACV communes absent from the ORT follow-up
    hazebrouck = [p for p in report.problems if p.code == "acv_sans_ort" and "59295" in p.message]
    assert hazebrouck and hazebrouck[0].feature.startswith("entité ")
    assert any(p.code == "acv_divergent" and "78517" in p.message for p in report.problems)
    assert by_code["ort_incoherente"] == 10 and by_code["ort_sans_date"] == 8
    assert not any(p.code == "acv_et_pvd" for p in report.problems)  # no commune is in both here


# --- bad inputs: real rows, damaged in code ---------------------------------------------------


@pytest.fixture
def ort_sample(shared_data, tmp_path):
    """Header and real rows (Libercourt, Ambérieu-en-Bugey 01004) of the ORT follow-up."""
    lines = (shared_data / ORT_CSV).read_text(encoding="utf-8").splitlines()
    header = lines[0]
    libercourt = next(x for x in lines if ",62907," in x)
    amberieu = next(x for x in lines if ",01004," in x)
    return tmp_path, header, libercourt, amberieu


def _read(tmp_path, text, lists):
    path = tmp_path / "ort.csv"
    path.write_text(text, encoding="utf-8")
    report = ValidationReport("test")
    return read_ort(path, report=report, resolve=lists.resolve), report, path


def test_renamed_column_names_file_column_and_fix(ort_sample, lists):
    tmp_path, header, libercourt, _ = ort_sample
    with pytest.raises(InputError) as err:
        _read(tmp_path, header.replace("Code commune", "Code_Com") + "\n" + libercourt, lists)
    msg = str(err.value)
    assert "ort.csv" in msg and "« Code commune » absente" in msg and "Code_Com" in msg and "renommée" in msg


def test_number_instead_of_code_is_repaired_and_reported(ort_sample, lists):
    tmp_path, header, _, amberieu = ort_sample
    table, report, _ = _read(tmp_path, header + "\n" + amberieu.replace(",01004,", ",1004,"), lists)
    assert table.loc[0, "code_insee"] == "01004" and table.loc[0, "code_actuel"] == "01004"
    (p,) = [p for p in report.problems if p.code == "code_nombre"]
    assert p.feature == "ligne 2" and "1004" in p.message and p.severity == "warning"


def test_unexpected_date_format_names_the_row(ort_sample, lists):
    tmp_path, header, libercourt, amberieu = ort_sample
    text = "\n".join([header, amberieu, libercourt.replace("2023-01-18", "18/01/23")])
    table, report, _ = _read(tmp_path, text, lists)
    assert len(table) == 2 and table.loc[1, "date_signature"] is None
    (p,) = [p for p in report.problems if p.code == "date_format"]
    assert p.feature == "ligne 3" and "18/01/23" in p.message and p.severity == "error"


def test_duplicated_commune_and_unknown_code_are_reported(ort_sample, lists):
    tmp_path, header, libercourt, _ = ort_sample
    text = "\n".join([header, libercourt, libercourt, libercourt.replace(",62907,", ",62998,")])
    table, report, _ = _read(tmp_path, text, lists)
    assert len(table) == 3  # nothing dropped
    dup = [p for p in report.problems if p.code == "doublon"]
    assert len(dup) == 1 and dup[0].feature == "ligne 3" and "ligne 2" in dup[0].message
    unknown = [p for p in report.problems if p.code == "code_inconnu"]
    assert len(unknown) == 1 and unknown[0].feature == "ligne 4" and "62998" in unknown[0].message
    assert table.loc[2, "code_actuel"] is None


def test_strict_loading_refuses_lists_with_errors(shared_data, tmp_path):
    """A flat folder (--lists DIR) of copies of the real lists, without the commune list."""
    folder = tmp_path / "listes"
    folder.mkdir()
    (folder / "ort.csv").write_bytes((shared_data / ORT_CSV).read_bytes())
    (folder / "acv.geojson").write_bytes((shared_data / ACV_GEOJSON).read_bytes())
    (folder / "pvd.csv").write_bytes((shared_data / PVD_CSV).read_bytes())
    loose = load_lists(folder)
    assert {"ort", "acv", "pvd"} <= set(loose.tables) and "communes" not in loose.tables
    with pytest.raises(ValidationFailed, match="999999"):
        load_lists(folder, strict=True)


def test_missing_required_list_is_named(tmp_path):
    with pytest.raises(InputError, match="Action cœur de ville"):
        load_lists(tmp_path)


def test_acv_and_pvd_readers_on_other_formats(tmp_path, lists):
    """data.gouv.fr CSV layouts (dd-mm-yyyy ACV, ISO PVD, ';' separator), generated in code."""
    acv = tmp_path / "acv.csv"
    acv.write_text(
        "insee_com;lib_com;id_acv;lib_acv;date_signature\n62498;Lens;acv-113;Lens - Liévin;20-09-2018\n"
    )
    pvd = tmp_path / "pvd.csv"
    pvd.write_text("insee_com,lib_com,id_pvd,date_signature\n62907,Libercourt,pvd-32-62-22,2021-04-20\n")
    report = ValidationReport("t")
    assert read_acv(acv, report=report, resolve=lists.resolve).loc[0, "date_signature"] == dt.date(
        2018, 9, 20
    )
    assert read_pvd(pvd, report=report, resolve=lists.resolve).loc[0, "date_signature"] == dt.date(
        2021, 4, 20
    )
    assert report.problems == []


# --- downloads against a local server --------------------------------------------------------


class _Handler(fileserver.FilesHandler):
    """The real files, and a response cut short (announced longer than it is)."""

    def do_GET(self):  # noqa: N802 - http.server API
        if self.path == "/truncated.csv":
            body = b"insee_com,lib_com\n62907,Libercourt\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) + 500))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


@pytest.fixture
def server(shared_data, monkeypatch):
    """http.server on 127.0.0.1 serving the real files under /files/ (and an API document)."""
    base, routes, httpd = fileserver.serve(shared_data, _Handler)
    monkeypatch.setattr(settings, "http_retries", 2)
    monkeypatch.setattr(settings, "http_backoff", 0.0)
    yield base, routes, httpd
    httpd.shutdown()
    httpd.server_close()


def _cached_files() -> list[Path]:
    return [p for p in Path(settings.cache_dir).rglob("*") if p.is_file()]


@pytest.mark.network
def test_download_then_offline_from_cache(server, shared_data):
    base, _, httpd = server
    url = f"{base}/files/{PVD_CSV.as_posix()}"
    path = fetch_list("pvd", url=url)
    assert path.is_relative_to(settings.cache_dir)
    assert path.read_bytes() == (shared_data / PVD_CSV).read_bytes()
    httpd.shutdown()
    settings.offline = True
    assert fetch_list("pvd", url=url) == path  # served from the cache, no network
    table = read_pvd(path, report=ValidationReport("t"))
    assert len(table) == 1607
    with pytest.raises(DownloadError, match="offline"):
        fetch_list("pvd", url=f"{base}/files/never-downloaded.csv")


@pytest.mark.network
def test_failed_or_truncated_download_leaves_no_file(server):
    base, _, _ = server
    with pytest.raises(DownloadError, match="truncated"):
        fetch_list("pvd", url=f"{base}/truncated.csv")
    with pytest.raises(DownloadError, match="404"):
        fetch_list("pvd", url=f"{base}/files/absent.csv")
    assert _cached_files() == []


@pytest.mark.network
def test_datagouv_dataset_api_is_resolved_to_its_csv_resource(server, shared_data):
    base, routes, _ = server
    routes["/api/1/datasets/ort-test/"] = json.dumps(
        {
            "resources": [
                {"format": "pdf", "url": f"{base}/files/none.pdf"},
                {"format": "csv", "url": f"{base}/files/{ORT_CSV.as_posix()}"},
            ]
        }
    ).encode()
    path = fetch_list("ort", url=f"{base}/api/1/datasets/ort-test/")
    assert path.read_bytes() == (shared_data / ORT_CSV).read_bytes()


# --- the arrêté of 26 March 2019: the simulator's 244 communes, the reconstruction as a check ---

ARRETE_YAML = Path("denormandie-zonage-sp/communes-denormandie.yaml")
#: In the reconstruction from the ACV conventions acv-001…acv-222, not in the arrêté's list.
EXTRA = {"15012": "Arpajon-sur-Cère", "78401": "Meulan-en-Yvelines", "26057": "Bourg-de-Péage"}
#: In the arrêté's list, not in the reconstruction (ten of them in the Nord, outside ACV).
MISSING = {
    "30258": "Saint-Gilles",
    "59599": "Tourcoing",
    "59512": "Roubaix",
    "59650": "Wattrelos",
    "59017": "Armentières",
    "59014": "Anzin",
    "59616": "Vieux-Condé",
    "59153": "Condé-sur-l'Escaut",
    "59317": "Houplines",
    "59253": "Fresnes-sur-Escaut",
    "59365": "Louvroil",
    "76231": "Elbeuf",
}


def _yaml_codes(shared_data) -> set[str]:
    import re

    text = (shared_data / ARRETE_YAML).read_text(encoding="utf-8")
    return set(re.findall(r"^- insee: '?([0-9AB]{5})'?$", text, flags=re.M))


@pytest.mark.parametrize("source", ["embedded", "folder"])
def test_arpajon_sur_cere_is_not_on_the_arrete_list(source, lists, shared_data):
    """Wrongly « oui » before: second commune of the ACV pair Aurillac–Arpajon (acv-017), which
    the reconstruction put on the list; the simulator's list names Aurillac only."""
    used = load_lists() if source == "embedded" else lists
    assert "15012" not in _yaml_codes(shared_data) and "15014" in _yaml_codes(shared_data)
    assert used.rows("acv_arrete", "15012") == [] and used.rows("acv_arrete", "15012", absorbed=True) == []
    assert used.rows("acv_arrete", "15014")[0]["commune"] == "Aurillac"
    assert "15012" in set(used.derived_arrete()["code_insee"])  # the reconstruction's error
    label = used.info["acv_arrete"].label()
    assert label.startswith("Liste des 244 communes de l'arrêté du 26 mars 2019")
    assert "simulateur service-public.fr (DILA)" in label and "version du 10/09/2024" in label


@pytest.mark.parametrize("source", ["embedded", "folder"])
def test_tourcoing_is_on_the_arrete_list(source, lists, shared_data):
    """Wrongly « non » before: Tourcoing is on the arrêté's list though outside the ACV programme."""
    used = load_lists() if source == "embedded" else lists
    assert "59599" in _yaml_codes(shared_data)
    (row,) = used.rows("acv_arrete", "59599")
    assert row["commune"] == "Tourcoing" and row["ligne"] == "ligne 276"
    assert row["fichier"] == "communes-denormandie.yaml"
    assert used.rows("acv", "59599") == [] and "59599" not in set(used.derived_arrete()["code_insee"])


def test_comparison_lists_the_reconstruction_errors_commune_by_commune(shared_data):
    from geo.sources.arrete_report import compare_arrete

    c = compare_arrete(load_lists())
    assert (c.rows, c.communes, c.derived_communes) == (244, 244, 235)
    assert {r["code_insee"]: r["commune"] for r in c.extra} == EXTRA
    assert {r["code_insee"]: r["commune"] for r in c.missing} == MISSING
    assert next(r for r in c.extra if r["code_insee"] == "15012")["detail"].startswith("convention acv-017")
    assert {r["code_insee"] for r in c.not_in_acv} == set(MISSING) | {"78517"}  # + Rambouillet (left ACV)
    assert {"15012", "78401", "26057", "82033"} <= {r["code_insee"] for r in c.acv_not_listed}
    assert "59599" in {r["code_insee"] for r in c.no_ort_row}
    deps = c.par_departement.set_index("departement")["communes_liste"]
    raw = _yaml_codes(shared_data)
    assert deps.sum() == 244 and deps["59"] == sum(x.startswith("59") for x in raw) == 16
    assert deps["976"] == sum(x.startswith("976") for x in raw) == 4
    assert deps["78"] == sum(x.startswith("78") for x in raw) + 1  # Limay, written 77335
    assert deps.get("77", 0) == sum(x.startswith("77") for x in raw) - 1
    text = "\n".join(c.lines())
    assert "3 commune(s) de la reconstruction absente(s) de la liste" in text
    assert "  59599 Tourcoing (59) — ligne 276 de communes-denormandie.yaml" in text
    fixed = {"78335" if x == "77335" else x for x in raw}
    n_deps = len({x[:3] if x.startswith("97") else x[:2] for x in fixed})
    assert f"  total : 244 commune(s) dans {n_deps} département(s), dont " in text


def test_ort_communes_report_shows_the_comparison(shared_data):
    from click.testing import CliRunner

    from geo.cli import main

    r = CliRunner().invoke(main, ["communes", "--report", "--json", "--dep", "15"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)["liste_arrete"]
    assert [x["code_insee"] for x in doc["en_trop_dans_la_reconstruction"]] == ["15012"]
    assert doc["absentes_de_la_reconstruction"] == []
    assert doc["par_departement"] == [{"departement": "15", "communes_liste": 1, "dont_ort_signee": 1}]
    r = CliRunner().invoke(main, ["communes", "--report"])
    assert r.exit_code == 0 and "12 commune(s) de la liste absente(s) de la reconstruction" in r.output
    assert "76231 Elbeuf (76)" in r.output and "Traceback" not in r.output


def test_arrete_reader_corrects_only_the_known_typo_and_reports_names(lists, tmp_path):
    from geo.sources.denormandie import read_denormandie

    names = lists["communes"]["nom"].to_dict()
    path = tmp_path / "communes-denormandie.yaml"
    path.write_text(
        "# commentaire\n- insee: '77335'\n  nom: Limay\n- insee: 77335\n  nom: Chauconin-Neufmontiers\n"
        "- insee: '59599'\n  nom: 'Roub''aix'\n",
        encoding="utf-8",
    )
    report = ValidationReport("t")
    df = read_denormandie(path, report=report, resolve=lists.resolve, names=names)
    assert df[["code_ecrit", "code_insee", "commune", "ligne"]].values.tolist() == [
        ["77335", "78335", "Limay", "ligne 2"],
        ["77335", "77335", "Chauconin-Neufmontiers", "ligne 4"],
        ["59599", "59599", "Roub'aix", "ligne 6"],
    ]
    codes = [(p.code, p.feature) for p in report.problems]
    assert ("code_corrige", "ligne 2") in codes and ("nom_divergent", "ligne 6") in codes
    assert "compte_arrete" in {c for c, _ in codes}  # 3 communes, not 244
    assert ("nom_divergent", "ligne 4") not in codes  # 77335 is Chauconin-Neufmontiers: not corrected


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("- insee: '01004'\n  nom: Ambérieu\ninsee 01053\n", "ligne 3 inattendue"),
        ("- insee: '01004'\n", "entrée sans « nom: » (ligne 1)"),
        ("# rien\n", "aucune commune"),
    ],
)
def test_arrete_reader_refuses_a_file_of_another_form(tmp_path, text, said):
    from geo.sources.denormandie import read_denormandie

    path = tmp_path / "communes-denormandie.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_denormandie(path, report=ValidationReport("t"))
    assert said in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize("source", ["embedded", "folder"])
def test_acv_label_written_in_utf8_read_as_windows_1252_is_repaired(source, lists):
    used = load_lists() if source == "embedded" else lists
    (row,) = used.rows("acv", "78440")
    assert row["lib_acv"] == "Les Mureaux \u2013 Melan-en-Yvelines"
    assert any(p.code == "texte_mal_encode" and p.feature == row["ligne"] for p in used.report.problems)
