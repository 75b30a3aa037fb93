"""Exports for trainers, straight from the database: Parquet, GRPO groups, DPO pairs.

The library behind ``arc-atlas export --format parquet|grpo|dpo``. Each
function takes the filters of :func:`~atlas.training_data.get_training_sessions`
and the review gate applies as for JSONL. When the function opens the
connection itself (``db_url`` a URL or None) it reads one consistent snapshot
(a ``REPEATABLE READ, READ ONLY`` transaction); an open handle is used as it is.
Output appears under its name only when complete, and not at all when no
record was produced: the summary then says whether the review gate hid
sessions (``hidden_by_gate``), as :func:`~atlas.training_data.export.export_jsonl`'s does.
``redact`` rewrites every record before it is written, and ``manifest`` writes
``<output>.manifest.json`` beside the file, as for JSONL exports (see
:mod:`atlas.training_data.redact` and :mod:`atlas.training_data.manifest`).

For a JSONL file as the source, use the iterator functions directly, e.g.
``write_jsonl(iter_preference_records(iter_runtime_traces(path)), "pairs.jsonl")``.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from typing_extensions import Unpack

from atlas.config.loader import load_config
from atlas.config.models import AtlasConfig
from atlas.errors import ReviewGateWarning, TraceDecodeWarning
from atlas.runtime.traces import AtlasSessionTrace
from atlas.storage import Database
from atlas.training_data import TrainingFilters, TrainingQuery, paginate_sessions_sync
from atlas.training_data.export import ExportProgress, ExportSummary
from atlas.training_data.flows import hidden_by_gate
from atlas.training_data.incremental import IdRanges
from atlas.training_data.manifest import (
    ManifestRecords,
    manifest_body,
    parquet_records,
    write_manifest,
)
from atlas.training_data.output import SafeOutput
from atlas.training_data.redact import Redactor
from atlas.training_data.targets import connection
from trainers.columns import DEFAULT_ROW_GROUP_SIZE, iter_rows, records_from_sessions
from trainers.preferences import GroupBy, iter_grpo_records, iter_preference_records

__all__ = ["TrainingExportSummary", "export_dpo", "export_grpo", "export_parquet", "write_jsonl"]

Progress = Callable[[ExportProgress], None]


@dataclass(frozen=True)
class TrainingExportSummary(ExportSummary):
    """An :class:`ExportSummary` plus the format and how many records were written.

    ``sessions``/``steps``/``events`` count what was read; ``records`` what
    was written (rows, groups or pairs). ``records == 0`` means no file.
    """

    format: str
    records: int


@dataclass
class _Tally:
    sessions: int = 0
    steps: int = 0
    events: int = 0
    damaged: int = 0
    session_ids: list[int] = field(default_factory=list)


def write_jsonl(
    records: Iterable[Mapping[str, Any]],
    output: str | os.PathLike[str],
    *,
    compression_level: int | None = None,
) -> int:
    """Write records one JSON object per line (``.gz``/``.xz``/``.zst`` compress; ``-`` stdout).

    The file appears under ``output`` only when complete; no records give an
    empty file. Returns the number of records.
    """
    with SafeOutput(os.fspath(output), compression_level=compression_level) as sink:
        return _write_lines(records, sink)


def _write_lines(
    records: Iterable[Mapping[str, Any]], sink: SafeOutput, hashes: ManifestRecords | None = None
) -> int:
    count = 0
    for record in records:
        line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        sink.write(line)
        if hashes is not None:
            hashes.add_next(line)
        count += 1
    return count


def _config(config: AtlasConfig | str | os.PathLike[str] | None) -> AtlasConfig | None:
    if config is None or isinstance(config, AtlasConfig):
        return config
    return load_config(config)


@contextlib.contextmanager
def _snapshot(db_url: Any, config: AtlasConfig | None) -> Iterator[Any]:
    """Where to read: a handle of the caller's as it is, else one read-only snapshot."""
    if db_url is not None and not isinstance(db_url, str):
        yield db_url
        return
    with (
        Database.open(db_url, config=config, min_connections=1, max_connections=1) as db,
        db.connection() as conn,
        conn.transaction(),
    ):
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield conn


