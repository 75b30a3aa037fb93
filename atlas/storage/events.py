"""The trajectory event envelope: one shape on disk, two shapes accepted.

Events are stored flat, so ``event->>'event_type'`` works in SQL::

    {"event_type": "tool_call", "actor": "student", "name": "web_search",
     "timestamp": "2026-01-01T12:00:00.000000+00:00", "step_id": 1,
     "payload": {...}, ...any further keys kept as they are}

atlas-sdk and older Atlas versions stored the interesting fields one level
down: ``event["payload"]`` holds ``event_type``, ``name``, ``event_timestamp``
and ``metadata.actor`` / ``metadata.step_id``. Such an event is *lifted*
without losing anything: every key it has stays exactly as stored (the whole
original ``payload`` included) and the five envelope keys it lacks are added
beside them, together with :data:`LIFTED_MARKER`, the list of keys that were
added. :func:`original_event` removes them again, so the lift is invertible.

The same lift is written once in SQL (``atlas_event_envelope`` in migration
0004), which normalises stored rows in place and, through a trigger, rows
that older writers insert later; a property test keeps the two equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "ENVELOPE_KEYS",
    "LIFTED_KEYS",
    "LIFTED_MARKER",
    "event_timestamp",
    "is_nested_event",
    "original_event",
    "to_envelope",
]

ENVELOPE_KEYS: tuple[str, ...] = ("event_type", "actor", "name", "timestamp", "step_id", "payload")
# The keys a lift adds when the stored event lacks them, in this order.
LIFTED_KEYS: tuple[str, ...] = ENVELOPE_KEYS[:5]
# Names the keys a lift added; its presence also marks an event as already lifted.
LIFTED_MARKER = "lifted_keys"


def is_nested_event(event: Mapping[str, Any]) -> bool:
    """True for the nested shape, where ``event_type`` lives only under ``payload``.

    An event that already carries :data:`LIFTED_MARKER` at the top level is not
    lifted (again): the marker could not be added without overwriting it.
    """
    if "event_type" in event or LIFTED_MARKER in event:
        return False
    inner = event.get("payload")
    return isinstance(inner, Mapping) and "event_type" in inner


def to_envelope(event: Mapping[str, Any], *, iso_timestamp: bool = False) -> dict[str, Any]:
    """Return ``event`` as a flat envelope with all six envelope keys present.

    Nested events are lifted losslessly: the result is ``event`` with every key
    and value as stored, plus those of ``event_type`` (``payload.event_type``),
    ``actor`` (``payload.metadata.actor``), ``name`` (``payload.name``),
    ``timestamp`` (``payload.event_timestamp``, else ``payload.timestamp``, as
    ISO 8601 UTC text when it is epoch seconds) and ``step_id``
    (``payload.metadata.step_id``) that ``event`` lacks, plus
    ``lifted_keys``, the list of the keys added. A key the event already has is
    never overwritten.

    Flat events keep every key and value; missing envelope keys are added as
    ``None`` (``payload`` as ``{}``). With ``iso_timestamp`` (what the writer
    asks for, before anything is stored) an epoch or datetime ``timestamp``
    becomes ISO text; readers leave a stored value as it is. An event lifted
    before (it carries ``lifted_keys``) is returned as it is.
    """
    if is_nested_event(event):
        return _lift(event)
    flat = dict(event)
    for key in ENVELOPE_KEYS:
        flat.setdefault(key, {} if key == "payload" else None)
    if iso_timestamp and LIFTED_MARKER not in flat:
        flat["timestamp"] = _iso(flat["timestamp"])
    return flat


def original_event(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """Invert a lift: ``envelope`` without the keys named by its ``lifted_keys``, nor that key.

    An envelope without a ``lifted_keys`` list was never lifted and comes back
    unchanged (as a new dict).
    """
    added = envelope.get(LIFTED_MARKER)
    if not isinstance(added, list):
        return dict(envelope)
    dropped = {LIFTED_MARKER, *added}
    return {key: value for key, value in envelope.items() if key not in dropped}


def _lift(event: Mapping[str, Any]) -> dict[str, Any]:
    inner = event["payload"]
    metadata = inner.get("metadata")
    meta: Mapping[str, Any] = metadata if isinstance(metadata, Mapping) else {}
    stamp = inner.get("event_timestamp")
    if stamp is None:
        stamp = inner.get("timestamp")
    lifted = {
        "event_type": inner["event_type"],
        "actor": meta.get("actor"),
        "name": inner.get("name"),
        "timestamp": _iso(stamp),
        "step_id": meta.get("step_id"),
    }
    added = [key for key in LIFTED_KEYS if key not in event]
    envelope = dict(event)
    envelope.update((key, lifted[key]) for key in added)
    envelope[LIFTED_MARKER] = added
    return envelope


def _iso(value: Any) -> Any:
    """Epoch seconds and datetimes become ISO 8601 UTC text; other values pass through.

    Epoch seconds follow ``datetime.fromtimestamp(value, timezone.utc)``
    (microseconds rounded half to even; years 1-9999, else the number is kept),
    which ``atlas_epoch_iso`` in migration 0004 reproduces exactly.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value, tz=timezone.utc).isoformat()
        except (OverflowError, OSError, ValueError):
            return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.isoformat()
    return value


def event_timestamp(envelope: Mapping[str, Any]) -> datetime | None:
    """The envelope's timestamp as an aware datetime, or None if it has none or it is unreadable."""
    value = envelope.get("timestamp")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = _iso(value)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
