"""Every example of the README and of ``ort COMMAND --help`` runs as written after a plain install.

The wheel is built from the project's files and installed in a fresh virtual environment (no
dependencies from the network: those of the environment running the tests are appended to its
path, so it works from a virtualenv made as the README says as well as in CI), with no network
(``ORT_OFFLINE=1``, an unreachable proxy) and an empty cache. Each example runs through
``bash`` from a folder that holds nothing but what the README tells the reader to make first:

- README examples run one after the other in one folder where ``ort demo --fichiers .`` was run
  (the README's « Au quotidien » starts with it); ``ort demo`` itself runs in an empty folder;
- an example marked ``# [../shared/data]`` runs in a folder beside a ``shared/data`` that holds
  the real open data (skipped when it is absent, failing under ``CI=true``); one marked
  ``# [réseau]`` runs against a local HTTP server serving real files when the test knows one
  (``ort fetch 91216``), else is skipped with the reason; ``# [vos fichiers]`` shows a command's
  form on the reader's own files and is skipped;
- ``--help`` examples run each in a fresh folder prepared with ``ort demo --fichiers .``; a
  planner's file they name (``parcelles.csv``, ``demandes.csv``, ``patrimoine.xlsx``) is made
  from the demo first (:data:`HELP_FILES`). Examples known to fail because of another module's
  code or help text are listed in :data:`HELP_KNOWN` with the owner and the fix (``xfail``, not
  strict: they pass once fixed).

Slow (about 60 commands, each starting Python): a few minutes on a 2-core machine.
"""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from fresh_install import offline_env

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 600


@dataclass(frozen=True)
class Example:
    source: str  # "README" or "ort <command> --help"
    command: str  # as written (continuation lines joined), comments kept
    lang: str = "bash"

    @property
    def marker(self) -> str | None:
        found = re.search(r"#.*\[(réseau|\.\./shared/data|vos fichiers)\]", self.command)
        return found.group(1) if found else None


# --- the examples ---------------------------------------------------------------------------


def readme_examples() -> list[Example]:
    """Each command of the README's ``bash`` blocks, and each ``python`` block whole."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    out: list[Example] = []
    for lang, body in re.findall(r"```(\w+)\n(.*?)```", text, flags=re.S):
        if lang == "python":
            out.append(Example("README", body, "python"))
            continue
        current = ""
        for line in body.splitlines():
            stripped = line.strip()
            if current:
                current += "\n" + line
                if not stripped.endswith("\\"):
                    out.append(Example("README", current))
                    current = ""
            elif stripped and not stripped.startswith("#"):
                if stripped.endswith("\\"):
                    current = stripped
                else:
                    out.append(Example("README", stripped))
    return out


def _help_commands(text: str) -> list[str]:
    """The example lines of one command's help: ``ort …`` lines opening a paragraph or following
    another example (so that a sentence wrapped onto a line starting with « ort » is not one)."""
    body = text.split("\nOptions:")[0].splitlines()
    out, current, after_break = [], "", True
    for line in body:
        stripped = line.strip()
        if current:
            current += " " + stripped.rstrip("\\").strip()
            if not stripped.endswith("\\"):
                out.append(current)
                current = ""
            continue
        if stripped.startswith("ort ") and after_break:
            if stripped.endswith("\\"):
                current = stripped.rstrip("\\").strip()
            else:
                out.append(stripped)
            continue
        after_break = not stripped or stripped.endswith(":")
    return out


def help_examples() -> list[Example]:
    """The examples of every command's ``--help`` (the same text the installed ``ort`` prints)."""
    from click.testing import CliRunner

    from geo.cli import main

    runner = CliRunner()
    out = []
    for name in sorted(main.commands):
        text = runner.invoke(main, [name, "--help"], terminal_width=80).output
        out += [Example(f"ort {name} --help", cmd) for cmd in _help_commands(text)]
    return out


README = readme_examples()
HELP = help_examples()

#: README lines that are not commands to run here, and why.
README_NOT_RUN = {
    "python3 -m pytest": "la suite de tests elle-même",
    'pip install -e ".[scale]"': "installation d'un extra (le test installe la roue, hors ligne)",
    "ort serve": "un serveur qui tourne jusqu'à Ctrl+C : tests/test_server.py le démarre et l'interroge",
}


