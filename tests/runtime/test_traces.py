"""The trace dataclasses: exact round trips through dicts and JSON, and their properties."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest

from atlas.runtime import (
    AtlasJudgeBreakdown,
    AtlasJudgeSample,
    AtlasRewardBreakdown,
    AtlasSessionTrace,
    AtlasStepTrace,
)
from atlas.storage.synthetic import seed_sessions
from atlas.training_data import get_training_sessions

# The documented session metadata fields (seed 002) and where a trace keeps them.
TOP_LEVEL_FIELDS = (
    "session_reward",
    "trajectory_events",
    "student_learning",
    "teacher_learning",
    "learning_history",
    "adaptive_summary",
    "learning_key",
    "teacher_notes",
    "reward_summary",
    "drift",
    "drift_alert",
    "triage_dossier",
    "reward_audit",
)

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)

JUDGE = AtlasJudgeBreakdown(
    identifier="process",
    score=0.91,
    rationale="Cites sources.",
    principles=[{"name": "accuracy", "weight": 0.6}],
    samples=[AtlasJudgeSample(0.9, "ok", {"temperature": 0.2})],
    extra={"model": "small"},
)
STEP = AtlasStepTrace(
    step_id=1,
    description="Collect release notes",
    trace="HUMAN: ...",
    output="notes",
    reward=AtlasRewardBreakdown(0.92, [JUDGE], "good", {"uncertainty": 0.05}),
    tool="web_search",
    tool_params={"query": "Atlas SDK release notes"},
    context={"prior_results": {"0": "x"}},
    validation={"valid": True, "rationale": "Complete"},
    attempts=2,
    guidance=["Cite the release date."],
    metadata={"status": "succeeded"},
    artifacts={"sources": ["https://example.org"]},
    deliverable={"notes": ["https://example.org"]},
    runtime=1250.0,
    depends_on=[],
    attempt_history=[{"attempt": 1, "evaluation": {"valid": False}}],
)
FULL = AtlasSessionTrace(
    task="Summarize the latest Atlas SDK updates",
    final_answer="...",
    plan={"steps": [{"id": 1, "description": "Collect release notes"}]},
    steps=[STEP],
    session_metadata={
        "batch": "aime-2025",
        "learning_key": "release-notes",
        "teacher_notes": ["Be brief."],
        "reward_summary": {"score": 0.88},
        "drift": {"z_score": 0.4},
        "drift_alert": False,
        "triage_dossier": {"summary": "Capture highlights."},
        "personas_used": [{"persona": "planner"}],
        "persona_updates": {"new_candidates": []},
    },
    session_reward={"score": 0.88, "judges": [{"identifier": "process", "score": 0.9}]},
    trajectory_events=[{"event_type": "tool_call", "actor": "student", "payload": {}}],
    student_learning="s",
    teacher_learning="t",
    learning_history={"count": 1},
    adaptive_summary={"adaptive_mode": "coach"},
    session_id=42,
    status="succeeded",
    review_status="approved",
    review_notes="fine",
    created_at=T0,
    completed_at=T0 + timedelta(minutes=3),
    reward_stats={"score": 0.88},
    reward_audit=[{"judge": "process", "stage": "small"}],
    trajectory_event_count=10,
    trajectory_events_truncated=True,
    load_warnings=["plan is not a JSON object; kept under legacy_value"],
)


def _via_json(trace: AtlasSessionTrace) -> AtlasSessionTrace:
    return AtlasSessionTrace.from_dict(json.loads(json.dumps(trace.to_dict())))


@pytest.mark.parametrize(
    "trace",
    [
        pytest.param(FULL, id="full"),
        pytest.param(AtlasSessionTrace(task="minimal"), id="minimal"),
        pytest.param(
            AtlasSessionTrace(task="t", steps=[AtlasStepTrace(step_id=3)]), id="bare-step"
        ),
    ],
)
def test_hand_built_traces_round_trip_exactly(trace):
    assert AtlasSessionTrace.from_dict(trace.to_dict()) == trace
    assert _via_json(trace) == trace


def test_timestamps_are_iso_text_in_the_dict():
    record = FULL.to_dict()
    assert record["created_at"] == "2026-01-02T03:04:05.678901+00:00"
    assert AtlasSessionTrace.from_dict(record).created_at == T0


def test_documented_metadata_fields_are_copied_to_the_top_level():
    record = FULL.to_dict()
    for name in (*TOP_LEVEL_FIELDS, "personas_used", "persona_updates"):
        assert name in record, name
    assert record["session_metadata"] == FULL.session_metadata


def test_earlier_records_with_fields_only_at_the_top_read_into_metadata():
    record = FULL.to_dict()
    record["session_metadata"] = {"batch": "aime-2025"}
    trace = AtlasSessionTrace.from_dict(record)
    assert trace.learning_key == FULL.learning_key
    assert trace.triage_dossier == FULL.triage_dossier


def test_from_dict_puts_the_lifted_fields_back_into_metadata():
    trace = AtlasSessionTrace.from_dict(FULL.to_dict())
    assert trace.session_metadata == FULL.session_metadata


def test_a_metadata_field_holding_none_round_trips():
    trace = AtlasSessionTrace(task="t", session_metadata={"drift_alert": None})
    assert _via_json(trace) == trace


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("learning_key", "release-notes", id="learning_key"),
        pytest.param("teacher_notes", ["Be brief."], id="teacher_notes"),
        pytest.param("reward_summary", {"score": 0.88}, id="reward_summary"),
        pytest.param("drift", {"z_score": 0.4}, id="drift"),
        pytest.param("drift_alert", False, id="drift_alert"),
        pytest.param("triage_dossier", {"summary": "Capture highlights."}, id="triage_dossier"),
        pytest.param("personas_used", [{"persona": "planner"}], id="personas_used"),
        pytest.param("reward_audit", [{"judge": "process", "stage": "small"}], id="reward_audit"),
    ],
)
def test_documented_fields_read_as_attributes(name, value):
    assert getattr(FULL, name) == value


def test_metadata_properties_are_none_when_absent():
    bare = AtlasSessionTrace(task="t")
    assert (bare.learning_key, bare.drift_alert, bare.triage_dossier, bare.reward_audit) == (
        None,
        None,
        None,
        None,
    )


def test_a_learning_key_that_is_not_text_is_none():
    assert AtlasSessionTrace(task="t", session_metadata={"learning_key": 7}).learning_key is None


def test_step_prior_results():
    assert STEP.prior_results == {"0": "x"}
    assert AtlasStepTrace(step_id=1, context={"prior_results": "junk"}).prior_results == {}


# --- reward breakdowns ----------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "score"),
    [
        pytest.param(None, None, id="none"),
        pytest.param(0.5, 0.5, id="bare-number"),
        pytest.param({"score": "0.7"}, 0.7, id="numeric-text"),
        pytest.param({"score": True}, None, id="bool-is-not-a-score"),
        pytest.param({"score": "n/a"}, None, id="not-a-number"),
    ],
)
def test_reward_scores(stored, score):
    assert AtlasRewardBreakdown.from_dict(stored).score == score


def test_reward_keeps_unmodelled_keys_and_gathers_samples():
    reward = AtlasRewardBreakdown.from_dict(
        {"score": 0.8, "uncertainty": 0.1, "judges": [JUDGE.to_dict(), JUDGE.to_dict()]}
    )
    assert reward.extra == {"uncertainty": 0.1}
    assert reward.samples == JUDGE.samples * 2
    assert reward.to_dict()["uncertainty"] == 0.1


def test_a_judge_named_by_name_reads_as_its_identifier():
    judge = AtlasJudgeBreakdown.from_dict({"name": "helpfulness", "score": 1})
    assert (judge.identifier, judge.score, judge.extra) == ("helpfulness", 1.0, {})


@pytest.mark.parametrize(
    "judge",
    [
        pytest.param(JUDGE, id="full"),
        pytest.param(AtlasJudgeBreakdown(), id="empty"),
        pytest.param(AtlasJudgeBreakdown(extra={"name": "kept apart"}), id="name-only-in-extra"),
        pytest.param(
            AtlasJudgeBreakdown(identifier="a", extra={"name": "b"}), id="identifier-and-name"
        ),
    ],
)
def test_judges_round_trip_exactly(judge):
    assert AtlasJudgeBreakdown.from_dict(json.loads(json.dumps(judge.to_dict()))) == judge


def test_judge_dict_leaves_out_keys_without_a_value():
    assert AtlasJudgeBreakdown(identifier="p", score=0.5).to_dict() == {
        "identifier": "p",
        "score": 0.5,
    }


# --- traces read from the database ----------------------------------------


@pytest.fixture
def database_traces(db_url: str) -> list[AtlasSessionTrace]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 20, seed=31, legacy_fraction=0.3)
    traces = get_training_sessions(db_url, include_all_review_statuses=True)
    traces += get_training_sessions(
        db_url, include_all_review_statuses=True, trajectory_event_limit=3, limit=5
    )
    return traces


def test_traces_from_the_database_round_trip_exactly(database_traces):
    for trace in database_traces:
        assert AtlasSessionTrace.from_dict(trace.to_dict()) == trace
        assert _via_json(trace) == trace


def test_traces_from_the_database_carry_the_documented_fields_at_the_top(database_traces):
    for trace in database_traces:
        record = json.loads(json.dumps(trace.to_dict()))
        assert set(TOP_LEVEL_FIELDS) <= record.keys()
        for name in ("learning_key", "triage_dossier", "drift", "reward_audit"):
            assert record["session_metadata"][name] == record[name], name
        assert record["session_id"] == trace.session_id
        assert record["review_status"] in ("pending", "approved", "quarantined")


def test_traces_from_the_database_expose_metadata_as_properties(database_traces):
    for trace in database_traces:
        assert trace.learning_key and isinstance(trace.drift_alert, bool)
        assert trace.triage_dossier["tags"][0] == "tenant:demo"
        assert trace.reward_summary["score"] == trace.session_reward["score"]
        assert isinstance(trace.teacher_notes, list) and "z_score" in trace.drift


# --- the record of seed 000 -------------------------------------------------

SEED_RECORD: dict[str, Any] = {
    "task": "Summarize the latest Atlas SDK updates",
    "final_answer": "...",
    "adaptive_summary": {"adaptive_mode": "coach", "confidence": 0.58},
    "triage_dossier": {"task": "Summarize the latest Atlas SDK updates", "tags": ["tenant:demo"]},
    "plan": {"steps": [{"id": 1, "description": "Collect release notes"}]},
    "steps": [
        {
            "step_id": 1,
            "description": "Collect release notes",
            "trace": "HUMAN: ...",
            "output": "...",
            "reward": {
                "score": 0.92,
                "judges": [{"identifier": "process", "score": 0.91, "rationale": "..."}],
            },
            "guidance": ["Cite the release date."],
            "validation": {"valid": True, "rationale": "Complete"},
            "tool": "web_search",
            "tool_params": {"query": "Atlas SDK release notes"},
            "artifacts": {"sources": ["https://..."]},
            "deliverable": {"notes": ["https://..."]},
        }
    ],
    "session_reward": {"score": 0.88, "uncertainty": 0.07, "judges": []},
    "reward_summary": {"score": 0.88},
    "review_status": "approved",
    "personas_used": [{"persona": "planner", "instruction": "Focus on customer tone"}],
    "persona_updates": {"new_candidates": [{"persona": "planner"}]},
    "session_metadata": {"batch": "aime-2025"},
}


def test_the_published_record_reads_into_a_trace():
    trace = AtlasSessionTrace.from_dict(SEED_RECORD)
    assert trace.reward_summary == {"score": 0.88}
    assert trace.personas_used[0]["persona"] == "planner"
    assert trace.steps[0].reward.judges[0].identifier == "process"
    assert trace.session_metadata["batch"] == "aime-2025"


def test_the_published_record_is_written_back_with_the_same_values():
    record = AtlasSessionTrace.from_dict(SEED_RECORD).to_dict()
    for key, value in SEED_RECORD.items():
        if key not in ("steps", "session_metadata"):
            assert record[key] == value, key
    # The published fields are also in session_metadata now, where ATLAS core reads them.
    assert record["session_metadata"]["reward_summary"] == SEED_RECORD["reward_summary"]
    assert record["session_metadata"]["batch"] == "aime-2025"
    written_step = record["steps"][0]
    assert {k: written_step[k] for k in SEED_RECORD["steps"][0]} == SEED_RECORD["steps"][0]
