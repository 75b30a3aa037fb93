"""Looking up one session, and counting sessions."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from training_data_sql import ids_where

from atlas.errors import InvalidFilter, SessionNotFound
from atlas.training_data import (
    count_training_sessions,
    get_session_by_id,
    get_session_by_id_async,
    get_training_sessions,
)


@pytest.mark.parametrize("review", [pytest.param(r, id=r) for r in ("pending", "quarantined")])
def test_lookup_by_id_ignores_the_review_gate(seeded_url, review):
    session_id = ids_where(seeded_url, "review_status = %s", [review])[0]
    trace = get_session_by_id(session_id=session_id, db_url=seeded_url)
    assert (trace.session_id, trace.review_status) == (session_id, review)


def test_lookup_loads_the_whole_session(seeded_url):
    session_id = ids_where(
        seeded_url,
        "id IN (SELECT session_id FROM plans WHERE plan IS NOT NULL) "
        "AND id IN (SELECT session_id FROM step_results)",
    )[0]
    trace = get_session_by_id(session_id=session_id, db_url=seeded_url)
    assert trace.steps and trace.trajectory_events and trace.plan
    assert trace.session_reward["judges"]


def test_lookup_takes_the_loading_options(seeded_url):
    session_id = ids_where(seeded_url)[0]
    trace = get_session_by_id(
        session_id=session_id,
        db_url=seeded_url,
        trajectory_event_limit=2,
        include_learning_data=False,
    )
    assert len(trace.trajectory_events) == 2 and trace.trajectory_events_truncated
    assert trace.student_learning is None


def test_unknown_id_raises_session_not_found(seeded_url):
    with pytest.raises(SessionNotFound, match=r"^Session 123456 is not in the database\.$"):
        get_session_by_id(session_id=123456, db_url=seeded_url)


def test_unknown_id_raises_session_not_found_async(seeded_url):
    with pytest.raises(SessionNotFound, match="Session 123456"):
        asyncio.run(get_session_by_id_async(session_id=123456, db_url=seeded_url))


def test_session_not_found_is_a_lookup_error(seeded_url):
    with pytest.raises(LookupError):
        get_session_by_id(session_id=2**31 - 1, db_url=seeded_url)


@pytest.mark.parametrize("bad", [pytest.param("7", id="text"), pytest.param(True, id="bool")])
def test_a_session_id_that_is_not_an_integer_is_refused(bad):
    with pytest.raises(InvalidFilter, match="session_id must be an integer"):
        get_session_by_id(session_id=bad, db_url="postgresql://nobody@127.0.0.1:1/none")


@pytest.mark.parametrize(
    "filters",
    [
        pytest.param({}, id="default-gate"),
        pytest.param({"include_all_review_statuses": True}, id="everything"),
        pytest.param({"min_reward": 0.75, "status_filters": "succeeded"}, id="reward-status"),
        pytest.param({"learning_key": ["release-notes", "code-migration"]}, id="keys"),
        pytest.param({"review_status_filters": ["pending"], "max_reward": 0.6}, id="pending"),
        pytest.param({"session_ids": [1, 2, 3, 4, 5]}, id="ids"),
    ],
)
def test_count_equals_the_number_of_sessions_returned(seeded_url, filters: dict[str, Any]):
    light = {"include_trajectory_events": False, "include_learning_data": False}
    returned = get_training_sessions(seeded_url, **filters, **light)
    assert count_training_sessions(seeded_url, **filters) == len(returned) > 0


@pytest.mark.parametrize(
    "window", [pytest.param({"limit": 5}, id="limit"), pytest.param({"offset": 5}, id="offset")]
)
def test_count_refuses_window_arguments(window):
    with pytest.raises(InvalidFilter, match="count_training_sessions does not take"):
        count_training_sessions("postgresql://nobody@127.0.0.1:1/none", **window)
