"""The legal verification pass of issue 22: each rule changed from a primary text, before → after.

Sources (as cited in ``data/regles-eligibilite.toml``):
- C. com. L752-1-2: created by the loi ELAN (n° 2018-1021, art. 157): projects outside the
  operation's intervention sectors; modified by the loi 3DS (n° 2022-217, art. 96, in force on
  23/02/2022): outside the intervention sectors « comprenant un centre-ville ».
- CGCT L2255-1: modified by the loi 3DS, art. 156: the words « Dans les communes signataires
  d'une convention relative à une opération de revitalisation de territoire … » are deleted.
- CGI 199 novovicies: LF 2020 (loi n° 2019-1479), art. 115 (whole commune for acquisitions
  from 01/01/2020, end 31/12/2022), art. 162 (works); BOFiP actualité 12499-PGP.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import pytest

from geo.eligibility.answers import eligibility_for_commune, eligibility_for_parcels
from geo.eligibility.rules import load_rules
from geo.perimeters import read_convention
from geo.sources.lists import load_lists

D = dt.date
CENTRE_IDU = "91216000AI0062"  # Épinay-sur-Orge: in the centre-ville sector below
FAUBOURG_IDU = "91216000AC0019"  # > 800 m away: in the other intervention sector (no centre-ville)


@pytest.fixture(scope="module")
def lists(shared_data):
    return load_lists(shared_data)


@pytest.fixture(scope="module")
def rules():
    return load_rules()


@pytest.fixture(scope="module")
def two_sectors(tmp_path_factory, epinay_parcelles) -> Path:
    """A fictive convention of Épinay-sur-Orge 91216 signed 01/11/2018 with two intervention
    sectors drawn on real parcels: « Centre-ville » (centre_ville = true) and « Faubourg »."""
    from geo.sources.cadastre import read_parcels

    parcels = read_parcels(epinay_parcelles)
    g = parcels.set_index("idu").geometry
    perims = gpd.GeoDataFrame(
        {
            "id": ["centre-ville", "faubourg"],
            "type": ["secteur", "secteur"],
            "nom": ["Centre-ville", "Faubourg"],
            "centre_ville": [True, False],
        },
        geometry=[g[CENTRE_IDU].buffer(10), g[FAUBOURG_IDU].buffer(10)],
        crs=parcels.crs,
    ).to_crs(4326)
    folder = tmp_path_factory.mktemp("perimetres") / "deux-secteurs"
    folder.mkdir()
    (folder / "perimetres-initiale.geojson").write_text(perims.to_json(), encoding="utf-8")
    (folder / "convention.toml").write_text(
        'nom = "ORT d\'essai"\nprogramme = "PVD"\ncommunes = ["91216"]\ndate_signature = 2018-11-01\n'
        'duree_ans = 12\nfictif = true\n[[versions]]\nid = "initiale"\nlibelle = "Convention initiale"\n'
        'date_effet = 2018-11-01\nfichier = "perimetres-initiale.geojson"\n',
        encoding="utf-8",
    )
    return folder


def _suspension(folder, epinay_parcelles, day, lists, rules):
    from geo.sources.cadastre import read_parcels

    conv = read_convention(folder)
    parcels = read_parcels(epinay_parcelles)
    chosen = parcels[parcels["idu"].isin([CENTRE_IDU, FAUBOURG_IDU])]
    answers = eligibility_for_parcels(
        chosen, conv.perimeters(day), day, lists=lists, rules=rules, convention=conv
    )
    return {a.idu: a for a in answers if a.effect == "suspension_cdac"}


def test_cdac_suspension_scope_before_and_after_the_loi_3ds(two_sectors, epinay_parcelles, lists, rules):
    """A parcel in an intervention sector that includes no centre-ville. Before the fix: "oui"
    (suspension possible) at every date. After: "non" on 01/06/2021 (loi ELAN wording: outside
    every intervention sector), "oui" on 01/06/2023 (loi 3DS wording: outside the sectors
    including a centre-ville). The centre-ville parcel is "non" at both dates."""
    before = _suspension(two_sectors, epinay_parcelles, D(2021, 6, 1), lists, rules)
    after = _suspension(two_sectors, epinay_parcelles, D(2023, 6, 1), lists, rules)
    assert before[FAUBOURG_IDU].verdict == "non"
    assert "secteur d'intervention de l'ORT" in before[FAUBOURG_IDU].reason
    assert after[FAUBOURG_IDU].verdict == "oui"
    assert before[CENTRE_IDU].verdict == after[CENTRE_IDU].verdict == "non"
    assert rules.parameters["cdac_centre_ville_depuis"] == D(2022, 2, 23)
    rule = rules.get("suspension_cdac")
    assert "art. 96" in rule.reference and "2019-795" in rule.reference
    # The 3DS wording is read; the ELAN wording only through paraphrases: said, not hidden.
    assert len(rule.to_verify) == 1 and "paraphrases" in rule.to_verify[0]
    assert any("ECOI1915595D" in s and "29/07/2019" in s for s in rule.sources)
    assert "1° à 5° et 7°" in rule.notes


def test_service_closing_without_ort_after_the_loi_3ds(lists, rules):
    """L'Abergement-Clémenciat 01001, no ORT: CGCT L2255-1 no longer names the communes
    signatory of an ORT from 23/02/2022 (loi 3DS, art. 156). Before: "non" on 01/06/2024.
    After: "inconnu" with the reason; still "non" on 01/06/2021."""

    def service(day):
        (a,) = [
            a
            for a in eligibility_for_commune("01001", day, lists=lists, rules=rules)
            if a.effect == "information_fermeture_service"
        ]
        return a

    late, early = service(D(2024, 6, 1)), service(D(2021, 6, 1))
    assert late.verdict == "inconnu" and "L2255-1 n'exige plus d'ORT depuis le 23/02/2022" in late.reason
    assert "2022-217, art. 156" in late.reference
    assert early.verdict == "non"
    assert rules.get("information_fermeture_service").reference.startswith("CGCT L2255-1")


def test_denormandie_2019_reason_cites_the_finance_law_article(lists, rules):
    """Cherbourg-en-Cotentin 50129, acquisition of 01/06/2019: the centre only; the reason now
    names LF 2020 art. 115 (BOFiP actualité 12499-PGP), the history its articles 115 and 162 and
    the arrêté of 10/04/2020 abrogating the centre's definition."""
    (a,) = [
        a
        for a in eligibility_for_commune("50129", D(2019, 6, 1), lists=lists, rules=rules)
        if a.effect == "denormandie"
    ]
    assert a.verdict == "partiellement" and "art. 115" in a.reason
    history = " ".join(rules.parameters["denormandie_historique"])
    assert "art. 115" in history and "art. 162" in history and "LOGL1936828A" in history
    assert "2021-1900 du 30/12/2021), art. 75 : prorogation d'un an, au 31/12/2023" in history
    assert any("12499-PGP" in s for s in rules.get("denormandie").sources)


def test_zrcv_criteria_sourced(rules):
    """ZRCV: LF 2020 art. 111; two cumulative criteria (ORT before 1 October of the previous
    year, median income per consumption unit under the national median); yearly arrêtés."""
    zrcv = rules.get("zrcv")
    assert "art. 111" in zrcv.reference
    assert "1er octobre" in zrcv.notes and "revenu fiscal médian" in zrcv.notes
    assert any("collectivites-locales.gouv.fr" in s for s in zrcv.sources)
