"""atlas-sdk's converters: its Database's dicts give the trace our readers give."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from atlas.runtime.traces import AtlasSessionTrace
from atlas.storage.synthetic import seed_sessions
from atlas.training_data import (
    convert_session_dict_to_trace,
    convert_step_dict_to_trace,
    get_session_by_id,
)

# The queries of atlas-sdk 0.1.16's Database.fetch_session, fetch_session_steps
# and fetch_trajectory_events: the shapes its converters are handed.
_SESSION = (
    "SELECT id, task, status, review_status, review_notes, metadata, final_answer, reward, "
    "reward_stats, reward_audit, student_learning, teacher_learning, created_at, completed_at, "
    "(SELECT plan FROM plans WHERE session_id = s.id) AS plan FROM sessions s WHERE id = %s"
)
_STEPS = "SELECT step_id, trace, output, evaluation, attempts, metadata FROM step_results "
_ATTEMPTS = "SELECT step_id, attempt, evaluation FROM step_attempts "
_GUIDANCE = "SELECT step_id, note FROM guidance_notes "
_EVENTS = (
    "SELECT id, event, created_at FROM trajectory_events WHERE session_id = %s ORDER BY id DESC"
)


def sdk_rows(url: str, session_id: int) -> tuple[dict[str, Any], list[dict[str, Any]], list[Any]]:
    """(session_dict, steps, trajectory_events) as atlas-sdk's Database returns them."""
    where = "WHERE session_id = %s ORDER BY step_id"
    with psycopg.connect(url, row_factory=dict_row) as conn:
        session = conn.execute(_SESSION, [session_id]).fetchone()
        steps = conn.execute(_STEPS + where, [session_id]).fetchall()
        attempts = conn.execute(_ATTEMPTS + where + ", attempt", [session_id]).fetchall()
        notes = conn.execute(_GUIDANCE + where + ", sequence", [session_id]).fetchall()
        events = conn.execute(_EVENTS, [session_id]).fetchall()
    assert session is not None
    for step in steps:
        step["attempt_details"] = [
            {"attempt": a["attempt"], "evaluation": a["evaluation"]}
            for a in attempts
            if a["step_id"] == step["step_id"]
        ]
        step["guidance_notes"] = [n["note"] for n in notes if n["step_id"] == step["step_id"]]
    return session, steps, events


def _comparable(trace: AtlasSessionTrace) -> dict[str, Any]:
    """to_dict() with event times parsed: PostgreSQL and Python print them differently."""
    record = trace.to_dict()
    for event in record["trajectory_events"]:
        for key in ("created_at", "row_created_at"):
            if isinstance(event.get(key), str):
                event[key] = datetime.fromisoformat(event[key])
    return record


@pytest.fixture(scope="module", params=["arc-atlas", "atlas-sdk"])
def shaped_url(request: pytest.FixtureRequest, scratch_database: Any) -> str:
    url: str = scratch_database()
    with psycopg.connect(url, autocommit=True) as conn:
        seed_sessions(conn, 6, seed=8, shape=request.param)
    return url


@pytest.mark.parametrize("session_id", [pytest.param(i, id=f"session-{i}") for i in (1, 4, 6)])
def test_converted_session_equals_the_trace_read_by_id(shaped_url, session_id):
    session, steps, events = sdk_rows(shaped_url, session_id)
    converted = convert_session_dict_to_trace(session, steps, events)
    assert _comparable(converted) == _comparable(get_session_by_id(shaped_url, session_id))


def test_events_come_out_oldest_first_with_their_row_ids(shaped_url):
    session, steps, events = sdk_rows(shaped_url, 2)
    trace = convert_session_dict_to_trace(session, steps, events)
    ids = [e.get("row_id", e.get("id")) for e in trace.trajectory_events]
    assert ids == sorted(row["id"] for row in events) and ids


def test_without_learning_data_the_learning_fields_are_empty(shaped_url):
    session, steps, events = sdk_rows(shaped_url, 3)
    trace = convert_session_dict_to_trace(session, steps, events, include_learning_data=False)
    assert (trace.student_learning, trace.teacher_learning, trace.learning_history) == (
        None,
        None,
        None,
    )


def test_a_step_converts_alone_with_its_plan_entry(shaped_url):
    session, steps, _ = sdk_rows(shaped_url, 5)
    whole = convert_session_dict_to_trace(session, steps, [])
    step = convert_step_dict_to_trace(steps[0], session["plan"])
    assert step == whole.steps[0]


# --- pure: no database ------------------------------------------------------

PLAN = {"steps": [{"id": 1, "description": "Read the file", "depends_on": []},
                  {"id": 2, "description": "Fix it", "depends_on": [1]}]}  # fmt: skip


def test_json_text_is_decoded_as_atlas_sdk_does():
    step = convert_step_dict_to_trace(
        {"step_id": 2, "output": "done", "evaluation": '{"reward": {"score": 0.5}}',
         "metadata": '{"runtime": {"timings_ms": {"total": 3}}}'},
        '{"steps": [{"id": 2, "description": "Fix it", "depends_on": [1]}]}',  # type: ignore[arg-type]
    )  # fmt: skip
    assert (step.description, step.depends_on, step.reward.score) == ("Fix it", [1], 0.5)


@pytest.mark.parametrize("bad", [pytest.param(None, id="missing"), pytest.param("1", id="text")])
def test_a_step_without_an_integer_id_is_a_value_error(bad):
    with pytest.raises(ValueError, match="integer step_id"):
        convert_step_dict_to_trace({"step_id": bad}, PLAN)


def test_attempts_and_guidance_of_a_step_dict_are_kept():
    step_dict = {
        "step_id": 1,
        "attempts": 2,
        "attempt_details": [{"attempt": 1, "evaluation": {"reward": {"score": 0.1}}},
                            {"attempt": 2, "evaluation": {"reward": {"score": 0.9}}}],
        "guidance_notes": ["check the header"],
    }  # fmt: skip
    step = convert_step_dict_to_trace(step_dict, PLAN)
    assert [h["attempt"] for h in step.attempt_history] == [1, 2]
    assert (step.attempts, step.guidance) == (2, ["check the header"])


def test_a_session_dict_without_rows_in_the_tables_converts():
    session = {"id": 9, "task": "t", "plan": PLAN, "metadata": {"learning_key": "k"}}
    events = [{"id": 11, "event": {"event_type": "b"}, "created_at": None},
              {"id": 10, "event": {"event_type": "a"}, "created_at": None}]  # fmt: skip
    trace = convert_session_dict_to_trace(session, [{"step_id": 1, "output": "x"}], events)
    assert [e["event_type"] for e in trace.trajectory_events] == ["a", "b"]
    assert (trace.learning_key, trace.steps[0].description) == ("k", "Read the file")
