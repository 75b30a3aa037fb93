"""Persisting a run as it happens: the session row, its events in batches, reads of history.

The recorder owns one session id and an :class:`~atlas.storage.AsyncSessionWriter`.
Events are flat envelopes buffered in memory and written in one statement per
batch (when the buffer fills, and at every phase boundary), never one round
trip each. A :class:`Heartbeat` runs beside the run and marks the session
alive at a fixed interval, also while an agent call takes minutes and no event
is written, so ``arc-atlas db recover`` can tell a live run from a dead one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

from psycopg.rows import dict_row

from atlas.storage import writes
from atlas.storage.schema import reward_score
from atlas.storage.writer import AsyncSessionWriter
from atlas.storage.writes import WriteOp

__all__ = ["Heartbeat", "SessionRecorder", "load_history", "load_playbook", "reward_baseline"]

logger = logging.getLogger(__name__)


class Heartbeat:
    """Record a running session's heartbeat every ``every`` seconds from a background task.

    Use as an async context manager around the run and call :meth:`watch`
    once the session exists; leaving the block stops the task. A heartbeat
    that cannot be written (the database is briefly away) is logged and the
    next one is tried: a missed beat must not fail the run.
    """

    def __init__(self, writer: AsyncSessionWriter, every: float):
        if not every > 0:
            raise ValueError(f"Heartbeat interval must be positive; got {every!r}.")
        self.writer = writer
        self.every = every
        self._session_id: int | None = None
        self._task: asyncio.Task[None] | None = None

    def watch(self, session_id: int) -> None:
        """Beat for ``session_id`` from now on."""
        self._session_id = session_id

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            if self._session_id is None:
                continue
            try:
                await self.writer.heartbeat(self._session_id)
            except Exception:
                logger.warning("Heartbeat of session %s not recorded", self._session_id,
                               exc_info=True)  # fmt: skip

    async def __aenter__(self) -> Heartbeat:
        self._task = asyncio.create_task(self._beat(), name="arc-atlas heartbeat")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class SessionRecorder:
    """Buffer a session's trajectory events and write them in batches."""

    def __init__(self, writer: AsyncSessionWriter, session_id: int, *, batch_size: int = 64):
        self.writer = writer
        self.session_id = session_id
        self._batch_size = batch_size
        self._buffer: list[dict[str, Any]] = []
        self.events_written = 0
        self.batches_written = 0

    async def emit(
        self,
        event_type: str,
        actor: str,
        name: str,
        payload: Mapping[str, Any] | None = None,
        *,
        step_id: int | None = None,
    ) -> None:
        """Record one event (written with the next batch)."""
        self._buffer.append(
            {
                "event_type": event_type,
                "actor": actor,
                "name": name,
                "timestamp": datetime.now(timezone.utc).isoformat(),
                "step_id": step_id,
                "payload": dict(payload or {}),
            }
        )
        if len(self._buffer) >= self._batch_size:
            await self.flush()

    async def flush(self) -> None:
        """Write every buffered event in one statement."""
        await self.write(())

    async def write(self, ops: Sequence[WriteOp]) -> Any:
        """Run ``ops`` and the buffered events as one transaction, in one round trip.

        Events ride along with the write they accompany (a step, the plan, the
        end of the session) instead of costing a round trip of their own. They
        go first, so the value returned is that of the last op, when it
        returns one (``finalize_session``: the status stored).
        """
        batch, self._buffer = self._buffer, []
        statements = list(writes.append_events(self.session_id, batch).statements if batch else ())
        statements.extend(st for op in ops for st in op.statements)
        if not statements:
            return None
        returns = bool(ops) and ops[-1].returns
        value = await self.writer.run(WriteOp(tuple(statements), returns=returns))
        if batch:
            self.events_written += len(batch)
            self.batches_written += 1
        return value

    def pending(self) -> list[dict[str, Any]]:
        """Events not yet written (kept for the failure path)."""
        return list(self._buffer)


async def _rows(
    writer: AsyncSessionWriter, query: str, params: tuple[Any, ...]
) -> list[dict[str, Any]]:
    async with writer.database.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def reward_baseline(
    writer: AsyncSessionWriter, learning_key: str, *, exclude: int, window: int
) -> list[float]:
    """Recent session scores for ``learning_key``, newest first, without session ``exclude``."""
    rows = await _rows(
        writer,
        f"SELECT {reward_score()} AS score FROM sessions "
        "WHERE (metadata ->> 'learning_key') = %s AND id <> %s "
        f"AND {reward_score()} IS NOT NULL "
        "ORDER BY created_at DESC, id DESC LIMIT %s",
        (learning_key, exclude, window),
    )
    return [row["score"] for row in rows]


async def load_history(
    writer: AsyncSessionWriter, learning_key: str, *, exclude: int, limit: int
) -> list[dict[str, Any]]:
    """Earlier sessions of ``learning_key``: reward and learning notes, oldest first."""
    rows = await _rows(
        writer,
        f"SELECT id AS session_id, {reward_score()} AS reward, "
        "student_learning, teacher_learning, created_at FROM sessions "
        "WHERE (metadata ->> 'learning_key') = %s AND id <> %s AND status <> 'running' "
        "ORDER BY created_at DESC, id DESC LIMIT %s",
        (learning_key, exclude, limit),
    )
    for row in rows:
        row["created_at"] = row["created_at"].isoformat()
    return list(reversed(rows))


async def load_playbook(writer: AsyncSessionWriter, learning_key: str) -> dict[str, Any]:
    """The learning registry's playbooks for ``learning_key`` (empty when there are none)."""
    rows = await _rows(
        writer,
        "SELECT student_learning, teacher_learning, metadata, updated_at "
        "FROM learning_registry WHERE learning_key = %s",
        (learning_key,),
    )
    if not rows:
        return {"student": None, "teacher": None, "metadata": {}}
    row = rows[0]
    return {
        "student": row["student_learning"],
        "teacher": row["teacher_learning"],
        "metadata": row["metadata"] or {},
        "updated_at": row["updated_at"].isoformat(),
    }
