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
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import orjson
import psycopg
from psycopg import sql

from atlas.training_data.api import (
    ConfigArg,
    Spawn,
    SyncTarget,
    TrainingQuery,
    _config,
    _connections,
    hidden_by_gate,
)
from atlas.training_data.assembly import LoadOptions, PageRows, assemble_records
from atlas.training_data.drivers import drive
from atlas.training_data.filters import SessionFilters, whole_number
from atlas.training_data.output import SafeOutput
from atlas.training_data.plan import Cursor, ids_plan, rows_plan
from atlas.training_data.review_gate import ReviewGate

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


class _Writer:
    """Write chunks on a thread of its own: file writes (and compression) release the GIL,
    so they overlap with assembling the next page. An error there (disk full) is
    raised in the caller's thread at its next call."""

    def __init__(self, sink: SafeOutput):
        self._sink = sink
        self._queue: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="arc-atlas-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (parts := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._sink.write_all(parts)
                except BaseException as exc:
                    self._error = exc

    def write(self, parts: list[bytes]) -> None:
        """Queue ``parts`` for writing; raises an earlier write's error."""
        if self._error is not None:
            raise self._error
        self._queue.put(parts)

    def finish(self) -> None:
        """Wait for every queued write; raises the first write error, if any."""
        self.close()
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Stop the thread once queued writes are done (errors are left for finish)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


def _kept_events(record: dict[str, Any], options: LoadOptions) -> int:
    """How many events a record carries (its event list may be a pass-through fragment)."""
    if record["trajectory_events_truncated"]:
        return options.trajectory_event_limit or 0
    return int(record["trajectory_event_count"])


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


_STOP = object()


