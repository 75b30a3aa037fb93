"""Upgrading a database with nested events: batched, resumable, lossless, with progress."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from atlas.storage.events import original_event
from atlas.storage.migrate import Progress, apply_migrations, schema_status
from atlas.storage.normalise import PROGRESS_TABLE

# The tables as an older Atlas installation (or atlas-sdk) created them.
LEGACY_DDL = """
CREATE TABLE sessions (
    id SERIAL PRIMARY KEY, task TEXT NOT NULL, status TEXT NOT NULL, metadata JSONB,
    reward JSONB, reward_stats JSONB, created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE TABLE trajectory_events (
    id SERIAL PRIMARY KEY,
    session_id INTEGER REFERENCES sessions(id) ON DELETE CASCADE,
    event JSONB NOT NULL,
    created_at TIMESTAMPTZ DEFAULT NOW()
);
"""
EVENTS, BATCH = 53, 10


def legacy_event(n: int) -> dict[str, Any]:
    """Mostly atlas-sdk's IntermediateStep.model_dump(); every seventh event flat already."""
    if n % 7 == 0:
        return {"event_type": "reward", "actor": "judge", "payload": {"n": n}}
    return {
        "parent_id": f"p{n}",
        "function_ancestry": {"function_name": "step", "depth": n % 3},
        "payload": {
            "event_type": "TOOL_START" if n % 2 else "TOOL_END",
            "event_timestamp": 1_700_000_000 + n / 8,
            "name": f"tool-{n}",
            "metadata": {"actor": "student", "step_id": n % 4} if n % 5 else "unstructured",
            "data": {"input": f"question {n} — ünïcode", "output": None},
            "UUID": f"u{n}",
        },
    }


@pytest.fixture
def legacy(empty_db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An un-upgraded database holding EVENTS events, most of them nested."""
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(LEGACY_DDL)
        conn.execute("INSERT INTO sessions (task, status) VALUES ('t', 'succeeded')")
        conn.execute(
            "INSERT INTO trajectory_events (session_id, event) SELECT 1, e "
            "FROM unnest(%s::jsonb[]) WITH ORDINALITY AS u(e, n) ORDER BY n",
            ([Jsonb(legacy_event(n)) for n in range(EVENTS)],),
        )
        yield conn


def events(conn: psycopg.Connection[Any]) -> list[Any]:
    return [row[0] for row in conn.execute("SELECT event FROM trajectory_events ORDER BY id")]


def nested_left(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM trajectory_events WHERE atlas_is_nested_event(event)"
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_upgrade_lifts_every_nested_event(legacy: psycopg.Connection[Any]) -> None:
    apply_migrations(legacy, batch_size=BATCH)
    assert nested_left(legacy) == 0


def test_upgrade_loses_nothing(legacy: psycopg.Connection[Any]) -> None:
    before = events(legacy)
    apply_migrations(legacy, batch_size=BATCH)
    assert [original_event(e) for e in events(legacy)] == before


def test_event_type_filter_finds_lifted_events(legacy: psycopg.Connection[Any]) -> None:
    apply_migrations(legacy, batch_size=BATCH)
    row = legacy.execute(
        "SELECT count(*) FROM trajectory_events WHERE event->>'event_type' = 'TOOL_START'"
    ).fetchone()
    assert row == (sum(1 for n in range(EVENTS) if n % 7 and n % 2),)


def test_upgrade_reports_progress_per_batch(legacy: psycopg.Connection[Any]) -> None:
    seen: list[Progress] = []
    apply_migrations(legacy, batch_size=BATCH, progress=seen.append)
    # 0005's step reports too, after 0004's: its own task, its own counts.
    later = [p for p in seen if p.task != "normalising events"]
    seen = seen[: len(seen) - len(later)]
    assert {p.task for p in later} == {"deriving session facts"}
    nested = sum(1 for n in range(EVENTS) if n % 7)
    assert seen[0] == Progress("normalising events", 0, EVENTS, 0)
    assert seen[-1] == Progress("normalising events", EVENTS, EVENTS, nested)
    assert [p.done for p in seen] == [min(i * BATCH, EVENTS) for i in range(len(seen))]
    assert len(seen) == 1 + math.ceil(EVENTS / BATCH)


class Stop(Exception):
    pass


def stop_after(batches: int) -> Any:
    """A progress callback that interrupts the upgrade once ``batches`` batches have committed."""

    def progress(p: Progress) -> None:
        if p.done >= batches * BATCH:
            raise Stop

    return progress


def test_interrupted_upgrade_leaves_the_migration_pending(
    legacy: psycopg.Connection[Any],
) -> None:
    with pytest.raises(Stop):
        apply_migrations(legacy, batch_size=BATCH, progress=stop_after(2))
    # 0004 waits for its data step; the migrations after it have not run.
    assert [m.version for m in schema_status(legacy).pending] == [4, 5, 6]
    assert 0 < nested_left(legacy) < EVENTS


def test_interrupted_upgrade_resumes_where_it_stopped(legacy: psycopg.Connection[Any]) -> None:
    with pytest.raises(Stop):
        apply_migrations(legacy, batch_size=BATCH, progress=stop_after(2))
    seen: list[Progress] = []
    applied = apply_migrations(legacy, batch_size=BATCH, progress=seen.append)
    assert [m.version for m in applied] == [4, 5, 6]
    seen = [p for p in seen if p.task == "normalising events"]
    assert seen[0].done == 2 * BATCH
    assert seen[-1].done == EVENTS


def test_interrupted_upgrade_ends_complete_and_lossless(legacy: psycopg.Connection[Any]) -> None:
    before = events(legacy)
    with pytest.raises(Stop):
        apply_migrations(legacy, batch_size=BATCH, progress=stop_after(3))
    apply_migrations(legacy, batch_size=BATCH)
    assert nested_left(legacy) == 0
    assert [original_event(e) for e in events(legacy)] == before
    assert schema_status(legacy).up_to_date


def test_progress_table_is_dropped_when_done(legacy: psycopg.Connection[Any]) -> None:
    with pytest.raises(Stop):
        apply_migrations(legacy, batch_size=BATCH, progress=stop_after(1))
    apply_migrations(legacy, batch_size=BATCH)
    assert legacy.execute("SELECT to_regclass(%s)", (PROGRESS_TABLE,)).fetchone() == (None,)
