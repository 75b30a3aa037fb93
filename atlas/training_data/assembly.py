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

import orjson

from atlas.runtime.traces import AtlasSessionTrace, canonical_reward, is_raw_score
from atlas.storage.events import to_envelope
from atlas.storage.jsonenc import loads_lenient

__all__ = [
    "EVENT_ROW_KEYS",
    "LoadOptions",
    "PageRows",
    "assemble_page",
    "assemble_record",
    "assemble_records",
    "assemble_trace",
    "merge_attempt_history",
    "normalise_events",
    "with_row_fields",
]

# The trajectory_events row's own columns, written into each event beside
# its stored keys. A stored key of the same name wins; the row's value then
# goes under the second name. The page query (plan.py) builds its SQL from this.
EVENT_ROW_KEYS: tuple[tuple[str, str], ...] = (("id", "row_id"), ("created_at", "row_created_at"))

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


def _object(value: Any, what: str, warnings: list[str]) -> dict[str, Any] | None:
    """Decode ``value`` into a dict, or None; anything else is noted and wrapped."""
    value = loads_lenient(value)
    if value is None or isinstance(value, dict):
        return value
    warnings.append(
        f"{what} is not a JSON object ({type(value).__name__}); kept under legacy_value"
    )
    return {"legacy_value": value}


def _plan_steps(plan: dict[str, Any] | None) -> dict[Any, Mapping[str, Any]]:
    steps = plan.get("steps") if plan else None
    found: dict[Any, Mapping[str, Any]] = {}
    for spec in steps if isinstance(steps, list) else ():
        if isinstance(spec, Mapping):
            key = spec.get("id", spec.get("step_id"))
            if isinstance(key, (int, str)):  # an id stored as a list or object matches no step
                found[key] = spec
                found[str(key)] = spec
    return found


def _attempt_order(entry: Mapping[str, Any]) -> tuple[bool, float]:
    number = entry.get("attempt")
    if isinstance(number, (int, float)) and not isinstance(number, bool):
        return (False, float(number))
    return (True, 0.0)


