"""Diagnostic tables and charts (geo.diagnostic) and the demo's fictional places (geo.demo.places).

On the embedded demo built in a temporary folder, and on the real national lists, Cartofriches
sites and commune boundaries of ../shared/data (read in place).
"""

from __future__ import annotations

import datetime as dt
import shutil

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from geo import diagnostic as D
from geo.classify import STRADDLING, classify_parcels
from geo.demo.commune import build_demo
from geo.demo.places import build_demo_places
from geo.errors import CRSError, InputError
from geo.perimeters import read_convention
from geo.places.actions import STATUTS, actions_per_sector, budgets_by_financeur, read_register
from geo.places.friches import read_friches
from geo.places.housing import locate_sites, read_housing, sites_in_perimeters
from geo.sources.cadastre import load_cadastre
from geo.sources.lists import load_lists

DAY = "2024-09-01"  # avenant n°1 (extension of the gare sector) in force


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    paths = build_demo(data_dir=root / "data" / "demo", perimeters_dir=root / "perimeters" / "demo")
    places = build_demo_places(paths.perimeters_dir, paths.data_dir)
    conv = read_convention(paths.perimeters_dir)
    parcels = load_cadastre(conv.communes, source_dir=paths.data_dir)["parcelles"]
    return paths, places, conv, parcels


@pytest.fixture(scope="module")
def perimeters(demo):
    return demo[2].perimeters(DAY)


@pytest.fixture(scope="module")
def classification(demo, perimeters):
    return classify_parcels(demo[3], perimeters, with_distance=False, only_intersecting=True)


@pytest.fixture(scope="module")
def register(demo):
    _, places, conv, parcels = demo
    return read_register(places.register, convention=conv, parcels=parcels)


@pytest.fixture(scope="module")
def lists(shared_data):
    return load_lists(shared_data)


# --------------------------------------------------------------------------------------------
# Demo places


def test_demo_places_are_byte_identical_between_builds(demo, tmp_path):
    _, places, _, _ = demo
    paths = build_demo(data_dir=tmp_path / "d", perimeters_dir=tmp_path / "p")
    again = build_demo_places(paths.perimeters_dir, paths.data_dir)
    assert again.register.read_bytes() == places.register.read_bytes()
    assert again.housing.read_bytes() == places.housing.read_bytes()
    forced = build_demo_places(paths.perimeters_dir, paths.data_dir, force=True)
    assert forced.register.read_bytes() == places.register.read_bytes()


def test_demo_places_do_not_overwrite_without_force(demo, tmp_path):
    paths, places, _, _ = demo
    p, d = tmp_path / "p", tmp_path / "d"
    shutil.copytree(paths.perimeters_dir, p)
    shutil.copytree(paths.data_dir, d)
    (p / "actions.toml").write_text("# edited by hand\n", encoding="utf-8")
    build_demo_places(p, d)
    assert (p / "actions.toml").read_text(encoding="utf-8") == "# edited by hand\n"
    build_demo_places(p, d, force=True)
    assert (p / "actions.toml").read_bytes() == places.register.read_bytes()


def test_demo_places_refuse_a_real_convention(demo, tmp_path):
    paths = demo[0]
    real = tmp_path / "reelle"
    shutil.copytree(paths.perimeters_dir, real)
    toml = (real / "convention.toml").read_text(encoding="utf-8")
    (real / "convention.toml").write_text(toml.replace("fictif = true", "fictif = false"), encoding="utf-8")
    (real / "actions.toml").unlink(missing_ok=True)
    with pytest.raises(InputError, match="convention réelle"):
        build_demo_places(real, paths.data_dir)
    assert not (real / "actions.toml").exists()


def test_demo_register_is_valid_and_fictional(demo, register):
    text = demo[1].register.read_text(encoding="utf-8")
    assert text.startswith("# Registre des actions FICTIF")
    assert not register.report.problems, str(register.report)  # no error, no warning (over-financed…)
    assert len(register.axes) == 5 and len(register.actions) == 14
    assert {a.statut for a in register.actions} == set(STATUTS)
    assert all(a.titre.endswith("(action fictive)") for a in register.actions)
    kinds = {a.localisation.kind for a in register.actions}
    assert kinds == {"secteur", "parcelles", "point", "aucune"}
    for a in register.actions:
        if a.budget is not None:
            assert sum(f.montant for f in a.financements) <= a.budget, a.id
    assert sum(a.budget or 0 for a in register.actions) == 7_660_000


