"""The lift written in SQL (migration 0004) agrees with ``to_envelope`` on every nested event."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from event_shapes import FIRST_SECOND, LAST_SECOND, nested_events, timestamps
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from atlas.storage.events import original_event, to_envelope

# One connection shared by the examples: the functions are pure, nothing is written.
_SHARED = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


def lifted_in_sql(conn: psycopg.Connection[Any], events: list[Any]) -> list[tuple[Any, Any]]:
    """Each event as PostgreSQL stores it and as atlas_event_envelope returns it."""
    rows = conn.execute(
        "SELECT e, atlas_event_envelope(e) FROM unnest(%s::jsonb[]) WITH ORDINALITY AS u(e, n) "
        "ORDER BY n",
        ([Jsonb(e) for e in events],),
    ).fetchall()
    return [(stored, lifted) for stored, lifted in rows]


@_SHARED
@given(st.lists(nested_events, min_size=1, max_size=20))
def test_sql_lift_equals_python_lift(conn: psycopg.Connection[Any], events: list[Any]) -> None:
    # Compared on the event as stored: jsonb keeps numbers as decimals, so a
    # Python float such as 1e300 reads back as an int, for both sides alike.
    for stored, lifted in lifted_in_sql(conn, events):
        assert lifted == to_envelope(stored)


@_SHARED
@given(st.lists(nested_events, min_size=1, max_size=20))
def test_sql_lift_is_inverted_by_original_event(
    conn: psycopg.Connection[Any], events: list[Any]
) -> None:
    for stored, lifted in lifted_in_sql(conn, events):
        assert original_event(lifted) == stored


@_SHARED
@given(st.lists(timestamps, min_size=1, max_size=50))
def test_epoch_text_matches_python(conn: psycopg.Connection[Any], stamps: list[Any]) -> None:
    events = [{"payload": {"event_type": "x", "event_timestamp": s}} for s in stamps]
    for stored, lifted in lifted_in_sql(conn, events):
        assert lifted["timestamp"] == to_envelope(stored)["timestamp"]


@pytest.mark.parametrize(
    "literal",
    [
        pytest.param("0", id="epoch"),
        pytest.param("1700000000.5", id="half-second"),
        pytest.param("0.0000005", id="half-microsecond"),
        pytest.param("0.0000015", id="odd-half-microsecond"),
        pytest.param("-1.5", id="negative-fraction"),
        pytest.param("-0.0000001", id="just-before-epoch"),
        pytest.param(str(FIRST_SECOND), id="first-second"),
        pytest.param(f"{FIRST_SECOND}.0000004", id="first-second-plus"),
        pytest.param(f"{FIRST_SECOND - 1}", id="before-year-1"),
        pytest.param(str(LAST_SECOND), id="last-second"),
        pytest.param(f"{LAST_SECOND}.9999996", id="rounds-into-year-10000"),
        pytest.param("1e-400", id="underflow"),
        pytest.param("1e400", id="overflow"),
        pytest.param("1700000000.123456789012345678901", id="more-digits-than-a-double"),
        pytest.param('"2024-01-01T00:00:00Z"', id="text"),
        pytest.param("false", id="boolean"),
        pytest.param("null", id="null"),
        pytest.param('{"seconds": 1}', id="object"),
    ],
)
def test_epoch_edge_cases(conn: psycopg.Connection[Any], literal: str) -> None:
    event = '{"payload": {"event_type": "x", "event_timestamp": ' + literal + "}}"
    row = conn.execute("SELECT %s::jsonb, atlas_event_envelope(%s::jsonb)", (event, event))
    stored, lifted = row.fetchone() or (None, None)
    assert lifted["timestamp"] == to_envelope(stored)["timestamp"]


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({"event_type": "x", "payload": {"event_type": "y"}}, id="flat"),
        pytest.param({"payload": {"data": 1}}, id="no-event-type"),
        pytest.param({"lifted_keys": [], "payload": {"event_type": "y"}}, id="already-lifted"),
        pytest.param([1, 2], id="array"),
        pytest.param("text", id="string"),
    ],
)
def test_other_shapes_pass_through_sql_unchanged(conn: psycopg.Connection[Any], event: Any) -> None:
    row = conn.execute("SELECT atlas_event_envelope(%s)", (Jsonb(event),)).fetchone()
    assert row == (event,)


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/St_Johns"])
def test_epoch_text_ignores_the_session_time_zone(conn: psycopg.Connection[Any], zone: str) -> None:
    conn.execute("SELECT set_config('TimeZone', %s, false)", (zone,))
    row = conn.execute("SELECT atlas_epoch_iso('1700000000.25')").fetchone()
    assert row == ("2023-11-14T22:13:20.250000+00:00",)
