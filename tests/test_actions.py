"""The action register: the real Libercourt plan, validation, the dashboard and `ort actions`."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import openpyxl
import pytest
from click.testing import CliRunner
from excel import read_excel_csv
from shapely.geometry import box

import geo.cli
from geo.errors import InputError, ValidationFailed
from geo.perimeters import perimeters_to_geojson, read_convention
from geo.places.actions import (
    STATUTS,
    actions_per_sector,
    axe_statut_table,
    budgets_by_financeur,
    read_register,
    unlocated_actions,
)
from geo.sources.cadastre import read_parcels

ROOT = Path(__file__).resolve().parent.parent
LIBERCOURT = ROOT / "perimeters" / "libercourt"
L93 = "EPSG:2154"

# Counted by hand in ../shared/sources/001_ea4ddecb844e948e.txt, article 4 « Le plan d'action de la
# ville de Libercourt », the five tables « Présentation générale du plan d'actions »: per axe,
# (actions en cours et à poursuivre, actions projetées, actions en réflexion, marked with * =
# « Action faisant l'objet d'une fiche action »).
LIBERCOURT_PLAN = {
    "1": (5, 3, 4, 6),  # permis de louer … Pôle Gare | OPAH-RU*, bailleurs*, friches | Village famille* …
    "2": (
        3,
        4,
        2,
        6,
    ),  # non sédentaire*, porteurs, cellules* | marché*, commerce local, épicerie*, MCBIC* | …
    "3": (3, 4, 2, 8),  # espaces fleuris, cavalier*, vidéo* | cimetière*, jardins*, charte*, Eglise NDL* | …
    "4": (3, 3, 2, 7),  # culture*, associations*, festifs* | centralité*, éducative*, Friche Loyez* | …
    "5": (2, 3, 1, 5),  # modes actifs*, énergie* | signalétique*, parcs, covoiturage* | entrées de ville*
}


# --- the real Libercourt register ------------------------------------------------------------


def test_libercourt_register_matches_the_convention():
    reg = read_register(LIBERCOURT)
    assert reg.report.problems == []
    table = axe_statut_table(reg).set_index("axe")
    for axe, (en_cours, projetee, reflexion, fiches) in LIBERCOURT_PLAN.items():
        row = table.loc[axe]
        assert (row["en cours"], row["projetée"], row["en réflexion"]) == (en_cours, projetee, reflexion), axe
        assert row["fiches_action"] == fiches, axe
        assert row["réalisée"] == row["abandonnée"] == 0
        assert row["total"] == en_cours + projetee + reflexion
    total = table.loc["Total"]
    assert (total["en cours"], total["projetée"], total["en réflexion"], total["total"]) == (16, 17, 11, 44)
    assert total["fiches_action"] == 32
    assert list(reg.axes) == ["1", "2", "3", "4", "5"]
    assert reg.axes["5"].startswith("Qualifier le cadre de vie en engageant la transition énergétique")


def test_libercourt_titles_are_verbatim(shared_data):
    """Every title appears word for word in the convention text, in the table of its axe and status."""
    text = " ".join((shared_data.parent / "sources" / "001_ea4ddecb844e948e.txt").read_text().split())
    start = text.index("Article 4 – Le plan d’action de la ville de Libercourt")
    plan = text[start : text.index("4.1 Les actions", start)]
    reg = read_register(LIBERCOURT)
    for a in reg.actions:
        assert a.titre in plan, a.id
    ids = [a.id for a in reg.actions]
    assert len(set(ids)) == len(ids) == 44
    friche = next(a for a in reg.actions if a.titre == "Aménagement de la Friche Loyez")
    assert (friche.axe, friche.statut, friche.fiche_action) == ("4", "projetée", True)
    opah = next(a for a in reg.actions if "OPAH-RU" in a.titre)
    assert (opah.axe, opah.statut, opah.fiche_action) == ("1", "projetée", True)
    # The convention gives no place for any action: all are listed as unlocated.
    assert len(unlocated_actions(reg)) == 44


# --- validation ------------------------------------------------------------------------------

BAD = """\
[axes]
1 = "Habitat"
2 = "Commerce"

[[actions]]
id = "A1"
titre = "Étude OPAH-RU"
axe = 7
statut = "projetée"

[[actions]]
id = "A1"
titre = "Doublon"
axe = 1
statut = "en cour"

[[actions]]
id = "A3"
titre = "Cellules commerciales"
axe = 2
statut = "Projetee"
budget = "12 000 €"
statu = "en cours"
date_debut = "mars 2024"
[[actions.financements]]
financeur = "Banque des Territoires"
montant = "beaucoup"
statut = "promis"

