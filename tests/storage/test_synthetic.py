"""The synthetic data generator: realistic shape, determinism, legacy rows."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from atlas.storage.migrate import apply_migrations
from atlas.storage.synthetic import _Builder, build_batch, seed_sessions
from atlas.storage.synthetic_sdk import SdkBuilder, create_atlas_sdk_schema

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _rows(seed: int, legacy: float = 0.0, n: int = 20):
    builder = _Builder(seed, legacy, START, timedelta(seconds=30))
    return build_batch(builder, list(range(1, n + 1)), 0)


def test_same_seed_same_rows():
    assert _rows(7)[0] == _rows(7)[0]


def test_other_seed_other_rows():
    assert _rows(7)[0].sessions != _rows(8)[0].sessions


def test_shape_matches_the_specification():
    rows, _steps, events, legacy = _rows(3, n=60)
    per_session_steps = {sid: 0 for sid in range(1, 61)}
    for row in rows.step_results:
        per_session_steps[row[0]] += 1
        assert 1000 <= len(row[2]) <= 6100  # trace: 1-6 KB
    assert set(per_session_steps.values()) <= set(range(2, 9))
    assert 20 * 60 <= events <= 80 * 60
    assert all(150 <= len(row[1]) <= 900 for row in rows.trajectory_events)
    assert legacy == 0


def test_created_at_increases_with_id():
    rows = _rows(1)[0]
    created = [row[12] for row in rows.sessions]
    assert created == sorted(created)


def test_seed_sessions_writes_consistent_rows(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        report = seed_sessions(conn, 40, seed=5)
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM step_results), "
            "(SELECT count(*) FROM trajectory_events), "
            "(SELECT count(*) FROM trajectory_events WHERE event ? 'event_type')"
        ).fetchone()
    assert report.sessions == 40
    assert counts == (40, report.steps, report.events, report.events)


def test_seeded_sessions_carry_the_documented_metadata(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 10, seed=2)
        keys = conn.execute("SELECT DISTINCT jsonb_object_keys(metadata) FROM sessions").fetchall()
    expected = {
        "learning_key", "adaptive_summary", "triage_dossier", "session_reward", "reward_summary",
        "personas_used", "persona_updates", "teacher_notes", "drift", "drift_alert",
        "learning_history", "synthetic",
    }  # fmt: skip
    assert expected <= {k for (k,) in keys}


def test_legacy_rows_take_the_older_shapes(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        report = seed_sessions(conn, 40, seed=9, legacy_fraction=1.0)
        shapes = conn.execute(
            "SELECT (SELECT count(*) FROM sessions WHERE jsonb_typeof(metadata) = 'string'), "
            # nested events, lifted on the way in by the trigger of migration 0004
            "(SELECT count(*) FROM trajectory_events WHERE event ? 'lifted_keys'), "
            "(SELECT count(*) FROM plans WHERE plan IS NULL), "
            "(SELECT count(*) FROM sessions s WHERE NOT EXISTS "
            " (SELECT 1 FROM step_results r WHERE r.session_id = s.id))"
        ).fetchone()
    assert report.legacy_sessions == 40
    assert all(count > 0 for count in shapes)


def test_seeding_beside_existing_sessions_keeps_ids_unique(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO sessions (task) VALUES ('real')")
        report = seed_sessions(conn, 5, batch_size=2)
        total = conn.execute("SELECT count(DISTINCT id) FROM sessions").fetchone()[0]
    assert total == 6
    assert report.first_id == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"count": -1}, "count", id="negative"),
        pytest.param({"count": 1, "legacy_fraction": 1.5}, "legacy_fraction", id="fraction"),
    ],
)
def test_bad_arguments_rejected(db_url, kwargs, message):
    with psycopg.connect(db_url, autocommit=True) as conn, pytest.raises(ValueError, match=message):
        seed_sessions(conn, **kwargs)


# atlas-sdk 0.1.16's shape --------------------------------------------------------------

SDK_SESSION_KEYS = {
    "triage_dossier", "adaptive_summary", "execution_mode", "token_usage", "learning_history",
    "learning_key", "review", "drift", "drift_alert", "reward_audit", "session_reward",
    "reward_stats", "reward_summary", "student_learning", "teacher_learning", "synthetic",
}  # fmt: skip
SDK_STEP_KEYS = {
    "artifacts", "deliverable", "result", "structured_output", "status", "runtime",
    "attempt_history", "usage",
}  # fmt: skip


def _sdk_rows(seed: int = 4, n: int = 40):
    builder = SdkBuilder(seed, 0.0, START, timedelta(seconds=30))
    return build_batch(builder, list(range(1, n + 1)), 0)[0]


def test_sdk_events_are_intermediate_step_dumps():
    events = [json.loads(row[1]) for row in _sdk_rows().trajectory_events]
    assert events
    for event in events:
        assert set(event) == {"parent_id", "function_ancestry", "payload"}
        assert set(event["payload"]) >= {"event_type", "event_timestamp", "data", "UUID"}
        assert event["payload"]["event_type"].isupper()


def test_sdk_events_keep_the_specified_size():
    assert all(200 <= len(row[1]) <= 1000 for row in _sdk_rows().trajectory_events)


def test_sdk_finished_sessions_carry_its_metadata_keys():
    rows = _sdk_rows()
    succeeded = [json.loads(r[3]) for r in rows.sessions if r[2] == "succeeded"]
    assert succeeded
    assert all(set(metadata) >= SDK_SESSION_KEYS for metadata in succeeded)


def test_sdk_step_runtime_is_a_dict_of_timings():
    metadata = [json.loads(row[6]) for row in _sdk_rows().step_results]
    assert all(set(m) >= SDK_STEP_KEYS for m in metadata)
    assert all(m["runtime"]["reward_skipped"] is False for m in metadata)
    assert all("total_ms" in m["runtime"]["timings_ms"] for m in metadata)


def test_sdk_unfinished_sessions_have_no_steps_or_reward():
    rows = _sdk_rows(n=120)
    finished = {r[0] for r in rows.sessions if r[2] == "succeeded"}
    assert {r[0] for r in rows.step_results} == finished
    assert {r[0] for r in rows.plans} == finished
    assert all(r[5] is None for r in rows.sessions if r[0] not in finished)


def test_unknown_shape_rejected(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn, pytest.raises(ValueError, match="shape"):
        seed_sessions(conn, 1, shape="atlas-0.0")


def test_sdk_shape_fills_atlas_sdk_tables_untouched(empty_db_url):
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        create_atlas_sdk_schema(conn)
        report = seed_sessions(conn, 30, seed=3, shape="atlas-sdk")
        nested, flat = conn.execute(
            "SELECT count(*) FILTER (WHERE event -> 'payload' ? 'event_type'), "
            "count(*) FILTER (WHERE event ? 'event_type') FROM trajectory_events"
        ).fetchone()
        migrations = conn.execute("SELECT to_regclass('atlas_schema_migrations')").fetchone()
    assert (nested, flat) == (report.events, 0)
    assert migrations == (None,)


def test_sdk_shaped_database_upgrades(empty_db_url):
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        create_atlas_sdk_schema(conn)
        report = seed_sessions(conn, 30, seed=3, shape="atlas-sdk")
        apply_migrations(conn)
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM trajectory_events)"
        ).fetchone()
    assert counts == (30, report.events)
