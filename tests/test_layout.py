"""The package's layout: no import loop, and each subpackage's docstring names its modules."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

GEO = Path(importlib.import_module("geo").__file__).parent


def _modules() -> dict[str, Path]:
    mods = {}
    for path in GEO.rglob("*.py"):
        parts = path.relative_to(GEO.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


def _module_level_imports(path: Path, mods: dict[str, Path]) -> set[str]:
    """geo modules imported at module level (imports inside functions are lazy on purpose)."""
    found = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("geo"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in mods else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("geo")}
    return {m for m in found if m in mods}


def test_no_import_loop():
    mods = _modules()
    graph = {m: _module_level_imports(p, mods) - {m} for m, p in mods.items()}
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(m: str, trail: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                pytest.fail("import loop: " + " → ".join([*trail[trail.index(n) :], n]))
            if n not in state:
                visit(n, [*trail, n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert len(graph) > 40


@pytest.mark.parametrize("package", ["sources", "eligibility", "places", "maps", "scale", "demo", "cli"])
def test_each_subpackage_lists_its_modules(package):
    folder = GEO / package
    doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text(encoding="utf-8"))) or ""
    modules = [p.stem for p in folder.glob("*.py") if not p.stem.startswith("__")]
    assert modules
    missing = [m for m in modules if f"``{m}``" not in doc and f"geo.{package}.{m}`" not in doc]
    assert not missing, f"geo/{package}/__init__.py does not say what {missing} do"


def test_top_level_docstring_names_every_top_module():
    doc = importlib.import_module("geo").__doc__
    tops = [p.stem for p in GEO.glob("*.py") if not p.stem.startswith("__")]
    subs = [p.name for p in GEO.iterdir() if (p / "__init__.py").is_file()]
    missing = [m for m in tops + subs if f"``geo.{m}``" not in doc]
    assert not missing, f"geo/__init__.py does not list {missing}"
