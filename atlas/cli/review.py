"""``arc-atlas review``: the review queue, and approving or quarantining sessions."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from atlas.cli.export_cmd import reader_config
from atlas.config.models import parse_review_statuses
from atlas.storage.connection import connect, translate_errors
from atlas.storage.database import prepare, resolve_settings
from atlas.training_data.filters import SessionFilters
from atlas.training_data.review import ReviewRow, list_sessions_for_review, review_sessions

__all__ = ["register"]


def _table(rows: list[ReviewRow], title: str) -> Table:
    table = Table(
        "id", "created", "status", "review", "reward", "drift", "task", "notes", title=title
    )
    for row in rows:
        reward = "-" if row.reward is None else f"{row.reward:.2f}"
        if row.reward is not None and row.uncertainty is not None:
            reward += f" ± {row.uncertainty:.2f}"
        task = row.task if len(row.task) <= 60 else row.task[:57] + "..."
        table.add_row(
            str(row.session_id),
            # Text when the stored time is outside Python's range ("infinity").
            row.created_at
            if isinstance(row.created_at, str)
            else row.created_at.strftime("%Y-%m-%d %H:%M"),
            row.status,
            row.review_status,
            reward,
            "ALERT" if row.drift_alert else "",
            task,
            row.notes or "",
        )
    return table


def _connect(args: argparse.Namespace) -> Any:
    settings = resolve_settings(args.database_url, config=reader_config(args.config))
    prepare(settings, migrate=False)
    return settings


def _statuses(values: list[str] | None, flag: str) -> tuple[str, ...] | None:
    """Review statuses of a flag, trimmed and lowercased; None = all (``all``, ``*``)."""
    return parse_review_statuses(values, flag) if values else None


def _list(args: argparse.Namespace) -> int:
    statuses = _statuses(args.status or ["pending"], "--status")
    settings = _connect(args)
    with connect(settings) as conn, translate_errors(settings.display_url):
        rows = list_sessions_for_review(conn, statuses, args.limit)
    title = f"{len(rows)} session(s), review status: {', '.join(statuses or ['any'])}"
    Console(file=sys.stdout, width=max(Console().width, 140)).print(_table(rows, title))
    return 0


def _change(new_status: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        filters = SessionFilters.build(
            min_reward=args.min_reward,
            max_reward=args.max_reward,
            learning_key=args.learning_key,
            status_filters=args.status,
            created_after=args.created_after,
            created_before=args.created_before,
        )
        settings = _connect(args)
        with connect(settings) as conn, translate_errors(settings.display_url):
            result = review_sessions(
                conn,
                new_status,
                session_ids=args.ids or None,
                filters=filters,
                from_statuses=_statuses(args.from_status, "--from-status"),
                note=args.note,
                reviewer=args.reviewer,
                dry_run=args.dry_run,
            )
        if args.dry_run:
            title = f"would set {len(result.matched)} session(s) to {new_status} (dry run)"
            Console(file=sys.stdout, width=max(Console().width, 140)).print(
                _table(result.matched, title)
            )
        else:
            print(f"Set {result.changed} session(s) to {new_status}.", file=sys.stderr)
        if result.missing:
            missing = ", ".join(str(i) for i in result.missing)
            print(f"Error: no session with id {missing} in the database.", file=sys.stderr)
            return 1
        return 0

    return handler


def register(
    commands: Any, add_connection_options: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Add the ``review`` command group."""
    group = commands.add_parser("review", help="list, approve and quarantine sessions")
    sub = group.add_subparsers(dest="review_command", metavar="REVIEW_COMMAND", required=True)
    listing = sub.add_parser("sessions", help="show sessions awaiting review (pending by default)")
    add_connection_options(listing)
    listing.add_argument(
        "--status", action="append", metavar="REVIEW_STATUS",
        help="pending, approved, quarantined or all, in any case (repeatable; default pending)",
    )  # fmt: skip
    listing.add_argument("--limit", type=int, default=50, metavar="N", help="default 50")
    listing.set_defaults(handler=_list)
    for name, status in (("approve", "approved"), ("quarantine", "quarantined")):
        parser = sub.add_parser(
            name,
            help=f"mark sessions {status}, by id or by filter",
            description=f"Mark sessions {status}: list ids, or select them with filters "
            "(--dry-run shows what would change).",
        )
        add_connection_options(parser)
        parser.add_argument("ids", nargs="*", type=int, metavar="ID", help="session ids")
        parser.add_argument("--note", metavar="TEXT", help="review note stored with the change")
        parser.add_argument(
            "--reviewer", metavar="NAME", help="who is reviewing (default: the OS user)"
        )
        parser.add_argument("--dry-run", action="store_true", help="show what would change")
        parser.add_argument("--min-reward", type=float, metavar="X")
        parser.add_argument("--max-reward", type=float, metavar="X")
        parser.add_argument("--learning-key", action="append", metavar="KEY")
        parser.add_argument("--status", action="append", metavar="STATUS", help="runtime status")
        parser.add_argument(
            "--from-status", action="append", metavar="REVIEW_STATUS",
            help="only sessions currently in this review status, in any case (repeatable)",
        )  # fmt: skip
        parser.add_argument("--created-after", metavar="WHEN")
        parser.add_argument("--created-before", metavar="WHEN")
        parser.set_defaults(handler=_change(status))