def test_demo_actions_fall_in_their_sectors(demo, register, perimeters):
    _, _, conv, parcels = demo
    per = actions_per_sector(register, perimeters=perimeters, parcels=parcels)
    where = per.groupby("id")["secteur"].apply(set)
    assert {"centre-ville", "opah-ru-centre", "ort"} <= where["A1-03"]
    assert where["A1-04"] == {"gare", "ort"}
    assert where["A3-02"] == {"faubourg", "ort"}
    assert where["A5-02"] == {"hors-perimetres"}
    assert where["A5-01"] == {"gare"}  # declared
    # A1-04 lies in the extension of the gare sector made by the avenant: outside it before.
    before = actions_per_sector(register, perimeters=conv.perimeters("2023-06-01"), parcels=parcels)
    assert set(before.loc[before["id"] == "A1-04", "secteur"]) == {"hors-perimetres"}


def test_demo_housing_sites_by_sector(demo, perimeters):
    _, places, conv, parcels = demo
    sites = read_housing(places.housing)
    assert len(sites) == 11 and sites["bailleur"].str.contains("fictif").all()
    located = locate_sites(sites, metric_crs=conv.metric_crs, parcels=parcels, communes=conv.communes)
    lost = located.unlocated()
    assert list(lost["site_id"]) == ["LS-11"] and "fichier d'adresses" in lost["motif"].iloc[0]
    assert located.outside().empty
    inp = sites_in_perimeters(located, perimeters)
    ls04 = inp[(inp["site_id"] == "LS-04") & (inp["perimeter_id"] == "centre-ville")]
    assert ls04["status"].tolist() == [STRADDLING] and 0.3 < ls04["share"].iloc[0] < 0.7
    assert set(inp.loc[inp["site_id"].isin(["LS-09", "LS-10"]), "perimeter_id"]) == {"hors-perimetres"}
    table = D.housing_per_sector(inp, perimeters=perimeters).set_index("perimeter_id")
    assert list(table.index) == [*perimeters["perimeter_id"], "hors-perimetres", "non-localise"]
    assert table.loc["centre-ville", ["sites", "logements", "dont_a_cheval"]].tolist() == [
        4,
        48 + 24 + 12 + 30,
        1,
    ]
    assert table.loc["faubourg", ["sites", "logements", "sites_sans_nombre"]].tolist() == [2, 64, 1]
    assert table.loc["ort", "sites"] == 8 and table.loc["non-localise", "logements"] == 25
    # LS-06 is in the gare sector only since the avenant.
    early = sites_in_perimeters(located, conv.perimeters("2023-06-01"))
    assert set(early.loc[early["site_id"] == "LS-06", "perimeter_id"]) == {"hors-perimetres"}
    assert D.housing_per_sector(inp.iloc[0:0], perimeters=perimeters)["sites"].sum() == 0


# --------------------------------------------------------------------------------------------
# One convention


def test_sector_table_counts_and_areas(demo, perimeters, classification):
    parcels = demo[3]
    table = D.sector_table(classification, perimeters).set_index("perimeter_id")
    assert list(table.index) == list(perimeters["perimeter_id"])
    geoms = perimeters.set_index("perimeter_id").geometry
    for pid in ("centre-ville", "gare", "faubourg"):
        # independent count: parcels with more than the tolerance (1 m² or 0.5 %) in the sector
        inter = parcels.geometry.intersection(geoms[pid]).area
        touching = int((inter > np.maximum(1.0, 0.005 * parcels.area)).sum())
        row = table.loc[pid]
        assert abs(row["parcelles_incluses"] + row["parcelles_a_cheval"] - touching) <= 1, pid
        assert row["surface_parcelles_ha"] == pytest.approx(inter.sum() / 1e4, rel=1e-3)
        assert row["surface_ha"] == pytest.approx(geoms[pid].area / 1e4, abs=0.01)
        assert 0.6 < row["part_parcellaire"] < 0.95  # streets are not parcels
    sectors = table.loc[["centre-ville", "gare", "faubourg"], "surface_ha"].sum()
    assert table.loc["ort", "surface_ha"] == pytest.approx(sectors, rel=1e-3)  # disjoint sectors
    assert table.loc["centre-ville", "centre_ville"] and not table.loc["gare", "centre_ville"]
    assert (
        table.loc["gare", "surface_ha"]
        > 1.5
        * D.sector_table(classification, demo[2].perimeters("2023-06-01"))
        .set_index("perimeter_id")
        .loc["gare", "surface_ha"]
    )


def test_straddling_parcels(classification, perimeters):
    cut = D.straddling_parcels(classification)
    assert len(cut) and "ort" not in set(cut["perimeter_id"])
    assert ((cut["share"] > 0) & (cut["share"] < 1)).all()
    assert np.allclose(cut["area_inside_m2"] + cut["area_outside_m2"], cut["parcel_area_m2"])
    for _, part in cut.groupby("perimeter_id"):
        assert part["share"].is_monotonic_increasing
    table = D.sector_table(classification, perimeters).set_index("perimeter_id")
    counts = cut["perimeter_id"].value_counts()
    for pid, n in counts.items():
        assert table.loc[pid, "parcelles_a_cheval"] == n
    with_ort = D.straddling_parcels(classification, include_ort=True)
    assert (with_ort["perimeter_id"] == "ort").sum() == table.loc["ort", "parcelles_a_cheval"]


