"""Database handles: a connection pool with its settings, sync and async twins.

``Database.open()`` / ``await AsyncDatabase.open()`` resolve the URL (explicit,
environment, config file, or the embedded server), check or apply the schema
through one short-lived probe connection (which also yields precise errors:
refused, wrong password, missing database), then open a pool that honours
``min_connections`` / ``max_connections`` and hands out connections with
``statement_timeout`` already set, and resets each connection when it is returned.

The preparation is plain synchronous code shared by both twins; the async
twin runs it in a worker thread so the event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout
from typing_extensions import TypedDict, Unpack

from atlas.config.database_url import resolve_database_url
from atlas.config.loader import load_config
from atlas.config.models import AtlasConfig
from atlas.errors import DatabaseUnavailable
from atlas.storage.connection import (
    ConnectionSettings,
    configure_connection,
    connect,
    translate_errors,
)
from atlas.storage.embedded import ensure_embedded
from atlas.storage.migrate import check_schema, ensure_current, schema_status
from atlas.storage.standby import is_standby

__all__ = ["AsyncDatabase", "Database", "PoolOverrides", "prepare", "resolve_settings"]


class PoolOverrides(TypedDict, total=False):
    """Storage settings a caller may give directly, over the configured ones (None = keep)."""

    min_connections: int | None
    max_connections: int | None
    statement_timeout_seconds: float | None
    connect_timeout_seconds: float | None


def _pool_options(settings: ConnectionSettings) -> dict[str, Any]:
    """What the sync and async pools share: sizes, timeouts, and opening on demand."""
    return {
        "kwargs": settings.connect_kwargs(),
        "min_size": settings.min_connections,
        "max_size": settings.max_connections,
        "timeout": settings.connect_timeout_seconds,
        "name": "arc-atlas",
        "open": False,
    }


def resolve_settings(
    url: str | None = None,
    *,
    config: AtlasConfig | None = None,
    config_path: str | os.PathLike[str] | None = None,
    **overrides: Unpack[PoolOverrides],
) -> ConnectionSettings:
    """Work out where to connect, starting the embedded server when nothing is configured.

    ``overrides`` replace storage settings (``min_connections=2``...). Raises
    :class:`~atlas.errors.ConfigError` for a bad config file and
    :class:`~atlas.errors.EmbeddedServerError` when the embedded server fails.
    """
    if config is None and config_path is not None:
        config = load_config(config_path)
    resolved = resolve_database_url(url, config)
    storage = config.storage if config is not None else None
    if resolved.is_embedded:
        settings = ConnectionSettings.from_config(replace(resolved, url=ensure_embedded()), storage)
        settings = replace(settings, embedded=True)
    else:
        settings = ConnectionSettings.from_config(resolved, storage)
    cleaned: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    return replace(settings, **cleaned) if cleaned else settings


def prepare(settings: ConnectionSettings, *, migrate: bool, check: bool = True) -> None:
    """Connect once: bring the schema up to date (writers, embedded) or check it (readers).

    Either way the version is read first; DDL runs only when migrations are
    pending (see :func:`~atlas.storage.migrate.ensure_current`).
    """
    with connect(settings) as conn:
        if migrate or settings.embedded:
            # arc-atlas owns the embedded database, so it keeps it current itself.
            with translate_errors(settings.display_url):
                ensure_current(conn, settings.display_url)
        elif check:
            with translate_errors(settings.display_url):
                status = schema_status(conn)
                # Asked only when behind: whom the message sends to `db upgrade`.
                standby = not status.up_to_date and is_standby(conn)
                check_schema(status, settings.display_url, standby=standby)


def _pool_timeout_message(settings: ConnectionSettings) -> str:
    return (
        f"No connection to {settings.display_url} became free within "
        f"{settings.connect_timeout_seconds:g} s (max_connections={settings.max_connections}): "
        "raise storage.max_connections or run fewer queries at once."
    )


class Database:
    """A synchronous connection pool to an arc-atlas database.

    Use as a context manager, or call :meth:`close` when done::

        with Database.open("postgresql://atlas:atlas@localhost:5433/atlas") as db:
            with db.connection() as conn:
                conn.execute("SELECT count(*) FROM sessions")
    """

    def __init__(self, pool: ConnectionPool[psycopg.Connection[Any]], settings: ConnectionSettings):
        self._pool = pool
        self.settings = settings

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        config: AtlasConfig | None = None,
        config_path: str | os.PathLike[str] | None = None,
        migrate: bool = False,
        check_schema: bool = True,
        **overrides: Unpack[PoolOverrides],
    ) -> Database:
        """Open a pool; ``migrate=True`` applies pending migrations first (writers do).

        Raises :class:`~atlas.errors.DatabaseUnavailable` when the server cannot be
        reached and :class:`~atlas.errors.SchemaOutOfDate` when a reader finds
        migrations pending.
        """
        settings = resolve_settings(url, config=config, config_path=config_path, **overrides)
        prepare(settings, migrate=migrate, check=check_schema)
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            settings.url,
            configure=configure_connection,
            reset=_reset_connection,
            **_pool_options(settings),
        )
        try:
            pool.open(wait=True, timeout=settings.connect_timeout_seconds)
        except PoolTimeout as exc:
            pool.close()
            raise DatabaseUnavailable(_pool_timeout_message(settings)) from exc
        return cls(pool, settings)

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """Borrow a pooled connection (autocommit; use ``conn.transaction()`` to group writes)."""
        # PoolTimeout is an OperationalError: it must leave the pool before
        # translate_errors sees it, or it reads as a vague "unavailable".
        try:
            with self._pool.connection() as conn, translate_errors(self.settings.display_url):
                yield conn
        except PoolTimeout as exc:
            raise DatabaseUnavailable(_pool_timeout_message(self.settings)) from exc

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncDatabase:
    """The asyncio twin of :class:`Database`."""

    def __init__(
        self, pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]], settings: ConnectionSettings
    ):
        self._pool = pool
        self.settings = settings

    @classmethod
    async def open(
        cls,
        url: str | None = None,
        *,
        config: AtlasConfig | None = None,
        config_path: str | os.PathLike[str] | None = None,
        migrate: bool = False,
        check_schema: bool = True,
        **overrides: Unpack[PoolOverrides],
    ) -> AsyncDatabase:
        """Open an async pool; see :meth:`Database.open` for arguments and errors."""
        settings = await asyncio.to_thread(
            resolve_settings, url, config=config, config_path=config_path, **overrides
        )
        await asyncio.to_thread(prepare, settings, migrate=migrate, check=check_schema)
        pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            settings.url,
            configure=_configure_async,
            reset=_reset_async,
            **_pool_options(settings),
        )
        try:
            await pool.open(wait=True, timeout=settings.connect_timeout_seconds)
        except PoolTimeout as exc:
            await pool.close()
            raise DatabaseUnavailable(_pool_timeout_message(settings)) from exc
        return cls(pool, settings)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """Borrow a pooled connection (autocommit; use ``conn.transaction()`` to group writes)."""
        try:
            async with self._pool.connection() as conn:
                with translate_errors(self.settings.display_url):
                    yield conn
        except PoolTimeout as exc:
            raise DatabaseUnavailable(_pool_timeout_message(self.settings)) from exc

    async def close(self) -> None:
        """Close every pooled connection."""
        await self._pool.close()

    async def __aenter__(self) -> AsyncDatabase:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def _configure_async(conn: psycopg.AsyncConnection[Any]) -> None:
    configure_connection(conn)


# A borrower may change its session (``SET statement_timeout = 0``, autocommit
# off); the pool keeps the connection, so without this the next borrower would
# inherit it. RESET ALL returns every setting to its start-up value, which
# includes the ``options=-c statement_timeout=...`` of connect_kwargs().
def _reset_connection(conn: psycopg.Connection[Any]) -> None:
    if not conn.autocommit:
        conn.autocommit = True
    conn.execute("RESET ALL")


async def _reset_async(conn: psycopg.AsyncConnection[Any]) -> None:
    if not conn.autocommit:
        await conn.set_autocommit(True)
    await conn.execute("RESET ALL")
