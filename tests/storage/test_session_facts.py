"""Migration 0005: sessions.learning_key and drift_alert follow metadata; the task-search index."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from atlas.storage.migrate import MIGRATIONS_TABLE, apply_migrations, schema_status
from atlas.storage.normalise import Progress
from atlas.training_data import SessionFilters
from atlas.training_data.filters import where_clause

FACTS = "SELECT learning_key, drift_alert FROM sessions WHERE id = %s"


def _insert(conn: psycopg.Connection[Any], metadata: object) -> int:
    row = conn.execute(
        "INSERT INTO sessions (task, status, metadata) VALUES ('t', 'succeeded', %s) RETURNING id",
        (None if metadata is None else Jsonb(metadata),),
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize(
    ("metadata", "facts"),
    [
        ({"learning_key": "k", "drift_alert": True}, ("k", True)),
        ({"learning_key": "k", "drift_alert": "true"}, ("k", False)),  # text is not JSON true
        ({"learning_key": 7}, ("7", False)),  # ->> gives the number's text, as readers read it
        ({}, (None, False)),
        ("not an object", (None, False)),
        ([1, 2], (None, False)),
        (None, (None, False)),
    ],
)
def test_insert_derives_the_facts(db_url: str, metadata: object, facts: tuple[object, ...]) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        sid = _insert(conn, metadata)
        assert conn.execute(FACTS, (sid,)).fetchone() == facts


def test_updates_follow_metadata_and_the_columns_cannot_drift(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        sid = _insert(conn, {"learning_key": "a"})
        conn.execute(
            "UPDATE sessions SET metadata = metadata || '{\"drift_alert\": true}' WHERE id = %s",
            (sid,),
        )
        assert conn.execute(FACTS, (sid,)).fetchone() == ("a", True)
        conn.execute(
            "UPDATE sessions SET learning_key = 'b', drift_alert = false WHERE id = %s", (sid,)
        )
        assert conn.execute(FACTS, (sid,)).fetchone() == ("a", True)
        conn.execute("UPDATE sessions SET review_status = 'approved' WHERE id = %s", (sid,))
        assert conn.execute(FACTS, (sid,)).fetchone() == ("a", True)


def test_the_upgrade_fills_stored_rows_in_batches_and_resumes(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        # Rows an older arc-atlas stored: no trigger, the columns at their defaults.
        conn.execute("ALTER TABLE sessions DISABLE TRIGGER sessions_facts")
        old = [
            _insert(conn, {"learning_key": f"k{i}", "drift_alert": i % 2 == 0}) for i in range(7)
        ]
        assert {conn.execute(FACTS, (i,)).fetchone() for i in old} == {(None, False)}
        conn.execute("ALTER TABLE sessions ENABLE TRIGGER sessions_facts")
        conn.execute(f"DELETE FROM {MIGRATIONS_TABLE} WHERE version = 5")
        seen: list[Progress] = []

        def stop_after_two(p: Progress) -> None:
            seen.append(p)
            if len(seen) == 3:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            apply_migrations(conn, batch_size=2, progress=stop_after_two)
        assert [m.version for m in schema_status(conn).pending] == [5]
        assert sum(conn.execute(FACTS, (i,)).fetchone() != (None, False) for i in old) == 4
        applied = apply_migrations(conn, batch_size=2, progress=seen.append)
        assert [m.version for m in applied] == [5]
        assert seen[-1].task == "deriving session facts"
        assert (seen[-1].done, seen[-1].total, seen[-1].changed) == (7, 7, 7)
        got = [conn.execute(FACTS, (i,)).fetchone() for i in old]
        assert got == [(f"k{i}", i % 2 == 0) for i in range(7)]
        assert apply_migrations(conn) == ()


def test_task_search_uses_the_trigram_index_where_pg_trgm_exists(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        available = conn.execute(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_trgm'"
        ).fetchone()
        index = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'sessions_task_trgm_idx'"
        ).fetchone()
        if not available or not available[0]:
            assert index is None
            pytest.skip("this server has no pg_trgm: task search is a scan here")
        assert index is not None and "gin_trgm_ops" in index[0]
        where, params = where_clause(SessionFilters.build(task_contains="Login_100%"), None)
        conn.execute("SET enable_seqscan = off")
        plan = conn.execute(
            psycopg.sql.SQL("EXPLAIN SELECT id FROM sessions s {}").format(where), params
        ).fetchall()
        assert "sessions_task_trgm_idx" in "\n".join(r[0] for r in plan)
