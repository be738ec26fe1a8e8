"""The application layer (geo.app): typed answers, the one date parser, per-call settings,
several threads at once — on the embedded demo and on real parcels of Épinay-sur-Orge."""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
from click.testing import CliRunner

from geo import app, settings
from geo.errors import InputError

DEMO_PARCEL = "62999000AB0012"


@pytest.fixture(scope="module")
def demo():
    return app.open_territory("demo")


@pytest.fixture(scope="module")
def epinay(epinay_ort):
    return app.open_territory(epinay_ort["folder"], address_file=epinay_ort["addresses"])


def _statuts(answer, idu):
    parcel = next(p for p in answer.parcelles if p.idu == idu)
    return {p.perimetre_id: (p.statut, p.part) for p in parcel.perimetres}


# --- answers -----------------------------------------------------------------------------------


def test_every_form_a_person_types_gives_the_same_parcel(demo):
    answer = app.answer_parcels(
        [DEMO_PARCEL, "AB 12", "62999 AB 12", "ab0012"], territoire=demo, date="2024-09-01"
    )
    assert [p.idu for p in answer.parcelles] == [DEMO_PARCEL] and answer.rejetes == []
    assert answer.version == "avenant-1" and answer.validite.convention_en_vigueur is True
    cv = next(p for p in answer.parcelles[0].perimetres if p.perimetre_id == "centre-ville")
    assert cv.statut == "à cheval" and 0 < cv.part < 1
    assert cv.surface_m2 == pytest.approx(cv.part * answer.parcelles[0].contenance, rel=0.02)
    data = json.loads(answer.model_dump_json())
    assert set(data) >= {"convention", "date", "version", "validite", "parcelles", "rejetes", "adresses"}
    assert data["date"] == "2024-09-01" and data["version_date"] == "2024-07-01"


def test_bad_ids_are_answers_not_errors(demo):
    answer = app.answer_parcels(["62999000ZZ0001", "12"], territoire=demo, date="2024-09-01")
    assert answer.parcelles == [] and sorted(r.entree for r in answer.rejetes) == ["12", "62999000ZZ0001"]
    assert all(r.erreur for r in answer.rejetes)


def test_one_date_parser_for_both_forms(demo):
    iso = app.answer_parcels([DEMO_PARCEL], territoire=demo, date="2024-06-01")
    french = app.answer_parcels([DEMO_PARCEL], territoire=demo, date="01/06/2024")
    assert iso.date == french.date == dt.date(2024, 6, 1)
    assert iso.model_dump() == french.model_dump()
    assert app.parse_date("01/06/2024") == app.parse_date(" 2024-06-01 ") == dt.date(2024, 6, 1)
    for bad in ("2024-13-01", "31/02/2024", "hier"):
        with pytest.raises(InputError, match="n'est pas une date.*AAAA-MM-JJ.*JJ/MM/AAAA"):
            app.parse_date(bad)


def test_cli_json_is_the_model(demo):
    from geo.cli import main

    r = CliRunner().invoke(main, ["check", "AB 12", "-p", "demo", "--date", "01/09/2024", "--json"])
    assert r.exit_code == 0, r.output
    answer = app.answer_parcels(["AB 12"], territoire=demo, date="2024-09-01")
    assert json.loads(r.stdout) == answer.model_dump(mode="json")
    app.Verification.model_validate_json(r.stdout)  # the CLI's JSON reads back as the model


def test_the_model_is_a_json_schema():
    schema = app.Verification.model_json_schema()
    perimetre = schema["$defs"]["PerimetreParcelle"]["properties"]
    assert {"perimetre_id", "statut", "part", "surface_m2"} <= set(perimetre)
    assert perimetre["statut"]["enum"] == ["incluse", "à cheval", "hors périmètre"]


# --- threads and settings ----------------------------------------------------------------------


