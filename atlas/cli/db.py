"""``arc-atlas db``: upgrade, status, url, stop, server, recover, partition-events, retention,
seed-demo."""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from atlas.cli.db_partition import add_partition_commands, events_status, top_up_lines
from atlas.errors import InvalidFilter, ReadOnlyDatabase
from atlas.storage import (
    MAX_RECOVER_AGE,
    SHAPES,
    TABLES,
    ConnectionSettings,
    ReplayStatus,
    SessionWriter,
    apply_migrations,
    atlas_home,
    available_migrations,
    connect,
    create_atlas_sdk_schema,
    create_partitions_ahead,
    embedded_server,
    is_standby,
    replay_status,
    resolve_settings,
    schema_status,
    seed_sessions,
    stop_embedded,
    translate_errors,
)
from atlas.storage import MIGRATION_BATCH_SIZE as DEFAULT_BATCH_SIZE
from atlas.storage import MigrationProgress as Progress

__all__ = ["parse_duration", "register"]

# Session ids are SERIAL (int4); a seed far past any benchmark is a typo.
MAX_SEED_SESSIONS = 10_000_000
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)", re.IGNORECASE)
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str, *, flag: str = "--older-than") -> timedelta:
    """Parse ``90s``, ``30m``, ``2h``, ``1d``, ``1h30m`` into a timedelta.

    The duration must be longer than zero and at most
    :data:`~atlas.storage.writes.MAX_RECOVER_AGE`. Raises :class:`InvalidFilter`
    naming ``flag`` for anything else (never ``OverflowError``).
    """
    cleaned = text.strip().replace(" ", "")
    parts = _DURATION.findall(cleaned)
    if not parts or "".join(n + u for n, u in parts).lower() != cleaned.lower():
        raise InvalidFilter(
            f"{flag}: cannot read duration {text!r}: "
            "use a number with a unit, such as 30m, 2h, 1d or 1h30m."
        )
    # Add up in float seconds and compare before building a timedelta:
    # timedelta(days=99999999999) raises OverflowError, a float is just large.
    seconds = sum(float(n) * _UNITS[u.lower()] for n, u in parts)
    longest = MAX_RECOVER_AGE.days
    if not 0 < seconds <= MAX_RECOVER_AGE.total_seconds():
        raise InvalidFilter(f"{flag} must be longer than 0s and at most {longest}d; got {text!r}.")
    return timedelta(seconds=seconds)


def _out() -> Console:
    return Console(file=sys.stdout, highlight=False, soft_wrap=True)


def _settings(args: argparse.Namespace) -> ConnectionSettings:
    return resolve_settings(
        getattr(args, "database_url", None), config_path=getattr(args, "config", None)
    )


class _ProgressLine:
    """Renders an upgrade's data-step progress on stderr.

    On a terminal one line is rewritten in place; otherwise a line is printed
    at the start, every ``interval`` seconds and at the end, so a log stays short.
    """

    def __init__(self, interval: float = 5.0) -> None:
        self._tty = sys.stderr.isatty()
        self._interval = interval
        self._last: float | None = None

    def __call__(self, p: Progress) -> None:
        if p.total == 0:
            return  # nothing stored: say nothing
        text = f"{p.task}: {p.done:,}/{p.total:,} ({p.changed:,} rewritten)"
        now = time.monotonic()
        final = p.done >= p.total
        if self._tty:
            print(f"\r{text}", end="\n" if final else "", file=sys.stderr, flush=True)
        elif final or self._last is None or now - self._last >= self._interval:
            print(text, file=sys.stderr, flush=True)
        else:
            return
        self._last = now


