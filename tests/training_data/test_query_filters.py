"""Every filter of get_training_sessions against hand-written SQL, and selective loading."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from training_data_sql import scalar

from atlas.training_data import get_training_sessions, paginate_sessions_sync

SCORE = "(reward_stats ->> 'score')::float"
LIGHT = {"include_trajectory_events": False, "include_learning_data": False}


def _ids(url: str, **kwargs: Any) -> list[int]:
    return [t.session_id for t in get_training_sessions(url, **LIGHT, **kwargs)]


def _all_ids(url: str, **kwargs: Any) -> list[int]:
    return _ids(url, include_all_review_statuses=True, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "where", "params"),
    [
        pytest.param({"min_reward": 0.8}, f"{SCORE} >= %s", [0.8], id="min_reward"),
        pytest.param({"max_reward": 0.5}, f"{SCORE} <= %s", [0.5], id="max_reward"),
        pytest.param(
            {"min_reward": 0.6, "max_reward": 0.7},
            f"{SCORE} BETWEEN %s AND %s",
            [0.6, 0.7],
            id="reward-range",
        ),
        pytest.param(
            {"learning_key": "security-review"},
            "metadata ->> 'learning_key' = %s",
            ["security-review"],
            id="one-learning-key",
        ),
        pytest.param(
            {"learning_key": ["release-notes", "data-cleanup"]},
            "metadata ->> 'learning_key' IN (%s, %s)",
            ["release-notes", "data-cleanup"],
            id="several-learning-keys",
        ),
        pytest.param({"status_filters": ["failed"]}, "status = %s", ["failed"], id="status"),
        pytest.param(
            {"status_filters": ["failed", "running"]},
            "status IN (%s, %s)",
            ["failed", "running"],
            id="several-statuses",
        ),
        pytest.param({"session_ids": [3, 50, 399, 10**6]}, "id IN (3, 50, 399)", [], id="ids"),
        pytest.param(
            {"min_reward": 0.7, "learning_key": "customer-support", "status_filters": "succeeded"},
            f"{SCORE} >= 0.7 AND metadata ->> 'learning_key' = 'customer-support' "
            "AND status = 'succeeded'",
            [],
            id="combined",
        ),
    ],
)
def test_filter_matches_sql(seeded_url, oracle, kwargs, where, params):
    expected = oracle(where, params)
    assert expected, "the case must select something to be meaningful"
    assert _all_ids(seeded_url, **kwargs) == expected


@pytest.mark.parametrize(
    ("statuses", "where"),
    [
        pytest.param(["quarantined"], "review_status = 'quarantined'", id="one"),
        pytest.param(
            ["pending", "quarantined"], "review_status IN ('pending', 'quarantined')", id="two"
        ),
    ],
)
def test_review_status_filter_matches_sql(seeded_url, oracle, statuses, where):
    assert _ids(seeded_url, review_status_filters=statuses) == oracle(where)


def _created_at_of_the_median_session(url: str) -> Any:
    return scalar(url, "SELECT created_at FROM sessions ORDER BY created_at OFFSET 200 LIMIT 1")


def test_created_after_is_inclusive(seeded_url, oracle):
    moment = _created_at_of_the_median_session(seeded_url)
    ids = _all_ids(seeded_url, created_after=moment)
    assert ids == oracle("created_at >= %s", [moment])
    assert ids[-1] == oracle("created_at = %s", [moment])[0]


def test_created_before_is_exclusive(seeded_url, oracle):
    moment = _created_at_of_the_median_session(seeded_url)
    assert _all_ids(seeded_url, created_before=moment) == oracle("created_at < %s", [moment])


def test_created_range_given_as_iso_text(seeded_url, oracle):
    low = _created_at_of_the_median_session(seeded_url)
    high = scalar(seeded_url, "SELECT max(created_at) FROM sessions")
    ids = _all_ids(seeded_url, created_after=low.isoformat(), created_before=high.isoformat())
    assert ids == oracle("created_at >= %s AND created_at < %s", [low, high])


def test_limit(seeded_url, oracle):
    assert _all_ids(seeded_url, limit=7) == oracle(tail="LIMIT 7")


def test_offset(seeded_url, oracle):
    assert _all_ids(seeded_url, offset=395) == oracle(tail="OFFSET 395")


def test_filters_are_applied_before_limit_and_offset(seeded_url, oracle):
    ids = _all_ids(seeded_url, min_reward=0.9, limit=5, offset=2)
    assert ids == oracle(f"{SCORE} >= 0.9", tail="LIMIT 5 OFFSET 2")
    assert len(ids) == 5


def test_limit_and_offset_span_several_pages(seeded_url, oracle):
    batches = paginate_sessions_sync(
        seeded_url, batch_size=7, limit=20, offset=3, include_all_review_statuses=True, **LIGHT
    )
    assert [t.session_id for batch in batches for t in batch] == oracle(tail="LIMIT 20 OFFSET 3")


def test_limit_zero_returns_nothing_and_does_not_warn(seeded_url):
    assert get_training_sessions(seeded_url, limit=0) == []


# --- selective loading ------------------------------------------------------


def _events_by_session(url: str, ids: list[int]) -> dict[int, list[str]]:
    """Event names per session in chronological order, as SQL orders them."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT session_id, coalesce(event ->> 'name', event -> 'payload' ->> 'name') "
            "FROM trajectory_events WHERE session_id = ANY(%s) ORDER BY session_id, created_at, id",
            [ids],
        ).fetchall()
    found: dict[int, list[str]] = {i: [] for i in ids}
    for session_id, name in rows:
        found[session_id].append(name)
    return found


