"""The write ops as data: statements, bound parameters and value encoding (no database)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from atlas.errors import InvalidFilter
from atlas.storage import writes
from atlas.storage.writes import AttemptRecord, StepRecord, WriteOp

AT = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def params(op: WriteOp, index: int = 0) -> dict[str, Any]:
    return dict(op.statements[index].params)


OPS = {
    "create_session": writes.create_session("t", {"a": 1}),
    "record_plan": writes.record_plan(1, {"steps": []}),
    "record_step": writes.record_step(1, StepRecord(1, attempts=[{}], guidance=["g"])),
    "append_events": writes.append_events(1, [{"event_type": "x"}]),
    "record_reward": writes.record_reward(1, reward={"score": 1}),
    "update_metadata": writes.update_metadata(1, {"a": 1}),
    "set_review_status": writes.set_review_status([1], "approved", reviewer="r"),
    "finalize_session": writes.finalize_session(1, status="succeeded"),
    "heartbeat": writes.heartbeat(1),
    "upsert_learning": writes.upsert_learning("k", student_learning="s", teacher_learning=None),
    "record_discovery_run": writes.record_discovery_run(project_root="/p", task=None, payload={}),
    "recover_stale_sessions": writes.recover_stale_sessions(timedelta(hours=1)),
    "recover_stale_sessions-dry": writes.recover_stale_sessions(timedelta(hours=1), dry_run=True),
}


@pytest.mark.parametrize("op", [pytest.param(op, id=name) for name, op in OPS.items()])
def test_every_placeholder_is_bound(op: WriteOp) -> None:
    for statement in op.statements:
        names = set(re.findall(r"%\((\w+)\)s", statement.sql))
        assert names == set(statement.params)


@pytest.mark.parametrize(
    ("name", "returns"),
    [
        pytest.param("create_session", True, id="create_session"),
        pytest.param("record_discovery_run", True, id="record_discovery_run"),
        pytest.param("set_review_status", True, id="set_review_status"),
        pytest.param("recover_stale_sessions", True, id="recover_stale_sessions"),
        pytest.param("record_plan", False, id="record_plan"),
        pytest.param("finalize_session", True, id="finalize_session"),
        pytest.param("heartbeat", False, id="heartbeat"),
    ],
)
def test_ops_that_return_a_value(name: str, returns: bool) -> None:
    assert OPS[name].returns is returns


def test_create_session_params() -> None:
    op = writes.create_session("find\x00bugs", {"learning_key": "k"}, created_at=AT)
    assert params(op) == {
        "task": "find\ufffdbugs",
        "status": "running",
        "review": "pending",
        "metadata": '{"learning_key":"k"}',
        "created_at": AT,
    }


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(
            lambda: writes.create_session("t", status="done"),
            "status must be one of running, succeeded, failed; got 'done'.",
            id="create-status",
        ),
        pytest.param(
            lambda: writes.create_session("t", review_status="ok"),
            "review_status must be one of pending, approved, quarantined; got 'ok'.",
            id="create-review-status",
        ),
        pytest.param(
            lambda: writes.finalize_session(1, status="complete"),
            "status must be one of running, succeeded, failed; got 'complete'.",
            id="finalize-status",
        ),
        pytest.param(
            lambda: writes.set_review_status([1], "rejected"),
            "review status must be one of pending, approved, quarantined; got 'rejected'.",
            id="review-status",
        ),
        pytest.param(
            lambda: writes.recover_stale_sessions(timedelta(0)),
            "older_than must be a positive duration of at most 36500 days, such as 30m or 2h; "
            "got 0:00:00.",
            id="stale-age-zero",
        ),
        pytest.param(
            lambda: writes.recover_stale_sessions(timedelta(seconds=-5)),
            "older_than must be a positive duration of at most 36500 days, such as 30m or 2h; "
            "got -1 day, 23:59:55.",
            id="stale-age-negative",
        ),
        pytest.param(
            lambda: writes.recover_stale_sessions(writes.MAX_RECOVER_AGE + timedelta(seconds=1)),
            "older_than must be a positive duration of at most 36500 days, such as 30m or 2h; "
            "got 36500 days, 0:00:01.",
            id="stale-age-too-long",
        ),
    ],
)
def test_invalid_values_are_refused(call: Any, message: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        call()
    assert str(caught.value) == message


def test_record_step_params() -> None:
    step = StepRecord(
        step_id=3,
        trace="t\x00",
        output="o",
        evaluation={"validation": {"valid": True}},
        metadata={"runtime": 12},
        attempts=[AttemptRecord(1, {"ok": False}), {"evaluation": {"ok": True}}, {"attempt": 7}],
        guidance=["first\x00", 2],  # type: ignore[list-item]
    )
    op = writes.record_step(5, step)
    assert params(op, 0) == {
        "sid": 5,
        "step": 3,
        "trace": "t\ufffd",
        "output": "o",
        "evaluation": '{"validation":{"valid":true}}',
        "attempts": 3,
        "metadata": '{"runtime":12}',
    }
    assert params(op, 2)["numbers"] == [1, 2, 7]
    assert params(op, 2)["evaluations"] == ['{"ok":false}', '{"ok":true}', None]
    assert params(op, 4)["notes"] == ["first\ufffd", "2"]


def test_record_step_without_attempts_counts_one() -> None:
    op = writes.record_step(5, StepRecord(step_id=1))
    assert (params(op)["attempts"], params(op)["metadata"], params(op)["evaluation"]) == (
        1,
        None,
        None,
    )


def test_append_events_keeps_order_and_timestamps() -> None:
    events = [
        {"event_type": "a", "timestamp": "2025-03-01T12:00:00+00:00"},
        {"payload": {"event_type": "b", "event_timestamp": 0}},
        {"event_type": "c"},
    ]
    bound = params(writes.append_events(9, events))
    assert [json.loads(e)["event_type"] for e in bound["events"]] == ["a", "b", "c"]
    assert bound["times"] == [AT, datetime(1970, 1, 1, tzinfo=timezone.utc), None]


@pytest.mark.parametrize(
    ("stats", "stored"),
    [
        pytest.param({"score": 0.9}, {"score": 0.9}, id="float"),
        pytest.param({"score": 1}, {"score": 1}, id="int"),
        pytest.param({"score": " 0.75 "}, {"score": 0.75}, id="numeric-text"),
        pytest.param({"score": "n/a", "n": 2}, {"n": 2, "score_raw": "n/a"}, id="text"),
        pytest.param({"score": True}, {"score_raw": True}, id="bool"),
        pytest.param({"score": "NaN"}, {"score_raw": "NaN"}, id="nan-text"),
        pytest.param({"score": float("inf")}, {"score_raw": "Infinity"}, id="infinity"),
        pytest.param({"score": [1]}, {"score_raw": [1]}, id="list"),
        pytest.param({"score": None}, {"score": None}, id="null"),
        pytest.param({"mean": 1}, {"mean": 1}, id="no-score"),
        pytest.param([0.5], [0.5], id="not-a-mapping"),
    ],
)
def test_reward_stats_score_stays_numeric(stats: Any, stored: Any) -> None:
    bound = params(writes.record_reward(1, reward_stats=stats))
    assert json.loads(bound["stats"]) == stored


def test_record_reward_leaves_unset_fields_null() -> None:
    bound = params(writes.record_reward(4, teacher_learning="t\x00"))
    assert bound == {
        "sid": 4,
        "reward": None,
        "stats": None,
        "audit": None,
        "student": None,
        "teacher": "t\ufffd",
    }


def test_set_review_status_history_entry() -> None:
    op = writes.set_review_status([1, 2], "quarantined", notes="drift", reviewer="ana", at=AT)
    bound = params(op)
    assert bound["ids"] == [1, 2]
    assert json.loads(bound["entry"]) == [
        {"status": "quarantined", "reviewer": "ana", "at": AT.isoformat(), "note": "drift"}
    ]


def test_set_review_status_defaults_reviewer_to_os_user() -> None:
    entry = json.loads(params(writes.set_review_status([1], "approved"))["entry"])[0]
    assert entry["reviewer"]
    assert datetime.fromisoformat(entry["at"]).tzinfo is not None


def test_recover_dry_run_changes_nothing() -> None:
    (statement,) = writes.recover_stale_sessions(timedelta(minutes=30), dry_run=True).statements
    assert "UPDATE" not in statement.sql
    assert statement.params == {"age": timedelta(minutes=30)}
