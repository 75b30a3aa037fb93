"""Export sessions to JSONL: one ``AtlasSessionTrace.to_dict()`` per line.

The export reads one consistent snapshot of the database (a single
``REPEATABLE READ, READ ONLY`` transaction): sessions written while it runs are
all out, never half in or duplicated. Records are assembled by the same code
as :func:`~atlas.training_data.get_training_sessions`, and go through the
review gate the same way, so a line loaded back equals the trace the Python
API returns. Output is written by :class:`~atlas.training_data.output.SafeOutput`:
nothing appears under the target name unless the export completes.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from decimal import Decimal
from queue import SimpleQueue
from typing import Any

import orjson
import psycopg
from typing_extensions import Unpack

from atlas.training_data.assembly import LoadOptions, PageRows, assemble_records
from atlas.training_data.drivers import drive
from atlas.training_data.filters import whole_number
from atlas.training_data.flows import hidden_by_gate
from atlas.training_data.incremental import start_run
from atlas.training_data.manifest import ManifestRecords, manifest_body, write_manifest
from atlas.training_data.output import SafeOutput
from atlas.training_data.plan import Cursor, ids_plan, rows_plan
from atlas.training_data.query import TrainingFilters, TrainingQuery
from atlas.training_data.redact import Redactor
from atlas.training_data.review_gate import ReviewGate
from atlas.training_data.snapshot import (
    check_snapshot_id,
    import_snapshot,
    join_snapshot,
    share_snapshot,
)
from atlas.training_data.targets import ConfigArg, Spawn, SyncTarget, connections, reader_config

__all__ = ["ExportProgress", "ExportSummary", "export_jsonl"]


@dataclass(frozen=True)
class ExportProgress:
    """Running totals, passed to the progress callback after every page."""

    sessions: int
    steps: int
    events: int
    bytes_written: int
    seconds: float


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote (or, with ``sessions == 0``, why it wrote nothing)."""

    output: str
    sessions: int
    steps: int
    events: int
    bytes_written: int
    seconds: float
    gate: ReviewGate
    hidden_by_gate: int
    damaged_sessions: int
    # With ``redact``: rule name -> field path -> values replaced (Redactor.report).
    # Keyword-only, so subclasses may still add fields without defaults.
    redaction: dict[str, dict[str, int]] | None = field(default=None, kw_only=True)


class _Writer:
    """Write chunks on a thread of its own: file writes (and compression) release the GIL,
    so they overlap with assembling the next page. An error there (disk full) is
    raised in the caller's thread at its next call."""

    # Chunks queued ahead of the disk: bounds memory when the disk is slow.
    _AHEAD = 4

    def __init__(self, sink: SafeOutput):
        self._sink = sink
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="arc-atlas-writer")
        self._queued: deque[Future[None]] = deque()

    def write(self, parts: list[bytes]) -> None:
        """Queue ``parts`` for writing; raises an earlier write's error."""
        while self._queued and (self._queued[0].done() or len(self._queued) >= self._AHEAD):
            self._queued.popleft().result()
        self._queued.append(self._pool.submit(self._sink.write_all, parts))

    def finish(self) -> None:
        """Wait for every queued write; raises the first write error, if any."""
        while self._queued:
            self._queued.popleft().result()
        self._pool.shutdown()

    def close(self) -> None:
        """Drop writes not yet started and wait for the one running (errors are left)."""
        for future in self._queued:
            future.cancel()
        self._pool.shutdown(wait=True)


