"""Browsing sessions: one keyset page of the session list, and whether this role may review.

:func:`browse_sessions` is what a session list (``arc-atlas ui``) shows: the
newest sessions matching the filters, one page at a time. Pages are keyset
paged on ``(created_at, id)`` (``sessions_created_at_idx`` and the status
indexes serve them), so a page costs the same on the first page and the
thousandth, and sessions written meanwhile never shift a page. The step
count is computed for the page's rows only.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from atlas.config.models import parse_review_statuses
from atlas.errors import InvalidFilter
from atlas.storage.schema import reward_number
from atlas.training_data.filters import SESSION_ID_MAX, SessionFilters, where_clause
from atlas.training_data.review_gate import ReviewGate

__all__ = [
    "PageCursor",
    "SessionPage",
    "SessionRow",
    "browse_sessions",
    "review_permission",
]

# The most rows one page may hold: a list page, not an export.
MAX_PAGE = 1000
# The task as a list shows it: enough to recognise, bounded per row.
_TASK_CHARS = 300


@dataclass(frozen=True)
class PageCursor:
    """A position in the list: the ``created_at`` (as PostgreSQL prints it) and id of a row.

    :meth:`encode` makes it one URL-safe word; :meth:`decode` reads it back
    and raises :class:`~atlas.errors.InvalidFilter` for anything else.
    """

    created_at: str
    session_id: int

    def encode(self) -> str:
        raw = f"{self.session_id}|{self.created_at}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, name: str = "cursor") -> PageCursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            sid, _, at = raw.partition("|")
            session_id = int(sid)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidFilter(
                f"{name} {text[:40]!r} is not a page position: follow the list's own "
                "Newer/Older links.",
                parameter=name,
            ) from None
        if not at or "\x00" in at or not 1 <= session_id <= SESSION_ID_MAX:
            raise InvalidFilter(f"{name} {text[:40]!r} is not a page position.", parameter=name)
        return cls(at, session_id)


@dataclass(frozen=True)
class SessionRow:
    """One line of the session list."""

    session_id: int
    created_at: datetime | str  # text when outside Python's range ("infinity", BC)
    status: str
    review_status: str
    reward: float | None
    uncertainty: float | None
    drift_alert: bool
    task: str
    learning_key: str | None
    step_count: int
    cursor: PageCursor


@dataclass(frozen=True)
class SessionPage:
    """One page of :func:`browse_sessions`, with the cursors of its neighbours.

    ``older`` is passed back as ``before=`` and ``newer`` as ``after=``; each
    is None when there is no such page. ``total`` is the number of sessions
    matching the filters, when it was asked for.
    """

    rows: list[SessionRow]
    older: PageCursor | None
    newer: PageCursor | None
    total: int | None = None


_SELECT = (
    "SELECT s.id AS session_id, s.created_at, s.created_at::text AS cursor_at, s.status, "
    f"s.review_status, {reward_number('s')} AS reward, "
    f"{reward_number('s', 'uncertainty')} AS uncertainty, "
    f"s.drift_alert, left(s.task, {_TASK_CHARS}) AS task, s.learning_key "
    "FROM sessions s {where} ORDER BY s.created_at {order}, s.id {order} LIMIT %s"
)
# The step count of the page's rows only, by the step_results primary key.
_STEPS = (
    "SELECT p.*, (SELECT count(*) FROM step_results r WHERE r.session_id = p.session_id) "
    "AS step_count FROM ({page}) p"
)


def _with_cursor(
    where: sql.Composable, params: list[Any], cursor: PageCursor, op: str
) -> tuple[sql.Composable, list[Any]]:
    condition = sql.SQL("(s.created_at, s.id) {} (%s::timestamptz, %s)").format(sql.SQL(op))
    # where_clause binds one parameter per condition: none means no WHERE yet.
    joined = sql.SQL(" AND ") if params else sql.SQL("WHERE ")
    return (
        sql.SQL("{}{}{}").format(where, joined, condition),
        [*params, cursor.created_at, cursor.session_id],
    )


def browse_sessions(
    conn: psycopg.Connection[Any],
    *,
    filters: SessionFilters | None = None,
    review_statuses: str | Sequence[str] | None = None,
    before: PageCursor | None = None,
    after: PageCursor | None = None,
    limit: int = 50,
    with_total: bool = False,
) -> SessionPage:
    """One page of the newest sessions matching ``filters``, in any review status unless named.

    ``before`` gives the page of sessions older than that position (the
    ``older`` cursor of the previous page); ``after`` the page newer than it.
    ``review_statuses`` is parsed like every review status (``all``, any
    case, comma-separated). ``with_total`` also counts every match. Raises
    :class:`~atlas.errors.InvalidFilter` for a bad status, cursor or limit.
    """
    if before is not None and after is not None:
        raise InvalidFilter("Give before or after, not both.", parameter="before")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidFilter(
            f"limit must be from 1 to {MAX_PAGE}, not {limit!r}.", parameter="limit"
        )
    gate = None
    if review_statuses is not None:
        gate = ReviewGate(parse_review_statuses(review_statuses, "review_statuses"), "review")
    where, params = where_clause(filters or SessionFilters(), gate)
    count_where, count_params = where, list(params)
    cursor = before or after
    if cursor is not None:
        where, params = _with_cursor(where, params, cursor, "<" if before else ">")
    order = "ASC" if after is not None else "DESC"
    page = sql.SQL(_SELECT).format(where=where, order=sql.SQL(order))
    query = sql.SQL(_STEPS).format(page=page)
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query, [*params, limit + 1])
            found = cur.fetchall()
            total = None
            if with_total:
                count = sql.SQL("SELECT count(*) AS n FROM sessions s {}").format(count_where)
                cur.execute(count, count_params)
                total = int(cur.fetchone()["n"])  # type: ignore[index]
    except (psycopg.errors.InvalidDatetimeFormat, psycopg.errors.DatetimeFieldOverflow):
        raise InvalidFilter(
            "The page position is not a time PostgreSQL reads.", parameter="cursor"
        ) from None
    more = len(found) > limit
    found = found[:limit]
    if after is not None:
        found.reverse()
    rows = [_row(item) for item in found]
    older: PageCursor | None
    newer: PageCursor | None
    if after is not None:
        newer = rows[0].cursor if more and rows else None
        older = rows[-1].cursor if rows else after
    else:
        older = rows[-1].cursor if more and rows else None
        newer = rows[0].cursor if before is not None and rows else None
    return SessionPage(rows, older, newer, total)


def _row(item: dict[str, Any]) -> SessionRow:
    cursor = PageCursor(item.pop("cursor_at"), item["session_id"])
    item["step_count"] = int(item["step_count"])
    return SessionRow(**item, cursor=cursor)


def review_permission(conn: psycopg.Connection[Any]) -> str | None:
    """None when this connection may change review statuses, else the reason, in one line.

    A review updates ``sessions``: the role needs ``UPDATE`` on it, and the
    server must accept writes (not a hot standby, not a read-only default).
    """
    row = conn.execute(
        "SELECT current_user, has_table_privilege('sessions', 'UPDATE'), pg_is_in_recovery(), "
        "current_setting('default_transaction_read_only') = 'on'"
    ).fetchone()
    assert row is not None
    role, may_update, standby, read_only = row
    if standby:
        return "the database is a read-only standby; review on the primary."
    if read_only:
        return "the connection is read-only (default_transaction_read_only is on)."
    if not may_update:
        return (
            f"role {role} may not UPDATE table sessions; connect as a role that may, "
            f"or GRANT UPDATE ON sessions TO {role}."
        )
    return None
