"""The public names of atlas.storage and atlas.errors: sorted, and every one importable."""

from __future__ import annotations

from types import ModuleType

import pytest

import atlas.errors
import atlas.storage


def isort_style(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions, each alphabetical (ruff's RUF022 order)."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


@pytest.mark.parametrize(
    "module",
    [pytest.param(atlas.storage, id="storage"), pytest.param(atlas.errors, id="errors")],
)
def test_all_is_sorted_and_resolvable(module: ModuleType) -> None:
    assert module.__all__ == sorted(module.__all__, key=isort_style)
    assert all(hasattr(module, name) for name in module.__all__)


def test_every_exception_is_an_atlas_error() -> None:
    found = [getattr(atlas.errors, name) for name in atlas.errors.__all__]
    exceptions = [
        e
        for e in found
        if isinstance(e, type) and issubclass(e, Exception) and not issubclass(e, Warning)
    ]
    assert exceptions and all(issubclass(e, atlas.errors.AtlasError) for e in exceptions)
