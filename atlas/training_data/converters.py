"""atlas-sdk's converters: rows as its ``Database`` returns them, to traces.

``convert_session_dict_to_trace`` and ``convert_step_dict_to_trace`` take the
dicts that atlas-sdk 0.1.16's ``Database.fetch_session`` /
``query_training_sessions`` (a session row with its ``plan``),
``fetch_session_steps`` (steps with ``attempt_details`` and
``guidance_notes``) and ``fetch_trajectory_events`` (``{id, event,
created_at}`` rows) return, so code written against atlas-sdk keeps working.

They are thin adapters onto :func:`~atlas.training_data.assembly.assemble_record`,
the one record assembly the query API and the exporter use: a converted
session equals the trace :func:`~atlas.training_data.get_session_by_id` reads
for the same rows, lossless in the same way (undecodable values kept raw and
named in ``load_warnings``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from atlas.runtime.traces import AtlasSessionTrace, AtlasStepTrace
from atlas.training_data.assembly import LoadOptions, assemble_record

__all__ = ["convert_session_dict_to_trace", "convert_step_dict_to_trace"]

logger = logging.getLogger("atlas.training_data")

# Step row columns, as step_results has them; the rest of a step dict is
# atlas-sdk's grouping of the child tables.
_STEP_COLUMNS = ("step_id", "trace", "output", "evaluation", "attempts", "metadata")


def _step_id(step_dict: Mapping[str, Any]) -> int:
    step_id = step_dict.get("step_id")
    if not isinstance(step_id, int) or isinstance(step_id, bool):
        raise ValueError(f"A step dict needs an integer step_id, not {step_id!r}.")
    return step_id


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_time(value: Any) -> Any:
    # The page query writes the row's created_at as JSON text; do the same.
    return value.isoformat() if isinstance(value, datetime) else value


def _event_values(rows: Sequence[Any]) -> list[Any]:
    """Event rows as the assembly takes them, oldest first.

    A ``{id, event, created_at}`` row becomes ``[id, created_at, event]``, the
    form in which the assembly adds the row's id and time to the event; a bare
    event (no ``event`` key) is taken as is. atlas-sdk's
    ``fetch_trajectory_events`` returns rows newest first, while traces hold
    events in chronological order, so rows that all have integer ids are
    sorted by id (the insertion order).
    """
    items = list(rows)
    ids: list[int] = [
        row["id"] for row in items if isinstance(row, Mapping) and _is_int(row.get("id"))
    ]
    if items and len(ids) == len(items):
        items = [row for _, row in sorted(zip(ids, items, strict=True), key=lambda p: p[0])]
    return [
        [row.get("id"), _json_time(row.get("created_at")), row["event"]]
        if isinstance(row, Mapping) and "event" in row
        else row
        for row in items
    ]


def _record(
    session_dict: Mapping[str, Any],
    steps: Sequence[Any],
    trajectory_events: Sequence[Any] | None,
    include_learning_data: bool,
) -> dict[str, Any]:
    session_id = session_dict.get("id")
    rows: list[dict[str, Any]] = []
    attempts: dict[tuple[Any, int], list[Mapping[str, Any]]] = {}
    guidance: dict[tuple[Any, int], list[str]] = {}
    for step in steps:
        if not isinstance(step, Mapping):
            continue  # atlas-sdk skips these too
        step_id = _step_id(step)
        rows.append({column: step.get(column) for column in _STEP_COLUMNS})
        details = step.get("attempt_details") or []
        attempts[(session_id, step_id)] = [d for d in details if isinstance(d, Mapping)]
        notes = step.get("guidance_notes") or []
        guidance[(session_id, step_id)] = (
            [str(n) for n in notes] if isinstance(notes, list) else [str(notes)]
        )
    options = LoadOptions(
        include_trajectory_events=trajectory_events is not None,
        include_learning_data=include_learning_data,
    )
    events = _event_values(trajectory_events) if trajectory_events is not None else None
    # Every attempt and guidance row here belongs to a step dict, so there are
    # no orphan child rows for the assembly to recover.
    record = assemble_record(
        {**session_dict, "id": session_id}, rows, attempts, guidance, events, None, options
    )
    if record["load_warnings"]:
        logger.warning(
            "session %s: %s", session_id, "; ".join(str(w) for w in record["load_warnings"])
        )
    return record


def convert_session_dict_to_trace(
    session_dict: dict[str, Any],
    steps: list[dict[str, Any]],
    trajectory_events: list[dict[str, Any]],
    include_learning_data: bool = True,
) -> AtlasSessionTrace:
    """A session row, its step dicts and its event rows as an :class:`AtlasSessionTrace`.

    ``session_dict`` is a ``sessions`` row (``id``, ``task``, ``metadata``,
    ``reward``, ``reward_stats``, ...) with its ``plan``; ``steps`` are dicts
    with ``step_id``, ``trace``, ``output``, ``evaluation``, ``attempts``,
    ``metadata``, ``attempt_details`` and ``guidance_notes``;
    ``trajectory_events`` are ``{id, event, created_at}`` rows (or bare
    events) in any order. With ``include_learning_data=False`` the learning
    fields are left empty. JSON stored as text is decoded. Raises
    ``ValueError`` for a step without an integer ``step_id``, as atlas-sdk does.
    """
    record = _record(session_dict, steps, trajectory_events, include_learning_data)
    return AtlasSessionTrace.from_dict(record)


def convert_step_dict_to_trace(step_dict: dict[str, Any], plan: dict[str, Any]) -> AtlasStepTrace:
    """One step dict (as in :func:`convert_session_dict_to_trace`) as an :class:`AtlasStepTrace`.

    ``plan`` is the session's plan (``{"steps": [{"id", "description",
    "depends_on", ...}]}``, or JSON text); the step's description, tool and
    dependencies come from its entry there unless its metadata has them.
    A step converted alone has no earlier steps, so its
    ``context.prior_results`` is empty unless stored in its metadata. Raises
    ``ValueError`` for a step without an integer ``step_id``.
    """
    _step_id(step_dict)
    record = _record({"id": None, "plan": plan}, [step_dict], None, True)
    return AtlasStepTrace.from_dict(record["steps"][0])
