"""The benchmark cases. Each runs in a fresh subprocess so its peak memory is its own.

A case is a function ``(dataset) -> Measurement`` with a reference case it is
compared with. References measure what PostgreSQL itself can hand out for the
same rows — ``COPY (...) TO STDOUT`` with the bytes thrown away — and every
other case is reported as the reference's time divided by its own (1.0 = as
fast as COPY, 0.5 = half as fast), measured in the same run.

Read cases run on two layouts of the same specification: arc-atlas's own
(``"arc-atlas"``) and a database written in atlas-sdk 0.1.16's exact shape,
then upgraded with ``arc-atlas db upgrade`` (``"atlas-sdk"``). Each layout's
cases are compared with that layout's references.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from atlas.storage.schema import SESSION_TABLES

__all__ = [
    "CASES",
    "LAYOUTS",
    "REFERENCE",
    "UI_REFERENCE",
    "UPGRADE",
    "Case",
    "Dataset",
    "Measurement",
    "upgrade",
]

LAYOUTS: tuple[str, ...] = ("arc-atlas", "atlas-sdk")


def database_url(server_url: str, name: str) -> str:
    """``server_url`` (a URL or libpq's key=value form) with its database set to ``name``."""
    if "://" not in server_url:
        return psycopg.conninfo.make_conninfo(server_url, dbname=name)
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def create_database(admin: psycopg.Connection[Any], name: str, template: str = "") -> None:
    """``CREATE DATABASE name``, a file copy of ``template`` when one is given."""
    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        # FILE_COPY copies the files as they are: much faster than WAL-logging every block.
        query = sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
            sql.Identifier(name), sql.Identifier(template)
        )
    admin.execute(query)


def drop_database(admin: psycopg.Connection[Any], name: str) -> None:
    """``DROP DATABASE IF EXISTS name``, ending its connections."""
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@dataclass(frozen=True)
class Dataset:
    """The data set a run measures: where it is and how big."""

    url: str
    sessions: int
    bytes_on_disk: int
    jsonl: str = ""  # an export of the whole data set, made once by the harness


@dataclass(frozen=True)
class Measurement:
    """One timed pass of a case."""

    seconds: float
    sessions: int
    bytes_out: int
    detail: list[dict[str, Any]] | None = None  # a case's own rows (the ui case's pages)


@dataclass(frozen=True)
class Case:
    """A benchmark and the reference case its ratio is computed against."""

    run: Callable[[Dataset], Measurement]
    reference: str
    layouts: tuple[str, ...] = LAYOUTS  # the read cases run on both; the rest on our own


def _copy_all(conn: psycopg.Connection[Any], queries: list[str]) -> int:
    total = 0
    with conn.cursor() as cur:
        for query in queries:
            with cur.copy(f"COPY ({query}) TO STDOUT") as copy:
                for block in copy:
                    total += len(block)
    return total


def copy_reference(dataset: Dataset) -> Measurement:
    """COPY every session table to the client in one snapshot and discard it."""
    with psycopg.connect(dataset.url, autocommit=True) as conn:
        started = time.perf_counter()
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            total = _copy_all(conn, [f"SELECT * FROM {t}" for t in SESSION_TABLES])
        return Measurement(time.perf_counter() - started, dataset.sessions, total)


# The sessions seed 000's first query selects (default review gate: approved).
_FILTERED_IDS = (
    "SELECT id FROM sessions WHERE (reward_stats ->> 'score')::float >= 0.8 "
    "AND review_status = 'approved' ORDER BY created_at DESC, id DESC LIMIT 1000"
)


def _filtered_reference(dataset: Dataset, with_events: bool) -> Measurement:
    children = ["step_results", "step_attempts", "guidance_notes"]
    if with_events:
        children.append("trajectory_events")
    with psycopg.connect(dataset.url, autocommit=True) as conn:
        started = time.perf_counter()
        count = conn.execute(f"SELECT count(*) FROM ({_FILTERED_IDS}) AS f").fetchone()
        queries = [
            "SELECT s.*, p.plan FROM sessions s LEFT JOIN plans p ON p.session_id = s.id "
            f"WHERE s.id IN ({_FILTERED_IDS})"
        ] + [f"SELECT * FROM {t} WHERE session_id IN ({_FILTERED_IDS})" for t in children]
        total = _copy_all(conn, queries)
        return Measurement(time.perf_counter() - started, int(count[0]) if count else 0, total)


def _bytes_of(traces: list[Any]) -> int:
    return 0  # the API hands back objects, not bytes; MB/s is reported for references only


