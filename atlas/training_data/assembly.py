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
from dataclasses import dataclass
from typing import Any

import orjson

from atlas.runtime.traces import AtlasSessionTrace, canonical_reward
from atlas.storage.events import to_envelope
from atlas.storage.jsonenc import loads_lenient

__all__ = [
    "LoadOptions",
    "PageRows",
    "assemble_page",
    "assemble_record",
    "assemble_records",
    "assemble_trace",
]

# Step metadata keys that become AtlasStepTrace fields; what is left stays in
# step.metadata, so nothing is written twice in an export.
_STEP_FIELDS_FROM_METADATA = (
    "description",
    "tool",
    "tool_params",
    "context",
    "validation",
    "artifacts",
    "deliverable",
    "runtime",
    "runtime_ms",
    "depends_on",
    "attempt_history",
)
# Session metadata keys that become AtlasSessionTrace fields.
_SESSION_FIELDS_FROM_METADATA = ("adaptive_summary", "learning_history", "trajectory_events")


@dataclass(frozen=True)
class LoadOptions:
    """What to load besides the session row."""

    include_trajectory_events: bool = True
    include_learning_data: bool = True
    trajectory_event_limit: int | None = None
    # Events already stored as complete flat envelopes arrive as JSON text and
    # go into records untouched (orjson.Fragment); the exporter sets this.
    raw_events: bool = False


@dataclass
class PageRows:
    """All rows fetched for one page, children grouped by session id."""

    sessions: list[dict[str, Any]]
    steps: dict[int, list[dict[str, Any]]]
    attempts: dict[tuple[int, int], list[dict[str, Any]]]
    guidance: dict[tuple[int, int], list[str]]
    events: dict[int, list[Any]]
    event_totals: dict[int, int]


def _object(value: Any, what: str, warnings: list[str]) -> dict[str, Any] | None:
    """Decode ``value`` into a dict, or None; anything else is noted and wrapped."""
    value = loads_lenient(value)
    if value is None or isinstance(value, dict):
        return value
    warnings.append(f"{what} is not a JSON object ({type(value).__name__}); kept as found")
    return {"legacy_value": value}


def _plan_steps(plan: dict[str, Any] | None) -> dict[Any, Mapping[str, Any]]:
    steps = plan.get("steps") if plan else None
    found: dict[Any, Mapping[str, Any]] = {}
    for spec in steps if isinstance(steps, list) else ():
        if isinstance(spec, Mapping):
            key = spec.get("id", spec.get("step_id"))
            found[key] = spec
            found[str(key)] = spec
    return found


def _merge_history(rows: Sequence[Mapping[str, Any]], runtime_history: Any) -> list[dict[str, Any]]:
    """Attempts from the step_attempts table, enriched with what the runtime kept per attempt."""
    if not runtime_history:
        # The common case: table rows only, already in attempt order.
        return [
            {"attempt": row["attempt"], "evaluation": loads_lenient(row["evaluation"])}
            for row in rows
        ]
    extra: dict[Any, Mapping[str, Any]] = {}
    leftovers: list[dict[str, Any]] = []
    for entry in runtime_history if isinstance(runtime_history, list) else ():
        if isinstance(entry, Mapping) and "attempt" in entry:
            extra[entry["attempt"]] = entry
        else:
            leftovers.append(entry if isinstance(entry, dict) else {"value": entry})
    history = []
    for row in rows:
        evaluation = loads_lenient(row["evaluation"])
        item = {
            **extra.pop(row["attempt"], {}),
            "attempt": row["attempt"],
            "evaluation": evaluation,
        }
        history.append(item)
    # Runtime entries without a table row (older writers kept only these).
    history.extend(dict(entry) for entry in extra.values())
    history.extend(leftovers)
    history.sort(key=lambda h: (h.get("attempt") is None, h.get("attempt") or 0))
    return history


def _as_runtime(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, Mapping):
        return _as_runtime(value.get("ms", value.get("milliseconds")))
    return None


