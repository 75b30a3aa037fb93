"""The flat trajectory-event envelope, and lifting the older nested shape into it."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from atlas.storage.events import ENVELOPE_KEYS, event_timestamp, is_nested_event, to_envelope

NESTED = {
    "parent_id": "root",
    "payload": {
        "event_type": "TOOL_END",
        "event_timestamp": 1_700_000_000.5,
        "name": "web_search",
        "metadata": {"actor": "student", "step_id": 2, "trace_id": "t1"},
        "data": {"input": "q", "output": "a"},
        "usage_info": {"tokens": 12},
    },
}


def test_flat_event_keeps_every_key_and_gains_missing_ones() -> None:
    event = {"event_type": "reward", "actor": "judge", "payload": {"score": 1}, "extra": [1]}
    assert to_envelope(event) == {
        "event_type": "reward",
        "actor": "judge",
        "name": None,
        "timestamp": None,
        "step_id": None,
        "payload": {"score": 1},
        "extra": [1],
    }


def test_nested_event_is_lifted() -> None:
    assert to_envelope(NESTED) == {
        "event_type": "TOOL_END",
        "actor": "student",
        "name": "web_search",
        "timestamp": "2023-11-14T22:13:20.500000+00:00",
        "step_id": 2,
        "payload": {"input": "q", "output": "a"},
        "metadata": {"trace_id": "t1"},
        "usage_info": {"tokens": 12},
        "parent_id": "root",
    }


def test_nested_event_keeps_a_timestamp_beside_the_payload() -> None:
    event = {"timestamp": "2024-05-01T00:00:00+00:00", "payload": {"event_type": "x"}}
    assert to_envelope(event)["timestamp"] == "2024-05-01T00:00:00+00:00"


@pytest.mark.parametrize(
    ("inner", "key", "expected"),
    [
        pytest.param({"timestamp": 0}, "timestamp", "1970-01-01T00:00:00+00:00", id="timestamp"),
        pytest.param({"metadata": "old"}, "metadata", "old", id="non-mapping-metadata"),
        pytest.param({"metadata": {"actor": "a"}}, "metadata", None, id="metadata-emptied"),
        pytest.param({}, "payload", {}, id="no-data"),
    ],
)
def test_nested_event_details(inner: dict[str, Any], key: str, expected: Any) -> None:
    lifted = to_envelope({"payload": {"event_type": "x", **inner}})
    assert lifted.get(key) == expected


def test_envelope_has_every_envelope_key() -> None:
    assert set(ENVELOPE_KEYS) <= set(to_envelope({}))


@pytest.mark.parametrize(
    ("event", "nested"),
    [
        pytest.param(NESTED, True, id="nested"),
        pytest.param({"event_type": "x", "payload": {"event_type": "y"}}, False, id="flat-wins"),
        pytest.param({"payload": {"data": 1}}, False, id="payload-without-type"),
        pytest.param({"payload": "text"}, False, id="payload-not-mapping"),
    ],
)
def test_is_nested_event(event: dict[str, Any], nested: bool) -> None:
    assert is_nested_event(event) is nested


@pytest.mark.parametrize(
    ("timestamp", "stored"),
    [
        pytest.param(0, "1970-01-01T00:00:00+00:00", id="epoch-int"),
        pytest.param(
            datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05+00:00", id="naive-datetime-is-utc"
        ),
        pytest.param("2024-01-02T03:04:05Z", "2024-01-02T03:04:05Z", id="text-kept"),
        pytest.param(True, True, id="bool-kept"),
        pytest.param(1e20, 1e20, id="epoch-out-of-range-kept"),
    ],
)
def test_timestamp_normalised(timestamp: Any, stored: Any) -> None:
    assert to_envelope({"event_type": "x", "timestamp": timestamp})["timestamp"] == stored


@pytest.mark.parametrize(
    ("timestamp", "parsed"),
    [
        pytest.param(
            "2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc), id="zulu"
        ),
        pytest.param(
            "2024-01-02T03:04:05", datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc), id="naive"
        ),
        pytest.param("yesterday", None, id="unreadable"),
        pytest.param(None, None, id="missing"),
        pytest.param(12, None, id="not-text"),
    ],
)
def test_event_timestamp(timestamp: Any, parsed: datetime | None) -> None:
    assert event_timestamp({"timestamp": timestamp}) == parsed
