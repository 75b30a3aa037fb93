"""The public names of the query layer and the trace records."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("module", ["atlas.training_data", "atlas.runtime"])
def test_all_is_sorted_and_importable(module):
    imported = importlib.import_module(module)
    assert imported.__all__ == sorted(imported.__all__)
    assert all(hasattr(imported, name) for name in imported.__all__)
