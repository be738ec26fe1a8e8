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
import pytest
import shapely
from click.testing import CliRunner
from excel import read_excel_csv
from shapely.geometry import box

from geo import embedded
from geo.cli import main
from geo.cli.options import EXIT_BAD_INPUT
from geo.eligibility.answers import (
    NOT_DIGITISED,
    VERDICTS,
    answers_to_frame,
    counts_by_departement,
    eligibility_for_commune,
    eligibility_for_parcels,
    eligible_communes,
    signed_ort_communes,
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
    lists = load_lists(shared_data)
    # Denormandie's ACV route: the communes of the arrêté of 26 March 2019 (the 222 ACV
    # conventions of 2018), derived by the lists reader from the real ACV list.
    assert "acv_arrete" in lists.tables and len(lists.acv_arrete) >= 222
    return lists


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
    assert "ORT signée le 18/01/2023" in yes.reason and "ligne 113 « 62907 Libercourt »" in yes.reason
    assert yes.reference.startswith("CGI art. 199 novovicies") and yes.evaluated_on == D(2023, 6, 1)
    assert any("ort-suivi-anct-national.csv" in d and "18/09/2024" in d for d in yes.data_used)
    assert any("regles-eligibilite.toml, version" in d and "vérifié le" in d for d in yes.data_used)
    assert "31/12/2027" in yes.period  # said once, as the rule's period (not again as a caveat)
    assert {r["voie"]: r["verdict"] for r in yes.routes} == {
        "liste de l'arrêté du 26 mars 2019": "non",
        "ORT conclue": "oui",
        "copropriété en difficulté": "non",  # opened on 2024-04-11 only
    }
    # Boundary: the day before the signature it is not eligible through the ORT, and it is not ACV.
    for day in (D(2022, 12, 1), D(2023, 1, 17)):
        no = answer(commune("62907", day, lists, rules), "denormandie")
        assert no.verdict == "non"
        assert "arrêté du 26 mars 2019" in no.reason and "après le" in no.reason
    assert answer(commune("62907", D(2023, 1, 18), lists, rules), "denormandie").verdict == "oui"


def test_lens_and_lievin_eligible_through_the_arrete_from_the_start_of_the_scheme(lists, rules):
    for code in ("62498", "62510"):
        a = answer(commune(code, D(2019, 1, 1), lists, rules), "denormandie")
        # 2019 acquisitions: the centre only, never a plain "oui" (issue 22, item 3).
        assert a.verdict == "partiellement" and a.verdict_label == "partiellement (centre seulement)"
        assert "liste de l'arrêté du 26 mars 2019" in a.reason and "communes-denormandie.yaml" in a.reason
        assert "centre de la commune" in a.reason
        assert answer(commune(code, D(2020, 1, 1), lists, rules), "denormandie").verdict == "oui"
        # ORT homologated 2019-08-04 only, but the 2018 ACV convention already carried the Anah priority.
        prio = answer(commune(code, D(2019, 1, 1), lists, rules), "anah_prioritaire")
        assert (
            prio.verdict == "oui" and prio.verdict_text() == "OUI (priorité de programmation, non opposable)"
        )
        assert "20/09/2018" in prio.reason
        assert (
            answer(commune(code, D(2019, 1, 1), lists, rules), "information_fermeture_service").verdict
            == "non"
        )
        before = answer(commune(code, D(2018, 12, 31), lists, rules), "denormandie")
        assert before.verdict == "non" and "antérieur" in before.reason


def test_original_acv_commune_signed_in_2019_is_eligible_from_2019_01_01(lists, rules):
    """Ambérieu-en-Bugey (acv-008): ACV convention 24/09/2019, ORT 2020-10-14; on the arrêté."""
    code = "01004"
    (acv,) = lists.rows("acv", code)
    assert acv["id_acv"] == "acv-008" and acv["date_signature"] == D(2019, 9, 24)
    a = answer(commune(code, D(2019, 1, 1), lists, rules), "denormandie")
    assert a.verdict == "partiellement" and "arrêté du 26 mars 2019" in a.reason  # centre only in 2019
    assert any("dès le 01/01/2019" in c for c in a.caveats)
    # The ACV programme date only matters for the Anah priority of its convention.
    assert answer(commune(code, D(2019, 3, 1), lists, rules), "anah_prioritaire").verdict == "non"


def test_later_acv_entrant_is_eligible_only_through_its_ort(lists, rules):
    """Castelsarrasin (acv-223): ACV convention 18/01/2024, ORT 2024-06-10, not on the arrêté."""
    code = "82033"
    (acv,) = lists.rows("acv", code)
    assert acv["id_acv"] == "acv-223" and acv["date_signature"] == D(2024, 1, 18)
    assert not lists.rows("acv_arrete", code)
    before = answer(commune(code, D(2024, 3, 1), lists, rules), "denormandie")
    # Its ORT row dates the ORT (10/06/2024): the data say "non" before it, unlike Hazebrouck's.
    assert before.verdict == "non"
    assert "après 2018" in before.reason and "seulement par une ORT conclue" in before.reason
    routes = {r["voie"]: r["verdict"] for r in before.routes}
    assert routes["liste de l'arrêté du 26 mars 2019"] == "non" and routes["ORT conclue"] == "non"
    prio = answer(commune(code, D(2024, 3, 1), lists, rules), "anah_prioritaire")
    assert prio.verdict == "inconnu" and "18/01/2024" in prio.reason  # its own ACV convention, to read
    after = answer(commune(code, D(2024, 6, 10), lists, rules), "denormandie")
    assert after.verdict == "oui" and after.reason.startswith("ORT signée le 10/06/2024")
    table = eligible_communes("denormandie", D(2024, 3, 1), lists=lists, rules=rules, departement="82")
    assert "82033" not in set(table[table["verdict"] == "oui"]["code_insee"])
    later = eligible_communes("denormandie", D(2025, 1, 1), lists=lists, rules=rules, departement="82")
    assert later.set_index("code_insee").loc["82033", "via"] == "ORT"
    # Hazebrouck (acv-225): ACV since 2024, no ORT row at all → never "oui via ACV".
    haz = answer(commune("59295", D(2025, 1, 1), lists, rules), "denormandie")
    assert haz.verdict == "inconnu" and "acv-225" in haz.reason


def test_copropriete_route_since_2024_04_11_in_any_commune(lists, rules):
    """Hénin-Beaumont 62427: neither ACV nor ORT; from 2024-04-11 a "non" carries the exception."""
    early = answer(commune("62427", D(2024, 4, 10), lists, rules), "denormandie")
    assert early.verdict == "non" and "copropriété" not in early.reason
    late = answer(commune("62427", D(2024, 4, 11), lists, rules), "denormandie")
    assert late.verdict == "non"
    assert "sauf logement d'une copropriété sous administration provisoire ou en ORCOD" in late.reason
    assert "11/04/2024" in late.reason and "2024-322" in late.reason
    assert {r["voie"]: r["verdict"] for r in late.routes}["copropriété en difficulté"] == "inconnu"


def test_cdac_suspension_can_reach_a_non_signatory_commune_of_the_epci(lists, rules):
    """Hénin-Beaumont (no ORT) is in the CA d'Hénin-Carvin with Carvin and Libercourt (ORT signed):
    L752-1-2, 2nd paragraph, makes the suspension possible there too → "inconnu", not "non"."""
    a = answer(commune("62427", D(2025, 3, 1), lists, rules), "suspension_cdac")
    assert a.verdict == "inconnu" and "62215 Carvin" in a.reason and "62907 Libercourt" in a.reason
    assert "2e alinéa" in a.reason
    early = answer(commune("62427", D(2022, 6, 1), lists, rules), "suspension_cdac")
    assert early.verdict == "non"  # neither Carvin (2023-03-23) nor Libercourt (2023-01-18) signed yet
    assert any("limitrophe" in c for c in early.caveats)


def test_table_lists_communes_covered_not_concluded(lists, rules):
    """Brest (« 3. Autre », signed 2020-06-23) and Agen (ACV, end estimated 14/11/2024)."""
    brest = answer(commune("29019", D(2021, 1, 1), lists, rules), "denormandie")
    assert brest.verdict == "oui" and any(
        "couvertes par une ORT" in c and "conclu" in c for c in brest.caveats
    )
    lib = answer(commune("62907", D(2024, 1, 1), lists, rules), "denormandie")
    assert not any("couvertes par une ORT" in c for c in lib.caveats)  # PVD commune: no caveat
    (row,) = lists.rows("ort", "47001")
    assert row["date_fin_estimee"] == D(2024, 11, 14)
    agen = answer(commune("47001", D(2025, 3, 1), lists, rules), "denormandie")
    assert agen.verdict == "oui"  # through the arrêté (acv-001); the ORT route is unknown after its end
    route = next(r for r in agen.routes if r["voie"] == "ORT conclue")
    assert route["verdict"] == "inconnu" and "convention échue le 14/11/2024" in route["motif"]
    assert "vérifier un avenant de prolongation" in route["motif"]
    early = answer(commune("47001", D(2024, 1, 1), lists, rules), "denormandie")
    assert next(r for r in early.routes if r["voie"] == "ORT conclue")["verdict"] == "oui"


def test_pvd_commune_with_unsigned_ort_is_not_eligible(lists, rules):
    code = "28348"  # Saint-Lubin-des-Joncherets: PVD, ORT « Non signée »
    assert lists.rows("pvd", code) and lists.rows("ort", code)[0]["signee"] == "non_signee"
    a = answer(commune(code, D(2024, 1, 1), lists, rules), "denormandie")
    assert a.verdict == "non" and "« Non signée »" in a.reason and "28348" in a.reason
    assert any("postérieure" in c for c in a.caveats)  # the list is older than the date asked
    assert answer(commune("62427", D(2024, 1, 1), lists, rules), "denormandie").verdict == "non"


def test_non_signed_row_with_a_date_keeps_its_status(lists, rules):
    a = answer(commune("2A247", D(2023, 6, 1), lists, rules), "denormandie")  # Porto-Vecchio
    assert a.verdict == "non" and any("30/10/2022" in c for c in a.caveats)
    assert a.code_insee == "2A247"


def test_haute_correze_convention_answered_commune_by_commune(lists, rules):
    conv = read_convention(embedded.convention_dir("haute-correze"))
    assert conv.communes == tuple(HAUTE_CORREZE) and not conv.versions and not conv.fictif
    for code, name in HAUTE_CORREZE.items():
        answers = commune(code, D(2022, 10, 18), lists, rules, convention=conv)
        yes = answer(answers, "denormandie")
        assert yes.verdict == "oui" and yes.commune == name
        assert f"« {code} {name} »" in yes.reason and "18/10/2022" in yes.reason
        for effect in ("vir", "diif", "dispense_aec", "opah_ru", "suspension_cdac"):
            a = answer(answers, effect)
            assert (
                a.verdict == "inconnu"
                and "secteurs de l'ORT non numérisés : vérifier dans la convention" in a.reason
            )
        assert answer(commune(code, D(2022, 10, 17), lists, rules), "denormandie").verdict == "non"
    assert lists.commune("23067")["departement"] == "23" and lists.commune("19275")["departement"] == "19"


def test_lens_lievin_convention_records_its_conflicting_sources(lists, rules):
    conv = read_convention(embedded.convention_dir("lens-lievin"))
    assert conv.communes == ("62498", "62510") and conv.programme == "ACV" and not conv.versions
    assert any("28/09/2018" in d and "20/09/2018" in d for d in conv.divergences)
    for code in conv.communes:
        answers = commune(code, D(2024, 6, 1), lists, rules, convention=conv)
        assert answer(answers, "denormandie").verdict == "oui"
        aec = answer(answers, "dispense_aec")
        assert aec.verdict == "inconnu" and any("28/09/2018" in c for c in aec.caveats)
    lib = read_convention(embedded.convention_dir("libercourt"))
    assert any("5 ans" in d and "avril 2026" in d and "article 11" in d for d in lib.divergences)


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
    assert cut.verdict == "non" and "31/12/2026" in cut.period and "option --denormandie-fin" in cut.period


def test_rules_text_and_flags_agree(rules):
    """The JSON flag a_verifier is true exactly when points to verify are printed; no PLF 2025 sentence."""
    denorm = rules.get("denormandie")
    assert denorm.valid_to == D(2027, 12, 31) and "2024-322" in denorm.valid_to_source
    assert denorm.bofip == "BOFiP BOI-IR-RICI-365"
    text = (embedded.path("regles-eligibilite.toml")).read_text(encoding="utf-8")
    assert "PLF 2025" not in text.replace("amendement n° 3635 au PLF 2025", "") and "2025 visait" not in text
    history = " → ".join(rules.parameters["denormandie_historique"])
    assert history.index("2018-1317") < history.index("2023-1322") < history.index("2024-322")
    caveats = " ".join(denorm.caveats)
    for word in ("25 %", "énergétique", "achèvement", "300 000 €", "6, 9 ou 12 ans", "plafonds de loyer"):
        assert word in caveats, word
    vir, diif = rules.get("vir"), rules.get("diif")
    for r in (vir, diif):
        assert r.valid_from == D(2019, 5, 24) and "R321-12" in r.reference and "L303-2" not in r.reference
        assert "conseil d'administration de l'Anah" in r.reference
    # L262-1 is the civil contract of a VIR, not the Anah aid (issue 22, item 6).
    assert "L262-1" not in vir.reference
    for r in rules:
        assert r.a_verifier == bool(r.to_verify)
    assert rules.verified_on is not None and rules.disclaimer.startswith("Information indicative")


def test_not_ort_effects_are_said_so_if_asked(lists, rules):
    ids = {r.id for r in rules}
    assert not ids & {"loc_avantages", "maprimerenov_coproprietes"}
    for asked in ("loc_avantages", "maprimerenov_coproprietes"):
        with pytest.raises(InputError, match="pas"):
            rules.get(asked)
    r = run(
        "communes", "--eligible", "loc_avantages", "--lists", lists.info["ort"].path.rsplit("/ort-anct", 1)[0]
    )
    assert r.exit_code != 0 and "n'est pas un effet de l'ORT" in r.output


@pytest.mark.parametrize(
    ("effect", "first_day"),
    [("autres_effets_ort", D(2018, 11, 25)), ("information_fermeture_service", D(2018, 11, 25))],
)
def test_ort_level_rules_at_their_start(lists, rules, effect, first_day):
    """Chambéry's row says signed 2018-09-29: the ORT effects start with loi ELAN only."""
    code = "73065"
    before = answer(commune(code, first_day - dt.timedelta(days=1), lists, rules), effect)
    assert before.verdict == "non" and "antérieur" in before.reason
    at = answer(commune(code, first_day, lists, rules), effect)
    assert at.verdict in ("oui", "inconnu") and "29/09/2018" in at.reason


def test_perimeter_rules_without_perimeters(lists, rules):
    libercourt = commune("62907", D(2023, 6, 1), lists, rules)
    for effect in ("vir", "diif", "dispense_aec", "suspension_cdac", "derogation_artificialisation"):
        a = answer(libercourt, effect)
        assert a.verdict == "inconnu" and "--perimeters" in a.reason
    for effect in ("dpu_renforce", "preemption_commerciale"):
        assert "délibération" in answer(libercourt, effect).reason
    assert answer(libercourt, "opah_ru").verdict == "inconnu"
    before = commune("62907", D(2022, 6, 1), lists, rules)
    assert answer(before, "diif").verdict == "non" and "pas d'ORT conclue" in answer(before, "diif").reason
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


def test_eligible_communes_of_a_departement_counted_by_current_code(lists, rules, shared_data):
    table = eligible_communes("denormandie", D(2025, 3, 1), lists=lists, rules=rules, departement="62")
    assert table["code_insee"].is_unique
    # Hesdin-la-Forêt 62447: four rows of the ORT follow-up (Hesdin and three former communes).
    ort_rows = lists["ort"][lists["ort"]["code_actuel"] == "62447"]
    assert len(ort_rows) == 4
    hesdin = table.set_index("code_insee").loc["62447"]
    assert hesdin["codes_listes"].split() == sorted(ort_rows["code_insee"])
    for former in ("62549", "62743", "62461"):
        assert former not in set(table["code_insee"])
    yes = table[table["verdict"] == "oui"].set_index("code_insee")
    assert yes.loc["62907", "via"] == "ORT" and "18/01/2023" in yes.loc["62907", "motif"]
    assert yes.loc["62498", "via"] == "arrêté" and yes.loc["62498", "programme"] == "ACV"
    assert "62427" not in yes.index  # Hénin-Beaumont: « Non signée »
    # Independent count: current codes of the signed rows of dept 62 signed by the date, or ACV 2018.
    ort = lists["ort"]
    signed = ort[
        (ort["signee"] == "signee")
        & ort["date_signature"].map(lambda d: d is not None and d <= D(2025, 3, 1))
    ]
    expected = {c for c in signed["code_actuel"].dropna() if c.startswith("62")}
    expected |= {c for c in lists["acv_arrete"]["code_actuel"].dropna() if c.startswith("62")}
    counts = counts_by_departement(table).set_index("departement")
    assert set(yes.index) == expected and counts.loc["62", "total"] == len(expected)
    assert counts.loc["62", "ACV"] == 8  # the eight ACV towns of the Pas-de-Calais
    assert set(table["departement"]) == {"62"}


def test_signed_ort_count_says_communes_not_conventions(lists):
    got = signed_ort_communes(lists)
    assert got["lignes"] == 1896 and got["date"] == "2024-09-18"
    assert got["codes_anciens"] == 5 and got["communes_actuelles"] == 1891
    assert "communes couvertes par une ORT signée, pas des conventions" in got["texte"]
    assert "1\u202f896" in got["texte"] and "18/09/2024" in got["texte"]


def test_rules_file_is_checked(tmp_path):
    """Every problem at once, each with the file, the rule and the fix, in French."""
    bad = tmp_path / "regles.toml"
    bad.write_text(
        'version = "x"\nverifie_le = "2026-12-03"\navertissement = "a"\ninconnu = 1\n'
        '[parametres]\ndenormandie_date_fin = 2027-12-31\ndenormandie_date_fin_reference = "r"\n'
        "denormandie_tout_le_territoire_depuis = 2020-01-01\ndenormandie_coproprietes_depuis = 2024-04-11\n"
        '[[regles]]\nid = "a"\nnom = "A"\neffet = "A"\nniveau = "commune"\ncondition = "inventee"\n'
        'reference = "r"\n[[regles]]\nid = "b"\nnom = "B"\nniveau = "secteur"\ncondition = "ort_conclue"\n'
        'reference = "r"\ndu = 2020-01-01\nau = 2019-01-01\n[[regles]]\nid = "a"\nnom = "A"\neffet = "A"\n'
        'niveau = "commune"\ncondition = "arrete_denormandie_ou_ort"\nreference = "r"\n'
        'au_parametre = "absent"\n'
        'a_verifier = "oui"\n',
        encoding="utf-8",
    )
    with pytest.raises(ValidationFailed) as err:
        load_rules(bad)
    problems = err.value.report.problems
    codes = {p.code for p in problems}
    assert codes >= {
        "condition-inconnue",
        "missing-field",
        "unknown-field",
        "bad-date",
        "bad-type",
        "niveau-condition",
        "periode-inversee",
        "id-double",
        "parametre-inconnu",
    }
    assert all(p.severity == "error" for p in problems)  # an unknown field would lose a caveat
    assert {p.feature for p in problems} >= {"règle 1 (a)", "règle 2 (b)", "règle 3 (a)", "en-tête"}
    assert all(p.source == str(bad) and " — " in p.message for p in problems)
    assert any("verifie_le" in p.message and "pas une date" in p.message for p in problems)
    with pytest.raises(InputError, match="introuvable"):
        load_rules(tmp_path / "absent.toml")


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
    assert any("seuil qu'elle fixe" in c for c in aec.caveats)
    assert any("version « Convention initiale »" in d for d in aec.data_used)
    assert aec.reference.startswith("Code de commerce L752-1-1")
    # The préfet's suspension applies OUTSIDE the sectors including a centre-ville.
    susp = {idu: got[(idu, "suspension_cdac")] for idu in (INSIDE_IDU, STRADDLING_IDU, OUTSIDE_IDU)}
    assert susp[INSIDE_IDU].verdict == "non" and susp[OUTSIDE_IDU].verdict == "oui"
    assert susp[OUTSIDE_IDU].verdict_text().startswith("OUI (suspension possible")
    assert susp[STRADDLING_IDU].verdict == "partiellement"
    assert susp[STRADDLING_IDU].share == pytest.approx(1 - share, abs=1e-6)
    # Deliberation perimeters not carried by the folder: unknown, never "non".
    assert got[(OUTSIDE_IDU, "dpu_renforce")].verdict == "inconnu"
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
    assert a.verdict == "oui" and "convention d'ORT « ORT d'essai » signée le 01/03/2023" in a.reason
    assert any("suivi national" in c for c in a.caveats)
    assert (
        answer(commune("91216", D(2023, 2, 28), lists, rules, convention=conv), "denormandie").verdict
        == "non"
    )


def test_sectors_not_digitised_answer_inconnu_never_non(tmp_path, epinay, lists, rules):
    """A real convention signed at the date with versions = []: every place effect is "inconnu"
    with the reason; before its signature, the ORT effects are a firm "non"."""
    folder = tmp_path / "sans-secteurs"
    folder.mkdir()
    (folder / "convention.toml").write_text(
        'nom = "ORT sans secteurs"\nprogramme = "PVD"\ncommunes = ["91216"]\ndate_signature = 2023-03-01\n'
        "duree_ans = 5\nfictif = false\nversions = []\n",
        encoding="utf-8",
    )
    conv = read_convention(folder)
    chosen = epinay[epinay["idu"] == INSIDE_IDU]
    after = {
        a.effect: a
        for a in eligibility_for_parcels(
            chosen, None, D(2024, 1, 1), lists=lists, rules=rules, convention=conv
        )
    }
    for effect in (
        "vir",
        "diif",
        "dispense_aec",
        "opah_ru",
        "suspension_cdac",
        "derogation_artificialisation",
    ):
        assert after[effect].verdict == "inconnu", effect
        assert NOT_DIGITISED in after[effect].reason, effect
        assert after[effect].idu == INSIDE_IDU
    before = {
        a.effect: a
        for a in eligibility_for_parcels(
            chosen, None, D(2022, 1, 1), lists=lists, rules=rules, convention=conv
        )
    }
    assert before["diif"].verdict == before["dispense_aec"].verdict == "non"
    assert before["opah_ru"].verdict == "inconnu"  # an OPAH-RU does not need an ORT
    frame = answers_to_frame(list(after.values())).set_index("regle")
    assert set(frame.columns) >= {
        "verdict",
        "part",
        "motif",
        "reference",
        "date_evaluee",
        "donnees",
        "avertissement",
    }
    assert frame.loc["denormandie", "avertissement"].endswith("(BOFiP BOI-IR-RICI-365)")


# --- the CLI end to end ------------------------------------------------------------------


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def test_cli_commune_text(lists, shared_data):
    r = run("eligibility", "--commune", "62907", "--date", "2023-06-01", "--lists", shared_data)
    assert r.exit_code == 0, r.output
    out = r.output
    assert "62907 Libercourt" in out and "→ OUI : ORT signée le 18/01/2023" in out
    assert "Denormandie : acquisitions du 01/01/2019 au 31/12/2027" in out
    assert "loi n° 2018-1317" in out and "loi n° 2023-1322" in out  # the dated chain of texts
    assert "référence : CGI art. 199 novovicies" in out and "QN06248M" in out
    # One line per dispositif at the top, the detail below, the disclaimer last.
    summary = out[out.index("En bref :") : out.index("Mises en garde communes")]
    assert summary.count("\n    ") == len(load_rules().rules)
    # Each dispositif says the level of its verdict (issue 22, item 7).
    assert "Denormandie : OUI [toute la commune] — ORT signée le 18/01/2023" in summary
    assert "Priorité Anah : OUI (priorité de programmation, non opposable)" in summary
    last = out.strip().splitlines()[-1]
    assert last.startswith("Information indicative : ni rescrit fiscal, ni décision de l'Anah ou de la CDAC")
    assert "BOI-IR-RICI-365" in last
    assert "amendement" not in out


def test_cli_commune_json(lists, shared_data):
    r = run("eligibility", "--commune", "62498", "--date", "2024-06-01", "--json", "--lists", shared_data)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["date"] == "2024-06-01" and doc["regles"]["denormandie_fin"] == "2027-12-31"
    assert doc["regles"]["verifie_le"] and len(doc["regles"]["denormandie_textes"]) == 7
    assert {x["nom"] for x in doc["listes"]} >= {"ort", "acv", "communes"}
    assert doc["avertissement"].startswith("Information indicative")
    (res,) = doc["resultats"]
    assert res["code_insee"] == "62498" and res["contexte"]["programmes"] == ["ACV (acv-113)"]
    rep = {x["regle"]: x for x in res["reponses"]}
    assert rep["denormandie"]["verdict"] == "oui"
    assert "communes-denormandie.yaml" in rep["denormandie"]["motif"]
    assert "arrêté du 26 mars 2019" in rep["denormandie"]["motif"]
    assert rep["anah_prioritaire"]["verdict_libelle"] == "oui (priorité de programmation, non opposable)"
    for key in (
        "verdict",
        "part",
        "motif",
        "reference",
        "date_evaluee",
        "periode",
        "donnees",
        "mises_en_garde",
        "points_a_verifier",
        "verifie_le",
        "avertissement",
    ):
        assert key in rep["vir"]
    for item in rep.values():  # the flag agrees with the text
        assert item["a_verifier"] == bool(item["points_a_verifier"])
    # VIR/DIIF: in force 2019-05-24 (décret n° 2019-498), nothing left to verify; ZRCV still has points.
    assert rep["vir"]["a_verifier"] is False and rep["diif"]["a_verifier"] is False
    assert rep["zrcv"]["a_verifier"] is True and rep["zrcv"]["points_a_verifier"]


def test_cli_bad_codes_exit_with_a_message(lists, shared_data):
    r = run("eligibility", "--commune", "1004", "--lists", shared_data)
    assert r.exit_code == EXIT_BAD_INPUT and "01004" in r.output and "5 caractères" in r.output
    r = run("eligibility", "--commune", "99999", "--lists", shared_data)
    assert r.exit_code == EXIT_BAD_INPUT and "99999 inconnu" in r.output
    assert run("eligibility", "--lists", shared_data).exit_code == 2  # nothing asked


def test_cli_libercourt_parcel_example_of_the_help(lists, shared_data):
    """The example of `ort eligibility --help`: signed ORT, sectors not drawn → "inconnu"."""
    help_text = run("eligibility", "--help").output
    assert "ort eligibility 62907000AB0685 --perimeters libercourt --date 2025-03-01" in help_text
    r = run(
        "eligibility",
        "62907000AB0685",
        "--perimeters",
        embedded.convention_dir("libercourt"),
        "--date",
        "2025-03-01",
        "--json",
        "--lists",
        shared_data,
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    (res,) = doc["resultats"]
    assert res["idu"] == "62907000AB0685"
    rep = {x["regle"]: x for x in res["reponses"]}
    for effect in ("vir", "diif", "dispense_aec", "opah_ru", "suspension_cdac"):
        assert rep[effect]["verdict"] == "inconnu", effect
        assert "secteurs de l'ORT non numérisés : vérifier dans la convention" in rep[effect]["motif"]
    assert rep["denormandie"]["verdict"] == "oui"
    for item in rep.values():  # the recorded conflict of the convention, in every answer
        assert any("avril 2026" in c for c in item["mises_en_garde"]), item["regle"]
    assert doc["convention"]["remarque"] == "secteurs de l'ORT non numérisés : vérifier dans la convention"
    assert not doc["rejetes"]


def test_cli_parcels_with_perimeters(test_convention, epinay_parcelles, lists, shared_data):
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
    doc = json.loads(r.stdout)
    assert doc["convention"]["version"] == "initiale" and doc["convention"]["fictif"] is True
    verdicts = {(x["idu"], y["regle"]): y for x in doc["resultats"] for y in x["reponses"]}
    assert verdicts[(INSIDE_IDU, "dispense_aec")]["verdict"] == "oui"
    assert verdicts[(STRADDLING_IDU, "vir")]["verdict"] == "partiellement"
    assert 0.3 < verdicts[(STRADDLING_IDU, "vir")]["part"] < 0.7
    assert verdicts[(OUTSIDE_IDU, "diif")]["verdict"] == "non"


def test_cli_parcel_without_perimeters_gets_commune_answers(lists, shared_data):
    r = run("eligibility", "62907000AB0685", "--date", "2023-06-01", "--lists", shared_data)
    assert r.exit_code == 0, r.output
    assert "62907000AB0685 — commune 62907 Libercourt" in r.output and "→ OUI" in r.output
    assert "aucun dossier de périmètres" in r.output


def test_cli_batch_file_and_output(tmp_path, lists, shared_data):
    demandes = tmp_path / "demandes.csv"
    demandes.write_text("idu;code_insee\n;62907\n;1004\n;2A004\n;99999\n62907000AB0685;\n", encoding="utf-8")
    out = tmp_path / "reponses.csv"
    r = run("eligibility", "--file", demandes, "--date", "2025-03-01", "-o", out, "--lists", shared_data)
    assert r.exit_code == 0, r.output
    assert "1004" in r.output and "zéro initial rétabli" in r.output  # a spreadsheet's number, repaired
    assert "99999" in r.output  # reported, not silently dropped
    table = read_excel_csv(out)
    assert set(table["code_insee"]) == {"62907", "01004", "2A004"}
    assert len(table) == 4 * len(load_rules().rules) and set(table["verdict"]) <= set(VERDICTS)
    assert table["avertissement"].notna().all()
    again = run("eligibility", "--file", demandes, "-o", out, "--lists", shared_data)
    assert again.exit_code != 0 and "--force" in again.output


def test_cli_denormandie_end_override(lists, shared_data):
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
    doc = json.loads(r.stdout)
    rep = {x["regle"]: x for x in doc["resultats"][0]["reponses"]}
    assert (
        rep["denormandie"]["verdict"] == "non" and "option --denormandie-fin" in rep["denormandie"]["periode"]
    )
    assert doc["regles"]["denormandie_fin"] == "2026-12-31"


def test_cli_communes_eligible_and_report(lists, shared_data):
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
    doc = json.loads(r.stdout)
    codes = {c["code_insee"]: c for c in doc["communes"]}
    assert "62907" in codes and codes["62498"]["via"] == "arrêté" and "62427" not in codes
    total = {c["departement"]: c["total"] for c in doc["comptes"]}["62"]
    assert total == len(codes)
    assert doc["ort_signees"]["communes_actuelles"] <= doc["ort_signees"]["lignes"]
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
    assert "62907 Libercourt (62, PVD) — ORT signée le 18/01/2023" in text.output
    assert "comptées au code officiel actuel" in text.output
    assert (
        "acv_sans_ort" in text.output
        and "Par motif : commune de la liste de l'arrêté du 26 mars 2019 8" in text.output
    )
    assert "pas des conventions" in text.output
    assert run("communes", "--lists", shared_data).exit_code == 2
