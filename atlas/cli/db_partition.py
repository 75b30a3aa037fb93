"""``arc-atlas db partition-events`` and ``db retention``: trajectory_events partitioned by time.

The commands print what they did on stdout, one line per partition and a
summary; the library (:mod:`atlas.storage`) does the work. See
docs/partitioning.md.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from psycopg import sql

from atlas.errors import InvalidFilter
from atlas.storage import (
    PARTITION_INTERVAL,
    PARTITION_INTERVALS,
    PARTITION_LOCK_TIMEOUT,
    PARTITIONS_AHEAD,
    ConnectionSettings,
    Conversion,
    EventsLayout,
    Retention,
    TopUp,
    apply_retention,
    connect,
    events_layout,
    partition_events,
    retention_cutoff,
    translate_errors,
)

__all__ = [
    "add_partition_commands",
    "events_line",
    "events_status",
    "parse_age",
    "top_up_lines",
]

SettingsOf = Callable[[argparse.Namespace], ConnectionSettings]

_AGE = re.compile(r"(\d+)(y|mo|w|d)", re.IGNORECASE)
# Longest age accepted: beyond it the cutoff leaves PostgreSQL's date range.
MAX_AGE_DAYS = 36500


def parse_age(text: str, *, flag: str = "--events-older-than") -> tuple[int, int]:
    """Read ``180d``, ``26w``, ``6mo``, ``1y`` (or a sum, ``1y6mo``) as (months, days).

    Years and months are calendar months (``6mo`` is six months before now,
    whatever their lengths), weeks are seven days. The age must be at least
    one day and at most 36,500 days. ``m`` alone is refused, since it could
    mean minutes or months. Raises :class:`InvalidFilter` naming ``flag``.
    """
    cleaned = text.strip().replace(" ", "").lower()
    parts = _AGE.findall(cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        hint = " (m is ambiguous: write 6mo for six months)" if cleaned.endswith("m") else ""
        raise InvalidFilter(
            f"{flag}: cannot read age {text!r}{hint}: use a whole number of days, weeks, "
            "months or years, such as 180d, 26w, 6mo or 1y."
        )
    months = sum(int(n) * (12 if u == "y" else 1) for n, u in parts if u in ("y", "mo"))
    days = sum(int(n) * (7 if u == "w" else 1) for n, u in parts if u in ("w", "d"))
    longest = months * 31 + days  # a month counted long, so the bound is never exceeded
    if not 1 <= longest <= MAX_AGE_DAYS:
        raise InvalidFilter(
            f"{flag} must be at least 1d and at most {MAX_AGE_DAYS}d; got {text!r}."
        )
    return months, days


def _lock_timeout(value: float) -> float:
    if not 0 < value <= 3600:
        raise InvalidFilter(
            f"--lock-timeout must be more than 0 and at most 3600 s; got {value:g}."
        )
    return value


def _when(moment: datetime | None) -> str:
    return moment.isoformat(" ", "seconds") if moment else "-"


def top_up_lines(top: TopUp) -> list[str]:
    """What a top-up of partitions ahead did, one line each (empty when it did nothing)."""
    lines = [f"created partition {name}" for name in top.created]
    if top.moved:
        lines.append(f"moved {top.moved:,} row(s) out of the DEFAULT partition into them")
    if top.busy:
        lines.append(
            f"could not create {', '.join(top.busy)} now (the DEFAULT partition stayed locked "
            "by a long read): rows go to DEFAULT meanwhile; the next run creates them"
        )
    return lines


def events_line(layout: EventsLayout, default_rows: int | None) -> str:
    """The ``Events:`` line of ``db status``."""
    if not layout.partitioned:
        return "not partitioned (opt in: arc-atlas db partition-events)"
    ranges = [p for p in layout.partitions if not p.default]
    how = f"by {layout.interval}" if layout.interval else "(not by arc-atlas)"
    ready = layout.ready_until(datetime.now(timezone.utc))
    text = f"partitioned {how}, {len(ranges)} partition(s), " + (
        f"ready until {_when(ready)}"
        if ready
        else "none for the current time (rows go to DEFAULT: run db partition-events)"
    )
    if layout.ahead is not None:
        text += f", kept {layout.ahead} ahead"
    if default_rows is not None:
        text += f"; DEFAULT partition: {default_rows:,} row(s)"
    return text


def events_status(conn: Any) -> str:
    """The ``Events:`` line of ``db status`` for the database ``conn`` is connected to."""
    layout = events_layout(conn)
    default = layout.default
    rows = None
    if default is not None:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(default.name))
        ).fetchone()
        rows = int(row[0])
    return events_line(layout, rows)


def _partition(args: argparse.Namespace, settings_of: SettingsOf) -> int:
    lock_timeout = _lock_timeout(args.lock_timeout)
    settings = settings_of(args)
    with connect(settings) as conn, translate_errors(settings.display_url):
        done = partition_events(
            conn,
            interval=args.interval,
            ahead=args.ahead,
            lock_timeout=lock_timeout,
            target=settings.display_url,
        )
    for line in _conversion_lines(done, args.interval):
        print(line)
    return 0


def _conversion_lines(done: Conversion, asked: str) -> list[str]:
    if done.already:
        how = f"by {done.interval}" if done.interval else "(not by arc-atlas)"
        lines = [f"trajectory_events is already partitioned {how}: nothing to convert."]
        if done.interval and asked != done.interval:
            lines.append(
                f"--interval {asked} is ignored: the interval is chosen once, at conversion."
            )
        return lines + top_up_lines(TopUp(done.partitions, done.moved_from_default, done.busy))
    lines = [f"created partition {name}" for name in done.partitions]
    lines.append(
        f"Partitioned trajectory_events by {done.interval} in {done.seconds:.1f} s: "
        f"{done.rows:,} row(s) copied, count and checksum {done.checksum} match the old "
        f"table; key {done.key}; {len(done.partitions)} partition(s) including DEFAULT."
    )
    return lines


def _retention(args: argparse.Namespace, settings_of: SettingsOf) -> int:
    months, days = parse_age(args.events_older_than)
    lock_timeout = _lock_timeout(args.lock_timeout)
    settings = settings_of(args)
    with connect(settings) as conn, translate_errors(settings.display_url):
        cutoff = retention_cutoff(conn, months=months, days=days)
        done = apply_retention(
            conn, cutoff, drop=args.drop, dry_run=args.dry_run, lock_timeout=lock_timeout
        )
    for line in _retention_lines(done):
        print(line)
    return 0


def _retention_lines(done: Retention) -> list[str]:
    verb = {"detach": "detach", "drop": "drop"}[done.action]
    past = {"detach": "detached", "drop": "dropped"}[done.action]
    prefix = f"would {verb}" if done.dry_run else past
    lines = [
        f"{prefix} {p.name} ({_when(p.lower)} to {_when(p.upper)}, {rows:,} row(s))"
        for p, rows in done.partitions
    ]
    cutoff = _when(done.cutoff)
    if not done.partitions:
        lines.append(f"No partition lies entirely before {cutoff}: nothing to {verb}.")
    else:
        head = f"Would {verb}" if done.dry_run else past.capitalize()
        lines.append(
            f"{head} {len(done.partitions)} partition(s), {done.rows:,} row(s), older than "
            f"{cutoff}."
        )
        if done.action == "detach":
            lines.append(
                "Detached partitions stay in the database as tables of their own, out of "
                "every read and export: archive them (pg_dump -t NAME) and DROP TABLE them, "
                "or ATTACH them again (docs/partitioning.md)."
            )
    if done.default_rows_before:
        lines.append(
            f"The DEFAULT partition holds {done.default_rows_before:,} row(s) older than the "
            "cutoff: retention takes whole partitions, so they stay."
        )
    return lines + top_up_lines(done.top_up)


def add_partition_commands(command: Callable[..., Any], settings_of: SettingsOf) -> None:
    """Add ``partition-events`` and ``retention`` to the ``db`` group (``command`` adds one)."""

    def lock_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--lock-timeout",
            type=float,
            default=PARTITION_LOCK_TIMEOUT,
            metavar="SECONDS",
            help="give up, changing nothing, when a lock is not granted in time "
            f"(default {PARTITION_LOCK_TIMEOUT:g})",
        )

    partition = command(
        "partition-events",
        lambda args: _partition(args, settings_of),
        "partition trajectory_events by created_at (opt-in; once; re-run to add partitions)",
    )
    partition.add_argument(
        "--interval",
        choices=PARTITION_INTERVALS,
        default=PARTITION_INTERVAL,
        help=f"one partition per day, week or month (default {PARTITION_INTERVAL})",
    )
    partition.add_argument(
        "--ahead",
        type=int,
        default=PARTITIONS_AHEAD,
        metavar="N",
        help=f"partitions kept ready beyond the current one (default {PARTITIONS_AHEAD})",
    )
    lock_option(partition)
    retention = command(
        "retention",
        lambda args: _retention(args, settings_of),
        "detach or drop the partitions of trajectory_events older than an age",
    )
    retention.add_argument(
        "--events-older-than",
        required=True,
        metavar="AGE",
        help="180d, 26w, 6mo or 1y: partitions that end before now minus AGE",
    )
    action = retention.add_mutually_exclusive_group()
    action.add_argument(
        "--detach",
        dest="drop",
        action="store_false",
        default=False,
        help="detach them: they stay as tables of their own (the default)",
    )
    action.add_argument(
        "--drop",
        dest="drop",
        action="store_true",
        default=False,
        help="drop them: their rows are deleted",
    )
    retention.add_argument("--dry-run", action="store_true", help="list them, change nothing")
    lock_option(retention)
