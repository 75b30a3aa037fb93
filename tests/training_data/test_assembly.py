"""Rows -> traces, without a database: current shapes, legacy shapes, undecodable values."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from atlas.training_data.assembly import LoadOptions, PageRows, assemble_page, assemble_trace

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
REWARD = {"score": 0.9, "judges": [{"identifier": "process", "score": 0.9}]}


def _row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": 1,
        "task": "Summarize",
        "status": "succeeded",
        "metadata": {"learning_key": "k", "learning_history": {"count": 1}},
        "final_answer": "done",
        "reward": REWARD,
        "reward_stats": {"score": 0.9},
        "reward_audit": [{"judge": "process"}],
        "student_learning": "s",
        "teacher_learning": "t",
        "review_status": "approved",
        "review_notes": None,
        "created_at": T0,
        "completed_at": T0,
        "plan": {"steps": [{"id": 1, "description": "Collect", "tool": "web_search"}]},
    }
    row.update(overrides)
    return row


def _step(**overrides: Any) -> dict[str, Any]:
    step: dict[str, Any] = {
        "session_id": 1,
        "step_id": 1,
        "trace": "HUMAN: hi",
        "output": "out",
        "evaluation": {"validation": {"valid": True}, "reward": {"score": 0.7}},
        "attempts": 1,
        "metadata": {"runtime": 12, "artifacts": {"a": 1}, "status": "succeeded"},
    }
    step.update(overrides)
    return step


def _trace(
    row: dict[str, Any] | None = None,
    steps: list[dict[str, Any]] | None = None,
    events: list[Any] | None = None,
    total: int | None = None,
    attempts: dict[tuple[int, int], list[dict[str, Any]]] | None = None,
    **options: Any,
):
    return assemble_trace(
        row or _row(),
        steps or [],
        attempts or {},
        {},
        events if events is not None else [],
        total,
        LoadOptions(**options),
    )


def _flat(n: int) -> dict[str, Any]:
    return {"event_type": "tool_call", "actor": "student", "name": f"e{n}", "payload": {"n": n}}


def test_current_row_becomes_a_complete_trace():
    trace = _trace()
    assert (trace.session_id, trace.task, trace.status, trace.review_status) == (
        1,
        "Summarize",
        "succeeded",
        "approved",
    )
    assert trace.session_reward == REWARD
    assert trace.learning_history == {"count": 1}
    assert trace.session_metadata == {
        "learning_key": "k",
        "learning_history": {"count": 1},
        "session_id": 1,
        "status": "succeeded",
        "created_at": T0.isoformat(),
        "completed_at": T0.isoformat(),
        "review_status": "approved",
        "reward_stats": {"score": 0.9},
        "reward_audit": [{"judge": "process"}],
    }
    assert trace.load_warnings == []


def test_stored_metadata_keys_win_over_the_row_values_added_to_it():
    trace = _trace(_row(metadata={"status": "as-stored", "created_at": "yesterday"}))
    assert trace.session_metadata["status"] == "as-stored"
    assert trace.session_metadata["created_at"] == "yesterday"
    assert trace.status == "succeeded"


def test_json_stored_as_text_is_decoded_without_warnings():
    row = _row(metadata=json.dumps({"learning_key": "k"}), reward=json.dumps(REWARD))
    trace = _trace(row)
    assert trace.learning_key == "k"
    assert trace.session_reward == REWARD
    assert trace.load_warnings == []


def test_session_reward_falls_back_to_metadata_when_the_column_is_empty():
    trace = _trace(_row(reward=None, metadata={"session_reward": {"score": 0.4}}))
    assert trace.session_reward == {"score": 0.4}
    assert trace.session_metadata["session_reward"] == {"score": 0.4}


def test_a_metadata_reward_that_differs_from_the_column_is_kept():
    trace = _trace(_row(metadata={"session_reward": {"score": 0.1}}))
    assert trace.session_reward == REWARD
    assert trace.session_metadata["session_reward"] == {"score": 0.1}


@pytest.mark.parametrize(
    ("stored", "plan", "warned"),
    [
        pytest.param(None, None, False, id="null"),
        pytest.param('{"steps": []}', {"steps": []}, False, id="text"),
        pytest.param([{"id": 1}], {"steps": [{"id": 1}]}, False, id="bare-list"),
        pytest.param(7, {"legacy_value": 7}, True, id="scalar"),
    ],
)
def test_plan_shapes(stored, plan, warned):
    trace = _trace(_row(plan=stored))
    assert trace.plan == plan
    assert bool(trace.load_warnings) is warned


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param("{broken", id="invalid-json-text"),
        pytest.param(["a", "b"], id="array"),
        pytest.param("plain words", id="plain-text"),
    ],
)
def test_metadata_that_is_not_an_object_is_kept_and_noted(stored):
    trace = _trace(_row(metadata=stored))
    assert trace.session_metadata["legacy_value"] == stored
    assert trace.load_warnings == [
        f"session metadata is not a JSON object ({type(stored).__name__}); kept under legacy_value"
    ]


def test_nested_events_are_flattened():
    nested = {
        "payload": {
            "event_type": "TOOL_CALL",
            "name": "web_search",
            "event_timestamp": 0,
            "metadata": {"actor": "student", "step_id": 2},
            "data": {"q": "x"},
        }
    }
    (event,) = _trace(events=[nested]).trajectory_events
    assert event["event_type"] == "TOOL_CALL"
    assert (event["actor"], event["step_id"]) == ("student", 2)
    assert event["payload"] == nested["payload"]
    assert event["timestamp"] == "1970-01-01T00:00:00+00:00"


def test_an_event_that_is_not_an_object_is_kept_under_payload():
    trace = _trace(events=[_flat(1), "just text"])
    assert trace.trajectory_events[1]["event_type"] == "unknown"
    assert trace.trajectory_events[1]["payload"] == "just text"
    assert trace.load_warnings == ["1 trajectory event(s) are not JSON objects; kept under payload"]


def test_an_event_that_is_not_an_object_keeps_its_row_id_and_time():
    trace = _trace(events=[_flat(1), [7, "2026-01-01T00:00:00+00:00", [1, 2]]])
    event = trace.trajectory_events[1]
    assert (event["payload"], event["id"], event["created_at"]) == (
        [1, 2],
        7,
        "2026-01-01T00:00:00+00:00",
    )


def test_events_keep_the_order_they_were_given():
    trace = _trace(events=[_flat(n) for n in range(5)])
    assert [e["name"] for e in trace.trajectory_events] == ["e0", "e1", "e2", "e3", "e4"]
    assert (trace.trajectory_event_count, trace.trajectory_events_truncated) == (5, False)


def test_a_cut_event_list_reports_the_total():
    trace = _trace(events=[_flat(0), _flat(1)], total=9, trajectory_event_limit=2)
    assert len(trace.trajectory_events) == 2
    assert (trace.trajectory_event_count, trace.trajectory_events_truncated) == (9, True)


def test_events_kept_in_metadata_by_very_old_writers_are_read():
    trace = _trace(_row(metadata={"trajectory_events": [_flat(0), _flat(1)]}))
    assert [e["name"] for e in trace.trajectory_events] == ["e0", "e1"]
    assert trace.session_metadata["trajectory_events"] == [_flat(0), _flat(1)]


def test_the_event_limit_applies_to_events_kept_in_metadata():
    row = _row(metadata={"trajectory_events": [_flat(n) for n in range(4)]})
    trace = _trace(row, total=0, trajectory_event_limit=1)
    assert [e["name"] for e in trace.trajectory_events] == ["e0"]
    assert (trace.trajectory_event_count, trace.trajectory_events_truncated) == (4, True)


def test_without_events_nothing_about_them_is_reported():
    trace = assemble_trace(
        _row(), [], {}, {}, None, None, LoadOptions(include_trajectory_events=False)
    )
    assert (trace.trajectory_events, trace.trajectory_event_count) == ([], 0)
    assert trace.trajectory_events_truncated is False


def test_without_learning_data_the_learning_fields_are_empty():
    trace = _trace(include_learning_data=False)
    assert (trace.student_learning, trace.teacher_learning, trace.learning_history) == (
        None,
        None,
        None,
    )


def test_step_fields_come_from_metadata_evaluation_and_plan():
    (step,) = _trace(steps=[_step()]).steps
    assert (step.description, step.tool) == ("Collect", "web_search")
    assert (step.runtime, step.artifacts) == (12, {"a": 1})
    assert step.metadata == _step()["metadata"]
    assert step.reward.score == 0.7
    assert step.validation == {"valid": True}


def test_a_step_evaluation_that_is_the_reward_itself_is_read_as_the_reward():
    (step,) = _trace(steps=[_step(evaluation={"score": 0.3})]).steps
    assert step.reward.score == 0.3


def test_attempt_rows_are_merged_with_the_runtime_history():
    history = [{"attempt": 1, "output": "first"}]
    attempts = {
        (1, 1): [
            {"attempt": 1, "evaluation": '{"valid": false}'},
            {"attempt": 2, "evaluation": None},
        ]
    }
    steps = [_step(attempts=2, metadata={"attempt_history": history})]
    (step,) = _trace(steps=steps, attempts=attempts).steps
    assert step.attempts == 2
    assert step.attempt_history == [
        {"attempt": 1, "output": "first", "evaluation": {"valid": False}},
        {"attempt": 2, "evaluation": None},
    ]


def test_undecodable_step_metadata_is_noted_and_the_step_kept():
    (step,) = (trace := _trace(steps=[_step(metadata="{oops")])).steps
    assert step.metadata == {"legacy_value": "{oops"}
    assert trace.load_warnings == [
        "step 1 metadata is not a JSON object (str); kept under legacy_value"
    ]


def test_a_page_keeps_its_order_and_routes_children_by_session():
    rows = PageRows(
        sessions=[_row(id=2), _row(id=1)],
        steps={1: [_step(session_id=1)]},
        attempts={},
        guidance={(1, 1): ["Cite the source."]},
        events={2: [_flat(0)]},
        event_totals={},
    )
    first, second = assemble_page(rows, LoadOptions())
    assert (first.session_id, second.session_id) == (2, 1)
    assert (len(first.steps), len(first.trajectory_events)) == (0, 1)
    assert second.steps[0].guidance == ["Cite the source."]
