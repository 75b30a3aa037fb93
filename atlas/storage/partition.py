"""Partitioning ``trajectory_events`` by ``created_at``: conversion, partitions ahead, retention.

An opt-in layout (``arc-atlas db partition-events``): the table becomes a
range-partitioned table with PostgreSQL's native declarative partitioning,
one partition per day, week or month of ``created_at`` (UTC bounds), plus a
DEFAULT partition for whatever no partition covers (NULL, infinite or far-off
timestamps, a month nobody created a partition for). See docs/partitioning.md.

* **The key.** PostgreSQL requires the partition key in every unique
  constraint of a partitioned table, so the primary key becomes
  ``(id, created_at)``. ``id`` keeps its sequence, so new rows continue the
  old numbering; PostgreSQL cannot enforce a unique ``id`` across partitions,
  and ids stay unique because only the sequence hands them out. A table whose
  ``created_at`` allows NULL (some old installations) keeps allowing it and
  gets ``UNIQUE (id, created_at)`` instead (a primary key would forbid NULL).
* **The conversion** is one transaction: the new table is built beside the
  old one, filled, compared with it (row count and an order-independent
  checksum of every row), and swapped in under the old name with the old
  indexes, triggers (the event-envelope lift of 0004), foreign keys, grants,
  owner and comment. Writers wait for it (the old table is locked against
  writes while it copies); readers go on until the swap. An interruption
  rolls all of it back: the old table is left as it was.
* **Ahead of time.** The current interval and ``ahead`` more get a partition
  at conversion; :func:`create_partitions_ahead` (called by a re-run of
  ``db partition-events``, ``db upgrade`` and ``db retention``) keeps them
  ahead, moving any rows the DEFAULT partition already holds for a new range.
  Writers never depend on it: the DEFAULT partition takes what falls outside.
* **Retention** detaches (keeps the table, out of reach of readers) or drops
  the partitions that lie entirely before a cutoff.

The library never prints: each function returns what it did.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, cast

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from atlas.errors import DatabaseError, InvalidFilter
from atlas.storage.migrate import check_schema, schema_status

__all__ = [
    "DEFAULT_AHEAD",
    "DEFAULT_INTERVAL",
    "DEFAULT_LOCK_TIMEOUT",
    "DEFAULT_PARTITION",
    "EVENTS",
    "INTERVALS",
    "SETTINGS_TABLE",
    "Conversion",
    "EventsLayout",
    "Partition",
    "Retention",
    "TopUp",
    "apply_retention",
    "create_partitions_ahead",
    "events_layout",
    "interval_after",
    "interval_start",
    "partition_events",
    "partition_name",
    "retention_cutoff",
]

Connection = psycopg.Connection[tuple[Any, ...]]
Interval = Literal["day", "week", "month"]

EVENTS = "trajectory_events"
DEFAULT_PARTITION = f"{EVENTS}_default"
# One row per partitioned table: the interval and how many intervals ahead.
SETTINGS_TABLE = "atlas_event_partitioning"
INTERVALS: tuple[Interval, ...] = ("day", "week", "month")
DEFAULT_INTERVAL: Interval = "month"
DEFAULT_AHEAD = 3
DEFAULT_LOCK_TIMEOUT = 10.0
# Partitions are made only for intervals within these years; rows outside
# them (and NULL, -infinity, infinity) stay in the DEFAULT partition.
_EARLIEST = datetime(1, 1, 1, tzinfo=timezone.utc)
_LATEST = datetime(9999, 1, 1, tzinfo=timezone.utc)
_NEW_TABLE = f"{EVENTS}_partitioned"

_CREATE_SETTINGS = sql.SQL(
    "CREATE TABLE IF NOT EXISTS {} (table_name TEXT PRIMARY KEY, "
    "partition_interval TEXT NOT NULL, ahead INTEGER NOT NULL, "
    "converted_at TIMESTAMPTZ NOT NULL DEFAULT now())"
).format(sql.Identifier(SETTINGS_TABLE))


# -- intervals (pure) --------------------------------------------------------


def interval_start(moment: datetime, interval: Interval) -> datetime:
    """The start (UTC midnight) of the day, ISO week (Monday) or month holding ``moment``."""
    day = moment.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "day":
        return day
    if interval == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def interval_after(start: datetime, interval: Interval) -> datetime:
    """The start of the interval that follows the one starting at ``start``."""
    if interval == "day":
        return start + timedelta(days=1)
    if interval == "week":
        return start + timedelta(days=7)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def partition_name(start: datetime, interval: Interval) -> str:
    """``trajectory_events_p20240115`` (day), ``_p2024w03`` (ISO week), ``_p202401`` (month)."""
    if interval == "day":
        return f"{EVENTS}_p{start:%Y%m%d}"
    if interval == "week":
        year, week, _ = start.isocalendar()
        return f"{EVENTS}_p{year:04d}w{week:02d}"
    return f"{EVENTS}_p{start:%Y%m}"


def _check_interval(interval: str) -> Interval:
    if interval not in INTERVALS:
        raise InvalidFilter(f"--interval must be one of {', '.join(INTERVALS)}; got {interval!r}.")
    return interval  # narrowed by the membership test


# -- what the database holds ---------------------------------------------------


@dataclass(frozen=True)
class Partition:
    """One partition of ``trajectory_events``: its range (None for the DEFAULT one) and rows."""

    name: str
    lower: datetime | None
    upper: datetime | None
    rows: int
    """The planner's estimate (exact counts are asked for where they matter)."""
    default: bool = False


