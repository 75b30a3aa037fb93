"""Fixed column schemas for trainer-ready tables (Parquet, Hugging Face datasets).

Records built from traces carry free-form values whose shape changes from
row to row: ``tool_params`` is an object in one step and missing in the
next, ``deliverable`` may be a string or an object, ``learning_history`` a
list or a dict. Columnar formats need one type per column, so every table
kind here has a fixed list of columns, each with one of these types:

``text``       a string; a value that is not a string is stored as its JSON text
``json``       free-form: the value's JSON text (keys sorted, compact), null for None
``int``        a 64-bit integer; anything that is not a whole number becomes null
``float``      a double; anything that is not a number becomes null
``bool``       a boolean; anything else becomes null
``timestamp``  microseconds, UTC (datetimes, or ISO 8601 text as in a JSONL export)
``text_list``  a list of strings (elements that are not strings become JSON text)

:data:`JSON_COLUMNS` names the JSON text columns of each kind: decode them
with ``json.loads`` (or :func:`decode_row`, which does it for a whole row).
Because keys are sorted, the same value always gives the same text, so rows
built from the database and from a JSONL export of it are equal.

This module is pure Python; the Arrow schema is built from it in
:mod:`trainers.parquet`.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any, Literal, get_args

import orjson

from atlas.errors import RecordSchemaError
from atlas.runtime.traces import AtlasSessionTrace

__all__ = [
    "COLUMNS",
    "DEFAULT_ROW_GROUP_SIZE",
    "DEFAULT_ROW_GROUP_TEXT",
    "JSON_COLUMNS",
    "KINDS",
    "ColumnType",
    "Kind",
    "RecordSchemaError",
    "check_kind",
    "decode_row",
    "encode_record",
    "iter_row_groups",
    "iter_rows",
    "json_text",
    "records_from_sessions",
    "session_record",
]

Kind = Literal["rl", "flat", "sessions", "grpo", "dpo"]
ColumnType = Literal["text", "json", "int", "float", "bool", "timestamp", "text_list"]
KINDS: tuple[str, ...] = get_args(Kind)

COLUMNS: Mapping[str, tuple[tuple[str, ColumnType], ...]] = {
    # trainers.runtime_dataset.iter_rl_records, in its order; ground_truth is optional there.
    "rl": (
        ("prompt", "text"), ("session_id", "int"), ("task", "text"), ("plan", "json"),
        ("step_id", "int"), ("step_description", "text"), ("step_output", "text"),
        ("step_trace", "text"), ("tool", "text"), ("tool_params", "json"),
        ("step_context", "json"), ("guidance_history", "text_list"), ("validation", "json"),
        ("attempts", "int"), ("attempt_history", "json"), ("reward_score", "float"),
        ("reward_breakdown", "json"), ("session_reward", "json"),
        ("session_reward_score", "float"), ("learning_key", "text"),
        ("student_learning", "text"), ("teacher_learning", "text"),
        ("learning_history", "json"), ("adaptive_summary", "json"),
        ("trajectory_events", "json"), ("session_metadata", "json"), ("runtime", "json"),
        ("artifacts", "json"), ("deliverable", "json"), ("depends_on", "json"),
        ("review_status", "text"), ("status", "text"), ("ground_truth", "json"),
    ),
    # trainers.runtime_dataset.iter_flat_records, in its order.
    "flat": (
        ("session_id", "int"), ("task", "text"), ("final_answer", "text"), ("plan", "json"),
        ("step_id", "int"), ("step_description", "text"), ("step_trace", "text"),
        ("step_output", "text"), ("attempts", "int"), ("guidance_history", "text_list"),
        ("step_context", "json"), ("validation", "json"), ("tool", "text"),
        ("tool_params", "json"), ("reward_score", "float"), ("reward_breakdown", "json"),
        ("session_metadata", "json"), ("step_metadata", "json"),
    ),
    # AtlasSessionTrace.to_dict(): the dataclass fields, then the lifted metadata fields.
    "sessions": (
        ("task", "text"), ("final_answer", "text"), ("plan", "json"), ("steps", "json"),
        ("session_metadata", "json"), ("session_reward", "json"),
        ("trajectory_events", "json"), ("student_learning", "text"),
        ("teacher_learning", "text"), ("learning_history", "json"),
        ("adaptive_summary", "json"), ("session_id", "int"), ("status", "text"),
        ("review_status", "text"), ("review_notes", "text"), ("created_at", "timestamp"),
        ("completed_at", "timestamp"), ("reward_stats", "json"), ("reward_audit", "json"),
        ("trajectory_event_count", "int"), ("trajectory_events_truncated", "bool"),
        ("load_warnings", "text_list"), ("learning_key", "text"), ("teacher_notes", "json"),
        ("reward_summary", "json"), ("drift", "json"), ("drift_alert", "json"),
        ("triage_dossier", "json"), ("personas_used", "json"), ("persona_updates", "json"),
        ("execution_mode", "json"),
    ),
    # trainers.preferences.iter_grpo_rows: one row per group member.
    "grpo": (
        ("group_key", "text"), ("group_by", "text"), ("group_size", "int"),
        ("reward_mean", "float"), ("reward_std", "float"), ("session_id", "int"),
        ("prompt", "text"), ("completion", "text"), ("reward", "float"), ("advantage", "float"),
    ),
    # trainers.preferences.PreferencePair.to_record.
    "dpo": (
        ("key", "text"), ("by", "text"), ("prompt", "text"), ("chosen", "text"),
        ("rejected", "text"), ("chosen_reward", "float"), ("rejected_reward", "float"),
        ("margin", "float"), ("chosen_session_id", "int"), ("rejected_session_id", "int"),
        ("rejected_prompt", "text"),
    ),
}  # fmt: skip

JSON_COLUMNS: Mapping[str, tuple[str, ...]] = {
    kind: tuple(name for name, kind_type in columns if kind_type == "json")
    for kind, columns in COLUMNS.items()
}

# Rows per Parquet row group (and Ray block). RL records repeat the session's
# events on every step (tens of KB each), so 1000 rows make row groups of tens
# of MB: small enough to stream, large enough to compress well.
DEFAULT_ROW_GROUP_SIZE = 1000
# Text per row group or block, at most (characters of its text and JSON
# columns): a ``sessions`` row holds a whole session, hundreds of KB with its
# events, where 1000 rows alone would make row groups of hundreds of MB.
DEFAULT_ROW_GROUP_TEXT = 64 * 1024 * 1024

_NAMES: Mapping[str, frozenset[str]] = {
    kind: frozenset(name for name, _ in columns) for kind, columns in COLUMNS.items()
}
_INT64 = (-(2**63), 2**63 - 1)
_JSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def check_kind(kind: str) -> str:
    """Return ``kind`` when it names a table kind; raise ``ValueError`` naming the choices."""
    if kind not in COLUMNS:
        raise ValueError(f"Unknown record kind {kind!r}: choose one of {', '.join(KINDS)}.")
    return kind


def json_text(value: Any) -> str | None:
    """Canonical JSON text of ``value`` (sorted keys, compact), or None for None."""
    if value is None:
        return None
    try:
        return orjson.dumps(value, default=str, option=_JSON_OPTIONS).decode("utf-8")
    except TypeError:
        # orjson refuses integers beyond 64 bits and mixed-type keys it cannot
        # sort; the standard library takes both (unsorted when it must).
        try:
            return json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)
        except TypeError:
            return json.dumps(value, default=str, ensure_ascii=False)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json_text(value)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            return None
    if isinstance(value, int) and _INT64[0] <= value <= _INT64[1]:
        return value
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if not math.isnan(number) else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    # Naive times are taken as UTC, as the JSONL loader does.
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _text_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    items = value if isinstance(value, (list, tuple)) else [value]
    return [item if isinstance(item, str) else json_text(item) or "null" for item in items]


_CONVERT = {
    "text": _text,
    "json": json_text,
    "int": _int,
    "float": _float,
    "bool": _bool,
    "timestamp": _timestamp,
    "text_list": _text_list,
}


def encode_record(record: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """One table row from one record: every column of ``kind``, each in its column type.

    Missing fields become null. Raises :class:`RecordSchemaError` when the
    record has a field the kind has no column for (rather than drop it).
    """
    if not isinstance(record, Mapping):
        raise RecordSchemaError(
            f"A {kind} record must be a mapping, not {type(record).__name__}: pass either "
            "traces or records, not a mix."
        )
    columns = COLUMNS[check_kind(kind)]
    if not record.keys() <= _NAMES[kind]:
        unknown = sorted(map(str, record.keys() - _NAMES[kind]))
        raise RecordSchemaError(
            f"The {kind} table has no column for field(s) {', '.join(unknown)}: "
            "remove them, or write the records as JSONL, which takes any field."
        )
    return {name: _CONVERT[kind_type](record.get(name)) for name, kind_type in columns}


def decode_row(row: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The inverse of :func:`encode_record` for JSON columns: their text parsed back."""
    decoded = dict(row)
    for name in JSON_COLUMNS[check_kind(kind)]:
        text = decoded.get(name)
        if isinstance(text, str):
            decoded[name] = json.loads(text)
    return decoded


