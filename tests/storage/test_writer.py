"""SessionWriter and AsyncSessionWriter against a real database: every method, both twins.

Each test runs twice, through the sync writer and through the async writer
(driven on one event loop by a small synchronous facade), so the twins
cannot drift apart.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from atlas.errors import SchemaOutOfDate
from atlas.storage import writes
from atlas.storage.writer import AsyncSessionWriter, SessionWriter, run_op, run_op_async
from atlas.storage.writes import AttemptRecord, StepRecord, WriteOp

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


class AsyncWriterFacade:
    """Calls an AsyncSessionWriter's coroutines to completion on one private event loop."""

    def __init__(self, url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._writer = self._loop.run_until_complete(AsyncSessionWriter.open(url))

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._writer, name)
        return lambda *args, **kwargs: self._loop.run_until_complete(method(*args, **kwargs))

    def close(self) -> None:
        self._loop.run_until_complete(self._writer.close())
        self._loop.close()


@pytest.fixture(params=["sync", "async"])
def writer(request: pytest.FixtureRequest, db_url: str) -> Iterator[Any]:
    opened: Any = (
        SessionWriter.open(db_url) if request.param == "sync" else AsyncWriterFacade(db_url)
    )
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A plain connection for looking at what the writer left behind."""
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        yield conn


def rows(db: psycopg.Connection[Any], query: str, *params: Any) -> list[dict[str, Any]]:
    return db.execute(query, params).fetchall()


def one(db: psycopg.Connection[Any], query: str, *params: Any) -> dict[str, Any]:
    found = rows(db, query, *params)
    assert len(found) == 1
    return found[0]


def session(db: psycopg.Connection[Any], session_id: int) -> dict[str, Any]:
    return one(db, "SELECT * FROM sessions WHERE id = %s", session_id)


def test_create_session(writer: Any, db: psycopg.Connection[Any]) -> None:
    sid = writer.create_session("solve it\x00", {"learning_key": "k"})
    row = session(db, sid)
    assert (row["task"], row["status"], row["review_status"], row["metadata"]) == (
        "solve it\ufffd",
        "running",
        "pending",
        {"learning_key": "k"},
    )
    assert row["completed_at"] is None
    assert abs(row["created_at"] - datetime.now(timezone.utc)) < timedelta(minutes=5)


def test_create_session_with_explicit_fields(writer: Any, db: psycopg.Connection[Any]) -> None:
    sid = writer.create_session("t", status="succeeded", review_status="approved", created_at=T0)
    row = session(db, sid)
    assert (row["status"], row["review_status"], row["created_at"], row["metadata"]) == (
        "succeeded",
        "approved",
        T0,
        {},
    )


def test_record_plan_inserts_then_replaces(writer: Any, db: psycopg.Connection[Any]) -> None:
    sid = writer.create_session("t")
    writer.record_plan(sid, {"steps": [{"id": 1}]})
    writer.record_plan(sid, {"steps": [{"id": 1}, {"id": 2}]})
    assert rows(db, "SELECT plan FROM plans WHERE session_id = %s", sid) == [
        {"plan": {"steps": [{"id": 1}, {"id": 2}]}}
    ]


def test_record_plan_accepts_no_plan(writer: Any, db: psycopg.Connection[Any]) -> None:
    sid = writer.create_session("t")
    writer.record_plan(sid, None)
    assert one(db, "SELECT plan FROM plans WHERE session_id = %s", sid) == {"plan": None}


STEP = StepRecord(
    step_id=1,
    trace="thought\x00",
    output="42",
    evaluation={"validation": {"valid": True}, "reward": {"score": 0.8}},
    metadata={"runtime": 1200, "depends_on": [], "attempt_history": [1, 2]},
    attempts=[
        AttemptRecord(1, {"valid": False}),
        AttemptRecord(2, {"valid": False}),
        {"attempt": 3, "evaluation": {"valid": True}},
    ],
    guidance=["be precise", "cite", "check units"],
)


def test_record_step_writes_result_attempts_and_guidance(
    writer: Any, db: psycopg.Connection[Any]
) -> None:
    sid = writer.create_session("t")
    writer.record_step(sid, STEP)
    result = one(db, "SELECT * FROM step_results WHERE session_id = %s", sid)
    assert result == {
        "session_id": sid,
        "step_id": 1,
        "trace": "thought\ufffd",
        "output": "42",
        "evaluation": STEP.evaluation,
        "attempts": 3,
        "metadata": STEP.metadata,
    }
    attempts = rows(db, "SELECT attempt, evaluation FROM step_attempts ORDER BY attempt")
    assert attempts == [
        {"attempt": 1, "evaluation": {"valid": False}},
        {"attempt": 2, "evaluation": {"valid": False}},
        {"attempt": 3, "evaluation": {"valid": True}},
    ]
    notes = rows(db, "SELECT sequence, note FROM guidance_notes ORDER BY sequence")
    assert notes == [
        {"sequence": 1, "note": "be precise"},
        {"sequence": 2, "note": "cite"},
        {"sequence": 3, "note": "check units"},
    ]


def test_rerecording_a_step_replaces_attempts_and_guidance(
    writer: Any, db: psycopg.Connection[Any]
) -> None:
    sid = writer.create_session("t")
    writer.record_step(sid, STEP)
    writer.record_step(sid, StepRecord(1, output="43", attempts=[{"evaluation": {}}], guidance=[]))
    assert one(db, "SELECT output, attempts FROM step_results") == {"output": "43", "attempts": 1}
    assert rows(db, "SELECT attempt FROM step_attempts") == [{"attempt": 1}]
    assert rows(db, "SELECT note FROM guidance_notes") == []


def test_failed_step_leaves_the_previous_version_whole(
    writer: Any, db: psycopg.Connection[Any]
) -> None:
    sid = writer.create_session("t")
    writer.record_step(sid, STEP)
    before = [rows(db, f"SELECT * FROM {t} ORDER BY 1, 2, 3") for t in STEP_TABLES]
    duplicate_attempts = StepRecord(1, output="new", attempts=[{"attempt": 1}, {"attempt": 1}])
    with pytest.raises(psycopg.errors.UniqueViolation):
        writer.record_step(sid, duplicate_attempts)
    assert [rows(db, f"SELECT * FROM {t} ORDER BY 1, 2, 3") for t in STEP_TABLES] == before


STEP_TABLES = ("step_results", "step_attempts", "guidance_notes")


def test_step_of_an_unknown_session_writes_nothing(
    writer: Any, db: psycopg.Connection[Any]
) -> None:
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        writer.record_step(987654, STEP)
    counts = [one(db, f"SELECT count(*) AS n FROM {t}")["n"] for t in STEP_TABLES]
    assert counts == [0, 0, 0]


def test_events_are_stored_flat_in_order(writer: Any, db: psycopg.Connection[Any]) -> None:
    sid = writer.create_session("t")
    nested = {
        "payload": {
            "event_type": "tool_call",
            "name": "search",
            "event_timestamp": (T0 + timedelta(seconds=1)).timestamp(),
            "metadata": {"actor": "student", "step_id": 1},
            "data": {"q": "x"},
        }
    }
    writer.append_events(
        sid, [{"event_type": "plan", "actor": "teacher", "timestamp": T0.isoformat()}, nested]
    )
    writer.append_events(sid, [{"event_type": "reward", "timestamp": "2025-03-01T12:00:02Z"}])
    stored = rows(db, "SELECT event, created_at FROM trajectory_events ORDER BY id")
    assert [(e["event"]["event_type"], e["created_at"]) for e in stored] == [
        ("plan", T0),
        ("tool_call", T0 + timedelta(seconds=1)),
        ("reward", T0 + timedelta(seconds=2)),
    ]
    assert stored[1]["event"] == {
        **nested,
        "event_type": "tool_call",
        "actor": "student",
        "name": "search",
        "timestamp": "2025-03-01T12:00:01+00:00",
        "step_id": 1,
        "lifted_keys": ["event_type", "actor", "name", "timestamp", "step_id"],
    }


def test_event_without_timestamp_is_dated_now(writer: Any, db: psycopg.Connection[Any]) -> None:
    sid = writer.create_session("t")
    writer.append_events(sid, [{"event_type": "x"}])
    created = one(db, "SELECT created_at FROM trajectory_events")["created_at"]
    assert abs(created - datetime.now(timezone.utc)) < timedelta(minutes=5)


def test_event_type_is_filterable_in_sql(writer: Any, db: psycopg.Connection[Any]) -> None:
    sid = writer.create_session("t")
    writer.append_events(sid, [{"payload": {"event_type": "tool_call"}}, {"event_type": "plan"}])
    found = rows(db, "SELECT id FROM trajectory_events WHERE event->>'event_type' = 'tool_call'")
    assert len(found) == 1


def test_hundred_events_in_order(writer: Any, db: psycopg.Connection[Any]) -> None:
    sid = writer.create_session("t")
    writer.append_events(sid, [{"event_type": "e", "payload": {"n": n}} for n in range(100)])
    stored = rows(db, "SELECT id, event FROM trajectory_events ORDER BY id")
    assert [e["event"]["payload"]["n"] for e in stored] == list(range(100))


def test_empty_event_batch_is_harmless(writer: Any, db: psycopg.Connection[Any]) -> None:
    sid = writer.create_session("t")
    writer.append_events(sid, [])
    assert rows(db, "SELECT id FROM trajectory_events") == []


def test_record_reward(writer: Any, db: psycopg.Connection[Any]) -> None:
    sid = writer.create_session("t")
    writer.record_reward(
        sid,
        reward={"score": 0.7, "judges": ["a"]},
        reward_stats={"score": "n/a", "uncertainty": 0.3},
        reward_audit={"a": 1},
        student_learning="s",
        teacher_learning="t",
    )
    row = session(db, sid)
    assert [row[k] for k in ("reward", "reward_stats", "reward_audit")] == [
        {"score": 0.7, "judges": ["a"]},
        {"score_raw": "n/a", "uncertainty": 0.3},
        {"a": 1},
    ]
    assert (row["student_learning"], row["teacher_learning"]) == ("s", "t")


def test_record_reward_none_leaves_columns_unchanged(
    writer: Any, db: psycopg.Connection[Any]
) -> None:
    sid = writer.create_session("t")
    writer.record_reward(sid, reward={"score": 1}, reward_stats={"score": 1}, student_learning="s")
    before = session(db, sid)
    writer.record_reward(sid, teacher_learning="t")
    after = session(db, sid)
    # changed_xid is the change's own mark (0006): it moves on every update.
    assert after["changed_xid"] != before["changed_xid"]
    assert after == before | {"teacher_learning": "t", "changed_xid": after["changed_xid"]}


@pytest.mark.parametrize(
    ("existing", "merged"),
    [
        pytest.param('\'{"a": 1, "b": 1}\'', {"a": 1, "b": 2, "c": 3}, id="object"),
        pytest.param("NULL", {"b": 2, "c": 3}, id="sql-null"),
        pytest.param("'null'", {"b": 2, "c": 3}, id="json-null"),
        pytest.param("'[1, 2]'", {"legacy_metadata": [1, 2], "b": 2, "c": 3}, id="array"),
        pytest.param("'\"text\"'", {"legacy_metadata": "text", "b": 2, "c": 3}, id="string"),
    ],
)
def test_update_metadata_merges(
    writer: Any, db: psycopg.Connection[Any], existing: str, merged: dict[str, Any]
) -> None:
    sid = writer.create_session("t")
    db.execute(f"UPDATE sessions SET metadata = {existing}::jsonb WHERE id = %s", (sid,))
    writer.update_metadata(sid, {"b": 2, "c": 3})
    assert session(db, sid)["metadata"] == merged


def test_set_review_status_records_history(writer: Any, db: psycopg.Connection[Any]) -> None:
    first, second, untouched = (writer.create_session(t, {"k": 1}) for t in "abc")
    changed = writer.set_review_status([first, second, 999999], "approved", reviewer="ana", at=T0)
    writer.set_review_status([first], "quarantined", notes="drift", reviewer="bo", at=T0)
    assert changed == 2
    row = session(db, first)
    assert (row["review_status"], row["review_notes"], row["metadata"]["k"]) == (
        "quarantined",
        "drift",
        1,
    )
    assert row["metadata"]["review_history"] == [
        {"status": "approved", "reviewer": "ana", "at": T0.isoformat(), "note": None},
        {"status": "quarantined", "reviewer": "bo", "at": T0.isoformat(), "note": "drift"},
    ]
    assert session(db, second)["review_status"] == "approved"
    assert session(db, untouched)["review_status"] == "pending"


def test_set_review_status_on_legacy_metadata(writer: Any, db: psycopg.Connection[Any]) -> None:
    sid = writer.create_session("t")
    db.execute("UPDATE sessions SET metadata = '[\"old\"]' WHERE id = %s", (sid,))
    assert writer.set_review_status([sid], "approved", reviewer="r", at=T0) == 1
    metadata = session(db, sid)["metadata"]
    assert (metadata["legacy_metadata"], len(metadata["review_history"])) == (["old"], 1)


def test_set_review_status_of_nothing(writer: Any) -> None:
    assert writer.set_review_status([], "approved") == 0


def test_finalize_session(writer: Any, db: psycopg.Connection[Any]) -> None:
    sid = writer.create_session("t", {"learning_key": "k"})
    writer.finalize_session(
        sid, status="failed", final_answer="none", metadata={"error": "boom"}, completed_at=T0
    )
    row = session(db, sid)
    assert (row["status"], row["final_answer"], row["completed_at"], row["metadata"]) == (
        "failed",
        "none",
        T0,
        {"learning_key": "k", "error": "boom"},
    )


def test_finalize_session_defaults_completion_to_now(
    writer: Any, db: psycopg.Connection[Any]
) -> None:
    sid = writer.create_session("t")
    writer.finalize_session(sid, status="succeeded")
    completed = session(db, sid)["completed_at"]
    assert abs(completed - datetime.now(timezone.utc)) < timedelta(minutes=5)


def test_upsert_learning(writer: Any, db: psycopg.Connection[Any]) -> None:
    writer.upsert_learning("k", student_learning="s1", teacher_learning="t1", metadata={"v": 1})
    first = one(db, "SELECT updated_at FROM learning_registry")["updated_at"]
    writer.upsert_learning("k", student_learning="s2", teacher_learning=None)
    row = one(db, "SELECT * FROM learning_registry")
    assert (row["student_learning"], row["teacher_learning"], row["metadata"]) == (
        "s2",
        None,
        None,
    )
    assert row["updated_at"] >= first


def test_record_discovery_run(writer: Any, db: psycopg.Connection[Any]) -> None:
    run_id = writer.record_discovery_run(
        project_root="/repo", task="discover", payload={"env": "x"}, metadata={"m": 1}
    )
    row = one(db, "SELECT * FROM discovery_runs WHERE id = %s", run_id)
    assert (row["project_root"], row["task"], row["source"], row["payload"], row["metadata"]) == (
        "/repo",
        "discover",
        "discovery",
        {"env": "x"},
        {"m": 1},
    )


@pytest.fixture
def stale_and_fresh(writer: Any) -> tuple[int, int, int]:
    """A stale running session, a running one with a recent event, and a finished old one."""
    long_ago = datetime.now(timezone.utc) - timedelta(hours=3)
    stale = writer.create_session("stale", {"k": 1}, created_at=long_ago)
    fresh = writer.create_session("fresh", created_at=long_ago)
    writer.append_events(fresh, [{"event_type": "x", "timestamp": datetime.now(timezone.utc)}])
    done = writer.create_session("done", status="succeeded", created_at=long_ago)
    return stale, fresh, done


def test_recover_stale_sessions(
    writer: Any, db: psycopg.Connection[Any], stale_and_fresh: tuple[int, int, int]
) -> None:
    stale, fresh, done = stale_and_fresh
    assert writer.recover_stale_sessions(timedelta(hours=1)) == [stale]
    row = session(db, stale)
    assert row["status"] == "failed" and row["completed_at"] is not None
    assert row["metadata"]["k"] == 1
    assert row["metadata"]["error"].startswith("interrupted:")
    assert row["metadata"]["interrupted"]["idle_longer_than_seconds"] == 3600
    assert [session(db, s)["status"] for s in (fresh, done)] == ["running", "succeeded"]


def test_recover_stale_sessions_dry_run_changes_nothing(
    writer: Any, db: psycopg.Connection[Any], stale_and_fresh: tuple[int, int, int]
) -> None:
    before = rows(db, "SELECT * FROM sessions ORDER BY id")
    assert writer.recover_stale_sessions(timedelta(hours=1), dry_run=True) == [stale_and_fresh[0]]
    assert rows(db, "SELECT * FROM sessions ORDER BY id") == before


def test_writer_refuses_outdated_schema_when_told_not_to_migrate(
    empty_db_url: str, tmp_path: Any
) -> None:
    config = tmp_path / "atlas.yaml"
    config.write_text(
        f"storage:\n  database_url: '{empty_db_url}'\n  apply_schema_on_connect: false\n"
    )
    with pytest.raises(SchemaOutOfDate):
        SessionWriter.open(config_path=config)


def test_writer_migrates_by_default(empty_db_url: str) -> None:
    with SessionWriter.open(empty_db_url) as writer:
        assert writer.create_session("t") == 1


def round_trips(
    conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any], run: Callable[[], Any]
) -> int:
    """How many times ``run`` waits for the server to finish on ``conn`` (round trips)."""
    with tempfile.TemporaryFile("w+") as trace:
        conn.pgconn.trace(trace.fileno())
        conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            run()
        finally:
            conn.pgconn.untrace()
        trace.seek(0)
        # The server answers every Sync and every simple query with one ReadyForQuery.
        return sum(1 for line in trace if line.split("\t")[::2] == ["B", "ReadyForQuery"])


OPS_IN_ONE_ROUND_TRIP = [
    pytest.param(lambda sid: writes.record_step(sid, STEP), id="step-3-attempts-3-notes"),
    pytest.param(
        lambda sid: writes.append_events(sid, [{"event_type": "e"}] * 100), id="100-events"
    ),
    pytest.param(lambda sid: writes.create_session("t"), id="create-session"),
    pytest.param(lambda sid: writes.set_review_status([sid], "approved"), id="review"),
]


@pytest.mark.parametrize("build", OPS_IN_ONE_ROUND_TRIP)
def test_one_write_is_one_round_trip(db_url: str, build: Callable[[int], WriteOp]) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        sid = run_op(conn, writes.create_session("t"))
        assert round_trips(conn, lambda: run_op(conn, build(sid))) == 1


@pytest.mark.parametrize("build", OPS_IN_ONE_ROUND_TRIP)
def test_one_async_write_is_one_round_trip(db_url: str, build: Callable[[int], WriteOp]) -> None:
    loop = asyncio.new_event_loop()
    try:
        conn = loop.run_until_complete(psycopg.AsyncConnection.connect(db_url, autocommit=True))
        sid = loop.run_until_complete(run_op_async(conn, writes.create_session("t")))
        sent = round_trips(conn, lambda: loop.run_until_complete(run_op_async(conn, build(sid))))
        loop.run_until_complete(conn.close())
    finally:
        loop.close()
    assert sent == 1


def test_op_inside_a_caller_transaction_joins_it(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        with pytest.raises(ZeroDivisionError), conn.transaction():
            run_op(conn, writes.create_session("t"))
            raise ZeroDivisionError
        assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (0,)


def test_session_metadata_is_valid_json_text(writer: Any, db: psycopg.Connection[Any]) -> None:
    sid = writer.create_session("t", {"nul": "a\x00b", "set": {1}})
    text = one(db, "SELECT metadata::text AS m FROM sessions WHERE id = %s", sid)["m"]
    assert json.loads(text) == {"nul": "a\ufffdb", "set": [1]}


HEARTBEAT_SHAPE = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z"
LONG_AGO = datetime.now(timezone.utc) - timedelta(hours=3)


def test_a_recent_heartbeat_keeps_a_session_from_recovery(
    writer: Any, db: psycopg.Connection[Any]
) -> None:
    sid = writer.create_session("long agent call", created_at=LONG_AGO)
    writer.heartbeat(sid)
    assert writer.recover_stale_sessions(timedelta(seconds=5)) == []
    row = session(db, sid)
    assert row["status"] == "running"
    assert re.fullmatch(HEARTBEAT_SHAPE, row["metadata"]["heartbeat_at"])


@pytest.mark.parametrize(
    "beat",
    [
        pytest.param((datetime.now(timezone.utc) - timedelta(hours=2)).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ"), id="old-heartbeat"),
        pytest.param("not a time", id="text"),
        pytest.param(12345, id="number"),
        pytest.param({"at": "now"}, id="object"),
        pytest.param("2999-02-30T00:00:00.000000", id="no-zone"),
    ],
)  # fmt: skip
def test_an_old_or_unreadable_heartbeat_does_not_keep_a_session(
    writer: Any, db: psycopg.Connection[Any], beat: Any
) -> None:
    sid = writer.create_session("stale", {"heartbeat_at": beat}, created_at=LONG_AGO)
    assert writer.recover_stale_sessions(timedelta(hours=1)) == [sid]


def test_a_heartbeat_after_the_end_changes_nothing(
    writer: Any, db: psycopg.Connection[Any]
) -> None:
    sid = writer.create_session("done")
    writer.finalize_session(sid, status="succeeded")
    writer.heartbeat(sid)
    assert "heartbeat_at" not in session(db, sid)["metadata"]


def test_a_run_finishing_after_recovery_stays_failed(
    writer: Any, db: psycopg.Connection[Any]
) -> None:
    sid = writer.create_session("declared dead", created_at=LONG_AGO)
    assert writer.recover_stale_sessions(timedelta(hours=1)) == [sid]
    assert writer.set_review_status([sid], "approved", only_running=True) == 0
    assert writer.finalize_session(sid, status="succeeded", final_answer="late") == "failed"
    row = session(db, sid)
    assert (row["status"], row["review_status"], row["final_answer"]) == (
        "failed", "pending", "late")  # fmt: skip
    assert row["metadata"]["error"].startswith("interrupted:")
    assert row["metadata"]["finished_after_interrupt"]["status"] == "succeeded"


def test_finalize_returns_the_status_stored(writer: Any) -> None:
    sid = writer.create_session("t")
    assert writer.finalize_session(sid, status="succeeded") == "succeeded"