class _PageFetcher:
    """Read the pages of an export on worker threads, in one snapshot, in page order.

    A lister walks the matching session ids page by page (keyset, ids only:
    cheap) on the main connection, which holds the export's snapshot. Workers
    fetch whole pages by id, each on its own connection that has imported
    that snapshot, so the server assembles several pages at once while this
    thread turns earlier ones into JSON. With no second connection to be had,
    one worker uses the main connection. Closing early (an error, Ctrl-C)
    cancels the queries in flight so no thread can hang.
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
        self._query, self._options, self._size = query, options, size
        self._stop = threading.Event()
        # Pages listed but not yet written: this bounds memory, whatever the
        # speed of the disk or the number of sessions.
        self._in_flight = threading.Semaphore(workers + 1)
        self._tasks: queue.Queue[Any] = queue.Queue()
        self._results: queue.Queue[Any] = queue.Queue()
        self._conns: list[psycopg.Connection[Any]] = [conn]
        self._threads: list[threading.Thread] = []
        self._exits = contextlib.ExitStack()
        snapshot = None
        if spawn is not None and workers > 1:
            row = conn.execute("SELECT pg_export_snapshot()").fetchone()
            snapshot = row[0] if row else None
        if snapshot is None:
            # One worker on the main connection; pages are listed and fetched in turn.
            self._start(self._fetch_serially, conn)
            self._workers = 1
            return
        assert spawn is not None
        self._workers = workers
        try:
            # Every connection is ready before any thread starts, so a failure
            # here leaves nothing running.
            for _ in range(workers):
                worker = self._exits.enter_context(spawn())
                worker.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                worker.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
                self._conns.append(worker)
        except BaseException:
            self._exits.close()
            raise
        self._start(self._list, conn)
        for worker in self._conns[1:]:
            self._start(self._fetch, worker)

    def _start(self, target: Callable[..., None], conn: psycopg.Connection[Any]) -> None:
        thread = threading.Thread(target=self._guard, args=(target, conn), daemon=True)
        self._threads.append(thread)
        thread.start()

    def _guard(self, target: Callable[..., None], conn: psycopg.Connection[Any]) -> None:
        try:
            target(conn)
        except BaseException as exc:  # handed to the consumer's thread
            self._results.put((-1, exc))

    def _pages(self, conn: psycopg.Connection[Any], plan: Callable[..., Any]) -> Iterator[Any]:
        cursor: Cursor | None = None
        query = self._query
        for page_size, offset in query.pages(self._size):
            if self._stop.is_set():
                return
            found, cursor = drive(
                conn,
                plan(query.filters, query.gate, self._options,
                     size=page_size, after=cursor, offset=offset),
            )  # fmt: skip
            if found:
                yield found
            if cursor is None:
                return

    def _list(self, conn: psycopg.Connection[Any]) -> None:
        index = 0
        for ids in self._pages(conn, ids_plan):
            if not self._acquire():
                return
            self._tasks.put((index, ids))
            index += 1
        self._results.put((-2, index))  # how many pages there are
        for _ in range(self._workers):
            self._tasks.put(_STOP)

    def _fetch(self, conn: psycopg.Connection[Any]) -> None:
        while not self._stop.is_set():
            try:
                task = self._tasks.get(timeout=0.1)
            except queue.Empty:
                continue
            if task is _STOP:
                return
            index, ids = task
            rows, _ = drive(
                conn,
                rows_plan(
                    SessionFilters(session_ids=tuple(ids)), None, self._options, size=len(ids)
                ),
            )
            self._results.put((index, rows))

    def _fetch_serially(self, conn: psycopg.Connection[Any]) -> None:
        index = 0
        for rows in self._pages(conn, rows_plan):
            if not self._acquire():
                return
            self._results.put((index, rows))
            index += 1
        self._results.put((-2, index))

    def _acquire(self) -> bool:
        """Wait for room for one more page; False once the fetcher is closing."""
        while not self._stop.is_set():
            if self._in_flight.acquire(timeout=0.1):
                return True
        return False

    def __iter__(self) -> Iterator[PageRows]:
        waiting: dict[int, PageRows] = {}
        following, total = 0, None
        while total is None or following < total:
            index, item = self._results.get()
            if index == -1:
                raise item
            if index == -2:
                total = item
                continue
            waiting[index] = item
            while following in waiting:
                yield waiting.pop(following)
                following += 1
                self._in_flight.release()

    def close(self) -> None:
        """Stop every thread (cancelling queries in flight), then release the connections."""
        self._stop.set()
        if any(thread.is_alive() for thread in self._threads):
            for conn in self._conns:
                with contextlib.suppress(Exception):
                    conn.cancel_safe()
        for thread in self._threads:
            thread.join()
        for conn in self._conns[1:]:
            with contextlib.suppress(Exception):
                conn.execute("ROLLBACK")
        self._exits.close()


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
    **filters: Any,
) -> ExportSummary:
    """Write every matching session to ``output`` (``-`` = stdout) as JSONL.

    Takes the filters of :func:`~atlas.training_data.get_training_sessions`;
    ``limit`` and ``offset`` count exported sessions. When nothing matches, no
    file is created and the summary says how many sessions the review gate hid.
    ``workers`` connections read pages in parallel (all in the same snapshot).
    ``events_in_metadata`` also writes each session's events into
    ``session_metadata["trajectory_events"]``, as atlas-sdk's exporter did.
    Raises :class:`~atlas.training_data.output.OutputError` before touching the
    database when ``output`` cannot be written.
    """
    whole_number(batch_size, "batch_size", minimum=1)
    cfg = _config(config)
    query = TrainingQuery.from_filters(filters, config=cfg)
    options = replace(query.options, raw_events=True, events_in_metadata=events_in_metadata)
    started = time.perf_counter()
    sink = SafeOutput(output, compression_level=compression_level)
    sessions = steps = events = damaged = hidden = 0
    try:
        with (
            _fewer_collections(),
            _connections(db_url, cfg) as (conn, spawn, room),
            conn.transaction(),
        ):
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            readers = min(workers, room)
            pages = _PageFetcher(conn, spawn, query, options, batch_size, readers)
            writer = _Writer(sink)
            try:
                for rows in pages:
                    records = assemble_records(rows, options)
                    writer.write([encode_line(record) for record in records])
                    for record in records:
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
            if sessions == 0:
                hidden = hidden_by_gate(conn, query)
        if sessions == 0:
            sink.abort()
        else:
            sink.commit()
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
    )