def _sessions(
    target: Any,
    config: AtlasConfig | None,
    batch_size: int,
    filters: TrainingFilters,
    tally: _Tally,
    on_progress: Progress | None,
    started: float,
) -> Iterator[AtlasSessionTrace]:
    for batch in paginate_sessions_sync(target, batch_size=batch_size, config=config, **filters):
        for trace in batch:
            tally.sessions += 1
            tally.steps += len(trace.steps)
            tally.events += (
                len(trace.trajectory_events)
                if trace.trajectory_events_truncated
                else trace.trajectory_event_count
            )
            tally.damaged += bool(trace.load_warnings)
            if trace.session_id is not None:
                tally.session_ids.append(trace.session_id)
            yield trace
        if on_progress is not None:
            elapsed = time.perf_counter() - started
            on_progress(ExportProgress(tally.sessions, tally.steps, tally.events, 0, elapsed))


def _skip_events(filters: TrainingFilters) -> None:
    """Load no events or learning data unless asked: groups and pairs do not use them."""
    filters.setdefault("include_trajectory_events", False)
    filters.setdefault("include_learning_data", False)


class _Sink(Protocol):
    bytes_written: int

    def commit(self) -> None: ...

    def abort(self) -> None: ...


Records = Iterator[Mapping[str, Any]]


def _export(
    output: str,
    db_url: Any,
    *,
    format_name: str,
    config: AtlasConfig | str | os.PathLike[str] | None,
    batch_size: int,
    filters: TrainingFilters,
    on_progress: Progress | None,
    open_output: Callable[[], Any],
    records: Callable[[Iterator[AtlasSessionTrace]], Records],
    write: Callable[[Any, Records, ManifestRecords | None], int],
    options: dict[str, Any],
    redact: Redactor | None,
    manifest: bool,
) -> TrainingExportSummary:
    """Read, make ``records``, redact them, ``write`` them; then the manifest.

    ``write`` gets the sink, the records and, for a line format with a
    manifest, the hashes to fill; Parquet rows are hashed from the file.
    """
    cfg = _config(config)
    query = TrainingQuery.build(config=cfg, **filters)  # bad filters fail before any I/O
    started = time.perf_counter()
    tally = _Tally()
    sink: _Sink = open_output()  # an unwritable output fails before the database is touched
    manifest = manifest and output != "-"
    lines = ManifestRecords(key="position") if manifest and format_name != "parquet" else None
    about: dict[str, Any] | None = None
    try:
        # The summary reports what these warnings would say, as export_jsonl does.
        with _snapshot(db_url, cfg) as target, warnings.catch_warnings():
            warnings.simplefilter("ignore", ReviewGateWarning)
            warnings.simplefilter("ignore", TraceDecodeWarning)
            sessions = _sessions(target, cfg, batch_size, filters, tally, on_progress, started)
            produced = records(sessions)
            if redact is not None:
                produced = map(redact.redact_record, produced)  # type: ignore[arg-type]
            count = write(sink, produced, lines)
            hidden = 0
            if not tally.sessions or (manifest and count):
                with connection(target, cfg) as conn:
                    if not tally.sessions:
                        hidden = hidden_by_gate(conn, query)
                    if manifest and count:
                        about = manifest_body(conn, dict(filters), query.gate)
        if count:
            sink.commit()
        else:
            sink.abort()
        if about is not None:
            source = IdRanges()
            source.update(tally.session_ids)
            counts = {"sessions": tally.sessions, "steps": tally.steps, "events": tally.events,
                      "records": count}  # fmt: skip
            body = {**about, "format": format_name, "counts": counts, "options": options,
                    "source_sessions": source.to_json(),
                    "redaction": redact.report if redact is not None else None}  # fmt: skip
            write_manifest(output, body, lines if lines is not None else parquet_records(output))
    except BaseException:
        sink.abort()
        raise
    return TrainingExportSummary(
        output=output,
        sessions=tally.sessions,
        steps=tally.steps,
        events=tally.events,
        bytes_written=sink.bytes_written if count else 0,
        seconds=time.perf_counter() - started,
        gate=query.gate,
        hidden_by_gate=hidden,
        damaged_sessions=tally.damaged,
        redaction=redact.report if redact is not None else None,
        format=format_name,
        records=count,
    )


