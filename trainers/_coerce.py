"""Turning exported JSON records, old or new, into trace dataclasses.

Records written by arc-atlas are canonical (``AtlasSessionTrace.to_dict()``)
and go straight through ``from_dict``. Records from older Atlas exporters
differ in known ways, all accepted here:

- a step's reward under ``evaluation`` (itself ``{"reward", "validation"}`` or
  the reward) or ``reward``; the session reward under ``session_reward`` or
  ``reward``, possibly a bare number;
- ``context``, ``tool_params`` and other objects stored as JSON strings;
- ``id`` instead of ``step_id``; ``attempts`` as a list of attempt records;
- events, status and timestamps inside ``session_metadata``;
- trajectory events in the older nested shape, or as rows (``{"id", "event",
  "created_at"}``, as atlas-sdk's exporter writes them);
- a step reward as atlas-sdk's exporter writes it (the stored reward under ``raw``);
- missing optional fields of every kind.

Nothing is dropped: ``session_metadata`` stays as written (events in it move
to ``trajectory_events`` when the record has none there), and what cannot be
read is kept and named in ``load_warnings``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from atlas.runtime.traces import AtlasRewardBreakdown, AtlasSessionTrace, AtlasStepTrace
from atlas.storage.jsonenc import loads_lenient
from atlas.training_data.assembly import merge_attempt_history, normalise_events

__all__ = ["coerce_session", "coerce_step"]

_CANONICAL_MARKERS = ("trajectory_event_count", "load_warnings", "session_metadata", "steps")
_STEP_KEYS = {
    "step_id", "id", "description", "trace", "output", "evaluation", "reward", "validation",
    "attempts", "guidance", "context", "prior_results", "tool", "tool_params", "runtime",
    "depends_on", "artifacts", "deliverable", "metadata", "attempt_history",
}  # fmt: skip
# Fields older exporters kept only in session_metadata that are top-level fields
# now; they are copied up (and stay in session_metadata).
_COPIED_FROM_METADATA = (
    "status", "review_status", "review_notes", "created_at", "completed_at", "session_id",
    "adaptive_summary", "learning_history", "reward_stats", "reward_audit",
)  # fmt: skip


def _object(value: Any) -> dict[str, Any] | None:
    value = loads_lenient(value)
    return value if isinstance(value, dict) else None


def _reward(value: Any) -> AtlasRewardBreakdown:
    value = loads_lenient(value)
    if isinstance(value, Mapping) and "reward" in value and "score" not in value:
        value = value["reward"]  # an evaluation {"reward": ..., "validation": ...}
    if isinstance(value, Mapping) and isinstance(value.get("raw"), Mapping):
        # atlas-sdk's exporter: defaults filled in, the reward as stored under "raw".
        value = value["raw"]
    if isinstance(value, (Mapping, int, float)) and not isinstance(value, bool):
        return AtlasRewardBreakdown.from_dict(value)
    return AtlasRewardBreakdown()


def _moment(value: Any, warnings: list[str], name: str) -> Any:
    """A timestamp as an aware datetime; anything unreadable is kept as it is, with a warning."""
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            pass
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    warnings.append(f"{name} {value!r} is not a timestamp Python can hold; kept as found")
    return value


def coerce_step(data: Mapping[str, Any], index: int) -> AtlasStepTrace:
    """One step from a canonical or older step record."""
    evaluation = _object(data.get("evaluation")) or {}
    reward_source = data.get("reward", data.get("evaluation"))
    validation = loads_lenient(data.get("validation", evaluation.get("validation")))
    context = loads_lenient(data.get("context", data.get("prior_results")))
    if isinstance(context, dict) and "prior_results" not in context and "context" not in data:
        context = {"prior_results": context}
    tool_params = loads_lenient(data.get("tool_params"))
    attempts = data.get("attempts")
    history = data.get("attempt_history")
    if isinstance(attempts, list):  # older exporters listed the attempts themselves
        history = history if history is not None else attempts
        attempts = len(attempts)
    metadata = _object(data.get("metadata")) or {}
    rows = data.get("attempt_details", metadata.get("attempt_details"))
    if isinstance(rows, list) and all(isinstance(r, Mapping) and "attempt" in r for r in rows):
        # atlas-sdk's exporter: the step_attempts rows, merged as the database path does
        # (its metadata.attempt_history may be a copy of the same rows).
        stored = metadata.get("attempt_history")
        history = merge_attempt_history(rows, None if stored == rows else stored)
    guidance = data.get("guidance")
    if isinstance(guidance, str):
        guidance = [guidance]
    extra = {k: v for k, v in data.items() if k not in _STEP_KEYS}
    depends_on = loads_lenient(data.get("depends_on"))
    runtime = data.get("runtime")
    return AtlasStepTrace(
        step_id=data.get("step_id", data.get("id", index + 1)),
        description=data.get("description"),
        trace=data.get("trace"),
        output=data.get("output"),
        reward=_reward(reward_source),
        tool=data.get("tool"),
        tool_params=tool_params if isinstance(tool_params, dict) else None,
        context=context if isinstance(context, dict) else {"prior_results": {}},
        validation=validation if isinstance(validation, dict) else None,
        attempts=attempts if isinstance(attempts, int) and not isinstance(attempts, bool) else 1,
        guidance=[str(g) for g in guidance] if isinstance(guidance, list) else [],
        metadata={**extra, **metadata},
        artifacts=_object(data.get("artifacts")),
        deliverable=loads_lenient(data.get("deliverable")),
        runtime=runtime,
        depends_on=list(depends_on) if isinstance(depends_on, list) else [],
        attempt_history=[h if isinstance(h, dict) else {"value": h} for h in history]
        if isinstance(history, list)
        else [],
    )


def _is_canonical(record: Mapping[str, Any]) -> bool:
    return all(key in record for key in _CANONICAL_MARKERS)


def coerce_session(record: Mapping[str, Any]) -> AtlasSessionTrace:
    """One session from a JSONL record written by arc-atlas or by an older Atlas exporter."""
    if _is_canonical(record):
        return AtlasSessionTrace.from_dict(record)
    warnings: list[str] = []
    metadata = dict(_object(record.get("session_metadata")) or {})
    copied = {k: metadata[k] for k in _COPIED_FROM_METADATA if k in metadata}
    merged: dict[str, Any] = {**copied, **{k: v for k, v in record.items() if v is not None}}
    if "trajectory_events" not in merged and "trajectory_events" in metadata:
        # Older exporters wrote the events only into session_metadata.
        merged["trajectory_events"] = metadata.pop("trajectory_events")
    elif "trajectory_events" in metadata and metadata["trajectory_events"] == merged.get(
        "trajectory_events"
    ):
        del metadata["trajectory_events"]  # atlas-sdk wrote them twice: keep them once
    reward = loads_lenient(merged.get("session_reward", merged.get("reward")))
    if isinstance(reward, (int, float)) and not isinstance(reward, bool):
        reward = {"score": float(reward)}
    elif reward is not None and not isinstance(reward, dict):
        warnings.append("session_reward is not a JSON object; kept under legacy_value")
        reward = {"legacy_value": reward}
    events = loads_lenient(merged.get("trajectory_events")) or []
    if not isinstance(events, list):
        warnings.append("trajectory_events is not a list; kept as one event")
        events = [events]
    envelopes = normalise_events(events, warnings)
    known = {f for f in AtlasSessionTrace.__dataclass_fields__} | {"reward", "id"}
    for key, value in merged.items():
        if key not in known and key not in AtlasSessionTrace.DERIVED:
            metadata.setdefault(key, value)
    for key in AtlasSessionTrace.DERIVED:
        if key in merged:
            metadata.setdefault(key, merged[key])
    steps = merged.get("steps")
    if isinstance(steps, list) and not all(isinstance(step, Mapping) for step in steps):
        warnings.append("some steps are not JSON objects; kept in session_metadata.steps_raw")
        metadata.setdefault("steps_raw", [step for step in steps if not isinstance(step, Mapping)])
    plan = loads_lenient(merged.get("plan"))
    session_id = merged.get("session_id", merged.get("id"))
    return AtlasSessionTrace(
        task=str(merged.get("task") or ""),
        final_answer=merged.get("final_answer"),
        plan=plan
        if isinstance(plan, dict)
        else ({"steps": plan} if isinstance(plan, list) else None),
        steps=[coerce_step(s, i) for i, s in enumerate(steps) if isinstance(s, Mapping)]
        if isinstance(steps, list)
        else [],
        session_metadata=metadata,
        session_reward=reward if isinstance(reward, dict) else None,
        trajectory_events=envelopes,
        student_learning=merged.get("student_learning"),
        teacher_learning=merged.get("teacher_learning"),
        learning_history=loads_lenient(merged.get("learning_history")),
        adaptive_summary=_object(merged.get("adaptive_summary")),
        session_id=session_id if isinstance(session_id, int) else None,
        status=merged.get("status"),
        review_status=merged.get("review_status"),
        review_notes=merged.get("review_notes"),
        created_at=_moment(merged.get("created_at"), warnings, "created_at"),
        completed_at=_moment(merged.get("completed_at"), warnings, "completed_at"),
        reward_stats=_object(merged.get("reward_stats")),
        reward_audit=loads_lenient(merged.get("reward_audit")),
        trajectory_event_count=len(envelopes),
        trajectory_events_truncated=False,
        load_warnings=warnings,
    )