def test_concurrent_calls_with_different_dates_and_conventions(demo, epinay, epinay_ort):
    """Two dates of one convention and another convention, asked at once from 8 threads:
    each call gets the answer it gets alone."""
    asks = [
        (demo, DEMO_PARCEL, "2024-06-30"),  # before the avenant: version initiale
        (demo, DEMO_PARCEL, "2024-09-01"),
        (epinay, epinay_ort["idu"], "2023-06-01"),  # before the OPAH-RU of the avenant
        (epinay, epinay_ort["idu"], "2025-03-01"),
    ]
    alone = [app.answer_parcels([i], territoire=t, date=d) for t, i, d in asks]
    assert alone[0].version == "initiale" and alone[1].version == "avenant-1"
    assert "opah-ru" not in _statuts(alone[2], epinay_ort["idu"])
    assert _statuts(alone[3], epinay_ort["idu"])["opah-ru"][0] == "à cheval"
    barrier = threading.Barrier(8)

    def ask(k):
        t, idu, day = asks[k % 4]
        barrier.wait()
        return k, app.answer_parcels([idu], territoire=t, date=day)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(ask, range(8)))
    for k, answer in results:
        assert answer.model_dump() == alone[k % 4].model_dump(), k


def test_settings_of_a_call_stay_in_that_call(demo):
    """settings=Settings(offline=True) holds for the call's thread only; nothing global moves."""
    before = settings.current()
    seen = {}
    inside = threading.Event()
    release = threading.Event()

    def offline_call():
        with settings.use(app.Settings(offline=True, progress=False, csv_format="international")):
            seen["call"] = settings.current()
            inside.set()
            release.wait(10)
            return app.answer_parcels([DEMO_PARCEL], territoire=demo, date="2024-09-01")

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(offline_call)
        inside.wait(10)
        seen["other"] = settings.current()  # this thread, while the call runs
        release.set()
        assert future.result().parcelles
    assert seen["call"].offline is True and seen["call"].csv_format == "international"
    assert seen["other"] == before and settings.current() == before
    assert settings.offline is False and settings.csv_format == "fr"


def test_csv_dialect_is_per_call(demo):
    answer = app.answer_parcels([DEMO_PARCEL], territoire=demo, date="2024-09-01")
    fr = app.verification_bytes(answer)
    intl = app.verification_bytes(answer, settings=app.Settings(csv_format="international"))
    assert fr.startswith(b"\xef\xbb\xbf") and b";" in fr.splitlines()[0]
    assert not intl.startswith(b"\xef\xbb\xbf") and b"," in intl.splitlines()[0]
    assert settings.csv_format == "fr"
    xlsx = app.verification_bytes(answer, format="xlsx")
    assert xlsx[:2] == b"PK"
    sheet = pd.read_excel(io.BytesIO(xlsx), header=None, dtype=str)
    assert sheet.apply(lambda col: col.str.contains(DEMO_PARCEL, na=False)).any().any()


