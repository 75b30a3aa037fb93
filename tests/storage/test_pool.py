"""Database / AsyncDatabase: pool sizes, statement_timeout on every pooled connection."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import psycopg
import pytest

from atlas.errors import DatabaseUnavailable, SchemaOutOfDate, StatementTimeout
from atlas.storage.database import AsyncDatabase, Database
from atlas.storage.migrate import schema_status

POOL = {"min_connections": 2, "max_connections": 3, "statement_timeout_seconds": 1.5}
COUNT_OURS = (
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE application_name = 'arc-atlas' AND datname = current_database()"
)


def timeouts(conns: list[psycopg.Connection[Any]]) -> list[Any]:
    return [c.execute("SHOW statement_timeout").fetchone() for c in conns]


def test_timeout_on_every_pooled_connection(db_url: str) -> None:
    with Database.open(db_url, **POOL) as db, contextlib.ExitStack() as stack:
        conns = [stack.enter_context(db.connection()) for _ in range(3)]
        assert len({c.info.backend_pid for c in conns}) == 3
        assert timeouts(conns) == [("1500ms",)] * 3


def test_timeout_holds_after_connections_are_reused(db_url: str) -> None:
    with Database.open(db_url, **POOL) as db:
        for _ in range(3):
            with contextlib.ExitStack() as stack:
                conns = [stack.enter_context(db.connection()) for _ in range(3)]
                assert timeouts(conns) == [("1500ms",)] * 3


def test_borrower_settings_do_not_leak_to_the_next(db_url: str) -> None:
    with Database.open(db_url, **POOL) as db:
        with contextlib.ExitStack() as stack:
            for _ in range(3):
                conn = stack.enter_context(db.connection())
                conn.execute("SET statement_timeout = 0")
                conn.execute("SET search_path = nowhere")
                conn.autocommit = False
        with contextlib.ExitStack() as stack:
            conns = [stack.enter_context(db.connection()) for _ in range(3)]
            assert timeouts(conns) == [("1500ms",)] * 3
            assert {c.execute("SHOW search_path").fetchone() for c in conns} == {
                ('"$user", public',)
            }
            assert all(c.autocommit for c in conns)


def test_max_connections_is_honoured(db_url: str) -> None:
    with Database.open(db_url, **POOL, connect_timeout_seconds=0.5) as db:
        with contextlib.ExitStack() as stack:
            conns = [stack.enter_context(db.connection()) for _ in range(3)]
            assert conns[0].execute(COUNT_OURS).fetchone() == (3,)
            with pytest.raises(DatabaseUnavailable) as caught, db.connection():
                pass
        assert "became free within 0.5 s (max_connections=3)" in str(caught.value)
        with db.connection() as conn:
            assert conn.execute(COUNT_OURS).fetchone() == (3,)


def test_min_connections_are_opened_up_front(db_url: str) -> None:
    with Database.open(db_url, **POOL) as db, db.connection() as conn:
        assert conn.execute(COUNT_OURS).fetchone() == (2,)


def test_timeout_cancels_a_long_statement(db_url: str) -> None:
    with (
        Database.open(db_url, **POOL) as db,
        pytest.raises(StatementTimeout),
        db.connection() as conn,
    ):
        conn.execute("SELECT pg_sleep(3)")


def test_reader_refuses_a_database_without_schema(empty_db_url: str) -> None:
    with pytest.raises(SchemaOutOfDate, match="has no arc-atlas schema yet"):
        Database.open(empty_db_url)


def test_reader_may_skip_the_schema_check(empty_db_url: str) -> None:
    with Database.open(empty_db_url, check_schema=False) as db, db.connection() as conn:
        assert not schema_status(conn).applied


def test_writer_applies_migrations(empty_db_url: str) -> None:
    with Database.open(empty_db_url, migrate=True) as db, db.connection() as conn:
        assert schema_status(conn).up_to_date


def test_url_from_the_environment(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATLAS_DATABASE_URL", db_url)
    with Database.open() as db:
        assert (db.settings.url, db.settings.source, db.settings.embedded) == (
            db_url,
            "ATLAS_DATABASE_URL",
            False,
        )


def test_pool_settings_from_a_config_file(db_url: str, tmp_path: Any) -> None:
    config = tmp_path / "atlas.yaml"
    config.write_text(
        f"storage:\n  database_url: '{db_url}'\n  min_connections: 1\n"
        "  max_connections: 2\n  statement_timeout_seconds: 0.25\n"
    )
    with Database.open(config_path=config) as db, db.connection() as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("250ms",)
        assert (db.settings.max_connections, db.settings.source) == (2, "storage.database_url")


async def scalar(conn: psycopg.AsyncConnection[Any], query: str) -> Any:
    row = await (await conn.execute(query)).fetchone()
    return row[0] if row else None


async def _async_pool_check(url: str) -> tuple[list[str], int, list[str]]:
    async with await AsyncDatabase.open(url, **POOL) as db:
        async with contextlib.AsyncExitStack() as stack:
            conns = [await stack.enter_async_context(db.connection()) for _ in range(3)]
            first = [await scalar(c, "SHOW statement_timeout") for c in conns]
            count = await scalar(conns[0], COUNT_OURS)
            for c in conns:
                await c.execute("SET statement_timeout = 0")
        async with contextlib.AsyncExitStack() as stack:
            conns = [await stack.enter_async_context(db.connection()) for _ in range(3)]
            again = [await scalar(c, "SHOW statement_timeout") for c in conns]
    return first, count, again


def test_async_pool_timeout_size_and_reset(db_url: str) -> None:
    first, count, again = asyncio.run(_async_pool_check(db_url))
    assert (first, count, again) == (["1500ms"] * 3, 3, ["1500ms"] * 3)


async def _async_exhaust(url: str) -> str:
    async with (
        await AsyncDatabase.open(url, **POOL, connect_timeout_seconds=0.5) as db,
        contextlib.AsyncExitStack() as stack,
    ):
        for _ in range(3):
            await stack.enter_async_context(db.connection())
        try:
            async with db.connection():
                pass
        except DatabaseUnavailable as exc:
            return str(exc)
    return "no error"


def test_async_max_connections_is_honoured(db_url: str) -> None:
    assert "(max_connections=3)" in asyncio.run(_async_exhaust(db_url))


async def _async_sleep_past_timeout(url: str) -> None:
    settings = {**POOL, "statement_timeout_seconds": 0.2}
    async with await AsyncDatabase.open(url, **settings) as db, db.connection() as conn:
        await conn.execute("SELECT pg_sleep(3)")


def test_async_timeout_cancels_a_long_statement(db_url: str) -> None:
    with pytest.raises(StatementTimeout):
        asyncio.run(_async_sleep_past_timeout(db_url))


def test_async_unreachable_server() -> None:
    with pytest.raises(DatabaseUnavailable, match=r"x:\*\*\*@127.0.0.1:1/db refused"):
        asyncio.run(AsyncDatabase.open("postgresql://x:secret@127.0.0.1:1/db"))
