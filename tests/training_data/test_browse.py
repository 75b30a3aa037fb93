"""browse_sessions (keyset pages of the session list), task_contains, review_permission,
and review_sessions(expected=...)."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from atlas.errors import InvalidFilter, SelectionChanged
from atlas.storage import connect, resolve_settings, seed_sessions
from atlas.training_data import (
    PageCursor,
    SessionFilters,
    browse_sessions,
    count_training_sessions,
    review_permission,
    review_sessions,
)


@pytest.fixture
def seeded(db_url: str) -> str:
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 23, seed=11)
        # Two sessions share a created_at: the id breaks the tie, and no page loses either.
        conn.execute(
            "UPDATE sessions SET created_at = (SELECT created_at FROM sessions WHERE id = 10) "
            "WHERE id = 11"
        )
        conn.execute(
            "UPDATE sessions SET task = 'Audit 100% of the_Login flow', "
            "review_status = 'pending' WHERE id IN (4, 9)"
        )
    return db_url


def _newest_first(conn: psycopg.Connection[object]) -> list[int]:
    rows = conn.execute("SELECT id FROM sessions ORDER BY created_at DESC, id DESC").fetchall()
    return [r[0] for r in rows]


def test_pages_walk_every_session_once_both_ways(seeded: str) -> None:
    with psycopg.connect(seeded, autocommit=True) as conn:
        expected = _newest_first(conn)
        seen: list[int] = []
        page = browse_sessions(conn, limit=5, with_total=True)
        assert page.total == 23 and page.newer is None
        pages = [page]
        while True:
            seen += [r.session_id for r in page.rows]
            if page.older is None:
                break
            page = browse_sessions(conn, before=page.older, limit=5)
            pages.append(page)
        assert seen == expected
        assert len(pages) == 5
        # And back again with the newer cursors, page by page.
        back = pages[-1]
        for previous in reversed(pages[:-1]):
            assert back.newer is not None
            back = browse_sessions(conn, after=back.newer, limit=5)
            assert [r.session_id for r in back.rows] == [r.session_id for r in previous.rows]
        assert back.newer is None


def test_rows_carry_what_the_list_shows(seeded: str) -> None:
    with psycopg.connect(seeded, autocommit=True) as conn:
        steps = dict(
            conn.execute("SELECT session_id, count(*) FROM step_results GROUP BY 1").fetchall()
        )
        keys = dict(conn.execute("SELECT id, metadata ->> 'learning_key' FROM sessions").fetchall())
        page = browse_sessions(conn, limit=100)
    assert len(page.rows) == 23
    for row in page.rows:
        assert row.step_count == steps.get(row.session_id, 0)
        assert row.learning_key == keys[row.session_id]
        assert PageCursor.decode(row.cursor.encode()) == row.cursor


def test_filters_and_review_statuses_are_applied_in_sql(seeded: str) -> None:
    with psycopg.connect(seeded, autocommit=True) as conn:
        search = SessionFilters.build(task_contains="100% OF THE_login")
        found = browse_sessions(conn, filters=search, with_total=True)
        assert sorted(r.session_id for r in found.rows) == [4, 9] and found.total == 2
        # % and _ are plain characters, not LIKE wildcards.
        none = browse_sessions(conn, filters=SessionFilters.build(task_contains="100_ of"))
        assert none.rows == []
        pending = browse_sessions(conn, review_statuses="PENDING")
        assert {r.review_status for r in pending.rows} == {"pending"}
    assert (
        count_training_sessions(
            seeded, task_contains="login flow", include_all_review_statuses=True
        )
        == 2
    )


def test_bad_cursor_limit_and_both_directions_are_refused(seeded: str) -> None:
    with psycopg.connect(seeded, autocommit=True) as conn:
        for text in ("", "not-base64!!", PageCursor("x", 1).encode()[:-2] + "==", "AAAA"):
            with pytest.raises(InvalidFilter):
                PageCursor.decode(text)
        with pytest.raises(InvalidFilter, match="not a time"):
            browse_sessions(conn, before=PageCursor("yesterday-ish", 3))
        for limit in (0, 1001, True):
            with pytest.raises(InvalidFilter) as exc:
                browse_sessions(conn, limit=limit)  # type: ignore[arg-type]
            assert exc.value.parameter == "limit"
        cursor = PageCursor("2026-01-01 00:00:00+00", 1)
        with pytest.raises(InvalidFilter):
            browse_sessions(conn, before=cursor, after=cursor)
        with pytest.raises(InvalidFilter):
            SessionFilters.build(task_contains=3)  # type: ignore[arg-type]


def test_infinite_created_at_pages_through(seeded: str) -> None:
    # arc-atlas's own connections read an out-of-range timestamp as text.
    with connect(resolve_settings(seeded)) as conn:
        conn.execute("UPDATE sessions SET created_at = 'infinity' WHERE id = 1")
        first = browse_sessions(conn, limit=1)
        assert first.rows[0].session_id == 1 and first.rows[0].created_at == "infinity"
        assert first.older is not None
        second = browse_sessions(conn, before=first.older, limit=1)
        assert second.rows[0].session_id != 1


def test_review_permission_names_the_grant(seeded: str, url_for: object) -> None:
    with psycopg.connect(seeded, autocommit=True) as conn:
        assert review_permission(conn) is None
        role = "atlas_ui_reader"
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
        try:
            conn.execute(sql.SQL("GRANT SELECT ON sessions TO {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            reason = review_permission(conn)
            assert reason is not None and f"GRANT UPDATE ON sessions TO {role}" in reason
            conn.execute("RESET ROLE")
            conn.execute("SET default_transaction_read_only = on")
            assert "read-only" in (review_permission(conn) or "")
        finally:
            conn.execute("RESET ALL")
            conn.execute("RESET ROLE")
            conn.execute(sql.SQL("REVOKE ALL ON sessions FROM {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_bulk_review_with_a_stale_count_changes_nothing(seeded: str) -> None:
    search = SessionFilters.build(task_contains="login flow")
    with psycopg.connect(seeded, autocommit=True) as conn:
        with pytest.raises(SelectionChanged) as exc:
            review_sessions(conn, "approved", filters=search, expected=1, reviewer="ui")
        assert exc.value.matched == 2
        assert review_sessions(conn, "approved", filters=search, dry_run=True).changed == 0
        status = conn.execute("SELECT review_status FROM sessions WHERE id IN (4, 9)").fetchall()
        assert {s for (s,) in status} == {"pending"}
        done = review_sessions(conn, "approved", filters=search, expected=2, reviewer="ui")
        assert done.changed == 2
