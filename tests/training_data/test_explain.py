"""Every filter can use an index: EXPLAIN the queries the plan builds on a table worth indexing.

The table is made in one INSERT ... SELECT per table (20,000 sessions), with
values spread so that each filter below is selective, then ANALYZEd.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

import psycopg
import pytest
from psycopg import sql

from atlas.training_data.assembly import LoadOptions
from atlas.training_data.filters import SessionFilters
from atlas.training_data.plan import Query, _page_query, count_plan, ids_plan
from atlas.training_data.review_gate import ReviewGate

pytestmark = pytest.mark.slow

SESSIONS = 20_000
NEWEST = datetime(2026, 1, 1, tzinfo=timezone.utc)  # session i was created i minutes earlier

_BUILD = (
    "INSERT INTO sessions (task, status, review_status, metadata, reward_stats, created_at) "
    "SELECT 'task ' || i, "
    "  CASE WHEN i %% 400 = 0 THEN 'running' WHEN i %% 100 = 0 THEN 'failed' ELSE 'succeeded' END, "
    "  CASE WHEN i %% 300 = 0 THEN 'quarantined' WHEN i %% 3 = 0 THEN 'pending' "
    "       ELSE 'approved' END, "
    "  jsonb_build_object('learning_key', 'key-' || (i %% 1000)), "
    "  jsonb_build_object('score', (i %% 1000) / 1000.0), "
    "  %(newest)s - make_interval(mins => i) "
    "FROM generate_series(1, %(n)s) AS i",
    "INSERT INTO plans (session_id, plan) SELECT id, '{\"steps\": []}' FROM sessions",
    "INSERT INTO step_results (session_id, step_id, attempts) SELECT id, 1, 1 FROM sessions",
    "INSERT INTO step_attempts (session_id, step_id, attempt) SELECT id, 1, 1 FROM sessions",
    "INSERT INTO guidance_notes (session_id, step_id, sequence, note) "
    "SELECT id, 1, 1, 'note' FROM sessions",
    "INSERT INTO trajectory_events (session_id, event, created_at) "
    'SELECT id, \'{"event_type": "x"}\', created_at + make_interval(secs => k) '
    "FROM sessions, generate_series(1, 2) AS k",
    "ANALYZE",
)


@pytest.fixture(scope="module")
def explain(scratch_database: Callable[[], str]) -> Iterator[Callable[[Query], str]]:
    """``explain(query)``: the plan PostgreSQL picks for it, as text."""
    with psycopg.connect(scratch_database(), autocommit=True) as conn:
        conn.execute(_BUILD[0], {"newest": NEWEST, "n": SESSIONS})
        for statement in _BUILD[1:]:
            conn.execute(statement)

        def plan_of(query: Query) -> str:
            rows = conn.execute(sql.SQL("EXPLAIN ") + query.sql, query.params)
            return "\n".join(row[0] for row in rows)

        yield plan_of


FILTER_CASES = [
    pytest.param({"min_reward": 0.999}, None, "sessions_reward_score_idx", id="min_reward"),
    pytest.param({"max_reward": 0.001}, None, "sessions_reward_score_idx", id="max_reward"),
    pytest.param({"learning_key": "key-7"}, None, "sessions_learning_key_idx", id="learning_key"),
    pytest.param(
        {"learning_key": ["key-7", "key-8"]}, None, "sessions_learning_key_idx", id="two-keys"
    ),
    pytest.param({"status_filters": "running"}, None, "sessions_status_idx", id="status"),
    pytest.param({}, ("quarantined",), "sessions_review_status_idx", id="review_status"),
    pytest.param(
        {"created_after": "2025-12-31T23:30:00+00:00"},
        None,
        "sessions_created_at_idx",
        id="created_after",
    ),
    pytest.param(
        {"created_before": "2025-12-18T03:00:00+00:00"},
        None,
        "sessions_created_at_idx",
        id="created_before",
    ),
    pytest.param({"session_ids": [5, 17, 4242]}, None, "sessions_pkey", id="session_ids"),
]


def _gate(statuses: tuple[str, ...] | None) -> ReviewGate | None:
    return ReviewGate(statuses, "test") if statuses else None


def _uses(plan: str, index: str) -> bool:
    # "Index Scan using X on t", "Index Only Scan using X on t", "Bitmap Index Scan on X"
    return re.search(rf"(using|Bitmap Index Scan on) {index}\b", plan) is not None


def _assert_uses(plan: str, index: str) -> None:
    assert _uses(plan, index), plan
    assert "Seq Scan on sessions" not in plan, plan


@pytest.mark.parametrize(("filters", "statuses", "index"), FILTER_CASES)
def test_page_query_uses_the_filter_index(explain, filters, statuses, index):
    query = _page_query(
        SessionFilters.build(**filters), _gate(statuses), LoadOptions(), 100, None, 0
    )
    _assert_uses(explain(query), index)


@pytest.mark.parametrize(("filters", "statuses", "index"), FILTER_CASES)
def test_count_query_uses_the_filter_index(explain, filters, statuses, index):
    (query,) = next(count_plan(SessionFilters.build(**filters), [_gate(statuses)]))
    _assert_uses(explain(query), index)


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        pytest.param({}, "sessions_created_at_idx", id="no-filter"),
        pytest.param({"status_filters": "running"}, "sessions_status_idx", id="status"),
    ],
)
def test_a_deep_keyset_page_walks_an_index(explain, filters, index):
    cursor = (datetime(2025, 12, 25, tzinfo=timezone.utc), 9000)
    query = _page_query(SessionFilters.build(**filters), None, LoadOptions(), 100, cursor, 0)
    _assert_uses(explain(query), index)


def test_the_first_page_under_the_default_gate_needs_no_seq_scan(explain):
    gate = ReviewGate(("approved",), "default")
    plan = explain(_page_query(SessionFilters.build(), gate, LoadOptions(), 100, None, 0))
    assert "Seq Scan on sessions" not in plan, plan


_PAGE_IDS = list(range(5000, 5100))


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="all-events"),
        pytest.param({"trajectory_event_limit": 1}, id="events-limited"),
    ],
)
@pytest.mark.parametrize(
    "index",
    [
        "step_results_pkey",
        "step_attempts_pkey",
        "guidance_notes_pkey",
        "plans_pkey",
        "trajectory_events_session_idx",
    ],
)
def test_children_are_read_through_the_session_key(explain, options, index):
    filters = SessionFilters.build(session_ids=_PAGE_IDS)
    plan = explain(_page_query(filters, None, LoadOptions(**options), 100, None, 0))
    assert _uses(plan, index), plan
    assert "Seq Scan" not in plan, plan


@pytest.mark.parametrize(("filters", "statuses", "index"), FILTER_CASES)
def test_the_exporters_id_lister_uses_the_filter_index(explain, filters, statuses, index):
    (query,) = next(
        ids_plan(SessionFilters.build(**filters), _gate(statuses), LoadOptions(), size=100)
    )
    _assert_uses(explain(query), index)
