"""``arc-atlas db upgrade`` on a database with nested events: progress on stderr, data on stdout."""

from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb

NESTED = {"payload": {"event_type": "TOOL_START", "event_timestamp": 1.5, "data": {}}}


def _legacy(url: str, events: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE sessions (id SERIAL PRIMARY KEY, task TEXT NOT NULL, "
            "status TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT NOW());"
            "CREATE TABLE trajectory_events (id SERIAL PRIMARY KEY, session_id INTEGER "
            "REFERENCES sessions(id), event JSONB NOT NULL, created_at TIMESTAMPTZ DEFAULT NOW())"
        )
        conn.execute("INSERT INTO sessions (task, status) VALUES ('t', 'ok')")
        conn.execute(
            "INSERT INTO trajectory_events (session_id, event) "
            "SELECT 1, %s FROM generate_series(1, %s)",
            (Jsonb(NESTED), events),
        )


def test_upgrade_reports_normalising_progress(cli, empty_db_url):
    _legacy(empty_db_url, 25)
    result = cli("db", "upgrade", "--batch-size", "10", "--database-url", empty_db_url)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    events = [line for line in lines if line.startswith("normalising events")]
    assert events[0] == "normalising events: 0/25 (0 rewritten)"
    assert events[-1] == "normalising events: 25/25 (25 rewritten)"
    # Then 0005's step, on the one session (whose facts need no change).
    assert lines[-1] == "deriving session facts: 1/1 (0 rewritten)"
    assert "applied 0004 event_envelope" in result.stdout


def test_upgrade_of_an_empty_database_prints_no_progress(cli, empty_db_url):
    result = cli("db", "upgrade", "--database-url", empty_db_url)
    assert result.returncode == 0, result.stderr
    assert "normalising" not in result.stderr


def test_batch_size_must_be_positive(cli, empty_db_url):
    result = cli("db", "upgrade", "--batch-size", "0", "--database-url", empty_db_url)
    assert result.returncode == 2
    assert result.stderr.strip() == "Error: --batch-size must be at least 1."