@dataclass(frozen=True)
class EventsLayout:
    """Whether ``trajectory_events`` is partitioned, how, and its partitions in range order."""

    partitioned: bool
    interval: Interval | None = None
    """None when the table is not partitioned, or was partitioned by hand."""
    ahead: int | None = None
    partitions: tuple[Partition, ...] = ()

    @property
    def default(self) -> Partition | None:
        """The DEFAULT partition, if there is one."""
        return next((p for p in self.partitions if p.default), None)

    def ready_until(self, now: datetime) -> datetime | None:
        """Where the partitions that follow on from the one holding ``now`` end.

        None when no partition holds ``now`` (its rows go to DEFAULT). A far
        partition made for stray old or future rows does not count: only the
        unbroken run of ranges from ``now`` on.
        """
        bounds = sorted(
            (p.lower, p.upper)
            for p in self.partitions
            if p.lower is not None and p.upper is not None
        )
        until: datetime | None = None
        for lower, upper in bounds:
            if (until is None and lower <= now < upper) or lower == until:
                until = upper
        return until


# Bounds as values: the bound expression is text in the session's TimeZone,
# so its literals are cast back in the same session (exact, whatever the zone).
# A hand-made bound of MINVALUE or MAXVALUE reads as NULL.
_PARTITIONS = sql.SQL(
    r"""
SELECT c.relname, b.lower, b.upper, c.relpartbound IS NOT NULL
       AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT',
       GREATEST(c.reltuples, 0)::bigint
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
LEFT JOIN LATERAL (
    SELECT m[1]::timestamptz AS lower, m[2]::timestamptz AS upper
    FROM regexp_match(pg_get_expr(c.relpartbound, c.oid),
                      'FROM \(''([^'']*)''\) TO \(''([^'']*)''\)') AS m
) b ON true
WHERE i.inhparent = {}::regclass
ORDER BY b.lower NULLS FIRST, c.relname
"""
)


def _relkind(conn: Connection) -> str | None:
    row = conn.execute(
        "SELECT c.relkind::text FROM pg_class c WHERE c.oid = to_regclass(%s)", (EVENTS,)
    ).fetchone()
    return row[0] if row else None


