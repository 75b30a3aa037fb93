"""Rows to records: the one record assembly, shared by the Python API and the exporter.

Pure functions, no I/O. Input is what the page queries return (dict rows);
output is the JSONL record of a session, exactly ``AtlasSessionTrace.to_dict()``
form. The exporter writes records as they are; the Python API turns them into
:class:`AtlasSessionTrace` with ``from_dict``. One assembly, so the two paths
cannot drift apart. Everything older Atlas versions wrote
is accepted: JSON stored as text, nested events, a NULL plan, metadata that
is not an object. What cannot be decoded is kept as found and noted in
``trace.load_warnings``; assembly never raises for bad data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from atlas.runtime.traces import AtlasSessionTrace, as_score
from atlas.storage.jsonenc import decode_object, loads_lenient
from atlas.training_data.event_assembly import (
    EVENT_ROW_KEYS,
    EventBlock,
    normalise_events,
    session_events,
    with_row_fields,
)
from atlas.training_data.step_assembly import assemble_step, assemble_steps, merge_attempt_history

__all__ = [
    "EVENT_ROW_KEYS",
    "EventBlock",
    "LoadOptions",
    "PageRows",
    "assemble_page",
    "assemble_record",
    "assemble_records",
    "assemble_step",
    "assemble_trace",
    "merge_attempt_history",
    "normalise_events",
    "with_row_fields",
]

# Session row values also written into session_metadata (seed 001: it "includes
# persisted metadata, execution status, timestamps"), unless stored metadata has
# the key already; ATLAS core's trainers read reward_audit from there.
_ROW_FIELDS_IN_METADATA = (
    "session_id",
    "status",
    "created_at",
    "completed_at",
    "review_status",
    "reward_stats",
    "reward_audit",
)


@dataclass(frozen=True)
class LoadOptions:
    """What to load besides the session row."""

    include_trajectory_events: bool = True
    include_learning_data: bool = True
    trajectory_event_limit: int | None = None
    # Events already stored as complete flat envelopes arrive as JSON text and
    # go into records untouched (orjson.Fragment); the exporter sets this.
    raw_events: bool = False
    # Also write the events into session_metadata["trajectory_events"], as
    # atlas-sdk's exporter does (for tools that read them there); off by
    # default, because it writes every event twice.
    events_in_metadata: bool = False


@dataclass
class PageRows:
    """All rows fetched for one page, children grouped by session id."""

    sessions: list[dict[str, Any]]
    steps: dict[int, list[dict[str, Any]]]
    attempts: dict[tuple[int, int], list[dict[str, Any]]]
    guidance: dict[tuple[int, int], list[str]]
    events: dict[int, Any]
    event_totals: dict[int, int]
    # Step ids each session has attempt or guidance rows for.
    child_steps: dict[int, set[int]] = field(default_factory=dict)


def _session_metadata(metadata: Mapping[str, Any], row_values: Sequence[Any]) -> dict[str, Any]:
    """The metadata column whole, plus the row's values it lacks (``_ROW_FIELDS_IN_METADATA``)."""
    merged = dict(metadata)
    for name, value in zip(_ROW_FIELDS_IN_METADATA, row_values, strict=True):
        if value is not None:
            merged.setdefault(name, value)
    return merged


def _plan(value: Any, warnings: list[str]) -> Any:
    """The plan as stored; a bare list of steps (older writers) as ``{"steps": [...]}``."""
    plan = loads_lenient(value)
    if isinstance(plan, list):
        return {"steps": plan}
    if plan is not None and not isinstance(plan, dict):
        warnings.append("plan is not a JSON object; kept under legacy_value")
        return {"legacy_value": plan}
    return plan


def _moment(value: Any, name: str, warnings: list[str]) -> Any:
    """A timestamp as ISO 8601 text; the server's text (``infinity``) when Python cannot hold it."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, str):
        warnings.append(f"{name} {value!r} is outside Python's date range; kept as text")
    return value


def _session_reward(column: Any, metadata: Mapping[str, Any], warnings: list[str]) -> Any:
    """The session reward: the ``reward`` column, else metadata's ``session_reward``."""
    value = loads_lenient(column)
    what = "session reward"
    if value is None:
        value, what = metadata.get("session_reward"), "session_reward in metadata"
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"score": value}  # very old writers stored the bare score
    # Text such as "0.9" still gives the score (finite only, as for any reward).
    score = as_score(value) if isinstance(value, str) else None
    return {"score": score, **(decode_object(value, what, warnings) or {})}