[[actions]]
id = "A4"
axe = 2
statut = "réalisée"
"""


def test_validation_reports_everything_at_once(tmp_path):
    path = tmp_path / "actions.toml"
    path.write_text(BAD, encoding="utf-8")
    with pytest.raises(ValidationFailed) as err:
        read_register(path)
    report = err.value.report
    got = {(p.code, p.feature) for p in report.errors}
    assert got == {
        ("unknown-axe", "action A1"),
        ("duplicate-id", "action A1"),
        ("unknown-status", "action A1"),
        ("bad-amount", "action A3"),
        ("bad-date", "action A3"),
        ("unknown-status", "action A3"),
        ("missing-field", "action A4"),
    }
    assert len(report.errors) == 8  # bad-amount twice: the budget and the montant
    assert {(p.code, p.feature) for p in report.warnings} == {("unknown-field", "action A3")}
    text = str(report)
    assert str(path) in text
    assert "vouliez-vous dire « en cours »" in text  # "en cour"
    assert "vouliez-vous dire 'statut'" in text  # the typo "statu"
    assert "écrivez un nombre sans guillemets" in text
    assert "axes définis dans [axes] : 1, 2" in text
    # "Projetee" without accent nor case is the status "projetée".
    reg = read_register(path, strict=False)
    assert next(a for a in reg.actions if a.id == "A3").statut == "projetée"


def test_invalid_toml_names_the_line(tmp_path):
    path = tmp_path / "actions.toml"
    path.write_text('[axes]\n1 = "Habitat"\n[[actions]]\nid = "A1\n', encoding="utf-8")
    with pytest.raises(InputError, match="caractère interdit, ligne 4, colonne 9") as err:
        read_register(path)
    assert str(path) in str(err.value)


def test_missing_register(tmp_path):
    with pytest.raises(InputError, match="introuvable"):
        read_register(tmp_path)


# --- against a convention, and the dashboard -------------------------------------------------


@pytest.fixture()
def epinay_convention(tmp_path, epinay_parcelles) -> tuple[Path, gpd.GeoDataFrame]:
    """Convention on Épinay-sur-Orge (91216): sector 'nord' = north half of the AB bounding box."""
    parcels = read_parcels(epinay_parcelles)
    ab = parcels[parcels["section"] == "AB"]
    x0, y0, x1, y1 = ab.total_bounds
    folder = tmp_path / "epinay"
    folder.mkdir()
    gdf = gpd.GeoDataFrame(
        [{"id": "nord", "type": "secteur", "nom": "Secteur nord", "centre_ville": True}],
        geometry=[box(x0, (y0 + y1) / 2, x1, y1)],
        crs=L93,
    )
    (folder / "perimetres.geojson").write_text(perimeters_to_geojson(gdf), encoding="utf-8")
    (folder / "convention.toml").write_text(
        'nom = "ORT d\'essai"\nprogramme = "PVD"\ncommunes = ["91216"]\ndate_signature = 2023-01-18\n'
        'duree_ans = 5\n[[versions]]\nid = "initiale"\nlibelle = "Initiale"\ndate_effet = 2023-01-18\n'
        'fichier = "perimetres.geojson"\n',
        encoding="utf-8",
    )
    return folder, parcels


def _inside_and_outside(parcels, convention) -> tuple[str, str]:
    """One AB parcel wholly inside the sector and one wholly outside it."""
    from geo.classify import classify_parcels

    perims = convention.perimeters("2024-01-01", include_ort=False)
    res = classify_parcels(parcels[parcels["section"] == "AB"], perims)
    return res.loc[res["status"] == "inside", "idu"].iloc[0], res.loc[res["status"] == "outside", "idu"].iloc[
        0
    ]


def _register(folder: Path, inside: str, outside: str) -> Path:
    (folder / "actions").mkdir(exist_ok=True)
    text = f"""\
[axes]
1 = "Habitat"
2 = "Commerce"

[[actions]]
id = "H1"
titre = "Réhabilitation îlot nord"
axe = 1
statut = "en cours"
budget = 100000
[actions.localisation]
parcelles = ["{inside}"]
[[actions.financements]]
financeur = "Anah"
montant = 50000
statut = "acquis"
[[actions.financements]]
financeur = "Commune"
montant = 20000

[[actions]]
id = "H2"
titre = "Îlot sud"
axe = 1
statut = "projetée"
budget = 30000
localisation = {{ parcelles = ["{outside}"] }}
[[actions.financements]]
financeur = "Anah"
montant = 10000
statut = "sollicité"

[[actions]]
id = "C1"
titre = "Charte des devantures"
axe = 2
statut = "en réflexion"
localisation = {{ secteur = "Secteur nord" }}

