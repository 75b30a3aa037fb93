"""Training data straight from PostgreSQL: the public query functions, sync and async.

Every function takes where to read from as its first argument (``db_url``):
a URL, or an open handle to reuse connections across calls — a
:class:`~atlas.storage.Database` (sync) / :class:`~atlas.storage.AsyncDatabase`
(async), a psycopg connection, or a psycopg_pool pool. With no URL the
configured database is used (``ATLAS_DATABASE_URL``, the ``config=`` file's
storage block) or else the embedded one.

The signatures are a superset of atlas-sdk 0.1.16's ``atlas.training_data``:
its positional forms (``get_session_by_id(db_url, session_id)``,
``paginate_sessions(database, filters, *, batch_size, limit)``) work as well
as arc-atlas's own keyword forms, and ``config=`` takes a config file (only its
``storage`` and ``runtime_safety`` sections are read), an
:class:`~atlas.config.AtlasConfig` or atlas-sdk's
:class:`~atlas.config.StorageConfig`.

The synchronous functions are plain synchronous code (psycopg's sync
connection), so they work anywhere, including inside a running event loop
such as a Jupyter notebook.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from typing_extensions import Unpack

from atlas.runtime.traces import AtlasSessionTrace
from atlas.training_data.drivers import drive, drive_async
from atlas.training_data.flows import (
    by_id_plan,
    by_id_query,
    hidden_by_gate,
    hidden_by_status,
    pager_flow,
    pager_query,
    run_flow,
    run_flow_async,
    target_and_id,
)
from atlas.training_data.plan import count_plan
from atlas.training_data.query import (
    FILTER_KEYS,
    CountFilters,
    TrainingFilters,
    TrainingQuery,
    check_filter_names,
    count_query,
)
from atlas.training_data.targets import (
    AsyncTarget,
    ConfigArg,
    SyncTarget,
    connection,
    connection_async,
    reader_config,
)

__all__ = [
    "FILTER_KEYS",
    "CountFilters",
    "TrainingFilters",
    "TrainingQuery",
    "check_filter_names",
    "count_hidden_by_review_status",
    "count_training_sessions",
    "count_training_sessions_async",
    "get_session_by_id",
    "get_session_by_id_async",
    "get_training_sessions",
    "get_training_sessions_async",
    "hidden_by_gate",
    "paginate_sessions",
    "paginate_sessions_sync",
]

DEFAULT_BATCH_SIZE = 100
# get_training_sessions reads in pages of this size, so one query never holds
# more than this many sessions' rows at once.
_COLLECT_PAGE = 500


def count_hidden_by_review_status(
    db_url: SyncTarget = None, *, config: ConfigArg = None, **filters: Unpack[CountFilters]
) -> dict[str, int]:
    """Sessions matching ``filters`` that the review gate keeps out, per review status.

    Takes the filters of :func:`count_training_sessions`; {} when some
    sessions pass the gate or the gate is open. The exporter's hint uses it
    to name a way that brings the hidden sessions back.
    """
    cfg = reader_config(config)
    query = count_query("count_hidden_by_review_status", filters, cfg)
    with connection(db_url, cfg) as conn:
        return hidden_by_status(conn, query)


def get_training_sessions(
    db_url: SyncTarget = None, *, config: ConfigArg = None, **filters: Unpack[TrainingFilters]
) -> list[AtlasSessionTrace]:
    """Sessions matching the filters, newest first, as :class:`AtlasSessionTrace`.

    Filters (all evaluated in SQL, before ``limit``; see
    :class:`~atlas.training_data.TrainingFilters`): ``min_reward``,
    ``max_reward``, ``learning_key`` (one or several), ``status_filters``,
    ``review_status_filters``, ``created_after`` (inclusive), ``created_before``
    (exclusive), ``session_ids``, ``limit``, ``offset``. Loading:
    ``include_trajectory_events``, ``include_learning_data``,
    ``trajectory_event_limit`` (first N events per session). Statuses are
    case-insensitive (``SUCCEEDED``, ``Approved``).

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
    db_url: AsyncTarget = None, *, config: ConfigArg = None, **filters: Unpack[TrainingFilters]
) -> list[AtlasSessionTrace]:
    """The asyncio twin of :func:`get_training_sessions`."""
    batches = paginate_sessions(db_url, batch_size=_COLLECT_PAGE, config=config, **filters)
    return [trace async for batch in batches for trace in batch]


