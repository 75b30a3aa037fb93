"""One database snapshot for several readers: the pages of an export, the shards, a cluster's reads.

:func:`exported_snapshot` opens a read-only REPEATABLE READ transaction,
exports its snapshot (``pg_export_snapshot()``) and keeps the transaction
open while the caller uses the id; every reader that passes the id
(``export_jsonl(..., snapshot=id)``, ``arc-atlas export --snapshot ID``)
then sees exactly the same sessions, whatever is written meanwhile.

Readers that a coordinator starts itself (the exporter's page readers, a
cluster's read tasks) use the pair :func:`share_snapshot` /
:func:`join_snapshot`, the one place that decides how a reader shares the
coordinator's view, on a primary and on a hot standby alike::

    with connect(url) as coordinator, coordinator.transaction():
        coordinator.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        shared = share_snapshot(coordinator)      # picklable: send it to the readers
        ids = [...]                               # the sessions to read, listed here
        ...
    # in each reader, on a connection of its own (autocommit, idle):
    with join_snapshot(conn, shared) as exact:
        read the coordinator's ids (exact or not: the same code)

What holds (measured on PostgreSQL 15, see ``docs/replicas.md``): a hot
standby exports and imports snapshots like a primary, but a snapshot lives
on the one server that exported it. A reader that reaches that server
imports it (``exact`` is True: it sees what the coordinator sees). A reader
that reaches another server of the same database (one standby of several
behind a load balancer, or the primary) cannot; it waits until that server
has replayed at least as far as the coordinator had, then reads in its own,
newer snapshot (``exact`` is False). Readers therefore read the
coordinator's ids narrowed by the same filters and review gate
(:meth:`SessionFilters.only <atlas.training_data.filters.SessionFilters.only>`):
in the coordinator's snapshot that changes nothing; in a newer one it gives
the sessions the coordinator chose that still qualify, each one whole, as of
a moment at or after the coordinator's. A session quarantined (or deleted)
meanwhile is left out, a session written meanwhile is not in the list.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from atlas.errors import DatabaseUnavailable, InvalidFilter
from atlas.training_data.targets import ConfigArg, SyncTarget, connection, reader_config

__all__ = [
    "SharedSnapshot",
    "check_snapshot_id",
    "exported_snapshot",
    "import_snapshot",
    "join_snapshot",
    "share_snapshot",
]

logger = logging.getLogger(__name__)

# How long a reader on another server waits for it to replay as far as the coordinator's.
DEFAULT_WAIT_SECONDS = 60.0
# Which server this is (a snapshot lives on one), which database cluster (primary and
# standbys share the system identifier), and whether it has seen a WAL position:
# on a standby once replayed, on a primary always (a standby is never ahead of it).
_WHERE_SQL = (
    "SELECT (SELECT system_identifier FROM pg_control_system())::text, "
    "pg_postmaster_start_time()::text, pg_is_in_recovery(), "
    "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
    "ELSE pg_current_wal_lsn() END::text"
)
_REACHED_SQL = (
    "SELECT (SELECT system_identifier FROM pg_control_system())::text, "
    "pg_postmaster_start_time()::text, "
    "NOT pg_is_in_recovery() OR pg_last_wal_replay_lsn() >= %s::pg_lsn"
)

# What pg_export_snapshot() returns: hex words separated by dashes (e.g. 00000003-0000001B-1).
_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f]{1,16}(-[0-9A-Fa-f]{1,16}){1,3}")


def check_snapshot_id(snapshot: Any) -> str:
    """``snapshot`` when it looks like an exported snapshot id, else :class:`InvalidFilter`."""
    if not isinstance(snapshot, str) or not _SNAPSHOT_ID.fullmatch(snapshot):
        shown = repr(snapshot) if len(repr(snapshot)) <= 40 else repr(snapshot)[:37] + "..."
        raise InvalidFilter(
            f"snapshot {shown} is not an id such as 00000003-0000001B-1 "
            "(take one from exported_snapshot(), or SELECT pg_export_snapshot()).",
            parameter="snapshot",
        )
    return snapshot


def import_snapshot(conn: psycopg.Connection[Any], snapshot: str) -> None:
    """Make ``conn``'s transaction (REPEATABLE READ, nothing run yet) read in ``snapshot``.

    Raises :class:`InvalidFilter` when the server does not know it: the
    exporting transaction has ended, or the id is from another server (a
    snapshot exported on the primary does not exist on its standby, nor one
    of a standby on another standby).
    """
    try:
        # Not in a savepoint: PostgreSQL refuses SET TRANSACTION SNAPSHOT in a subtransaction.
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
    except (psycopg.errors.InvalidParameterValue, psycopg.errors.ObjectNotInPrerequisiteState):
        raise _not_open(snapshot) from None


def _not_open(snapshot: str) -> InvalidFilter:
    return InvalidFilter(
        f"snapshot {snapshot} is not open on this server: the transaction that exported "
        "it must stay open while others read in it (keep exported_snapshot() entered), "
        "on the server they read from (a primary and each standby have snapshots of "
        "their own: export it with the same URL as the readers).",
        parameter="snapshot",
    )


@dataclass(frozen=True)
class SharedSnapshot:
    """What a coordinator hands its readers so that they read what it reads (picklable).

    ``snapshot`` is the exported snapshot id, valid while the coordinator's
    transaction is open, on the server ``server`` only; ``system`` is the
    database cluster's system identifier, the same on a primary and all its
    standbys; ``position`` the WAL position the coordinator's snapshot has
    seen at least; ``standby`` whether the coordinator reads from a standby.
    """

    snapshot: str
    server: str
    system: str
    position: str
    standby: bool


def share_snapshot(conn: psycopg.Connection[Any]) -> SharedSnapshot:
    """Export the snapshot of ``conn``'s REPEATABLE READ transaction for other readers.

    Works on a primary and on a hot standby. The readers call
    :func:`join_snapshot` while this transaction stays open.
    """
    row = conn.execute(f"SELECT pg_export_snapshot(), w.* FROM ({_WHERE_SQL}) w").fetchone()
    assert row is not None
    snapshot, system, started, standby, position = row
    return SharedSnapshot(str(snapshot), f"{system}/{started}", str(system), position, standby)


def _reached(conn: psycopg.Connection[Any], shared: SharedSnapshot) -> tuple[str, bool]:
    """This transaction's server, and whether its snapshot has seen ``shared.position``."""
    row = conn.execute(_REACHED_SQL, (shared.position,)).fetchone()
    assert row is not None
    system, started, reached = row
    if system != shared.system:
        raise InvalidFilter(
            f"A reader reached a server of another database cluster (system identifier "
            f"{system}, not {shared.system}): point every reader at the coordinator's "
            "database, its primary or one of its standbys.",
            parameter="snapshot",
        )
    return f"{system}/{started}", bool(reached)