def session_record(session: AtlasSessionTrace) -> dict[str, Any]:
    """A session as one record of the ``sessions`` kind (``to_dict()``, times kept as times)."""
    record = session.to_dict()
    record["created_at"] = session.created_at
    record["completed_at"] = session.completed_at
    return record


def _only_sessions(items: Iterable[Any]) -> Iterator[AtlasSessionTrace]:
    for item in items:
        if not isinstance(item, AtlasSessionTrace):
            raise RecordSchemaError(
                f"Expected AtlasSessionTrace, got {type(item).__name__}: pass either traces "
                "or records, not a mix."
            )
        yield item


def records_from_sessions(sessions: Iterable[AtlasSessionTrace], kind: str) -> Iterator[Any]:
    """The records of ``kind`` for ``sessions``, lazily (GRPO/DPO with default settings)."""
    from trainers import preferences, runtime_dataset

    check_kind(kind)
    if kind == "rl":
        return runtime_dataset.iter_rl_records(sessions)
    if kind == "flat":
        return runtime_dataset.iter_flat_records(sessions)
    if kind == "sessions":
        return map(session_record, sessions)
    if kind == "grpo":
        return preferences.iter_grpo_rows(sessions)
    return (pair.to_record() for pair in preferences.iter_preference_pairs(sessions))