def test_budgets_by_axe(register):
    table = D.budgets_by_axe(register).set_index("axe")
    total = table.loc["Total"]
    assert total["budget"] == 7_660_000 and total["actions"] == 14 and total["actions_avec_budget"] == 10
    assert table.drop(index="Total")["budget"].sum() == total["budget"]
    fin = budgets_by_financeur(register).set_index("financeur").loc["Total"]
    for s in ("prévisionnel", "sollicité", "acquis", "refusé"):
        assert total[s] == fin[s]
    # refused lines (FEDER 150 000, Région 100 000) are not financing
    refused = sum(f.montant for a in register.actions for f in a.financements if f.statut == "refusé")
    assert refused == 250_000
    assert total["reste_a_financer"] == 7_660_000 - (fin["total"] - refused)
    assert table.loc["4", "reste_a_financer"] == 0  # Maison France services fully financed
    pivot = D.budget_axe_statut(register)
    assert pivot[list(STATUTS)].to_numpy().sum() == 7_660_000
    assert pivot.set_index("axe").loc["3", "abandonnée"] == 300_000


def test_actions_layer(demo, register):
    _, _, conv, parcels = demo
    layer = D.actions_layer(register, metric_crs=conv.metric_crs, parcels=parcels)
    assert str(layer.crs) == conv.metric_crs and len(layer) == 14
    located = set(layer.loc[layer.geometry.notna(), "id"])
    assert located == {a.id for a in register.actions if a.localisation.kind in ("parcelles", "point")}
    a103 = next(a for a in register.actions if a.id == "A1-03")
    want = parcels[parcels["idu"].isin(a103.localisation.parcelles)].area.sum()
    assert layer.set_index("id").geometry["A1-03"].area == pytest.approx(want, rel=1e-6)


# --------------------------------------------------------------------------------------------
# Real data: friches, national lists, boundaries


def test_friches_of_libercourt_by_status(shared_data):
    path = D.friches_file(shared_data)
    assert path is not None and path.name.startswith("cartofriches-sites-")
    friches = read_friches(path, communes=["62907"])
    table = D.friches_by_status(friches).set_index("site_statut")
    assert table["nombre"].to_dict() == {
        "friche potentielle": 1,
        "friche sans projet": 1,
        "friche avec projet": 2,
        "site avec projet": 1,
        "Total": 5,
    }
    assert table.loc["Total", "surface_m2"] == round(friches["surface_m2"].sum())
    terril = friches.set_index("site_id").loc["62907_12806"]
    assert terril["site_statut"] == "friche sans projet"
    assert table.loc["friche sans projet", "surface_m2"] == round(terril["surface_m2"])


def test_data_files_absent_give_none(tmp_path):
    assert D.friches_file(tmp_path) is None
    assert D.commune_shapes(tmp_path) is None
    assert D.departement_names(tmp_path) == {}


def test_ort_signed_per_year(lists):
    table = D.ort_signed_per_year(lists)
    signed = int((lists["ort"]["signee"] == "signee").sum())
    assert table["total"].sum() == signed == table["cumul"].iloc[-1]
    assert table["annee"].iloc[-1] == "date inconnue"
    years = table["annee"].iloc[:-1].astype(int)
    assert years.is_monotonic_increasing and years.iloc[0] >= 2018
    assert (table[["ACV", "PVD", "autre"]].sum(axis=1) == table["total"]).all()
    assert table.set_index("annee").loc["2023", "PVD"] > table.set_index("annee").loc["2019", "PVD"]


def test_ort_per_departement(lists, shared_data):
    table = D.ort_per_departement(lists, names=D.departement_names(shared_data))
    ort = lists["ort"]
    assert table["signees"].sum() == (ort["signee"] == "signee").sum()
    assert table["total"].sum() == len(ort)
    row = table.set_index("departement").loc["62"]
    assert row["nom"] == "Pas-de-Calais"
    in62 = ort[ort["code_insee"].str.startswith("62")]
    assert row["signees"] == (in62["signee"] == "signee").sum()
    assert table["signees"].is_monotonic_decreasing


def test_programme_counts(lists):
    table = D.programme_counts(lists).set_index("programme")
    statuses = ["signée", "en cours", "non signée", "absente du suivi"]
    assert (table[statuses].sum(axis=1) == table["communes"]).all()
    assert 244 <= table.loc["ACV", "communes"] <= 250
    assert table.loc["PVD", "communes"] >= 1600
    assert table.loc["autre", "absente du suivi"] == 0
    earlier = D.programme_counts(lists, when=dt.date(2022, 1, 1)).set_index("programme")
    assert earlier.loc["PVD", "signée"] < table.loc["PVD", "signée"]


