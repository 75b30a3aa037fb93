"""A database made by an older Atlas installation upgrades in place, losing nothing.

The old DDL is written out here, as those releases created it: the same eight
tables, fewer columns, only two indexes (one of them sessions_created_at_idx
on created_at alone), plans.plan NOT NULL, and no migrations table. The rows
use the shapes older writers produced: JSON stored as a JSON string,
trajectory events nested under "payload", a non-numeric reward score.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from storage_schema import INDEXES, SCHEMA, columns, indexes

from atlas.storage.events import original_event, to_envelope
from atlas.storage.jsonenc import loads_lenient
from atlas.storage.migrate import apply_migrations, schema_status

LEGACY_DDL = """
CREATE TABLE sessions (
    id SERIAL PRIMARY KEY,
    task TEXT NOT NULL,
    status TEXT NOT NULL,
    metadata JSONB,
    final_answer TEXT,
    reward JSONB,
    reward_stats JSONB,
    student_learning TEXT,
    teacher_learning TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    completed_at TIMESTAMPTZ
);
CREATE INDEX sessions_learning_key_idx ON sessions ((metadata->>'learning_key'));
CREATE INDEX sessions_created_at_idx ON sessions (created_at DESC);
CREATE TABLE plans (
    session_id INTEGER PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
    plan JSONB NOT NULL
);
CREATE TABLE step_results (
    session_id INTEGER REFERENCES sessions(id) ON DELETE CASCADE,
    step_id INTEGER NOT NULL,
    trace TEXT,
    output TEXT,
    evaluation JSONB,
    attempts INTEGER,
    PRIMARY KEY (session_id, step_id)
);
CREATE TABLE step_attempts (
    session_id INTEGER REFERENCES sessions(id) ON DELETE CASCADE,
    step_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    evaluation JSONB,
    PRIMARY KEY (session_id, step_id, attempt)
);
CREATE TABLE guidance_notes (
    session_id INTEGER REFERENCES sessions(id) ON DELETE CASCADE,
    step_id INTEGER NOT NULL,
    sequence INTEGER NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (session_id, step_id, sequence)
);
CREATE TABLE trajectory_events (
    id SERIAL PRIMARY KEY,
    session_id INTEGER REFERENCES sessions(id) ON DELETE CASCADE,
    event JSONB NOT NULL,
    created_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE TABLE discovery_runs (
    id SERIAL PRIMARY KEY,
    project_root TEXT NOT NULL,
    task TEXT,
    payload JSONB NOT NULL,
    created_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE TABLE learning_registry (
    learning_key TEXT PRIMARY KEY,
    student_learning TEXT,
    teacher_learning TEXT,
    updated_at TIMESTAMPTZ DEFAULT NOW()
);
"""

# Session ids are given so each row can be named below.
JSON_TEXT, SCORE_NA, REWARD_ONLY, BARE, ODD_METADATA, NUMERIC_TEXT = 1, 2, 3, 4, 5, 6
LEGACY_ROWS = """
INSERT INTO sessions (id, task, status, metadata, reward, reward_stats, final_answer,
                      student_learning, created_at, completed_at) VALUES
 (1, 'json stored as text', 'succeeded', to_jsonb('{"learning_key": "k"}'::text),
  to_jsonb('{"score": 0.5}'::text), to_jsonb('{"score": 0.5, "uncertainty": 0.1}'::text),
  'answer', 'learned', '2024-01-01T10:00:00Z', '2024-01-01T10:05:00Z'),
 (2, 'score n/a', 'succeeded', '{"learning_key": "k"}', '{"score": "n/a"}',
  '{"score": "n/a", "uncertainty": 0.2}', NULL, NULL, '2024-01-02T10:00:00Z', NULL),
 (3, 'reward only', 'succeeded', '{}', '{"score": 0.9, "judges": []}', NULL, NULL, NULL,
  '2024-01-03T10:00:00Z', NULL),
 (4, 'no plan, no steps', 'failed', NULL, NULL, NULL, NULL, NULL, '2024-01-04T10:00:00Z', NULL),
 (5, 'odd metadata', 'running', to_jsonb('[1, 2]'::text), to_jsonb('not json'::text), NULL,
  NULL, NULL, '2024-01-05T10:00:00Z', NULL),
 (6, 'numeric text score', 'succeeded', '{"learning_key": "other"}', NULL, '{"score": "0.8"}',
  NULL, NULL, '2024-01-06T10:00:00Z', NULL);
SELECT setval('sessions_id_seq', 6);
INSERT INTO plans (session_id, plan) VALUES
 (1, to_jsonb('{"steps": [{"id": 1, "description": "look"}]}'::text)),
 (2, '{"steps": []}'), (3, '{"steps": []}'), (5, '"free text plan"'), (6, '{"steps": []}');
INSERT INTO step_results (session_id, step_id, trace, output, evaluation, attempts) VALUES
 (1, 1, 'trace one', 'output one', to_jsonb('{"validation": {"valid": true}}'::text), 2),
 (2, 1, 'trace two', NULL, '{"validation": {"valid": false}}', 1);
INSERT INTO step_attempts (session_id, step_id, attempt, evaluation) VALUES
 (1, 1, 1, to_jsonb('{"valid": false}'::text)), (1, 1, 2, '{"valid": true}');
INSERT INTO guidance_notes (session_id, step_id, sequence, note) VALUES
 (1, 1, 1, 'try harder'), (1, 1, 2, 'cite sources');
INSERT INTO trajectory_events (session_id, event, created_at) VALUES
 (1, '{"payload": {"event_type": "TOOL_START", "event_timestamp": 1704103200,
      "metadata": {"actor": "student", "step_id": 1}, "data": {"input": "q"}}}',
  '2024-01-01T10:00:00Z'),
 (1, '{"payload": {"event_type": "TOOL_END", "name": "search",
      "metadata": {"actor": "student"}, "data": {"output": "a"}}}', '2024-01-01T10:01:00Z'),
 (2, '{"event_type": "reward", "actor": "judge", "payload": {"score": "n/a"}}',
  '2024-01-02T10:00:00Z');