def _settings(conn: Connection) -> tuple[Interval, int] | None:
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (SETTINGS_TABLE,)).fetchone()
    if not exists or not exists[0]:
        return None
    row = conn.execute(
        sql.SQL("SELECT partition_interval, ahead FROM {} WHERE table_name = %s").format(
            sql.Identifier(SETTINGS_TABLE)
        ),
        (EVENTS,),
    ).fetchone()
    if row is None or row[0] not in INTERVALS:
        return None
    return cast(Interval, row[0]), int(row[1])


def events_layout(conn: Connection) -> EventsLayout:
    """Read how ``trajectory_events`` is laid out (no DDL, no lock beyond the catalogs)."""
    if _relkind(conn) != "p":
        return EventsLayout(partitioned=False)
    rows = conn.execute(_PARTITIONS.format(sql.Literal(EVENTS))).fetchall()
    partitions = tuple(
        Partition(name, lower, upper, int(estimate), bool(default))
        for name, lower, upper, default, estimate in rows
    )
    setting = _settings(conn)
    interval, ahead = setting if setting else (None, None)
    return EventsLayout(True, interval, ahead, partitions)


def _count(conn: Connection, table: str) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
    return int(row[0]) if row else 0


# -- locks -------------------------------------------------------------------


@contextmanager
def _busy_is_an_error(
    lock_timeout: float, what: str, unchanged: str = "nothing was changed"
) -> Iterator[None]:
    """Turn the expected failures of one maintenance transaction into one sentence.

    A lock wait past ``lock_timeout``, and a table already holding the name
    of a partition to create (one detached earlier, or left by hand). The
    transaction rolled back; ``unchanged`` says what that leaves as it was.
    """
    try:
        yield
    except pg_errors.LockNotAvailable as exc:
        raise DatabaseError(
            f"{what}: {EVENTS} stayed locked by another transaction for more than "
            f"{lock_timeout:g} s (a long export or review?), so {unchanged}. Run it "
            "again when the table is quieter, or give --lock-timeout more seconds."
        ) from exc
    except pg_errors.DuplicateTable as exc:
        found = (exc.diag.message_primary or "a table of that name already exists").rstrip(".")
        raise DatabaseError(
            f"{what}: {found}, in the way of a partition to create (a partition detached "
            f"earlier, or a table left by hand?), so {unchanged}. Rename or drop that table "
            "(docs/partitioning.md, Detached partitions), then run it again."
        ) from exc


def _set_local_timeouts(conn: Connection, lock_timeout: float) -> None:
    # A maintenance statement may run for minutes: the pool's statement
    # timeout is for readers and writers. Lock waits stay bounded, so a long
    # export makes this fail cleanly rather than queue every writer behind it.
    conn.execute("SELECT set_config('statement_timeout', '0', true)")
    conn.execute(
        "SELECT set_config('lock_timeout', %s, true)", (f"{max(1, round(lock_timeout * 1000))}",)
    )


# -- the conversion ------------------------------------------------------------


@dataclass(frozen=True)
class Conversion:
    """What :func:`partition_events` did (``already``: the table was partitioned before)."""

    already: bool
    interval: Interval | None
    rows: int
    checksum: str
    key: str
    partitions: tuple[str, ...]
    """Partitions created (by the conversion, or by the top-up of a re-run)."""
    seconds: float
    moved_from_default: int = 0
    busy: tuple[str, ...] = ()
    """Partitions a re-run could not create because the DEFAULT partition stayed locked."""


# An order-independent checksum of every row (all columns, as text): the sum
# of a 64-bit hash per row, folded back into 64 bits for display.
_CHECKSUM = (
    "SELECT count(*), COALESCE(sum(hashtextextended(t::text, 0)::numeric), 0)::text FROM {} AS t"
)

