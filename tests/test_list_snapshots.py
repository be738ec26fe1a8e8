"""The dated copies of the national lists shipped in the package, and their update.

The embedded copies (``data/listes``) must read exactly as the official files they were made
from (same tables, same row labels, same problems), say their vintage and source, and be the
default; ``ort listes --mettre-a-jour`` is tested against a server on 127.0.0.1 serving the
real files of ../shared/data, including bad downloads that must leave the previous copy in use.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import fileserver
import pandas as pd
import pytest
from click.testing import CliRunner

from geo import embedded, fmt, settings
from geo.cli import main
from geo.errors import InputError, ValidationReport
from geo.sources import lists as lists_mod
from geo.sources import snapshot
from geo.sources.list_readers import read_acv
from geo.sources.list_update import restore_lists, update_lists
from geo.sources.lists import load_lists

ACV_GEOJSON = Path("action-coeur-de-ville/acv-communes-2024-09-with-signature-dates.geojson")
ACV_LATER = Path("action-coeur-de-ville/acv-communes-2024.geojson")  # a later ANCT file (ids ACV001)
QPV_GEOJSON = Path("qpv-2024-communes/qpv2024-communes-centroides-national.geojson")
NGEO_CSV = Path("anct-programmes-communes/ngeo-anct-cog2023-national.csv")
DENORMANDIE_YAML = Path("denormandie-zonage-sp/communes-denormandie.yaml")


@pytest.fixture(scope="module")
def raw(shared_data):
    """The lists read from the official files of ../shared/data (the old path)."""
    return load_lists(shared_data)


@pytest.fixture(autouse=True)
def _fresh_loader():
    lists_mod._LOADED.clear()
    yield
    lists_mod._LOADED.clear()


# --- the embedded copies -------------------------------------------------------------------


def test_embedded_copies_are_the_default_and_say_their_vintage():
    lists = load_lists()
    info = lists.info
    assert info["ort"].date == "2024-09-18" and info["ort"].date_basis == "dernière actualisation"
    assert info["ort"].copy == "intégrée"
    assert "(copie intégrée)" in info["ort"].label() and "18/09/2024" in info["ort"].label()
    assert info["communes"].date == "2026-01-01" and info["communes"].date_basis == "COG au"
    assert info["acv_arrete"].date == "2024-09-10" and info["acv_arrete"].date_basis == "version du"
    assert Path(info["ort"].path).parent == Path(embedded.lists_dir())
    (row,) = lists.rows("ort", "62907")
    assert row["date_signature"] == dt.date(2023, 1, 18) and row["ligne"] == "ligne 113"
    assert lists.profile("62907")["qpv_2024"] == ["QN06248M Quartier De La Haute Voie"]


def test_embedded_copies_are_small_and_described():
    folder = Path(embedded.lists_dir())
    manifest = snapshot.read_manifest(folder)
    files = [p for p in folder.iterdir() if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 2_000_000
    assert all(p.stat().st_size < 3_000_000 for p in files)
    assert set(manifest["listes"]) == set(snapshot.SNAPSHOT_LISTS)
    for name, entry in manifest["listes"].items():
        assert (folder / entry["fichier"]).is_file(), name
        assert entry["millesime"] and entry["base_millesime"] and entry["licence"], name
        assert all(len(f["sha256"]) == 64 for f in entry["source"]["fichiers"]), name
        table = snapshot.read_table(folder / entry["fichier"], entry["colonnes"])
        assert len(table) == entry["lignes"], name
        assert list(table.columns[:3]) == [
            "code_insee",
            "code_actuel",
            "ligne" if name != "communes" else "nature",
        ]


@pytest.mark.parametrize("name", snapshot.SNAPSHOT_LISTS)
def test_embedded_copy_reads_as_the_official_file(name, raw):
    """Same rows, columns, types and row labels as reading the official file in place."""
    copy = load_lists()
    got, expected = copy[name], raw[name]
    if name == "programmes":  # only the communes of a PVD or ACV programme, three id columns
        expected = expected.loc[expected["ligne"].isin(got["ligne"]), list(got.columns)]
        expected = expected.reset_index(drop=True)
        assert (expected[["id_pvd", "id_acv", "id_acv2"]] != "").any(axis=1).all()
    pd.testing.assert_frame_equal(got, expected)
    if name == "communes":
        assert copy.former == raw.former


def test_embedded_problems_are_those_of_the_official_files(raw):
    def key(p):
        return (p.severity, p.code, p.message, Path(p.source).name, p.feature)

    assert sorted(map(key, load_lists().report.problems)) == sorted(map(key, raw.report.problems))


def test_embedded_manifest_matches_a_fresh_generation(shared_data, tmp_path):
    """The committed copies are what the project's script makes from the official files today."""
    made = snapshot.generate(shared_data, tmp_path / "listes")
    committed = snapshot.read_manifest(Path(embedded.lists_dir()))
    assert made == committed
    for name, entry in made["listes"].items():
        for f in entry["source"]["fichiers"]:
            src = next(p for p in snapshot.SOURCES[name].files if Path(p).name == f["fichier"])
            assert snapshot.sha256(shared_data / src) == f["sha256"]