INSERT INTO discovery_runs (project_root, task, payload) VALUES
 ('/repo', 'discover', '{"env": "x"}');
INSERT INTO learning_registry (learning_key, student_learning, teacher_learning) VALUES
 ('k', 'student playbook', 'teacher playbook');
"""

PRIMARY_KEYS = {
    "sessions": "id",
    "plans": "session_id",
    "step_results": "session_id, step_id",
    "step_attempts": "session_id, step_id, attempt",
    "guidance_notes": "session_id, step_id, sequence",
    "trajectory_events": "id",
    "discovery_runs": "id",
    "learning_registry": "learning_key",
}

Snapshot = dict[str, list[dict[str, Any]]]


def snapshot(conn: psycopg.Connection[Any]) -> Snapshot:
    taken: Snapshot = {}
    with conn.cursor(row_factory=dict_row) as cur:
        for table, key in PRIMARY_KEYS.items():
            taken[table] = cur.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall()
    return taken


@pytest.fixture
def legacy(empty_db_url: str) -> Iterator[tuple[psycopg.Connection[Any], Snapshot]]:
    """An older installation's database, its contents before the upgrade, upgraded."""
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(LEGACY_DDL)
        conn.execute(LEGACY_ROWS)
        before = snapshot(conn)
        apply_migrations(conn)
        yield conn, before


def session(conn: psycopg.Connection[Any], session_id: int) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT * FROM sessions WHERE id = %s", (session_id,)).fetchone()
    assert row is not None
    return row


def recovered(column: str, old: Any, new: Any) -> bool:
    """Whether ``old`` (pre-upgrade) can be read back from ``new`` (post-upgrade)."""
    if new == old or new == loads_lenient(old):
        return True
    if column == "event" and isinstance(new, dict):
        return original_event(new) == old  # lifted into the flat envelope
    if column == "reward_stats" and isinstance(new, dict) and "score_raw" in new:
        new = {k: v for k, v in new.items() if k != "score_raw"} | {"score": new["score_raw"]}
        return bool(new == loads_lenient(old))
    return column == "reward_stats" and old is None  # backfilled from reward


def test_every_row_survives(legacy: tuple[psycopg.Connection[Any], Snapshot]) -> None:
    conn, before = legacy
    after = snapshot(conn)
    assert {t: len(rows) for t, rows in after.items()} == {
        t: len(rows) for t, rows in before.items()
    }


