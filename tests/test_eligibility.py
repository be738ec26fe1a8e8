"""Eligibility on the real national lists and on perimeters drawn over real parcels (91216).

Commune answers are checked against rows of ../shared/data read in place; parcel answers against
perimeters drawn in the test around three real Épinay-sur-Orge parcels, whose expected shares
are computed here with shapely, independently of the code under test.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner
from shapely.geometry import box

from geo.cli import main
from geo.cli.options import EXIT_BAD_INPUT
from geo.eligibility.answers import (
    VERDICTS,
    answers_to_frame,
    counts_by_departement,
    eligibility_for_commune,
    eligibility_for_parcels,
    eligible_communes,
)
from geo.eligibility.rules import load_rules
from geo.errors import InputError, ValidationFailed
from geo.perimeters import read_convention
from geo.sources.lists import load_lists

D = dt.date
INSIDE_IDU = "91216000AI0062"  # inside the centre-ville sector and the OPAH-RU
STRADDLING_IDU = "91216000AD0041"  # half of it in the centre-ville sector, > 200 m from INSIDE_IDU
OUTSIDE_IDU = "91216000AC0019"  # > 800 m from both perimeters
HAUTE_CORREZE = {"19028": "Bort-les-Orgues", "19148": "Neuvic", "19275": "Ussel", "23067": "La Courtine"}


@pytest.fixture(scope="module")
def lists(shared_data):
    return load_lists(shared_data)


@pytest.fixture(scope="module")
def rules():
    return load_rules()


def answer(answers, effect):
    (a,) = [a for a in answers if a.effect == effect]
    return a


def commune(code, day, lists, rules, **kw):
    return eligibility_for_commune(code, day, lists=lists, rules=rules, **kw)


# --- Denormandie from the national lists ------------------------------------------------------


def test_libercourt_eligible_through_its_ort_row_from_signature_day(lists, rules):
    yes = answer(commune("62907", D(2023, 6, 1), lists, rules), "denormandie")
    assert yes.verdict == "oui"
    assert "ORT signée le 2023-01-18" in yes.reason and "ligne 113 « 62907 Libercourt »" in yes.reason
    assert yes.reference.startswith("CGI art. 199 novovicies") and yes.evaluated_on == D(2023, 6, 1)
    assert any("ort-suivi-anct-national.csv" in d and "2024-09-18" in d for d in yes.data_used)
    assert any("regles-eligibilite.toml, version" in d for d in yes.data_used)
    assert "2027-12-31" in yes.period and any(c.startswith("période d'acquisition") for c in yes.caveats)
    # Boundary: the day before the signature it is not eligible through the ORT, and it is not ACV.
    for day in (D(2022, 12, 1), D(2023, 1, 17)):
        no = answer(commune("62907", day, lists, rules), "denormandie")
        assert no.verdict == "non"
        assert "absente de la liste Action cœur de ville" in no.reason and "après le" in no.reason
    assert answer(commune("62907", D(2023, 1, 18), lists, rules), "denormandie").verdict == "oui"


def test_lens_and_lievin_eligible_through_acv_from_the_start_of_the_scheme(lists, rules):
    for code in ("62498", "62510"):
        a = answer(commune(code, D(2019, 1, 1), lists, rules), "denormandie")
        assert a.verdict == "oui" and "Action cœur de ville" in a.reason and "acv-113" in a.reason
        # ORT homologated 2019-08-04 only: ACV alone decides in early 2019.
        assert answer(commune(code, D(2019, 1, 1), lists, rules), "anah_prioritaire").verdict == "non"
        assert any("centre de la commune" in c for c in a.caveats)  # 2019: centre only
        before = answer(commune(code, D(2018, 12, 31), lists, rules), "denormandie")
        assert before.verdict == "non" and "antérieur" in before.reason


def test_pvd_commune_with_unsigned_ort_is_not_eligible(lists, rules):
    code = "28348"  # Saint-Lubin-des-Joncherets: PVD, ORT « Non signée »
    assert lists.rows("pvd", code) and lists.rows("ort", code)[0]["signee"] == "non_signee"
    a = answer(commune(code, D(2024, 1, 1), lists, rules), "denormandie")
    assert a.verdict == "non" and "« Non signée »" in a.reason and "28348" in a.reason
    assert any("postérieure" in c for c in a.caveats)  # the list is older than the date asked
    assert answer(commune("62427", D(2024, 1, 1), lists, rules), "denormandie").verdict == "non"


def test_non_signed_row_with_a_date_keeps_its_status(lists, rules):
    a = answer(commune("2A247", D(2023, 6, 1), lists, rules), "denormandie")  # Porto-Vecchio
    assert a.verdict == "non" and any("2022-10-30" in c for c in a.caveats)
    assert a.code_insee == "2A247"


def test_haute_correze_convention_answered_commune_by_commune(lists, rules):
    for code, name in HAUTE_CORREZE.items():
        yes = answer(commune(code, D(2022, 10, 18), lists, rules), "denormandie")
        assert yes.verdict == "oui" and yes.commune == name
        assert f"« {code} {name} »" in yes.reason and "2022-10-18" in yes.reason
        assert answer(commune(code, D(2022, 10, 17), lists, rules), "denormandie").verdict == "non"
    assert lists.commune("23067")["departement"] == "23"


def test_signed_without_date_is_unknown_before_the_list_update(lists, rules):
    row = lists.rows("ort", "26108")[0]  # Crest: « Signée », no date, updated 09-02-2024
    assert row["date_signature"] is None
    assert answer(commune("26108", D(2023, 1, 1), lists, rules), "denormandie").verdict == "inconnu"
    later = answer(commune("26108", row["derniere_actualisation"], lists, rules), "denormandie")
    assert later.verdict == "oui" and "au plus tard" in later.reason


def test_former_commune_code_is_answered_with_a_caveat(lists, rules):
    a = answer(commune("62549", D(2023, 1, 1), lists, rules), "denormandie")
    assert a.verdict == "oui" and "62447" in a.commune
    assert any("commune déléguée de 62447" in c for c in a.caveats)


def test_denormandie_end_date_boundaries_and_override(lists, rules):
    assert answer(commune("62907", D(2027, 12, 31), lists, rules), "denormandie").verdict == "oui"
    after = answer(commune("62907", D(2028, 1, 1), lists, rules), "denormandie")
    assert after.verdict == "non" and "postérieur à la fin" in after.reason
    short = load_rules(denormandie_end=D(2026, 12, 31))
    cut = answer(commune("62907", D(2027, 1, 1), lists, short), "denormandie")
    assert cut.verdict == "non" and "2026-12-31" in cut.period and "option --denormandie-fin" in cut.period


@pytest.mark.parametrize(
    ("effect", "code", "first_day"),
    [("anah_prioritaire", "73065", D(2018, 11, 25)), ("autres_effets_ort", "73065", D(2018, 11, 25))],
)
def test_ort_level_rules_at_their_start(lists, rules, effect, code, first_day):
    """Chambéry's row says signed 2018-09-29: the ORT effects start with loi ELAN only."""
    before = answer(commune(code, first_day - dt.timedelta(days=1), lists, rules), effect)
    assert before.verdict == "non" and "antérieur" in before.reason
    at = answer(commune(code, first_day, lists, rules), effect)
    assert at.verdict in ("oui", "inconnu") and "2018-09-29" in at.reason