# --- the arrêté of 26 March 2019 -----------------------------------------------------------


def _simulator_codes(shared_data) -> list[tuple[str, str]]:
    """(code, name) of the simulator's YAML list, read with plain regular expressions."""
    import re

    text = (shared_data / DENORMANDIE_YAML).read_text(encoding="utf-8")
    codes = re.findall(r"^- insee: '?([0-9AB]{5})'?$", text, flags=re.M)
    names = re.findall(r"^  nom: (.+)$", text, flags=re.M)
    return list(zip(codes, names, strict=True))


def test_arrete_list_is_the_244_communes_of_the_simulator(shared_data):
    """The embedded list is the simulator's file, row for row, with only Limay's code corrected."""
    arrete = load_lists().acv_arrete
    written = _simulator_codes(shared_data)
    assert len(written) == len(arrete) == 244
    assert list(arrete["code_ecrit"]) == [c for c, _ in written]
    assert list(arrete["commune"]) == [n.strip("'").replace("''", "'") for _, n in written]
    changed = arrete[arrete["code_ecrit"] != arrete["code_insee"]]
    assert changed[["code_ecrit", "code_insee", "commune"]].values.tolist() == [["77335", "78335", "Limay"]]
    assert arrete["code_actuel"].notna().all()
    (limay,) = load_lists().rows("acv_arrete", "78335")
    assert limay["ligne"] == "ligne 394" and limay["fichier"] == DENORMANDIE_YAML.name
    assert load_lists().rows("acv_arrete", "77335") == []  # Chauconin-Neufmontiers is not listed


def test_arrete_list_says_what_it_is_in_the_manifest(shared_data):
    entry = snapshot.read_manifest(Path(embedded.lists_dir()))["listes"]["acv_arrete"]
    assert entry["titre"].startswith("Liste des 244 communes de l'arrêté du 26 mars 2019")
    assert "simulateur service-public.fr (DILA)" in entry["titre"]
    assert entry["millesime"] == "2024-09-10" and entry["lignes"] == 244
    assert "77335 → 78335" in entry["origine"] and "betagouv/reno" in entry["origine"]
    (f,) = entry["source"]["fichiers"]
    assert f["sha256"] == snapshot.sha256(shared_data / DENORMANDIE_YAML)
    assert "n'a pas été lu" in entry["remarque"]
    label = load_lists().info["acv_arrete"].label()
    assert label.startswith(
        "Liste des 244 communes de l'arrêté du 26 mars 2019 (CGI ann. IV art. 18-0 bis D)"
    )
    assert "version du 10/09/2024" in label and "77335 → 78335" in label
    assert not label.startswith("Arrêté")


def test_arrete_list_reads_the_same_from_a_lists_folder(raw):
    assert raw.info["acv_arrete"].date == "2024-09-10"  # the sha256 of the embedded copy's source
    assert "77335 → 78335" in raw.info["acv_arrete"].label()
    pd.testing.assert_frame_equal(raw.acv_arrete, load_lists().acv_arrete)