def merge_attempt_history(
    rows: Sequence[Mapping[str, Any]], runtime_history: Any
) -> list[dict[str, Any]]:
    """Attempts from the step_attempts table, enriched with what the runtime kept per attempt."""
    if not runtime_history:
        # The common case: table rows only, already in attempt order.
        return [
            {"attempt": row["attempt"], "evaluation": loads_lenient(row.get("evaluation"))}
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
        evaluation = loads_lenient(row.get("evaluation"))
        item = {
            **extra.pop(row["attempt"], {}),
            "attempt": row["attempt"],
            "evaluation": evaluation,
        }
        history.append(item)
    # Runtime entries without a table row (older writers kept only these).
    history.extend(dict(entry) for entry in extra.values())
    history.extend(leftovers)
    history.sort(key=_attempt_order)
    return history


def _split_evaluation(value: Any, step_id: Any, warnings: list[str]) -> tuple[Any, Any, Any]:
    """``(reward, validation, kept)``: the parts of a step evaluation, and what to keep whole.

    The canonical evaluation is ``{"reward": ..., "validation": {...}}``; some
    writers stored the reward itself. Anything else (text that is not JSON,
    other keys, a validation that is not an object) is also kept whole as
    ``kept``, which the step record carries in ``metadata["raw_evaluation"]``.
    """
    decoded = loads_lenient(value)
    if decoded is None:
        return None, None, None
    if not isinstance(decoded, dict):
        warnings.append(
            f"step {step_id} evaluation is not a JSON object ({type(decoded).__name__}); "
            "kept as step metadata raw_evaluation"
        )
        return None, None, decoded
    if "reward" not in decoded and "validation" not in decoded:
        if "score" in decoded:
            return decoded, None, None
        return None, None, decoded or None
    validation = decoded.get("validation")
    canonical = decoded.keys() <= {"reward", "validation"} and (
        validation is None or isinstance(validation, dict)
    )
    return decoded.get("reward"), validation, None if canonical else decoded


def _step_reward(value: Any, what: str, warnings: list[str]) -> dict[str, Any]:
    """A reward in record form; a score that is not a number is kept as ``score_raw``."""
    if value is not None and not isinstance(value, Mapping):
        value = {"score": value}
    reward = canonical_reward(value)
    if is_raw_score(reward.get("score_raw")) and "score" not in reward:
        warnings.append(f"{what} score {reward['score_raw']!r} is not a number; kept as score_raw")
    return reward


def _prior_entry(step: Mapping[str, Any], metadata: Mapping[str, Any]) -> dict[str, Any]:
    """What a later step sees of this one (atlas-sdk's ``context.prior_results`` entry)."""
    entry: dict[str, Any] = {"output_text": step.get("output") or ""}
    for key in ("artifacts", "status"):
        if metadata.get(key) is not None:
            entry[key] = metadata[key]
    if metadata.get("notes"):
        entry["notes"] = metadata["notes"]
    return entry


def _context(stored: Any, prior: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """A stored context as it is; else the outputs of the earlier steps."""
    stored = loads_lenient(stored)
    if isinstance(stored, dict):
        return stored
    return {
        "prior_results": dict(prior),
        "prior_results_text": {key: entry["output_text"] for key, entry in prior.items()},
    }


def assemble_step(
    row: Mapping[str, Any],
    plan_steps: Mapping[Any, Mapping[str, Any]],
    attempts: Sequence[Mapping[str, Any]],
    guidance: Sequence[str],
    warnings: list[str],
    prior: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One step record: its row, its plan entry, its attempts and guidance.

    ``metadata`` is the stored step metadata, whole; the fields lifted from it
    (``runtime``, ``artifacts``, ...) are copies, as stored. ``prior`` maps
    earlier step ids to what they produced and fills ``context`` when the step
    has no stored context.
    """
    step_id = row["step_id"]
    metadata = _object(row.get("metadata"), f"step {step_id} metadata", warnings) or {}
    reward, validation, kept = _split_evaluation(row.get("evaluation"), step_id, warnings)
    if kept is not None:
        if "raw_evaluation" in metadata:
            warnings.append(f"step {step_id} metadata has raw_evaluation; evaluation kept there")
            metadata = {**metadata, "raw_evaluation_stored": metadata["raw_evaluation"]}
        metadata = {**metadata, "raw_evaluation": kept}
    spec = plan_steps.get(step_id) or {}
    if validation is None:
        validation = metadata.get("validation")
    tool_params = loads_lenient(metadata.get("tool_params", spec.get("tool_params")))
    depends_on = metadata.get("depends_on", spec.get("depends_on"))
    stored_attempts = row.get("attempts")
    # Keys in AtlasStepTrace field order, values in to_dict() form.
    return {
        "step_id": step_id,
        "description": metadata.get("description", spec.get("description")),
        "trace": row.get("trace"),
        "output": row.get("output"),
        "reward": _step_reward(reward, f"step {step_id} reward", warnings),
        "tool": metadata.get("tool", spec.get("tool")),
        "tool_params": tool_params if isinstance(tool_params, dict) else None,
        "context": _context(metadata.get("context"), prior or {}),
        "validation": validation if isinstance(validation, dict) else None,
        "attempts": stored_attempts if stored_attempts is not None else (len(attempts) or 1),
        "guidance": list(guidance),
        "metadata": metadata,
        "artifacts": metadata.get("artifacts"),
        "deliverable": metadata.get("deliverable"),
        "runtime": metadata.get("runtime", metadata.get("runtime_ms")),
        "depends_on": list(depends_on) if isinstance(depends_on, list) else [],
        "attempt_history": merge_attempt_history(attempts, metadata.get("attempt_history")),
    }


def with_row_fields(event: dict[str, Any], row_id: Any, created_at: Any) -> dict[str, Any]:
    """``event`` with its row's id and created_at added (stored keys win; see EVENT_ROW_KEYS)."""
    for (key, fallback), value in zip(EVENT_ROW_KEYS, (row_id, created_at), strict=True):
        event[fallback if key in event else key] = value
    return event


# An event as a trajectory_events row ({"id", "event", "created_at"}), the way
# atlas-sdk's Database returns it and its exporter writes it (the exporter may
# add copies of the event's type, name and actor beside it).
_ROW_SHAPE = frozenset({"id", "event", "created_at", "type", "event_type", "name", "actor"})


def _unwrap_row(value: Mapping[str, Any]) -> tuple[Any, tuple[Any, Any] | None]:
    """``(event, (id, created_at))`` for an event given as its row; ``(value, None)`` otherwise."""
    inner = value.get("event")
    if "event" in value and value.keys() <= _ROW_SHAPE:
        inner = loads_lenient(inner)
        if isinstance(inner, Mapping):
            return inner, (value.get("id"), value.get("created_at"))
    return value, None


def normalise_events(raw: Iterable[Any], warnings: list[str]) -> list[Any]:
    """Events as flat envelopes, whatever shape they come in; nothing is dropped.

    Accepts stored events (flat or nested), events as rows (``{"id", "event",
    "created_at"}``, atlas-sdk's shape) and what the page query sends for a
    stored value that is not an object (``[id, created_at, value]``); such a
    value is kept under ``payload`` of an ``unknown`` event, with a warning.
    """
    events: list[Any] = []
    odd = 0
    for value in raw:
        row: tuple[Any, Any] | None = None
        if isinstance(value, list) and len(value) == 3:
            # Not a JSON object in the table: the page query sent [id, created_at, event].
            row, value = (value[0], value[1]), value[2]
        decoded = loads_lenient(value)
        if isinstance(decoded, Mapping):
            decoded, row = _unwrap_row(decoded) if row is None else (decoded, row)
            envelope = to_envelope(decoded)
        else:
            odd += 1
            envelope = to_envelope({"event_type": "unknown", "payload": decoded})
        events.append(with_row_fields(envelope, *row) if row else envelope)
    if odd:
        warnings.append(f"{odd} trajectory event(s) are not JSON objects; kept under payload")
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
        return events if self.all_flat else normalise_events(events, warnings)


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
    warnings.append(
        f"{what} is not a JSON object ({type(value).__name__}); kept under legacy_value"
    )
    score = value if isinstance(value, str) else None
    try:
        parsed = float(score) if score is not None else None
    except ValueError:
        parsed = None
    return {"score": parsed, "legacy_value": value}


def _orphans(
    session_id: int,
    steps: Sequence[Mapping[str, Any]],
    child_steps: Iterable[int],
    warnings: list[str],
) -> list[dict[str, Any]]:
    """Placeholder step rows for attempt or guidance rows whose step row is missing."""
    have = {step["step_id"] for step in steps}
    missing = sorted(set(child_steps) - have)
    for step_id in missing:
        warnings.append(
            f"step {step_id} has attempt or guidance rows but no step_results row; "
            "kept as a step without output"
        )
    return [
        {"step_id": step_id, "trace": None, "output": None, "evaluation": None, "attempts": None}
        for step_id in missing
    ]


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
    metadata = _object(row.get("metadata"), "session metadata", warnings) or {}
    plan = loads_lenient(row.get("plan"))
    if isinstance(plan, list):
        plan = {"steps": plan}
    elif plan is not None and not isinstance(plan, dict):
        warnings.append("plan is not a JSON object; kept under legacy_value")
        plan = {"legacy_value": plan}
    session_reward = _session_reward(row.get("reward"), metadata, warnings)
    audit = loads_lenient(row.get("reward_audit"))
    if audit is None:
        audit = metadata.get("reward_audit")
    stats = _object(row.get("reward_stats"), "reward_stats", warnings)
    plan_steps = _plan_steps(plan if isinstance(plan, dict) else None)
    orphans = _orphans(session_id, steps, child_steps, warnings) if child_steps else []
    step_records = []
    prior: dict[str, dict[str, Any]] = {}
    for step in sorted([*steps, *orphans], key=_step_order) if orphans else steps:
        key = (session_id, step["step_id"])
        record_step = assemble_step(
            step, plan_steps, attempts.get(key, ()), guidance.get(key, ()), warnings, prior
        )
        step_records.append(record_step)
        if not orphans or step not in orphans:  # a placeholder shows later steps nothing
            prior = {**prior, str(step["step_id"]): _prior_entry(step, record_step["metadata"])}
    trajectory: Any
    if isinstance(events, EventBlock):
        if options.raw_events and events.all_flat and events.raw:
            # Already complete flat envelopes: the JSON text goes out as it is.
            trajectory, kept = orjson.Fragment(events.raw), events.kept
        else:
            trajectory = events.decoded(warnings)
            kept = len(trajectory)
    else:
        trajectory = normalise_events(events, warnings) if events is not None else []
        kept = len(trajectory)
    total = event_total if event_total is not None else kept
    if events is not None and not kept and isinstance(metadata.get("trajectory_events"), list):
        # Very old writers kept events inside the session metadata; the event
        # limit and the count apply to them as to rows of trajectory_events.
        stored = metadata["trajectory_events"]
        total = len(stored)
        limit = options.trajectory_event_limit
        trajectory = normalise_events(stored if limit is None else stored[:limit], warnings)
        kept = len(trajectory)
    created_at = _moment(row.get("created_at"), "created_at", warnings)
    completed_at = _moment(row.get("completed_at"), "completed_at", warnings)
    session_metadata = dict(metadata)
    for name, value in zip(
        _ROW_FIELDS_IN_METADATA,
        (session_id, row.get("status"), created_at, completed_at, row.get("review_status"),
         stats, audit),
        strict=True,
    ):  # fmt: skip
        if value is not None:
            session_metadata.setdefault(name, value)
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


def _step_order(step: Mapping[str, Any]) -> tuple[int, Any]:
    step_id = step["step_id"]
    return (0, step_id) if isinstance(step_id, int) else (1, str(step_id))


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