def assemble_step(
    row: Mapping[str, Any],
    plan_steps: Mapping[Any, Mapping[str, Any]],
    attempts: Sequence[Mapping[str, Any]],
    guidance: Sequence[str],
    warnings: list[str],
) -> dict[str, Any]:
    """One step record: its row, its plan entry, its attempts and guidance."""
    step_id = row["step_id"]
    metadata = _object(row.get("metadata"), f"step {step_id} metadata", warnings) or {}
    evaluation = _object(row.get("evaluation"), f"step {step_id} evaluation", warnings) or {}
    spec = plan_steps.get(step_id) or {}
    # Evaluation is {"validation": ..., "reward": ...}; some writers stored the reward itself.
    reward = evaluation.get("reward", evaluation if "score" in evaluation else None)
    validation = evaluation.get("validation", metadata.get("validation"))
    tool_params = loads_lenient(metadata.get("tool_params", spec.get("tool_params")))
    context = loads_lenient(metadata.get("context"))
    depends_on = metadata.get("depends_on", spec.get("depends_on"))
    # Keys in AtlasStepTrace field order, values in to_dict() form.
    return {
        "step_id": step_id,
        "description": metadata.get("description", spec.get("description")),
        "trace": row.get("trace"),
        "output": row.get("output"),
        "reward": canonical_reward(reward),
        "tool": metadata.get("tool", spec.get("tool")),
        "tool_params": tool_params if isinstance(tool_params, dict) else None,
        "context": context if isinstance(context, dict) else {"prior_results": {}},
        "validation": validation if isinstance(validation, dict) else None,
        "attempts": row.get("attempts") or len(attempts) or 1,
        "guidance": list(guidance),
        "metadata": {k: v for k, v in metadata.items() if k not in _STEP_FIELDS_FROM_METADATA},
        "artifacts": metadata.get("artifacts"),
        "deliverable": metadata.get("deliverable"),
        "runtime": _as_runtime(metadata.get("runtime", metadata.get("runtime_ms"))),
        "depends_on": list(depends_on) if isinstance(depends_on, list) else [],
        "attempt_history": _merge_history(attempts, metadata.get("attempt_history")),
    }


def _events(raw: Iterable[Any], warnings: list[str]) -> list[Any]:
    events: list[Any] = []
    for value in raw:
        decoded = loads_lenient(value)
        if isinstance(decoded, Mapping):
            events.append(to_envelope(decoded))
        else:
            warnings.append("a trajectory event is not a JSON object; kept under payload")
            events.append(to_envelope({"event_type": "unknown", "payload": decoded}))
    return events


