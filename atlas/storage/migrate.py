"""Versioned schema migrations, recorded in the database.

Migrations are the SQL files in ``atlas/storage/migrations`` named
``NNNN_description.sql``. Each one runs in its own transaction and is recorded
in ``atlas_schema_migrations`` with its checksum. A session-level advisory lock
serialises concurrent upgraders, so two processes starting at once apply each
migration exactly once.

A migration may own a data step (:mod:`atlas.storage.normalise`): Python
that rewrites stored rows in batches after the file has run. Such a migration
is recorded only once its step has finished; an interrupted upgrade runs the
(idempotent) file again and resumes the step where it stopped.

Writers call :func:`ensure_current`, which reads the recorded versions
first (one SELECT) and calls :func:`apply_migrations` only when something is
pending, so a writer whose role may write rows but not change the schema
works as long as the schema is current. ``arc-atlas db upgrade`` calls
:func:`apply_migrations` directly; readers call :func:`check_schema`. Neither
of those two checks runs DDL.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from atlas.errors import SchemaOutOfDate
from atlas.storage.normalise import (
    Progress,
    ProgressCallback,
    derive_session_facts,
    finish_step,
    normalise_events,
)
from atlas.storage.standby import is_standby

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "MIGRATIONS_TABLE",
    "AppliedMigration",
    "Migration",
    "Progress",
    "ProgressCallback",
    "SchemaStatus",
    "apply_migrations",
    "available_migrations",
    "check_schema",
    "ensure_current",
    "schema_status",
    "status_from_rows",
]

MIGRATIONS_TABLE = "atlas_schema_migrations"
# Arbitrary constant shared by every arc-atlas process: the advisory lock key.
_LOCK_KEY = 0x41746C61  # "Atla"
# Rows per transaction in a data step: large enough that round trips do not
# dominate, small enough that each transaction holds its row locks briefly.
DEFAULT_BATCH_SIZE = 5000

DataStep = Callable[..., None]
# Data steps by migration name (the file name without number and extension).
_DATA_STEPS: dict[str, DataStep] = {
    "event_envelope": normalise_events,
    "session_facts": derive_session_facts,
}

_CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    duration_ms INTEGER NOT NULL
)
"""


@dataclass(frozen=True)
class Migration:
    """One migration file shipped with arc-atlas."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file, to notice a migration edited after it was applied."""
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AppliedMigration:
    """A row of ``atlas_schema_migrations``."""

    version: int
    name: str
    checksum: str
    applied_at: datetime
    duration_ms: int


@dataclass(frozen=True)
class SchemaStatus:
    """What is applied, what is pending, and whether anything was changed since."""

    applied: tuple[AppliedMigration, ...]
    pending: tuple[Migration, ...]
    modified: tuple[int, ...]

    @property
    def current_version(self) -> int:
        """The highest applied version (0 for a database arc-atlas never upgraded)."""
        return max((m.version for m in self.applied), default=0)

    @property
    def up_to_date(self) -> bool:
        """True when no shipped migration is waiting to be applied."""
        return not self.pending


def available_migrations() -> tuple[Migration, ...]:
    """The migrations shipped with this version, in version order."""
    folder = resources.files("atlas.storage") / "migrations"
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if not name.endswith(".sql"):
            continue
        number, _, rest = name.partition("_")
        found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    return tuple(found)


# Two queries because the second cannot be planned when the table is missing.
TABLE_EXISTS_SQL = sql.SQL("SELECT to_regclass({}) IS NOT NULL").format(
    sql.Literal(MIGRATIONS_TABLE)
)
APPLIED_SQL = sql.SQL(
    "SELECT version, name, checksum, applied_at, duration_ms FROM {} ORDER BY version"
).format(sql.Identifier(MIGRATIONS_TABLE))


def schema_status(conn: psycopg.Connection[tuple[object, ...]]) -> SchemaStatus:
    """Compare the migrations recorded in the database with those shipped.

    Runs no DDL. On an autocommit connection this is one SELECT: a missing
    table fails that statement alone, and there is no transaction to abort.
    Inside a transaction the failure would abort it, so the table's existence
    is asked first.
    """
    if conn.autocommit:
        try:
            return status_from_rows(conn.execute(APPLIED_SQL).fetchall())
        except pg_errors.UndefinedTable:
            return status_from_rows([])
    exists = conn.execute(TABLE_EXISTS_SQL).fetchone()
    rows = conn.execute(APPLIED_SQL).fetchall() if exists and exists[0] else []
    return status_from_rows(rows)


