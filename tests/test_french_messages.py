"""Every message a user can see is French: each ``ort`` command run with bad inputs of each kind.

The output (stdout and stderr) of each run is searched for English words and for Python
warning text (``Warning:``, ``RuntimeWarning``...). Paths of the test are blanked first
(they are the user's, not ours). A failure lists every offending line of every run at once.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from geo import embedded
from geo.cli import main

DEMO = embedded.convention_dir("demo")
DEMO_DATA = embedded.demo_dir()

#: English words that do not occur in French text (whole words, any case).
ENGLISH = re.compile(
    r"\b(not|the|found|already|exists?|unknown|expected|invalid|must|cannot|can't|missing|should|"
    r"does|doesn't|has|have|is|are|was|were|with|without|from|only|please|use|using|"
    r"error|warning|failed|file|folder|column|row|sector|parcel|perimeter|layer|outside|inside|"
    r"straddling|skipped|dropped|no such|did you mean|try|got|which|this|that|these|"
    r"none|empty|given|value|values|out of|overlap|lies|holds|"
    r"read|write|written|choose|required|between|either|neither|nor)\b",
    re.IGNORECASE,
)
#: Python's own warning and error texts.
PYTHON = re.compile(r"Warning:|Warning\b|Traceback|Exception:|Error:|\bTypeError\b|\bKeyError\b")
#: Numbers and dates written the English way: 15.0%, 5,635 m², "le 2024-07-01" in a sentence
#: (ISO dates stay where they are syntax: an example of what to type, a TOML value, a file name).
NUMBERS = re.compile(r"\d\.\d+\s?%|\b\d{1,3},\d{3}\b|\b(le|au|du|depuis le) \d{4}-\d{2}-\d{2}\b")
#: What is not prose: option names (--file), problem codes and command names (missing-field,
#: perimeter-from-parcels), file names, quoted values the user typed, a text's NOR identifier.
NOT_PROSE = re.compile(
    r"\bNOR [A-Z]{4}\d{7}[A-Z]\b|"
    r"--?[a-z][\w-]*|\b[a-z0-9]+(?:[-_][a-z0-9]+)+\b|\S+\.(csv|xlsx|toml|geojson|json|gpkg|html)\b|'[^']*'"
)


def _bad_files(root: Path) -> dict[str, Path]:
    files = {
        "garbage.csv": b"\x00\x01\x02garbage\xff\xfe",
        "empty.csv": b"",
        "nocol.csv": b"foo;bar\n1;2\n",
        "garbage.json": b'{"type": "FeatureCollection", "feat',
        "garbage.geojson": b"<html>503</html>",
        "garbage.toml": b"[[actions]\nid = ",
        "garbage.xlsx": b"PK\x03\x04garbage",
        "exists.csv": b"idu\n",
        "exists.html": b"<html></html>",
    }
    out = {}
    for name, data in files.items():
        (root / name).write_bytes(data)
        out[name] = root / name
    bad = root / "badconv"
    bad.mkdir()
    (bad / "convention.toml").write_text('nom = "X"\ncommunes = [62999]\n[[versions]]\n', encoding="utf-8")
    out["badconv"] = bad
    empty = root / "emptydir"
    empty.mkdir()
    out["emptydir"] = empty
    return out


def _cases(root: Path, f: dict[str, Path]) -> dict[str, list]:
    missing = root / "absent"
    p = ["-p", DEMO]
    idu = "62999000AB0012"
    return {
        "check-nothing": ["check", *p],
        "check-bad-id": ["check", "XYZ", *p],
        "check-letter-o": ["check", "629990OOAB0012", *p],
        "check-not-in-cadastre": ["check", "62999000ZZ0001", *p],
        "check-no-convention": ["check", idu, "-p", missing],
        "check-bad-convention": ["check", idu, "-p", f["badconv"]],
        "check-empty-folder": ["check", idu, "-p", f["emptydir"]],
        "check-bad-date": ["check", idu, *p, "--date", "31/02/2024"],
        "check-date-before": ["check", idu, *p, "--date", "1990-01-01"],
        "check-date-after": ["check", idu, *p, "--date", "2040-01-01"],
        "check-file-nocol": ["check", "--file", f["nocol.csv"], *p],
        "check-file-garbage": ["check", "--file", f["garbage.csv"], *p],
        "check-file-empty": ["check", "--file", f["empty.csv"], *p],
        "check-file-missing": ["check", "--file", missing, *p],
        "check-file-xlsx": ["check", "--file", f["garbage.xlsx"], *p],
        "check-output-exists": ["check", idu, *p, "-o", f["exists.csv"]],
        "check-output-suffix": ["check", idu, *p, "-o", root / "x.txt"],
        "check-cadastre-garbage": ["check", idu, *p, "--cadastre", f["garbage.json"]],
        "check-cadastre-missing": ["check", idu, *p, "--cadastre", missing / "c.json"],
        "check-bad-option": ["check", idu, *p, "--bogus"],
        "check-bad-tolerance": ["check", idu, *p, "--tolerance-m2", "abc"],
        "parcels-unknown-sector": ["parcels", *p, "--sector", "Nulle part", "-o", root / "s.csv"],
        "parcels-output-exists": ["parcels", *p, "-o", f["exists.csv"]],
        "parcels-no-output": ["parcels", *p],
        "validate-missing": ["validate", missing],
        "validate-bad": ["validate", f["badconv"]],
        "validate-empty": ["validate", f["emptydir"]],
        "validate-cadastre-garbage": ["validate", DEMO, "--cadastre", f["garbage.json"]],
        "fetch-bad-code": ["fetch", "ABCDE"],
        "fetch-bad-layer": ["fetch", "62907", "--layer", "bogus"],
        "fetch-offline": ["fetch", "62907"],
        "pfp-bad-id": [
            "perimeter-from-parcels",
            "XYZ",
            "--commune",
            "62999",
            "--id",
            "a",
            "--nom",
            "A",
            "--cadastre",
            DEMO_DATA,
            "-o",
            root / "p.geojson",
        ],
        "pfp-unknown-parcel": [
            "perimeter-from-parcels",
            "AB 9999",
            "--commune",
            "62999",
            "--id",
            "a",
            "--nom",
            "A",
            "--cadastre",
            DEMO_DATA,
            "-o",
            root / "p.geojson",
        ],
        "pfp-missing-option": ["perimeter-from-parcels", "AB 12"],
        "demo-bad-date": ["demo", "--date", "demain", "--output-dir", root / "demo"],
        "eligibility-nothing": ["eligibility"],
        "eligibility-bad-commune": ["eligibility", "--commune", "ABC"],
        "eligibility-unknown-commune": ["eligibility", "--commune", "99999"],
        "eligibility-short-commune": ["eligibility", "--commune", "1004"],
        "eligibility-file-garbage": ["eligibility", "--file", f["garbage.csv"]],
        "eligibility-file-nocol": ["eligibility", "--file", f["nocol.csv"]],
        "eligibility-bad-rules": ["eligibility", "--commune", "62907", "--rules", f["garbage.toml"]],
        "eligibility-bad-lists": ["eligibility", "--commune", "62907", "--lists", f["emptydir"]],
        "eligibility-bad-end": ["eligibility", "--commune", "62907", "--denormandie-fin", "bientôt"],
        "eligibility-bad-id": ["eligibility", "XYZ", *p],
        "communes-nothing": ["communes"],
        "communes-bad-rule": ["communes", "--eligible", "bogus"],
        "communes-bad-dep": ["communes", "--eligible", "denormandie", "--dep", "ZZ"],
        "actions-nothing": ["actions"],
        "actions-bad-register": ["actions", "--register", f["garbage.toml"]],
        "actions-missing-register": ["actions", "--register", missing / "actions.toml"],
        "actions-bad-suffix": ["actions", *p, "-o", root / "a.pdf"],
        "friches-garbage": ["friches", "--file", f["garbage.geojson"]],
        "friches-csv-garbage": ["friches", "--file", f["garbage.csv"]],
        "friches-missing": ["friches", "--file", missing / "f.geojson"],
        "friches-no-convention": ["friches", "--file", f["garbage.geojson"], "-p", f["emptydir"]],
        "logements-garbage": ["logements", f["garbage.csv"]],
        "logements-nocol": ["logements", f["nocol.csv"]],
        "logements-missing": ["logements", missing / "l.csv"],
        "logements-xlsx": ["logements", f["garbage.xlsx"]],
        "map-bad-convention": ["map", "-p", f["badconv"], "-o", root / "m.html"],
        "map-output-exists": ["map", *p, "-o", f["exists.html"]],
        "annex-bad-format": ["annex", *p, "-o", root / "annex", "--format", "A9"],
        "annex-bad-parcel": ["annex", *p, "-o", root / "annex2", "--parcel", "XYZ"],
        "classify-missing": ["classify", missing, "--perimeters", DEMO, "-o", root / "v"],
        "classify-garbage": ["classify", f["garbage.json"], "--perimeters", DEMO, "-o", root / "v2"],
        "no-such-command": ["chekc"],
    }


def _offending(text: str) -> list[str]:
    bad = []
    for line in text.splitlines():
        prose = NOT_PROSE.sub(" ", line)
        if PYTHON.search(line) or ENGLISH.search(prose) or NUMBERS.search(line):
            bad.append(line.strip())
    return bad


def _blank_paths(text: str, *roots: Path) -> str:
    for root in sorted({str(r) for r in roots}, key=len, reverse=True):
        text = text.replace(root, "<chemin>")
    # file names of the test (garbage.csv...) are the user's words, not ours
    return re.sub(r"<chemin>[^\s:,;)»'\"]*", "<chemin>", text)


def test_every_command_answers_in_french(tmp_path):
    files = _bad_files(tmp_path)
    report = []
    for name, args in _cases(tmp_path, files).items():
        result = CliRunner().invoke(main, ["--offline", "-q", *map(str, args)])
        text = _blank_paths(result.output, tmp_path, DEMO, DEMO_DATA)
        assert "Traceback" not in text and result.exit_code != 3, f"{name}:\n{text}"
        report += [f"{name}: {line}" for line in _offending(text)]
    assert not report, "English or Python text in the output:\n" + "\n".join(report)


@pytest.mark.parametrize("name", sorted(main.commands))
def test_usage_errors_are_french(name):
    """A wrong option and a missing argument, for every command: click's own texts."""
    for args in ([name, "--option-inconnue"], [name, "--help"]):
        result = CliRunner().invoke(main, args)
        text = result.output
        # the help text quotes examples (ort check ... -o resultat.csv): keep the prose
        prose = re.sub(r"\bort\b [^\n]*", " ", text)
        bad = _offending(prose)
        assert not bad, f"{args}:\n" + "\n".join(bad)