def test_programme_per_commune(lists):
    codes = ["62907", "62119", "62041", "62461", "62001"]
    table = D.programme_per_commune(lists, codes).set_index("code_insee")
    assert table.loc["62907", ["programme", "ort", "categorie"]].tolist() == [
        "PVD",
        "signée",
        "PVD, ORT signée",
    ]
    assert table.loc["62119", "categorie"] == "ACV" and table.loc["62041", "categorie"] == "ACV"
    assert table.loc["62461", "code_actuel"] == "62447"  # former commune, resolved
    assert set(table["categorie"]) <= set(D.PROGRAMME_COLOURS)
    # Libercourt signed on 2023-01-18
    before = D.programme_per_commune(lists, ["62907"], when=dt.date(2022, 12, 31))
    assert before["categorie"].tolist() == ["PVD, ORT non signée"]


def test_commune_shapes_and_programme_map(lists, shared_data):
    shapes = D.commune_shapes(shared_data, departement="62")
    assert len(shapes) == 891 and str(shapes.crs) == "EPSG:2154"
    assert shapes["code_insee"].str.fullmatch(r"62\d{3}").all()
    assert "Libercourt" in set(shapes["nom"])
    cats = D.programme_per_commune(lists, shapes["code_insee"])
    joined = shapes.merge(cats, on="code_insee")
    fig = D.programme_map_figure(joined, title="Pas-de-Calais")
    assert isinstance(fig, Figure)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    counts = joined["categorie"].value_counts()
    for cat in D.PROGRAMME_COLOURS:
        assert f"{cat} ({counts.get(cat, 0)})" in labels
    assert counts.get("ACV", 0) >= 5
    with pytest.raises(CRSError):
        D.programme_map_figure(joined.to_crs("EPSG:4326"))


def test_bar_figure():
    table = pd.DataFrame({"axe": ["1", "2", "3"], "a": [1.0, 2.0, 0.0], "b": [3.0, 0.0, 1000.0]})
    fig = D.bar_figure(table, index="axe", columns=["a", "b"], title="Budgets", ylabel="€")
    ax = fig.axes[0]
    assert len(fig.axes) == 1 and ax.get_title() == "Budgets" and ax.get_ylabel() == "€"
    assert len(ax.patches) == 6
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    heights = sorted(p.get_height() for p in ax.patches)
    assert heights[-1] == 1000.0
    one = D.bar_figure(table, index="axe", columns=["a"], title="t", horizontal=True)
    assert one.axes[0].get_legend() is None and one.axes[0].yaxis_inverted()
    widths = [p.get_width() for p in one.axes[0].patches]
    assert widths == [1.0, 2.0, 0.0]


def test_bar_figure_ticks_never_repeat():
    """Counts got ticks at 0, 0.5, 1... printed without decimals: « 0 0 1 1 2 » (issue 25, item 10)."""
    counts = pd.DataFrame({"axe": ["1", "2", "3"], "en cours": [1, 2, 0], "projetée": [0, 1, 1]})
    hectares = pd.DataFrame({"statut": ["a", "b"], "surface_ha": [0.3, 0.75]})
    for fig, axis in (
        (D.bar_figure(counts, index="axe", columns=["en cours", "projetée"], title="t"), "y"),
        (D.bar_figure(hectares, index="statut", columns=["surface_ha"], title="t", horizontal=True), "x"),
    ):
        ax = fig.axes[0]
        fig.canvas.draw()
        ticks = (ax.yaxis if axis == "y" else ax.xaxis).get_ticklabels()
        labels = [t.get_text() for t in ticks if t.get_text()]
        assert len(labels) >= 3 and len(labels) == len(set(labels)), labels
    ax = D.bar_figure(counts, index="axe", columns=["en cours"], title="t").axes[0]
    assert all(float(v).is_integer() for v in ax.get_yticks())
    assert D._tick_label(1234.0) == "1\u202f234" and D._tick_label(0.5) == "0,5"


def test_french_table_for_notebooks(classification):
    from geo.columns import french_table

    cut = french_table(D.straddling_parcels(classification))
    assert {"perimetre_id", "perimetre_nom", "part_incluse_pct", "surface_incluse_m2", "reference"} <= set(
        cut.columns
    )
    assert not {"perimeter_id", "share", "area_inside_m2"} & set(cut.columns)
    assert cut["part_incluse_pct"].between(0, 100).all()


def test_sector_table_refuses_degrees(perimeters, classification):
    with pytest.raises(CRSError):
        D.sector_table(classification, gpd.GeoDataFrame(perimeters).to_crs("EPSG:4326"))
