"""atlas.errors: the drawn hierarchy is the real one, and old import paths still work."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import atlas.errors as errors
from atlas.errors import AtlasError, AtlasWarning, MissingExtra, PermissionDenied

# "    ├── Name (Builtin)   text": the indentation gives the depth, the name the class.
_DRAWN = re.compile(r"^(?P<indent>\s*)(?:[├└]── )?(?P<name>[A-Z]\w+)(?: \((?P<builtin>\w+)\))?")


def _drawn_tree(text: str) -> dict[str, tuple[str | None, str | None]]:
    """{class name: (drawn parent, builtin base in brackets)} for the docstring's drawings."""
    parents: dict[str, tuple[str | None, str | None]] = {}
    for block in text.split("::")[1:]:
        stack: list[tuple[int, str]] = []
        for line in block.strip("\n").splitlines():
            found = _DRAWN.match(line.replace("│", " "))
            if not found or not line.startswith("    "):
                break
            depth = len(found["indent"]) + (4 if "──" in line else 0)
            while stack and stack[-1][0] >= depth:
                stack.pop()
            parents[found["name"]] = (stack[-1][1] if stack else None, found["builtin"])
            stack.append((depth, found["name"]))
    return parents


DRAWN = _drawn_tree(errors.__doc__ or "")
CLASSES = [
    name
    for name in errors.__all__
    if isinstance(getattr(errors, name), type)
    and issubclass(getattr(errors, name), (AtlasError, AtlasWarning))
]


@pytest.mark.parametrize("name", CLASSES)
def test_every_class_is_drawn_under_its_real_parent(name: str) -> None:
    cls = getattr(errors, name)
    ours = [base.__name__ for base in cls.__bases__ if base.__module__ == errors.__name__]
    builtin = [
        b.__name__ for b in cls.__bases__ if b.__module__ == "builtins" and b is not Exception
    ]
    assert name in DRAWN, f"{name} is missing from the drawing"
    assert DRAWN[name] == (ours[0] if ours else None, builtin[0] if builtin else None)


def test_the_drawing_names_no_class_that_does_not_exist() -> None:
    assert set(DRAWN) == set(CLASSES)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        pytest.param("atlas.cli.main", "UsageError", id="UsageError"),
        pytest.param("atlas.training_data.output", "OutputError", id="OutputError"),
        pytest.param("atlas.runtime.adapters", "AdapterError", id="AdapterError-package"),
        pytest.param("atlas.runtime.adapters.base", "AdapterError", id="AdapterError-base"),
        pytest.param("trainers.runtime_dataset", "TraceFileError", id="TraceFileError"),
        pytest.param("trainers.columns", "RecordSchemaError", id="RecordSchemaError"),
    ],
)
def test_old_import_paths_give_the_same_class(module: str, name: str) -> None:
    assert getattr(importlib.import_module(module), name) is getattr(errors, name)


def test_permission_denied_is_a_database_error_and_a_permission_error() -> None:
    error = PermissionDenied("Role ro may not UPDATE sessions.", privilege="UPDATE", role="ro")
    assert isinstance(error, errors.DatabaseError) and isinstance(error, PermissionError)
    assert (str(error), error.privilege, error.role) == (
        "Role ro may not UPDATE sessions.",
        "UPDATE",
        "ro",
    )


def test_missing_extra_in_a_checkout_says_pip_install_dash_e() -> None:
    root = Path(errors.__file__).resolve().parent.parent
    error = MissingExtra.for_module("pyarrow", needed_for="--format parquet")
    assert str(error) == (
        "pyarrow is not installed, and --format parquet needs it: "
        f"run `pip install -e '.[train]'` in {root}."
    )
    assert (error.name, error.extra) == ("pyarrow", "train")
    assert isinstance(error, ImportError)


def test_missing_extra_when_installed_says_pip_install_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    installed = tmp_path / "site-packages" / "atlas" / "errors.py"
    monkeypatch.setattr(errors, "__file__", str(installed))
    error = MissingExtra.for_module("datasets")
    assert str(error) == ("datasets is not installed: run `pip install 'arc-atlas[train]'`.")