def export_parquet(
    output: str,
    db_url: Any = None,
    *,
    kind: str = "rl",
    config: AtlasConfig | str | os.PathLike[str] | None = None,
    batch_size: int = 100,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    compression: str = "zstd",
    on_progress: Progress | None = None,
    redact: Redactor | None = None,
    manifest: bool = False,
    **filters: Unpack[TrainingFilters],
) -> TrainingExportSummary:
    """Write matching sessions as a Parquet table of ``kind`` records (default: RL records).

    ``kind`` is ``rl``, ``flat``, ``sessions``, ``grpo`` or ``dpo`` (the last
    two with default grouping; see :mod:`trainers.columns` for the columns).
    Streams page by page into row groups of ``row_group_size`` rows.
    ``redact`` and ``manifest`` work as for every export here (module docs).
    Raises :class:`~atlas.training_data.output.OutputError` (before reading)
    when ``output`` cannot be written, :class:`~atlas.errors.InvalidFilter`
    for bad filters.
    """
    # Imported here so that grpo/dpo exports work without pyarrow installed.
    from trainers.parquet import ParquetOutput

    if kind in ("grpo", "dpo"):
        _skip_events(filters)  # pairs and groups need no events
    return _export(
        output,
        db_url,
        format_name="parquet",
        config=config,
        batch_size=batch_size,
        filters=filters,
        on_progress=on_progress,
        open_output=lambda: ParquetOutput(
            output, kind=kind, row_group_size=row_group_size, compression=compression
        ),
        records=lambda sessions: records_from_sessions(sessions, kind),
        write=lambda sink, records, _: sink.write_rows(iter_rows(records, kind)),
        options={"kind": kind, "row_group_size": row_group_size, "compression": compression},
        redact=redact,
        manifest=manifest,
    )


def export_grpo(
    output: str,
    db_url: Any = None,
    *,
    by: GroupBy = "task",
    min_group_size: int = 2,
    config: AtlasConfig | str | os.PathLike[str] | None = None,
    batch_size: int = 100,
    compression_level: int | None = None,
    on_progress: Progress | None = None,
    redact: Redactor | None = None,
    manifest: bool = False,
    **filters: Unpack[TrainingFilters],
) -> TrainingExportSummary:
    """Write GRPO groups as JSONL, one group per line (see :meth:`GrpoGroup.to_record`).

    Sessions are grouped by ``task`` or ``learning_key``; groups smaller than
    ``min_group_size`` are left out. Trajectory events and learning data are
    not loaded unless asked for (groups do not use them). ``output`` may be
    compressed by extension or ``-`` for stdout.
    """
    _skip_events(filters)
    return _export(
        output,
        db_url,
        format_name="grpo",
        config=config,
        batch_size=batch_size,
        filters=filters,
        on_progress=on_progress,
        open_output=lambda: SafeOutput(output, compression_level=compression_level),
        records=lambda sessions: iter_grpo_records(sessions, by=by, min_group_size=min_group_size),
        write=lambda sink, records, hashes: _write_lines(records, sink, hashes),
        options={"by": by, "min_group_size": min_group_size},
        redact=redact,
        manifest=manifest,
    )


def export_dpo(
    output: str,
    db_url: Any = None,
    *,
    by: GroupBy = "task",
    min_margin: float = 0.1,
    config: AtlasConfig | str | os.PathLike[str] | None = None,
    batch_size: int = 100,
    compression_level: int | None = None,
    on_progress: Progress | None = None,
    redact: Redactor | None = None,
    manifest: bool = False,
    **filters: Unpack[TrainingFilters],
) -> TrainingExportSummary:
    """Write DPO preference pairs as JSONL, one pair per line (``prompt``, ``chosen``, ...).

    Pairs answers to the same task (or learning key) whose session rewards
    differ by at least ``min_margin``. Trajectory events and learning data are
    not loaded unless asked for. ``output`` may be compressed by extension or
    ``-`` for stdout.
    """
    _skip_events(filters)
    return _export(
        output,
        db_url,
        format_name="dpo",
        config=config,
        batch_size=batch_size,
        filters=filters,
        on_progress=on_progress,
        open_output=lambda: SafeOutput(output, compression_level=compression_level),
        records=lambda sessions: iter_preference_records(sessions, min_margin=min_margin, by=by),
        write=lambda sink, records, hashes: _write_lines(records, sink, hashes),
        options={"by": by, "min_margin": min_margin},
        redact=redact,
        manifest=manifest,
    )