# Objects of the old table that the new one must carry, as DDL PostgreSQL
# writes for them (re-run once the new table has the old name).
_INDEX_DDL = """
SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
WHERE i.indrelid = %s::regclass
  AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid)
"""
_CONSTRAINT_DDL = """
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
WHERE conrelid = %s::regclass AND contype IN ('f', 'u', 'x')
"""
_TRIGGER_DDL = """
SELECT tgname, pg_get_triggerdef(oid), tgenabled::text FROM pg_trigger
WHERE tgrelid = %s::regclass AND NOT tgisinternal
"""
_GRANTS = """
SELECT a.grantee = 0, COALESCE(r.rolname, ''), a.privilege_type, a.is_grantable
FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
LEFT JOIN pg_roles r ON r.oid = a.grantee
WHERE c.oid = %s::regclass AND a.grantee <> c.relowner
"""
_REFERENCED_BY = """
SELECT conrelid::regclass::text FROM pg_constraint
WHERE confrelid = %s::regclass AND contype = 'f' AND conrelid <> confrelid
"""
_PRIVILEGES = {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"}


@dataclass(frozen=True)
class _OldTable:
    """What the swap must carry over from the unpartitioned table."""

    owner: str
    nullable: bool
    pkey: str
    sequence: str | None
    statements: tuple[sql.SQL | sql.Composed, ...]


def _describe_old(conn: Connection) -> _OldTable:
    columns: dict[str, bool] = dict(
        conn.execute(
            "SELECT attname, attnotnull FROM pg_attribute WHERE attrelid = %s::regclass "
            "AND attnum > 0 AND NOT attisdropped",
            (EVENTS,),
        ).fetchall()
    )
    if "id" not in columns or "created_at" not in columns:
        raise DatabaseError(f"{EVENTS} has no id or no created_at column: it cannot be converted.")
    identity = conn.execute(
        "SELECT attidentity::text FROM pg_attribute WHERE attrelid = %s::regclass "
        "AND attname = 'id'",
        (EVENTS,),
    ).fetchone()
    if identity and identity[0]:
        raise DatabaseError(
            f"{EVENTS}.id is an identity column; partition-events converts the SERIAL id "
            "of arc-atlas and atlas-sdk only."
        )
    referencing = [r[0] for r in conn.execute(_REFERENCED_BY, (EVENTS,))]
    if referencing:
        raise DatabaseError(
            f"{', '.join(referencing)} has a foreign key to {EVENTS}: a partitioned table can "
            "only be referenced through its whole key (id, created_at). Drop that foreign key "
            "first."
        )
    published = [r[0] for r in conn.execute(
        "SELECT p.pubname FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid "
        "WHERE r.prrelid = %s::regclass", (EVENTS,))]  # fmt: skip
    if published:
        raise DatabaseError(
            f"{EVENTS} is in publication {', '.join(published)}: remove it (ALTER PUBLICATION "
            "... DROP TABLE), convert, then add it back WITH (publish_via_partition_root)."
        )
    row = conn.execute(
        "SELECT c.relowner::regrole::text, k.conname, pg_get_serial_sequence(%s, 'id'), "
        "obj_description(c.oid, 'pg_class') FROM pg_class c "
        "LEFT JOIN pg_constraint k ON k.conrelid = c.oid AND k.contype = 'p' "
        "WHERE c.oid = %s::regclass",
        (EVENTS, EVENTS),
    ).fetchone()
    assert row is not None  # the caller locked the table
    owner, pkey, sequence, comment = row
    table = sql.Identifier(EVENTS)
    statements: list[sql.SQL | sql.Composed] = [
        sql.SQL(d) for (d,) in conn.execute(_INDEX_DDL, (EVENTS,))
    ]
    for name, definition in conn.execute(_CONSTRAINT_DDL, (EVENTS,)):
        statements.append(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                table, sql.Identifier(name), sql.SQL(definition)
            )
        )
    for name, definition, enabled in conn.execute(_TRIGGER_DDL, (EVENTS,)):
        statements.append(sql.SQL(definition))
        # 'O' is the default (fires in origin sessions); 'D' disabled, 'R' replica, 'A' always.
        mode = {"D": "DISABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}.get(enabled)
        if mode:
            statements.append(
                sql.SQL("ALTER TABLE {} {} TRIGGER {}").format(
                    table, sql.SQL(mode), sql.Identifier(name)
                )
            )
    for public, role, privilege, grantable in conn.execute(_GRANTS, (EVENTS,)):
        if privilege not in _PRIVILEGES:
            continue
        statements.append(
            sql.SQL("GRANT {} ON {} TO {}{}").format(
                sql.SQL(privilege),
                table,
                sql.SQL("PUBLIC") if public else sql.Identifier(role),
                sql.SQL(" WITH GRANT OPTION" if grantable else ""),
            )
        )
    if comment is not None:
        statements.append(sql.SQL("COMMENT ON TABLE {} IS {}").format(table, sql.Literal(comment)))
    return _OldTable(
        owner=owner,
        nullable=not columns["created_at"],
        pkey=pkey or f"{EVENTS}_pkey",
        sequence=sequence,
        statements=tuple(statements),
    )


def _intervals_with_rows(conn: Connection, interval: Interval) -> list[datetime]:
    rows = conn.execute(
        sql.SQL(
            "SELECT DISTINCT date_trunc(%s, created_at, 'UTC') FROM {} "
            "WHERE created_at >= %s AND created_at < %s"
        ).format(sql.Identifier(EVENTS)),
        (interval, _EARLIEST, _LATEST),
    ).fetchall()
    return sorted(interval_start(r[0], interval) for r in rows)


def _wanted_ahead(now: datetime, interval: Interval, ahead: int) -> list[datetime]:
    starts = [interval_start(now, interval)]
    for _ in range(ahead):
        starts.append(interval_after(starts[-1], interval))
    return starts


def _create_partition_of(conn: Connection, parent: str, start: datetime, interval: Interval) -> str:
    name = partition_name(start, interval)
    conn.execute(
        sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(name),
            sql.Identifier(parent),
            sql.Literal(start),
            sql.Literal(interval_after(start, interval)),
        )
    )
    return name