def test_a_lists_folder_without_the_arrete_file_uses_the_embedded_copy(shared_data, tmp_path):
    (tmp_path / "ort.csv").symlink_to(shared_data / "ort-anct/ort-suivi-anct-national.csv")
    (tmp_path / "acv.geojson").symlink_to(shared_data / ACV_GEOJSON)
    lists = load_lists(tmp_path)
    assert len(lists.acv_arrete) == 244 and lists.info["acv_arrete"].copy == "intégrée"


def test_derived_reconstruction_is_the_222_conventions_of_2018(shared_data):
    """The former reconstruction, kept only as a cross-check (ort communes --report)."""
    arrete = load_lists().derived_arrete()
    assert list(arrete.columns[:3]) == ["code_insee", "code_actuel", "ligne"]
    assert arrete["id_acv"].nunique() == 222
    assert sorted(arrete["id_acv"].unique()) == [f"acv-{i:03d}" for i in range(1, 223)]
    features = json.loads((shared_data / ACV_GEOJSON).read_text(encoding="utf-8"))["features"]
    early = {f["properties"]["insee_com"] for f in features if int(f["properties"]["id_acv"][4:]) <= 222}
    late = {f["properties"]["insee_com"] for f in features if int(f["properties"]["id_acv"][4:]) > 222}
    codes = set(arrete["code_insee"])
    assert early <= codes and not (late & codes)
    assert codes - early == {"78517"}  # Rambouillet acv-163, gone from the ACV file, kept by ngeo
    assert "82033" not in codes  # Castelsarrasin, acv-223, entered in 2024


# --- the cache: which copy is in use --------------------------------------------------------


def _fake_update(name: str, millesime: str) -> None:
    """A converted copy in the cache, as --mettre-a-jour leaves it (the embedded table re-dated)."""
    folder = snapshot.cache_folder()
    folder.mkdir(parents=True, exist_ok=True)
    base = snapshot.read_manifest(Path(embedded.lists_dir()))["listes"][name]
    table = snapshot.read_table(Path(embedded.lists_dir()) / base["fichier"], base["colonnes"])
    entry = dict(base, fichier=f"{name}-test.parquet", millesime=millesime, mise_a_jour="2026-12-01")
    entry["colonnes"] = snapshot.write_table(table, folder / entry["fichier"])
    snapshot._write_manifest({"format": snapshot.FORMAT, "listes": {name: entry}}, folder)


def test_a_newer_cache_copy_is_used_an_older_one_is_not():
    _fake_update("pvd", "2026-11-30")
    lists = load_lists()
    assert lists.info["pvd"].copy == "mise à jour le 2026-12-01" and lists.info["pvd"].date == "2026-11-30"
    assert lists.info["ort"].copy == "intégrée"
    lists_mod._LOADED.clear()
    _fake_update("pvd", "2020-01-01")
    lists = load_lists()
    assert lists.info["pvd"].copy == "intégrée"
    assert any("plus ancienne" in p.message for p in lists.report.problems)


def test_a_damaged_cache_manifest_falls_back_to_the_embedded_copies():
    folder = snapshot.cache_folder()
    folder.mkdir(parents=True)
    (folder / snapshot.MANIFEST).write_text("{not json", encoding="utf-8")
    lists = load_lists()
    assert all(i.copy == "intégrée" for i in lists.info.values())
    (note,) = [p for p in lists.report.problems if p.code == "copie_listes"]
    assert "manifeste des listes illisible" in note.message and "--mettre-a-jour" in note.message


def test_ort_listes_shows_each_list_vintage_source_and_copy():
    r = CliRunner().invoke(main, ["listes"])
    assert r.exit_code == 0, r.output
    assert "dernière actualisation 2024-09-18" in r.output and "copie intégrée" in r.output
    assert (
        "acv_arrete — Liste des 244 communes de l'arrêté du 26 mars 2019" in r.output
        and "pas de mise à jour en ligne" in r.output
    )
    assert "data.gouv.fr" in r.output and "2\u202f290 lignes" in r.output
    doc = json.loads(CliRunner().invoke(main, ["listes", "--json"]).output)
    assert {x["nom"] for x in doc["listes"]} == set(snapshot.SNAPSHOT_LISTS)


