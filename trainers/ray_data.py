"""Sessions as a Ray Dataset: one read task per shard, every task in one database snapshot.

>>> from trainers.ray_data import read_sessions
>>> ds = read_sessions(db_url="postgresql://...", kind="rl", parallelism=8, min_reward=0.5)
>>> ds.write_parquet("s3://bucket/rl/")

:func:`read_sessions` validates the filters and resolves the review gate in
the calling process (the driver). It then opens a read-only REPEATABLE READ
transaction, shares its snapshot (:func:`~atlas.training_data.snapshot.share_snapshot`)
and lists the matching session ids in it, split into ``parallelism`` disjoint
shards by the ``shard="I/N"`` hash (8 bytes per session). The transaction
stays open. Ray Data runs lazily: each read task, whenever and wherever it
runs, opens its own connection, joins that snapshot
(:func:`~atlas.training_data.snapshot.join_snapshot`) and reads its shard's
sessions, a page at a time. So the dataset is the selection as it was when
:func:`read_sessions` was called, whatever is written meanwhile, and reading
it twice gives the same rows. A task that reaches another server of the same
database (a standby behind a load balancer) reads the same listed sessions
there, once that server has replayed as far as the driver's snapshot. Blocks
are Arrow tables with the fixed schema of :mod:`trainers.columns`
(:func:`trainers.parquet.arrow_schema`).

The transaction stays open as long as the dataset, or any dataset made from
it (``ds.map(...)``, ``ds.random_shuffle()``), is alive in this process: it
ends when they are garbage-collected, or at exit. A task that runs after it
ended (the server restarted, an administrator ended the connection) fails
with :class:`~atlas.errors.InvalidFilter` ("snapshot ... is not open"),
never reading another snapshot. Needs the ``ray`` extra
(``pip install 'arc-atlas[ray]'``). See ``docs/ray.md``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import weakref
from array import array
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import psycopg
from psycopg import sql
from typing_extensions import Unpack

from atlas.errors import AtlasError, InvalidFilter, MissingExtra
from atlas.storage.connection import ConnectionSettings, connect
from atlas.storage.database import Database, prepare, resolve_settings
from atlas.training_data.assembly import LoadOptions
from atlas.training_data.drivers import drive
from atlas.training_data.filters import (
    MAX_SHARDS,
    SHARD_OF,
    SessionFilters,
    where_clause,
    whole_number,
)
from atlas.training_data.flows import explain_empty
from atlas.training_data.plan import Page, page_plan
from atlas.training_data.query import TrainingFilters, TrainingQuery
from atlas.training_data.review_gate import ReviewGate
from atlas.training_data.snapshot import (
    SharedSnapshot,
    check_snapshot_id,
    import_snapshot,
    join_snapshot,
    share_snapshot,
)
from atlas.training_data.targets import ConfigArg, reader_config
from trainers.columns import DEFAULT_ROW_GROUP_SIZE, iter_row_groups, iter_rows

if TYPE_CHECKING:
    import pyarrow as pa
    import ray.data

__all__ = ["ShardRead", "SnapshotHolder", "list_shards", "read_sessions", "read_shard"]

logger = logging.getLogger(__name__)

# The kinds a shard can make on its own: one row per session or per step.
# GRPO groups and DPO pairs need sessions from every shard at once.
RayKind = Literal["sessions", "rl", "flat"]
RAY_KINDS: tuple[str, ...] = ("sessions", "rl", "flat")
# Sessions per database page inside a task (as the API's paginate_sessions).
DEFAULT_PAGE_SIZE = 100
# Ids the driver fetches per round trip while it lists the selection.
_LIST_FETCH = 10_000


@dataclass(frozen=True)
class ShardRead:
    """What one read task reads: the listed sessions of shard ``index`` of ``count`` (picklable).

    ``settings`` is where to connect (its repr masks the password, so a
    logged task gives nothing away); ``shared`` the driver's snapshot;
    ``ids`` the sessions the driver listed for this shard, newest first;
    ``filters`` and ``gate`` the query that listed them. A task reads the
    listed sessions that the query still selects: all of them in the
    driver's snapshot, and never one the gate refuses now when the task
    reached another server and reads in a later snapshot (a session
    quarantined meanwhile stays out).
    """

    settings: ConnectionSettings
    shared: SharedSnapshot
    ids: array[int]
    index: int
    count: int
    kind: str
    options: LoadOptions
    filters: SessionFilters
    gate: ReviewGate
    page_size: int = DEFAULT_PAGE_SIZE
    block_rows: int = DEFAULT_ROW_GROUP_SIZE

    def __repr__(self) -> str:
        return (
            f"ShardRead({self.index}/{self.count}, {len(self.ids)} sessions, kind={self.kind}, "
            f"snapshot={self.shared.snapshot}, {self.settings.display_url})"
        )


def read_shard(task: ShardRead) -> Iterator[pa.Table]:
    """Read one shard in the shared snapshot, as Arrow tables of at most ``block_rows`` rows.

    Runs in a Ray read task (or anywhere: it is plain code). Opens its own
    connection, joins the snapshot, then reads ``page_size`` sessions per
    query, so memory holds one page of sessions and one block of rows. A
    shard with no rows yields one empty table, so the dataset's schema is
    known even then. Raises :class:`~atlas.errors.InvalidFilter` when the
    driver's snapshot is no longer open.
    """
    import pyarrow as pa

    from trainers.parquet import arrow_schema

    schema = arrow_schema(task.kind)
    with connect(task.settings) as conn, join_snapshot(conn, task.shared):
        rows = iter_rows(_traces(conn, task), task.kind)
        produced = False
        for block in iter_row_groups(rows, task.block_rows):
            produced = True
            yield pa.Table.from_pylist(block, schema=schema)
        if not produced:
            yield schema.empty_table()


def _traces(conn: psycopg.Connection[Any], task: ShardRead) -> Iterator[Any]:
    """The shard's sessions, a page per query; the next page is read while this one is used."""

    def fetch(start: int) -> list[Any]:
        chunk = tuple(task.ids[start : start + task.page_size])
        # The listed ids that the query still selects: the same sessions in the driver's
        # snapshot; in a later one (another server), none that the gate now refuses.
        plan = page_plan(task.filters.only(chunk), task.gate, task.options, size=len(chunk))
        page: Page = drive(conn, plan)
        return page.traces

    starts = range(0, len(task.ids), task.page_size)
    if not starts:
        return
    # One thread owns the connection, a page ahead of the caller: the server works on the
    # next page while this task turns the last one into rows. Closing early waits for the
    # page in flight (one query), so the connection is idle when it is closed.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="arc-atlas-shard") as reader:
        ahead = reader.submit(fetch, starts[0])
        for start in starts[1:]:
            traces = ahead.result()
            ahead = reader.submit(fetch, start)
            yield from traces
        yield from ahead.result()


