"""Reviewing sessions: the review queue, and approving or quarantining by id or by filter.

Every change goes through :func:`atlas.storage.writes.set_review_status`, which
records who changed what and when in ``metadata.review_history``, so a dataset
can be traced back to its approvals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from atlas.config.models import REVIEW_STATUSES
from atlas.errors import InvalidFilter
from atlas.storage.writer import run_op
from atlas.storage.writes import set_review_status
from atlas.training_data.filters import SessionFilters, where_clause
from atlas.training_data.review_gate import ReviewGate

__all__ = ["ReviewResult", "ReviewRow", "list_sessions_for_review", "review_sessions"]


@dataclass(frozen=True)
class ReviewRow:
    """One line of the review table."""

    session_id: int
    created_at: datetime | str  # text when outside Python's range ("infinity", BC)
    status: str
    review_status: str
    reward: float | None
    uncertainty: float | None
    drift_alert: bool
    task: str
    notes: str | None


@dataclass(frozen=True)
class ReviewResult:
    """Which sessions a review changed (or would change, in a dry run)."""

    matched: list[ReviewRow]
    changed: int
    missing: list[int]


_ROW_SQL = (
    "SELECT s.id AS session_id, s.created_at, s.status, s.review_status, "
    "CASE WHEN jsonb_typeof(s.reward_stats -> 'score') = 'number' "
    "THEN (s.reward_stats ->> 'score')::float END AS reward, "
    "CASE WHEN jsonb_typeof(s.reward_stats -> 'uncertainty') = 'number' "
    "THEN (s.reward_stats ->> 'uncertainty')::float END AS uncertainty, "
    "COALESCE(jsonb_typeof(s.metadata) = 'object' AND s.metadata -> 'drift_alert' = 'true', "
    "false) AS drift_alert, left(s.task, 200) AS task, s.review_notes AS notes "
    "FROM sessions s {where} ORDER BY s.created_at DESC, s.id DESC"
)


def _rows(
    conn: psycopg.Connection[Any], where: sql.Composable, params: list[Any], limit: int | None
) -> list[ReviewRow]:
    query = sql.SQL(_ROW_SQL).format(where=where)
    if limit is not None:
        query = sql.SQL("{} LIMIT %s").format(query)
        params = [*params, limit]
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return [ReviewRow(**row) for row in cur.fetchall()]


def list_sessions_for_review(
    conn: psycopg.Connection[Any], review_statuses: Sequence[str] | None, limit: int = 50
) -> list[ReviewRow]:
    """Newest sessions with the given review statuses (None = any)."""
    gate = ReviewGate(tuple(review_statuses), "review") if review_statuses else None
    where, params = where_clause(SessionFilters(), gate)
    return _rows(conn, where, params, limit)


def review_sessions(
    conn: psycopg.Connection[Any],
    new_status: str,
    *,
    session_ids: Sequence[int] | None = None,
    filters: SessionFilters | None = None,
    from_statuses: Sequence[str] | None = None,
    note: str | None = None,
    reviewer: str | None = None,
    dry_run: bool = False,
) -> ReviewResult:
    """Set ``new_status`` on the given sessions, or on every session matching ``filters``.

    ``from_statuses`` limits a bulk change to sessions currently in those
    review statuses. Refuses (:class:`InvalidFilter`) a bulk change with no
    filter at all, so nothing is approved wholesale by accident.
    """
    if new_status not in REVIEW_STATUSES:
        raise InvalidFilter(f"Review status must be one of {', '.join(REVIEW_STATUSES)}.")
    selection = filters or SessionFilters()
    if session_ids:
        selection = SessionFilters(**{**selection.__dict__, "session_ids": tuple(session_ids)})
    elif selection == SessionFilters() and not from_statuses:
        raise InvalidFilter(
            "Give session ids or at least one filter (--min-reward, --learning-key, ...); "
            "arc-atlas will not change every session's review status at once."
        )
    gate = ReviewGate(tuple(from_statuses), "review") if from_statuses else None
    where, params = where_clause(selection, gate)
    matched = _rows(conn, where, params, None)
    found = {row.session_id for row in matched}
    missing = [i for i in session_ids or () if i not in found]
    if dry_run or not matched:
        return ReviewResult(matched, 0, missing)
    changed = run_op(
        conn,
        set_review_status(sorted(found), new_status, notes=note, reviewer=reviewer),
    )
    return ReviewResult(matched, int(changed), missing)