def iter_rows(
    source: Iterable[AtlasSessionTrace] | Iterable[Mapping[str, Any]], kind: str
) -> Iterator[dict[str, Any]]:
    """Table rows of ``kind`` from traces (converted first) or from ready records, lazily.

    The first item decides: traces are turned into ``kind`` records by
    :func:`records_from_sessions`; mappings are taken as records already.
    """
    check_kind(kind)
    items = iter(source)
    first = next(items, None)
    if first is None:
        return
    chained: Iterator[Any] = itertools.chain([first], items)
    records = (
        records_from_sessions(_only_sessions(chained), kind)
        if isinstance(first, AtlasSessionTrace)
        else chained
    )
    for record in records:
        yield encode_record(record, kind)


def iter_row_groups(
    rows: Iterable[Mapping[str, Any]],
    max_rows: int = DEFAULT_ROW_GROUP_SIZE,
    max_text: int = DEFAULT_ROW_GROUP_TEXT,
) -> Iterator[list[Mapping[str, Any]]]:
    """``rows`` in lists of at most ``max_rows`` rows and about ``max_text`` characters of text.

    A list ends at the row that reaches either bound, so it is never empty
    and memory holds one list of rows, however large the rows are.
    """
    group: list[Mapping[str, Any]] = []
    text = 0
    for row in rows:
        group.append(row)
        text += sum(len(value) for value in row.values() if isinstance(value, str))
        if len(group) >= max_rows or text >= max_text:
            yield group
            group, text = [], 0
    if group:
        yield group