def test_perimeter_rules_without_perimeters(lists, rules):
    libercourt = commune("62907", D(2023, 6, 1), lists, rules)
    for effect in ("vir", "diif", "dispense_aec"):
        a = answer(libercourt, effect)
        assert a.verdict == "inconnu" and "--perimeters" in a.reason
    assert answer(libercourt, "opah_ru").verdict == "inconnu"
    before = commune("62907", D(2022, 6, 1), lists, rules)
    assert answer(before, "diif").verdict == "non" and "pas d'ORT signée" in answer(before, "diif").reason
    assert all(a.verdict in VERDICTS for a in libercourt)


def test_unknown_and_numeric_codes_are_refused(lists, rules):
    with pytest.raises(InputError, match="99999 inconnu"):
        commune("99999", D(2024, 1, 1), lists, rules)
    with pytest.raises(InputError, match="01004 et non 1004"):
        commune("1004", D(2024, 1, 1), lists, rules)


def test_anah_list_when_provided(shared_data, tmp_path, rules):
    """An Anah list of programmed operations (format of data.gouv dataset 66d87a77…, generated
    here): an OPAH-RU in force makes the commune answer depend on the perimeter; none → non."""
    from geo.sources.lists import locate_lists, read_lists

    anah = tmp_path / "anah.csv"
    anah.write_text(
        "code_insee;type_operation;nom_operation;date_debut;date_fin\n"
        "62907;OPAH-RU;OPAH-RU du centre de Libercourt;2024-01-01;2028-12-31\n"
        "62215;PIG;PIG départemental;2022-01-01;2026-12-31\n",
        encoding="utf-8",
    )
    with_anah = read_lists({**locate_lists(shared_data), "anah": anah})
    assert with_anah.info["anah"].rows == 2
    a = answer(commune("62907", D(2025, 3, 1), with_anah, rules), "opah_ru")
    assert a.verdict == "inconnu" and "OPAH-RU du centre de Libercourt" in a.reason and "ligne 2" in a.reason
    assert answer(commune("62907", D(2023, 6, 1), with_anah, rules), "opah_ru").verdict == "non"
    # Hénin-Beaumont: no ORT signed and no OPAH-RU in the Anah list → VIR is a firm "non".
    assert answer(commune("62427", D(2025, 3, 1), with_anah, rules), "vir").verdict == "non"
    assert answer(commune("62215", D(2025, 3, 1), with_anah, rules), "opah_ru").verdict == "non"


