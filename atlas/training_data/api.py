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

import asyncio
import contextlib
import difflib
import inspect
import os
import warnings
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from atlas.config.loader import load_reader_config
from atlas.config.models import REVIEW_STATUSES, AtlasConfig, StorageConfig
from atlas.errors import InvalidFilter, ReviewGateWarning, SessionNotFound, TraceDecodeWarning
from atlas.runtime.traces import AtlasSessionTrace
from atlas.storage.connection import configure_connection, connect, translate_errors
from atlas.storage.database import AsyncDatabase, Database, prepare, resolve_settings
from atlas.training_data.assembly import LoadOptions
from atlas.training_data.drivers import drive, drive_async
from atlas.training_data.filters import SessionFilters, whole_number
from atlas.training_data.plan import Cursor, Page, count_plan, page_plan
from atlas.training_data.review_gate import ReviewGate, gate_hint, resolve_review_gate

__all__ = [
    "TrainingQuery",
    "count_hidden_by_review_status",
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
# A config file, a whole config, or atlas-sdk's way: a StorageConfig alone.
ConfigArg = AtlasConfig | StorageConfig | str | os.PathLike[str] | None


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
        """Validate every argument, once; raises :class:`~atlas.errors.InvalidFilter`.

        ``limit``, ``offset`` and ``trajectory_event_limit`` are real integers
        (not bools) from 0 to PostgreSQL's bigint maximum; the ``include_*``
        switches are bools (``"no"`` would otherwise read as true); the
        session filters are checked by :meth:`SessionFilters.build` and review
        statuses by :func:`~atlas.config.models.parse_review_statuses`. The
        error's ``parameter`` names the argument at fault.
        """
        counts = {
            name: None if value is None else whole_number(value, name, minimum=0)
            for name, value in (
                ("limit", limit),
                ("offset", offset),
                ("trajectory_event_limit", trajectory_event_limit),
            )
        }
        for name, switch in (
            ("include_all_review_statuses", include_all_review_statuses),
            ("include_trajectory_events", include_trajectory_events),
            ("include_learning_data", include_learning_data),
        ):
            if not isinstance(switch, bool):
                raise InvalidFilter(
                    f"{name} must be True or False, not {switch!r}.", parameter=name
                )
        filters = SessionFilters.build(
            min_reward=min_reward,
            max_reward=max_reward,
            learning_key=learning_key,
            status_filters=status_filters,
            created_after=created_after,
            created_before=created_before,
            session_ids=session_ids,
        )
        return cls(
            filters=filters,
            gate=_gate(review_status_filters, include_all_review_statuses, config),
            options=LoadOptions(
                include_trajectory_events=include_trajectory_events,
                include_learning_data=include_learning_data,
                trajectory_event_limit=counts["trajectory_event_limit"],
            ),
            limit=counts["limit"],
            offset=counts["offset"] or 0,
        )

    @classmethod
    def from_filters(
        cls, filters: Mapping[str, Any], *, config: AtlasConfig | None = None
    ) -> TrainingQuery:
        """:meth:`build` from a mapping of filters, such as a public function's ``**filters``.

        A name that is not one of :data:`FILTER_KEYS` (a typo such as
        ``min_rewrd``) raises :class:`~atlas.errors.InvalidFilter` naming it
        and the filters there are, instead of a ``TypeError`` about ``build``.
        """
        check_filter_names(filters)
        return cls.build(config=config, **filters)

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


# The filters TrainingQuery.build takes, by name: the keys a filters mapping may hold.
FILTER_KEYS: tuple[str, ...] = tuple(
    name for name in inspect.signature(TrainingQuery.build).parameters if name != "config"
)


def check_filter_names(names: Iterable[str]) -> None:
    """Raise :class:`~atlas.errors.InvalidFilter` for the first name that is not a filter.

    The message names it, the closest filter when one is close, and every
    filter there is (:data:`FILTER_KEYS`).
    """
    for name in names:
        if name not in FILTER_KEYS:
            close = difflib.get_close_matches(name, FILTER_KEYS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise InvalidFilter(
                f"Unknown filter {name!r}{hint}: use {', '.join(FILTER_KEYS)}.", parameter=name
            )


def _gate(
    statuses: str | Sequence[str] | None, include_all: bool, config: AtlasConfig | None
) -> ReviewGate:
    """The review gate, with a bad ``review_status_filters`` reported under its name."""
    if statuses is not None and not isinstance(statuses, (str, Iterable)):
        raise InvalidFilter(
            "review_status_filters must be a status or a list of statuses, not "
            f"{type(statuses).__name__}.",
            parameter="review_status_filters",
        )
    try:
        return resolve_review_gate(statuses, include_all=include_all, config=config)
    except InvalidFilter as exc:
        if statuses is None or exc.parameter is not None:
            raise  # from the environment, which names itself
        raise InvalidFilter(str(exc), parameter="review_status_filters") from None


def _config(config: ConfigArg) -> AtlasConfig | None:
    if config is None or isinstance(config, AtlasConfig):
        return config
    if isinstance(config, StorageConfig):
        return AtlasConfig(storage=config)
    return load_reader_config(config)


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


def _hidden_message(hidden: Mapping[str, int], gate: ReviewGate) -> str:
    return (
        f"No sessions returned: the review gate ({gate.describe()} only, from {gate.source}) "
        f"hid {sum(hidden.values())} matching session(s): {gate_hint(gate, hidden, cli=False)}"
    )


def _report(
    traces: list[AtlasSessionTrace], hidden: Mapping[str, int], query: TrainingQuery
) -> None:
    if hidden:
        warnings.warn(_hidden_message(hidden, query.gate), ReviewGateWarning, stacklevel=3)
    damaged = sum(1 for trace in traces if trace.load_warnings)
    if damaged:
        warnings.warn(
            f"{damaged} session(s) held values that could not be fully decoded; they were "
            "kept as found (see trace.load_warnings).",
            TraceDecodeWarning,
            stacklevel=3,
        )


def _outside(gate: ReviewGate) -> list[str]:
    return [s for s in REVIEW_STATUSES if s not in (gate.statuses or ())]


def _hidden_gates(gate: ReviewGate) -> list[ReviewGate | None]:
    """Gates to count under: the gate itself, none, and each status it keeps out."""
    return [gate, None, *(ReviewGate((s,), "hint") for s in _outside(gate))]


def _gate_hid(counts: list[int], gate: ReviewGate) -> dict[str, int]:
    """Sessions the gate hid, per review status, when the gate is why nothing came back.

    ``counts`` answers :func:`_hidden_gates`. When some sessions pass the gate
    but none was returned, the offset skipped them: the gate is not the
    reason and must not be blamed ({}). Sessions whose review status is none
    of :data:`REVIEW_STATUSES` (other tools' values) are counted as "other".
    """
    gated, ungated, *per_status = counts
    if gated:
        return {}
    hidden = {s: n for s, n in zip(_outside(gate), per_status, strict=True) if n}
    other = ungated - sum(per_status)
    if other > 0:
        hidden["other"] = other
    return hidden


def hidden_by_status(conn: psycopg.Connection[Any], query: TrainingQuery) -> dict[str, int]:
    """Matching sessions the review gate hid, per review status, when it is why nothing came back.

    Call it only when a read returned nothing. One pipeline of counts; {}
    when the gate is open, when ``limit`` was 0, or when some sessions passed
    the gate (then the offset, not the gate, left nothing).
    """
    if query.limit == 0 or query.gate.is_open:
        return {}
    counts = drive(conn, count_plan(query.filters, _hidden_gates(query.gate)))
    return _gate_hid(counts, query.gate)


def hidden_by_gate(conn: psycopg.Connection[Any], query: TrainingQuery) -> int:
    """How many matching sessions the review gate hid (see :func:`hidden_by_status`)."""
    return sum(hidden_by_status(conn, query).values())


def count_hidden_by_review_status(
    db_url: SyncTarget = None, *, config: ConfigArg = None, **filters: Any
) -> dict[str, int]:
    """Sessions matching ``filters`` that the review gate keeps out, per review status.

    Takes the filters of :func:`count_training_sessions`; {} when some
    sessions pass the gate or the gate is open. The exporter's hint uses it
    to name a way that brings the hidden sessions back.
    """
    cfg = _config(config)
    query = _count_query(filters, cfg)
    with _connection(db_url, cfg) as conn:
        return hidden_by_status(conn, query)


def get_training_sessions(
    db_url: SyncTarget = None, *, config: ConfigArg = None, **filters: Any
) -> list[AtlasSessionTrace]:
    """Sessions matching the filters, newest first, as :class:`AtlasSessionTrace`.

    Filters (all evaluated in SQL, before ``limit``): ``min_reward``,
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
    db_url: AsyncTarget = None, *, config: ConfigArg = None, **filters: Any
) -> list[AtlasSessionTrace]:
    """The asyncio twin of :func:`get_training_sessions`."""
    batches = paginate_sessions(db_url, batch_size=_COLLECT_PAGE, config=config, **filters)
    return [trace async for batch in batches for trace in batch]


def _is_id(value: object) -> bool:
    # bool is an int subclass, but True is never meant as session 1.
    return isinstance(value, int) and not isinstance(value, bool)


def _looks_like_database(value: object) -> bool:
    if value is None or (isinstance(value, str) and not value.strip().lstrip("-").isdigit()):
        return True
    handles = (Database, AsyncDatabase, psycopg.Connection, psycopg.AsyncConnection)
    return isinstance(value, (*handles, ConnectionPool, AsyncConnectionPool))


def _target_and_id(first: Any, second: Any) -> tuple[Any, int]:
    """(database, session id) from a call in either order, decided by type.

    atlas-sdk orders them ``(db_url, session_id)``, arc-atlas used
    ``(session_id, db_url)``: an int (never a bool) is the id, the other the
    database. Raises :class:`InvalidFilter` when that does not decide it.
    """
    if _is_id(second) and not _is_id(first):
        return first, second
    if _is_id(first) and not _is_id(second):
        return second, first
    if _is_id(first):
        raise InvalidFilter(
            f"get_session_by_id got two integers ({first!r} and {second!r}): pass the "
            "database and the session id, e.g. get_session_by_id(db_url, 42)."
        )
    bad = next((v for v in (second, first) if not _looks_like_database(v)), second)
    raise InvalidFilter(f"session_id must be an integer, not {bad!r}.")


def _by_id_query(options: dict[str, Any]) -> TrainingQuery:
    session_id = options.pop("session_id")
    # An explicit id is a lookup, not a training-data selection: no review gate.
    return TrainingQuery.build(
        session_ids=[session_id], include_all_review_statuses=True, limit=1, **options
    )


def _not_found(session_id: int) -> SessionNotFound:
    return SessionNotFound(f"Session {session_id} is not in the database.")


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
    target, sid = _target_and_id(db_url, session_id)
    query = _by_id_query(
        {
            "session_id": sid,
            "include_trajectory_events": include_trajectory_events,
            "include_learning_data": include_learning_data,
            "trajectory_event_limit": trajectory_event_limit,
        }
    )
    with _connection(target, _config(config)) as conn:
        page: Page = drive(conn, page_plan(query.filters, query.gate, query.options, size=1))
    if not page.traces:
        raise _not_found(sid)
    _report(page.traces, {}, query)
    return page.traces[0]


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
    target, sid = _target_and_id(db_url, session_id)
    query = _by_id_query(
        {
            "session_id": sid,
            "include_trajectory_events": include_trajectory_events,
            "include_learning_data": include_learning_data,
            "trajectory_event_limit": trajectory_event_limit,
        }
    )
    async with _connection_async(target, _config(config)) as conn:
        page: Page = await drive_async(
            conn, page_plan(query.filters, query.gate, query.options, size=1)
        )
    if not page.traces:
        raise _not_found(sid)
    _report(page.traces, {}, query)
    return page.traces[0]


def _count_query(filters: dict[str, Any], cfg: AtlasConfig | None) -> TrainingQuery:
    unsupported = {"limit", "offset"} & filters.keys()
    if unsupported:
        name = sorted(unsupported)[0]
        raise InvalidFilter(f"count_training_sessions does not take {name}.", parameter=name)
    return TrainingQuery.from_filters(filters, config=cfg)


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
    # The page query's LIMIT: a bigint like every count.
    return whole_number(value, "batch_size", minimum=1)


def _pager_query(
    database: Any,
    db_url: Any,
    filters: Mapping[str, Any] | None,
    limit: int | None,
    arguments: dict[str, Any],
    config: ConfigArg,
) -> tuple[Any, TrainingQuery, AtlasConfig | None]:
    """Where to read and what, from either pagination form.

    atlas-sdk's form is ``(database, filters)`` with a mapping of filters;
    arc-atlas's is ``(db_url=..., min_reward=..., ...)``. Both may be mixed as
    long as no filter is given twice. Unknown keys raise :class:`InvalidFilter`
    naming the key; a ``limit`` in both places means the smaller.
    """
    if database is not None and db_url is not None:
        raise TypeError("paginate_sessions got both database and db_url: pass one of them.")
    if filters is not None and not isinstance(filters, Mapping):
        raise TypeError(
            f"filters must be a mapping such as {{'min_reward': 0.8}}, not "
            f"{type(filters).__name__}."
        )
    given = dict(filters or {})
    check_filter_names([*given, *arguments])
    for key in given.keys() & arguments.keys():
        if given[key] != arguments[key]:
            raise InvalidFilter(f"Filter {key!r} is given twice, with different values.")
    merged = {**given, **arguments}
    caps = [c for c in (merged.get("limit"), limit) if c is not None]
    if caps:
        # Validated by TrainingQuery.build; min() only needs them comparable.
        merged["limit"] = min(caps) if all(_is_id(c) for c in caps) else caps[-1]
    cfg = _config(config)
    return (
        (database if database is not None else db_url),
        TrainingQuery.build(config=cfg, **merged),
        cfg,
    )


async def paginate_sessions(
    database: AsyncTarget = None,
    filters: Mapping[str, Any] | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    limit: int | None = None,
    config: ConfigArg = None,
    db_url: AsyncTarget = None,
    **filter_arguments: Any,
) -> AsyncIterator[list[AtlasSessionTrace]]:
    """Yield lists of up to ``batch_size`` sessions, newest first, until none are left.

    Two forms: atlas-sdk's ``paginate_sessions(database, {"min_reward": 0.8},
    batch_size=..., limit=...)`` and arc-atlas's ``paginate_sessions(db_url=...,
    batch_size=..., min_reward=0.8)``. The filters are those of
    :func:`get_training_sessions` (``FILTER_KEYS``); an unknown key raises
    :class:`~atlas.errors.InvalidFilter` naming it. ``database`` (or
    ``db_url``) is a URL or an open :class:`~atlas.storage.AsyncDatabase`,
    async connection or pool. Pages are keyset-paged on ``(created_at, id)``:
    sessions written while you iterate never cause a duplicate or a skip, and
    memory is bounded by one batch.
    """
    size = _batch_size(batch_size)
    target, query, cfg = _pager_query(database, db_url, filters, limit, filter_arguments, config)
    returned = 0
    async with _connection_async(target, cfg) as conn:
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
                _report(page.traces, {}, query)
                yield page.traces
            cursor = page.cursor
            if cursor is None:
                break
        if not returned and query.limit != 0 and not query.gate.is_open:
            counts = await drive_async(conn, count_plan(query.filters, _hidden_gates(query.gate)))
            _report([], _gate_hid(counts, query.gate), query)


def paginate_sessions_sync(
    database: SyncTarget = None,
    filters: Mapping[str, Any] | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    limit: int | None = None,
    config: ConfigArg = None,
    db_url: SyncTarget = None,
    **filter_arguments: Any,
) -> Iterator[list[AtlasSessionTrace]]:
    """The synchronous twin of :func:`paginate_sessions` (a plain generator, both forms)."""
    size = _batch_size(batch_size)
    target, query, cfg = _pager_query(database, db_url, filters, limit, filter_arguments, config)
    returned = 0
    with _connection(target, cfg) as conn:
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
                _report(page.traces, {}, query)
                yield page.traces
            cursor = page.cursor
            if cursor is None:
                break
        if not returned:
            _report([], hidden_by_status(conn, query), query)