def test_update_is_refused_offline():
    settings.offline = True
    r = CliRunner().invoke(main, ["listes", "--mettre-a-jour"])
    assert r.exit_code != 0 and "hors ligne" in r.output and "Traceback" not in r.output


# --- ort listes --mettre-a-jour against a local server ---------------------------------------


@pytest.fixture
def datagouv(shared_data, monkeypatch):
    """127.0.0.1 serving the real files under /files/ and data.gouv.fr-like dataset documents;
    the lists' download addresses point there."""
    base, routes, httpd = fileserver.serve(shared_data)
    monkeypatch.setattr(settings, "http_retries", 1)
    monkeypatch.setattr(settings, "http_backoff", 0.0)

    def dataset(slug: str, fmt: str, rel: str, modified: str) -> str:
        doc = {"resources": [{"format": "pdf", "url": f"{base}/files/none.pdf"}]}
        doc["resources"].append({"format": fmt, "url": f"{base}/files/{rel}", "last_modified": modified})
        routes[f"/api/1/datasets/{slug}/"] = json.dumps(doc).encode()
        return f"{base}/api/1/datasets/{slug}/"

    urls = {
        "communes": f"{base}/files/decoupage-administratif/communes.json",
        "epci": f"{base}/files/decoupage-administratif/epci.json",
        "ort": dataset("ort", "csv", "ort-anct/ort-suivi-anct-national.csv", "2024-10-07T08:00:00"),
        "acv": dataset("acv", "geojson", ACV_LATER.as_posix(), "2025-04-02T12:00:00.000000+00:00"),
        "pvd": f"{base}/files/petites-villes-de-demain/pvd-communes-2021-01-22.csv",
        "qpv": f"{base}/qpv.geojson",
    }
    # The same QPV data written differently (compact JSON): a file no embedded copy was made from.
    qpv = json.loads((shared_data / QPV_GEOJSON).read_text(encoding="utf-8"))
    routes["/qpv.geojson"] = json.dumps(qpv, ensure_ascii=False, separators=(",", ":")).encode()
    specs = {n: replace(s, url=urls.get(n, s.url)) for n, s in lists_mod.LISTS.items()}
    monkeypatch.setattr(lists_mod, "LISTS", specs)
    yield base, routes, httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.network
def test_update_downloads_checks_converts_and_is_used_from_then_on(datagouv, shared_data):
    _, _, httpd = datagouv
    r = CliRunner().invoke(main, ["listes", "--mettre-a-jour"])
    assert r.exit_code == 0, r.output
    assert "ort : mise à jour — dernière actualisation 2024-09-18, 2290 lignes" in r.output
    assert "acv : mise à jour — publié sur data.gouv.fr le 2025-04-02, 244 lignes" in r.output
    # the very file the embedded copy was made from (same sha256): its known vintage, not today
    assert "pvd : mise à jour — liste ANCT du 2021-01-22, 1607 lignes" in r.output
    assert "1 ligne(s) en erreur" in r.output  # the real PVD snapshot's bad row, kept and reported
    assert f"qpv : mise à jour — téléchargé le {dt.date.today()}, 824 lignes" in r.output
    httpd.shutdown()  # from now on, no network: the converted copies are read from the cache
    settings.offline = True
    lists = load_lists()
    for name in snapshot.UPDATABLE:
        assert lists.info[name].copy.startswith("mise à jour le"), name
        assert Path(lists.info[name].path).is_relative_to(settings.cache_dir)
    assert lists.info["acv_arrete"].copy == "intégrée"  # fixed by the arrêté: never replaced
    assert lists.rows("ort", "62907")[0]["date_signature"] == dt.date(2023, 1, 18)
    lists_mod._LOADED.clear()
    raw = load_lists(shared_data)
    for name in ("ort", "pvd", "qpv", "communes"):
        pd.testing.assert_frame_equal(lists[name], raw[name])
    later = read_acv(shared_data / ACV_LATER, report=ValidationReport("t"), resolve=raw.resolve)
    pd.testing.assert_frame_equal(lists["acv"], later)
    assert lists.rows("acv", "62498")[0]["id_acv"] == "ACV113"
    r = CliRunner().invoke(main, ["eligibility", "--commune", "62907", "--date", "2024-01-01"])
    assert r.exit_code == 0, r.output
    assert "dernière actualisation 18/09/2024 (copie mise à jour le" in r.output
    shown = CliRunner().invoke(main, ["listes"]).output
    assert "copie mise à jour le" in shown and "copie intégrée" in shown


