"""Reviewing sessions: the review queue, and approving or quarantining by id or by filter.

Every change goes through :func:`atlas.storage.writes.set_review_status`, which
records who changed what and when in ``metadata.review_history``, so a dataset
can be traced back to its approvals.

A bulk change by filter touches only ``pending`` sessions unless the caller
names the review statuses to change (``from_statuses``): an approval by reward
must never undo a quarantine. Sessions named by id change whatever their
review status, since naming them is the explicit request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from atlas.config.models import REVIEW_STATUSES, parse_review_statuses
from atlas.errors import InvalidFilter, ReadOnlyDatabase, SelectionChanged
from atlas.storage.schema import reward_number
from atlas.storage.standby import is_standby
from atlas.storage.urls import connection_url
from atlas.storage.writer import run_op
from atlas.storage.writes import set_review_status
from atlas.training_data.filters import SessionFilters, where_clause
from atlas.training_data.review_gate import ReviewGate

__all__ = [
    "BULK_FROM_STATUSES",
    "MAX_ROWS",
    "ReviewResult",
    "ReviewRow",
    "check_row_count",
    "list_sessions_for_review",
    "review_sessions",
]

# What a bulk change by filter may change when from_statuses is not given.
BULK_FROM_STATUSES: tuple[str, ...] = ("pending",)
# LIMIT and OFFSET are bigint in PostgreSQL: a larger value is a server error
# (NumericValueOutOfRange), a negative one InvalidRowCountInLimitClause.
MAX_ROWS = 2**63 - 1


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
    """Which sessions a review changed (or would change, in a dry run).

    ``missing`` lists ids given that the database does not hold;
    ``unmatched`` ids it holds that the filters or ``from_statuses`` left out.
    """

    matched: list[ReviewRow]
    changed: int
    missing: list[int]
    unmatched: list[int]


_ROW_SQL = (
    "SELECT s.id AS session_id, s.created_at, s.status, s.review_status, "
    f"{reward_number('s')} AS reward, {reward_number('s', 'uncertainty')} AS uncertainty, "
    "COALESCE(jsonb_typeof(s.metadata) = 'object' AND s.metadata -> 'drift_alert' = 'true', "
    "false) AS drift_alert, left(s.task, 200) AS task, s.review_notes AS notes "
    "FROM sessions s {where} ORDER BY s.created_at DESC, s.id DESC"
)


def check_row_count(value: Any, name: str) -> int:
    """``value`` as a LIMIT/OFFSET PostgreSQL accepts, or :class:`InvalidFilter` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ROWS:
        raise InvalidFilter(f"{name} must be a whole number from 0 to {MAX_ROWS}, not {value!r}.")
    return value


def _rows(
    conn: psycopg.Connection[Any],
    where: sql.Composable,
    params: list[Any],
    *,
    limit: int | None = None,
    offset: int = 0,
    lock: bool = False,
) -> list[ReviewRow]:
    query = sql.SQL(_ROW_SQL).format(where=where)
    if limit is not None:
        query = sql.SQL("{} LIMIT %s OFFSET %s").format(query)
        params = [*params, limit, offset]
    if lock:
        # Under READ COMMITTED, FOR UPDATE waits for concurrent changes to a
        # row and re-checks the WHERE clause on its new version: a session
        # quarantined meanwhile no longer matches a pending-only selection.
        query = sql.SQL("{} FOR UPDATE OF s").format(query)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return [ReviewRow(**row) for row in cur.fetchall()]


def _gate(statuses: str | Sequence[str] | None, name: str) -> ReviewGate | None:
    """The review statuses a selection keeps (None: every status), parsed once."""
    if statuses is None:
        return None
    return ReviewGate(parse_review_statuses(statuses, name), name)