@dataclass(frozen=True)
class EventBlock:
    """A session's events as fetched: one JSON array (text), in chronological order.

    ``all_flat`` says every event is already a complete flat envelope, so the
    array can go into an export untouched; ``kept`` is its length.
    """

    raw: str | None
    all_flat: bool
    kept: int

    def decoded(self, warnings: list[str]) -> list[Any]:
        """The events as flat envelopes (dicts)."""
        if not self.raw:
            return []
        events = orjson.loads(self.raw)
        # Complete flat envelopes (checked by the server) need no normalising.
        return events if self.all_flat else _events(events, warnings)


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def assemble_record(
    row: Mapping[str, Any],
    steps: Sequence[Mapping[str, Any]],
    attempts: Mapping[tuple[int, int], Sequence[Mapping[str, Any]]],
    guidance: Mapping[tuple[int, int], Sequence[str]],
    events: Sequence[Any] | EventBlock | None,
    event_total: int | None,
    options: LoadOptions,
) -> dict[str, Any]:
    """One session's record (``AtlasSessionTrace.to_dict()`` form) from its rows."""
    warnings: list[str] = []
    session_id = row["id"]
    metadata = _object(row.get("metadata"), "session metadata", warnings) or {}
    plan = loads_lenient(row.get("plan"))
    if isinstance(plan, list):
        plan = {"steps": plan}
    elif plan is not None and not isinstance(plan, dict):
        warnings.append("plan is not a JSON object; kept under legacy_value")
        plan = {"legacy_value": plan}
    metadata = dict(metadata)
    reward = loads_lenient(row.get("reward"))
    meta_reward = metadata.pop("session_reward", None)
    session_reward = reward if isinstance(reward, dict) else meta_reward
    if isinstance(reward, dict) and meta_reward is not None and meta_reward != reward:
        metadata["session_reward"] = meta_reward  # differs from the column: keep both
    audit = loads_lenient(row.get("reward_audit"))
    meta_audit = metadata.pop("reward_audit", None)
    if audit is None:
        audit = meta_audit
    elif meta_audit is not None and meta_audit != audit:
        metadata["reward_audit"] = meta_audit
    stats = loads_lenient(row.get("reward_stats"))
    plan_steps = _plan_steps(plan if isinstance(plan, dict) else None)
    step_records = [
        assemble_step(
            step,
            plan_steps,
            attempts.get((session_id, step["step_id"]), ()),
            guidance.get((session_id, step["step_id"]), ()),
            warnings,
        )
        for step in steps
    ]
    trajectory: Any
    if isinstance(events, EventBlock):
        if options.raw_events and events.all_flat and events.raw:
            # Already complete flat envelopes: the JSON text goes out as it is.
            trajectory, kept = orjson.Fragment(events.raw), events.kept
        else:
            trajectory = events.decoded(warnings)
            kept = len(trajectory)
    else:
        trajectory = _events(events, warnings) if events is not None else []
        kept = len(trajectory)
    total = event_total if event_total is not None else kept
    if events is not None and not kept and isinstance(metadata.get("trajectory_events"), list):
        # Very old writers kept events inside the session metadata; the event
        # limit and the count apply to them as to rows of trajectory_events.
        stored = metadata["trajectory_events"]
        total = len(stored)
        limit = options.trajectory_event_limit
        trajectory = _events(stored if limit is None else stored[:limit], warnings)
        kept = len(trajectory)
    learning = options.include_learning_data
    derived = AtlasSessionTrace.DERIVED
    # Keys in AtlasSessionTrace field order, values in to_dict() form; the
    # documented metadata fields are lifted to the top level.
    record: dict[str, Any] = {
        "task": row.get("task") or "",
        "final_answer": row.get("final_answer"),
        "plan": plan,
        "steps": step_records,
        "session_metadata": {
            k: v
            for k, v in metadata.items()
            if k not in _SESSION_FIELDS_FROM_METADATA and k not in derived
        },
        "session_reward": session_reward if isinstance(session_reward, dict) else None,
        "trajectory_events": trajectory if options.include_trajectory_events else [],
        "student_learning": row.get("student_learning") if learning else None,
        "teacher_learning": row.get("teacher_learning") if learning else None,
        "learning_history": metadata.get("learning_history") if learning else None,
        "adaptive_summary": metadata.get("adaptive_summary"),
        "session_id": session_id,
        "status": row.get("status"),
        "review_status": row.get("review_status"),
        "review_notes": row.get("review_notes"),
        "created_at": _iso(row.get("created_at")),
        "completed_at": _iso(row.get("completed_at")),
        "reward_stats": stats if isinstance(stats, dict) else None,
        "reward_audit": audit,
        "trajectory_event_count": total if options.include_trajectory_events else 0,
        "trajectory_events_truncated": options.include_trajectory_events and total > kept,
        "load_warnings": warnings,
    }
    for name in derived:
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
        )
        for row in rows.sessions
    ]


def assemble_page(rows: PageRows, options: LoadOptions) -> list[AtlasSessionTrace]:
    """Every session of a page as a trace, in the page's order."""
    return [AtlasSessionTrace.from_dict(r) for r in assemble_records(rows, options)]