def _get_filtered(dataset: Dataset, with_events: bool) -> Measurement:
    from atlas.storage import Database
    from atlas.training_data import get_training_sessions

    with Database.open(dataset.url, min_connections=1, max_connections=1) as db:
        started = time.perf_counter()
        sessions = get_training_sessions(
            db, min_reward=0.8, limit=1000, include_trajectory_events=with_events
        )
        return Measurement(time.perf_counter() - started, len(sessions), _bytes_of(sessions))


def _paginate_all(dataset: Dataset) -> Measurement:
    from atlas.storage import AsyncDatabase
    from atlas.training_data import paginate_sessions

    async def run() -> Measurement:
        async with await AsyncDatabase.open(dataset.url, max_connections=1) as db:
            started = time.perf_counter()
            seen = 0
            async for batch in paginate_sessions(
                db, batch_size=100, include_all_review_statuses=True
            ):
                seen += len(batch)
            return Measurement(time.perf_counter() - started, seen, 0)

    return asyncio.run(run())


def export_whole_table(dataset: Dataset) -> Measurement:
    """The JSONL export of every session, all review statuses (the export case)."""
    import os
    import tempfile

    from atlas.training_data.export import export_jsonl

    with tempfile.TemporaryDirectory() as folder:
        target = os.path.join(folder, "export.jsonl")
        summary = export_jsonl(target, dataset.url, include_all_review_statuses=True)
        return Measurement(summary.seconds, summary.sessions, summary.bytes_written)


def _export_redacted(
    dataset: Dataset, every_record: bool = False, expect_replacements: bool = False
) -> Measurement:
    """The export case with the built-in redaction rules (issue 12: at most 1.25x its time).

    ``every_record`` switches the per-line trigger off, so every record is walked
    as if each held something to redact: the worst case.
    """
    import os
    import tempfile

    from atlas.training_data.export import export_jsonl
    from atlas.training_data.redact import Redactor

    redactor = Redactor.builtin()
    if every_record:
        redactor._trigger = None
    with tempfile.TemporaryDirectory() as folder:
        target = os.path.join(folder, "export.jsonl")
        summary = export_jsonl(
            target, dataset.url, include_all_review_statuses=True, redact=redactor
        )
        assert redactor.total > 0 or not expect_replacements, "nothing planted was found"
        return Measurement(summary.seconds, summary.sessions, summary.bytes_written)


# Appended to the step traces of one session in ten by the planted redaction case.
PLANTED = (
    " contact jane.doe@example.com, key AKIAQWERTYUIOPASDFGH from 203.0.113.77, "
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlMTIz"
)


def _export_redacted_planted(dataset: Dataset) -> Measurement:
    """The redacted export when one session in ten carries secrets in its step traces.

    The secrets are appended for the measurement and cut off again afterwards,
    so the data set is unchanged for other cases.
    """
    import psycopg

    where = "session_id %% 10 = 0 AND trace IS NOT NULL"
    with psycopg.connect(dataset.url, autocommit=True) as conn:
        conn.execute(f"UPDATE step_results SET trace = trace || %s WHERE {where}", (PLANTED,))
    try:
        measured = _export_redacted(dataset, expect_replacements=True)
    finally:
        with psycopg.connect(dataset.url, autocommit=True) as conn:
            conn.execute(
                "UPDATE step_results SET trace = left(trace, length(trace) - length(%s)) "
                f"WHERE {where} AND right(trace, length(%s)) = %s",
                (PLANTED, PLANTED, PLANTED),
            )
    return measured


