"""``arc-atlas review`` through the real entry point, against a real PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest

from atlas.storage.synthetic import seed_sessions


@pytest.fixture
def queue(db_url: str) -> str:
    """Twelve synthetic sessions, all pending review."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 12, seed=3)
        conn.execute("UPDATE sessions SET review_status = 'pending', review_notes = NULL")
    return db_url


def _review(url: str) -> dict[int, tuple[str, str | None, list]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id, review_status, review_notes, metadata -> 'review_history' FROM sessions"
        ).fetchall()
    return {row[0]: (row[1], row[2], row[3] or []) for row in rows}


def _ids(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM sessions ORDER BY id").fetchall()]


def test_sessions_table_lists_the_pending_queue(cli, queue):
    result = cli("review", "sessions", "--database-url", queue, "--limit", "5")
    assert result.returncode == 0, result.stderr
    assert "5 session(s), review status: pending" in result.stdout
    for header in ("id", "created", "status", "reward", "drift", "task", "notes"):
        assert header in result.stdout
    assert "±" in result.stdout


def test_approve_by_id_records_who_when_and_note(cli, queue):
    first, second = _ids(queue)[:2]
    result = cli("review", "approve", str(first), str(second), "--note", "checked",
                 "--reviewer", "ana", "--database-url", queue)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Set 2 session(s) to approved." in result.stderr
    state = _review(queue)
    for session_id in (first, second):
        status, notes, history = state[session_id]
        assert (status, notes) == ("approved", "checked")
        assert history[-1]["reviewer"] == "ana" and history[-1]["status"] == "approved"
        assert history[-1]["at"]


def test_quarantine_by_id(cli, queue):
    target = _ids(queue)[3]
    assert cli("review", "quarantine", str(target), "--database-url", queue).returncode == 0
    assert _review(queue)[target][0] == "quarantined"


def test_unknown_id_exits_1_and_changes_the_rest(cli, queue):
    known = _ids(queue)[0]
    result = cli("review", "approve", str(known), "999999", "--database-url", queue)
    assert result.returncode == 1
    assert "Error: no session with id 999999 in the database." in result.stderr
    assert _review(queue)[known][0] == "approved"


def test_bulk_dry_run_shows_and_changes_nothing(cli, queue):
    result = cli("review", "approve", "--min-reward", "0", "--dry-run", "--database-url", queue)
    assert result.returncode == 0
    assert "(dry run)" in result.stdout
    assert {state[0] for state in _review(queue).values()} == {"pending"}


def test_bulk_by_filter_changes_exactly_the_matches(cli, queue):
    with psycopg.connect(queue) as conn:
        expected = {
            r[0]
            for r in conn.execute(
                "SELECT id FROM sessions WHERE (reward_stats->>'score')::float >= 0.8 "
                "AND metadata->>'learning_key' = 'security-review'"
            ).fetchall()
        }
    result = cli("review", "approve", "--min-reward", "0.8", "--learning-key", "security-review",
                 "--database-url", queue)  # fmt: skip
    assert result.returncode == 0, result.stderr
    approved = {sid for sid, state in _review(queue).items() if state[0] == "approved"}
    assert approved == expected


def test_bulk_without_any_filter_is_refused(cli, queue):
    result = cli("review", "approve", "--database-url", queue)
    assert result.returncode == 2
    assert result.stderr.startswith("Error: Give session ids or at least one filter")
    assert {state[0] for state in _review(queue).values()} == {"pending"}


def test_approved_sessions_become_exportable(cli, queue, tmp_path):
    target = _ids(queue)[0]
    out = tmp_path / "x.jsonl"
    assert cli("--database-url", queue, "-o", str(out)).returncode == 1
    cli("review", "approve", str(target), "--database-url", queue)
    assert cli("--database-url", queue, "-o", str(out)).returncode == 0
    assert len(out.read_text().splitlines()) == 1
