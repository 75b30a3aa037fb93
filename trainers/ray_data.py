"""Sessions as a Ray Dataset: one read task per shard, every task in one database snapshot.

>>> from trainers.ray_data import read_sessions
>>> ds = read_sessions(db_url="postgresql://...", kind="rl", parallelism=8, min_reward=0.5)
>>> ds.write_parquet("s3://bucket/rl/")

:func:`read_sessions` validates the filters and resolves the review gate in
the calling process (the driver), then exports a snapshot of the database
(:mod:`atlas.training_data.snapshot`) and keeps its transaction open. Ray
Data runs lazily: each read task, whenever and wherever it runs, opens its
own connection, imports that snapshot and reads one disjoint shard of the
selection (the ``shard="I/N"`` filter), so the dataset is the selection as
it was when :func:`read_sessions` was called, whatever is written meanwhile,
and reading it twice gives the same rows. Blocks are Arrow tables with the
fixed schema of :mod:`trainers.columns` (:func:`trainers.parquet.arrow_schema`).

The snapshot stays open as long as the dataset, or any dataset made from it
(``ds.map(...)``, ``ds.random_shuffle()``), is alive in this process; it is
released when they are garbage-collected, or at exit. To choose its lifetime
yourself, export it and pass it in::

    with exported_snapshot(url) as snapshot:
        read_sessions(db_url=url, snapshot=snapshot).write_parquet(path)

A task that runs once that snapshot is gone fails with
:class:`~atlas.errors.InvalidFilter` ("snapshot ... is not open"), never
reading another one. Needs the ``ray`` extra (``pip install 'arc-atlas[ray]'``).
See ``docs/ray.md``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import psycopg
from typing_extensions import Unpack

from atlas.errors import AtlasError, InvalidFilter, MissingExtra
from atlas.storage.connection import ConnectionSettings, connect
from atlas.storage.database import Database, prepare, resolve_settings
from atlas.training_data.filters import MAX_SHARDS, whole_number
from atlas.training_data.flows import pager_flow, run_flow
from atlas.training_data.query import TrainingFilters, TrainingQuery
from atlas.training_data.snapshot import check_snapshot_id, exported_snapshot, import_snapshot
from atlas.training_data.targets import ConfigArg, reader_config
from trainers.columns import DEFAULT_ROW_GROUP_SIZE, iter_rows

if TYPE_CHECKING:
    import pyarrow as pa
    import ray.data

__all__ = ["ShardRead", "SnapshotHolder", "plan_reads", "read_sessions", "read_shard"]

logger = logging.getLogger(__name__)

# The kinds a shard can make on its own: one row per session or per step.
# GRPO groups and DPO pairs need sessions from every shard at once.
RayKind = Literal["sessions", "rl", "flat"]
RAY_KINDS: tuple[str, ...] = ("sessions", "rl", "flat")
# Sessions per database page inside a task (as the API's paginate_sessions).
DEFAULT_PAGE_SIZE = 100
# What the window filters would mean across shards read in parallel: nothing stable.
_NOT_SHARDABLE = {
    "limit": "use ds.limit(N) on the dataset, or narrow the selection with "
    "session_ids, created_after or created_before",
    "offset": "narrow the selection with session_ids, created_after or created_before",
    "shard": "read_sessions splits the selection itself, one shard per read task (parallelism=N)",
}


@dataclass(frozen=True)
class ShardRead:
    """What one read task reads: shard ``index`` of ``count``, in ``snapshot`` (picklable).

    ``settings`` is where to connect (its repr masks the password, so a
    logged task gives nothing away); ``query`` holds the filters and the
    review gate the driver resolved, which the task applies as it is.
    """

    settings: ConnectionSettings
    snapshot: str
    query: TrainingQuery
    index: int
    count: int
    kind: str
    page_size: int = DEFAULT_PAGE_SIZE
    block_rows: int = DEFAULT_ROW_GROUP_SIZE

    def shard_query(self) -> TrainingQuery:
        """The driver's query narrowed to this task's shard."""
        shard = (self.index, self.count)
        return replace(self.query, filters=replace(self.query.filters, shard=shard))


def read_shard(task: ShardRead) -> Iterator[pa.Table]:
    """Read one shard in the shared snapshot, as Arrow tables of at most ``block_rows`` rows.

    Runs in a Ray read task (or anywhere: it is plain code). Opens its own
    connection, imports the snapshot, then pages through its shard
    (``page_size`` sessions at a time), so memory holds one page of sessions
    and one block of rows. A shard with no rows yields one empty table, so
    the dataset's schema is known even then. Raises
    :class:`~atlas.errors.InvalidFilter` when the snapshot is no longer open.
    """
    import pyarrow as pa

    from trainers.parquet import arrow_schema

    schema = arrow_schema(task.kind)
    query = task.shard_query()
    with connect(task.settings) as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        import_snapshot(conn, task.snapshot)
        pages = run_flow(conn, pager_flow(query, task.page_size, explain_empty=False))
        traces = itertools.chain.from_iterable(pages)
        rows = iter_rows(traces, task.kind)
        produced = False
        while block := list(itertools.islice(rows, task.block_rows)):
            produced = True
            yield pa.Table.from_pylist(block, schema=schema)
        if not produced:
            yield schema.empty_table()


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


def _check_filters(filters: TrainingFilters) -> None:
    for name, hint in _NOT_SHARDABLE.items():
        if filters.get(name) is not None:
            raise InvalidFilter(
                f"read_sessions does not take {name}: the shards are read in parallel, "
                f"with no common order; {hint}.",
                parameter=name,
            )


def plan_reads(
    settings: ConnectionSettings,
    snapshot: str,
    query: TrainingQuery,
    *,
    kind: str,
    parallelism: int,
    page_size: int = DEFAULT_PAGE_SIZE,
    block_rows: int = DEFAULT_ROW_GROUP_SIZE,
) -> list[ShardRead]:
    """One :class:`ShardRead` per shard: ``parallelism`` disjoint parts of ``query``.

    Together they read exactly the sessions ``query`` selects in ``snapshot``.
    """
    return [
        ShardRead(settings, snapshot, query, index, parallelism, kind, page_size, block_rows)
        for index in range(1, parallelism + 1)
    ]


class SnapshotHolder:
    """The exported snapshot a dataset reads in, held open until :meth:`close`.

    Owns the exporting transaction (:func:`~atlas.training_data.exported_snapshot`)
    when it made the snapshot; a snapshot passed in is the caller's to close.
    Closing is idempotent, and happens at garbage collection or exit at the
    latest. A pickled copy (Ray ships the datasource to other processes)
    carries the id only: it never closes the original's transaction.
    """

    def __init__(self, settings: ConnectionSettings, config: ConfigArg, snapshot: str | None):
        self._stack = contextlib.ExitStack()
        if snapshot is None:
            snapshot = self._stack.enter_context(exported_snapshot(settings.url, config=config))
        self.snapshot: str = snapshot
        self._finalizer = weakref.finalize(self, _end, self._stack)

    def close(self) -> None:
        """End the exporting transaction (when this holder owns it)."""
        self._finalizer()

    def __reduce__(self) -> Any:
        return (_Borrowed, (self.snapshot,))


def _end(stack: contextlib.ExitStack) -> None:
    """End an exporting transaction; a connection already gone (the database dropped,
    the server restarted) has ended it already, and a collector has no one to tell."""
    try:
        stack.close()
    except (AtlasError, psycopg.Error) as exc:
        logger.debug("the snapshot's connection was already gone: %s", exc)


class _Borrowed:
    """A pickled :class:`SnapshotHolder`: the id, never the transaction."""

    def __init__(self, snapshot: str):
        self.snapshot = snapshot

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
    disjoint shard; all read in one snapshot, taken now, or ``snapshot`` (an
    id from :func:`~atlas.training_data.exported_snapshot`, open while the
    dataset is read). The filters and review gate are those of
    :func:`~atlas.training_data.get_training_sessions`, resolved here, in
    the driver (its environment and ``config``), and applied as they are by
    every task; ``limit``, ``offset`` and ``shard`` are refused (the shards
    have no common order: use ``ds.limit(N)``). ``page_size`` sessions are
    read per query, and blocks hold at most ``block_rows`` rows.

    Raises, before any task runs: :class:`~atlas.errors.MissingExtra` without
    Ray (the ``ray`` extra), :class:`~atlas.errors.InvalidFilter` naming the
    parameter at fault, :class:`~atlas.errors.DatabaseUnavailable` when the
    database cannot be reached.
    """
    data = _import_ray()
    _check_kind(kind)
    _check_filters(filters)
    cfg = reader_config(config)
    query = TrainingQuery.build(config=cfg, **filters)
    if parallelism is None:
        parallelism = _default_parallelism()
    tasks = whole_number(parallelism, "parallelism", minimum=1, maximum=MAX_SHARDS)
    whole_number(page_size, "page_size", minimum=1)
    whole_number(block_rows, "block_rows", minimum=1)
    if snapshot is not None:
        check_snapshot_id(snapshot)
    settings = _settings(db_url, cfg)
    holder = SnapshotHolder(settings, cfg, snapshot)
    reads = plan_reads(settings, holder.snapshot, query, kind=kind, parallelism=tasks,
                       page_size=page_size, block_rows=block_rows)  # fmt: skip
    from trainers._ray_source import SessionsDatasource

    source = SessionsDatasource(holder, reads)
    dataset: ray.data.Dataset = data.read_datasource(source, override_num_blocks=tasks)
    return dataset