def partition_events(
    conn: Connection,
    *,
    interval: str = DEFAULT_INTERVAL,
    ahead: int = DEFAULT_AHEAD,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    target: str = "the database",
    now: datetime | None = None,
) -> Conversion:
    """Turn ``trajectory_events`` into a table range-partitioned on ``created_at``.

    One transaction (``conn`` must be in autocommit mode): builds the
    partitioned table with a partition per ``interval`` that holds rows, the
    current one and ``ahead`` more, and a DEFAULT partition; copies every row;
    checks the row count and a checksum of every row against the old table;
    swaps it in under the old name with the old indexes, constraints,
    triggers, grants, owner and comment; drops the old table. Writers wait
    while it copies; readers wait only for the swap.

    On a table that is already partitioned it changes nothing but the
    ``ahead`` setting, creates the partitions that are due
    (:func:`create_partitions_ahead`) and returns ``already=True``.

    Raises :class:`~atlas.errors.SchemaOutOfDate` when migrations are pending,
    :class:`~atlas.errors.InvalidFilter` for a bad ``interval`` or ``ahead``,
    and :class:`~atlas.errors.DatabaseError` when a lock is not granted within
    ``lock_timeout`` seconds or the table cannot be converted (a foreign key
    into it, a publication, a view on it); in every case nothing has changed.
    """
    chosen = _check_interval(interval)
    if not 0 <= ahead <= 1000:
        raise InvalidFilter(f"--ahead must be between 0 and 1000; got {ahead}.")
    check_schema(schema_status(conn), target)
    started = time.perf_counter()
    moment = now or datetime.now(timezone.utc)
    if _relkind(conn) == "p":
        return _already(conn, ahead, lock_timeout, moment, started)
    with _busy_is_an_error(lock_timeout, "partition-events"), conn.transaction():
        _set_local_timeouts(conn, lock_timeout)
        # EXCLUSIVE: no writes (so the copy misses nothing), reads go on.
        conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(sql.Identifier(EVENTS)))
        old = _describe_old(conn)
        rows, checksum = conn.execute(_checksum_sql(EVENTS)).fetchone()  # type: ignore[misc]
        starts = sorted(
            set(_intervals_with_rows(conn, chosen)) | set(_wanted_ahead(moment, chosen, ahead))
        )
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
                "INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS "
                "INCLUDING STATISTICS) PARTITION BY RANGE (created_at)"
            ).format(sql.Identifier(_NEW_TABLE), sql.Identifier(EVENTS))
        )
        created = [_create_partition_of(conn, _NEW_TABLE, s, chosen) for s in starts]
        conn.execute(
            sql.SQL("CREATE TABLE {} PARTITION OF {} DEFAULT").format(
                sql.Identifier(DEFAULT_PARTITION), sql.Identifier(_NEW_TABLE)
            )
        )
        created.append(DEFAULT_PARTITION)
        # Rows go in as stored: the envelope trigger is not on the new table yet.
        conn.execute(
            sql.SQL("INSERT INTO {} SELECT * FROM {}").format(
                sql.Identifier(_NEW_TABLE), sql.Identifier(EVENTS)
            )
        )
        copied = conn.execute(_checksum_sql(_NEW_TABLE)).fetchone()
        if copied != (rows, checksum):
            raise DatabaseError(  # pragma: no cover - PostgreSQL lost rows it inserted
                f"The partitioned copy of {EVENTS} does not match it ({copied} against "
                f"{(rows, checksum)} rows and checksum): nothing was changed."
            )
        key = _swap(conn, old)
        _record_settings(conn, chosen, ahead)
    with conn.transaction():
        _set_local_timeouts(conn, lock_timeout)
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(EVENTS)))
    return Conversion(
        already=False,
        interval=chosen,
        rows=int(rows),
        checksum=_short(checksum),
        key=key,
        partitions=tuple(created),
        seconds=time.perf_counter() - started,
    )