def list_shards(
    conn: psycopg.Connection[Any], query: TrainingQuery, count: int
) -> list[array[int]]:
    """The ids ``query`` selects on ``conn``, newest first, split into ``count`` hash shards.

    Part ``i`` holds what ``shard=(i + 1, count)`` keeps; ``limit`` and
    ``offset`` apply to the whole selection first (the newest ``limit``
    sessions). Streams through a server-side cursor, so the driver holds
    the ids only (8 bytes each). ``conn`` must be inside a transaction.
    """
    where, params = where_clause(query.filters, query.gate)
    window = sql.SQL(" LIMIT %s OFFSET %s") if query.limit is not None else sql.SQL(" OFFSET %s")
    statement = sql.SQL(
        "SELECT s.id, " + SHARD_OF + " FROM sessions s {where} "
        "ORDER BY s.created_at DESC, s.id DESC{window}"
    ).format(where=where, window=window)
    values = [count, *params, *([query.limit] if query.limit is not None else []), query.offset]
    parts: list[array[int]] = [array("q") for _ in range(count)]
    with conn.cursor(name="arc_atlas_ray_ids") as cursor:
        cursor.itersize = _LIST_FETCH
        cursor.execute(statement, values)
        for session_id, part in cursor:
            parts[part].append(session_id)
    return parts


def _check_kind(kind: Any) -> str:
    if kind not in RAY_KINDS:
        grouped = (
            " (GRPO groups and DPO pairs need every session at once: use "
            "trainers.exports.export_grpo / export_dpo)"
            if kind in ("grpo", "dpo")
            else ""
        )
        raise InvalidFilter(
            f"kind must be one of {', '.join(RAY_KINDS)}, not {kind!r}{grouped}.",
            parameter="kind",
        )
    return str(kind)


class SnapshotHolder:
    """The driver's read-only transaction: its shared snapshot and the listed shards.

    Opened on creation (importing ``snapshot`` first when one is given, so
    the dataset reads in it), ended by :meth:`close`, at garbage collection
    or at exit at the latest; closing is idempotent. A pickled copy (Ray may
    ship the datasource to another process) carries the shared snapshot
    only: it never ends the original's transaction.
    """

    def __init__(self, settings: ConnectionSettings, snapshot: str | None = None):
        self.settings = settings
        self._stack = contextlib.ExitStack()
        self._finalizer = weakref.finalize(self, _end, self._stack)
        try:
            self._conn = self._stack.enter_context(connect(settings))
            self._stack.enter_context(self._conn.transaction())
            self._conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            if snapshot is not None:
                import_snapshot(self._conn, snapshot)
            self.shared: SharedSnapshot = share_snapshot(self._conn)
        except BaseException:
            self.close()
            raise

    def list_shards(self, query: TrainingQuery, count: int) -> list[array[int]]:
        """:func:`list_shards` in this snapshot; a ReviewGateWarning if the gate hid every match."""
        parts = list_shards(self._conn, query, count)
        if not any(parts):
            explain_empty(self._conn, query)
        return parts

    def close(self) -> None:
        """End the transaction (and so the snapshot)."""
        self._finalizer()

    def __reduce__(self) -> Any:
        return (_Borrowed, (self.shared,))


