"""What an arc-atlas record must hold for a session atlas-sdk wrote from a spec.

``lost_fields(record, spec)`` lists every value the sdk stored for that spec
that cannot be found where arc-atlas's record shape puts it (the JSONL
record, which is also ``trace.to_dict()``). An empty list means nothing
written was lost.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from interop_compare import missing


def stored_reward(reward: dict[str, Any]) -> dict[str, Any]:
    """A reward as the sdk stores it: its breakdown's ``to_dict()``.

    That fills ``rationale`` (null) and ``judges`` ([]) when absent and adds
    the input as ``raw``; the specs' judges already carry every judge field.
    """
    return {
        "score": reward.get("score", 0.0),
        "rationale": reward.get("rationale"),
        "judges": reward.get("judges", []),
        "raw": reward,
    }


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def _lost_event(record: dict[str, Any], written: dict[str, Any], where: str) -> list[str]:
    """The envelope fields of one event, its row id and created_at, and every other value.

    Where the rest of a nested event goes in the flat envelope is the
    envelope's business; only that each written value is somewhere is checked.
    """
    inner = written["payload"]
    expected = {
        "event_type": inner["event_type"],
        "actor": inner["metadata"]["actor"],
        "name": inner["name"],
        "step_id": inner["metadata"]["step_id"],
    }
    lost = [f"{where}.{p}" for p in missing(expected, record)]
    stamp = record.get("timestamp")
    # The same instant, as the epoch seconds written or as ISO 8601 text.
    try:
        seconds = stamp if isinstance(stamp, float) else datetime.fromisoformat(stamp).timestamp()
    except (TypeError, ValueError):
        seconds = None
    if seconds != inner["event_timestamp"]:
        lost.append(f"{where}.timestamp: wrote {inner['event_timestamp']}, found {stamp!r}")
    for key in ("id", "created_at"):
        if not isinstance(record.get(key), (int, str)):
            lost.append(f"{where}.{key}: the row's {key} is absent ({record.get(key)!r})")
    found = _leaves(record)
    rest = {k: v for k, v in written.items() if k != "payload"}
    rest["payload"] = {k: v for k, v in inner.items() if k != "event_timestamp"}
    for leaf in _leaves(rest):
        if leaf not in found:
            lost.append(f"{where}: written value {leaf!r} is nowhere in the event")
    return lost


def _lost_step(record: dict[str, Any], spec: dict[str, Any], step: dict[str, Any]) -> list[str]:
    step_id = step["step_id"]
    where = f"steps[{step_id}]"
    plan_step = next(s for s in spec["plan"]["steps"] if s["id"] == step_id)
    meta = step["metadata"]
    expected = {
        "trace": step["trace"],
        "output": step["output"],
        "attempts": step.get("attempts", 1),  # StepResult's default
        "reward": stored_reward(step["evaluation"]["reward"]),
        "validation": step["evaluation"]["validation"],
        "metadata": meta,
        "guidance": spec.get("guidance", {}).get(str(step_id), []),
        "description": plan_step["description"],
        "depends_on": plan_step.get("depends_on", []),  # Step's default
        **{key: meta[key] for key in ("runtime", "artifacts", "deliverable") if key in meta},
        **{key: plan_step[key] for key in ("tool", "tool_params") if plan_step.get(key)},
    }
    lost = [f"{where}.{p}" for p in missing(expected, record)]
    history = record.get("attempt_history") or []
    for row in spec.get("attempts", {}).get(str(step_id), []):
        entries = [h for h in history if isinstance(h, dict) and h.get("attempt") == row["attempt"]]
        if not any(not missing(row, entry) for entry in entries):
            lost.append(f"{where}.attempt_history: step_attempts row {row!r} not found")
    return lost


# Spec key -> record key, for the session's own columns and metadata.
SESSION_FIELDS = {
    "task": "task",
    "final_answer": "final_answer",
    "plan": "plan",
    "metadata": "session_metadata",
    "reward": "session_reward",
    "student_learning": "student_learning",
    "teacher_learning": "teacher_learning",
    "reward_stats": "reward_stats",
    "reward_audit": "reward_audit",
    "status": "status",
    "review_status": "review_status",
    "review_notes": "review_notes",
}


def lost_fields(record: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    """Every value written for ``spec`` that ``record`` does not hold (empty: nothing lost)."""
    expected = {field: spec[key] for key, field in SESSION_FIELDS.items() if key in spec}
    if "reward" in spec:
        expected["session_reward"] = stored_reward(spec["reward"])
    lost = missing(expected, record)
    steps = {s.get("step_id"): s for s in record.get("steps") or []}
    for step in spec["steps"]:
        if step["step_id"] not in steps:
            lost.append(f"steps[{step['step_id']}]: absent")
        else:
            lost.extend(_lost_step(steps[step["step_id"]], spec, step))
    events = record.get("trajectory_events") or []
    written_events = spec.get("events", [])
    if len(events) != len(written_events):
        lost.append(f"trajectory_events: wrote {len(written_events)}, found {len(events)}")
    for index, (found, written) in enumerate(zip(events, written_events, strict=False)):
        lost.extend(_lost_event(found, written, f"trajectory_events[{index}]"))
    return lost
