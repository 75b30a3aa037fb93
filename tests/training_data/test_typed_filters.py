"""The filters are one typed definition that mypy sees, and no public function takes ``**Any``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import atlas.config
import atlas.core
import atlas.runtime
import atlas.storage
import atlas.training_data
import trainers
from atlas.training_data import CountFilters, TrainingFilters, TrainingQuery
from atlas.training_data.api import FILTER_KEYS

ROOT = Path(__file__).resolve().parents[2]

# One call per line; the line number is how the mypy report is matched up.
SNIPPET = """\
from atlas.training_data import count_training_sessions, export_jsonl, get_training_sessions
from atlas.training_data import paginate_sessions_sync
from trainers.exports import export_dpo
get_training_sessions(min_reward=0.8, review_status_filters=["approved"], limit=10)
get_training_sessions(min_rewrd=0.8)
paginate_sessions_sync(batch_size=10, stauts_filters=["succeeded"])
export_jsonl("out.jsonl", limt=5)
export_dpo("pairs.jsonl", learning_keys="k")
count_training_sessions(limit=5)
get_training_sessions(include_learning_data="no")
"""
MISTAKES = [
    pytest.param(5, "min_rewrd", id="get_training_sessions"),
    pytest.param(6, "stauts_filters", id="paginate_sessions_sync"),
    pytest.param(7, "limt", id="export_jsonl"),
    pytest.param(8, "learning_keys", id="export_dpo"),
    pytest.param(9, "limit", id="count-takes-no-window"),
    pytest.param(10, "include_learning_data", id="wrong-type"),
]


@pytest.fixture(scope="module")
def mypy_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    pytest.importorskip("mypy")
    snippet = tmp_path_factory.mktemp("typed") / "snippet.py"
    snippet.write_text(SNIPPET)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", str(snippet)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout


@pytest.mark.parametrize(("line", "name"), MISTAKES)
def test_mypy_reports_a_misspelt_or_mistyped_filter(mypy_report, line, name):
    errors = [row for row in mypy_report.splitlines() if f"snippet.py:{line}: error" in row]
    assert errors, mypy_report
    assert f'"{name}"' in errors[0]


def test_mypy_accepts_the_filters_as_documented(mypy_report):
    assert "snippet.py:4:" not in mypy_report


def test_filter_keys_are_read_from_the_typed_definition():
    assert tuple(TrainingFilters.__annotations__) == FILTER_KEYS
    assert set(FILTER_KEYS) - set(CountFilters.__annotations__) == {"limit", "offset"}


@pytest.mark.parametrize("name", FILTER_KEYS)
def test_build_accepts_every_filter_key(name):
    value = True if name.startswith("include_") else None
    assert TrainingQuery.build(**{name: value}).offset == 0


def _modules(package: Any) -> Iterator[Any]:
    yield package
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        yield importlib.import_module(info.name)


def _functions(qualname: str, value: Any) -> Iterator[tuple[str, Callable[..., Any]]]:
    """``value`` if a function, or a class's public methods (``__init__`` included)."""
    if inspect.isfunction(value):
        yield qualname, value
    elif inspect.isclass(value):
        for attr, member in vars(value).items():
            function = getattr(member, "__func__", member)
            if inspect.isfunction(function) and (attr == "__init__" or not attr.startswith("_")):
                yield f"{qualname}.{attr}", function


def _public_callables() -> Iterator[tuple[str, Callable[..., Any]]]:
    """Every public name defined in any module of atlas.training_data and trainers."""
    for package in (atlas.training_data, trainers):
        for module in _modules(package):
            for name, value in vars(module).items():
                if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
                    continue
                yield from _functions(f"{module.__name__}.{name}", value)


def _exported_callables() -> Iterator[tuple[str, Callable[..., Any]]]:
    """What the other public packages export (their ``__all__``), methods included."""
    for package in (atlas.config, atlas.core, atlas.runtime, atlas.storage):
        for name in package.__all__:
            yield from _functions(f"{package.__name__}.{name}", getattr(package, name))


def test_no_public_function_takes_untyped_keyword_arguments():
    loose = [
        name
        for name, function in (*_public_callables(), *_exported_callables())
        for parameter in inspect.signature(function).parameters.values()
        if parameter.kind is inspect.Parameter.VAR_KEYWORD
        and parameter.annotation in (inspect.Parameter.empty, "Any", Any)
    ]
    assert loose == []