def status_from_rows(rows: list[tuple[object, ...]]) -> SchemaStatus:
    """Build a :class:`SchemaStatus` from the rows of ``APPLIED_SQL`` (pure)."""
    applied = tuple(AppliedMigration(*row) for row in rows)  # type: ignore[arg-type]
    by_version = {m.version: m for m in applied}
    shipped = available_migrations()
    pending = tuple(m for m in shipped if m.version not in by_version)
    modified = tuple(
        m.version
        for m in shipped
        if m.version in by_version and by_version[m.version].checksum != m.checksum
    )
    return SchemaStatus(applied, pending, modified)


def apply_migrations(
    conn: psycopg.Connection[tuple[object, ...]],
    *,
    progress: ProgressCallback | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> tuple[Migration, ...]:
    """Apply every pending migration, each in its own transaction; return those applied.

    ``conn`` must be in autocommit mode. Safe to call from several processes at
    once: they queue on an advisory lock and the later ones find nothing to do.
    A migration with a data step then rewrites rows in batches of
    ``batch_size``, each its own transaction, calling ``progress`` with a
    :class:`Progress` before the first batch and after each; an exception from
    ``progress`` (or an interruption) leaves that migration pending, and the
    next call resumes its data step after the last committed batch.
    """
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        conn.execute(_CREATE_TABLE)
        done = []
        for migration in schema_status(conn).pending:
            started = time.perf_counter()
            step = _DATA_STEPS.get(migration.name)
            with conn.transaction():
                conn.execute(migration.sql.encode("utf-8"))
                if step is None:
                    _record(conn, migration, started)
            if step is not None:
                step(conn, migration.version, batch_size=batch_size, progress=progress)
                with conn.transaction():
                    finish_step(conn, migration.version)
                    _record(conn, migration, started)
            done.append(migration)
        return tuple(done)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def _record(
    conn: psycopg.Connection[tuple[object, ...]], migration: Migration, started: float
) -> None:
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (version, name, checksum, duration_ms) VALUES (%s, %s, %s, %s)"
        ).format(sql.Identifier(MIGRATIONS_TABLE)),
        (
            migration.version,
            migration.name,
            migration.checksum,
            int((time.perf_counter() - started) * 1000),
        ),
    )


def ensure_current(
    conn: psycopg.Connection[tuple[object, ...]], target: str
) -> tuple[Migration, ...]:
    """Apply pending migrations only if there are any; return those applied.

    The version is read first, so a current schema costs one SELECT and no
    DDL (not even ``CREATE TABLE IF NOT EXISTS``, which PostgreSQL refuses to
    a role without CREATE on the schema even when the table exists). When
    migrations are pending and the role may not apply them, raises
    :class:`SchemaOutOfDate` naming ``arc-atlas db upgrade``. ``conn`` must be
    in autocommit mode; ``target`` is the masked URL.
    """
    status = schema_status(conn)
    if status.up_to_date:
        return ()
    if is_standby(conn):
        # DDL cannot run on a standby; the primary's upgrade reaches it by replication.
        check_schema(status, target, standby=True)
    try:
        return apply_migrations(conn)
    except pg_errors.InsufficientPrivilege as exc:
        raise SchemaOutOfDate(
            f"Database {target} {_what_is_missing(status)}, and role {conn.info.user!r} may not "
            f"change the schema ({_first_line(exc)}): run `arc-atlas db upgrade --database-url "
            f"{target}` as a role that owns the schema, then write again."
        ) from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _what_is_missing(status: SchemaStatus) -> str:
    if not status.applied:
        return "has no arc-atlas schema yet"
    return (
        f"is at schema version {status.current_version}, "
        f"this arc-atlas needs {available_migrations()[-1].version}"
    )


def check_schema(status: SchemaStatus, target: str, *, standby: bool = False) -> None:
    """Raise :class:`SchemaOutOfDate` unless every shipped migration is applied.

    ``target`` is the masked URL, named in the message with the command to
    run; on a ``standby`` the message sends the upgrade to its primary.
    """
    if status.up_to_date:
        return
    if standby:
        raise SchemaOutOfDate(
            f"Database {target} {_what_is_missing(status)}, and it is a hot standby, which "
            "takes no migrations: run `arc-atlas db upgrade --database-url PRIMARY` against its "
            "primary; the standby follows by replication."
        )
    raise SchemaOutOfDate(
        f"Database {target} {_what_is_missing(status)}: run `arc-atlas db upgrade "
        f"--database-url {target}` (writers apply it automatically)."
    )
