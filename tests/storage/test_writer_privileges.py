"""Writers check the schema version before they migrate.

A role that may read and write rows but not create objects in the schema
(PostgreSQL 15's default for everyone but the schema's owner) writes whole
sessions while the schema is current, and gets one clear error naming
``arc-atlas db upgrade`` when it is not.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from atlas.errors import SchemaOutOfDate
from atlas.storage.migrate import MIGRATIONS_TABLE, available_migrations, ensure_current
from atlas.storage.urls import mask_url
from atlas.storage.writer import SessionWriter
from atlas.storage.writes import AttemptRecord, StepRecord

LATEST = available_migrations()[-1].version


@pytest.fixture
def writer_role_url(db_url: str) -> Iterator[str]:
    """A login role with data rights on every table and sequence, and no CREATE anywhere."""
    role = f"atlas_writer_{uuid.uuid4().hex[:8]}"
    name = sql.Identifier(role)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(name))
        # PostgreSQL 15 already revokes it; said again so older servers test the same thing.
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(name))
        conn.execute(sql.SQL(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}"
        ).format(name))  # fmt: skip
        conn.execute(
            sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(name)
        )
    yield psycopg.conninfo.make_conninfo(db_url, user=role)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(name))
        conn.execute(sql.SQL("DROP ROLE {}").format(name))


def _forget_latest_migration(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE version = %s").format(sql.Identifier(MIGRATIONS_TABLE)),
            (LATEST,),
        )


def test_the_role_really_cannot_create(writer_role_url: str) -> None:
    with (
        psycopg.connect(writer_role_url) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (x int)")


def test_a_role_without_create_writes_a_whole_session(writer_role_url: str, db_url: str) -> None:
    with SessionWriter.open(writer_role_url) as writer:
        sid = writer.create_session("task", {"k": 1})
        writer.record_plan(sid, {"steps": [{"id": 1}]})
        writer.record_step(
            sid, StepRecord(1, output="out", attempts=[AttemptRecord(1)], guidance=["note"])
        )
        writer.append_events(sid, [{"event_type": "x"}])
        writer.record_reward(sid, reward={"score": 0.5}, reward_stats={"score": 0.5})
        writer.update_metadata(sid, {"m": 2})
        writer.set_review_status([sid], "approved", reviewer="test")
        writer.finalize_session(sid, status="succeeded", final_answer="done")
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT status, review_status, final_answer FROM sessions WHERE id = %s", (sid,)
        ).fetchone()
    assert row == ("succeeded", "approved", "done")


def test_a_current_schema_costs_no_ddl(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        # Any DDL (or write) would now fail with ReadOnlySqlTransaction.
        conn.execute("SET default_transaction_read_only = on")
        assert ensure_current(conn, mask_url(db_url)) == ()


def test_a_role_without_create_is_told_to_run_db_upgrade(writer_role_url: str, db_url: str) -> None:
    _forget_latest_migration(db_url)
    with pytest.raises(SchemaOutOfDate) as caught:
        SessionWriter.open(writer_role_url)
    message = str(caught.value)
    assert message.startswith(f"Database {mask_url(writer_role_url)} is at schema version ")
    assert "may not change the schema (permission denied for schema public)" in message
    assert f"run `arc-atlas db upgrade --database-url {mask_url(writer_role_url)}`" in message


def test_the_owner_still_applies_what_is_pending(db_url: str) -> None:
    _forget_latest_migration(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        applied: Any = ensure_current(conn, mask_url(db_url))
    assert [m.version for m in applied] == [LATEST]
