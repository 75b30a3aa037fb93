"""The session writer the runtime persists through: sync and async twins.

Both run the :class:`~atlas.storage.writes.WriteOp` values built in
:mod:`atlas.storage.writes`; each logical write is one transaction sent as
one pipeline, so recording a step with its attempts and guidance, or a batch
of a hundred events, costs a single round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from typing_extensions import Unpack

from atlas.config.loader import load_config
from atlas.config.models import AtlasConfig
from atlas.storage import writes
from atlas.storage.database import AsyncDatabase, Database, PoolOverrides
from atlas.storage.writes import StepRecord, WriteOp

__all__ = ["AsyncSessionWriter", "SessionWriter", "run_op", "run_op_async"]


def _load(
    config: AtlasConfig | None, config_path: str | os.PathLike[str] | None
) -> AtlasConfig | None:
    return load_config(config_path) if config is None and config_path is not None else config


def _migrates(config: AtlasConfig | None) -> bool:
    """Writers apply pending migrations unless the storage block turns that off."""
    return config is None or config.storage is None or config.storage.apply_schema_on_connect


def _single_round_trip(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> bool:
    # In autocommit mode, outside any transaction, everything sent in a pipeline
    # before its one Sync message runs as a single implicit transaction: an error
    # skips the rest and rolls back what ran. conn.transaction() would add a
    # round trip for BEGIN and another for COMMIT, so it is only used when the
    # caller already has a transaction open (it then makes a savepoint).
    return conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE


def run_op(conn: psycopg.Connection[Any], op: WriteOp) -> Any:
    """Execute ``op`` atomically, in one pipeline (one round trip), on a sync connection."""
    with contextlib.ExitStack() as stack:
        if not _single_round_trip(conn):
            stack.enter_context(conn.transaction())
        stack.enter_context(conn.pipeline())
        cur = stack.enter_context(conn.cursor())
        for statement in op.statements:
            cur.execute(statement.sql, statement.params)
        if op.returns:
            row = cur.fetchone()  # sends the Sync: the whole op completes here
            return row[0] if row else None
    return None


async def run_op_async(conn: psycopg.AsyncConnection[Any], op: WriteOp) -> Any:
    """Execute ``op`` atomically, in one pipeline (one round trip), on an async connection."""
    async with contextlib.AsyncExitStack() as stack:
        if not _single_round_trip(conn):
            await stack.enter_async_context(conn.transaction())
        await stack.enter_async_context(conn.pipeline())
        cur = await stack.enter_async_context(conn.cursor())
        for statement in op.statements:
            await cur.execute(statement.sql, statement.params)
        if op.returns:
            row = await cur.fetchone()
            return row[0] if row else None
    return None


class SessionWriter:
    """Write sessions, steps, events, rewards and reviews through a :class:`Database`.

    Create with :meth:`open` (applies pending migrations, as writers may) or
    around an existing handle. Every method is one transaction.
    """

    def __init__(self, database: Database, *, owns_database: bool = False):
        self.database = database
        self._owns = owns_database

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        config: AtlasConfig | None = None,
        config_path: str | os.PathLike[str] | None = None,
        **overrides: Unpack[PoolOverrides],
    ) -> SessionWriter:
        """Open a pool for writing and wrap it.

        Pending migrations are applied unless the config sets
        ``storage.apply_schema_on_connect: false``; then an outdated schema
        raises :class:`~atlas.errors.SchemaOutOfDate` instead.
        """
        config = _load(config, config_path)
        database = Database.open(url, config=config, migrate=_migrates(config), **overrides)
        return cls(database, owns_database=True)

    def run(self, op: WriteOp) -> Any:
        """Execute any write op (see :mod:`atlas.storage.writes`)."""
        with self.database.connection() as conn:
            return run_op(conn, op)

    def create_session(
        self,
        task: str,
        metadata: Mapping[str, Any] | None = None,
        **kw: Unpack[writes.SessionOptions],
    ) -> int:
        """Insert a ``running`` session and return its id."""
        return int(self.run(writes.create_session(task, metadata, **kw)))

    def record_plan(self, session_id: int, plan: Any) -> None:
        """Insert or replace the session's plan."""
        self.run(writes.record_plan(session_id, plan))

    def record_step(self, session_id: int, step: StepRecord) -> None:
        """Record a step result with its attempts and guidance notes."""
        self.run(writes.record_step(session_id, step))

    def append_events(self, session_id: int, events: Iterable[Mapping[str, Any]]) -> None:
        """Append a batch of trajectory events in one statement."""
        self.run(writes.append_events(session_id, events))

    def record_reward(self, session_id: int, **fields: Unpack[writes.RewardFields]) -> None:
        """Set reward, reward_stats, reward_audit and learning notes."""
        self.run(writes.record_reward(session_id, **fields))

    def update_metadata(self, session_id: int, patch: Mapping[str, Any]) -> None:
        """Merge keys into the session's metadata."""
        self.run(writes.update_metadata(session_id, patch))

    def set_review_status(
        self, session_ids: Sequence[int], status: str, **kw: Unpack[writes.ReviewOptions]
    ) -> int:
        """Set review status and notes; returns how many sessions changed."""
        return int(self.run(writes.set_review_status(session_ids, status, **kw)))

    def finalize_session(self, session_id: int, **kw: Unpack[writes.FinalizeFields]) -> str | None:
        """Set the final status, answer and completion time; return the status stored.

        A session ``db recover`` already failed stays ``failed`` (see
        :func:`atlas.storage.writes.finalize_session`).
        """
        stored = self.run(writes.finalize_session(session_id, **kw))
        return None if stored is None else str(stored)

    def heartbeat(self, session_id: int) -> None:
        """Record that the session's process is alive, so ``db recover`` leaves it alone."""
        self.run(writes.heartbeat(session_id))

    def upsert_learning(self, learning_key: str, **kw: Unpack[writes.LearningFields]) -> None:
        """Insert or replace a learning registry playbook."""
        self.run(writes.upsert_learning(learning_key, **kw))

    def record_discovery_run(self, **kw: Unpack[writes.DiscoveryFields]) -> int:
        """Insert a discovery run and return its id."""
        return int(self.run(writes.record_discovery_run(**kw)))

    def recover_stale_sessions(self, older_than: timedelta, *, dry_run: bool = False) -> list[int]:
        """Fail sessions left ``running`` with no activity for ``older_than``; return their ids."""
        return list(self.run(writes.recover_stale_sessions(older_than, dry_run=dry_run)))

    def close(self) -> None:
        """Close the pool if this writer opened it."""
        if self._owns:
            self.database.close()

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncSessionWriter:
    """The asyncio twin of :class:`SessionWriter`, used by the runtime."""

    def __init__(self, database: AsyncDatabase, *, owns_database: bool = False):
        self.database = database
        self._owns = owns_database

    @classmethod
    async def open(
        cls,
        url: str | None = None,
        *,
        config: AtlasConfig | None = None,
        config_path: str | os.PathLike[str] | None = None,
        **overrides: Unpack[PoolOverrides],
    ) -> AsyncSessionWriter:
        """Open an async pool for writing and wrap it (see :meth:`SessionWriter.open`)."""
        config = await asyncio.to_thread(_load, config, config_path)
        database = await AsyncDatabase.open(
            url, config=config, migrate=_migrates(config), **overrides
        )
        return cls(database, owns_database=True)

    async def run(self, op: WriteOp) -> Any:
        """Execute any write op (see :mod:`atlas.storage.writes`)."""
        async with self.database.connection() as conn:
            return await run_op_async(conn, op)

    async def create_session(
        self,
        task: str,
        metadata: Mapping[str, Any] | None = None,
        **kw: Unpack[writes.SessionOptions],
    ) -> int:
        """Insert a ``running`` session and return its id."""
        return int(await self.run(writes.create_session(task, metadata, **kw)))

    async def record_plan(self, session_id: int, plan: Any) -> None:
        """Insert or replace the session's plan."""
        await self.run(writes.record_plan(session_id, plan))

    async def record_step(self, session_id: int, step: StepRecord) -> None:
        """Record a step result with its attempts and guidance notes."""
        await self.run(writes.record_step(session_id, step))

    async def append_events(self, session_id: int, events: Iterable[Mapping[str, Any]]) -> None:
        """Append a batch of trajectory events in one statement."""
        await self.run(writes.append_events(session_id, events))

    async def record_reward(self, session_id: int, **fields: Unpack[writes.RewardFields]) -> None:
        """Set reward, reward_stats, reward_audit and learning notes."""
        await self.run(writes.record_reward(session_id, **fields))

    async def update_metadata(self, session_id: int, patch: Mapping[str, Any]) -> None:
        """Merge keys into the session's metadata."""
        await self.run(writes.update_metadata(session_id, patch))

    async def set_review_status(
        self, session_ids: Sequence[int], status: str, **kw: Unpack[writes.ReviewOptions]
    ) -> int:
        """Set review status and notes; returns how many sessions changed."""
        return int(await self.run(writes.set_review_status(session_ids, status, **kw)))

    async def finalize_session(
        self, session_id: int, **kw: Unpack[writes.FinalizeFields]
    ) -> str | None:
        """Set the final status, answer and completion time; return the status stored."""
        stored = await self.run(writes.finalize_session(session_id, **kw))
        return None if stored is None else str(stored)

    async def heartbeat(self, session_id: int) -> None:
        """Record that the session's process is alive, so ``db recover`` leaves it alone."""
        await self.run(writes.heartbeat(session_id))

    async def upsert_learning(self, learning_key: str, **kw: Unpack[writes.LearningFields]) -> None:
        """Insert or replace a learning registry playbook."""
        await self.run(writes.upsert_learning(learning_key, **kw))

    async def record_discovery_run(self, **kw: Unpack[writes.DiscoveryFields]) -> int:
        """Insert a discovery run and return its id."""
        return int(await self.run(writes.record_discovery_run(**kw)))

    async def recover_stale_sessions(
        self, older_than: timedelta, *, dry_run: bool = False
    ) -> list[int]:
        """Fail sessions left ``running`` with no activity for ``older_than``; return their ids."""
        return list(await self.run(writes.recover_stale_sessions(older_than, dry_run=dry_run)))

    async def close(self) -> None:
        """Close the pool if this writer opened it."""
        if self._owns:
            await self.database.close()

    async def __aenter__(self) -> AsyncSessionWriter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
