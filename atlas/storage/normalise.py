"""Batched data steps of an upgrade: rewriting stored rows without one long transaction.

A migration file changes the schema in one transaction. Rewriting every row of
a large table that way would hold its locks for minutes, and an interruption
would throw all the work away. A data step instead walks the table by primary
key in batches, each batch its own short transaction that also advances a
cursor kept in ``atlas_schema_progress``; a later upgrade resumes from that
cursor. The migration that owns the step is recorded only when the step has
finished, so until then the schema reads as not up to date.

The library never prints: progress goes to a callback, which the CLI renders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import psycopg
from psycopg import sql

__all__ = [
    "EVENT_ENVELOPE",
    "PROGRESS_TABLE",
    "SESSION_FACTS",
    "Progress",
    "ProgressCallback",
    "Rewrite",
    "derive_session_facts",
    "finish_step",
    "normalise_events",
    "run_rewrite",
]

PROGRESS_TABLE = "atlas_schema_progress"

_CREATE_TABLE = sql.SQL(
    """
CREATE TABLE IF NOT EXISTS {} (
    version INTEGER PRIMARY KEY,
    last_id BIGINT NOT NULL,
    upper_id BIGINT NOT NULL,
    done BIGINT NOT NULL,
    total BIGINT NOT NULL,
    changed BIGINT NOT NULL
)
"""
).format(sql.Identifier(PROGRESS_TABLE))

# The rows that exist now are the step's work; later rows are handled by the
# trigger the migration installed before this runs (CREATE TRIGGER waited for
# every open insert, so no row escapes both).
_START = (
    "INSERT INTO {progress} (version, last_id, upper_id, done, total, changed) "
    "SELECT %(version)s, COALESCE(min(id) - 1, 0), COALESCE(max(id), 0), 0, count(*), 0 "
    "FROM {table} ON CONFLICT (version) DO NOTHING"
)

_CURSOR = sql.SQL(
    "SELECT last_id, upper_id, done, total, changed FROM {} WHERE version = %s"
).format(sql.Identifier(PROGRESS_TABLE))

# One statement, hence one transaction: the rows of a batch and the cursor
# that says they are done commit together, so a crash never loses a batch or
# does one twice.
_BATCH = """
WITH batch AS (
    SELECT id FROM {table}
    WHERE id > %(after)s AND id <= %(upper)s
    ORDER BY id LIMIT %(size)s
), rewritten AS (
    UPDATE {table} AS t SET {assignment}
    FROM batch WHERE t.id = batch.id AND ({needed})
    RETURNING t.id
), cursor AS (
    UPDATE {progress}
    SET last_id = COALESCE((SELECT max(id) FROM batch), last_id),
        done = done + (SELECT count(*) FROM batch),
        changed = changed + (SELECT count(*) FROM rewritten)
    WHERE version = %(version)s
    RETURNING last_id, done, changed
)
SELECT (SELECT count(*) FROM batch), last_id, done, changed FROM cursor
"""


@dataclass(frozen=True)
class Rewrite:
    """A data step: which rows of ``table`` need rewriting, and how (SQL written here only)."""

    task: str
    table: str
    assignment: str
    """The SET list, on the row as ``t``."""
    needed: str
    """True for a row the step must rewrite, on the row as ``t``."""

    def _sql(self, template: str) -> sql.Composed:
        return sql.SQL(template).format(
            progress=sql.Identifier(PROGRESS_TABLE),
            table=sql.Identifier(self.table),
            assignment=sql.SQL(self.assignment),
            needed=sql.SQL(self.needed),
        )


# 0004: nested events into the flat envelope (functions of that migration).
EVENT_ENVELOPE = Rewrite(
    "normalising events",
    "trajectory_events",
    "event = atlas_event_envelope(t.event)",
    "atlas_is_nested_event(t.event)",
)
# 0005: the derived session columns; setting one fires sessions_facts, which derives both.
SESSION_FACTS = Rewrite(
    "deriving session facts",
    "sessions",
    "learning_key = NULL",
    "t.learning_key IS DISTINCT FROM CASE WHEN jsonb_typeof(t.metadata) = 'object' "
    "THEN t.metadata ->> 'learning_key' END OR t.drift_alert IS DISTINCT FROM "
    "COALESCE(jsonb_typeof(t.metadata) = 'object' AND t.metadata -> 'drift_alert' = "
    "'true'::jsonb, false)",
)

_DELETE = sql.SQL("DELETE FROM {} WHERE version = %s").format(sql.Identifier(PROGRESS_TABLE))
_DROP_IF_EMPTY = sql.SQL(
    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM {table}) THEN DROP TABLE {table}; END IF; END $$"
).format(table=sql.Identifier(PROGRESS_TABLE))


@dataclass(frozen=True)
class Progress:
    """How far a data step has come: rows examined out of ``total``, and rows rewritten."""

    task: str
    done: int
    total: int
    changed: int


ProgressCallback = Callable[[Progress], None]
Connection = psycopg.Connection[tuple[object, ...]]


def run_rewrite(
    rewrite: Rewrite,
    conn: Connection,
    version: int,
    *,
    batch_size: int,
    progress: ProgressCallback | None,
) -> None:
    """Rewrite the rows ``rewrite`` names, in place, in batches.

    ``conn`` must be in autocommit mode; each batch of ``batch_size`` rows
    (keyset on ``id``) is its own transaction. ``progress`` is called once
    before the first batch and after each one; an exception it raises stops
    the step, which the next call resumes after the last committed batch.
    """
    conn.execute(_CREATE_TABLE)
    conn.execute(rewrite._sql(_START), {"version": version})
    row = conn.execute(_CURSOR, (version,)).fetchone()
    assert row is not None  # inserted just above, or by the interrupted run
    after, upper, done, total, changed = cast(tuple[int, int, int, int, int], row)
    if progress is not None:
        progress(Progress(rewrite.task, done, total, changed))
    batch = rewrite._sql(_BATCH)
    while True:
        params = {"after": after, "upper": upper, "size": batch_size, "version": version}
        result = conn.execute(batch, params).fetchone()
        assert result is not None
        count, after, done, changed = cast(tuple[int, int, int, int], result)
        if count == 0:
            return
        if progress is not None:
            progress(Progress(rewrite.task, done, total, changed))


def normalise_events(
    conn: Connection, version: int, *, batch_size: int, progress: ProgressCallback | None
) -> None:
    """Lift every nested trajectory event into the flat envelope (migration 0004's data step)."""
    run_rewrite(EVENT_ENVELOPE, conn, version, batch_size=batch_size, progress=progress)


def derive_session_facts(
    conn: Connection, version: int, *, batch_size: int, progress: ProgressCallback | None
) -> None:
    """Fill ``sessions.learning_key`` and ``drift_alert`` of stored rows (0005's data step)."""
    run_rewrite(SESSION_FACTS, conn, version, batch_size=batch_size, progress=progress)


def finish_step(conn: Connection, version: int) -> None:
    """Forget the step's cursor (inside the transaction that records its migration)."""
    found = conn.execute(sql.SQL("SELECT to_regclass({})").format(sql.Literal(PROGRESS_TABLE)))
    if found.fetchone() == (None,):
        return
    conn.execute(_DELETE, (version,))
    conn.execute(_DROP_IF_EMPTY)