# --- national views ----------------------------------------------------------------------


def test_eligible_communes_of_a_departement_with_reasons_and_counts(lists, rules, shared_data):
    table = eligible_communes("denormandie", D(2025, 3, 1), lists=lists, rules=rules, departement="62")
    yes = table[table["verdict"] == "oui"].set_index("code_insee")
    assert yes.loc["62907", "via"] == "ORT" and "2023-01-18" in yes.loc["62907", "motif"]
    assert yes.loc["62498", "via"] == "ACV" and yes.loc["62498", "programme"] == "ACV"
    assert "62427" not in yes.index  # Hénin-Beaumont: « Non signée »
    counts = counts_by_departement(table).set_index("departement")
    assert counts.loc["62", "total"] == len(yes) == 34
    assert counts.loc["62", "ACV"] == 8  # the eight ACV towns of the Pas-de-Calais
    assert set(table["departement"]) == {"62"}


def test_rules_file_is_checked(tmp_path):
    bad = tmp_path / "regles.toml"
    bad.write_text(
        'version = "x"\n[[rules]]\nid = "a"\neffect = "A"\nlevel = "commune"\ncondition = "inventee"\n'
        'reference = "r"\n[[rules]]\nid = "b"\nlevel = "sector"\n'
    )
    with pytest.raises(ValidationFailed) as err:
        load_rules(bad)
    codes = {p.code for p in err.value.report.problems}
    assert codes == {"condition_inconnue", "champ_manquant"}
    assert {p.feature for p in err.value.report.problems} == {"règle 1 (a)", "règle 2 (b)"}


# --- parcels against perimeters drawn on real parcels ----------------------------------------


@pytest.fixture(scope="module")
def epinay(epinay_parcelles):
    from geo.sources.cadastre import read_parcels

    return read_parcels(epinay_parcelles)