def _upgrade(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise InvalidFilter("--batch-size must be at least 1.")
    settings = _settings(args)
    with connect(settings) as conn, translate_errors(settings.display_url):
        if args.dry_run:
            pending = schema_status(conn).pending
            for m in pending:
                print(f"would apply {m.version:04d} {m.name}")
            if not pending:
                print(f"{settings.display_url} is up to date.")
            return 0
        if is_standby(conn):
            raise ReadOnlyDatabase(
                f"Database at {settings.display_url} is a hot standby, which takes no "
                "migrations: run `arc-atlas db upgrade --database-url PRIMARY` against its "
                "primary; the standby follows by replication.",
                standby=True,
            )
        applied = apply_migrations(conn, progress=_ProgressLine(), batch_size=args.batch_size)
        # A partitioned trajectory_events gets its partitions ahead topped up too.
        topped = top_up_lines(create_partitions_ahead(conn))
    for m in applied:
        print(f"applied {m.version:04d} {m.name}")
    for line in topped:
        print(line)
    latest = available_migrations()[-1].version
    print(f"{settings.display_url} is at schema version {latest}.")
    return 0


def _row_counts(conn: Any) -> list[tuple[str, str, str]]:
    # A partitioned table (trajectory_events after db partition-events) has
    # neither rows nor size of its own: its partitions have them.
    rows = conn.execute(
        "SELECT c.relname, COALESCE((SELECT sum(GREATEST(l.reltuples, 0)) FROM "
        "pg_partition_tree(c.oid) t JOIN pg_class l ON l.oid = t.relid WHERE c.relkind = 'p'), "
        "c.reltuples)::bigint, pg_size_pretty(COALESCE((SELECT sum(pg_total_relation_size("
        "t.relid)) FROM pg_partition_tree(c.oid) t WHERE c.relkind = 'p'), "
        "pg_total_relation_size(c.oid))::bigint) "
        "FROM pg_class c WHERE c.relkind IN ('r', 'p') AND c.relname = ANY(%s) "
        "AND c.relnamespace = current_schema()::regnamespace",
        (list(TABLES),),
    ).fetchall()
    found = {name: (estimate, size) for name, estimate, size in rows}
    result = []
    for table in TABLES:
        if table not in found:
            result.append((table, "missing", "-"))
            continue
        estimate, size = found[table]
        if estimate > 1_000_000:
            # Counting tens of millions of events takes a while; the planner's
            # estimate is within a few percent once the table has been analysed.
            result.append((table, f"~{estimate:,}", size))
        else:
            count = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            result.append((table, f"{count:,}", size))
    return result


def _replica_line(replay: ReplayStatus) -> str:
    """One line on a standby: read-only, how far it has replayed, what is left to replay."""
    parts = ["hot standby (read-only: review and upgrade on the primary)"]
    if replay.replayed_lsn is not None:
        parts.append(f"replayed WAL up to {replay.replayed_lsn}")
    if replay.lag_bytes is not None:
        parts.append(f"{replay.lag_bytes:,} bytes received but not yet replayed")
    if replay.replayed_at is not None:
        parts.append(f"last commit replayed {replay.replayed_at.isoformat(' ', 'seconds')}")
    return ", ".join(parts)


def _status(args: argparse.Namespace) -> int:
    settings = _settings(args)
    console = _out()
    with connect(settings) as conn, translate_errors(settings.display_url):
        row = conn.execute("SELECT current_setting('server_version')").fetchone()
        version = row[0] if row else "?"
        status = schema_status(conn)
        counts = _row_counts(conn)
        events = events_status(conn)
        replay = replay_status(conn)
    origin = "embedded" if settings.embedded else settings.source
    console.print(f"Database: {settings.display_url} (from {origin})")
    console.print(f"Server:   PostgreSQL {version}")
    if replay is not None:
        console.print(f"Replica:  {_replica_line(replay)}")
    if status.up_to_date:
        console.print(f"Schema:   version {status.current_version}, up to date")
    else:
        console.print(
            f"Schema:   version {status.current_version}, {len(status.pending)} migration(s) "
            "pending: run `arc-atlas db upgrade`"
        )
    console.print(f"Events:   {events}")
    if status.modified:
        console.print(
            f"Warning:  migrations {list(status.modified)} changed since they were applied"
        )
    migrations = Table("version", "migration", "applied at", "ms", title="Migrations")
    for m in status.applied:
        migrations.add_row(
            f"{m.version:04d}", m.name, m.applied_at.isoformat(" ", "seconds"), str(m.duration_ms)
        )
    for p in status.pending:
        migrations.add_row(f"{p.version:04d}", p.name, "pending", "")
    console.print(migrations)
    tables = Table("table", "rows", "size", title="Tables")
    for name, count, size in counts:
        tables.add_row(name, count, size)
    console.print(tables)
    return 0


def _url(args: argparse.Namespace) -> int:
    settings = _settings(args)
    print(settings.url if args.show_password else settings.display_url)
    if args.source:
        print(f"# from {'embedded' if settings.embedded else settings.source}", file=sys.stderr)
    return 0


def _stop(args: argparse.Namespace) -> int:
    where = atlas_home() / "pgdata"
    if stop_embedded():
        print(f"Stopped the embedded PostgreSQL in {where}.", file=sys.stderr)
    else:
        print(f"The embedded PostgreSQL in {where} is not running.", file=sys.stderr)
    return 0


def _server(args: argparse.Namespace) -> int:
    server = embedded_server()
    if server is None:
        print("not running")
        return 1
    print(f"running pid={server.pid} pgdata={server.pgdata} url={server.url()}")
    return 0


def _recover(args: argparse.Namespace) -> int:
    age = parse_duration(args.older_than, flag="--older-than")
    with SessionWriter.open(
        args.database_url, config_path=args.config, min_connections=1, max_connections=1
    ) as writer:
        ids = writer.recover_stale_sessions(age, dry_run=args.dry_run)
    verb = "Would mark" if args.dry_run else "Marked"
    print(f"{verb} {len(ids)} session(s) as failed (interrupted): {ids}", file=sys.stderr)
    for session_id in ids:
        print(session_id)
    return 0


def _seed(args: argparse.Namespace) -> int:
    if not 1 <= args.sessions <= MAX_SEED_SESSIONS:
        raise InvalidFilter(
            f"--sessions must be between 1 and {MAX_SEED_SESSIONS:,} per call, not {args.sessions}."
        )
    if not 0 <= args.legacy_fraction <= 1:
        raise InvalidFilter("--legacy-fraction must be between 0 and 1.")
    settings = _settings(args)
    sdk = args.shape == "atlas-sdk"
    if not sdk:
        with SessionWriter.open(settings.url, min_connections=1, max_connections=1):
            pass  # applies pending migrations, as any writer does
    with connect(settings) as conn, translate_errors(settings.display_url):
        if sdk:
            # As atlas-sdk left it: its own tables where there are none, no migrations.
            create_atlas_sdk_schema(conn)
        report = seed_sessions(
            conn,
            args.sessions,
            seed=args.seed,
            legacy_fraction=args.legacy_fraction,
            shape=args.shape,
        )
    print(
        f"Wrote {report.sessions:,} synthetic sessions ({report.steps:,} steps, "
        f"{report.events:,} events, {report.legacy_sessions:,} legacy-shaped) "
        f"to {settings.display_url} in {report.seconds:.1f} s.",
        file=sys.stderr,
    )
    if sdk:
        print("The rows are as atlas-sdk writes them: run `arc-atlas db upgrade` next.",
              file=sys.stderr)  # fmt: skip
    return 0


def register(
    commands: Any, add_connection_options: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Add the ``db`` command group to the top-level subparsers."""
    group = commands.add_parser("db", help="manage the database: upgrade, status, url, stop, ...")
    sub = group.add_subparsers(dest="db_command", metavar="DB_COMMAND", required=True)

    def command(name: str, handler: Callable[[argparse.Namespace], int], help: str) -> Any:
        parser = sub.add_parser(name, help=help, description=help)
        add_connection_options(parser)
        parser.set_defaults(handler=handler)
        return parser

    upgrade = command("upgrade", _upgrade, "apply pending schema migrations")
    upgrade.add_argument("--dry-run", action="store_true", help="list pending migrations only")
    upgrade.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"rows per transaction when rewriting stored rows (default {DEFAULT_BATCH_SIZE})",
    )
    command("status", _status, "show the server, schema version and table sizes")
    url = command("url", _url, "print the database URL in use (password masked)")
    url.add_argument("--show-password", action="store_true", help="print the password too")
    url.add_argument("--source", action="store_true", help="also say where the URL came from")
    command("stop", _stop, "stop the embedded PostgreSQL server")
    command("server", _server, "say whether the embedded PostgreSQL server is running")
    recover = command(
        "recover", _recover, "mark sessions left running by a killed process as failed"
    )
    recover.add_argument(
        "--older-than",
        required=True,
        metavar="DURATION",
        help="idle time, e.g. 30m, 2h, 1d: a session whose start, newest event or heartbeat "
        "is newer is left alone",
    )
    recover.add_argument("--dry-run", action="store_true", help="list them, change nothing")
    add_partition_commands(command, _settings)
    seed = command("seed-demo", _seed, "write synthetic sessions (for demos, tests, benchmarks)")
    seed.add_argument(
        "--sessions", type=int, default=100, metavar="N", help="how many (default 100)"
    )
    seed.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    seed.add_argument(
        "--legacy-fraction",
        type=float,
        default=0.0,
        metavar="F",
        help="share of sessions written in older Atlas shapes (0-1)",
    )
    seed.add_argument(
        "--shape",
        choices=SHAPES,
        default=SHAPES[0],
        help="row shape: arc-atlas's own (default) or atlas-sdk 0.1.16's, nested events "
        "included, in its own tables (then run `arc-atlas db upgrade`)",
    )
