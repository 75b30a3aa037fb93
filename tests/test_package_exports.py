"""Every public package lists its names in a sorted ``__all__``, and every name exists."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "atlas",
    "atlas.config",
    "atlas.core",
    "atlas.errors",
    "atlas.runtime",
    "atlas.runtime.adapters",
    "atlas.storage",
    "atlas.training_data",
    "atlas.ui",
    "trainers.runtime_dataset",
    "trainers.preferences",
]


def _isort_style(name: str) -> tuple[int, str]:
    """CONSTANTS, then Classes, then functions (the order ruff's RUF022 keeps)."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_resolves(name):
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported, key=_isort_style)
    for attribute in exported:
        assert hasattr(module, attribute), f"{name}.{attribute}"
