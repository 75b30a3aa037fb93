"""atlas.core.run end to end with the demo agents, against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from atlas import core
from atlas.config import config_from_mapping
from atlas.runtime.demo import DEMO_CONFIG, DemoCompletion, DemoJudge, DemoStudent, DemoTeacher
from atlas.runtime.orchestrator import JudgeSpec, RuntimeParts
from atlas.training_data import get_session_by_id, get_training_sessions
from atlas.training_data.export import export_jsonl

TASK = "Triage the overnight checkout latency incident and propose next steps."


def _config(**changes: Any) -> Any:
    data = json.loads(json.dumps(DEMO_CONFIG))
    for key, value in changes.items():
        data[key] = value
    return config_from_mapping(data)


def _parts(student: Any = None, teacher: Any = None, judges: Any = None) -> RuntimeParts:
    return RuntimeParts(
        student or DemoStudent(),
        teacher if teacher is not None else DemoTeacher(),
        judges
        or (JudgeSpec("process", DemoJudge("process")),
            JudgeSpec("helpfulness", DemoJudge("helpfulness", 0.05))),
    )  # fmt: skip


def _counts(url: str, session_id: int) -> dict[str, int]:
    tables = ("plans", "step_results", "step_attempts", "guidance_notes", "trajectory_events")
    with psycopg.connect(url) as conn:
        return {
            t: conn.execute(
                f"SELECT count(*) FROM {t} WHERE session_id = %s", (session_id,)
            ).fetchone()[0]  # type: ignore[index]
            for t in tables
        }


def test_a_run_writes_every_table(db_url):
    result = core.run(TASK, config=_config(), database_url=db_url)
    assert result.status == "succeeded", result.error
    counts = _counts(db_url, result.session_id)
    assert counts["plans"] == 1 and counts["step_results"] >= 2
    assert counts["step_attempts"] == counts["step_results"] + 1  # step 2 is retried once
    assert counts["guidance_notes"] == 1
    assert counts["trajectory_events"] > 10
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT status, final_answer IS NOT NULL, reward IS NOT NULL, reward_stats ? 'score', "
            "jsonb_array_length(reward_audit) > 0, student_learning IS NOT NULL, "
            "completed_at IS NOT NULL FROM sessions WHERE id = %s",
            (result.session_id,),
        ).fetchone()
        registry = conn.execute("SELECT count(*) FROM learning_registry").fetchone()
    assert row == ("succeeded", True, True, True, True, True, True)
    assert registry == (1,)


def test_every_field_of_the_published_record_is_populated(db_url, tmp_path):
    result = core.run(TASK, config=_config(), database_url=db_url)
    trace = get_session_by_id(result.session_id, db_url)
    for name in ("learning_key", "teacher_notes", "reward_summary", "drift", "triage_dossier"):
        assert getattr(trace, name), name
    assert trace.drift_alert is False
    assert trace.session_reward and trace.session_reward["judges"]
    assert trace.adaptive_summary and trace.adaptive_summary["probe"]["evidence"]
    assert trace.learning_history is not None and trace.reward_audit
    assert trace.trajectory_events and all("event_type" in e for e in trace.trajectory_events)
    step = trace.steps[1]
    assert step.reward.judges and step.validation and step.runtime is not None
    assert step.depends_on == [1] and step.guidance and step.attempt_history
    assert trace.steps[0].tool == "web_search" and trace.steps[0].tool_params
    out = tmp_path / "run.jsonl"
    export_jsonl(str(out), db_url, include_all_review_statuses=True)
    record = json.loads(out.read_text())
    for key in ("task", "final_answer", "adaptive_summary", "triage_dossier", "plan", "steps",
                "session_reward", "reward_summary", "review_status", "personas_used",
                "persona_updates", "session_metadata"):  # fmt: skip
        assert key in record, key


def test_learning_carries_over_to_the_next_session(db_url):
    first = core.run(TASK, config=_config(), database_url=db_url)
    second = core.run(TASK, config=_config(), database_url=db_url)
    trace = get_session_by_id(second.session_id, db_url)
    assert trace.learning_history["entries"][0]["session_id"] == first.session_id
    assert trace.personas_used and trace.personas_used[0]["source"] == "learning_registry"


def test_review_status_follows_the_approval_rule(db_url, monkeypatch):
    pending = core.run(TASK, config=_config(runtime_safety={}), database_url=db_url)
    monkeypatch.setenv("ATLAS_REVIEW_REQUIRE_APPROVAL", "0")
    approved = core.run(TASK, config=_config(runtime_safety={}), database_url=db_url)
    assert (pending.review_status, approved.review_status) == ("pending", "approved")


def test_drift_alert_forces_review(db_url):
    config = _config(runtime_safety={"review": {"require_approval": False},
                                     "drift": {"min_baseline": 3, "z_threshold": 2}})  # fmt: skip
    for _ in range(4):
        core.run(TASK, config=config, database_url=db_url)
    harsh = _parts(judges=(JudgeSpec("harsh", DemoJudge("harsh", strictness=0.8)),))
    result = core.run(TASK, config=config, database_url=db_url, parts=harsh)
    assert result.metadata["drift_alert"] is True
    trace = get_session_by_id(result.session_id, db_url)
    assert trace.review_status == "pending" and "drift alert" in (trace.review_notes or "")


class _Failing(DemoStudent):
    async def complete(
        self, messages: Sequence[Mapping[str, str]], *, metadata: Mapping[str, Any] | None = None
    ) -> DemoCompletion:
        if (metadata or {}).get("step_id") == 2:
            raise RuntimeError("the agent crashed")
        return await super().complete(messages, metadata=metadata)


def test_a_failing_agent_fails_the_session_and_keeps_what_came_before(db_url):
    result = core.run(TASK, config=_config(), database_url=db_url, parts=_parts(_Failing()))
    assert result.status == "failed" and "the agent crashed" in (result.error or "")
    trace = get_session_by_id(result.session_id, db_url)
    assert trace.status == "failed"
    assert trace.session_metadata["failed_phase"] == "execute"
    assert trace.plan and [s.step_id for s in trace.steps] == [1, 2]
    assert trace.steps[1].attempts == 3  # one try and two retries, all recorded
    assert any(e["event_type"] == "session_failed" for e in trace.trajectory_events)


class _Slow(DemoStudent):
    async def complete(
        self, messages: Sequence[Mapping[str, str]], *, metadata: Mapping[str, Any] | None = None
    ) -> DemoCompletion:
        if (metadata or {}).get("phase") == "execute":
            await asyncio.Event().wait()  # never answers
        return await super().complete(messages, metadata=metadata)


def test_a_step_timeout_is_recorded(db_url):
    config = _config(orchestration={"step_timeout_seconds": 0.05, "max_retries": 1})
    result = core.run(TASK, config=config, database_url=db_url, parts=_parts(_Slow()))
    assert result.status == "failed" and "timed out after 0.05 s" in (result.error or "")
    trace = get_session_by_id(result.session_id, db_url)
    errors = [h["error"] for h in trace.steps[0].attempt_history]
    assert errors == ["timed out after 0.05 s"] * 2


class _Mumbling(DemoJudge):
    async def complete(
        self, messages: Sequence[Mapping[str, str]], *, metadata: Mapping[str, Any] | None = None
    ) -> DemoCompletion:
        return DemoCompletion("I would rate it quite good overall.")


def test_an_unreadable_judge_is_audited_not_invented(db_url):
    judges = (JudgeSpec("good", DemoJudge("good")), JudgeSpec("mumbles", _Mumbling("mumbles")))
    result = core.run(TASK, config=_config(), database_url=db_url, parts=_parts(judges=judges))
    assert result.status == "succeeded"
    trace = get_session_by_id(result.session_id, db_url)
    assert [j.identifier for j in trace.steps[0].reward.judges] == ["good"]
    errors = [a for a in trace.reward_audit if a.get("error")]
    assert errors and all(a["identifier"] == "mumbles" for a in errors)


def test_no_readable_judge_means_no_reward(db_url):
    judges = (JudgeSpec("mumbles", _Mumbling("mumbles")),)
    result = core.run(TASK, config=_config(), database_url=db_url, parts=_parts(judges=judges))
    trace = get_session_by_id(result.session_id, db_url)
    assert result.status == "succeeded" and trace.session_reward is None
    assert trace.steps[0].reward.score is None


def test_escalation_asks_the_large_judge(db_url):
    parts = RuntimeParts(
        DemoStudent(), DemoTeacher(),
        (JudgeSpec("lenient", DemoJudge("lenient")),
         JudgeSpec("strict", DemoJudge("strict", strictness=0.6))),
        (JudgeSpec("arbiter", DemoJudge("arbiter")),),
    )  # fmt: skip
    result = core.run(TASK, config=_config(), database_url=db_url, parts=parts)
    trace = get_session_by_id(result.session_id, db_url)
    assert [j.identifier for j in trace.steps[0].reward.judges] == ["arbiter"]
    assert {a["stage"] for a in trace.reward_audit} == {"small", "large"}


def test_eight_concurrent_runs_stay_apart(db_url):
    tasks = [f"Summarize incident {i} for the on-call team." for i in range(8)]

    async def all_runs() -> list[Any]:
        return await asyncio.gather(
            *(core.arun(t, config=_config(), database_url=db_url) for t in tasks)
        )

    results = asyncio.run(all_runs())
    assert sorted(r.status for r in results) == ["succeeded"] * 8
    assert len({r.session_id for r in results}) == 8
    for trace in get_training_sessions(db_url, include_all_review_statuses=True):
        number = trace.task.split()[2]
        assert number in (trace.final_answer or "")
        assert all(e["payload"].get("excerpt", number).find(number) >= 0
                   for e in trace.trajectory_events if e["event_type"] == "llm_response"
                   and e["name"] == "synthesize")  # fmt: skip


def test_run_works_inside_a_running_loop(db_url):
    async def notebook_cell() -> Any:
        return core.run(TASK, config=_config(), database_url=db_url)

    assert asyncio.run(notebook_cell()).status == "succeeded"


def test_stream_progress_goes_to_stderr(db_url, capsys):
    core.run(TASK, config=_config(), database_url=db_url, stream_progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "triage" in captured.err and "step 2 attempt 1: retry" in captured.err


def test_the_database_going_away_mid_run_keeps_what_was_written(db_url, url_for, server_url):
    name = psycopg.conninfo.conninfo_to_dict(db_url)["dbname"]

    class _Saboteur(DemoStudent):
        async def complete(self, messages, *, metadata=None):  # type: ignore[no-untyped-def]
            if (metadata or {}).get("step_id") == 2:
                with psycopg.connect(server_url, autocommit=True) as admin:
                    admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
                    admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
                    )  # fmt: skip
            return await super().complete(messages, metadata=metadata)

    from atlas.errors import DatabaseUnavailable

    try:
        with pytest.raises(DatabaseUnavailable):
            core.run(TASK, config=_config(), database_url=db_url, parts=_parts(_Saboteur()))
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    counts = _counts(db_url, 1)
    assert counts["plans"] == 1 and counts["step_results"] >= 1
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT status FROM sessions WHERE id = 1").fetchone() == ("running",)


def test_cli_run_prints_the_answer(cli, db_url, tmp_path: Path):
    config = tmp_path / "atlas.yaml"
    config.write_text(yaml.safe_dump(DEMO_CONFIG))
    result = cli("run", "--config", str(config), "--task", TASK, "--database-url", db_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("[demo student] Answer to")
    assert "session 1: succeeded" in result.stderr


def test_cli_run_without_agent_is_a_config_error(cli, tmp_path: Path):
    config = tmp_path / "atlas.yaml"
    config.write_text("orchestration: {mode: coach}\n")
    result = cli("run", "--config", str(config), "--task", TASK,
                 "--database-url", "postgresql://u@127.0.0.1:1/x")  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("Error: The configuration has no agent block")


def test_quickstart_runs_and_exports(cli, db_url, tmp_path: Path):
    out = tmp_path / "q.jsonl"
    result = cli("quickstart", "--database-url", db_url, "--output", str(out), "--tasks", "2")
    assert result.returncode == 0, result.stderr
    assert len(out.read_text().splitlines()) == 2
    assert "Try next:" in result.stderr


def test_env_init_finds_the_agent_and_records_the_discovery(cli, db_url, tmp_path: Path):
    project = tmp_path / "proj"
    (project / "myagent").mkdir(parents=True)
    (project / "myagent" / "bot.py").write_text(
        "async def run_agent(prompt, metadata):\n    return 'hi'\n\ndef helper():\n    pass\n"
    )
    target = tmp_path / "atlas.yaml"
    result = cli("env", "init", "--path", str(project), "--output", str(target),
                 "--database-url", db_url)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(target.read_text())["agent"]["import_path"] == "myagent.bot:run_agent"
    with psycopg.connect(db_url) as conn:
        payload = conn.execute("SELECT payload FROM discovery_runs").fetchone()[0]  # type: ignore[index]
    assert payload["chosen"] == "myagent.bot:run_agent"
    again = cli("env", "init", "--path", str(project), "--output", str(target),
                "--database-url", db_url)  # fmt: skip
    assert again.returncode == 2 and "already exists" in again.stderr