def _end(stack: contextlib.ExitStack) -> None:
    """End the driver's transaction; a connection already gone (the database dropped,
    the server restarted) has ended it already, and a collector has no one to tell."""
    try:
        stack.close()
    except (AtlasError, psycopg.Error) as exc:
        logger.debug("the snapshot's connection was already gone: %s", exc)


class _Borrowed:
    """A pickled :class:`SnapshotHolder`: the shared snapshot, never the transaction."""

    def __init__(self, shared: SharedSnapshot):
        self.shared = shared

    def close(self) -> None:
        """Nothing to close: the original holder owns the transaction."""


def _settings(db_url: Any, config: ConfigArg) -> ConnectionSettings:
    """Where the tasks connect: a URL (None: the configured or embedded database)."""
    if isinstance(db_url, Database):
        return db_url.settings
    if db_url is not None and not isinstance(db_url, str):
        raise TypeError(
            f"read_sessions cannot hand a {type(db_url).__name__} to its read tasks (each "
            "opens a connection of its own): pass the database URL, or an atlas.storage.Database."
        )
    settings = resolve_settings(db_url, config=reader_config(config))
    prepare(settings, migrate=False)
    return settings


def _default_parallelism() -> int:
    import ray

    if ray.is_initialized():
        cpus = int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]
    else:
        cpus = os.cpu_count() or 1
    return max(cpus, 1)


def _import_ray() -> Any:
    try:
        import pyarrow  # noqa: F401
        import ray.data
    except ImportError as exc:
        module = (exc.name or "ray").split(".")[0]
        raise MissingExtra.for_module(
            module, extra="ray", needed_for="trainers.ray_data.read_sessions"
        ) from None
    return ray.data


def read_sessions(
    db_url: str | Database | None = None,
    *,
    kind: RayKind = "sessions",
    parallelism: int | None = None,
    config: ConfigArg = None,
    snapshot: str | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    block_rows: int = DEFAULT_ROW_GROUP_SIZE,
    **filters: Unpack[TrainingFilters],
) -> ray.data.Dataset:
    """The matching sessions as a :class:`ray.data.Dataset` of ``kind`` rows, read in parallel.

    ``kind`` is ``sessions`` (one row per session, ``AtlasSessionTrace.to_dict()``),
    ``rl`` (one row per step, as :func:`~trainers.runtime_dataset.sessions_to_rl_records`)
    or ``flat`` (:func:`~trainers.runtime_dataset.flatten_traces_for_training`).
    ``parallelism`` read tasks (default: the cluster's CPUs) each read one
    disjoint shard (``shard=(I, parallelism)``), all in one snapshot: taken
    now, or ``snapshot`` (an id from :func:`~atlas.training_data.exported_snapshot`).
    The filters and the review gate are those of
    :func:`~atlas.training_data.get_training_sessions`, resolved here, in the
    driver (its environment and ``config``), never in a task; ``limit`` and
    ``offset`` choose the newest sessions of the whole selection, as there.
    ``shard`` is refused: the tasks are the shards. ``page_size`` sessions
    are read per query, and blocks hold at most ``block_rows`` rows (and about
    64 MB of text: :data:`trainers.columns.DEFAULT_ROW_GROUP_TEXT`).

    Raises, before any task runs: :class:`~atlas.errors.MissingExtra` without
    Ray (the ``ray`` extra), :class:`~atlas.errors.InvalidFilter` naming the
    parameter at fault, :class:`~atlas.errors.DatabaseUnavailable` when the
    database cannot be reached.
    """
    data = _import_ray()
    _check_kind(kind)
    if filters.get("shard") is not None:
        raise InvalidFilter(
            "read_sessions does not take shard: it splits the selection itself, one shard "
            "per read task (parallelism=N).",
            parameter="shard",
        )
    cfg = reader_config(config)
    query = TrainingQuery.build(config=cfg, **filters)
    if parallelism is None:
        parallelism = _default_parallelism()
    count = whole_number(parallelism, "parallelism", minimum=1, maximum=MAX_SHARDS)
    whole_number(page_size, "page_size", minimum=1)
    whole_number(block_rows, "block_rows", minimum=1)
    if snapshot is not None:
        check_snapshot_id(snapshot)
    settings = _settings(db_url, cfg)
    holder = SnapshotHolder(settings, snapshot)
    try:
        parts = holder.list_shards(query, count)
    except BaseException:
        holder.close()
        raise
    shared, options = holder.shared, query.options
    reads = [
        ShardRead(
            settings,
            shared,
            ids,
            index,
            count,
            kind,
            options,
            query.filters,
            query.gate,
            page_size,
            block_rows,
        )
        for index, ids in enumerate(parts, start=1)
    ]
    from trainers._ray_source import SessionsDatasource

    source = SessionsDatasource(holder, reads)
    dataset: ray.data.Dataset = data.read_datasource(source, override_num_blocks=count)
    return dataset
