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
- trajectory events in the older nested shape;
- missing optional fields of every kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from atlas.runtime.traces import AtlasRewardBreakdown, AtlasSessionTrace, AtlasStepTrace
from atlas.storage.events import to_envelope
from atlas.storage.jsonenc import loads_lenient

__all__ = ["coerce_session", "coerce_step"]

_CANONICAL_MARKERS = ("trajectory_event_count", "load_warnings", "session_metadata", "steps")
_STEP_KEYS = {
    "step_id", "id", "description", "trace", "output", "evaluation", "reward", "validation",
    "attempts", "guidance", "context", "prior_results", "tool", "tool_params", "runtime",
    "depends_on", "artifacts", "deliverable", "metadata", "attempt_history",
}  # fmt: skip
# Fields older exporters nested in session_metadata that are top-level now.
_LIFTED_FROM_METADATA = (
    "trajectory_events", "status", "review_status", "review_notes", "created_at",
    "completed_at", "session_id", "adaptive_summary", "learning_history",
)  # fmt: skip


def _object(value: Any) -> dict[str, Any] | None:
    value = loads_lenient(value)
    return value if isinstance(value, dict) else None


def _reward(value: Any) -> AtlasRewardBreakdown:
    value = loads_lenient(value)
    if isinstance(value, Mapping) and "reward" in value and "score" not in value:
        value = value["reward"]  # an evaluation {"reward": ..., "validation": ...}
    if isinstance(value, (Mapping, int, float)) and not isinstance(value, bool):
        return AtlasRewardBreakdown.from_dict(value)
    return AtlasRewardBreakdown()


def _moment(value: Any, warnings: list[str], name: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            warnings.append(f"{name} {value!r} is not a timestamp")
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    warnings.append(f"{name} has an unexpected type {type(value).__name__}")
    return None


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
    guidance = data.get("guidance")
    if isinstance(guidance, str):
        guidance = [guidance]
    metadata = _object(data.get("metadata")) or {}
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
        runtime=float(runtime)
        if isinstance(runtime, (int, float)) and not isinstance(runtime, bool)
        else None,
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
    lifted = {k: metadata.pop(k) for k in _LIFTED_FROM_METADATA if k in metadata}
    merged: dict[str, Any] = {**lifted, **{k: v for k, v in record.items() if v is not None}}
    reward = loads_lenient(merged.get("session_reward", merged.get("reward")))
    if isinstance(reward, (int, float)) and not isinstance(reward, bool):
        reward = {"score": float(reward)}
    events = loads_lenient(merged.get("trajectory_events")) or []
    envelopes = (
        [to_envelope(e) for e in events if isinstance(e, Mapping)]
        if isinstance(events, list)
        else []
    )
    if isinstance(events, list) and len(envelopes) != len(events):
        warnings.append("some trajectory events were not JSON objects and were dropped")
    known = {f for f in AtlasSessionTrace.__dataclass_fields__} | {"reward", "id"}
    for key, value in merged.items():
        if key not in known and key not in AtlasSessionTrace.DERIVED:
            metadata.setdefault(key, value)
    for key in AtlasSessionTrace.DERIVED:
        if key in merged:
            metadata[key] = merged[key]
    steps = merged.get("steps")
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
