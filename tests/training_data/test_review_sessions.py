"""The review library: which sessions a review selects and changes, against a real PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest

from atlas.errors import InvalidFilter
from atlas.training_data.filters import SessionFilters
from atlas.training_data.review import (
    MAX_ROWS,
    check_row_count,
    list_sessions_for_review,
    review_sessions,
)

ANY_REWARD = SessionFilters.build(min_reward=0)


def _status(conn: psycopg.Connection) -> dict[int, str]:
    return dict(conn.execute("SELECT id, review_status FROM sessions").fetchall())


@pytest.fixture
def conn(reviewed_url: str):
    """Autocommit, to nine sessions: three approved, three pending, three quarantined."""
    with psycopg.connect(reviewed_url, autocommit=True) as connection:
        yield connection


def test_by_filter_selects_only_pending_by_default(conn):
    before = _status(conn)
    result = review_sessions(conn, "approved", filters=ANY_REWARD)
    assert {row.session_id for row in result.matched} == {
        i for i, s in before.items() if s == "pending"
    }
    assert result.changed == 3


@pytest.mark.parametrize(
    ("from_statuses", "selected"),
    [
        pytest.param("quarantined", {"quarantined"}, id="quarantined"),
        pytest.param(["Approved", "pending"], {"approved", "pending"}, id="list-any-case"),
        pytest.param("all", {"approved", "pending", "quarantined"}, id="all"),
    ],
)
def test_from_statuses_widen_a_bulk_change(conn, from_statuses, selected):
    before = _status(conn)
    result = review_sessions(
        conn, "quarantined", filters=ANY_REWARD, from_statuses=from_statuses, dry_run=True
    )
    assert {row.session_id for row in result.matched} == {
        i for i, s in before.items() if s in selected
    }


def test_by_id_changes_any_review_status(conn):
    ids = sorted(_status(conn))
    result = review_sessions(conn, "pending", session_ids=ids)
    assert (result.changed, result.missing, result.unmatched) == (9, [], [])
    assert set(_status(conn).values()) == {"pending"}


def test_by_id_reports_missing_and_unmatched_apart(conn):
    quarantined = min(i for i, s in _status(conn).items() if s == "quarantined")
    result = review_sessions(
        conn, "approved", session_ids=[quarantined, 10**6], from_statuses="pending"
    )
    assert (result.changed, result.missing, result.unmatched) == (0, [10**6], [quarantined])


def test_dry_run_changes_nothing(conn):
    before = _status(conn)
    result = review_sessions(conn, "approved", filters=ANY_REWARD, dry_run=True)
    assert (len(result.matched), result.changed) == (3, 0)
    assert _status(conn) == before


def test_unknown_from_status_is_refused(conn):
    with pytest.raises(InvalidFilter, match="from_statuses: unknown review status 'aproved'"):
        review_sessions(conn, "approved", filters=ANY_REWARD, from_statuses="aproved")


def test_unknown_new_status_is_refused(conn):
    with pytest.raises(InvalidFilter, match="new_status must be one of"):
        review_sessions(conn, "aproved", session_ids=[1])


def test_list_takes_filters_and_a_page(conn):
    everything = list_sessions_for_review(conn, "all", limit=100)
    page = list_sessions_for_review(conn, None, limit=3, offset=2, filters=ANY_REWARD)
    assert [r.session_id for r in page] == [r.session_id for r in everything][2:5]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(-1, id="negative"),
        pytest.param(MAX_ROWS + 1, id="above-bigint"),
        pytest.param(True, id="bool"),
        pytest.param(2.0, id="float"),
    ],
)
def test_row_counts_outside_bigint_are_refused(value):
    with pytest.raises(InvalidFilter, match=rf"^limit must be a whole number from 0 to {MAX_ROWS}"):
        check_row_count(value, "limit")


def test_list_refuses_a_bad_offset_before_asking_the_server(conn):
    with pytest.raises(InvalidFilter, match=r"^offset must be"):
        list_sessions_for_review(conn, None, offset=2**63)
