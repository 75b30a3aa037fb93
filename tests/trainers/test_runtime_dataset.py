"""trainers.runtime_dataset: loading exports (new and old), and RL / flat records."""

from __future__ import annotations

import gzip
import json
import lzma
from pathlib import Path

import psycopg
import pytest
import zstandard

from atlas.storage.synthetic import seed_sessions
from atlas.training_data import get_training_sessions
from atlas.training_data.export import export_jsonl
from trainers.runtime_dataset import (
    LoadReport,
    TraceFileError,
    build_executor_prompt,
    flatten_traces_for_training,
    iter_reward_scores,
    iter_rl_records,
    iter_runtime_traces,
    load_runtime_traces,
    sessions_to_rl_records,
)


@pytest.fixture(scope="module")
def seeded(server_url, url_for) -> str:
    """A module-wide database with 30 sessions (some legacy-shaped), all approved."""
    import uuid

    from psycopg import sql

    from atlas.storage.migrate import apply_migrations

    name = f"atlas_tr_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = url_for(name)
    with psycopg.connect(url, autocommit=True) as conn:
        apply_migrations(conn)
        seed_sessions(conn, 30, seed=21, legacy_fraction=0.2)
        conn.execute("UPDATE sessions SET review_status = 'approved'")
    yield url
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def exported(seeded, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("export") / "traces.jsonl"
    export_jsonl(str(path), seeded)
    return path


def test_seed_000_database_variant_runs_as_written(seeded):
    sessions = get_training_sessions(
        db_url=seeded, min_reward=0.8, status_filters=["succeeded"], limit=10000
    )
    records = sessions_to_rl_records(sessions)
    assert records
    assert len(records) == sum(len(s.steps) for s in sessions)


def test_seed_000_jsonl_variant_runs_as_written(seeded, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    export_jsonl("traces/my-session.jsonl", seeded)
    sessions = load_runtime_traces("traces/my-session.jsonl")
    records = sessions_to_rl_records(sessions)
    assert len(sessions) == 30
    assert len(records) == sum(len(s.steps) for s in sessions)


def test_database_and_file_give_equal_traces_and_records(seeded, exported):
    from_db = get_training_sessions(seeded)
    from_file = load_runtime_traces(exported)
    assert from_file == from_db
    assert sessions_to_rl_records(from_file) == sessions_to_rl_records(from_db)
    assert flatten_traces_for_training(from_file) == flatten_traces_for_training(from_db)


@pytest.mark.parametrize(
    ("suffix", "pack"),
    [
        pytest.param(".gz", gzip.compress, id="gzip"),
        pytest.param(".xz", lzma.compress, id="xz"),
        pytest.param(".zst", lambda b: zstandard.ZstdCompressor().compress(b), id="zstd"),
    ],
)
def test_compressed_files_load_the_same(exported, tmp_path, suffix, pack):
    packed = tmp_path / f"traces.jsonl{suffix}"
    packed.write_bytes(pack(exported.read_bytes()))
    assert load_runtime_traces(packed) == load_runtime_traces(exported)


def test_iteration_is_lazy(exported, tmp_path):
    path = tmp_path / "tail-broken.jsonl"
    path.write_bytes(exported.read_bytes() + b"{broken\n")
    stream = iter_runtime_traces(path)
    first = next(stream)
    assert first.session_id is not None  # read before the broken last line is reached
    with pytest.raises(TraceFileError, match=rf"{path}:31: not a session record"):
        list(stream)


def test_skip_mode_counts_bad_lines(exported, tmp_path):
    path = tmp_path / "mixed.jsonl"
    lines = exported.read_bytes().splitlines()
    path.write_bytes(b"\n".join([lines[0], b"[1, 2]", b"not json", *lines[1:3]]) + b"\n")
    report = LoadReport()
    sessions = load_runtime_traces(path, on_error="skip", report=report)
    assert len(sessions) == 3
    assert (report.skipped, report.sessions, report.lines) == (2, 3, 5)
    assert report.errors[0].startswith(f"{path}:2: not a session record")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(TraceFileError, match="does not exist"):
        load_runtime_traces(tmp_path / "nope.jsonl")


OLD_RECORD = {
    "task": "Summarize the latest Atlas SDK updates",
    "final_answer": "...",
    "plan": {"steps": [{"id": 1, "description": "Collect release notes"}]},
    "steps": [
        {
            "step_id": 1,
            "description": "Collect release notes",
            "trace": "HUMAN: ...",
            "output": "notes",
            "evaluation": {"reward": {"score": 0.9}, "validation": {"valid": True}},
            "context": '{"prior_results": {"0": "x"}}',
            "tool_params": '{"query": "Atlas SDK release notes"}',
            "tool": "web_search",
            "attempts": [{"attempt": 1, "evaluation": {"valid": False}}, {"attempt": 2}],
            "guidance": "Cite the release date.",
        },
        {"id": 2, "output": "draft", "reward": 0.7},
    ],
    "reward": {"score": 0.88, "uncertainty": 0.07},
    "session_metadata": {
        "batch": "aime-2025",
        "status": "succeeded",
        "created_at": "2025-10-01T12:00:00Z",
        "trajectory_events": [
            {"payload": {"event_type": "TOOL_START", "metadata": {"actor": "student"}}}
        ],
        "ground_truth": "42",
    },
}


def _load_one(tmp_path: Path, record: dict) -> object:
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps(record) + "\n")
    (session,) = load_runtime_traces(path)
    return session


def test_older_exporter_records_are_understood(tmp_path):
    session = _load_one(tmp_path, OLD_RECORD)
    first, second = session.steps
    assert (first.reward.score, first.validation, first.tool_params) == (
        0.9,
        {"valid": True},
        {"query": "Atlas SDK release notes"},
    )
    assert first.context == {"prior_results": {"0": "x"}}
    assert (first.attempts, first.guidance) == (2, ["Cite the release date."])
    assert (second.step_id, second.reward.score) == (2, 0.7)
    assert session.session_reward == {"score": 0.88, "uncertainty": 0.07}
    assert session.status == "succeeded" and session.created_at is not None
    assert session.trajectory_events[0]["event_type"] == "TOOL_START"
    assert session.trajectory_events[0]["actor"] == "student"
    assert session.session_metadata["batch"] == "aime-2025"


def test_a_record_with_only_a_task_loads(tmp_path):
    session = _load_one(tmp_path, {"task": "t"})
    assert (session.task, session.steps, session.session_reward) == ("t", [], None)


def test_rl_records_carry_what_training_needs(tmp_path):
    session = _load_one(tmp_path, OLD_RECORD)
    record = sessions_to_rl_records([session])[0]
    assert record["prompt"] == build_executor_prompt(session.steps[0], session)
    assert (record["reward_score"], record["session_reward_score"]) == (0.9, 0.88)
    assert record["guidance_history"] == ["Cite the release date."]
    assert record["validation"] == {"valid": True}
    assert record["ground_truth"] == "42"
    assert len(record["attempt_history"]) == 2
    for key in ("trajectory_events", "learning_history", "runtime", "artifacts", "step_context"):
        assert key in record


def test_records_without_ground_truth_have_no_such_key(exported):
    records = sessions_to_rl_records(load_runtime_traces(exported))
    assert all("ground_truth" not in r for r in records)


def test_prompt_names_task_step_tool_and_guidance(tmp_path):
    session = _load_one(tmp_path, OLD_RECORD)
    prompt = build_executor_prompt(session.steps[0], session)
    for text in (session.task, "Collect release notes", "web_search", "Cite the release date."):
        assert text in prompt


def test_rl_records_stream_from_a_generator(exported):
    stream = iter_rl_records(iter_runtime_traces(exported))
    first = next(stream)
    assert first["prompt"]
    assert sum(1 for _ in stream) + 1 == len(sessions_to_rl_records(load_runtime_traces(exported)))


def test_reward_scores_in_step_order(tmp_path):
    session = _load_one(tmp_path, OLD_RECORD)
    assert list(iter_reward_scores([session])) == [0.9, 0.7]


# A record as atlas-sdk 0.1.16's exporter writes it (shape only; values are ours).
SDK_RECORD = {
    "task": "t",
    "final_answer": "a",
    "plan": {"steps": [{"id": 1, "description": "d", "depends_on": []}]},
    "steps": [
        {
            "step_id": 1,
            "description": "d",
            "trace": "tr",
            "output": "o",
            "reward": {
                "score": 0.0,
                "judges": [],
                "rationale": None,
                "raw": {"score": "high", "note": "kept"},
            },
            "context": {"prior_results": {}, "prior_results_text": {}},
            "runtime": {"reward_skipped": False, "timings_ms": {"execute": 3}},
            "attempts": 1,
            "metadata": {"runtime": {"reward_skipped": False, "timings_ms": {"execute": 3}}},
        }
    ],
    "session_metadata": {
        "learning_key": "k",
        "session_id": 7,
        "status": "succeeded",
        "created_at": "2026-01-01T00:00:00+00:00",
        "trajectory_events": [
            {
                "id": 11,
                "event": {
                    "parent_id": "root",
                    "payload": {
                        "event_type": "TOOL_START",
                        "event_timestamp": 0,
                        "name": "search",
                        "metadata": {"actor": "student", "step_id": 1},
                    },
                },
                "created_at": "2026-01-01T00:00:01+00:00",
            }
        ],
    },
    "learning_key": "k",
}
SDK_RECORD["trajectory_events"] = SDK_RECORD["session_metadata"]["trajectory_events"]


def test_an_atlas_sdk_record_reads_with_every_field(tmp_path):
    path = tmp_path / "sdk.jsonl"
    path.write_text(json.dumps(SDK_RECORD) + "\n")
    (trace,) = load_runtime_traces(path)
    (event,) = trace.trajectory_events
    assert (event["event_type"], event["actor"], event["name"], event["step_id"]) == (
        "TOOL_START",
        "student",
        "search",
        1,
    )
    assert (event["id"], event["created_at"]) == (11, "2026-01-01T00:00:01+00:00")
    assert event["timestamp"] == "1970-01-01T00:00:00+00:00"
    assert "trajectory_events" not in trace.session_metadata  # written once
    assert (trace.session_id, trace.status, trace.learning_key) == (7, "succeeded", "k")
    step = trace.steps[0]
    assert step.runtime == {"reward_skipped": False, "timings_ms": {"execute": 3}}
    assert (step.reward.score, step.reward.extra) == (None, {"score_raw": "high", "note": "kept"})