@pytest.mark.network
def test_bad_downloads_leave_the_previous_copy_in_use(datagouv, shared_data):
    base, routes, _ = datagouv
    ort_csv = (shared_data / "ort-anct/ort-suivi-anct-national.csv").read_text(encoding="utf-8")
    first_rows = "\n".join(ort_csv.splitlines()[:40])
    # ORT: a column renamed; PVD: a header alone; QPV: gone (404); ACV: a page of HTML.
    routes["/bad/ort.csv"] = ort_csv.replace("Code commune", "Code_Com", 1).encode()
    routes["/bad/pvd.csv"] = b"insee_com,lib_com,id_pvd,date_signature\n"
    routes["/bad/acv.geojson"] = b"<html><body>Maintenance</body></html>"
    routes["/short/ort.csv"] = first_rows.encode()
    specs = dict(lists_mod.LISTS)
    specs["ort"] = replace(specs["ort"], url=f"{base}/bad/ort.csv")
    specs["pvd"] = replace(specs["pvd"], url=f"{base}/bad/pvd.csv")
    specs["qpv"] = replace(specs["qpv"], url=f"{base}/files/absent.geojson")
    specs["acv"] = replace(specs["acv"], url=f"{base}/bad/acv.geojson")
    lists_mod.LISTS.clear()  # the fixture's monkeypatch restores the module attribute afterwards
    lists_mod.LISTS.update(specs)
    r = CliRunner().invoke(main, ["listes", "--mettre-a-jour"])
    assert r.exit_code == 1
    out = r.output
    assert "ort : refusée" in out and "« Code commune » absente" in out and "Code_Com" in out
    assert "la copie intégrée (dernière actualisation 2024-09-18) reste en service" in out
    assert "pvd : refusée — aucune ligne utilisable" in out
    assert "qpv : refusée" in out and "404" in out
    assert "acv : refusée" in out
    assert "communes : mise à jour" in out  # the good one is kept
    assert "Traceback" not in out
    lists = load_lists()
    assert lists.info["ort"].copy == "intégrée" and lists.info["communes"].copy.startswith("mise à jour")
    # A list cut short (40 of 2 290 rows) is refused too, and the copy in use stays.
    specs["ort"] = replace(specs["ort"], url=f"{base}/short/ort.csv")
    lists_mod.LISTS.update(specs)
    outcomes = {o.name: o for o in update_lists(("ort",))}
    assert (
        not outcomes["ort"].ok
        and "2\u202f251 ligne(s) en moins sur 2\u202f290 (98,3\xa0%)" in outcomes["ort"].message
    )
    lists_mod._LOADED.clear()
    assert load_lists().info["ort"].copy == "intégrée"


