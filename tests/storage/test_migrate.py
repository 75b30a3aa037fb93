"""Versioned migrations on a real server: the schema they build, idempotence, concurrency."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from storage_schema import INDEXES, SCHEMA, columns, indexes

from atlas.errors import SchemaOutOfDate
from atlas.storage.migrate import (
    MIGRATIONS_TABLE,
    Migration,
    apply_migrations,
    available_migrations,
    check_schema,
    schema_status,
    status_from_rows,
)


@pytest.fixture
def conn(empty_db_url: str) -> Any:
    with psycopg.connect(empty_db_url, autocommit=True) as connection:
        yield connection


def test_empty_database_gets_the_eight_tables(conn: psycopg.Connection[Any]) -> None:
    apply_migrations(conn)
    assert columns(conn) == SCHEMA


def test_empty_database_gets_the_named_indexes(conn: psycopg.Connection[Any]) -> None:
    apply_migrations(conn)
    found = indexes(conn)
    assert {name: found.get(name) for name in INDEXES} == INDEXES


def test_every_child_table_is_keyed_by_session(conn: psycopg.Connection[Any]) -> None:
    apply_migrations(conn)
    children = ["plans", "step_results", "step_attempts", "guidance_notes", "trajectory_events"]
    rows = conn.execute(
        "SELECT conrelid::regclass::text FROM pg_constraint WHERE contype = 'f' "
        "AND confrelid = 'sessions'::regclass ORDER BY 1"
    ).fetchall()
    assert [row[0] for row in rows] == sorted(children)


def test_first_apply_returns_every_migration(conn: psycopg.Connection[Any]) -> None:
    applied = apply_migrations(conn)
    assert applied == available_migrations()
    assert [m.version for m in applied] == [1, 2, 3, 4, 5, 6]


def test_second_apply_is_a_no_op(conn: psycopg.Connection[Any]) -> None:
    apply_migrations(conn)
    before = conn.execute(f"SELECT version, applied_at FROM {MIGRATIONS_TABLE}").fetchall()
    assert apply_migrations(conn) == ()
    assert conn.execute(f"SELECT version, applied_at FROM {MIGRATIONS_TABLE}").fetchall() == before


def test_status_of_an_empty_database(conn: psycopg.Connection[Any]) -> None:
    status = schema_status(conn)
    assert (status.applied, status.pending, status.current_version) == (
        (),
        available_migrations(),
        0,
    )
    assert not status.up_to_date


def test_status_after_upgrade(conn: psycopg.Connection[Any]) -> None:
    apply_migrations(conn)
    status = schema_status(conn)
    assert [(m.version, m.name) for m in status.applied] == [
        (m.version, m.name) for m in available_migrations()
    ]
    assert (status.pending, status.modified, status.up_to_date) == ((), (), True)


def test_status_reports_partial_upgrade(conn: psycopg.Connection[Any]) -> None:
    apply_migrations(conn)
    latest = available_migrations()[-1].version
    conn.execute(f"DELETE FROM {MIGRATIONS_TABLE} WHERE version = {latest}")
    status = schema_status(conn)
    assert ([m.version for m in status.pending], status.current_version) == ([latest], latest - 1)


def test_concurrent_upgraders_apply_each_migration_once(empty_db_url: str) -> None:
    start = threading.Barrier(2)
    results: list[tuple[Migration, ...]] = []

    def upgrade() -> None:
        with psycopg.connect(empty_db_url, autocommit=True) as own:
            start.wait()
            results.append(apply_migrations(own))

    threads = [threading.Thread(target=upgrade) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(r) for r in results) == [0, len(available_migrations())]
    with psycopg.connect(empty_db_url) as conn:
        versions = conn.execute(f"SELECT version FROM {MIGRATIONS_TABLE} ORDER BY 1").fetchall()
    assert [v for (v,) in versions] == [m.version for m in available_migrations()]


def test_check_schema_names_the_command(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(SchemaOutOfDate) as caught:
        check_schema(schema_status(conn), "postgresql://u:***@h/db")
    assert str(caught.value) == (
        "Database postgresql://u:***@h/db has no arc-atlas schema yet: run "
        "`arc-atlas db upgrade --database-url postgresql://u:***@h/db` "
        "(writers apply it automatically)."
    )


def test_check_schema_names_the_versions() -> None:
    first = available_migrations()[0]
    row = (first.version, first.name, first.checksum, None, 1)
    needs = available_migrations()[-1].version
    with pytest.raises(
        SchemaOutOfDate, match=f"is at schema version 1, this arc-atlas needs {needs}"
    ):
        check_schema(status_from_rows([row]), "db")


def test_edited_migration_is_reported_as_modified() -> None:
    rows = [(m.version, m.name, "0" * 64, None, 1) for m in available_migrations()]
    status = status_from_rows(rows)
    every = tuple(m.version for m in available_migrations())
    assert (status.modified, status.up_to_date) == (every, True)


def test_migration_files_are_numbered_without_gaps() -> None:
    versions = [m.version for m in available_migrations()]
    assert versions == list(range(1, len(versions) + 1))
