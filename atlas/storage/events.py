"""The trajectory event envelope: one shape on disk, two shapes accepted.

Events are stored flat, so ``event->>'event_type'`` works in SQL::

    {"event_type": "tool_call", "actor": "student", "name": "web_search",
     "timestamp": "2026-01-01T12:00:00.000000+00:00", "step_id": 1,
     "payload": {...}, ...any further keys kept as they are}

Older Atlas versions stored the interesting fields one level down, under
``event["payload"]`` with the actor in ``payload["metadata"]``. Both the
writer and the readers pass events through :func:`to_envelope`, so either
shape comes out flat and nothing of the original is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

__all__ = ["ENVELOPE_KEYS", "event_timestamp", "is_nested_event", "to_envelope"]

ENVELOPE_KEYS: tuple[str, ...] = ("event_type", "actor", "name", "timestamp", "step_id", "payload")


def is_nested_event(event: Mapping[str, Any]) -> bool:
    """True for the older shape, where ``event_type`` lives under ``payload``."""
    if "event_type" in event:
        return False
    inner = event.get("payload")
    return isinstance(inner, Mapping) and "event_type" in inner


def to_envelope(event: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``event`` as a flat envelope with all six envelope keys present.

    Flat events keep every key; missing envelope keys are added as ``None``
    (``payload`` as ``{}``). Nested events are lifted: ``payload.event_type``,
    ``payload.name``, ``payload.metadata.actor`` / ``step_id`` and
    ``payload.event_timestamp`` move to the top, ``payload.data`` becomes the
    payload, and every other key is kept beside them.
    """
    flat = _lift_nested(event) if is_nested_event(event) else dict(event)
    for key in ENVELOPE_KEYS:
        flat.setdefault(key, {} if key == "payload" else None)
    flat["timestamp"] = _iso(flat["timestamp"])
    return flat


def _lift_nested(event: Mapping[str, Any]) -> dict[str, Any]:
    inner = dict(event["payload"])
    metadata = inner.pop("metadata", None)
    meta = dict(metadata) if isinstance(metadata, Mapping) else {}
    data = inner.pop("data", None)
    flat: dict[str, Any] = {k: v for k, v in event.items() if k != "payload"}
    timestamp = inner.pop("event_timestamp", None)
    if timestamp is None:
        timestamp = inner.pop("timestamp", None)
    lifted = {
        "event_type": inner.pop("event_type"),
        "actor": meta.pop("actor", None),
        "name": inner.pop("name", None),
        "timestamp": timestamp,
        "step_id": meta.pop("step_id", None),
    }
    for key, value in lifted.items():
        # A value beside the payload (e.g. a top-level timestamp) is kept when
        # the payload has none, rather than overwritten with None.
        if value is not None or key not in flat:
            flat[key] = value
    flat["payload"] = data if data is not None else {}
    if meta:
        flat["metadata"] = meta
    if metadata is not None and not isinstance(metadata, Mapping):
        flat["metadata"] = metadata
    for key, value in inner.items():
        flat.setdefault(key, value)
    return flat


def _iso(value: Any) -> Any:
    """Epoch seconds and datetimes become ISO 8601 UTC text; other values pass through."""
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
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