def _write_convention(folder: Path, parcels, *, fictif: bool, signed: str) -> Path:
    """Centre-ville sector: INSIDE parcel + 10 m, and the western half of the STRADDLING parcel's
    bounding box; OPAH-RU (2024-01-01 → 2028-12-31): INSIDE parcel + 10 m. Lambert-93 → WGS84."""
    g = parcels.set_index("idu").geometry
    inside, strad = g[INSIDE_IDU], g[STRADDLING_IDU]
    x0, y0, _, y1 = strad.bounds
    centre = inside.buffer(10).union(box(x0 - 5, y0 - 5, strad.centroid.x, y1 + 5))
    perims = gpd.GeoDataFrame(
        {
            "id": ["centre-ville", "opah-ru-centre"],
            "type": ["secteur", "opah_ru"],
            "nom": ["Centre-ville", "OPAH-RU du centre"],
            "centre_ville": [True, False],
            "date_debut": [None, "2024-01-01"],
            "date_fin": [None, "2028-12-31"],
        },
        geometry=[centre, inside.buffer(10)],
        crs=parcels.crs,
    ).to_crs(4326)
    folder.mkdir(parents=True)
    (folder / "perimetres-initiale.geojson").write_text(perims.to_json(), encoding="utf-8")
    (folder / "convention.toml").write_text(
        f'nom = "ORT d\'essai"\nprogramme = "PVD"\ncommunes = ["91216"]\ndate_signature = {signed}\n'
        f'duree_ans = 12\nfictif = {str(fictif).lower()}\n[[versions]]\nid = "initiale"\n'
        f'libelle = "Convention initiale"\ndate_effet = {signed}\nfichier = "perimetres-initiale.geojson"\n',
        encoding="utf-8",
    )
    return folder


@pytest.fixture(scope="module")
def test_convention(tmp_path_factory, epinay):
    """A fictive convention signed 2018-11-01, so that every rule's start date can be crossed."""
    return _write_convention(
        tmp_path_factory.mktemp("perimetres") / "essai", epinay, fictif=True, signed="2018-11-01"
    )


def _parcel_answers(conv_dir, epinay, day, lists, rules):
    conv = read_convention(conv_dir)
    chosen = epinay[epinay["idu"].isin([INSIDE_IDU, STRADDLING_IDU, OUTSIDE_IDU])]
    answers = eligibility_for_parcels(
        chosen, conv.perimeters(day), day, lists=lists, rules=rules, convention=conv
    )
    return {(a.idu, a.effect): a for a in answers}


def test_inside_straddling_outside_give_oui_partiellement_non(test_convention, epinay, lists, rules):
    day = D(2025, 3, 1)
    got = _parcel_answers(test_convention, epinay, day, lists, rules)
    conv = read_convention(test_convention)
    centre = conv.perimeters(day).set_index("perimeter_id").geometry["centre-ville"]
    strad = epinay.set_index("idu").geometry[STRADDLING_IDU]
    share = shapely.intersection(strad, centre).area / strad.area
    assert 0.3 < share < 0.7
    for effect in ("vir", "diif", "dispense_aec"):
        assert got[(INSIDE_IDU, effect)].verdict == "oui" and got[
            (INSIDE_IDU, effect)
        ].share == pytest.approx(1)
        part = got[(STRADDLING_IDU, effect)]
        assert part.verdict == "partiellement" and part.share == pytest.approx(share, abs=1e-6)
        assert "Centre-ville" in part.reason and any("à cheval" in c for c in part.caveats)
        assert got[(OUTSIDE_IDU, effect)].verdict == "non" and got[(OUTSIDE_IDU, effect)].share == 0
    assert (
        got[(INSIDE_IDU, "opah_ru")].verdict == "oui"
        and "OPAH-RU du centre" in got[(INSIDE_IDU, "opah_ru")].reason
    )
    assert got[(STRADDLING_IDU, "opah_ru")].verdict == "non"
    aec = got[(INSIDE_IDU, "dispense_aec")]
    assert any("artificialisation" in c for c in aec.caveats) and any("5 000 m²" in c for c in aec.caveats)
    assert any("version « Convention initiale »" in d for d in aec.data_used)
    assert aec.reference.startswith("Code de commerce L752-1-1")
    # A fictive convention never makes a real commune eligible to Denormandie.
    denorm = got[(INSIDE_IDU, "denormandie")]
    assert denorm.verdict == "non" and any("fictive" in c for c in denorm.caveats)


