"""The CLI and the web UI are clients of the library: they import only the packages' public names.

The UI also runs no SQL of its own: every read and write goes through the library API.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

import atlas.cli
import atlas.ui

CLI = Path(atlas.cli.__file__).parent
UI = Path(atlas.ui.__file__).parent
# Modules whose __all__ is a public surface. The CLI's own modules may import
# each other freely; nothing else below atlas or trainers is public.
PUBLIC_MODULES = frozenset(
    {
        "atlas",
        "atlas.config",
        "atlas.core",
        "atlas.errors",
        "atlas.runtime",
        "atlas.runtime.demo",
        "atlas.storage",
        "atlas.training_data",
        "atlas.ui",
        "trainers",
        "trainers.exports",
    }
)
OURS = ("atlas", "trainers")


def _imports(path: Path) -> Iterator[tuple[int, str, str | None]]:
    """(line, module, name) of every import in ``path``; name is None for ``import module``."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                yield node.lineno, node.module, alias.name


def _violation(module: str, name: str | None, own: str = "atlas.cli") -> str | None:
    """Why importing ``name`` from ``module`` breaks the rule for package ``own``, or None."""
    if module.split(".")[0] not in OURS or module.startswith(own):
        return None
    if module not in PUBLIC_MODULES:
        if name is not None and f"{module}.{name}" in PUBLIC_MODULES:
            return None  # a public submodule: ``from trainers import exports``
        return f"{module} is not a public module"
    if name is None or f"{module}.{name}" in PUBLIC_MODULES:
        return None
    if name not in getattr(importlib.import_module(module), "__all__", ()):
        return f"{name} is not in {module}.__all__"
    return None


@pytest.mark.parametrize("path", sorted(CLI.glob("*.py")), ids=lambda path: path.name)
def test_the_cli_imports_only_public_names(path):
    found = [
        f"{path.name}:{line}: {problem}"
        for line, module, name in _imports(path)
        if (problem := _violation(module, name)) is not None
    ]
    assert found == []


@pytest.mark.parametrize("path", sorted(UI.glob("*.py")), ids=lambda path: path.name)
def test_the_ui_imports_only_public_names_and_runs_no_sql(path):
    found = [
        f"{path.name}:{line}: {problem}"
        for line, module, name in _imports(path)
        if (problem := _violation(module, name, own="atlas.ui")) is not None
        or (problem := "imports the driver" if module.split(".")[0] == "psycopg" else None)
    ]
    tree = ast.parse(path.read_text(), str(path))
    found += [
        f"{path.name}:{node.lineno}: calls {node.func.attr}()"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("execute", "executemany", "copy", "cursor")
    ]
    assert found == []


RULE_CASES = [
    pytest.param(
        "atlas.storage.connection",
        "connect",
        "atlas.storage.connection is not a public module",
        id="private-module",
    ),
    pytest.param(
        "atlas.training_data",
        "hidden_by_gate",
        "hidden_by_gate is not in atlas.training_data.__all__",
        id="private-name",
    ),
    pytest.param("atlas.training_data", "get_training_sessions", None, id="public-name"),
    pytest.param("trainers", "exports", None, id="public-submodule"),
    pytest.param("atlas.cli.main", "run", None, id="the-cli-itself"),
    pytest.param("rich.table", "Table", None, id="third-party"),
]


@pytest.mark.parametrize(("module", "name", "problem"), RULE_CASES)
def test_the_import_rule(module, name, problem):
    assert _violation(module, name) == problem


def _cli_graph() -> dict[str, set[str]]:
    """Which CLI modules each CLI module imports (at any depth in the file)."""
    graph: dict[str, set[str]] = {}
    for path in CLI.glob("*.py"):
        targets = set()
        for _, module, name in _imports(path):
            if module == "atlas.cli" and name is not None:
                targets.add(name)
            elif module.startswith("atlas.cli."):
                targets.add(module.removeprefix("atlas.cli.").split(".")[0])
        graph[path.stem] = targets & {p.stem for p in CLI.glob("*.py")}
    return graph


def test_no_two_cli_modules_import_each_other():
    graph = _cli_graph()

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(nxt == goal or reaches(nxt, goal, seen | {nxt}) for nxt in graph[start] - seen)

    cycles = sorted(m for m in graph if reaches(m, m, set()))
    assert cycles == []