def get_session_by_id(
    db_url: SyncTarget | int = None,
    session_id: int | SyncTarget = None,
    *,
    include_trajectory_events: bool = True,
    include_learning_data: bool = True,
    trajectory_event_limit: int | None = None,
    config: ConfigArg = None,
) -> AtlasSessionTrace:
    """One session by id, whatever its review status; raises :class:`SessionNotFound`.

    Called as atlas-sdk does (``get_session_by_id(db_url, 42)``), as arc-atlas
    always allowed (``get_session_by_id(42, db_url)``, ``get_session_by_id(42)``
    for the configured database) or by keyword: the int is the id. Raises
    :class:`~atlas.errors.InvalidFilter` when the arguments do not say which
    is which (two ints, no int).
    """
    target, sid = target_and_id(db_url, session_id)
    query = by_id_query(
        sid, include_trajectory_events, include_learning_data, trajectory_event_limit
    )
    with connection(target, reader_config(config)) as conn:
        trace: AtlasSessionTrace = drive(conn, by_id_plan(query, sid))
    return trace


async def get_session_by_id_async(
    db_url: AsyncTarget | int = None,
    session_id: int | AsyncTarget = None,
    *,
    include_trajectory_events: bool = True,
    include_learning_data: bool = True,
    trajectory_event_limit: int | None = None,
    config: ConfigArg = None,
) -> AtlasSessionTrace:
    """The asyncio twin of :func:`get_session_by_id` (the same argument orders)."""
    target, sid = target_and_id(db_url, session_id)
    query = by_id_query(
        sid, include_trajectory_events, include_learning_data, trajectory_event_limit
    )
    async with connection_async(target, reader_config(config)) as conn:
        trace: AtlasSessionTrace = await drive_async(conn, by_id_plan(query, sid))
    return trace


def count_training_sessions(
    db_url: SyncTarget = None, *, config: ConfigArg = None, **filters: Unpack[CountFilters]
) -> int:
    """How many sessions :func:`get_training_sessions` would return without a limit."""
    cfg = reader_config(config)
    query = count_query("count_training_sessions", filters, cfg)
    with connection(db_url, cfg) as conn:
        (count,) = drive(conn, count_plan(query.filters, [query.gate]))
    return int(count)


async def count_training_sessions_async(
    db_url: AsyncTarget = None, *, config: ConfigArg = None, **filters: Unpack[CountFilters]
) -> int:
    """The asyncio twin of :func:`count_training_sessions`."""
    cfg = reader_config(config)
    query = count_query("count_training_sessions", filters, cfg)
    async with connection_async(db_url, cfg) as conn:
        (count,) = await drive_async(conn, count_plan(query.filters, [query.gate]))
    return int(count)


async def paginate_sessions(
    database: AsyncTarget = None,
    filters: Mapping[str, Any] | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    config: ConfigArg = None,
    db_url: AsyncTarget = None,
    **filter_arguments: Unpack[TrainingFilters],
) -> AsyncIterator[list[AtlasSessionTrace]]:
    """Yield lists of up to ``batch_size`` sessions, newest first, until none are left.

    Two forms: atlas-sdk's ``paginate_sessions(database, {"min_reward": 0.8},
    batch_size=..., limit=...)`` and arc-atlas's ``paginate_sessions(db_url=...,
    batch_size=..., min_reward=0.8)``. The filters are those of
    :func:`get_training_sessions` (``FILTER_KEYS``); an unknown key raises
    :class:`~atlas.errors.InvalidFilter` naming it, and a ``limit`` given both
    ways means the smaller. ``database`` (or ``db_url``) is a URL or an open
    :class:`~atlas.storage.AsyncDatabase`, async connection or pool. Pages are
    keyset-paged on ``(created_at, id)``: sessions written while you iterate
    never cause a duplicate or a skip, and memory is bounded by one batch.
    """
    cfg = reader_config(config)
    target, query, size = pager_query(
        database, db_url, filters, dict(filter_arguments), batch_size, cfg
    )
    async with connection_async(target, cfg) as conn:
        async for page in run_flow_async(conn, pager_flow(query, size)):
            yield page


def paginate_sessions_sync(
    database: SyncTarget = None,
    filters: Mapping[str, Any] | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    config: ConfigArg = None,
    db_url: SyncTarget = None,
    **filter_arguments: Unpack[TrainingFilters],
) -> Iterator[list[AtlasSessionTrace]]:
    """The synchronous twin of :func:`paginate_sessions` (a plain generator, both forms)."""
    cfg = reader_config(config)
    target, query, size = pager_query(
        database, db_url, filters, dict(filter_arguments), batch_size, cfg
    )
    with connection(target, cfg) as conn:
        yield from run_flow(conn, pager_flow(query, size))
