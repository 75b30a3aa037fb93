"""A session's trajectory events in a record: flat envelopes with their row's id and time.

Part of the record assembly (:mod:`atlas.training_data.assembly`): pure
functions, no I/O. Events arrive as the page query sends them (one JSON array
per session, see :class:`EventBlock`), as rows (``{"id", "event",
"created_at"}``, atlas-sdk's shape) or as stored values; nothing is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from atlas.storage.events import to_envelope
from atlas.storage.jsonenc import loads_lenient

__all__ = ["EVENT_ROW_KEYS", "EventBlock", "normalise_events", "session_events", "with_row_fields"]

# The trajectory_events row's own columns, written into each event beside
# its stored keys. A stored key of the same name wins; the row's value then
# goes under the second name. The page query (plan.py) builds its SQL from this.
EVENT_ROW_KEYS: tuple[tuple[str, str], ...] = (("id", "row_id"), ("created_at", "row_created_at"))


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


def session_events(
    events: Sequence[Any] | EventBlock | None,
    event_total: int | None,
    metadata: Mapping[str, Any],
    *,
    raw: bool,
    limit: int | None,
    warnings: list[str],
) -> tuple[Any, int, int]:
    """``(events, kept, total)`` of one session; ``events`` may be a pass-through fragment.

    With ``raw``, events the server found to be complete flat envelopes go out
    as the JSON text they are (``orjson.Fragment``). A session whose events
    live only in its metadata (very old writers) has those read instead, the
    ``limit`` and the count applying to them as to rows.
    """
    trajectory: Any
    if isinstance(events, EventBlock):
        if raw and events.all_flat and events.raw:
            trajectory, kept = orjson.Fragment(events.raw), events.kept
        else:
            trajectory = events.decoded(warnings)
            kept = len(trajectory)
    else:
        trajectory = normalise_events(events, warnings) if events is not None else []
        kept = len(trajectory)
    total = event_total if event_total is not None else kept
    stored = metadata.get("trajectory_events")
    if events is not None and not kept and isinstance(stored, list):
        total = len(stored)
        trajectory = normalise_events(stored if limit is None else stored[:limit], warnings)
        kept = len(trajectory)
    return trajectory, kept, total