def test_cli_flags_change_no_global(demo_copy):
    from geo.cli import main

    r = CliRunner().invoke(
        main, ["--offline", "--quiet", "check", DEMO_PARCEL, "-p", demo_copy, "--csv-international",
               "-o", demo_copy / "r.csv"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (demo_copy / "r.csv").read_bytes()[:3] != b"\xef\xbb\xbf"  # the flag held for the run
    assert settings.offline is False and settings.progress is False  # conftest's value, untouched
    assert settings.csv_format == "fr"


# --- addresses, batch files --------------------------------------------------------------------


def test_address_found_then_answered(epinay, epinay_ort):
    answer = app.answer_address("12 rue Jean Jaurès", territoire=epinay, date="2025-03-01")
    (found,) = answer.adresses
    assert found.statut == "trouvée" and found.idu == epinay_ort["idu"] and found.source.startswith("fichier")
    assert [p.idu for p in answer.parcelles] == [epinay_ort["idu"]]


def test_address_not_found_gives_no_parcel(epinay):
    answer = app.answer_address("12 rue des Lilas", territoire=epinay, date="2025-03-01")
    (found,) = answer.adresses
    assert found.statut == "introuvable" and found.idu is None and found.message
    assert answer.parcelles == []
    with pytest.raises(InputError, match="adresse vide"):
        app.answer_address("  ", territoire=epinay)


def test_batch_file_keeps_the_planners_columns(epinay, tmp_path):
    rows = tmp_path / "demandes.csv"
    rows.write_text(
        "idu;adresse;note\n91216 AC 100;;premier\n;13 rue Jean Jaurès;second\n;12 rue des Lilas;troisième\n",
        encoding="utf-8",
    )
    answer = app.check_file(rows, territoire=epinay, date="2025-03-01")
    assert {p.idu for p in answer.parcelles} == {"91216000AC0100", "91216000AC0011"}
    assert [a.statut for a in answer.adresses] == ["trouvée", "introuvable"]
    assert "premier" in set(answer.table["note"])
    text = app.verification_bytes(answer).decode("utf-8-sig")
    assert "premier" in text and "91216000AC0100" in text


# --- documents ---------------------------------------------------------------------------------


def test_note_pdf_bytes(demo):
    pdf = app.note_pdf("AB 12", territoire=demo, date="2024-09-01")
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    with pytest.raises(InputError, match="pas de note"):
        app.note_pdf("62999000ZZ0001", territoire=demo, date="2024-09-01")


def test_map_and_diff(demo, tmp_path):
    carte = app.write_map(tmp_path / "demo.html", territoire=demo, date="2024-09-01")
    assert carte.chemin.is_file() and carte.octets == carte.chemin.stat().st_size and not carte.reseau
    assert "Ormeval" in carte.provenance and carte.resume[-1].startswith("Carte écrite")
    diff = app.diff_versions(territoire=demo, tables=[tmp_path / "avenant.csv"])
    assert (diff.avant, diff.apres) == ("initiale", "avenant-1")
    gare = next(p for p in diff.perimetres if p.perimetre_id == "gare")
    assert gare.entrent > 0 and (tmp_path / "avenant.csv").is_file()
    assert len(diff.table) == sum(p.entrent + p.sortent + p.part_modifiee for p in diff.perimetres)


def test_notes_of_two_dates_at_once(demo):
    """Two notes drawn from two threads (matplotlib's settings are global: drawn in turn)."""
    with ThreadPoolExecutor(2) as pool:
        before, after = pool.map(
            lambda day: app.note_pdf(DEMO_PARCEL, territoire=demo, date=day), ["2024-06-30", "2024-09-01"]
        )
    assert before.startswith(b"%PDF") and after.startswith(b"%PDF") and before != after


def test_perimeters_and_warnings_kept_per_date_never_shared_across_dates(demo_copy):
    territory = app.open_territory(demo_copy)
    june = territory.perimeters_at(dt.date(2024, 6, 30))
    assert territory.perimeters_at(dt.date(2024, 6, 30)) is june  # computed once
    september = territory.perimeters_at(dt.date(2024, 9, 1))
    assert june.attrs["version"] == "initiale" and september.attrs["version"] == "avenant-1"
    first = app.answer_parcels([DEMO_PARCEL], territoire=territory, date="2024-09-01")
    again = app.answer_parcels([DEMO_PARCEL], territoire=territory, date="2024-09-01")
    assert first.model_dump() == again.model_dump()
    assert territory.perimeters_at(dt.date(2024, 9, 1)) is september


def test_a_numeric_numero_is_text_in_the_answer(demo):
    """A cadastre read from a GeoPackage may hold the numéro as a number: the answer stays valid."""
    parcels = demo.parcels.assign(numero=demo.parcels["numero"].astype(int))
    territory = app.Territoire(demo.convention, parcels)
    answer = app.answer_parcels(["AB 12"], territoire=territory, date="2024-09-01")
    assert answer.parcelles[0].numero == "12" and answer.parcelles[0].section == "AB"


def test_two_csv_dialects_from_two_threads_at_once(demo):
    answer = app.answer_parcels([DEMO_PARCEL], territoire=demo, date="2024-09-01")
    chosen = [app.Settings(csv_format="fr"), app.Settings(csv_format="international")] * 4
    barrier = threading.Barrier(len(chosen))

    def table(s):
        barrier.wait()
        return app.verification_bytes(answer, settings=s)

    with ThreadPoolExecutor(len(chosen)) as pool:
        tables = list(pool.map(table, chosen))
    for s, data in zip(chosen, tables, strict=True):
        french = s.csv_format == "fr"
        assert data.startswith(b"\xef\xbb\xbf") is french
        assert (b";" in data.splitlines()[0]) is french
