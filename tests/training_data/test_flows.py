"""The read flows both twins drive, stepped by hand: no database, no driver."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from atlas.errors import ReviewGateWarning
from atlas.training_data.flows import Emit, hidden_plan, pager_flow
from atlas.training_data.plan import Page
from atlas.training_data.query import TrainingQuery

CURSOR = ("2026-01-01T00:00:00+00:00", 7)


def _traces(n: int) -> list[Any]:
    return [SimpleNamespace(load_warnings=[]) for _ in range(n)]


def _answer(rows: list[int]) -> list[list[dict[str, int]]]:
    return [[{"n": n}] for n in rows]


def test_a_full_page_is_emitted_and_the_next_page_is_asked_for():
    flow = pager_flow(TrainingQuery.build(), 2)
    next(flow)
    emitted = flow.send(Page(_traces(2), CURSOR))
    assert isinstance(emitted, Emit)
    assert len(emitted.traces) == 2
    assert flow.send(None) is not None  # the second page's plan


def test_the_flow_ends_after_the_last_page_without_counting():
    flow = pager_flow(TrainingQuery.build(), 2)
    next(flow)
    flow.send(Page(_traces(1), None))
    with pytest.raises(StopIteration):
        flow.send(None)


def test_a_limit_stops_the_flow_without_another_query():
    flow = pager_flow(TrainingQuery.build(limit=2), 2)
    next(flow)
    flow.send(Page(_traces(2), CURSOR))
    with pytest.raises(StopIteration):
        flow.send(None)


def test_nothing_returned_asks_what_the_gate_hid_and_warns():
    flow = pager_flow(TrainingQuery.build(), 2)
    next(flow)
    flow.send(Page([], None))  # now asks for the hidden counts
    with pytest.raises(StopIteration), pytest.warns(ReviewGateWarning, match="hid 3 matching"):
        flow.send({"pending": 3})


@pytest.mark.parametrize(
    ("counts", "hidden"),
    [
        pytest.param([0, 5, 2, 3], {"pending": 2, "quarantined": 3}, id="per-status"),
        pytest.param([0, 6, 2, 3], {"pending": 2, "quarantined": 3, "other": 1}, id="other"),
        pytest.param([1, 6, 2, 3], {}, id="some-pass-the-gate"),
    ],
)
def test_hidden_plan_counts_under_each_status_the_gate_keeps_out(counts, hidden):
    plan = hidden_plan(TrainingQuery.build())
    assert len(next(plan)) == 4  # gated, ungated, pending, quarantined: one pipeline
    with pytest.raises(StopIteration) as done:
        plan.send(_answer(counts))
    assert done.value.value == hidden


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(TrainingQuery.build(limit=0), id="limit-0"),
        pytest.param(TrainingQuery.build(include_all_review_statuses=True), id="open-gate"),
    ],
)
def test_hidden_plan_asks_nothing_when_the_gate_cannot_be_why(query):
    with pytest.raises(StopIteration) as done:
        next(hidden_plan(query))
    assert done.value.value == {}
