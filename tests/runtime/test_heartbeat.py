"""The runtime's heartbeat against a real PostgreSQL: recover leaves a live run alone.

A student whose execute call is "long" (it waits, on an event, for what the
test needs to happen) stands in for a slow agent; nothing sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from atlas.runtime.demo import DemoCompletion, DemoJudge, DemoStudent, DemoTeacher
from atlas.runtime.orchestrator import JudgeSpec, RuntimeParts, RuntimeSettings, run_session
from atlas.runtime.recorder import Heartbeat
from atlas.storage.writer import AsyncSessionWriter

TASK = "Review the login service for credential handling risks."


class WatchedWriter(AsyncSessionWriter):
    """Sets ``beaten`` after every heartbeat written."""

    beaten: asyncio.Event

    async def heartbeat(self, session_id: int) -> None:
        await super().heartbeat(session_id)
        self.beaten.set()


class LongCallStudent(DemoStudent):
    """Calls :meth:`long_call` inside its first execute call, as if the agent were thinking."""

    def __init__(self) -> None:
        self.writer: WatchedWriter | None = None
        self.called = False

    async def complete(
        self, messages: Sequence[Mapping[str, str]], *, metadata: Mapping[str, Any] | None = None
    ) -> DemoCompletion:
        if (metadata or {}).get("phase") == "execute" and not self.called:
            self.called = True
            assert self.writer is not None
            await self.long_call(self.writer, await _current_session(self.writer))
        return await super().complete(messages, metadata=metadata)

    async def long_call(self, writer: WatchedWriter, session_id: int) -> None:
        raise NotImplementedError


def _age_session(db_url: str, session_id: int, *, drop_heartbeat: bool) -> None:
    """Make the session look an hour idle: started, and last event written, long ago."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE sessions SET created_at = now() - interval '1 hour' WHERE id = %s",
                     (session_id,))  # fmt: skip
        conn.execute("UPDATE trajectory_events SET created_at = now() - interval '1 hour' "
                     "WHERE session_id = %s", (session_id,))  # fmt: skip
        if drop_heartbeat:
            conn.execute("UPDATE sessions SET metadata = metadata - 'heartbeat_at' WHERE id = %s",
                         (session_id,))  # fmt: skip


async def _run(db_url: str, student: LongCallStudent, every: float) -> Any:
    database = (await AsyncSessionWriter.open(db_url)).database
    async with WatchedWriter(database, owns_database=True) as writer:
        writer.beaten = asyncio.Event()
        student.writer = writer
        parts = RuntimeParts(student, DemoTeacher(), (JudgeSpec("process", DemoJudge("process")),))
        settings = RuntimeSettings(heartbeat_seconds=every, require_approval=False)
        return await run_session(TASK, parts, settings, writer)


async def _current_session(writer: AsyncSessionWriter) -> int:
    async with writer.database.connection() as conn:
        row = await (await conn.execute("SELECT max(id) FROM sessions")).fetchone()
    assert row is not None
    return int(row[0])


def _row(db_url: str, session_id: int) -> tuple[Any, ...]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT status, review_status, metadata FROM sessions WHERE id = %s", (session_id,)
        ).fetchone()
    assert row is not None
    return tuple(row)


def test_recover_leaves_a_run_alone_during_a_long_agent_call(db_url: str) -> None:
    recovered: list[list[int]] = []

    class Student(LongCallStudent):
        async def long_call(self, writer: WatchedWriter, session_id: int) -> None:
            _age_session(db_url, session_id, drop_heartbeat=False)
            writer.beaten.clear()
            await writer.beaten.wait()  # a heartbeat written while the call is in progress
            recovered.append(await writer.recover_stale_sessions(timedelta(seconds=5)))

    result = asyncio.run(_run(db_url, Student(), every=0.01))
    assert recovered == [[]]
    assert result.status == "succeeded", result.error
    status, review, metadata = _row(db_url, result.session_id)
    assert (status, review) == ("succeeded", "approved")
    assert "error" not in metadata and "interrupted" not in metadata


def test_a_run_recovered_while_its_heartbeat_was_stale_stays_failed(db_url: str) -> None:
    recovered: list[list[int]] = []

    class Student(LongCallStudent):
        async def long_call(self, writer: WatchedWriter, session_id: int) -> None:
            # The interval is an hour: no heartbeat comes, as if the process hung.
            _age_session(db_url, session_id, drop_heartbeat=True)
            recovered.append(await writer.recover_stale_sessions(timedelta(seconds=5)))

    result = asyncio.run(_run(db_url, Student(), every=3600))
    assert recovered == [[result.session_id]]
    assert result.status == "failed"
    assert result.error.startswith("interrupted: `arc-atlas db recover` marked the session")
    status, review, metadata = _row(db_url, result.session_id)
    assert (status, review) == ("failed", "pending")  # never approved into training data
    assert metadata["error"].startswith("interrupted:")
    assert metadata["finished_after_interrupt"]["status"] == "succeeded"


@pytest.mark.parametrize("every", [pytest.param(0, id="zero"), pytest.param(-1, id="negative")])
def test_a_heartbeat_interval_must_be_positive(every: float) -> None:
    with pytest.raises(ValueError, match="Heartbeat interval must be positive"):
        Heartbeat(None, every)  # type: ignore[arg-type]