def test_parcel_rules_at_their_date_boundaries(test_convention, epinay, lists, rules):
    """VIR/DIIF start 2019-05-24, the AEC exemption 2018-11-25, the OPAH-RU runs 2024-01-01 → 2028-12-31."""
    cases = [
        ("vir", D(2019, 5, 23), "non"),
        ("vir", D(2019, 5, 24), "oui"),
        ("diif", D(2019, 5, 23), "non"),
        ("diif", D(2019, 5, 24), "oui"),
        ("dispense_aec", D(2018, 11, 24), "non"),
        ("dispense_aec", D(2018, 11, 25), "oui"),
        ("opah_ru", D(2023, 12, 31), "non"),
        ("opah_ru", D(2024, 1, 1), "oui"),
        ("opah_ru", D(2028, 12, 31), "oui"),
        ("opah_ru", D(2029, 1, 1), "non"),
    ]
    for effect, day, expected in cases:
        a = _parcel_answers(test_convention, epinay, day, lists, rules)[(INSIDE_IDU, effect)]
        assert a.verdict == expected, (effect, day, a.reason)
    late = _parcel_answers(test_convention, epinay, D(2029, 1, 1), lists, rules)[(INSIDE_IDU, "opah_ru")]
    assert any("n'est pas en vigueur" in c for c in late.caveats)


def test_real_convention_counts_for_a_commune_missing_from_the_list(tmp_path, epinay, lists, rules):
    folder = _write_convention(tmp_path / "reelle", epinay, fictif=False, signed="2023-03-01")
    conv = read_convention(folder)
    a = answer(commune("91216", D(2024, 1, 1), lists, rules, convention=conv), "denormandie")
    assert a.verdict == "oui" and "convention d'ORT « ORT d'essai » signée le 2023-03-01" in a.reason
    assert any("suivi national" in c for c in a.caveats)
    assert (
        answer(commune("91216", D(2023, 2, 28), lists, rules, convention=conv), "denormandie").verdict
        == "non"
    )


def test_no_perimeter_version_in_force_answers_non(epinay, lists, rules):
    chosen = epinay[epinay["idu"] == INSIDE_IDU]
    answers = eligibility_for_parcels(chosen, None, D(2018, 1, 1), lists=lists, rules=rules)
    frame = answers_to_frame(answers).set_index("regle")
    assert frame.loc["dispense_aec", "verdict"] == "non"
    assert set(frame.columns) >= {"verdict", "part", "motif", "reference", "date_evaluee", "donnees"}


# --- the CLI end to end ------------------------------------------------------------------


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def test_cli_commune_text(shared_data):
    r = run("eligibility", "--commune", "62907", "--date", "2023-06-01", "--lists", shared_data)
    assert r.exit_code == 0, r.output
    assert "62907 Libercourt" in r.output and "→ OUI : ORT signée le 2023-01-18" in r.output
    assert "Denormandie : acquisitions du 2019-01-01 au 2027-12-31" in r.output
    assert "référence : CGI art. 199 novovicies" in r.output and "QN06248M" in r.output


def test_cli_commune_json(shared_data):
    r = run("eligibility", "--commune", "62498", "--date", "2024-06-01", "--json", "--lists", shared_data)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["date"] == "2024-06-01" and doc["regles"]["denormandie_fin"] == "2027-12-31"
    assert {x["nom"] for x in doc["listes"]} >= {"ort", "acv", "communes"}
    (res,) = doc["resultats"]
    assert res["code_insee"] == "62498" and res["contexte"]["programmes"] == ["ACV (acv-113)"]
    rep = {x["regle"]: x for x in res["reponses"]}
    assert rep["denormandie"]["verdict"] == "oui" and "acv-113" in rep["denormandie"]["motif"]
    for key in (
        "verdict",
        "part",
        "motif",
        "reference",
        "date_evaluee",
        "periode",
        "donnees",
        "mises_en_garde",
    ):
        assert key in rep["vir"]


def test_cli_bad_codes_exit_with_a_message(shared_data):
    r = run("eligibility", "--commune", "1004", "--lists", shared_data)
    assert r.exit_code == EXIT_BAD_INPUT and "01004" in r.output and "5 caractères" in r.output
    r = run("eligibility", "--commune", "99999", "--lists", shared_data)
    assert r.exit_code == EXIT_BAD_INPUT and "99999 inconnu" in r.output
    assert run("eligibility", "--lists", shared_data).exit_code == 2  # nothing asked


