"""Where the query functions read from: a URL, a config, or a handle the caller holds.

The first argument of every query function is a URL (None: the configured
database, else the embedded one), a :class:`~atlas.storage.Database` /
:class:`~atlas.storage.AsyncDatabase`, a psycopg connection or a psycopg_pool
pool. ``config=`` is a config file (only its ``storage`` and
``runtime_safety`` sections are read), an :class:`~atlas.config.AtlasConfig`
or atlas-sdk's :class:`~atlas.config.StorageConfig`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from atlas.config.loader import load_reader_config
from atlas.config.models import AtlasConfig, StorageConfig
from atlas.storage.connection import configure_connection, connect, translate_errors
from atlas.storage.database import AsyncDatabase, Database, prepare, resolve_settings

__all__ = [
    "AsyncTarget",
    "ConfigArg",
    "Spawn",
    "SyncTarget",
    "connection",
    "connection_async",
    "connections",
    "looks_like_database",
    "reader_config",
]

SyncTarget = str | Database | psycopg.Connection[Any] | ConnectionPool[Any] | None
AsyncTarget = str | AsyncDatabase | psycopg.AsyncConnection[Any] | AsyncConnectionPool[Any] | None
# A config file, a whole config, or atlas-sdk's way: a StorageConfig alone.
ConfigArg = AtlasConfig | StorageConfig | str | os.PathLike[str] | None
Spawn = Callable[[], contextlib.AbstractContextManager[psycopg.Connection[Any]]]


def reader_config(config: ConfigArg) -> AtlasConfig | None:
    """The config a reader uses, from any form ``config=`` takes."""
    if config is None or isinstance(config, AtlasConfig):
        return config
    if isinstance(config, StorageConfig):
        return AtlasConfig(storage=config)
    return load_reader_config(config)


def looks_like_database(value: object) -> bool:
    """Whether ``value`` could be where to read from (not a session id in disguise)."""
    if value is None or (isinstance(value, str) and not value.strip().lstrip("-").isdigit()):
        return True
    handles = (Database, AsyncDatabase, psycopg.Connection, psycopg.AsyncConnection)
    return isinstance(value, (*handles, ConnectionPool, AsyncConnectionPool))


@contextlib.contextmanager
def connections(
    target: SyncTarget, config: AtlasConfig | None
) -> Iterator[tuple[psycopg.Connection[Any], Spawn | None, int]]:
    """A connection to ``target``, a way to open more, and how many more it allows.

    The exporter reads pages on extra connections; a bare psycopg connection
    offers none, and a pool only what its size leaves beside the first.
    """
    if isinstance(target, Database):
        room = target.settings.max_connections - 1
        with target.connection() as conn:
            yield conn, (target.connection if room > 0 else None), room
    elif isinstance(target, psycopg.Connection):
        yield target, None, 0
    elif isinstance(target, ConnectionPool):
        room = (target.max_size or 1) - 1
        with target.connection() as conn:
            yield conn, (target.connection if room > 0 else None), room
    elif target is None or isinstance(target, str):
        settings = resolve_settings(target, config=config)
        prepare(settings, migrate=False)
        with connect(settings) as conn, translate_errors(settings.display_url):
            yield conn, lambda: connect(settings), 1 << 16
    else:
        raise TypeError(
            f"Cannot read from {type(target).__name__}: pass a URL, an atlas.storage.Database, "
            "a psycopg Connection or a psycopg_pool ConnectionPool (use the *_async functions "
            "for async handles)."
        )


@contextlib.contextmanager
def connection(target: SyncTarget, config: AtlasConfig | None) -> Iterator[psycopg.Connection[Any]]:
    """One connection to ``target`` (see :func:`connections`)."""
    with connections(target, config) as (conn, _, _):
        yield conn


@contextlib.asynccontextmanager
async def connection_async(
    target: AsyncTarget, config: AtlasConfig | None
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """One async connection to ``target``: the caller's handle, or a new one for a URL."""
    if isinstance(target, AsyncDatabase):
        async with target.connection() as conn:
            yield conn
    elif isinstance(target, psycopg.AsyncConnection):
        yield target
    elif isinstance(target, AsyncConnectionPool):
        async with target.connection() as conn:
            yield conn
    elif target is None or isinstance(target, str):
        settings = await asyncio.to_thread(resolve_settings, target, config=config)
        await asyncio.to_thread(prepare, settings, migrate=False)
        with translate_errors(settings.display_url):
            conn = await psycopg.AsyncConnection.connect(settings.url, **settings.connect_kwargs())
            configure_connection(conn)
            async with conn:
                yield conn
    else:
        raise TypeError(
            f"Cannot read from {type(target).__name__}: pass a URL, an "
            "atlas.storage.AsyncDatabase, a psycopg AsyncConnection or a psycopg_pool "
            "AsyncConnectionPool (use the synchronous functions for sync handles)."
        )