def _begin(conn: psycopg.Connection[Any]) -> None:
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")


def _end(conn: psycopg.Connection[Any]) -> None:
    # A reader changes nothing; the connection may be gone (a recovery conflict ends it).
    with contextlib.suppress(psycopg.Error):
        conn.execute("ROLLBACK")


def _exact(conn: psycopg.Connection[Any], shared: SharedSnapshot) -> bool:
    """Import ``shared`` in a new transaction; False (transaction ended) when it cannot be."""
    _begin(conn)
    try:
        try:
            conn.execute(
                sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(shared.snapshot))
            )
        except (psycopg.errors.InvalidParameterValue, psycopg.errors.ObjectNotInPrerequisiteState):
            exact = False
        else:
            # The same id may exist on another server (ids count per server): check where.
            exact = _reached(conn, shared)[0] == shared.server
    except BaseException:
        _end(conn)
        raise
    if not exact:
        _end(conn)
    return exact


def _caught_up(conn: psycopg.Connection[Any], shared: SharedSnapshot, wait: float) -> None:
    """Begin a transaction whose snapshot has seen ``shared.position``, waiting up to ``wait`` s."""
    deadline = time.monotonic() + wait
    while True:
        _begin(conn)
        try:
            server, reached = _reached(conn, shared)
        except BaseException:
            _end(conn)
            raise
        if server == shared.server:
            _end(conn)
            # The coordinator's own server no longer knows the snapshot: it has ended.
            raise _not_open(shared.snapshot)
        if reached:
            return
        _end(conn)
        if time.monotonic() > deadline:
            raise DatabaseUnavailable(
                f"A reader reached a standby that has not replayed up to {shared.position} "
                f"(where the coordinator read) within {wait:g} s: it lags behind; point the "
                "readers at the coordinator's server, or check the standby's replication."
            )
        time.sleep(0.05)


@contextmanager
def join_snapshot(
    conn: psycopg.Connection[Any], shared: SharedSnapshot, *, wait: float = DEFAULT_WAIT_SECONDS
) -> Iterator[bool]:
    """Read on ``conn`` (autocommit, idle) in a transaction that sees what the coordinator sees.

    Yields True when ``conn`` reads in the coordinator's very snapshot (it
    reached the same server, primary or standby). Yields False when it
    reached another server of the same database (another standby behind a
    load balancer): after that server has replayed as far as the
    coordinator's snapshot (waiting up to ``wait`` seconds), ``conn`` reads
    in its own, newer snapshot, and the caller must read only the session
    ids the coordinator listed (see the module's notes for what then holds).
    The transaction is rolled back at the end of the block.

    Raises :class:`InvalidFilter` when the coordinator's transaction has
    ended or the server is of another database, and
    :class:`~atlas.errors.DatabaseUnavailable` when the other server does not
    catch up in time.
    """
    exact = _exact(conn, shared)
    if not exact:
        _caught_up(conn, shared, wait)
        logger.info(
            "a reader reached another server than the coordinator's: it reads the listed "
            "sessions in its own snapshot, taken after the coordinator's"
        )
    try:
        yield exact
    finally:
        _end(conn)


@contextmanager
def exported_snapshot(db_url: SyncTarget = None, *, config: ConfigArg = None) -> Iterator[str]:
    """Export a snapshot of the database and hold it open until the ``with`` block ends.

    >>> with exported_snapshot(url) as snapshot:
    ...     for i in range(1, 5):
    ...         export_jsonl(f"part-{i}.jsonl", url, snapshot=snapshot, shard=(i, 4))

    The four parts together are exactly the unsharded export at that moment.
    """
    with connection(db_url, reader_config(config)) as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        yield str(row[0])
