"""Rows written by older Atlas versions, and rows that cannot be decoded, read back faithfully."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from training_data_sql import ids_where

from atlas.errors import TraceDecodeWarning
from atlas.storage.synthetic import seed_sessions
from atlas.training_data import get_session_by_id, get_training_sessions

EVERYTHING = {"include_all_review_statuses": True}


@pytest.fixture(scope="module")
def legacy_url(scratch_database: Callable[[], str]) -> str:
    """Only legacy sessions: JSON as text, nested events, NULL plans, missing steps."""
    url = scratch_database()
    with psycopg.connect(url, autocommit=True) as conn:
        report = seed_sessions(conn, 30, seed=21, legacy_fraction=1.0)
    assert report.legacy_sessions == 30
    return url


@pytest.fixture(scope="module")
def legacy_traces(legacy_url: str) -> dict[int, Any]:
    # filterwarnings=error: decoding legacy shapes must not need a single warning.
    return {t.session_id: t for t in get_training_sessions(legacy_url, **EVERYTHING)}


def test_every_legacy_session_is_returned(legacy_url, legacy_traces):
    assert sorted(legacy_traces) == sorted(ids_where(legacy_url))


def test_metadata_stored_as_json_text_becomes_a_dict(legacy_url, legacy_traces):
    as_text = ids_where(legacy_url, "jsonb_typeof(metadata) = 'string'")
    assert as_text, "the generator must have written some"
    for session_id in as_text:
        trace = legacy_traces[session_id]
        assert trace.learning_key and trace.session_metadata["synthetic"] is True
        assert isinstance(trace.adaptive_summary, dict)
        assert trace.load_warnings == []


def test_nested_events_come_out_flat(legacy_url, legacy_traces):
    nested = ids_where(
        legacy_url,
        "id IN (SELECT session_id FROM trajectory_events WHERE event -> 'payload' ? 'event_type')",
    )
    assert nested
    for session_id in nested:
        for event in legacy_traces[session_id].trajectory_events:
            assert event["event_type"].isupper()  # as the nested writer spelled it
            assert event["actor"] and event["step_id"]
            assert event["payload"]["event_type"] == event["event_type"]  # the original, kept


def test_a_null_plan_is_none(legacy_url, legacy_traces):
    null_plans = ids_where(legacy_url, "id IN (SELECT session_id FROM plans WHERE plan IS NULL)")
    assert null_plans
    assert {i for i, t in legacy_traces.items() if t.plan is None} == set(null_plans)


def test_missing_steps_are_an_empty_list(legacy_url, legacy_traces):
    stepless = ids_where(legacy_url, "id NOT IN (SELECT session_id FROM step_results)")
    assert stepless
    assert {i for i, t in legacy_traces.items() if t.steps == []} == set(stepless)


@pytest.fixture
def damaged_url(db_url: str) -> tuple[str, int | None, int | None]:
    """Ten good sessions, one with undecodable metadata and one with a bare-string event."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        report = seed_sessions(conn, 10, seed=6)
        broken, odd = report.first_id, report.last_id
        conn.execute(
            "UPDATE sessions SET metadata = to_jsonb('{broken'::text) WHERE id = %s", [broken]
        )
        conn.execute(
            "INSERT INTO trajectory_events (session_id, event) "
            "VALUES (%s, to_jsonb('tool crashed'::text))",
            [odd],
        )
    return db_url, broken, odd


def test_undecodable_rows_warn_and_the_rest_of_the_batch_is_returned(damaged_url):
    url, broken, odd = damaged_url
    with pytest.warns(TraceDecodeWarning, match=r"^2 session\(s\) held values"):
        traces = get_training_sessions(url, **EVERYTHING)
    assert [t.session_id for t in traces] == ids_where(url)
    damaged = {t.session_id: t.load_warnings for t in traces if t.load_warnings}
    assert damaged == {
        broken: ["session metadata is not a JSON object (str); kept under legacy_value"],
        odd: ["1 trajectory event(s) are not JSON objects; kept under payload"],
    }


def test_undecodable_values_are_kept_as_found(damaged_url):
    url, broken, odd = damaged_url
    with pytest.warns(TraceDecodeWarning):
        trace = get_session_by_id(session_id=broken, db_url=url)
    assert trace.session_metadata["legacy_value"] == "{broken"
    with pytest.warns(TraceDecodeWarning):
        events = get_session_by_id(session_id=odd, db_url=url).trajectory_events
    assert [e["payload"] for e in events if e["event_type"] == "unknown"] == ["tool crashed"]
