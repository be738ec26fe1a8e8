"""The eligibility job as a library function: its models are the CLI's --json, it is safe from
several threads, and the text answer is readable (issue 22 item 7, issue 24)."""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor

from click.testing import CliRunner

from geo.cli import main
from geo.eligibility.rules import load_rules
from geo.eligibility.service import answer_eligibility
from geo.sources.lists import load_lists


def test_library_result_is_the_cli_json(shared_data):
    """Cherbourg-en-Cotentin and its delegated commune Tourlaville on 01/06/2024."""
    lists, rules = load_lists(shared_data), load_rules()
    asked = [("50129", "--commune"), ("50602", "--commune")]
    result = answer_eligibility(dt.date(2024, 6, 1), lists=lists, rules=rules, communes=asked)
    cli = CliRunner().invoke(
        main,
        ["eligibility", "--commune", "50129", "--commune", "50602", "--date", "2024-06-01", "--json"]
        + ["--lists", str(shared_data)],
    )
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.stdout) == json.loads(result.to_json())
    (rep,) = [r for r in result.resultats[1].reponses if r.regle == "denormandie"]
    assert rep.verdict == "oui" and rep.portee == "toute la commune" and rep.reference.startswith("CGI")
    assert any("liste" in d.lower() for d in rep.donnees)


def test_same_answers_from_several_threads(shared_data):
    lists, rules = load_lists(shared_data), load_rules()
    codes = ["62907", "50602", "05061", "59295", "06029", "62498"]

    def ask(code):
        day = dt.date(2024, 6, 1)
        return answer_eligibility(day, lists=lists, rules=rules, communes=[(code, "--commune")]).to_json()

    alone = [ask(c) for c in codes]
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(ask, codes * 3))
    assert together == alone * 3


def test_parcel_text_says_scopes_and_warnings_once():
    """The demo parcel 62999000AB0012 on 01/09/2024 (straddling the centre-ville sector, 15 %):
    129 lines before; each shared warning once, CDAC's 85 % said outside the sectors,
    Denormandie's yes said commune-wide."""
    out = (
        CliRunner()
        .invoke(main, ["eligibility", "62999000AB0012", "--perimeters", "demo", "--date", "2024-09-01"])
        .output
    )
    out = out.replace("\u202f", " ").replace("\xa0", " ")  # French number spacing
    assert len(out.splitlines()) < 129
    assert "Suspension CDAC : PARTIELLEMENT [85,0 % de la parcelle hors des secteurs]" in out
    assert "Denormandie : OUI [effet communal : toute la commune]" in out
    straddling = "aucune règle juridique ne tranche le cas d'une parcelle à cheval"
    assert out.count(straddling) == 1


def test_communes_view_of_2019_lists_centre_only_communes(shared_data):
    """Manche (50) on 01/06/2019: Cherbourg-en-Cotentin and Saint-Lô are on the arrêté's list, but
    2019 acquisitions qualified in the centre only — neither « éligible » outright nor left out."""
    from geo.eligibility.service import eligible_communes_view

    lists, rules = load_lists(shared_data), load_rules()
    view = eligible_communes_view(
        "denormandie", dt.date(2019, 6, 1), lists=lists, rules=rules, departement="50"
    )
    assert view.data["communes"] == []
    assert {r["code_insee"] for r in view.data["partiellement"]} >= {"50129", "50502"}
    assert any("en partie seulement (centre de la commune)" in line for line in view.lines)
    total = next(r for r in view.data["comptes"] if r["departement"] == "total")
    assert total["total"] == len(view.data["partiellement"])
    # The motive line names the list read (the simulator's data), not "ACV 2018".
    (motive,) = [line for line in view.lines if line.startswith("Par motif")]
    assert "ACV 2018" not in motive and "ORT conclue hors de cette liste" in motive
    assert "244 communes" in motive and "simulateur service-public.fr" in motive