def _truncated_ort(shared_data, keep: float) -> tuple[bytes, list[dict]]:
    """The real ORT follow-up with only its first ``keep`` share of rows (csv module), and the
    rows cut off."""
    import csv
    import io

    text = (shared_data / "ort-anct/ort-suivi-anct-national.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    # The row updated last stays: the cut copy speaks for the same date as the copy in use.
    latest = max(rows, key=lambda r: dt.datetime.strptime(r["Dernière actualisation"], "%d-%m-%Y %H:%M"))
    n = round(len(rows) * keep)
    kept = rows[:n] if any(r is latest for r in rows[:n]) else [*rows[: n - 1], latest]
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(kept)
    return out.getvalue().encode("utf-8"), [r for r in rows if not any(r is k for k in kept)]


def _point_ort_to(datagouv, path: str) -> None:
    base, _, _ = datagouv
    lists_mod.LISTS["ort"] = replace(lists_mod.LISTS["ort"], url=f"{base}{path}")


def _signed_cut(cut: list[dict]) -> str:
    """A commune whose only row, « Signée », is in the part cut off."""
    from collections import Counter

    counts = Counter(r["Code commune"] for r in cut)
    return next(
        r["Code commune"] for r in cut if r["Signée ?"] == "Signée" and counts[r["Code commune"]] == 1
    )


@pytest.mark.network
def test_a_truncated_ort_table_is_refused_and_the_copy_in_use_stays(datagouv, shared_data):
    """45 % of the rows missing: refused (the old guard took anything above 50 %)."""
    _, routes, _ = datagouv
    routes["/cut/ort.csv"], cut = _truncated_ort(shared_data, 0.55)
    _point_ort_to(datagouv, "/cut/ort.csv")
    code = _signed_cut(cut)
    before = (snapshot.cache_folder() / snapshot.MANIFEST).is_file()
    (outcome,) = update_lists(("ort",))
    assert outcome.status == "refusée" and not outcome.ok
    msg = outcome.message
    assert "« Suivi national des ORT (DGALN/ANCT) »" in msg
    assert f"{fmt.number(len(cut))} ligne(s) en moins sur 2\u202f290 (45,0\xa0%)" in msg
    assert "avec une ORT signée perdue(s)" in msg and "ort listes --mettre-a-jour --accepter-baisse" in msg
    assert "la copie intégrée (dernière actualisation 2024-09-18) reste en service" in msg
    assert outcome.drop.rows_lost == len(cut) and code in {c for c, _ in outcome.drop.signed_lost}
    assert (snapshot.cache_folder() / snapshot.MANIFEST).is_file() == before  # nothing written
    lists_mod._LOADED.clear()
    lists = load_lists()
    assert lists.info["ort"].copy == "intégrée" and len(lists["ort"]) == 2290
    assert lists.rows("ort", code)[0]["signee"] == "signee"
    r = CliRunner().invoke(main, ["listes", "--mettre-a-jour"])
    assert r.exit_code == 1 and "ort : refusée" in r.output and "Traceback" not in r.output


@pytest.mark.network
def test_accepter_baisse_keeps_a_smaller_list_and_revenir_restores_the_previous_copy(datagouv, shared_data):
    _, routes, _ = datagouv
    routes["/cut/ort.csv"], cut = _truncated_ort(shared_data, 0.55)
    code = _signed_cut(cut)
    # First a full update (downloaded copy 1), then the truncated one, accepted (copy 2).
    (first,) = update_lists(("ort",), today=dt.date(2026, 12, 1))
    assert first.ok and first.drop is not None and not first.drop.anything_lost
    _point_ort_to(datagouv, "/cut/ort.csv")
    r = CliRunner().invoke(main, ["listes", "--mettre-a-jour", "--accepter-baisse", "--json"])
    doc = json.loads(r.output)
    (ort,) = [o for o in doc["mise_a_jour"] if o["liste"] == "ort"]
    assert ort["statut"] == "mise à jour" and "baisse acceptée (--accepter-baisse)" in ort["message"]
    assert "ort listes --revenir" in ort["message"] and ort["pertes"]["lignes_perdues"] == len(cut)
    lists_mod._LOADED.clear()
    assert len(load_lists()["ort"]) == 2290 - len(cut) and load_lists().rows("ort", code) == []
    shown = CliRunner().invoke(main, ["listes"]).output
    assert "copie précédente gardée : copie mise à jour le 2026-12-01 (dernière actualisation" in shown
    assert "2\u202f290 lignes) ; « ort listes --revenir » la rétablit" in shown
    manifest = snapshot.read_manifest(snapshot.cache_folder())
    previous = manifest["listes"]["ort"]["precedente"]
    assert (
        previous["mise_a_jour"] == "2026-12-01" and (snapshot.cache_folder() / previous["fichier"]).is_file()
    )
    # --revenir: the full downloaded copy is back, then (its own previous) nothing more to undo.
    r = CliRunner().invoke(main, ["listes", "--revenir"])
    assert r.exit_code == 0, r.output
    assert "ort : rétablie" in r.output and "copie mise à jour le 2026-12-01 rétablie" in r.output
    lists_mod._LOADED.clear()
    lists = load_lists()
    assert len(lists["ort"]) == 2290 and lists.info["ort"].copy == "mise à jour le 2026-12-01"
    assert lists.rows("ort", code)[0]["signee"] == "signee"
    r = CliRunner().invoke(main, ["listes", "--revenir"])
    assert (
        r.exit_code != 0 and "aucune copie précédente à rétablir" in r.output and "Traceback" not in r.output
    )


@pytest.mark.network
def test_revenir_after_a_first_update_goes_back_to_the_embedded_copy(datagouv, shared_data):
    _, routes, _ = datagouv
    routes["/cut/ort.csv"], _ = _truncated_ort(shared_data, 0.55)
    _point_ort_to(datagouv, "/cut/ort.csv")
    (o,) = update_lists(("ort",), accept_drop=True)
    assert o.ok
    (back,) = restore_lists()
    assert back.status == "rétablie" and "copie intégrée rétablie" in back.message
    lists_mod._LOADED.clear()
    assert load_lists().info["ort"].copy == "intégrée" and len(load_lists()["ort"]) == 2290
    assert not any(p.suffix == ".parquet" for p in snapshot.cache_folder().iterdir())


@pytest.mark.network
def test_a_list_address_that_is_not_http_is_refused(datagouv, shared_data):
    """file:// from a data.gouv.fr-like API answer, or as the list's own address: refused."""
    base, routes, _ = datagouv
    local = (shared_data / "ort-anct/ort-suivi-anct-national.csv").resolve().as_uri()
    doc = {"resources": [{"format": "csv", "url": local, "last_modified": "2030-01-01"}]}
    routes["/api/1/datasets/piege/"] = json.dumps(doc).encode()
    _point_ort_to(datagouv, "/api/1/datasets/piege/")
    (o,) = update_lists(("ort",))
    assert o.status == "refusée" and "n'est pas une adresse http(s)" in o.message and local in o.message
    assert "Suivi national des ORT" in o.message and "--lists" in o.message
    lists_mod.LISTS["ort"] = replace(lists_mod.LISTS["ort"], url=local)
    (o,) = update_lists(("ort",))
    assert o.status == "refusée" and "n'est pas une adresse http(s)" in o.message
    with pytest.raises(InputError, match=r"n'est pas une adresse http\(s\)"):
        lists_mod.fetch_list("ort", url="ftp://127.0.0.1/ort.csv")
    assert not (snapshot.cache_folder() / snapshot.MANIFEST).is_file()


def test_update_refuses_unknown_list_names():
    with pytest.raises(InputError, match="acv_arrete"):
        update_lists(("acv_arrete",))


# --- layout: no import loop between the list modules, even through function-level imports -------


def test_list_modules_import_each_other_without_loop_even_inside_functions():
    """lists → snapshot → lists was hidden by a function-level import: every import counts here."""
    import ast

    import geo.sources

    folder = Path(geo.sources.__file__).parent
    mods = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for m in mods:
        found = set()
        for node in ast.walk(ast.parse((folder / f"{m}.py").read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "geo.sources":
                found |= {a.name for a in node.names if a.name in mods}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("geo.sources."):
                found.add(node.module.split(".")[2])
        graph[m] = found - {m}
    assert {"list_model", "list_store"} <= graph["lists"] and "lists" in graph["snapshot"]
    assert not graph["list_model"] & {"lists", "snapshot", "list_store", "list_update"}
    assert not graph["list_store"] & {"lists", "snapshot", "list_update"}

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for n in graph[todo.pop()] - seen:
                seen.add(n)
                todo.append(n)
        return seen

    lists_modules = ("lists", "snapshot", "list_model", "list_store", "list_readers", "list_update")
    loops = [m for m in (*lists_modules, "denormandie", "arrete_report") if m in reach(m)]
    assert not loops, f"import loop through {loops}"
