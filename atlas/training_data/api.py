"""Training data straight from PostgreSQL: the public query functions, sync and async.

Every function takes where to read from as its first argument (``db_url``):
a URL, or an open handle to reuse connections across calls — a
:class:`~atlas.storage.Database` (sync) / :class:`~atlas.storage.AsyncDatabase`
(async), a psycopg connection, or a psycopg_pool pool. With no URL the
configured database is used (``ATLAS_DATABASE_URL``, the ``config=`` file's
storage block) or else the embedded one.

The synchronous functions are plain synchronous code (psycopg's sync
connection), so they work anywhere, including inside a running event loop
such as a Jupyter notebook.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from atlas.config.loader import load_config
from atlas.config.models import AtlasConfig
from atlas.errors import InvalidFilter, ReviewGateWarning, SessionNotFound, TraceDecodeWarning
from atlas.runtime.traces import AtlasSessionTrace
from atlas.storage.connection import configure_connection, connect, translate_errors
from atlas.storage.database import AsyncDatabase, Database, prepare, resolve_settings
from atlas.training_data.assembly import LoadOptions
from atlas.training_data.drivers import drive, drive_async
from atlas.training_data.filters import SessionFilters
from atlas.training_data.plan import Cursor, Page, count_plan, page_plan
from atlas.training_data.review_gate import ReviewGate, resolve_review_gate

__all__ = [
    "TrainingQuery",
    "count_training_sessions",
    "count_training_sessions_async",
    "get_session_by_id",
    "get_session_by_id_async",
    "get_training_sessions",
    "get_training_sessions_async",
    "paginate_sessions",
    "paginate_sessions_sync",
]

DEFAULT_BATCH_SIZE = 100
# get_training_sessions reads in pages of this size, so one query never holds
# more than this many sessions' rows at once.
_COLLECT_PAGE = 500

SyncTarget = str | Database | psycopg.Connection[Any] | ConnectionPool[Any] | None
AsyncTarget = str | AsyncDatabase | psycopg.AsyncConnection[Any] | AsyncConnectionPool[Any] | None
ConfigArg = AtlasConfig | str | os.PathLike[str] | None


@dataclass(frozen=True)
class TrainingQuery:
    """A validated query: filters, review gate, what to load, and the window."""

    filters: SessionFilters
    gate: ReviewGate
    options: LoadOptions
    limit: int | None = None
    offset: int = 0

    @classmethod
    def build(
        cls,
        *,
        config: AtlasConfig | None = None,
        min_reward: Any = None,
        max_reward: Any = None,
        learning_key: str | Sequence[str] | None = None,
        status_filters: str | Sequence[str] | None = None,
        review_status_filters: str | Sequence[str] | None = None,
        include_all_review_statuses: bool = False,
        created_after: Any = None,
        created_before: Any = None,
        session_ids: int | Sequence[int] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        include_trajectory_events: bool = True,
        include_learning_data: bool = True,
        trajectory_event_limit: int | None = None,
    ) -> TrainingQuery:
        """Validate every argument; raises :class:`~atlas.errors.InvalidFilter`."""
        for name, value, minimum in (
            ("limit", limit, 0),
            ("offset", offset, 0),
            ("trajectory_event_limit", trajectory_event_limit, 0),
        ):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < minimum
            ):
                raise InvalidFilter(f"{name} must be a whole number >= {minimum}, not {value!r}.")
        return cls(
            filters=SessionFilters.build(
                min_reward=min_reward,
                max_reward=max_reward,
                learning_key=learning_key,
                status_filters=status_filters,
                created_after=created_after,
                created_before=created_before,
                session_ids=session_ids,
            ),
            gate=resolve_review_gate(
                review_status_filters, include_all=include_all_review_statuses, config=config
            ),
            options=LoadOptions(
                include_trajectory_events=include_trajectory_events,
                include_learning_data=include_learning_data,
                trajectory_event_limit=trajectory_event_limit,
            ),
            limit=limit,
            offset=offset or 0,
        )

    def pages(self, page_size: int) -> Iterator[tuple[int, int]]:
        """(size, offset) of successive pages; the offset applies to the first only."""
        remaining = self.limit
        offset = self.offset
        while remaining is None or remaining > 0:
            size = page_size if remaining is None else min(page_size, remaining)
            yield size, offset
            offset = 0
            if remaining is not None:
                remaining -= size


def _config(config: ConfigArg) -> AtlasConfig | None:
    if config is None or isinstance(config, AtlasConfig):
        return config
    return load_config(config)


Spawn = Callable[[], contextlib.AbstractContextManager[psycopg.Connection[Any]]]


@contextlib.contextmanager
def _connections(
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
def _connection(
    target: SyncTarget, config: AtlasConfig | None
) -> Iterator[psycopg.Connection[Any]]:
    with _connections(target, config) as (conn, _, _):
        yield conn


@contextlib.asynccontextmanager
async def _connection_async(
    target: AsyncTarget, config: AtlasConfig | None
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
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


def _hidden_message(hidden: int, gate: ReviewGate) -> str:
    return (
        f"No sessions returned: the review gate ({gate.describe()} only, from {gate.source}) "
        f"hid {hidden} matching session(s). Approve them (`arc-atlas review approve ...`), "
        "pass review_status_filters=['pending', 'approved'] (or --include-status / "
        "--include-all-statuses), or set ATLAS_REVIEW_REQUIRE_APPROVAL=0 for local experiments."
    )


def _report(traces: list[AtlasSessionTrace], hidden: int, query: TrainingQuery) -> None:
    if hidden > 0:
        warnings.warn(_hidden_message(hidden, query.gate), ReviewGateWarning, stacklevel=3)
    damaged = sum(1 for trace in traces if trace.load_warnings)
    if damaged:
        warnings.warn(
            f"{damaged} session(s) held values that could not be fully decoded; they were "
            "kept as found (see trace.load_warnings).",
            TraceDecodeWarning,
            stacklevel=3,
        )


def _gate_hid(counts: list[int]) -> int:
    """Sessions the gate hid, when the gate is why nothing came back (else 0).

    ``counts`` is [matches under the gate, matches without it]. When some
    sessions pass the gate but none was returned, the offset skipped them:
    the gate is not the reason and must not be blamed.
    """
    gated, ungated = counts
    return ungated if gated == 0 else 0


def hidden_by_gate(conn: psycopg.Connection[Any], query: TrainingQuery) -> int:
    """How many matching sessions the review gate hid, when it is why nothing came back.

    Call it only when a read returned nothing. One pipeline of two counts;
    0 when the gate is open, when ``limit`` was 0, or when some sessions
    passed the gate (then the offset, not the gate, left nothing).
    """
    if query.limit == 0 or query.gate.is_open:
        return 0
    return _gate_hid(drive(conn, count_plan(query.filters, [query.gate, None])))


def get_training_sessions(
    db_url: SyncTarget = None, *, config: ConfigArg = None, **filters: Any
) -> list[AtlasSessionTrace]:
    """Sessions matching the filters, newest first, as :class:`AtlasSessionTrace`.

    Filters (all evaluated in SQL, before ``limit``): ``min_reward``,
    ``max_reward``, ``learning_key`` (one or several), ``status_filters``,
    ``review_status_filters``, ``created_after`` (inclusive), ``created_before``
    (exclusive), ``session_ids``, ``limit``, ``offset``. Loading:
    ``include_trajectory_events``, ``include_learning_data``,
    ``trajectory_event_limit`` (first N events per session).

    Only approved sessions are returned unless the review gate is widened
    (see :func:`~atlas.training_data.resolve_review_gate`); when it hides
    every match a :class:`~atlas.errors.ReviewGateWarning` says how many and how
    to include them. Raises :class:`~atlas.errors.InvalidFilter` for bad
    filters and :class:`~atlas.errors.DatabaseUnavailable` when the database
    cannot be reached.
    """
    batches = paginate_sessions_sync(db_url, batch_size=_COLLECT_PAGE, config=config, **filters)
    return [trace for batch in batches for trace in batch]


async def get_training_sessions_async(
    db_url: AsyncTarget = None, *, config: ConfigArg = None, **filters: Any
) -> list[AtlasSessionTrace]:
    """The asyncio twin of :func:`get_training_sessions`."""
    batches = paginate_sessions(db_url, batch_size=_COLLECT_PAGE, config=config, **filters)
    return [trace async for batch in batches for trace in batch]


def _by_id_query(session_id: int, options: dict[str, Any]) -> TrainingQuery:
    if isinstance(session_id, bool) or not isinstance(session_id, int):
        raise InvalidFilter(f"session_id must be an integer, not {session_id!r}.")
    # An explicit id is a lookup, not a training-data selection: no review gate.
    return TrainingQuery.build(
        session_ids=[session_id], include_all_review_statuses=True, limit=1, **options
    )


def get_session_by_id(
    session_id: int, db_url: SyncTarget = None, *, config: ConfigArg = None, **options: Any
) -> AtlasSessionTrace:
    """One session by id, whatever its review status; raises :class:`SessionNotFound`.

    ``options``: ``include_trajectory_events``, ``include_learning_data``,
    ``trajectory_event_limit``.
    """
    query = _by_id_query(session_id, options)
    with _connection(db_url, _config(config)) as conn:
        page: Page = drive(conn, page_plan(query.filters, query.gate, query.options, size=1))
    if not page.traces:
        raise SessionNotFound(f"Session {session_id} is not in the database.")
    _report(page.traces, 0, query)
    return page.traces[0]


async def get_session_by_id_async(
    session_id: int, db_url: AsyncTarget = None, *, config: ConfigArg = None, **options: Any
) -> AtlasSessionTrace:
    """The asyncio twin of :func:`get_session_by_id`."""
    query = _by_id_query(session_id, options)
    async with _connection_async(db_url, _config(config)) as conn:
        page: Page = await drive_async(
            conn, page_plan(query.filters, query.gate, query.options, size=1)
        )
    if not page.traces:
        raise SessionNotFound(f"Session {session_id} is not in the database.")
    _report(page.traces, 0, query)
    return page.traces[0]


def _count_query(filters: dict[str, Any], cfg: AtlasConfig | None) -> TrainingQuery:
    unsupported = {"limit", "offset"} & filters.keys()
    if unsupported:
        raise InvalidFilter(f"count_training_sessions does not take {sorted(unsupported)[0]}.")
    return TrainingQuery.build(config=cfg, **filters)


def count_training_sessions(
    db_url: SyncTarget = None, *, config: ConfigArg = None, **filters: Any
) -> int:
    """How many sessions :func:`get_training_sessions` would return without a limit."""
    cfg = _config(config)
    query = _count_query(filters, cfg)
    with _connection(db_url, cfg) as conn:
        (count,) = drive(conn, count_plan(query.filters, [query.gate]))
    return int(count)


async def count_training_sessions_async(
    db_url: AsyncTarget = None, *, config: ConfigArg = None, **filters: Any
) -> int:
    """The asyncio twin of :func:`count_training_sessions`."""
    cfg = _config(config)
    query = _count_query(filters, cfg)
    async with _connection_async(db_url, cfg) as conn:
        (count,) = await drive_async(conn, count_plan(query.filters, [query.gate]))
    return int(count)


def _batch_size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidFilter(f"batch_size must be a whole number >= 1, not {value!r}.")
    return value


async def paginate_sessions(
    db_url: AsyncTarget = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    config: ConfigArg = None,
    **filters: Any,
) -> AsyncIterator[list[AtlasSessionTrace]]:
    """Yield lists of up to ``batch_size`` sessions, newest first, until none are left.

    Takes the filters of :func:`get_training_sessions`. Pages are keyset-paged
    on ``(created_at, id)``: sessions written while you iterate never cause a
    duplicate or a skip, and memory is bounded by one batch. ``db_url`` may be
    an open :class:`~atlas.storage.AsyncDatabase`, async connection or pool.
    """
    size = _batch_size(batch_size)
    cfg = _config(config)
    query = TrainingQuery.build(config=cfg, **filters)
    returned = 0
    async with _connection_async(db_url, cfg) as conn:
        cursor: Cursor | None = None
        for page_size, offset in query.pages(size):
            plan = page_plan(
                query.filters,
                query.gate,
                query.options,
                size=page_size,
                after=cursor,
                offset=offset,
            )
            page: Page = await drive_async(conn, plan)
            if page.traces:
                returned += len(page.traces)
                _report(page.traces, 0, query)
                yield page.traces
            cursor = page.cursor
            if cursor is None:
                break
        if not returned and query.limit != 0 and not query.gate.is_open:
            counts = await drive_async(conn, count_plan(query.filters, [query.gate, None]))
            _report([], _gate_hid(counts), query)


def paginate_sessions_sync(
    db_url: SyncTarget = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    config: ConfigArg = None,
    **filters: Any,
) -> Iterator[list[AtlasSessionTrace]]:
    """The synchronous twin of :func:`paginate_sessions` (a plain generator)."""
    size = _batch_size(batch_size)
    cfg = _config(config)
    query = TrainingQuery.build(config=cfg, **filters)
    returned = 0
    with _connection(db_url, cfg) as conn:
        cursor: Cursor | None = None
        for page_size, offset in query.pages(size):
            plan = page_plan(
                query.filters,
                query.gate,
                query.options,
                size=page_size,
                after=cursor,
                offset=offset,
            )
            page: Page = drive(conn, plan)
            if page.traces:
                returned += len(page.traces)
                _report(page.traces, 0, query)
                yield page.traces
            cursor = page.cursor
            if cursor is None:
                break
        if not returned:
            _report([], hidden_by_gate(conn, query), query)