def test_every_original_value_is_recoverable(
    legacy: tuple[psycopg.Connection[Any], Snapshot],
) -> None:
    conn, before = legacy
    after = snapshot(conn)
    lost = [
        (table, column, old_row[column], new_row[column])
        for table in before
        for old_row, new_row in zip(before[table], after[table], strict=True)
        for column in old_row
        if not recovered(column, old_row[column], new_row[column])
    ]
    assert lost == []


def test_schema_is_current(legacy: tuple[psycopg.Connection[Any], Snapshot]) -> None:
    conn, _ = legacy
    assert columns(conn) == SCHEMA
    assert schema_status(conn).up_to_date


def test_named_indexes_exist(legacy: tuple[psycopg.Connection[Any], Snapshot]) -> None:
    conn, _ = legacy
    found = indexes(conn)
    assert {name: found.get(name) for name in INDEXES} == INDEXES


def test_created_at_index_is_replaced_for_keyset_paging(
    legacy: tuple[psycopg.Connection[Any], Snapshot],
) -> None:
    conn, _ = legacy
    assert indexes(conn)["sessions_created_at_idx"] == "btree (created_at DESC, id DESC)"


@pytest.mark.parametrize(
    ("column", "value"),
    [
        pytest.param("metadata", {"learning_key": "k"}, id="metadata"),
        pytest.param("reward", {"score": 0.5}, id="reward"),
        pytest.param("reward_stats", {"score": 0.5, "uncertainty": 0.1}, id="reward_stats"),
        pytest.param("review_status", "pending", id="review-status-default"),
    ],
)
def test_json_strings_are_decoded(
    legacy: tuple[psycopg.Connection[Any], Snapshot], column: str, value: Any
) -> None:
    conn, _ = legacy
    assert session(conn, JSON_TEXT)[column] == value


@pytest.mark.parametrize(
    ("query", "value"),
    [
        pytest.param("SELECT plan FROM plans WHERE session_id = 1", {"steps": [
            {"id": 1, "description": "look"}]}, id="plan"),
        pytest.param("SELECT evaluation FROM step_results WHERE session_id = 1",
                     {"validation": {"valid": True}}, id="step-evaluation"),
        pytest.param("SELECT evaluation FROM step_attempts WHERE attempt = 1",
                     {"valid": False}, id="attempt-evaluation"),
        pytest.param("SELECT plan FROM plans WHERE session_id = 5", "free text plan",
                     id="plain-string-plan-kept"),
        pytest.param("SELECT metadata FROM sessions WHERE id = 5", [1, 2],
                     id="array-text-decoded"),
        pytest.param("SELECT reward FROM sessions WHERE id = 5", "not json",
                     id="non-json-string-kept"),
    ],
)  # fmt: skip
def test_child_json_strings_are_decoded(
    legacy: tuple[psycopg.Connection[Any], Snapshot], query: str, value: Any
) -> None:
    conn, _ = legacy
    row = conn.execute(query).fetchone()
    assert row is not None and row[0] == value


def test_non_numeric_score_is_kept_as_score_raw(
    legacy: tuple[psycopg.Connection[Any], Snapshot],
) -> None:
    conn, _ = legacy
    assert session(conn, SCORE_NA)["reward_stats"] == {"score_raw": "n/a", "uncertainty": 0.2}
    assert session(conn, SCORE_NA)["reward"] == {"score": "n/a"}


def test_numeric_text_score_stays_and_is_filterable(
    legacy: tuple[psycopg.Connection[Any], Snapshot],
) -> None:
    conn, _ = legacy
    rows = conn.execute(
        "SELECT id FROM sessions WHERE (reward_stats ->> 'score')::float >= 0.5 ORDER BY id"
    ).fetchall()
    assert [r[0] for r in rows] == [JSON_TEXT, REWARD_ONLY, NUMERIC_TEXT]


def test_reward_stats_backfilled_from_reward(
    legacy: tuple[psycopg.Connection[Any], Snapshot],
) -> None:
    conn, _ = legacy
    assert session(conn, REWARD_ONLY)["reward_stats"] == {"score": 0.9, "source": "reward"}


def test_session_without_plan_or_steps_is_untouched(
    legacy: tuple[psycopg.Connection[Any], Snapshot],
) -> None:
    conn, before = legacy
    row = session(conn, BARE)
    assert {k: row[k] for k in before["sessions"][BARE - 1]} == before["sessions"][BARE - 1]
    assert (row["reward_stats"], row["review_status"]) == (None, "pending")


