"""Triggers keep older writers' rows in today's shape: flat events, reward_stats from reward."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from atlas.storage.events import original_event, to_envelope
from atlas.training_data import get_training_sessions

SDK_EVENT = {
    "parent_id": "root",
    "function_ancestry": {"function_id": "f", "function_name": "step", "parent_id": None},
    "payload": {
        "event_type": "TOOL_END",
        "event_timestamp": 1_714_521_600.25,
        "span_event_timestamp": 1_714_521_599.0,
        "framework": None,
        "name": "web_search",
        "tags": None,
        "metadata": {"actor": "student", "step_id": 3},
        "data": {"input": "q", "output": "a", "chunk": None},
        "usage_info": {"token_usage": {"prompt_tokens": 3}},
        "UUID": "9b1d",
    },
}


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO sessions (id, task, status, review_status) "
            "VALUES (1, 't', 'succeeded', 'approved')"
        )
        yield connection


def insert_event(conn: psycopg.Connection[Any], event: Any) -> None:
    """atlas-sdk's Database.log_intermediate_step, statement for statement."""
    conn.execute(
        "INSERT INTO trajectory_events(session_id, event) VALUES (%s, %s)", (1, Jsonb(event))
    )


def stored_event(conn: psycopg.Connection[Any]) -> Any:
    row = conn.execute("SELECT event FROM trajectory_events ORDER BY id DESC LIMIT 1").fetchone()
    assert row is not None
    return row[0]


def test_nested_insert_is_stored_lifted(conn: psycopg.Connection[Any]) -> None:
    insert_event(conn, SDK_EVENT)
    assert stored_event(conn) == to_envelope(SDK_EVENT)
    assert original_event(stored_event(conn)) == SDK_EVENT


def test_event_type_filter_finds_a_nested_insert(conn: psycopg.Connection[Any]) -> None:
    insert_event(conn, SDK_EVENT)
    row = conn.execute(
        "SELECT event->>'actor', event->>'timestamp' FROM trajectory_events "
        "WHERE event->>'event_type' = 'TOOL_END'"
    ).fetchone()
    assert row == ("student", "2024-05-01T00:00:00.250000+00:00")


def test_update_to_a_nested_event_is_lifted(conn: psycopg.Connection[Any]) -> None:
    insert_event(conn, {"event_type": "x"})
    conn.execute("UPDATE trajectory_events SET event = %s", (Jsonb(SDK_EVENT),))
    assert stored_event(conn)["event_type"] == "TOOL_END"


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({"event_type": "x", "payload": {"event_type": "y"}}, id="flat"),
        pytest.param({"payload": {"data": 1}}, id="unknown-shape"),
        pytest.param(["not", "an", "object"], id="array"),
    ],
)
def test_other_events_are_stored_as_written(conn: psycopg.Connection[Any], event: Any) -> None:
    insert_event(conn, event)
    assert stored_event(conn) == event


def sdk_log_session_reward(conn: psycopg.Connection[Any], reward: str, stats: Any) -> None:
    """atlas-sdk's Database.log_session_reward: JSON text; reward_stats NULL when it has none."""
    conn.execute(
        "UPDATE sessions SET reward = %s::jsonb, student_learning = %s, teacher_learning = %s, "
        "reward_stats = %s::jsonb, reward_audit = %s WHERE id = %s",
        (reward, "s", "t", None if stats is None else json.dumps(stats), None, 1),
    )


def reward_stats(conn: psycopg.Connection[Any]) -> Any:
    row = conn.execute("SELECT reward_stats FROM sessions WHERE id = 1").fetchone()
    assert row is not None
    return row[0]


def test_min_reward_finds_a_session_whose_writer_set_only_reward(
    conn: psycopg.Connection[Any], db_url: str
) -> None:
    sdk_log_session_reward(conn, json.dumps({"score": 0.9, "judges": []}), None)
    sessions = get_training_sessions(db_url=db_url, min_reward=0.8)
    assert [s.session_id for s in sessions] == [1]


@pytest.mark.parametrize(
    ("reward", "stats", "expected"),
    [
        pytest.param('{"score": 0.9}', None, {"score": 0.9, "source": "reward"},
                     id="backfilled"),
        pytest.param('{"score": 0.9}', {"score": 0.4}, {"score": 0.4}, id="writer-stats-win"),
        pytest.param('{"score": "high"}', None, None, id="text-score-not-copied"),
        pytest.param('{"judges": []}', None, None, id="no-score"),
        pytest.param('"0.9"', None, None, id="not-an-object"),
        pytest.param(json.dumps('{"score": 0.7}'), None, {"score": 0.7, "source": "reward"},
                     id="double-encoded"),
        pytest.param('{"score": 1e400}', None, {"score_raw": 10**400, "source": "reward"},
                     id="beyond-float-range"),
    ],
)  # fmt: skip
def test_reward_stats_trigger(
    conn: psycopg.Connection[Any], reward: str, stats: Any, expected: Any
) -> None:
    sdk_log_session_reward(conn, reward, stats)
    assert reward_stats(conn) == expected


def test_insert_with_a_reward_gets_reward_stats(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "INSERT INTO sessions (id, task, status, reward) VALUES (2, 't', 'ok', '{\"score\": 1}')"
    )
    row = conn.execute("SELECT reward_stats FROM sessions WHERE id = 2").fetchone()
    assert row == ({"score": 1, "source": "reward"},)


@pytest.mark.parametrize(
    ("stats", "stored"),
    [
        pytest.param({"score": "high"}, {"score_raw": "high"}, id="text"),
        pytest.param({"score": False, "n": 2}, {"score_raw": False, "n": 2}, id="bool"),
        pytest.param({"score": 1e301}, {"score_raw": 10**301}, id="beyond-float"),
        pytest.param({"score": "0.5"}, {"score": "0.5"}, id="numeric-text-kept"),
        pytest.param({"score": 0.5}, {"score": 0.5}, id="number-kept"),
    ],
)
def test_a_score_the_reward_index_cannot_cast_is_kept_raw(
    conn: psycopg.Connection[Any], stats: dict[str, Any], stored: dict[str, Any]
) -> None:
    # Without the trigger PostgreSQL refuses the row: the index casts the score to float.
    conn.execute("UPDATE sessions SET reward_stats = %s WHERE id = 1", [Jsonb(stats)])
    row = conn.execute("SELECT reward_stats FROM sessions WHERE id = 1").fetchone()
    assert row is not None and row[0] == stored
