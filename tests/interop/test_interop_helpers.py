"""The interop tier's own comparison helpers: pure, so they run in every pass without atlas-sdk."""

from __future__ import annotations

from typing import Any

import pytest
from interop_compare import MISSING, covers, differences, missing
from interop_parity import TABLE_HEADER, documented_deviations


@pytest.mark.parametrize(
    ("documented", "path", "expected"),
    [
        pytest.param("steps[].raw", "steps[].raw", True, id="itself"),
        pytest.param("steps[].reward.raw", "steps[].reward.raw.raw", True, id="beneath"),
        pytest.param("trajectory_events[].event", "trajectory_events[].event[].x", True, id="list"),
        pytest.param("steps[].raw", "steps[].raw_evaluation", False, id="longer-key"),
        pytest.param("status", "steps[].status", False, id="other-level"),
        pytest.param("steps[].*", "steps[].status", True, id="wildcard"),
        pytest.param("steps[].*", "steps[].reward.raw", True, id="wildcard-then-beneath"),
    ],
)
def test_covers(documented: str, path: str, expected: bool) -> None:
    assert covers(documented, path) is expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        pytest.param({"x": 1}, {"x": 1}, {}, id="equal"),
        pytest.param({"x": 1}, {"x": 1.0}, {"x": (1, 1.0)}, id="int-vs-float"),
        pytest.param({"x": {"y": 1}}, {"x": {}}, {"x.y": (1, MISSING)}, id="nested-missing"),
        pytest.param({"s": [{"a": 1}]}, {"s": [{"a": 2}]}, {"s[].a": (1, 2)}, id="list-elements"),
        pytest.param({"s": [1]}, {"s": [1, 2]}, {"s": ([1], [1, 2])}, id="list-lengths"),
        pytest.param({"x": None}, {}, {"x": (None, MISSING)}, id="null-vs-absent"),
    ],
)
def test_differences(a: Any, b: Any, expected: dict[str, tuple[Any, Any]]) -> None:
    assert differences(a, b) == expected


@pytest.mark.parametrize(
    ("stored", "record", "lost"),
    [
        pytest.param({"a": 1}, {"a": 1, "b": 2}, [], id="keys-may-be-added"),
        pytest.param({"a": None}, {}, ["a: stored None, key absent"], id="null-kept"),
        pytest.param({"a": []}, {"a": None}, ["a: stored [], found None"], id="empty-list"),
        pytest.param(
            {"a": [1, 2]},
            {"a": [2, 1]},
            ["a[0]: stored 1, found 2", "a[1]: stored 2, found 1"],
            id="order",
        ),
        pytest.param({"a": True}, {"a": 1}, ["a: stored True, found 1"], id="bool-is-not-int"),
    ],
)
def test_missing(stored: Any, record: Any, lost: list[str]) -> None:
    assert missing(stored, record) == lost


def test_every_deviation_row_has_both_sides_and_a_reason() -> None:
    table = documented_deviations()
    assert table
    assert {
        path: row
        for path, row in table.items()
        if len(row) != len(TABLE_HEADER) - 1 or not all(row)
    } == {}