def _csv(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _patrimoine(folder: Path) -> None:
    import pandas as pd

    table = pd.read_csv(folder / "data" / "demo" / "logements-sociaux-62999.csv", sep=";", dtype=str)
    table.to_excel(folder / "patrimoine.xlsx", index=False)


#: Files a --help example names as the planner's own, made from the demo before it runs.
HELP_FILES = {
    "ort check --file parcelles.csv": lambda f: shutil.copy(
        f / "perimeters" / "demo" / "parcelles-exemple.csv", f / "parcelles.csv"
    ),
    "ort eligibility --file demandes.csv": lambda f: _csv(f / "demandes.csv", "code_insee\n62907\n62498\n"),
    "ort note --file demandes.csv": lambda f: _csv(
        f / "demandes.csv",
        "idu;adresse\n62999000AB0012;\nAC 7;\n;64 rue Jean Jaurès, 62999 Ormeval-sur-Mer\n",
    ),
    "ort logements patrimoine.xlsx": _patrimoine,
}

#: --help examples that cannot run as written, with whose code or help text it is and the fix;
#: ("skip", why) for examples that need the network or the user's own data by nature.
HELP_KNOWN = {
    "ort serve": ("skip", "un serveur qui tourne jusqu'à Ctrl+C : tests/test_server.py le démarre"),
    "ort listes --revenir": ("skip", "[réseau] rétablit la copie qu'une mise à jour a remplacée"),
    "ort friches --file cartofriches-62.geojson": ("skip", "[vos fichiers] un export Cartofriches"),
    "ort friches --file friches.csv": ("skip", "[vos fichiers] un CSV de friches au standard CNIG"),
    'ort check "12 rue Jean Jaurès, 62820 Libercourt"': ("skip", "[réseau] BAN et cadastre de Libercourt"),
    'ort eligibility "12 rue Jean Jaurès, 62820 Libercourt"': (
        "skip",
        "[réseau] BAN et cadastre de Libercourt",
    ),
    'ort note "12 rue Jean Jaurès, 62820 Libercourt"': ("skip", "[réseau] BAN et cadastre de Libercourt"),
    "ort map --perimeters libercourt": (
        "skip",
        "[réseau] cadastre de Libercourt, [vos fichiers] BAN 62",
    ),
    "ort logements rpls.csv": ("skip", "[vos fichiers] RPLS et BAN 62, [réseau] cadastre de Libercourt"),
    "ort listes --mettre-a-jour": ("skip", "[réseau] fichiers officiels de data.gouv.fr"),
    "ort classify data/62/": (
        "skip",
        "[vos fichiers] le cadastre d'un département ; ses secteurs non numérisés",
    ),
    "ort classify france.parquet": ("skip", "[vos fichiers] et un cluster Dask"),
    "ort classify cadastre.parcelles --db": ("skip", "[vos fichiers] une base PostGIS"),
}

#: What issue 25 found refused: a shipped convention by its name, everywhere.
SHIPPED_NAME = [
    Example("issue 25", "ort validate demo"),
    Example("issue 25", "ort classify data/demo --perimeters demo -o maps/verdicts-nom"),
]
SHIPPED_NAME_KNOWN: dict[str, str] = {}


def _known(table: dict, command: str):
    return next((v for k, v in table.items() if command.startswith(k)), None)


# --- the installed product --------------------------------------------------------------------


def _run(
    args, *, cwd: Path, env: dict | None = None, timeout: float = TIMEOUT
) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _ok(done: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    assert done.returncode == 0, (
        f"{what}\nexit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done


@pytest.fixture(scope="module")
def installed(ort_wheel, tmp_path_factory) -> dict:
    """A fresh venv holding only the wheel (built once per run: ``ort_wheel``), and the
    environment of a machine without network."""
    work = tmp_path_factory.mktemp("readme")
    env = offline_env(ort_wheel["venv"], work / "cache")
    return {"work": work, "python": ort_wheel["python"], "env": env}


def _folder(installed, *parts: str) -> Path:
    folder = installed["work"].joinpath("utilisateur", *parts)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture(scope="module")
def readme_folder(installed) -> Path:
    """Where the README's examples run, one after the other: ``ort demo --fichiers .`` done."""
    folder = _folder(installed, "readme")
    _ok(_run(["ort", "demo", "--fichiers", "."], cwd=folder, env=installed["env"]), "ort demo --fichiers .")
    return folder


@pytest.fixture(scope="module")
def help_template(installed) -> Path:
    folder = _folder(installed, "aide-modele")
    _ok(_run(["ort", "demo", "--fichiers", "."], cwd=folder, env=installed["env"]), "ort demo --fichiers .")
    return folder


def _execute(example: Example, folder: Path, env: dict) -> subprocess.CompletedProcess:
    if example.lang == "python":
        return _run([env["VIRTUAL_ENV"] + "/bin/python", "-c", example.command], cwd=folder, env=env)
    return _run(["bash", "-c", example.command], cwd=folder, env=env)


def _check(done: subprocess.CompletedProcess, example: Example) -> None:
    _ok(done, f"{example.source} : {example.command}")
    assert "Traceback" not in done.stderr, done.stderr[-3000:]


def _with_shared(installed, request, name: str) -> Path:
    """A fresh folder ``…/<name>/travail`` beside ``…/<name>/shared/data`` (the real open data)."""
    data = request.getfixturevalue("shared_data")
    base = _folder(installed, name)
    (base / "shared").mkdir()
    (base / "shared" / "data").symlink_to(data, target_is_directory=True)
    (base / "travail").mkdir()
    return base / "travail"


def _fetch_server(request, installed) -> dict:
    """``ort fetch 91216``: the real Épinay-sur-Orge parcels served on 127.0.0.1 as Etalab does."""
    sys.path.insert(0, str(Path(__file__).parent))
    from fileserver import serve

    from geo.sources.cadastre import cadastre_url

    parcels = request.getfixturevalue("epinay_parcelles")
    base, routes, server = serve(parcels.parent)
    request.addfinalizer(server.shutdown)
    url = cadastre_url("91216", "parcelles", millesime="latest", base_url=f"{base}/etalab")
    routes[url.removeprefix(base)] = gzip.compress(parcels.read_bytes(), mtime=0)
    env = {k: v for k, v in installed["env"].items() if k != "ORT_OFFLINE"}
    env.update(ORT_CADASTRE_URL=f"{base}/etalab", ORT_MILLESIME="latest", NO_PROXY="127.0.0.1,localhost")
    return env


# --- the tests --------------------------------------------------------------------------------


def _readme_id(ex: Example) -> str:
    return re.sub(r"\s+", " ", ex.command.split("\n")[0])[:70]


def test_examples_are_found():
    commands = [e.command for e in README]
    assert commands[0].startswith("python3 -m pip install") and commands[1] == "python3 -m pytest"
    assert any(c.startswith("ort demo --fichiers .") for c in commands)
    assert any(e.lang == "python" for e in README)
    assert len(HELP) >= 30 and all(e.command.startswith("ort ") for e in HELP)
    assert any(
        e.command.startswith("ort classify cadastre.parcelles --db") and "--perimeters-table" in e.command
        for e in HELP
    )


@pytest.mark.parametrize("example", README, ids=[_readme_id(e) for e in README])
def test_readme_example(example, installed, readme_folder, request):
    command = example.command
    bare = command.split("#")[0].strip()
    if bare in README_NOT_RUN:
        pytest.skip(README_NOT_RUN[bare])
    env = installed["env"]
    if command.startswith("python3 -m pip install") and "&&" in command:
        # the install is what the fixture did (the wheel, offline); the rest runs as written
        command = command.split("&&", 1)[1].strip()
        example = Example(example.source, command)
    folder = readme_folder
    if command.startswith("ort demo") and "--fichiers" not in command:
        folder = _folder(installed, f"demo-{len(list((installed['work'] / 'utilisateur').iterdir()))}")
    elif command.startswith("ort demo --fichiers"):
        folder = _folder(installed, "readme-fichiers")
    if example.marker == "vos fichiers":
        pytest.skip("[vos fichiers] : la forme de la commande sur les fichiers du lecteur")
    if example.marker == "../shared/data":
        folder = _with_shared(installed, request, f"shared-{abs(hash(command)) % 10**8}")
    if example.marker == "réseau":
        if not command.startswith("ort fetch 91216"):
            pytest.skip(f"[réseau] sans serveur local pour : {command.split('#')[0].strip()}")
        env = _fetch_server(request, installed)
    _check(_execute(example, folder, env), example)


@pytest.mark.parametrize("example", HELP, ids=[f"{e.source.split()[1]}: {e.command[:60]}" for e in HELP])
def test_help_example(example, installed, help_template, request):
    known = _known(HELP_KNOWN, example.command)
    if known and known[0] == "skip":
        pytest.skip(known[1])
    if known and known[0] == "xfail":
        request.applymarker(pytest.mark.xfail(reason=known[1], strict=False))
    name = f"aide-{HELP.index(example):02d}"
    if example.command.startswith("ort demo"):
        folder = _folder(installed, name)  # an empty folder, as for a new user
    else:
        folder = installed["work"] / "utilisateur" / name
        shutil.copytree(help_template, folder)
    prepare = _known(HELP_FILES, example.command)
    if prepare is not None:
        prepare(folder)
    if "perimeters/epinay" in example.command:  # the tests' convention on real Épinay parcels
        shutil.copytree(request.getfixturevalue("epinay_ort")["folder"], folder / "perimeters" / "epinay")
    _check(_execute(example, folder, installed["env"]), example)


@pytest.mark.parametrize("example", SHIPPED_NAME, ids=[e.command for e in SHIPPED_NAME])
def test_shipped_convention_by_name(example, installed, readme_folder, request):
    known = _known(SHIPPED_NAME_KNOWN, example.command)
    if known:
        request.applymarker(pytest.mark.xfail(reason=known, strict=False))
    folder = _folder(installed, f"nom-{SHIPPED_NAME.index(example)}")
    shutil.copytree(readme_folder / "data", folder / "data")
    _check(_execute(example, folder, installed["env"]), example)
