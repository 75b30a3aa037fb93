"""Filters -> SQL, without a database: validation, bound parameters, clear errors."""

from __future__ import annotations

import asyncio
import re
from datetime import date, datetime, timezone
from typing import Any

import pytest

from atlas.errors import InvalidFilter
from atlas.training_data import TrainingQuery, paginate_sessions, paginate_sessions_sync
from atlas.training_data.filters import SessionFilters, where_clause
from atlas.training_data.review_gate import ReviewGate

UTC = timezone.utc


def _sql(filters: SessionFilters, gate: ReviewGate | None = None) -> tuple[str, list[Any]]:
    clause, params = where_clause(filters, gate)
    return clause.as_string(None), params


def test_no_filters_no_where_clause():
    assert _sql(SessionFilters.build()) == ("", [])


@pytest.mark.parametrize(
    ("kwargs", "fragment", "params"),
    [
        pytest.param(
            {"min_reward": 0.8}, "(s.reward_stats ->> 'score')::float >= %s", [0.8], id="min"
        ),
        pytest.param(
            {"max_reward": "0.3"}, "(s.reward_stats ->> 'score')::float <= %s", [0.3], id="max"
        ),
        pytest.param(
            {"learning_key": "security-review"},
            "(s.metadata ->> 'learning_key') = ANY(%s)",
            [["security-review"]],
            id="one-key",
        ),
        pytest.param(
            {"learning_key": ["a", "b"]},
            "(s.metadata ->> 'learning_key') = ANY(%s)",
            [["a", "b"]],
            id="several-keys",
        ),
        pytest.param({"status_filters": "failed"}, "s.status = ANY(%s)", [["failed"]], id="status"),
        pytest.param(
            {"created_after": "2026-01-31"},
            "s.created_at >= %s",
            [datetime(2026, 1, 31, tzinfo=UTC)],
            id="after-inclusive",
        ),
        pytest.param(
            {"created_before": date(2026, 2, 1)},
            "s.created_at < %s",
            [datetime(2026, 2, 1, tzinfo=UTC)],
            id="before-exclusive",
        ),
        pytest.param({"session_ids": [3, 4]}, "s.id = ANY(%s)", [[3, 4]], id="ids"),
    ],
)
def test_each_filter_is_one_bound_condition(kwargs, fragment, params):
    text, bound = _sql(SessionFilters.build(**kwargs))
    assert text == "WHERE " + fragment
    assert bound == params


def test_review_gate_adds_its_statuses_as_a_parameter():
    text, params = _sql(SessionFilters.build(), ReviewGate(("approved",), "default"))
    assert text == "WHERE s.review_status = ANY(%s)"
    assert params == [["approved"]]


def test_open_review_gate_adds_nothing():
    assert _sql(SessionFilters.build(), ReviewGate(None, "test")) == ("", [])


def test_conditions_are_joined_with_and_in_parameter_order():
    filters = SessionFilters.build(min_reward=0.5, status_filters=["succeeded"], session_ids=1)
    text, params = _sql(filters)
    assert text.count(" AND ") == 2
    assert params == [0.5, ["succeeded"], [1]]


def test_user_values_never_reach_the_sql_text():
    hostile = "x'); DROP TABLE sessions; --"
    text, params = _sql(SessionFilters.build(learning_key=hostile))
    assert hostile not in text
    assert params == [[hostile]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2026-01-31T12:00:00Z", datetime(2026, 1, 31, 12, tzinfo=UTC), id="zulu"),
        pytest.param(
            "2026-01-31T12:00:00+02:00", datetime(2026, 1, 31, 10, tzinfo=UTC), id="offset"
        ),
        pytest.param("2026-01-31T12:00:00", datetime(2026, 1, 31, 12, tzinfo=UTC), id="naive"),
    ],
)
def test_dates_are_read_as_aware_moments(text, expected):
    assert SessionFilters.build(created_after=text).created_after == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"min_reward": "high"}, "min_reward must be a number", id="reward-text"),
        pytest.param({"max_reward": True}, "max_reward must be a number", id="reward-bool"),
        pytest.param(
            {"min_reward": 0.9, "max_reward": 0.1},
            "min_reward (0.9) is greater than max_reward (0.1)",
            id="min-above-max",
        ),
        pytest.param(
            {"status_filters": ["done"]},
            "status_filters: unknown session status 'done'",
            id="unknown-status",
        ),
        pytest.param({"status_filters": []}, "status_filters is empty", id="empty-status"),
        pytest.param(
            {"review_status_filters": ["aproved"]},
            "review_status_filters: unknown review status 'aproved'",
            id="unknown-review-status",
        ),
        pytest.param(
            {"created_after": "last tuesday"},
            "created_after 'last tuesday' is not a date",
            id="bad-date",
        ),
        pytest.param(
            {"created_after": "2026-02-01", "created_before": "2026-01-01"},
            "created_after must be earlier than created_before",
            id="empty-range",
        ),
        pytest.param(
            {"session_ids": ["seven"]},
            "session_ids must be a whole number >= 1, not 'seven'",
            id="bad-id",
        ),
        pytest.param({"limit": -1}, "limit must be a whole number >= 0, not -1", id="limit"),
        pytest.param({"offset": 1.5}, "offset must be a whole number >= 0", id="offset"),
        pytest.param(
            {"trajectory_event_limit": -3},
            "trajectory_event_limit must be a whole number >= 0",
            id="event-limit",
        ),
    ],
)
def test_bad_filters_raise_invalid_filter_naming_the_argument(kwargs, message):
    with pytest.raises(InvalidFilter, match="^" + re.escape(message)):
        TrainingQuery.build(**kwargs)


def test_known_values_are_listed_in_the_status_error():
    with pytest.raises(InvalidFilter, match=r"use running, succeeded, failed\.$"):
        TrainingQuery.build(status_filters="done")


@pytest.mark.parametrize("size", [pytest.param(0, id="zero"), pytest.param("10", id="text")])
def test_bad_batch_size_raises_before_any_connection(size):
    # The URL points nowhere: the argument must be rejected before connecting.
    batches = paginate_sessions_sync("postgresql://nobody@127.0.0.1:1/none", batch_size=size)
    with pytest.raises(InvalidFilter, match=r"^batch_size must be a whole number >= 1"):
        next(batches)


def test_bad_batch_size_raises_in_the_async_paginator_too():
    async def first_batch() -> None:
        async for _ in paginate_sessions("postgresql://nobody@127.0.0.1:1/none", batch_size=0):
            pass

    with pytest.raises(InvalidFilter, match=r"^batch_size must be a whole number >= 1"):
        asyncio.run(first_batch())
