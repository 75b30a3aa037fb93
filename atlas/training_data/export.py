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

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from atlas.training_data.api import ConfigArg, SyncTarget, TrainingQuery, _config, _connection
from atlas.training_data.drivers import drive
from atlas.training_data.output import SafeOutput
from atlas.training_data.plan import Cursor, Page, count_plan, page_plan
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
        from atlas.errors import InvalidFilter

        raise InvalidFilter(f"batch_size must be a whole number >= 1, not {batch_size!r}.")
    cfg = _config(config)
    query = TrainingQuery.build(config=cfg, **filters)
    started = time.perf_counter()
    sink = SafeOutput(output, compression_level=compression_level)
    sessions = steps = events = damaged = hidden = 0
    try:
        with _connection(db_url, cfg) as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor: Cursor | None = None
            for size, offset in query.pages(batch_size):
                plan = page_plan(
                    query.filters, query.gate, query.options, size=size, after=cursor, offset=offset
                )
                page: Page = drive(conn, plan)
                for trace in page.traces:
                    sink.write(orjson.dumps(trace.to_dict(), option=orjson.OPT_APPEND_NEWLINE))
                    steps += len(trace.steps)
                    events += len(trace.trajectory_events)
                    damaged += bool(trace.load_warnings)
                sessions += len(page.traces)
                if on_progress is not None:
                    elapsed = time.perf_counter() - started
                    on_progress(
                        ExportProgress(sessions, steps, events, sink.bytes_written, elapsed)
                    )
                cursor = page.cursor
                if cursor is None:
                    break
            if sessions == 0 and query.limit != 0 and not query.gate.is_open:
                with_gate, without = drive(conn, count_plan(query.filters, [query.gate, None]))
                hidden = without - with_gate
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