def _exact(value: Any) -> Any:
    """``value`` with numbers orjson cannot write (beyond 64 bits, Decimal) as JSON fragments."""
    if isinstance(value, dict):
        return {k: _exact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_exact(v) for v in value]
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return orjson.Fragment(str(value))
    return value


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run the young-generation collector less often while pages are decoded.

    An export allocates millions of short-lived, acyclic objects (decoded
    rows, records); with the default threshold the cyclic collector runs
    thousands of times and costs about a sixth of the export. Memory is
    still bounded by the pages in flight. The thresholds are restored after.
    """
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], 50_000), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def encode_line(record: dict[str, Any]) -> bytes:
    """One JSONL line; numbers stored beyond a double or 64 bits are written exactly."""
    try:
        return orjson.dumps(record, default=_default, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:
        # orjson refuses integers beyond 64 bits outright (no default hook).
        return orjson.dumps(_exact(record), option=orjson.OPT_APPEND_NEWLINE)


class _PageFetcher:
    """Read the pages of an export on worker threads, in one snapshot, in page order.

    The matching session ids are listed page by page (keyset, ids only: cheap)
    on the main connection, which holds the export's snapshot. Each page is
    fetched whole by a worker on its own connection that has joined that
    snapshot (:func:`~atlas.training_data.snapshot.join_snapshot`: the same
    snapshot on the same server, primary or standby; on another standby of a
    load-balanced URL, the listed ids that the filters and the review gate
    still select, in a snapshot taken after it), so the
    server assembles several pages at once while the caller
    turns earlier ones into JSON; at most ``workers + 1`` pages are in flight,
    which bounds memory whatever the speed of the disk. With no second
    connection to be had, one worker reads page after page on the main
    connection, a page ahead of the caller. Closing early (an error, Ctrl-C)
    cancels the queries in flight, so no thread can hang.
    """

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        spawn: Spawn | None,
        query: TrainingQuery,
        options: LoadOptions,
        size: int,
        workers: int,
    ):
        self._conn, self._query, self._options, self._size = conn, query, options, size
        self._conns: list[psycopg.Connection[Any]] = [conn]
        self._exits = contextlib.ExitStack()
        self._pending: deque[Future[Any]] = deque()
        self._finished = False
        if spawn is not None and workers > 1:
            # The main connection's snapshot (its own, or one it imported), re-exported:
            # workers read pages by id, so a worker that reaches another server (a
            # load-balanced standby URL) and reads in a later snapshot writes only sessions
            # listed here (atlas.training_data.snapshot says what holds then).
            shared = share_snapshot(conn)
            try:
                # Every connection is ready before any thread starts, so a
                # failure here leaves nothing running.
                for _ in range(workers):
                    worker = self._exits.enter_context(spawn())
                    self._exits.enter_context(join_snapshot(worker, shared))
                    self._conns.append(worker)
            except BaseException:
                self._exits.close()
                raise
        # Each worker thread owns one connection for the whole export.
        self._free: SimpleQueue[psycopg.Connection[Any]] = SimpleQueue()
        for worker in self._conns[1:]:
            self._free.put(worker)
        self._pool = ThreadPoolExecutor(
            max_workers=max(len(self._conns) - 1, 1), thread_name_prefix="arc-atlas-reader"
        )

    def _fetch(self, ids: list[int]) -> PageRows:
        conn = self._free.get()
        try:
            # The listed sessions that the query still selects: all of them in this
            # snapshot; in a later one (another server), none the gate now refuses.
            query = self._query
            plan = rows_plan(query.filters.only(ids), query.gate, self._options, size=len(ids))
            rows, _ = drive(conn, plan)
            return rows  # type: ignore[no-any-return]
        finally:
            self._free.put(conn)

    def _page(self, size: int, offset: int, after: Cursor | None) -> tuple[Any, Cursor | None]:
        query = self._query
        plan = rows_plan(query.filters, query.gate, self._options, size=size, after=after,
                         offset=offset)  # fmt: skip
        return drive(self._conn, plan)  # type: ignore[no-any-return]

    def _ids(self) -> Iterator[list[int]]:
        cursor: Cursor | None = None
        query = self._query
        for size, offset in query.pages(self._size):
            plan = ids_plan(query.filters, query.gate, self._options, size=size, after=cursor,
                            offset=offset)  # fmt: skip
            found, cursor = drive(self._conn, plan)
            if found:
                yield found
            if cursor is None:
                return

    def _serial(self) -> Iterator[PageRows]:
        # One connection: the next page (which needs this one's cursor) is
        # read while the caller works on this one.
        sizes = iter(self._query.pages(self._size))
        window = next(sizes, None)
        if window is None:
            return
        self._pending.append(self._pool.submit(self._page, *window, None))
        while self._pending:
            rows, after = self._pending.popleft().result()
            window = next(sizes, None) if after is not None else None
            if window is not None:
                self._pending.append(self._pool.submit(self._page, *window, after))
            if rows is not None:
                yield rows

    def __iter__(self) -> Iterator[PageRows]:
        if len(self._conns) == 1:
            yield from self._serial()
        else:
            ahead = len(self._conns)  # one page per worker, and one ready for the caller
            for ids in self._ids():
                self._pending.append(self._pool.submit(self._fetch, ids))
                if len(self._pending) >= ahead:
                    yield self._pending.popleft().result()
            while self._pending:
                yield self._pending.popleft().result()
        self._finished = True

    def close(self) -> None:
        """Stop every worker (cancelling queries in flight), then release the connections."""
        for future in self._pending:
            future.cancel()
        if not self._finished:
            # Stopped early (an error, Ctrl-C): a worker may be inside a query,
            # even one whose page the caller was waiting for; cancel them all,
            # or shutting the pool down would wait for them.
            for conn in self._conns:
                with contextlib.suppress(Exception):
                    conn.cancel_safe()
        self._pool.shutdown(wait=True)
        self._exits.close()  # each worker's transaction ends, then its connection


def export_jsonl(
    output: str,
    db_url: SyncTarget = None,
    *,
    config: ConfigArg = None,
    batch_size: int = 50,
    compression_level: int | None = None,
    on_progress: Callable[[ExportProgress], None] | None = None,
    workers: int = 2,
    events_in_metadata: bool = False,
    snapshot: str | None = None,
    redact: Redactor | None = None,
    state: str | os.PathLike[str] | None = None,
    manifest: bool = False,
    **filters: Unpack[TrainingFilters],
) -> ExportSummary:
    """Write every matching session to ``output`` (``-`` = stdout) as JSONL.

    Takes the filters of :func:`~atlas.training_data.get_training_sessions`;
    ``limit`` and ``offset`` count exported sessions. When nothing matches, no
    file is created and the summary says how many sessions the review gate hid.
    ``workers`` connections read pages in parallel (all in the same snapshot).
    ``events_in_metadata`` also writes each session's events into
    ``session_metadata["trajectory_events"]``, as atlas-sdk's exporter did.
    ``snapshot`` reads in a snapshot another transaction exported
    (:func:`~atlas.training_data.exported_snapshot`), so that several exports,
    the shards of one selection say, see the same database.
    ``redact`` rewrites each record before it is written (secrets, personal
    data: :class:`~atlas.training_data.redact.Redactor`); the summary's
    ``redaction`` is its report.
    ``state`` makes the export incremental (:mod:`atlas.training_data.incremental`):
    the first run writes every match, each later run with the same file only
    the sessions that became eligible since, never one written before; the
    file is replaced only once the output is complete.
    ``manifest`` also writes ``<output>.manifest.json`` (versions, filters,
    gate, snapshot, counts, sha256 and per-record hashes; see
    :mod:`atlas.training_data.manifest`), not for ``-``.
    Raises :class:`~atlas.training_data.output.OutputError` before touching the
    database when ``output`` cannot be written.
    """
    whole_number(batch_size, "batch_size", minimum=1)
    if snapshot is not None:
        check_snapshot_id(snapshot)
    cfg = reader_config(config)
    query = TrainingQuery.build(config=cfg, **filters)
    options = replace(query.options, raw_events=True, events_in_metadata=events_in_metadata)
    started = time.perf_counter()
    sink = SafeOutput(output, compression_level=compression_level)
    sessions = steps = events = damaged = hidden = 0
    try:
        with (
            _fewer_collections(),
            connections(db_url, cfg) as (conn, spawn, room),
            conn.transaction(),
        ):
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            if snapshot is not None:
                import_snapshot(conn, snapshot)
            run = start_run(conn, state, dict(filters)) if state is not None else None
            if run is not None and run.session_ids is not None:
                # An empty list selects nothing (an id 0 never exists): this run has no news.
                new = run.session_ids or [0]
                query = replace(query, filters=replace(query.filters, session_ids=tuple(new)))
            written: list[int] = []
            hashes = ManifestRecords() if manifest and output != "-" else None
            about = (
                manifest_body(conn, dict(filters), query.gate, run) if hashes is not None else None
            )
            readers = min(workers, room)
            pages = _PageFetcher(conn, spawn, query, options, batch_size, readers)
            writer = _Writer(sink)
            try:
                for rows in pages:
                    records = assemble_records(rows, options)
                    lines = [encode_line(record) for record in records]
                    if redact is not None:
                        lines = [redact.redact_line(r, line, encode_line)
                                 for r, line in zip(records, lines, strict=True)]  # fmt: skip
                    writer.write(lines)
                    if hashes is not None:
                        for record, line in zip(records, lines, strict=True):
                            hashes.add(record["session_id"], line)
                    for record in records:
                        written.append(record["session_id"])
                        steps += len(record["steps"])
                        events += (
                            record["trajectory_event_count"]
                            if not record["trajectory_events_truncated"]
                            else options.trajectory_event_limit or 0
                        )
                        damaged += bool(record["load_warnings"])
                    sessions += len(records)
                    if on_progress is not None:
                        elapsed = time.perf_counter() - started
                        on_progress(
                            ExportProgress(sessions, steps, events, sink.bytes_written, elapsed)
                        )
                writer.finish()
            finally:
                pages.close()
                writer.close()
            if sessions == 0 and (run is None or run.session_ids is None):
                hidden = hidden_by_gate(conn, query)
        # The state is written beside its file first, so that a state that cannot be
        # written leaves no output behind; it moves into place once the output has.
        prepared = run.prepare(written) if run is not None else None
        try:
            if sessions == 0:
                sink.abort()
            else:
                sink.commit()
        except BaseException:
            if prepared is not None:
                prepared.unlink(missing_ok=True)
            raise
        if hashes is not None and about is not None and sessions:
            counts = {"sessions": sessions, "steps": steps, "events": events}
            options_used = {
                "events_in_metadata": events_in_metadata,
                "trajectory_event_limit": options.trajectory_event_limit,
                "compression_level": compression_level,
            }
            body = {**about, "format": "jsonl", "counts": counts, "options": options_used,
                    "redaction": redact.report if redact is not None else None}  # fmt: skip
            write_manifest(output, body, hashes)
        if run is not None and prepared is not None:
            run.state.commit(prepared)
    except BaseException:
        sink.abort()
        raise
    return ExportSummary(
        output=output,
        sessions=sessions,
        steps=steps,
        events=events,
        bytes_written=sink.bytes_written if sessions else 0,
        seconds=time.perf_counter() - started,
        gate=query.gate,
        hidden_by_gate=hidden,
        damaged_sessions=damaged,
        redaction=redact.report if redact is not None else None,
    )
