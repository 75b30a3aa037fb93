"""One step of a record: its row, its plan entry, its attempts, guidance and context.

Part of the record assembly (:mod:`atlas.training_data.assembly`): pure
functions, no I/O. A step's ``metadata`` is its stored metadata, whole; what
does not fit a field is kept and named in the session's warnings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from atlas.runtime.traces import canonical_reward, is_raw_score
from atlas.storage.jsonenc import decode_object, loads_lenient

__all__ = ["assemble_step", "assemble_steps", "merge_attempt_history"]


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
    metadata = decode_object(row.get("metadata"), f"step {step_id} metadata", warnings) or {}
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


def _step_order(step: Mapping[str, Any]) -> tuple[int, Any]:
    step_id = step["step_id"]
    return (0, step_id) if isinstance(step_id, int) else (1, str(step_id))


def assemble_steps(
    session_id: int,
    steps: Sequence[Mapping[str, Any]],
    plan: Any,
    attempts: Mapping[tuple[int, int], Sequence[Mapping[str, Any]]],
    guidance: Mapping[tuple[int, int], Sequence[str]],
    child_steps: Iterable[int],
    warnings: list[str],
) -> list[dict[str, Any]]:
    """Every step of a session in step order, each seeing what the earlier ones produced.

    ``child_steps`` are the step ids with attempt or guidance rows; one without
    a step row still becomes a step (with a warning), so no row is lost.
    """
    plan_steps = _plan_steps(plan if isinstance(plan, dict) else None)
    orphans = _orphans(session_id, steps, child_steps, warnings) if child_steps else []
    records = []
    prior: dict[str, dict[str, Any]] = {}
    for step in sorted([*steps, *orphans], key=_step_order) if orphans else steps:
        key = (session_id, step["step_id"])
        record = assemble_step(
            step, plan_steps, attempts.get(key, ()), guidance.get(key, ()), warnings, prior
        )
        records.append(record)
        if not orphans or step not in orphans:  # a placeholder shows later steps nothing
            prior = {**prior, str(step["step_id"]): _prior_entry(step, record["metadata"])}
    return records
