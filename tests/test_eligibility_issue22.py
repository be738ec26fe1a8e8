"""Issue 22, items 2 to 7: one real commune per class whose answer was wrong, before → after.

Each test names the commune, the dispositif, the wrong answer it gave and the source of the right
one. Communes are answered from the real national lists of ``../shared/data`` read in place.
"""

from __future__ import annotations

import datetime as dt

import pytest

from geo.eligibility.answers import eligibility_for_commune
from geo.eligibility.rules import load_rules
from geo.sources.lists import load_lists

D = dt.date


@pytest.fixture(scope="module")
def lists(shared_data):
    return load_lists(shared_data)


@pytest.fixture(scope="module")
def rules():
    return load_rules()


def answer(code, day, effect, lists, rules):
    (a,) = [a for a in eligibility_for_commune(code, day, lists=lists, rules=rules) if a.effect == effect]
    return a


# --- item 2: a delegated commune answers through its commune nouvelle -----------------------


def test_delegated_commune_of_a_listed_commune_nouvelle(lists, rules):
    """Tourlaville 50602, commune déléguée of Cherbourg-en-Cotentin 50129 (COG 2026,
    decoupage-administratif 6.0.0: ``chefLieu`` 50129), which is on the Denormandie list and
    signed its ORT on 26/07/2019 (ort-suivi-anct-national.csv). Before: Denormandie "non",
    Fermeture d'un service public "non". After: "oui" through 50129."""
    denorm = answer("50602", D(2024, 6, 1), "denormandie", lists, rules)
    assert denorm.verdict == "oui" and "50129" in denorm.reason
    assert any("commune déléguée de 50129" in c for c in denorm.caveats)
    # The commune nouvelle may postdate the arrêté: what to check is said.
    assert any("créée après le 26/03/2019" in c for c in denorm.caveats)
    service = answer("50602", D(2024, 6, 1), "information_fermeture_service", lists, rules)
    assert service.verdict == "oui" and "26/07/2019" in service.reason
    # The place rules are no longer "non" (no ORT) but depend on the place.
    assert answer("50602", D(2024, 6, 1), "diif", lists, rules).verdict == "inconnu"


# --- item 3: 2019 acquisitions, the centre only --------------------------------------------


def test_2019_acquisition_is_centre_only_at_commune_level(lists, rules):
    """Cherbourg-en-Cotentin 50129, on the arrêté's list: an acquisition of 01/06/2019 was
    eligible only in the centre of the commune (CGI 199 novovicies IV bis, LF 2019 wording;
    whole commune since LF 2020, loi n° 2019-1479). Before: "oui". After: "partiellement
    (centre seulement)"; "oui" from 01/01/2020."""
    a = answer("50129", D(2019, 6, 1), "denormandie", lists, rules)
    assert a.verdict == "partiellement" and a.verdict_label == "partiellement (centre seulement)"
    assert a.verdict_text() == "PARTIELLEMENT (centre seulement)" and "centre de la commune" in a.reason
    assert answer("50129", D(2020, 1, 1), "denormandie", lists, rules).verdict == "oui"
    history = " ".join(rules.parameters["denormandie_historique"])
    for law in ("2019-1479", "2020-1721", "2021-1900"):  # the finance laws for 2020, 2021, 2022
        assert law in history
    assert any("LOGL1903827A" in c for c in rules.get("denormandie").caveats)


# --- item 4: after the convention's end ----------------------------------------------------


def test_ort_effect_after_the_convention_end_is_unknown(lists, rules):
    """Gap 05061: ORT signed 09/06/2021, estimated end 09/06/2023 in the national follow-up
    (ort-suivi-anct-national.csv, column of the estimated end). Before: "Fermeture d'un
    service public" "oui" on 01/06/2024. After: "inconnu — convention échue le 09/06/2023,
    vérifier un avenant de prolongation"; still "oui" before the end."""
    after = answer("05061", D(2024, 6, 1), "information_fermeture_service", lists, rules)
    assert after.verdict == "inconnu"
    assert "convention échue le 09/06/2023, vérifier un avenant de prolongation" in after.reason
    before = answer("05061", D(2023, 6, 1), "information_fermeture_service", lists, rules)
    assert before.verdict == "oui"
    # Denormandie stays "oui" through the arrêté's list, which does not end with the ORT.
    assert answer("05061", D(2024, 6, 1), "denormandie", lists, rules).verdict == "oui"


# --- item 5: ACV conventions signed from 2023 ----------------------------------------------


def test_acv_convention_of_2024_without_ort_row_is_unknown(lists, rules):
    """Hazebrouck 59295: ACV convention acv-225 signed 01/02/2024 (ACV list of 09/09/2024), no
    row in the ORT follow-up, not on the Denormandie list (service-public simulator list).
    Before: Denormandie and Fermeture "non". After: "inconnu" with the reason."""
    for effect in ("denormandie", "information_fermeture_service"):
        a = answer("59295", D(2024, 6, 1), effect, lists, rules)
        assert a.verdict == "inconnu", effect
        assert "01/02/2024" in a.reason and "peut valoir convention d'ORT" in a.reason
    assert answer("59295", D(2024, 1, 1), "denormandie", lists, rules).verdict == "non"  # before it