def _sample(url: str, **kwargs: Any) -> list[Any]:
    return get_training_sessions(url, include_all_review_statuses=True, limit=15, **kwargs)


def test_events_are_loaded_whole_and_chronological_by_default(seeded_url):
    traces = _sample(seeded_url)
    expected = _events_by_session(seeded_url, [t.session_id for t in traces])
    for trace in traces:
        assert [e["name"] for e in trace.trajectory_events] == expected[trace.session_id]
        assert trace.trajectory_event_count == len(expected[trace.session_id])
        assert not trace.trajectory_events_truncated


def test_event_timestamps_never_go_backwards(seeded_url):
    for trace in _sample(seeded_url):
        stamps = [e["timestamp"] for e in trace.trajectory_events]
        assert stamps == sorted(stamps)


def test_event_limit_keeps_the_first_events_and_reports_the_total(seeded_url):
    traces = _sample(seeded_url, trajectory_event_limit=5)
    expected = _events_by_session(seeded_url, [t.session_id for t in traces])
    for trace in traces:
        assert [e["name"] for e in trace.trajectory_events] == expected[trace.session_id][:5]
        assert trace.trajectory_event_count == len(expected[trace.session_id])
        assert trace.trajectory_events_truncated


def test_event_limit_above_the_count_truncates_nothing(seeded_url):
    for trace in _sample(seeded_url, trajectory_event_limit=1000):
        assert not trace.trajectory_events_truncated
        assert len(trace.trajectory_events) == trace.trajectory_event_count > 0


def test_event_limit_zero_keeps_only_the_count(seeded_url):
    traces = _sample(seeded_url, trajectory_event_limit=0)
    expected = _events_by_session(seeded_url, [t.session_id for t in traces])
    assert [(t.trajectory_events, t.trajectory_event_count) for t in traces] == [
        ([], len(expected[t.session_id])) for t in traces
    ]
    assert all(t.trajectory_events_truncated for t in traces)


def test_without_trajectory_events(seeded_url):
    traces = _sample(seeded_url, include_trajectory_events=False)
    assert [(t.trajectory_events, t.trajectory_event_count) for t in traces] == [([], 0)] * 15
    assert all(t.steps for t in traces if t.session_metadata.get("synthetic"))


def test_without_learning_data(seeded_url):
    traces = _sample(seeded_url, include_learning_data=False)
    assert {(t.student_learning, t.teacher_learning, t.learning_history) for t in traces} == {
        (None, None, None)
    }


def test_learning_data_is_loaded_by_default(seeded_url):
    for trace in _sample(seeded_url):
        assert trace.student_learning and trace.teacher_learning
        assert trace.learning_history["count"] == 2
