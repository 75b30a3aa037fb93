"""The page plan, driven by hand: one query per page whatever its size, keyset cursors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from atlas.training_data.assembly import LoadOptions
from atlas.training_data.filters import SessionFilters
from atlas.training_data.plan import Page, Query, count_plan, page_plan
from atlas.training_data.review_gate import ReviewGate

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
GATE = ReviewGate(("approved",), "default")


def _sessions(n: int, **extra: Any) -> list[dict[str, Any]]:
    """Fake page rows, newest first: each with one step and one event aggregated beside it."""
    return [
        {
            "id": 1000 - i,
            "task": f"t{i}",
            "created_at": T0 - timedelta(minutes=i),
            "plan": None,
            "steps": [{"step_id": 1, "metadata": None, "evaluation": None}],
            "attempts": None,
            "guidance": None,
            "kept": 1,
            "all_flat": False,
            "raw": '[{"event_type": "x"}]',
            "event_total": 1,
            **extra,
        }
        for i in range(n)
    ]


def _run(size: int, rows: int, **options: Any) -> tuple[list[list[Query]], Page]:
    """Drive a page plan to the end, recording every batch it yields."""
    plan = page_plan(SessionFilters.build(), GATE, LoadOptions(**options), size=size)
    batches = [next(plan)]
    try:
        while True:
            batches.append(plan.send([_sessions(rows)]))
    except StopIteration as done:
        return batches, done.value


@pytest.mark.parametrize("size", [pytest.param(n, id=f"page-{n}") for n in (1, 37, 1000)])
def test_a_page_is_one_query_whatever_its_size(size):
    batches, page = _run(size, size)
    assert [len(batch) for batch in batches] == [1]
    assert len(page.traces) == size


@pytest.mark.parametrize(
    ("options", "present", "absent"),
    [
        pytest.param({}, "trajectory_events", "NULL::text AS student_learning", id="everything"),
        pytest.param({"include_trajectory_events": False}, "step_results", "trajectory_events",
                     id="no-events"),
    ],
)  # fmt: skip
def test_the_page_query_reads_only_what_is_asked_for(options, present, absent):
    (query,) = next(page_plan(SessionFilters.build(), None, LoadOptions(**options), size=5))
    text = query.sql.as_string(None)
    assert present in text
    assert absent not in text


def test_an_empty_page_ends_the_paging():
    batches, page = _run(10, 0)
    assert len(batches) == 1
    assert page == Page([], None)


def test_a_full_page_continues_after_its_last_row():
    _, page = _run(3, 3)
    assert page.cursor == (T0 - timedelta(minutes=2), 998)


def test_a_short_page_is_the_last():
    _, page = _run(10, 4)
    assert page.cursor is None


def test_children_are_assembled_into_their_sessions():
    _, page = _run(3, 3)
    assert [(t.session_id, len(t.steps), len(t.trajectory_events)) for t in page.traces] == [
        (1000, 1, 1),
        (999, 1, 1),
        (998, 1, 1),
    ]


def test_the_page_query_orders_newest_first_and_binds_window_values():
    plan = page_plan(SessionFilters.build(), None, LoadOptions(), size=25, offset=5)
    (query,) = next(plan)
    text = query.sql.as_string(None)
    assert "ORDER BY s.created_at DESC, s.id DESC LIMIT %s OFFSET %s" in text
    assert list(query.params) == [25, 5, None]  # page size, offset, event limit


@pytest.mark.parametrize(
    ("filters", "params"),
    [
        pytest.param(SessionFilters.build(), [], id="no-filters"),
        pytest.param(SessionFilters.build(min_reward=0.5), [0.5], id="with-filter"),
    ],
)
def test_the_keyset_cursor_is_bound_after_the_filters(filters, params):
    after = (T0, 42)
    (query,) = next(page_plan(filters, None, LoadOptions(), size=10, after=after))
    assert "(s.created_at, s.id) < (%s, %s)" in query.sql.as_string(None)
    assert list(query.params) == [*params, T0, 42, 10, 0, None]


def test_without_learning_data_the_learning_columns_are_not_read():
    options = LoadOptions(include_learning_data=False)
    (query,) = next(page_plan(SessionFilters.build(), None, options, size=1))
    assert "s.student_learning" not in query.sql.as_string(None)


def test_count_plan_sends_one_query_per_gate_in_one_batch():
    plan = count_plan(SessionFilters.build(status_filters="failed"), [GATE, None])
    batch = next(plan)
    assert [list(q.params) for q in batch] == [[["failed"], ["approved"]], [["failed"]]]
    with pytest.raises(StopIteration) as done:
        plan.send([[{"n": 3}], [{"n": 8}]])
    assert done.value.value == [3, 8]


def _events_page(events: dict[str, Any], limit: int | None) -> Page:
    plan = page_plan(
        SessionFilters.build(), None, LoadOptions(trajectory_event_limit=limit), size=5
    )
    next(plan)
    with pytest.raises(StopIteration) as done:
        plan.send([_sessions(1, **events)])
    page: Page = done.value.value
    return page


def test_a_session_without_events_in_the_limit_still_has_its_count():
    page = _events_page({"kept": 0, "all_flat": True, "raw": None, "event_total": 7}, 0)
    (trace,) = page.traces
    assert (trace.trajectory_events, trace.trajectory_event_count) == ([], 7)
    assert trace.trajectory_events_truncated


def test_an_event_holding_json_null_is_kept_and_noted():
    page = _events_page({"kept": 1, "all_flat": False, "raw": "[null]", "event_total": 1}, None)
    (trace,) = page.traces
    assert [e["event_type"] for e in trace.trajectory_events] == ["unknown"]
    assert trace.load_warnings