def list_sessions_for_review(
    conn: psycopg.Connection[Any],
    review_statuses: str | Sequence[str] | None,
    limit: int = 50,
    *,
    offset: int = 0,
    filters: SessionFilters | None = None,
) -> list[ReviewRow]:
    """Newest sessions in the given review statuses that match ``filters``, one page.

    ``review_statuses`` is parsed like every review status (any case,
    comma-separated, ``all`` or ``*``; None = any). Raises
    :class:`InvalidFilter` for an unknown status or a ``limit``/``offset``
    outside 0..2**63-1.
    """
    limit = check_row_count(limit, "limit")
    offset = check_row_count(offset, "offset")
    where, params = where_clause(
        filters or SessionFilters(), _gate(review_statuses, "review_statuses")
    )
    return _rows(conn, where, params, limit=limit, offset=offset)


def _existing(conn: psycopg.Connection[Any], ids: Sequence[int]) -> set[int]:
    where, params = where_clause(SessionFilters(session_ids=tuple(ids)), None)
    query = sql.SQL("SELECT s.id FROM sessions s {}").format(where)
    return {row[0] for row in conn.execute(query, params).fetchall()}


def review_sessions(
    conn: psycopg.Connection[Any],
    new_status: str,
    *,
    session_ids: Sequence[int] | None = None,
    filters: SessionFilters | None = None,
    from_statuses: str | Sequence[str] | None = None,
    note: str | None = None,
    reviewer: str | None = None,
    dry_run: bool = False,
    expected: int | None = None,
) -> ReviewResult:
    """Set ``new_status`` on the given sessions, or on the sessions matching ``filters``.

    ``from_statuses`` limits the change to sessions currently in those review
    statuses (parsed like every review status; ``all`` = any). Left out, a
    change by filter touches only :data:`BULK_FROM_STATUSES` (pending), and a
    change by id touches the named sessions whatever their status. A dry run
    returns the same selection and changes nothing. The selection is locked
    while it is changed, so a session reviewed meanwhile is not flipped.

    ``expected`` is the number of sessions the caller confirmed (a preview's
    count): when the locked selection holds another number, nothing changes
    and :class:`~atlas.errors.SelectionChanged` carries the new count.

    Raises :class:`InvalidFilter` for an unknown status, and for a change
    with neither ids nor any filter (nothing is reviewed wholesale by accident);
    :class:`~atlas.errors.ReadOnlyDatabase` when ``conn`` is on a hot standby.
    """
    if expected is not None:
        expected = check_row_count(expected, "expected")
    if new_status not in REVIEW_STATUSES:
        raise InvalidFilter(f"new_status must be one of {', '.join(REVIEW_STATUSES)}.")
    selection = filters or SessionFilters()
    if session_ids:
        # Validated as every id filter is (real ints, in the column's range).
        checked = SessionFilters.build(session_ids=session_ids).session_ids
        selection = replace(selection, session_ids=checked)
    elif selection == SessionFilters() and from_statuses is None:
        raise InvalidFilter(
            "Give session ids or at least one filter (--min-reward, --learning-key, ...); "
            "arc-atlas will not change every session's review status at once."
        )
    if from_statuses is None and not session_ids:
        from_statuses = BULK_FROM_STATUSES
    where, params = where_clause(selection, _gate(from_statuses, "from_statuses"))
    if not dry_run and is_standby(conn):
        # Else the first locking read fails with a bare "read-only transaction".
        raise ReadOnlyDatabase(
            f"Database at {connection_url(conn.info)} is a hot standby, which only reads: "
            "review sessions on its primary (pass the primary's URL); a dry run works here.",
            standby=True,
        )
    with conn.transaction():
        matched = _rows(conn, where, params, lock=not dry_run)
        if expected is not None and len(matched) != expected:
            raise SelectionChanged(
                f"{len(matched)} sessions match now, not the {expected} confirmed: sessions "
                "were written or reviewed meanwhile. Nothing was changed; confirm the new count.",
                matched=len(matched),
            )
        found = {row.session_id for row in matched}
        existing = _existing(conn, session_ids) - found if session_ids else set()
        changed = 0
        if matched and not dry_run:
            op = set_review_status(sorted(found), new_status, notes=note, reviewer=reviewer)
            changed = int(run_op(conn, op))
    missing = [i for i in session_ids or () if i not in found and i not in existing]
    unmatched = [i for i in session_ids or () if i in existing]
    return ReviewResult(matched, changed, missing, unmatched)