[[actions]]
id = "C2"
titre = "Marché"
axe = 2
statut = "réalisée"
"""
    path = folder / "actions.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_dashboard_on_real_parcels(epinay_convention):
    folder, parcels = epinay_convention
    conv = read_convention(folder)
    inside, outside = _inside_and_outside(parcels, conv)
    reg = read_register(_register(folder, inside, outside), convention=conv, parcels=parcels)
    per = actions_per_sector(reg, perimeters=conv.perimeters("2024-01-01"), parcels=parcels)
    got = {(r.secteur, r.id, r.lien) for r in per.itertuples()}
    assert got == {
        ("nord", "C1", "déclaré"),
        ("nord", "H1", "inclus"),
        ("ort", "H1", "inclus"),
        ("hors-perimetres", "H2", "localisée hors des périmètres"),
    }
    fin = budgets_by_financeur(reg).set_index("financeur")
    assert fin.at["Anah", "acquis"] == 50000 and fin.at["Anah", "sollicité"] == 10000
    assert fin.at["Anah", "total"] == 60000 and fin.at["Anah", "actions"] == 2
    assert fin.at["Commune", "prévisionnel"] == 20000  # default status of a financing line
    assert fin.at["Total", "total"] == 80000
    assert fin.at["Budget des actions", "total"] == 130000
    assert fin.at["Reste à financer", "total"] == 50000
    assert unlocated_actions(reg)["id"].tolist() == ["C2"]
    table = axe_statut_table(reg).set_index("axe")
    assert [table.at["Total", s] for s in STATUTS] == [1, 1, 1, 1, 0]


def test_unknown_sector_and_parcels(epinay_convention):
    folder, parcels = epinay_convention
    conv = read_convention(folder)
    path = folder / "actions.toml"
    path.write_text(
        '[axes]\n1 = "Habitat"\n'
        '[[actions]]\nid = "X1"\ntitre = "t"\naxe = 1\nstatut = "en cours"\n'
        'localisation = { secteur = "Centre ancien" }\n'
        '[[actions]]\nid = "X2"\ntitre = "t"\naxe = 1\nstatut = "en cours"\n'
        'localisation = { parcelles = ["62907000AB0685", "AB 9999"], commune = "91216" }\n'
        '[[actions]]\nid = "X3"\ntitre = "t"\naxe = 1\nstatut = "en cours"\n'
        'localisation = { fichier = "actions/absent.geojson", point = [48.68, 2.32] }\n',
        encoding="utf-8",
    )
    with pytest.raises(ValidationFailed) as err:
        read_register(path, convention=conv, parcels=parcels)
    got = {(p.code, p.feature) for p in err.value.report.errors}
    assert got == {
        ("unknown-sector", "action X1"),
        ("parcel-commune", "action X2"),
        ("unknown-parcel", "action X2"),
        ("missing-file", "action X3"),
        ("bad-point", "action X3"),
    }
    text = str(err.value.report)
    assert "nord (Secteur nord)" in text and "91216000AB9999" in text and "inversées" in text


# --- CLI -------------------------------------------------------------------------------------


def test_cli_actions_libercourt(tmp_path):
    out = tmp_path / "tableau.xlsx"
    result = CliRunner().invoke(geo.cli.main, ["actions", "--perimeters", str(LIBERCOURT), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "44 action(s), 5 axe(s)" in result.output
    assert "Actions non localisées : 44 sur 44" in result.output
    total = next(line for line in result.output.splitlines() if line.strip().startswith("Total"))
    assert total.split()[1:] == ["16", "17", "11", "0", "0", "44", "32"]
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == [
        "Actions",
        "Axes et statuts",
        "Financeurs",
        "Secteurs",
        "Actions par secteur",
        "Non localisées",
    ]
    sheet = wb["Actions"]
    assert sheet["A1"].value == "Registre des actions" and sheet["A2"].value.startswith("Source : registre")
    assert sheet["A4"].value == "Action" and sheet.freeze_panes == "A5"
    assert sheet.max_row == 4 + 44
    again = CliRunner().invoke(geo.cli.main, ["actions", "--perimeters", str(LIBERCOURT), "-o", str(out)])
    assert again.exit_code != 0 and "existe déjà" in again.output


def test_cli_actions_csv_and_errors(tmp_path):
    out = tmp_path / "actions.csv"
    ok = CliRunner().invoke(
        geo.cli.main, ["actions", "--register", str(LIBERCOURT / "actions.toml"), "-o", str(out)]
    )
    assert ok.exit_code == 0, ok.output
    table = read_excel_csv(out)
    assert len(table) == 44 and set(table["localisation"]) == {"non localisé"}
    assert table["fiche_action"].value_counts().to_dict() == {"oui": 32, "non": 12}
    bad = tmp_path / "actions.toml"
    bad.write_text(BAD, encoding="utf-8")
    result = CliRunner().invoke(geo.cli.main, ["actions", "--register", str(bad)])
    assert result.exit_code == geo.cli.options.EXIT_BAD_INPUT
    assert "8 erreur(s)" in result.output and "duplicate-id" in result.output