def test_cli_parcels_with_perimeters(test_convention, epinay_parcelles, shared_data):
    r = run(
        "eligibility",
        INSIDE_IDU,
        "AD41",
        OUTSIDE_IDU,
        "-p",
        test_convention,
        "--cadastre",
        epinay_parcelles,
        "--date",
        "2025-03-01",
        "--json",
        "--lists",
        shared_data,
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["convention"]["version"] == "initiale" and doc["convention"]["fictif"] is True
    verdicts = {(x["idu"], y["regle"]): y for x in doc["resultats"] for y in x["reponses"]}
    assert verdicts[(INSIDE_IDU, "dispense_aec")]["verdict"] == "oui"
    assert verdicts[(STRADDLING_IDU, "vir")]["verdict"] == "partiellement"
    assert 0.3 < verdicts[(STRADDLING_IDU, "vir")]["part"] < 0.7
    assert verdicts[(OUTSIDE_IDU, "diif")]["verdict"] == "non"


def test_cli_parcel_without_perimeters_gets_commune_answers(shared_data):
    r = run("eligibility", "62907000AB0685", "--date", "2023-06-01", "--lists", shared_data)
    assert r.exit_code == 0, r.output
    assert "62907000AB0685 — commune 62907 Libercourt" in r.output and "→ OUI" in r.output
    assert "aucun dossier de périmètres" in r.output


def test_cli_batch_file_and_output(tmp_path, shared_data):
    demandes = tmp_path / "demandes.csv"
    demandes.write_text("idu;code_insee\n;62907\n;1004\n;2A004\n;99999\n62907000AB0685;\n", encoding="utf-8")
    out = tmp_path / "reponses.csv"
    r = run("eligibility", "--file", demandes, "--date", "2025-03-01", "-o", out, "--lists", shared_data)
    assert r.exit_code == 0, r.output
    assert "1004" in r.output and "zéro initial rétabli" in r.output  # a spreadsheet's number, repaired
    assert "99999" in r.output  # reported, not silently dropped
    table = pd.read_csv(out, dtype=str)
    assert set(table["code_insee"]) == {"62907", "01004", "2A004"}
    assert len(table) == 4 * 7 and set(table["verdict"]) <= set(VERDICTS)
    again = run("eligibility", "--file", demandes, "-o", out, "--lists", shared_data)
    assert again.exit_code != 0 and "--force" in again.output


def test_cli_denormandie_end_override(shared_data):
    r = run(
        "eligibility",
        "--commune",
        "62907",
        "--date",
        "2027-06-01",
        "--denormandie-fin",
        "2026-12-31",
        "--json",
        "--lists",
        shared_data,
    )
    doc = json.loads(r.output)
    rep = {x["regle"]: x for x in doc["resultats"][0]["reponses"]}
    assert (
        rep["denormandie"]["verdict"] == "non" and "option --denormandie-fin" in rep["denormandie"]["periode"]
    )
    assert doc["regles"]["denormandie_fin"] == "2026-12-31"


def test_cli_communes_eligible_and_report(shared_data):
    r = run(
        "communes",
        "--eligible",
        "denormandie",
        "--date",
        "2025-03-01",
        "--dep",
        "62",
        "--json",
        "--lists",
        shared_data,
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    codes = {c["code_insee"]: c for c in doc["communes"]}
    assert "62907" in codes and codes["62498"]["via"] == "ACV" and "62427" not in codes
    assert {c["departement"]: c["total"] for c in doc["comptes"]}["62"] == 34
    text = run(
        "communes",
        "--eligible",
        "denormandie",
        "--date",
        "2025-03-01",
        "--dep",
        "62",
        "--report",
        "--lists",
        shared_data,
    )
    assert text.exit_code == 0
    assert "62907 Libercourt (62, PVD) — ORT signée le 2023-01-18" in text.output
    assert "acv_sans_ort" in text.output and "Par motif : ACV 8, ORT signée 26" in text.output
    assert run("communes", "--lists", shared_data).exit_code == 2
