"""Typed reading of the files people edit: convention.toml and perimeter properties.

Strict types (a string is not a boolean, ``true`` is not a number, a quoted date is not a
date), every problem at once with the file, the feature and the fix, in French; and inputs
bounded in size and nesting before they are parsed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from geo import schema, settings
from geo.cli import main
from geo.errors import InputError, ValidationFailed, ValidationReport
from geo.perimeters import read_convention
from geo.validate import validate_convention

SQUARE = [[2.30, 48.60], [2.301, 48.60], [2.301, 48.601], [2.30, 48.601], [2.30, 48.60]]
TOML = """\
nom = "Test"
programme = "PVD"
communes = ["91216"]
date_signature = 2023-01-18
duree_ans = 5
fictif = false
crs = "EPSG:4326"

[[versions]]
id = "initiale"
libelle = "Convention initiale"
date_effet = 2023-01-18
fichier = "perimetres.geojson"
"""
# English that pydantic would have said; none of it may reach a user.
ENGLISH = re.compile(r"Input should|Field required|Extra inputs|valid (boolean|number|date|string)|pydantic")


def _sector(**props) -> dict:
    base = {"id": "centre", "type": "secteur", "nom": "Centre", "centre_ville": True}
    return {
        "type": "Feature",
        "properties": {**base, **props},
        "geometry": {"type": "Polygon", "coordinates": [SQUARE]},
    }


def _convention(folder: Path, toml: str = TOML, features: tuple = (), geojson: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "convention.toml").write_text(toml, encoding="utf-8")
    fc = {"type": "FeatureCollection", "features": list(features or (_sector(),))}
    (folder / "perimetres.geojson").write_text(geojson if geojson is not None else json.dumps(fc))
    return folder


def _errors(report: ValidationReport) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in report.errors:
        out.setdefault(p.code, []).append(f"[{p.feature}] {p.message}")
    assert not any(ENGLISH.search(p.message) for p in report.problems), report
    return out


# --- booleans that are strings ------------------------------------------------------------------


@pytest.mark.parametrize("word", ["non", "false", "Non", "0", ""])
def test_centre_ville_as_text_is_refused_with_the_fix(tmp_path, word):
    """``"centre_ville": "non"`` used to count as true: the AEC exemption flipped to OUI."""
    folder = _convention(tmp_path / "conv", features=(_sector(centre_ville=word),))
    with pytest.raises(ValidationFailed) as err:
        read_convention(folder).perimeters("2024-01-01")
    problems = [p for p in err.value.report.errors if p.code == "bad-type"]
    assert len(problems) == 1 and problems[0].feature == "id=centre", err.value.report
    assert problems[0].source.endswith("perimetres.geojson")
    assert problems[0].message == (
        f'centre_ville = {json.dumps(word)} est un texte, pas un booléen — écrivez "centre_ville": false '
        "(sans guillemets)"
    )
    assert "centre_ville" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(("value", "shown"), [("oui", '"oui"'), (1, "1"), ([True], "une liste")])
def test_centre_ville_must_be_a_json_boolean(tmp_path, value, shown):
    folder = _convention(tmp_path / "conv", features=(_sector(centre_ville=value),))
    report = validate_convention(folder)
    assert any(f"centre_ville = {shown}" in m for m in _errors(report)["bad-type"]), report


def test_centre_ville_false_and_absent_are_false(tmp_path):
    folder = _convention(
        tmp_path / "conv",
        features=(_sector(centre_ville=False), _sector(id="gare", centre_ville=None), _sector(id="x")),
    )
    (folder / "perimetres.geojson").write_text(
        (folder / "perimetres.geojson").read_text().replace('"centre_ville": true', '"autre": 1')
    )
    perims = read_convention(folder).perimeters("2024-01-01", include_ort=False)
    assert perims["centre_ville"].tolist() == [False, False, False]


def test_convention_booleans_numbers_and_dates_are_typed(tmp_path):
    """fictif = "false" stamped outputs as fictional; duree_ans = true meant one year."""
    toml = (
        TOML.replace("fictif = false", 'fictif = "false"')
        .replace("duree_ans = 5", "duree_ans = true")
        .replace("date_signature = 2023-01-18", 'date_signature = "2023-01-18"')
        .replace("date_effet = 2023-01-18", "date_effet = 2023-01-18T10:00:00")
    )
    report = validate_convention(_convention(tmp_path / "conv", toml=toml))
    errors = _errors(report)
    assert errors["bad-type"] == [
        "[] duree_ans = true n'est pas un nombre — écrivez duree_ans = 5 (un nombre, sans guillemets)",
        '[] fictif = "false" est un texte, pas un booléen — écrivez fictif = false (sans guillemets)',
    ]
    assert errors["bad-date"] == [
        '[] date_signature = "2023-01-18" est un texte, pas une date — écrivez date_signature = 2023-01-18 '
        "(sans guillemets)",
        "[versions[0]] date_effet = 2023-01-18T10:00:00 n'est pas une date — écrivez date_effet = 2023-01-18 "
        "(AAAA-MM-JJ)",
    ]
    with pytest.raises(ValidationFailed, match=r"\(\+3 autres\)"):
        read_convention(tmp_path / "conv")


def test_every_problem_at_once_with_feature_and_fix(tmp_path):
    toml = (
        TOML.replace('programme = "PVD"', 'programme = "pvd"')
        .replace('["91216"]', '[91216, "9121"]')
        .replace("fictif = false", "fictif = false\nfictf = true")
        .replace('fichier = "perimetres.geojson"', 'fichier = "perimetres.geojson"\ncouleur = "rouge"')
    )
    report = validate_convention(_convention(tmp_path / "conv", toml=toml))
    errors = _errors(report)
    assert errors["bad-programme"] == [
        '[] programme = "pvd" n\'est pas une valeur permise — vouliez-vous dire « PVD » ? '
        "valeurs possibles : ACV, PVD, autre"
    ]
    assert errors["insee-as-number"] == [
        "[] communes[0] = 91216 est écrit comme un nombre : un code INSEE est un texte de 5 caractères — "
        'écrivez "91216" entre guillemets (le zéro initial compte)'
    ]
    assert errors["bad-insee"][0].startswith('[] communes[1] = "9121" n\'est pas un code INSEE')
    warnings = {(p.feature, p.message) for p in report.warnings}
    assert ("", "champ 'fictf' inconnu (ignoré) — vouliez-vous dire 'fictif' ?") in warnings
    assert any(f == "versions[0]" and m.startswith("champ 'couleur' inconnu") for f, m in warnings)
    assert all(p.source.endswith("convention.toml") for p in report.problems)


def test_missing_fields_say_what_to_write(tmp_path):
    toml = TOML.replace('programme = "PVD"\n', "").replace("date_effet = 2023-01-18\n", "")
    report = validate_convention(_convention(tmp_path / "conv", toml=toml))
    assert _errors(report)["missing-field"] == [
        "[] champ 'programme' absent — ajoutez programme = \"PVD\"",
        "[versions[0]] champ 'date_effet' absent — ajoutez date_effet = 2024-07-01",
    ]


def test_real_conventions_still_read():
    root = Path(__file__).resolve().parent.parent / "perimeters"
    for slug in ("demo", "libercourt"):
        report = validate_convention(root / slug)
        assert not report.errors and not [p for p in report.warnings if p.code == "unknown-field"], report


def test_geojson_dates_are_iso_text(tmp_path):
    opah = _sector(id="opah", type="opah_ru", centre_ville=False, date_debut="01/01/2024", date_fin=20281231)
    report = validate_convention(_convention(tmp_path / "conv", features=(_sector(), opah)))
    assert _errors(report)["bad-date"] == [
        '[id=opah] date_debut = "01/01/2024" n\'est pas une date AAAA-MM-JJ — écrivez-la au format ISO '
        'entre guillemets, p. ex. "2024-01-01"',
        "[id=opah] date_fin = 20281231 n'est pas une date AAAA-MM-JJ — écrivez-la au format ISO "
        'entre guillemets, p. ex. "2024-01-01"',
    ]


# --- sizes and depth, checked before parsing ----------------------------------------------------


def test_deep_dotted_keys_are_refused_before_parsing(tmp_path):
    """A 200 KB convention.toml of dotted keys grew to 19 GB in tomllib; now refused at once.

    Run in a child limited to 1 GB of address space: before the fix it died of MemoryError.
    """
    folder = tmp_path / "bombe"
    folder.mkdir()
    (folder / "convention.toml").write_text(TOML + "a" + ".a" * 100_000 + " = 1\n")
    code = textwrap.dedent(
        f"""
        import resource, time
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from geo.errors import InputError
        from geo.perimeters import read_convention
        start = time.perf_counter()
        try:
            read_convention({str(folder)!r})
        except InputError as err:
            print(round(time.perf_counter() - start, 2), err)
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-500:]
    seconds, message = r.stdout.split(" ", 1)
    assert float(seconds) < 2
    assert "imbrication trop profonde (100001 niveaux" in message and "au plus 32" in message
    assert "convention.toml" in message and "ORT_MAX_IMBRICATION" in message