def test_warnings_are_the_cli_own_line(tmp_path, monkeypatch):
    """The project's warnings print as « Avertissement : … »; a library's (pyogrio) not at all."""
    import gzip
    import json
    import warnings

    import geo.cli.parcels

    data = json.loads(gzip.decompress((DEMO_DATA / "cadastre-62999-parcelles.json.gz").read_bytes()))
    feats = [f for f in data["features"] if f["properties"]["id"] == "62999000AB0012"]
    props = {**feats[0]["properties"], "id": "62999000AB0013"}
    path = tmp_path / "cadastre-62999-parcelles.json"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [*feats, {**feats[0], "geometry": None, "properties": props}],
            }
        )
    )
    real = geo.cli.parcels.parse_date

    def noisy(when):  # a library speaking English on the way, as pyogrio does
        warnings.warn(
            "Non closed ring detected. To avoid accepting it, set ...", RuntimeWarning, stacklevel=2
        )
        return real(when)

    monkeypatch.setattr(geo.cli.parcels, "parse_date", noisy)
    result = CliRunner().invoke(main, ["check", "62999000AB0012", "-p", str(DEMO), "--cadastre", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("Avertissement : ") and "sans géométrie" in line for line in lines), (
        result.output
    )
    assert not PYTHON.search(result.output) and "Non closed ring" not in result.output, result.output
    debug = CliRunner().invoke(
        main, ["--debug", "check", "62999000AB0012", "-p", str(DEMO), "--cadastre", str(path)]
    )
    assert "Avertissement (bibliothèque, RuntimeWarning) : Non closed ring" in debug.output
