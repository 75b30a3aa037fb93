"""The public names of atlas.config: sorted, and every one importable."""

from __future__ import annotations

import atlas.config


def isort_style(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions, each alphabetical (ruff's RUF022 order)."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_sorted_and_resolvable() -> None:
    assert atlas.config.__all__ == sorted(atlas.config.__all__, key=isort_style)
    assert all(hasattr(atlas.config, name) for name in atlas.config.__all__)
