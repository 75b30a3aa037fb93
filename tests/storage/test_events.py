"""The flat trajectory-event envelope, and the lossless lift of the nested shape into it."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from event_shapes import nested_events
from hypothesis import given

from atlas.storage.events import (
    ENVELOPE_KEYS,
    event_timestamp,
    is_nested_event,
    original_event,
    to_envelope,
)

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


def test_a_stored_flat_timestamp_is_read_as_stored() -> None:
    event = {"event_type": "x", "timestamp": 1_700_000_000.5}
    assert to_envelope(event)["timestamp"] == 1_700_000_000.5


def test_the_writer_asks_for_iso_timestamps() -> None:
    event = {"event_type": "x", "timestamp": 1_700_000_000.5}
    assert to_envelope(event, iso_timestamp=True)["timestamp"] == "2023-11-14T22:13:20.500000+00:00"


def test_an_epoch_timestamp_reads_as_a_datetime() -> None:
    moment = event_timestamp({"timestamp": 1_700_000_000.5})
    assert moment is not None and moment.isoformat() == "2023-11-14T22:13:20.500000+00:00"


def test_nested_event_keeps_every_key_and_gains_the_lifted_ones() -> None:
    assert to_envelope(NESTED) == {
        **NESTED,
        "event_type": "TOOL_END",
        "actor": "student",
        "name": "web_search",
        "timestamp": "2023-11-14T22:13:20.500000+00:00",
        "step_id": 2,
        "lifted_keys": ["event_type", "actor", "name", "timestamp", "step_id"],
    }


def test_lifted_key_never_overwrites_a_stored_one() -> None:
    event = {"timestamp": 7, "name": None, "payload": {"event_type": "x", "name": "n"}}
    envelope = to_envelope(event)
    assert (envelope["timestamp"], envelope["name"]) == (7, None)
    assert envelope["lifted_keys"] == ["event_type", "actor", "step_id"]


@pytest.mark.parametrize(
    ("payload", "key", "expected"),
    [
        pytest.param({"timestamp": 0}, "timestamp", "1970-01-01T00:00:00+00:00",
                     id="timestamp-when-no-event-timestamp"),
        pytest.param({"event_timestamp": None, "timestamp": 0}, "timestamp",
                     "1970-01-01T00:00:00+00:00", id="null-event-timestamp-falls-back"),
        pytest.param({"event_timestamp": 1.5, "timestamp": 0}, "timestamp",
                     "1970-01-01T00:00:01.500000+00:00", id="event-timestamp-first"),
        pytest.param({"event_timestamp": "noon"}, "timestamp", "noon", id="text-kept"),
        pytest.param({"event_timestamp": 1e20}, "timestamp", 1e20, id="out-of-range-kept"),
        pytest.param({"event_timestamp": True}, "timestamp", True, id="bool-kept"),
        pytest.param({"event_timestamp": 0.0000005}, "timestamp", "1970-01-01T00:00:00+00:00",
                     id="half-microsecond-rounds-to-even"),
        pytest.param({"event_timestamp": -1.5}, "timestamp",
                     "1969-12-31T23:59:58.500000+00:00", id="before-the-epoch"),
        pytest.param({"metadata": "old", "name": "n"}, "actor", None,
                     id="metadata-not-an-object"),
        pytest.param({"metadata": {"step_id": [1]}}, "step_id", [1], id="step-id-as-stored"),
        pytest.param({}, "timestamp", None, id="no-timestamp"),
    ],
)  # fmt: skip
def test_lifted_values(payload: dict[str, Any], key: str, expected: Any) -> None:
    assert to_envelope({"payload": {"event_type": "x", **payload}})[key] == expected


def test_payload_stays_exactly_as_stored() -> None:
    assert to_envelope(NESTED)["payload"] is NESTED["payload"]


@given(nested_events)
def test_original_event_inverts_the_lift(event: dict[str, Any]) -> None:
    assert original_event(to_envelope(event)) == event


@given(nested_events)
def test_lifting_twice_changes_nothing(event: dict[str, Any]) -> None:
    once = to_envelope(event)
    assert to_envelope(once) == once


def test_event_that_already_has_the_marker_is_not_lifted() -> None:
    event = {"lifted_keys": "mine", "payload": {"event_type": "x"}}
    assert to_envelope(event) == {
        **event, "event_type": None, "actor": None, "name": None, "timestamp": None,
        "step_id": None,
    }  # fmt: skip


def test_original_event_of_a_flat_event_is_the_event() -> None:
    assert original_event({"event_type": "x", "k": 1}) == {"event_type": "x", "k": 1}


def test_envelope_has_every_envelope_key() -> None:
    assert set(ENVELOPE_KEYS) <= set(to_envelope({}))


@pytest.mark.parametrize(
    ("event", "nested"),
    [
        pytest.param(NESTED, True, id="nested"),
        pytest.param({"event_type": "x", "payload": {"event_type": "y"}}, False, id="flat-wins"),
        pytest.param({"payload": {"data": 1}}, False, id="payload-without-type"),
        pytest.param({"payload": "text"}, False, id="payload-not-mapping"),
        pytest.param({"lifted_keys": [], "payload": {"event_type": "y"}}, False, id="lifted"),
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
def test_timestamp_normalised_for_the_writer(timestamp: Any, stored: Any) -> None:
    event = {"event_type": "x", "timestamp": timestamp}
    assert to_envelope(event, iso_timestamp=True)["timestamp"] == stored


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
        pytest.param(12, datetime(1970, 1, 1, 0, 0, 12, tzinfo=timezone.utc), id="epoch"),
        pytest.param([12], None, id="not-a-time"),
    ],
)
def test_event_timestamp(timestamp: Any, parsed: datetime | None) -> None:
    assert event_timestamp({"timestamp": timestamp}) == parsed
