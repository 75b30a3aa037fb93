"""One database snapshot for several readers: the shards of an export, a cluster's read tasks.

:func:`exported_snapshot` opens a read-only REPEATABLE READ transaction,
exports its snapshot (``pg_export_snapshot()``) and keeps the transaction
open while the caller uses the id; every reader that passes the id
(``export_jsonl(..., snapshot=id)``, ``arc-atlas export --snapshot ID``)
then sees exactly the same sessions, whatever is written meanwhile.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from atlas.errors import InvalidFilter
from atlas.training_data.targets import ConfigArg, SyncTarget, connection, reader_config

__all__ = ["check_snapshot_id", "exported_snapshot", "import_snapshot"]

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
    exporting transaction has ended, or the id is from another server.
    """
    try:
        # Not in a savepoint: PostgreSQL refuses SET TRANSACTION SNAPSHOT in a subtransaction.
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
    except (psycopg.errors.InvalidParameterValue, psycopg.errors.ObjectNotInPrerequisiteState):
        raise InvalidFilter(
            f"snapshot {snapshot} is not open on this server: the transaction that exported "
            "it must stay open while others read in it (keep exported_snapshot() entered).",
            parameter="snapshot",
        ) from None


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
