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
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import orjson
import psycopg

from atlas.errors import InvalidFilter
from atlas.training_data.api import (
    ConfigArg,
    SyncTarget,
    TrainingQuery,
    _config,
    _connection,
    _gate_hid,
)
from atlas.training_data.assembly import LoadOptions, PageRows, assemble_records
from atlas.training_data.drivers import drive
from atlas.training_data.output import SafeOutput
from atlas.training_data.plan import Cursor, count_plan, rows_plan
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


def _kept_events(record: dict[str, Any], options: LoadOptions) -> int:
    """How many events a record carries (its event list may be a pass-through fragment)."""
    if record["trajectory_events_truncated"]:
        return options.trajectory_event_limit or 0
    return int(record["trajectory_event_count"])


class _Prefetcher:
    """Fetch page rows on a worker thread while the caller assembles and writes.

    The database works on page N+1 while Python turns page N into JSON, so the
    two overlap (the server and this process run on different cores). Only
    the worker touches the connection until :meth:`close`. Closing early (an
    error, Ctrl-C) cancels the query in flight so the worker cannot hang.
    """

    _DONE = object()

    def __init__(
        self, conn: psycopg.Connection[Any], query: TrainingQuery, options: LoadOptions, size: int
    ):
        self._conn = conn
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(query, options, size), name="arc-atlas-prefetch", daemon=True
        )
        self._thread.start()

    def _run(self, query: TrainingQuery, options: LoadOptions, size: int) -> None:
        try:
            cursor: Cursor | None = None
            for page_size, offset in query.pages(size):
                if self._stop.is_set():
                    return
                rows, cursor = drive(
                    self._conn,
                    rows_plan(
                        query.filters, query.gate, options,
                        size=page_size, after=cursor, offset=offset,
                    ),
                )  # fmt: skip
                if rows is not None:
                    self._put(rows)
                if cursor is None:
                    break
            self._put(self._DONE)
        except BaseException as exc:  # handed to the caller's thread
            self._put(exc)

    def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[PageRows]:
        while True:
            item = self._queue.get()
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop the worker (cancelling its query if it is in one) and wait for it."""
        if self._thread.is_alive():
            self._stop.set()
            with contextlib.suppress(Exception):
                self._conn.cancel_safe()
            self._thread.join()


def export_jsonl(
    output: str,
    db_url: SyncTarget = None,
    *,
    config: ConfigArg = None,
    batch_size: int = 100,
    compression_level: int | None = None,
    on_progress: Callable[[ExportProgress], None] | None = None,
    **filters: Any,
) -> ExportSummary:
    """Write every matching session to ``output`` (``-`` = stdout) as JSONL.

    Takes the filters of :func:`~atlas.training_data.get_training_sessions`;
    ``limit`` and ``offset`` count exported sessions. When nothing matches, no
    file is created and the summary says how many sessions the review gate hid.
    Raises :class:`~atlas.training_data.output.OutputError` before touching the
    database when ``output`` cannot be written.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidFilter(f"batch_size must be a whole number >= 1, not {batch_size!r}.")
    cfg = _config(config)
    query = TrainingQuery.build(config=cfg, **filters)
    options = replace(query.options, raw_events=True)
    started = time.perf_counter()
    sink = SafeOutput(output, compression_level=compression_level)
    sessions = steps = events = damaged = hidden = 0
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    try:
        with _connection(db_url, cfg) as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            pages = _Prefetcher(conn, query, options, batch_size)
            try:
                for rows in pages:
                    records = assemble_records(rows, options)
                    sink.write(b"".join([dumps(record, option=newline) for record in records]))
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
            finally:
                pages.close()
            if sessions == 0 and query.limit != 0 and not query.gate.is_open:
                hidden = _gate_hid(drive(conn, count_plan(query.filters, [query.gate, None])))
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