@pytest.mark.parametrize(
    "text",
    [
        "x = " + "[" * 40 + "]" * 40,
        "x = " + "{a = " * 40 + "1" + "}" * 40,
        "[" + ".".join(["t"] * 40) + "]\nx = 1",
        '"a"."b"' + '."c"' * 40 + " = 1",
    ],
    ids=["arrays", "inline-tables", "header", "quoted-keys"],
)
def test_toml_nesting_is_bounded(tmp_path, text):
    path = tmp_path / "convention.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=r"imbrication trop profonde \(4\d niveaux"):
        schema.read_toml(path)


def test_dots_and_brackets_in_strings_and_comments_do_not_count(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text(
        'source = "Art. 4. a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.a.b.c.d.e.f.g [[[[[[[["\n'
        "# a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.a.b.c.d.e.f.g.h [[[[[[[[[[[[[[[[[[[[\n"
        "note = '''\n" + "[" * 50 + "\n'''\nduree = 1.5\n"
    )
    assert schema.read_toml(path)["duree"] == 1.5


def test_deep_geojson_is_refused_before_parsing(tmp_path):
    """Deeply nested JSON arrays used to exhaust the stack (RecursionError, an internal error)."""
    folder = _convention(
        tmp_path / "conv", geojson='{"type": "FeatureCollection", "features": ' + "[" * 50_000
    )
    report = validate_convention(folder)
    assert _errors(report)["invalid-json"] == [
        "[] imbrication trop profonde (50001 niveaux de tables, listes ou clés pointées ; au plus 32) : "
        "fichier refusé avant lecture — vérifiez le fichier (exporté en GeoJSON UTF-8, p. ex. depuis QGIS) ; "
        "la limite se règle avec ORT_MAX_IMBRICATION"
    ]


def test_sizes_are_bounded_and_configurable(tmp_path, monkeypatch):
    folder = _convention(tmp_path / "conv")
    monkeypatch.setattr(settings, "max_toml_bytes", 100)
    with pytest.raises(InputError, match=r"convention.toml: convention.toml trop gros : plus de 100 octets"):
        read_convention(folder)
    monkeypatch.setattr(settings, "max_toml_bytes", 10_000)
    monkeypatch.setattr(settings, "max_json_bytes", 100)
    report = validate_convention(folder)
    assert _errors(report)["invalid-json"][0].startswith(
        "[] fichier de périmètres trop gros : plus de 100 octets"
    )
    r = CliRunner().invoke(main, ["validate", str(folder)])
    assert r.exit_code != 0 and "trop gros" in r.output and "Traceback" not in r.output


def test_geojson_in_a_string_does_not_count_as_nesting():
    assert schema.json_depth(json.dumps({"a": "[" * 100, "b": [[1]]}).encode()) == 3


# --- action register ----------------------------------------------------------------------------

REGISTER = """\
titre = "Plan d'action"
date_maj = 2024-06-30

[axes]
1 = "Habitat"

[[actions]]
id = "A1"
titre = "Étude pré-opérationnelle d'OPAH-RU"
axe = 1
statut = "Projetee"
fiche_action = true
budget = 80_000
partenaires = ["Anah"]
[actions.localisation]
commune = "62907"
parcelles = ["AB 685"]
"""


def _register(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "actions.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_register_reads_typed_actions(tmp_path):
    from geo.places.actions import read_register

    reg = read_register(_register(tmp_path, REGISTER))
    (a,) = reg.actions
    assert (a.id, a.axe, a.statut, a.fiche_action, a.budget) == ("A1", "1", "projetée", True, 80000.0)
    assert a.localisation.parcelles == ("62907000AB0685",) and a.partenaires == ("Anah",)
    assert reg.report.problems == []


def test_register_values_of_the_wrong_type_are_refused(tmp_path):
    """Before, ``titre = 2024``, ``maitre_ouvrage = true``, ``secteur = 5`` and ``date_maj = "hier"``
    were read as the texts "2024", "True", "5" and a silently ignored date."""
    from geo.places.actions import read_register

    text = (
        REGISTER.replace("date_maj = 2024-06-30", 'date_maj = "hier"')
        .replace('titre = "Étude pré-opérationnelle d\'OPAH-RU"', "titre = 2024\nmaitre_ouvrage = true")
        .replace("fiche_action = true", 'fiche_action = "oui"\navancement = true')
        .replace('parcelles = ["AB 685"]', 'parcelles = ["AB 685"]\nsecteur = 5')
    )
    with pytest.raises(ValidationFailed) as err:
        read_register(_register(tmp_path, text))
    got = {(p.feature, p.message) for p in err.value.report.errors}
    assert got == {
        ("", 'date_maj = "hier" n\'est pas une date — écrivez date_maj = 2023-01-18 (AAAA-MM-JJ)'),
        (
            "action A1",
            "titre = 2024 n'est pas un texte — "
            'écrivez titre = "Étude préalable d\'OPAH-RU" (entre guillemets)',
        ),
        (
            "action A1",
            "maitre_ouvrage = true n'est pas un texte — "
            'écrivez maitre_ouvrage = "CA Hénin-Carvin" (entre guillemets)',
        ),
        (
            "action A1",
            'fiche_action = "oui" est un texte, pas un booléen — '
            "écrivez fiche_action = true (sans guillemets)",
        ),
        (
            "action A1",
            "avancement = true n'est pas un nombre — écrivez avancement = 40 (un nombre, sans guillemets)",
        ),
        (
            "action A1",
            "localisation.secteur = 5 n'est pas un texte — "
            'écrivez secteur = "centre-ville" (entre guillemets)',
        ),
    }
    assert not any(ENGLISH.search(p.message) for p in err.value.report.problems)


def test_register_keeps_what_it_could_read_when_not_strict(tmp_path):
    """The map draws a register with errors: the values in error are left out, not the action."""
    from geo.places.actions import read_register

    text = REGISTER.replace("budget = 80_000", 'budget = "80 000 €"').replace('"Projetee"', '"en cour"')
    reg = read_register(_register(tmp_path, text), strict=False)
    (a,) = reg.actions
    assert a.budget is None and a.statut == "en cour" and a.fiche_action is True
    assert a.localisation.parcelles == ("62907000AB0685",)
    assert {p.code for p in reg.report.errors} == {"bad-amount", "unknown-status"}


def test_register_dotted_key_bomb_is_refused(tmp_path):
    from geo.places.actions import read_register

    path = _register(tmp_path, REGISTER + "x" + ".y" * 50_000 + " = 1\n")
    with pytest.raises(InputError, match=r"actions.toml: imbrication trop profonde \(50001 niveaux"):
        read_register(path)


def test_friches_geojson_bounded_before_parsing(tmp_path, monkeypatch):
    from geo.places.friches import read_friches

    path = tmp_path / "friches.geojson"
    site = {"site_id": "s1", "site_statut": "friche sans projet", "comm_insee": "62907"}
    feature = {
        "type": "Feature",
        "properties": site,
        "geometry": {"type": "Point", "coordinates": [3.01, 50.48]},
    }
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    monkeypatch.setattr(settings, "max_json_bytes", 100)
    with pytest.raises(
        InputError, match="friches.geojson: fichier de friches trop gros : plus de 100 octets"
    ):
        read_friches(path)
    monkeypatch.setattr(settings, "max_json_bytes", 10_000)
    monkeypatch.setattr(settings, "max_nesting", 3)
    with pytest.raises(InputError, match=r"imbrication trop profonde \(5 niveaux.*au plus 3\)"):
        read_friches(path)
