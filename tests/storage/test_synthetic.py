"""The synthetic data generator: realistic shape, determinism, legacy rows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from atlas.storage.synthetic import _Builder, build_batch, seed_sessions

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
            "(SELECT count(*) FROM trajectory_events WHERE NOT event ? 'event_type'), "
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
