"""session_insights: every figure equals the same figure computed from the rows themselves."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import timezone

import psycopg
import pytest

from atlas.errors import InvalidFilter
from atlas.storage import connect, resolve_settings, seed_sessions
from atlas.training_data import SessionFilters, session_insights


@pytest.fixture
def seeded(db_url: str) -> str:
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 60, seed=3, legacy_fraction=0.2)
        conn.execute(
            "UPDATE sessions SET review_status = (ARRAY['approved', 'pending', "
            "'quarantined'])[id % 3 + 1]"
        )
        # Edge scores: exactly 1 (last bin), outside [0, 1], text (not a number), none.
        conn.execute("UPDATE sessions SET reward_stats = '{\"score\": 1}' WHERE id = 1")
        conn.execute("UPDATE sessions SET reward_stats = '{\"score\": 1.5}' WHERE id = 2")
        conn.execute("UPDATE sessions SET reward_stats = '{\"score\": -0.25}' WHERE id = 3")
        conn.execute('UPDATE sessions SET reward_stats = \'{"score": "high"}\' WHERE id = 4')
        conn.execute("UPDATE sessions SET reward_stats = NULL WHERE id = 5")
        conn.execute("UPDATE sessions SET metadata = '\"not an object\"' WHERE id = 6")
        conn.execute("UPDATE sessions SET created_at = '-infinity' WHERE id = 7")
        conn.execute(
            "INSERT INTO learning_registry (learning_key, student_learning, teacher_learning) "
            "SELECT metadata ->> 'learning_key', 'student playbook', 'teacher playbook' "
            "FROM sessions WHERE id = 10"
        )
    return db_url


def _rows(url: str) -> list[dict[str, object]]:
    with connect(resolve_settings(url)) as conn:
        cur = conn.execute(
            "SELECT id, status, review_status, created_at, "
            "CASE WHEN jsonb_typeof(metadata) = 'object' THEN metadata ->> 'learning_key' END, "
            "CASE WHEN jsonb_typeof(reward_stats -> 'score') = 'number' "
            "THEN (reward_stats ->> 'score')::float END, "
            "COALESCE(jsonb_typeof(metadata) = 'object' AND metadata -> 'drift_alert' = 'true', "
            "false) FROM sessions"
        )
        names = ("id", "status", "review", "created", "key", "score", "drift")
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _bin(score: float, bins: int) -> int:
    if score < 0:
        return 0
    if score > 1:
        return bins + 1
    return min(int(score * bins) + 1, bins)


def test_every_figure_matches_the_rows(seeded: str) -> None:
    rows = _rows(seeded)
    with connect(resolve_settings(seeded)) as conn:
        got = session_insights(conn, bins=10)
    scores = [r["score"] for r in rows if r["score"] is not None]
    assert got.total == len(rows) == 60
    assert got.scored == len(scores)
    assert got.mean_reward == pytest.approx(statistics.fmean(scores))  # type: ignore[arg-type]
    assert got.drift_alerts == sum(bool(r["drift"]) for r in rows)
    assert got.by_status == Counter((r["status"], r["review"]) for r in rows)
    assert got.review_counts == Counter(r["review"] for r in rows)
    assert got.queue_size == sum(r["review"] == "pending" for r in rows)
    expected_hist: dict[object, list[int]] = {}
    for r in rows:
        if r["score"] is not None:
            expected_hist.setdefault(r["key"], [0] * 12)[_bin(r["score"], 10)] += 1  # type: ignore[arg-type]
    assert got.histograms == expected_hist
    assert sum(map(sum, got.histograms.values())) == got.scored
    hours = Counter(
        r["created"].astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)  # type: ignore[union-attr]
        for r in rows
        if not isinstance(r["created"], str)
    )
    assert {h.hour: h.sessions for h in got.over_time} == hours
    assert all(h.hour.utcoffset() is not None for h in got.over_time)
    assert sum(h.sessions for h in got.over_time) == 59  # -infinity is in no hour
    by_key = Counter(r["key"] for r in rows)
    assert {k.learning_key: k.sessions for k in got.keys} == by_key
    with_playbook = [k for k in got.keys if k.student_learning is not None]
    assert len(with_playbook) == 1 and with_playbook[0].teacher_learning == "teacher playbook"


def test_trend_is_the_least_squares_slope_per_day(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 3, seed=1)
        conn.execute(
            "UPDATE sessions SET metadata = jsonb_set(metadata, '{learning_key}', '\"k\"')"
        )
        conn.execute(
            "UPDATE sessions SET "
            "created_at = timestamptz '2026-01-01' + (id - 1) * interval '1 day', "
            "reward_stats = jsonb_build_object('score', 0.5 + 0.1 * (id - 1))"
        )
        got = session_insights(conn)
    (key,) = got.keys
    assert key.learning_key == "k" and key.trend_per_day == pytest.approx(0.1)
    assert [d.mean_reward for d in got.over_time] == pytest.approx([0.5, 0.6, 0.7])


def test_filters_and_statuses_narrow_every_figure(seeded: str) -> None:
    rows = _rows(seeded)
    with psycopg.connect(seeded) as conn:
        got = session_insights(
            conn, filters=SessionFilters.build(min_reward=0.5), review_statuses="approved"
        )
        with pytest.raises(InvalidFilter):
            session_insights(conn, bins=0)
        with pytest.raises(InvalidFilter):
            session_insights(conn, review_statuses="maybe")
    wanted = [r for r in rows if r["review"] == "approved" and (r["score"] or -1) >= 0.5]
    assert got.total == len(wanted) and set(got.review_counts) <= {"approved"}


def test_an_empty_database_has_empty_insights(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        got = session_insights(conn)
    assert (got.total, got.scored, got.mean_reward, got.queue_size) == (0, 0, None, 0)
    assert got.histograms == {} and got.over_time == [] and got.keys == []