# --- item 6: the rules table ---------------------------------------------------------------


def test_artificialisation_derogation_through_a_qpv(lists, rules):
    """Cannes 06029: no ORT in the follow-up, QPV 2024 QN00603M (qpv2024 list by commune).
    C. com. L752-6 V 1°: ORT sector OR QPV. Before: "non" (no ORT). After: "inconnu"."""
    a = answer("06029", D(2024, 6, 1), "derogation_artificialisation", lists, rules)
    assert a.verdict == "inconnu" and "QN00603M" in a.reason
    assert any("10 000 m²" in c and "3 000" in c for c in a.caveats)  # the surface thresholds
    # A commune with neither ORT nor QPV stays "non".
    assert answer("01001", D(2024, 6, 1), "derogation_artificialisation", lists, rules).verdict == "non"


def test_rules_table_fixes(rules):
    """VIR/DIIF: CCH R321-12 + Anah board (décret n° 2019-498, JO 23/05/2019, in force the next
    day), not L262-1 (the civil contract); CDAC: 3DS named; service closing: services inside the
    operation's perimeter; DPU/commercial pre-emption: by municipal deliberation, where to look;
    ZRCV: centre-ville sectors of communes of the ZRCV arrêté."""
    vir = rules.get("vir")
    assert "L262-1" not in vir.reference and "R321-12" in vir.reference
    assert vir.valid_from == D(2019, 5, 24) and "23/05/2019" in vir.reference
    assert any("le lendemain de sa publication" in x for x in vir.sources)
    assert "2022-217" in rules.get("suspension_cdac").reference
    assert "art. 96" in rules.get("suspension_cdac").reference  # the 3DS scope, sourced
    service = rules.get("information_fermeture_service")
    assert "périmètre de l'opération" in service.yes_label
    for rid in ("dpu_renforce", "preemption_commerciale"):
        notes = rules.get(rid).notes
        assert "délibération du conseil municipal" in notes and "certificat d'urbanisme" in notes
    zrcv = rules.get("zrcv")
    assert zrcv.level == "secteur" and zrcv.condition == "zrcv_centre_ville"
    assert rules.get("derogation_artificialisation").condition == "secteurs_ort_ou_qpv"


def test_zrcv_and_service_answers(lists, rules):
    """Libercourt 62907 (ORT 18/01/2023): ZRCV depends on the ZRCV arrêté and deliberations;
    the service-closing duty concerns services inside the operation's perimeter."""
    zrcv = answer("62907", D(2024, 6, 1), "zrcv", lists, rules)
    assert zrcv.verdict == "inconnu" and "arrêté" in zrcv.reason and "délibération" in zrcv.reason
    service = answer("62907", D(2024, 6, 1), "information_fermeture_service", lists, rules)
    assert service.verdict == "oui" and "périmètre de l'opération, pas pour une parcelle" in service.reason


def test_every_rule_refers_to_a_registered_condition_at_its_level(rules):
    from geo.eligibility.conditions import REGISTRY

    for rule in rules:
        assert REGISTRY[rule.condition].level == rule.level, rule.id


def test_parcel_effects_after_the_convention_end(shared_data):
    """The shipped demo convention (fictitious commune 62999, signed 15/03/2023 for 5 years, no
    avenant extending it): parcel 62999000AB0012 straddles the centre-ville sector. Before, on
    01/06/2029: DIIF, Dispense d'AEC, Suspension CDAC "partiellement", Fermeture "oui".
    After: "inconnu — convention échue le 15/03/2028, vérifier un avenant de prolongation"."""
    import json

    from click.testing import CliRunner

    from geo.cli import main

    args = ["eligibility", "62999000AB0012", "--perimeters", "demo", "--date", "2029-06-01", "--json"]
    doc = json.loads(CliRunner().invoke(main, args).stdout)
    rep = {r["regle"]: r for r in doc["resultats"][0]["reponses"]}
    for effect in ("diif", "dispense_aec", "suspension_cdac", "information_fermeture_service"):
        assert rep[effect]["verdict"] == "inconnu", effect
        assert "convention échue le 15/03/2028, vérifier un avenant de prolongation" in rep[effect]["motif"]
    assert rep["diif"]["part"] == pytest.approx(0.15, abs=0.01)  # the share is still said


def test_rules_file_tables_checked_by_the_models(tmp_path):
    """No hand checks left: missing tables and a wrong type are model errors, all at once."""
    from geo.errors import ValidationFailed

    bad = tmp_path / "regles.toml"
    bad.write_text(
        'version = "x"\nverifie_le = 2026-12-03\navertissement = "a"\nregles = 3\n', encoding="utf-8"
    )
    with pytest.raises(ValidationFailed) as err:
        load_rules(bad)
    found = {(p.code, p.feature) for p in err.value.report.problems}
    assert ("missing-field", "en-tête") in found and ("bad-type", "en-tête") in found
    assert all(" — " in p.message for p in err.value.report.problems)  # each with its fix
