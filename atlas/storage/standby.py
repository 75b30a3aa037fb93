"""Hot standbys: telling one from a primary, how far it has replayed, and its own errors.

A hot standby (a physical replica in ``hot_standby`` mode) serves reads of the
primary's data as replayed so far, and refuses every write. arc-atlas reads
from one as from a primary; what differs is decided from
``pg_is_in_recovery()`` here, never from a setting the user has to get right
(see ``docs/replicas.md``). Two errors are a standby's own:

- a write (a review, a migration, a writer) fails with SQLSTATE 25006
  ``read_only_sql_transaction``: :func:`read_only_error` names the standby
  and says to write to the primary;
- replay may cancel a read that holds back rows or locks it must change
  (``canceling statement due to conflict with recovery``, SQLSTATE 40001,
  40P01 or 57P04): :func:`recovery_conflict_error` names the settings that
  prevent it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from atlas.errors import ReadOnlyDatabase, RecoveryConflict

__all__ = [
    "CONFLICT_FIX",
    "ReplayStatus",
    "is_recovery_conflict",
    "is_standby",
    "read_only_error",
    "recovery_conflict_error",
    "replay_status",
    "reported_standby",
]

# The standby settings that keep replay from cancelling long reads. A conflict over row
# versions (vacuum on the primary removed rows the read still needs) is what
# hot_standby_feedback prevents; the other kinds (a lock, a buffer pin, a dropped
# tablespace or database) only a longer max_standby_streaming_delay lets a read outlast.
CONFLICT_FIX = (
    "on the standby set hot_standby_feedback = on (the primary then keeps the rows a "
    "standby read needs) and raise max_standby_streaming_delay (e.g. 15min, or -1 to "
    "let replay wait), or read from the primary; then run it again (see docs/replicas.md)"
)
_DELAY_FIX = (
    "on the standby raise max_standby_streaming_delay (e.g. 15min, or -1 to let replay "
    "wait; hot_standby_feedback does not prevent this kind), or read from the primary; "
    "then run it again (see docs/replicas.md)"
)
# SQLSTATEs a recovery conflict arrives with: most kinds (snapshot, lock, tablespace,
# buffer pin) are serialization_failure; a buffer deadlock is deadlock_detected, and a
# database dropped on the primary is database_dropped.
_CONFLICT_ERRORS = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected,
                    pg_errors.DatabaseDropped)  # fmt: skip


def is_standby(conn: psycopg.Connection[Any]) -> bool:
    """Whether ``conn``'s server is in recovery (a hot standby): ``pg_is_in_recovery()``.

    One round trip; safe in any transaction (it takes no snapshot of rows).
    """
    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    return bool(row and row[0])


def reported_standby(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> bool | None:
    """Whether the server said it is a hot standby (``in_hot_standby``), without a query.

    PostgreSQL 14 and later report ``in_hot_standby`` when the connection
    starts and again on promotion; None for older servers or a closed
    connection. For error messages, where no query can be sent; decisions
    use :func:`is_standby`.
    """
    try:
        value = conn.info.parameter_status("in_hot_standby")
    except psycopg.Error:
        return None
    return None if value is None else value == "on"


@dataclass(frozen=True)
class ReplayStatus:
    """How far a standby has come: WAL received and replayed, and the last commit replayed.

    ``lag_bytes`` is received but not yet replayed; ``replayed_at`` the commit
    time (on the primary) of the last transaction replayed, None before the
    first. How far the standby trails the primary itself shows on the
    primary (``pg_stat_replication``) or as the age of ``replayed_at``
    while the primary is busy.
    """

    received_lsn: str | None
    replayed_lsn: str | None
    lag_bytes: int | None
    replayed_at: datetime | None


def replay_status(conn: psycopg.Connection[Any]) -> ReplayStatus | None:
    """The standby's :class:`ReplayStatus`, or None when ``conn`` is on a primary."""
    row = conn.execute(
        "SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn()::text, "
        "pg_last_wal_replay_lsn()::text, "
        "pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint, "
        "pg_last_xact_replay_timestamp()"
    ).fetchone()
    if row is None or not row[0]:
        return None
    lag = None if row[3] is None else max(int(row[3]), 0)
    return ReplayStatus(row[1], row[2], lag, row[4])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_recovery_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is a standby cancelling a query (or the session) to go on replaying."""
    return isinstance(exc, _CONFLICT_ERRORS) and "conflict with recovery" in str(exc)


def recovery_conflict_error(exc: psycopg.Error, target: str) -> RecoveryConflict:
    """The :class:`RecoveryConflict` for ``exc``: what happened, why, and the settings to change."""
    detail = exc.diag.message_detail
    why = detail or _first_line(exc)
    # PostgreSQL's detail names the kind; without one, give every setting.
    fix = _DELAY_FIX if detail and "row versions" not in detail else CONFLICT_FIX
    return RecoveryConflict(
        f"The hot standby at {target} cancelled this read to replay the primary's changes "
        f"({why.rstrip('.')}): {fix}."
    )


def read_only_error(exc: psycopg.Error, target: str, standby: bool | None) -> ReadOnlyDatabase:
    """The :class:`ReadOnlyDatabase` for a refused write; ``standby`` as far as it is known."""
    said = _first_line(exc)
    if standby is None and "during recovery" in said:
        standby = True
    if standby:
        message = (
            f"Database at {target} is a hot standby, which only reads ({said}): reviews, "
            "migrations and writers go to its primary; pass the primary's URL for this."
        )
    elif standby is False:
        message = (
            f"Database at {target} refused a write ({said}): the session is read-only "
            "(default_transaction_read_only is on for this role or database); connect as a "
            "role that may write."
        )
    else:
        message = (
            f"Database at {target} refused a write ({said}): it is a hot standby or the "
            "session is read-only; pass the primary's URL, with a role that may write."
        )
    return ReadOnlyDatabase(message, standby=standby)
