"""Where to read from: URLs and open handles, sync and async twins, inside an event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from atlas.storage import AsyncDatabase, Database
from atlas.training_data import (
    count_training_sessions,
    count_training_sessions_async,
    get_session_by_id,
    get_session_by_id_async,
    get_training_sessions,
    get_training_sessions_async,
    paginate_sessions,
    paginate_sessions_sync,
)

FILTERS: dict[str, Any] = {"learning_key": "data-cleanup", "min_reward": 0.5}
WHERE = "metadata ->> 'learning_key' = 'data-cleanup' AND (reward_stats ->> 'score')::float >= 0.5"


def _ids(traces: list[Any]) -> list[int]:
    return [t.session_id for t in traces]


@contextmanager
def _url(url: str) -> Iterator[Any]:
    yield url


@contextmanager
def _database(url: str) -> Iterator[Any]:
    with Database.open(url) as db:
        yield db


@contextmanager
def _connection(url: str) -> Iterator[Any]:
    with psycopg.connect(url) as conn:
        yield conn
        assert not conn.closed, "a caller's connection must stay open"


@contextmanager
def _pool(url: str) -> Iterator[Any]:
    with ConnectionPool(url, min_size=1, max_size=1, open=False) as pool:
        yield pool


SYNC_HANDLES = [
    pytest.param(_url, id="url"),
    pytest.param(_database, id="Database"),
    pytest.param(_connection, id="Connection"),
    pytest.param(_pool, id="ConnectionPool"),
]


@pytest.mark.parametrize("opener", SYNC_HANDLES)
def test_sync_functions_read_through_any_handle(seeded_url, oracle, opener):
    with opener(seeded_url) as handle:
        traces = get_training_sessions(handle, **FILTERS)
        assert count_training_sessions(handle, **FILTERS) == len(traces)
        assert get_session_by_id(session_id=traces[0].session_id, db_url=handle) == traces[0]
    assert _ids(traces) == oracle(WHERE + " AND review_status = 'approved'")


@pytest.mark.parametrize("opener", SYNC_HANDLES)
def test_sync_paginator_reads_through_any_handle(seeded_url, oracle, opener):
    with opener(seeded_url) as handle:
        batches = list(paginate_sessions_sync(handle, batch_size=4, **FILTERS))
    assert _ids([t for batch in batches for t in batch]) == oracle(
        WHERE + " AND review_status = 'approved'"
    )


def test_an_open_database_serves_many_calls(seeded_url):
    with Database.open(seeded_url) as db:
        first = get_training_sessions(db, limit=3)
        again = get_training_sessions(db, limit=3)
    assert first == again


@asynccontextmanager
async def _async_url(url: str) -> AsyncIterator[Any]:
    yield url


@asynccontextmanager
async def _async_database(url: str) -> AsyncIterator[Any]:
    db = await AsyncDatabase.open(url)
    try:
        yield db
    finally:
        await db.close()


@asynccontextmanager
async def _async_connection(url: str) -> AsyncIterator[Any]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        yield conn


@asynccontextmanager
async def _async_pool(url: str) -> AsyncIterator[Any]:
    async with AsyncConnectionPool(url, min_size=1, max_size=1, open=False) as pool:
        yield pool


ASYNC_HANDLES = [
    pytest.param(_async_url, id="url"),
    pytest.param(_async_database, id="AsyncDatabase"),
    pytest.param(_async_connection, id="AsyncConnection"),
    pytest.param(_async_pool, id="AsyncConnectionPool"),
]


@pytest.mark.parametrize("opener", ASYNC_HANDLES)
def test_async_twins_return_the_same_traces_as_the_sync_functions(seeded_url, opener):
    expected = get_training_sessions(seeded_url, **FILTERS)

    async def read() -> tuple[list[Any], int, Any]:
        async with opener(seeded_url) as handle:
            traces = await get_training_sessions_async(handle, **FILTERS)
            count = await count_training_sessions_async(handle, **FILTERS)
            one = await get_session_by_id_async(session_id=expected[0].session_id, db_url=handle)
        return traces, count, one

    traces, count, one = asyncio.run(read())
    assert traces == expected
    assert count == len(expected)
    assert one == expected[0]


@pytest.mark.parametrize("opener", ASYNC_HANDLES)
def test_async_paginator_with_a_handle_and_filters(seeded_url, oracle, opener):
    async def read() -> list[list[Any]]:
        async with opener(seeded_url) as handle:
            return [batch async for batch in paginate_sessions(handle, batch_size=4, **FILTERS)]

    batches = asyncio.run(read())
    assert _ids([t for batch in batches for t in batch]) == oracle(
        WHERE + " AND review_status = 'approved'"
    )
    assert [len(b) for b in batches[:-1]] == [4] * (len(batches) - 1)


def test_sync_functions_work_inside_a_running_event_loop(seeded_url, oracle):
    async def notebook_cell() -> tuple[list[Any], int, Any]:
        traces = get_training_sessions(seeded_url, **FILTERS)
        count = count_training_sessions(seeded_url, **FILTERS)
        one = get_session_by_id(session_id=traces[0].session_id, db_url=seeded_url)
        return traces, count, one

    traces, count, one = asyncio.run(notebook_cell())
    assert _ids(traces) == oracle(WHERE + " AND review_status = 'approved'")
    assert (count, one) == (len(traces), traces[0])


def test_sync_paginator_works_inside_a_running_event_loop(seeded_url):
    async def notebook_cell() -> list[int]:
        return [len(b) for b in paginate_sessions_sync(seeded_url, batch_size=5, **FILTERS)]

    sizes = asyncio.run(notebook_cell())
    assert sum(sizes) == count_training_sessions(seeded_url, **FILTERS)


def test_an_async_handle_given_to_a_sync_function_is_refused_clearly(seeded_url):
    async def misuse() -> None:
        async with _async_connection(seeded_url) as conn:
            get_training_sessions(conn)

    with pytest.raises(TypeError, match=r"AsyncConnection: .*\(use the \*_async functions"):
        asyncio.run(misuse())


def test_a_sync_handle_given_to_an_async_function_is_refused_clearly(seeded_url):
    with (
        psycopg.connect(seeded_url) as conn,
        pytest.raises(TypeError, match=r"from Connection: .*\(use the synchronous functions"),
    ):
        asyncio.run(get_training_sessions_async(conn))