def test_plans_accept_a_missing_plan_after_upgrade(
    legacy: tuple[psycopg.Connection[Any], Snapshot],
) -> None:
    conn, _ = legacy
    conn.execute("INSERT INTO plans (session_id, plan) VALUES (%s, NULL)", (BARE,))


def test_new_columns_get_their_defaults(
    legacy: tuple[psycopg.Connection[Any], Snapshot],
) -> None:
    conn, _ = legacy
    assert conn.execute("SELECT source, metadata FROM discovery_runs").fetchall() == [
        ("discovery", None)
    ]


def test_nested_events_are_lifted_in_place(
    legacy: tuple[psycopg.Connection[Any], Snapshot],
) -> None:
    conn, before = legacy
    events = [row[0] for row in conn.execute("SELECT event FROM trajectory_events ORDER BY id")]
    assert [original_event(e) for e in events] == [
        row["event"] for row in before["trajectory_events"]
    ]
    assert [(e["event_type"], e["actor"], e.get("step_id")) for e in events] == [
        ("TOOL_START", "student", 1),
        ("TOOL_END", "student", None),
        ("reward", "judge", None),
    ]
    assert events[0]["timestamp"] == "2024-01-01T10:00:00+00:00"
    assert to_envelope(events[0]) == events[0]  # readers pass a lifted event through


def test_upgrade_is_recorded_and_repeatable(
    legacy: tuple[psycopg.Connection[Any], Snapshot],
) -> None:
    conn, _ = legacy
    before = snapshot(conn)
    assert apply_migrations(conn) == ()
    assert snapshot(conn) == before


def test_oldest_sessions_table_without_reward_stats(empty_db_url: str) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE sessions (id SERIAL PRIMARY KEY, task TEXT NOT NULL, "
            "status TEXT NOT NULL, metadata JSONB, reward JSONB, "
            "created_at TIMESTAMPTZ NOT NULL DEFAULT NOW())"
        )
        conn.execute(
            "INSERT INTO sessions (task, status, reward) VALUES "
            "('a', 'succeeded', '{\"score\": 0.25}'), ('b', 'failed', NULL)"
        )
        apply_migrations(conn)
        rows = conn.execute("SELECT reward_stats FROM sessions ORDER BY id").fetchall()
    assert rows == [({"score": 0.25, "source": "reward"},), (None,)]


def test_null_created_at_is_backfilled(empty_db_url: str) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE sessions (id SERIAL PRIMARY KEY, task TEXT NOT NULL, "
            "status TEXT NOT NULL, metadata JSONB, created_at TIMESTAMPTZ, "
            "completed_at TIMESTAMPTZ)"
        )
        conn.execute(
            "INSERT INTO sessions (task, status, created_at, completed_at) VALUES "
            "('done', 'succeeded', NULL, '2025-03-01T00:00:00Z'), ('lost', 'failed', NULL, NULL)"
        )
        apply_migrations(conn)
        rows = conn.execute(
            "SELECT created_at::text, metadata->>'created_at_backfilled' FROM sessions ORDER BY id"
        ).fetchall()
        nullable = conn.execute(
            "SELECT is_nullable FROM information_schema.columns "
            "WHERE table_name = 'sessions' AND column_name = 'created_at'"
        ).fetchone()
    assert [r[1] for r in rows] == ["true", "true"]
    assert rows[0][0].startswith("2025-03-01")
    assert rows[1][0].startswith("1970-01-01")
    assert nullable == ("NO",)


@pytest.mark.parametrize(
    "score",
    [
        pytest.param("1e400", id="huge-number"),
        pytest.param('"1e400"', id="huge-number-as-text"),
        pytest.param("true", id="boolean"),
    ],
)
def test_scores_beyond_float_range_move_to_score_raw(empty_db_url: str, score: str) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE sessions (id SERIAL PRIMARY KEY, task TEXT NOT NULL, "
            "status TEXT NOT NULL, reward_stats JSONB, created_at TIMESTAMPTZ DEFAULT now())"
        )
        conn.execute(
            "INSERT INTO sessions (task, status, reward_stats) VALUES ('a', 'ok', %s::jsonb)",
            (f'{{"score": {score}}}',),
        )
        apply_migrations(conn)
        stats = conn.execute("SELECT reward_stats FROM sessions").fetchone()
    assert stats is not None
    assert "score" not in stats[0]
    assert "score_raw" in stats[0]