def _export_incremental(dataset: Dataset) -> Measurement:
    """The second run of an incremental export after 1% of the sessions became eligible.

    A first run with a state file exports the approved sessions; then 1% of the
    sessions (the pending ones with the lowest ids) are approved, and the second
    run, the one measured, exports exactly those. Their review status is put
    back afterwards, so the data set is unchanged for other cases.
    """
    import os
    import tempfile

    import psycopg

    from atlas.training_data.export import export_jsonl

    with tempfile.TemporaryDirectory() as folder:
        state = os.path.join(folder, "state.json")
        export_jsonl(os.path.join(folder, "first.jsonl"), dataset.url, state=state)
        with psycopg.connect(dataset.url, autocommit=True) as conn:
            rows = conn.execute(
                "UPDATE sessions SET review_status = 'approved' WHERE id IN (SELECT id FROM "
                "sessions WHERE review_status = 'pending' ORDER BY id LIMIT %s) RETURNING id",
                (max(dataset.sessions // 100, 1),),
            ).fetchall()
        try:
            summary = export_jsonl(os.path.join(folder, "second.jsonl"), dataset.url, state=state)
        finally:
            with psycopg.connect(dataset.url, autocommit=True) as conn:
                conn.execute(
                    "UPDATE sessions SET review_status = 'pending' WHERE id = ANY(%s)",
                    ([r[0] for r in rows],),
                )
        assert summary.sessions == len(rows), (summary.sessions, len(rows))
        return Measurement(summary.seconds, summary.sessions, summary.bytes_written)


def _stream_rl_records(dataset: Dataset) -> Measurement:
    import os

    from trainers.runtime_dataset import iter_rl_records, iter_runtime_traces

    started = time.perf_counter()
    sessions = 0

    def counted() -> Any:
        nonlocal sessions
        for trace in iter_runtime_traces(dataset.jsonl):
            sessions += 1
            yield trace

    for _ in iter_rl_records(counted()):
        pass
    return Measurement(time.perf_counter() - started, sessions, os.path.getsize(dataset.jsonl))


def _runtime_persistence(dataset: Dataset) -> Measurement:
    """Demo sessions through the real loop; time and round trips spent writing and reading.

    Prints its own detail line (round trips per session, microseconds per
    event) on stderr; the table reports persistence throughput against COPY.
    """
    import sys

    from atlas import core
    from atlas.config import config_from_mapping
    from atlas.runtime import recorder
    from atlas.runtime.demo import DEMO_CONFIG, DEMO_TASKS
    from atlas.storage import writer

    spent = {"seconds": 0.0, "round_trips": 0}
    original_run, original_rows = writer.AsyncSessionWriter.run, recorder._rows

    async def timed_run(self: Any, op: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original_run(self, op)
        finally:
            spent["seconds"] += time.perf_counter() - started
            spent["round_trips"] += 1

    async def timed_rows(*args: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original_rows(*args)
        finally:
            spent["seconds"] += time.perf_counter() - started
            spent["round_trips"] += 1

    writer.AsyncSessionWriter.run = timed_run  # type: ignore[method-assign]
    recorder._rows = timed_rows
    config = config_from_mapping({**DEMO_CONFIG, "metadata": {"source": "bench-runtime"}})
    runs = 40
    try:
        for i in range(runs):
            core.run(DEMO_TASKS[i % len(DEMO_TASKS)], config=config, database_url=dataset.url)
    finally:
        writer.AsyncSessionWriter.run = original_run  # type: ignore[method-assign]
        recorder._rows = original_rows
    with psycopg.connect(dataset.url, autocommit=True) as conn:
        events = conn.execute(
            "SELECT count(*) FROM trajectory_events e JOIN sessions s ON s.id = e.session_id "
            "WHERE s.metadata ->> 'source' = 'bench-runtime'"
        ).fetchone()
        conn.execute("DELETE FROM sessions WHERE metadata ->> 'source' = 'bench-runtime'")
    n_events = int(events[0]) if events else 0
    print(
        f"runtime persistence: {spent['round_trips'] / runs:.1f} round trips and "
        f"{spent['seconds'] / runs * 1000:.1f} ms per session; {n_events / runs:.0f} events per "
        f"session, {spent['seconds'] / max(1, n_events) * 1e6:.0f} us of database time per event",
        file=sys.stderr,
    )
    return Measurement(spent["seconds"], runs, 0)


def upgrade(dataset: Dataset) -> Measurement:
    """``arc-atlas db upgrade`` on a database atlas-sdk wrote, run once, as a user runs it.

    What the command prints (applied migrations, progress) goes to stderr, so
    the harness shows it and stdout stays this process's one result line.
    """
    import contextlib
    import sys

    from atlas.cli.main import main

    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        code = main(["db", "upgrade", "--database-url", dataset.url])
    if code != 0:
        raise SystemExit(f"arc-atlas db upgrade exited {code}")
    return Measurement(time.perf_counter() - started, dataset.sessions, dataset.bytes_on_disk)


def _partition_cases(interval: str) -> dict[str, Case]:
    """``db partition-events --interval INTERVAL`` on a copy, and reads of it (bench.partition)."""

    def convert(dataset: Dataset) -> Measurement:
        from bench.partition import convert  # imported here: bench.partition builds on this module

        return convert(dataset, interval)

    def copy_event_type(dataset: Dataset) -> Measurement:
        from bench.partition import copy_event_type

        return copy_event_type(dataset, interval)

    def export(dataset: Dataset) -> Measurement:
        from bench.partition import export_partitioned

        return export_partitioned(dataset, interval)

    return {
        f"partition ({interval}): db partition-events on a copy of the data set": Case(
            convert, REFERENCE
        ),
        f"partition ({interval}): the same event_type COPY on the partitioned copy": Case(
            copy_event_type, EVENT_TYPE_REFERENCE
        ),
        f"partition ({interval}): export, whole table, on the partitioned copy": Case(
            export, "export: arc-atlas JSONL, whole table, all statuses"
        ),
    }


def _event_type_reference(dataset: Dataset) -> Measurement:
    from bench.partition import copy_event_type

    return copy_event_type(dataset, None)


def _ray_read(tasks: int) -> Callable[[Dataset], Measurement]:
    """read_sessions with ``tasks`` read tasks on a local Ray cluster (bench.ray_read)."""

    def run(dataset: Dataset) -> Measurement:
        from bench.ray_read import read  # imported here: bench.ray_read builds on this module

        return read(dataset, tasks)

    return run


def _export_parquet(dataset: Dataset) -> Measurement:
    from bench.ray_read import export_parquet

    return export_parquet(dataset)


def _ui_pages(dataset: Dataset) -> Measurement:
    from bench.ui import run  # imported here: bench.ui builds on this module

    return run(dataset)


def _ui_reference(dataset: Dataset) -> Measurement:
    from bench.ui import copy_list_page

    return copy_list_page(dataset)


UPGRADE = "upgrade: arc-atlas db upgrade of the atlas-sdk database (once)"
REFERENCE = "reference: COPY all session tables"
UI_REFERENCE = "reference: COPY the list's first page (50 rows)"
EVENT_TYPE_REFERENCE = "reference: COPY the events of one event_type (002's filter, unpartitioned)"
CASES: dict[str, Case] = {
    REFERENCE: Case(copy_reference, REFERENCE),
    "reference: COPY rows of min_reward>=0.8 limit 1000": Case(
        lambda d: _filtered_reference(d, True), REFERENCE
    ),
    "reference: same, without events": Case(lambda d: _filtered_reference(d, False), REFERENCE),
    "get_training_sessions(min_reward=0.8, limit=1000)": Case(
        lambda d: _get_filtered(d, True), "reference: COPY rows of min_reward>=0.8 limit 1000"
    ),
    "  ... include_trajectory_events=False": Case(
        lambda d: _get_filtered(d, False), "reference: same, without events"
    ),
    "paginate_sessions(batch_size=100), whole table": Case(_paginate_all, REFERENCE),
    "export: arc-atlas JSONL, whole table, all statuses": Case(export_whole_table, REFERENCE),
    "  ... redact: the same with --redact (ratio: plain time / redacted time)": Case(
        _export_redacted, "export: arc-atlas JSONL, whole table, all statuses"
    ),
    "  ... redact: every record walked (worst case; ratio as above)": Case(
        lambda d: _export_redacted(d, every_record=True),
        "export: arc-atlas JSONL, whole table, all statuses",
    ),
    "  ... redact: one session in ten carries planted secrets (ratio as above)": Case(
        _export_redacted_planted, "export: arc-atlas JSONL, whole table, all statuses"
    ),
    "  ... incremental: --state run after 1% became eligible (ratio: full time / this)": Case(
        _export_incremental, "export: arc-atlas JSONL, whole table, all statuses"
    ),
    "trainers: stream the export into RL records": Case(
        _stream_rl_records, REFERENCE, ("arc-atlas",)
    ),
    "runtime: persistence of demo sessions (database time)": Case(
        _runtime_persistence, REFERENCE, ("arc-atlas",)
    ),
    "export: parquet, kind=sessions, whole table, all statuses": Case(_export_parquet, REFERENCE),
    **{
        f"ray: read_sessions(kind=sessions), {n} read task{'s' * (n > 1)}, iter_batches": Case(
            _ray_read(n), REFERENCE
        )
        for n in (1, 2, 4)
    },
    EVENT_TYPE_REFERENCE: Case(_event_type_reference, EVENT_TYPE_REFERENCE),
    **_partition_cases("month"),
    **_partition_cases("day"),
    UI_REFERENCE: Case(_ui_reference, UI_REFERENCE),
    "ui: arc-atlas ui pages over HTTP (row: first list page)": Case(_ui_pages, UI_REFERENCE),
}