def _checksum_sql(table: str) -> sql.Composed:
    return sql.SQL(_CHECKSUM).format(sql.Identifier(table))


def _short(checksum: str) -> str:
    """The numeric sum of row hashes as 16 hex digits (for display)."""
    return f"{int(checksum) % (1 << 64):016x}"


def _swap(conn: Connection, old: _OldTable) -> str:
    """Drop the old table and give its name, key and dependent objects to the new one."""
    table = sql.Identifier(EVENTS)
    if old.sequence:
        # The id sequence belongs to the old column; keep it through the drop.
        conn.execute(sql.SQL("ALTER SEQUENCE {} OWNED BY NONE").format(sql.SQL(old.sequence)))
    try:
        conn.execute(sql.SQL("DROP TABLE {}").format(table))
    except pg_errors.DependentObjectsStillExist as exc:
        detail = " ".join((exc.diag.message_detail or "").split())
        raise DatabaseError(
            f"Other objects depend on {EVENTS} ({detail}): drop them, run partition-events, "
            "then create them again. Nothing was changed."
        ) from exc
    conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(_NEW_TABLE), table))
    kind = "UNIQUE" if old.nullable else "PRIMARY KEY"
    conn.execute(
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {} (id, created_at)").format(
            table, sql.Identifier(old.pkey), sql.SQL(kind)
        )
    )
    for statement in old.statements:
        conn.execute(statement)
    if old.sequence:
        conn.execute(
            sql.SQL("ALTER SEQUENCE {} OWNED BY {}.id").format(sql.SQL(old.sequence), table)
        )
    _give_to_owner(conn, old.owner, [EVENTS, *_partition_names(conn)])
    return f"{kind} (id, created_at)"


def _partition_names(conn: Connection) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass",
            (EVENTS,),
        )
    ]


def _give_to_owner(conn: Connection, owner: str, tables: Sequence[str]) -> None:
    """Make ``owner`` (the old table's) own ``tables``, unless it is us already."""
    row = conn.execute("SELECT current_user::text = %s", (owner,)).fetchone()
    if row and row[0]:
        return
    for name in tables:
        conn.execute(
            sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.SQL(name), sql.Identifier(owner))
        )


