"""Each condition of the registry (geo/eligibility/conditions.py), on real communes.

Libercourt 62907 (ORT signed 18/01/2023), Lens 62498 (on the arrêté's list, ACV convention of
2018), L'Abergement-Clémenciat 01001 (no ORT, no QPV, not listed), Cannes 06029 (no ORT, QPV
QN00603M), at dates where the national lists (../shared/data) say so.
"""

from __future__ import annotations

import datetime as dt

import pytest

from geo.eligibility.conditions import REGISTRY, Context
from geo.eligibility.evidence import ort_evidence
from geo.eligibility.rules import Rule, load_rules
from geo.sources.lists import load_lists

D = dt.date(2024, 6, 1)

CASES = [
    ("arrete_denormandie_ou_ort", "62498", "oui"),
    ("arrete_denormandie_ou_ort", "01001", "non"),
    ("ort_conclue", "62907", "oui"),
    ("ort_conclue", "01001", "non"),
    ("ort_services_perimetre", "62907", "oui"),
    ("ort_services_perimetre", "01001", "inconnu"),  # CGCT L2255-1 after the loi 3DS (2022-217, art. 156)
    ("ort_ou_acv_2018", "62498", "oui"),
    ("ort_ou_acv_2018", "01001", "non"),
    ("ort_information", "62907", "inconnu"),
    ("ort_information", "01001", "non"),
    ("opah_ru", "62907", "inconnu"),
    ("secteurs_ort_ou_opah_ru", "62907", "inconnu"),
    ("secteurs_ort", "62907", "inconnu"),
    ("secteurs_ort", "01001", "non"),
    ("secteurs_ort_ou_qpv", "06029", "inconnu"),
    ("secteurs_ort_ou_qpv", "01001", "non"),
    ("secteur_centre_ville", "62907", "inconnu"),
    ("secteur_centre_ville", "01001", "non"),
    ("zrcv_centre_ville", "62907", "inconnu"),
    ("zrcv_centre_ville", "01001", "non"),
    ("hors_secteurs_centre_ville", "62907", "inconnu"),
    ("dpu_renforce", "62907", "inconnu"),
    ("dpu_renforce", "01001", "non"),
    ("preemption_commerciale", "62907", "inconnu"),
    ("preemption_commerciale", "01001", "non"),
]


@pytest.fixture(scope="module")
def lists(shared_data):
    return load_lists(shared_data)


def test_every_registered_condition_has_a_case():
    assert {name for name, _, _ in CASES} == set(REGISTRY)


@pytest.mark.parametrize(("name", "code", "expected"), CASES)
def test_condition_on_a_real_commune(lists, name, code, expected):
    cond = REGISTRY[name]
    rule = Rule(id=name, name=name, effect=name, level=cond.level, condition=name, reference="r")
    ctx = Context(rule, load_rules(), code, D, lists, None, ort_evidence(code, D, lists))
    ev = cond.evaluate(ctx)
    assert ev.verdict == expected, ev.reason
    assert ev.reason  # every verdict says why
    if expected == "non" and cond.level != "commune":
        assert "pas d'ORT conclue" in ev.reason or "absente" in ev.reason or "pas de convention" in ev.reason