def assemble_record(
    row: Mapping[str, Any],
    steps: Sequence[Mapping[str, Any]],
    attempts: Mapping[tuple[int, int], Sequence[Mapping[str, Any]]],
    guidance: Mapping[tuple[int, int], Sequence[str]],
    events: Sequence[Any] | EventBlock | None,
    event_total: int | None,
    options: LoadOptions,
    child_steps: Iterable[int] = (),
) -> dict[str, Any]:
    """One session's record (``AtlasSessionTrace.to_dict()`` form) from its rows.

    ``child_steps`` are the step ids that have attempt or guidance rows; one
    without a step row still becomes a step (with a warning), so no row is lost.
    """
    warnings: list[str] = []
    session_id = row["id"]
    metadata = decode_object(row.get("metadata"), "session metadata", warnings) or {}
    plan = _plan(row.get("plan"), warnings)
    session_reward = _session_reward(row.get("reward"), metadata, warnings)
    audit = loads_lenient(row.get("reward_audit"))
    if audit is None:
        audit = metadata.get("reward_audit")
    stats = decode_object(row.get("reward_stats"), "reward_stats", warnings)
    step_records = assemble_steps(
        session_id, steps, plan, attempts, guidance, child_steps, warnings
    )
    trajectory, kept, total = session_events(
        events,
        event_total,
        metadata,
        raw=options.raw_events,
        limit=options.trajectory_event_limit,
        warnings=warnings,
    )
    created_at = _moment(row.get("created_at"), "created_at", warnings)
    completed_at = _moment(row.get("completed_at"), "completed_at", warnings)
    row_values = (session_id, row.get("status"), created_at, completed_at,
                  row.get("review_status"), stats, audit)  # fmt: skip
    session_metadata = _session_metadata(metadata, row_values)
    load_events = options.include_trajectory_events
    if options.events_in_metadata and load_events:
        session_metadata.setdefault("trajectory_events", trajectory)
    learning = options.include_learning_data
    # Keys in AtlasSessionTrace field order, values in to_dict() form.
    record: dict[str, Any] = {
        "task": row.get("task") or "",
        "final_answer": row.get("final_answer"),
        "plan": plan,
        "steps": step_records,
        "session_metadata": session_metadata,
        "session_reward": session_reward,
        "trajectory_events": trajectory if load_events else [],
        "student_learning": row.get("student_learning") if learning else None,
        "teacher_learning": row.get("teacher_learning") if learning else None,
        "learning_history": metadata.get("learning_history") if learning else None,
        "adaptive_summary": metadata.get("adaptive_summary"),
        "session_id": session_id,
        "status": row.get("status"),
        "review_status": row.get("review_status"),
        "review_notes": row.get("review_notes"),
        "created_at": created_at,
        "completed_at": completed_at,
        "reward_stats": stats,
        "reward_audit": audit,
        "trajectory_event_count": total if load_events else 0,
        "trajectory_events_truncated": load_events and total > kept,
        "load_warnings": warnings,
    }
    for name in AtlasSessionTrace.DERIVED:
        if name in metadata:
            record[name] = metadata[name]
    return record


def assemble_trace(
    row: Mapping[str, Any],
    steps: Sequence[Mapping[str, Any]],
    attempts: Mapping[tuple[int, int], Sequence[Mapping[str, Any]]],
    guidance: Mapping[tuple[int, int], Sequence[str]],
    events: Sequence[Any] | EventBlock | None,
    event_total: int | None,
    options: LoadOptions,
) -> AtlasSessionTrace:
    """One session as a trace: :func:`assemble_record` seen through the dataclasses."""
    record = assemble_record(row, steps, attempts, guidance, events, event_total, options)
    return AtlasSessionTrace.from_dict(record)


def assemble_records(rows: PageRows, options: LoadOptions) -> list[dict[str, Any]]:
    """The record of every session of a page, in the page's order."""
    load_events = options.include_trajectory_events
    return [
        assemble_record(
            row,
            rows.steps.get(row["id"], ()),
            rows.attempts,
            rows.guidance,
            rows.events.get(row["id"], []) if load_events else None,
            rows.event_totals.get(row["id"]) if load_events else None,
            options,
            rows.child_steps.get(row["id"], ()),
        )
        for row in rows.sessions
    ]


def assemble_page(rows: PageRows, options: LoadOptions) -> list[AtlasSessionTrace]:
    """Every session of a page as a trace, in the page's order."""
    return [AtlasSessionTrace.from_dict(r) for r in assemble_records(rows, options)]