def _record_settings(conn: Connection, interval: Interval, ahead: int) -> None:
    conn.execute(_CREATE_SETTINGS)
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (table_name, partition_interval, ahead) VALUES (%s, %s, %s) "
            "ON CONFLICT (table_name) DO UPDATE SET partition_interval = EXCLUDED."
            "partition_interval, ahead = EXCLUDED.ahead"
        ).format(sql.Identifier(SETTINGS_TABLE)),
        (EVENTS, interval, ahead),
    )


def _already(
    conn: Connection, ahead: int, lock_timeout: float, now: datetime, started: float
) -> Conversion:
    """A re-run: keep the interval, take the new ``ahead``, top the partitions up."""
    setting = _settings(conn)
    if setting is not None and setting[1] != ahead:
        with conn.transaction():
            _record_settings(conn, setting[0], ahead)
    top = create_partitions_ahead(conn, lock_timeout=lock_timeout, now=now)
    return Conversion(
        already=True,
        interval=setting[0] if setting else None,
        rows=0,
        checksum="",
        key="",
        partitions=top.created,
        seconds=time.perf_counter() - started,
        moved_from_default=top.moved,
        busy=top.busy,
    )


# -- partitions ahead ----------------------------------------------------------


@dataclass(frozen=True)
class TopUp:
    """Partitions :func:`create_partitions_ahead` created, rows it moved, and what it left."""

    created: tuple[str, ...] = ()
    moved: int = 0
    """Rows moved out of the DEFAULT partition into a new partition."""
    busy: tuple[str, ...] = ()
    """Partitions not created because a lock was not granted in time (the next run will)."""


def create_partitions_ahead(
    conn: Connection,
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    now: datetime | None = None,
) -> TopUp:
    """Create the partitions for the current interval and the configured number ahead.

    Does nothing on a table that is not partitioned, or that arc-atlas did not
    partition (no recorded interval). Each partition is its own short
    transaction: a standalone table gets the rows the DEFAULT partition holds
    for its range (PostgreSQL refuses a partition whose range has rows in
    DEFAULT), then is attached. A range that overlaps an existing partition
    is left alone. When the DEFAULT partition stays locked (a long read)
    beyond ``lock_timeout`` seconds, that partition is skipped and named in
    ``busy``: writers are unaffected, their rows land in DEFAULT meanwhile.
    """
    layout = events_layout(conn)
    if not layout.partitioned or layout.interval is None or layout.ahead is None:
        return TopUp()
    moment = now or datetime.now(timezone.utc)
    ranges = [(p.lower, p.upper) for p in layout.partitions if not p.default]
    created: list[str] = []
    busy: list[str] = []
    moved = 0
    for start in _wanted_ahead(moment, layout.interval, layout.ahead):
        end = interval_after(start, layout.interval)
        if any(_overlaps(start, end, lower, upper) for lower, upper in ranges):
            continue
        name = partition_name(start, layout.interval)
        try:
            with _busy_is_an_error(lock_timeout, "top-up"), conn.transaction():
                _set_local_timeouts(conn, lock_timeout)
                moved += _attach_new(conn, name, start, end, layout.default)
        except DatabaseError as exc:
            if not isinstance(exc.__cause__, pg_errors.LockNotAvailable):
                raise
            busy.append(name)
            continue
        created.append(name)
    return TopUp(tuple(created), moved, tuple(busy))


def _overlaps(
    start: datetime, end: datetime, lower: datetime | None, upper: datetime | None
) -> bool:
    return (lower is None or lower < end) and (upper is None or start < upper)


def _attach_new(
    conn: Connection, name: str, start: datetime, end: datetime, default: Partition | None
) -> int:
    """Create ``name`` for [start, end), move DEFAULT's rows of that range into it, attach it."""
    table = sql.Identifier(name)
    parent = sql.Identifier(EVENTS)
    moved = 0
    if default is not None:
        # Nothing may enter DEFAULT's share of the range while its rows move.
        conn.execute(
            sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(default.name))
        )
    conn.execute(
        sql.SQL(
            "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
            "INCLUDING STORAGE INCLUDING COMPRESSION)"
        ).format(table, parent)
    )
    if default is not None:
        result = conn.execute(
            sql.SQL(
                "WITH moved AS (DELETE FROM {} WHERE created_at >= %s AND created_at < %s "
                "RETURNING *) INSERT INTO {} SELECT * FROM moved"
            ).format(sql.Identifier(default.name), table),
            (start, end),
        )
        moved = max(result.rowcount, 0)
    conn.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            parent, table, sql.Literal(start), sql.Literal(end)
        )
    )
    owner = conn.execute(
        "SELECT relowner::regrole::text FROM pg_class WHERE oid = %s::regclass", (EVENTS,)
    ).fetchone()
    if owner:
        _give_to_owner(conn, owner[0], [name])
    return moved


# -- retention -----------------------------------------------------------------


@dataclass(frozen=True)
class Retention:
    """What :func:`apply_retention` did, or would do with ``dry_run``."""

    cutoff: datetime
    action: Literal["detach", "drop"]
    dry_run: bool
    partitions: tuple[tuple[Partition, int], ...]
    """Each partition entirely before the cutoff, with its exact row count."""
    default_rows_before: int
    """Rows of the DEFAULT partition older than the cutoff (kept: retention takes whole
    partitions)."""
    top_up: TopUp = TopUp()

    @property
    def rows(self) -> int:
        """Rows in the partitions detached or dropped."""
        return sum(count for _, count in self.partitions)


def retention_cutoff(conn: Connection, *, months: int = 0, days: int = 0) -> datetime:
    """The server's ``now()`` minus ``months`` calendar months and ``days`` days."""
    row = conn.execute(
        "SELECT now() - make_interval(months => %s, days => %s)", (months, days)
    ).fetchone()
    assert row is not None
    return cast(datetime, row[0])


def apply_retention(
    conn: Connection,
    cutoff: datetime,
    *,
    drop: bool = False,
    dry_run: bool = False,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> Retention:
    """Detach (default) or drop every partition whose range ends at or before ``cutoff``.

    A detached partition stays in the database as a table of its own, under
    its name, out of reach of every reader and export; dropping deletes its
    rows. Each partition is its own transaction. ``dry_run`` changes nothing
    and returns what would happen, with exact row counts. The DEFAULT
    partition is never touched. Unless ``dry_run``, the partitions ahead are
    topped up afterwards.

    Raises :class:`~atlas.errors.DatabaseError` when ``trajectory_events`` is
    not partitioned, or a lock is not granted within ``lock_timeout`` seconds
    (the partitions handled before stay handled).
    """
    layout = events_layout(conn)
    if not layout.partitioned:
        raise DatabaseError(
            f"{EVENTS} is not partitioned: run `arc-atlas db partition-events` first."
        )
    old = [p for p in layout.partitions if not p.default and p.upper and p.upper <= cutoff]
    counted = tuple((p, _count(conn, p.name)) for p in old)
    before = 0
    if layout.default is not None:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE created_at < %s").format(
                sql.Identifier(layout.default.name)
            ),
            (cutoff,),
        ).fetchone()
        before = int(row[0]) if row else 0
    action: Literal["detach", "drop"] = "drop" if drop else "detach"
    if dry_run:
        return Retention(cutoff, action, True, counted, before)
    done: list[str] = []
    for partition, _ in counted:
        unchanged = (
            f"{partition.name} and the partitions after it were not changed "
            f"({action}ed before it: {', '.join(done)})"
            if done
            else "nothing was changed"
        )
        with _busy_is_an_error(lock_timeout, "retention", unchanged), conn.transaction():
            _set_local_timeouts(conn, lock_timeout)
            if drop:
                conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(partition.name)))
            else:
                conn.execute(
                    sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(
                        sql.Identifier(EVENTS), sql.Identifier(partition.name)
                    )
                )
        done.append(partition.name)
    top = create_partitions_ahead(conn, lock_timeout=lock_timeout)
    return Retention(cutoff, action, False, counted, before, top)
