"""``arc-atlas review``: the review queue, one session in full, approving and quarantining.

``--status`` of ``review sessions`` is the review status, as atlas-sdk's
``review sessions --status`` was; the runtime status is ``--run-status``
there and on ``approve``/``quarantine`` (where ``--status`` also means the
runtime status, as on ``export``).
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from collections.abc import Callable
from typing import Any

from rich.table import Table
from rich.text import Text

from atlas.cli.export_cmd import reader_config
from atlas.cli.review_show import console, render_session
from atlas.config import REVIEW_STATUSES, parse_review_statuses
from atlas.errors import InvalidFilter, SessionNotFound, TraceDecodeWarning
from atlas.storage import SESSION_STATUSES, connect, prepare, resolve_settings, translate_errors
from atlas.training_data import (
    ReviewRow,
    SessionFilters,
    check_row_count,
    get_session_by_id,
    list_sessions_for_review,
    review_sessions,
)

__all__ = ["register"]

EXIT_NOT_FOUND = 1

# The filters both review commands take: SessionFilters.build parameter -> flag.
_FILTER_FLAGS = {
    "min_reward": "--min-reward",
    "max_reward": "--max-reward",
    "learning_key": "--learning-key",
    "status_filters": "--run-status",
    "created_after": "--created-after",
    "created_before": "--created-before",
    "session_ids": "--session-id",
    "task_contains": "--task-contains",
}
# How the library names a session id given as a positional ID.
_ID_FLAGS = {"session_id": "ID", "session_ids": "ID"}


def _table(rows: list[ReviewRow], title: str) -> Table:
    table = Table(
        "id", "created", "status", "review", "reward", "drift", "task", "notes", title=title
    )
    for row in rows:
        reward = "-" if row.reward is None else f"{row.reward:.2f}"
        if row.reward is not None and row.uncertainty is not None:
            reward += f" ± {row.uncertainty:.2f}"
        task = row.task if len(row.task) <= 60 else row.task[:57] + "..."
        # Text() cells: stored text is shown as written, never read as rich markup.
        table.add_row(
            str(row.session_id),
            # Text when the stored time is outside Python's range ("infinity").
            Text(
                row.created_at
                if isinstance(row.created_at, str)
                else row.created_at.strftime("%Y-%m-%d %H:%M")
            ),
            Text(row.status),
            Text(row.review_status),
            reward,
            "ALERT" if row.drift_alert else "",
            Text(task),
            Text(row.notes or ""),
        )
    return table


def _connect(args: argparse.Namespace) -> Any:
    settings = resolve_settings(args.database_url, config=reader_config(args.config))
    prepare(settings, migrate=False)
    return settings


def _statuses(values: list[str] | None, flag: str) -> tuple[str, ...] | None:
    """Review statuses of a flag, checked (an unknown one names the flag); None = all."""
    return parse_review_statuses(values, flag) if values is not None else None


def _named(exc: InvalidFilter, flags: dict[str, str], *, flag: str | None = None) -> InvalidFilter:
    """``exc`` with the library's parameter names replaced by the CLI's flags.

    When the message names no parameter, ``flag`` (if given) goes in front,
    so the line still says which flag to fix.
    """
    said = str(exc)
    text = re.sub(r"\b\w+\b", lambda m: flags.get(m[0], m[0]), said)
    return InvalidFilter(f"{flag}: {text}" if flag and text == said else text)


def _filters(args: argparse.Namespace) -> SessionFilters:
    """The filter flags, validated; an error names the flag (or flags) that caused it."""
    given = {name: getattr(args, name) for name in _FILTER_FLAGS}
    for name, value in given.items():
        try:
            SessionFilters.build(**{name: value})
        except InvalidFilter as exc:
            raise _named(exc, _FILTER_FLAGS, flag=_FILTER_FLAGS[name]) from None
    try:
        return SessionFilters.build(**given)
    except InvalidFilter as exc:  # a pair that conflicts (min above max): name both
        raise _named(exc, _FILTER_FLAGS) from None


def _list(args: argparse.Namespace) -> int:
    statuses = _statuses(args.status or ["pending"], "--status")
    limit = check_row_count(args.limit, "--limit")
    offset = check_row_count(args.offset, "--offset")
    filters = _filters(args)
    settings = _connect(args)
    with connect(settings) as conn, translate_errors(settings.display_url):
        rows = list_sessions_for_review(conn, statuses, limit, offset=offset, filters=filters)
    title = f"{len(rows)} session(s), review status: {', '.join(statuses or ['any'])}"
    if offset:
        title += f", from row {offset + 1}"
    console().print(_table(rows, title))
    return 0


def _show(args: argparse.Namespace) -> int:
    """``review show ID``; a session that is not there is exit 1, like a review of unknown ids."""
    try:
        with warnings.catch_warnings():
            # The page itself lists what could not be decoded (load_warnings).
            warnings.simplefilter("ignore", TraceDecodeWarning)
            trace = get_session_by_id(
                args.database_url, args.session_id_arg, config=reader_config(args.config)
            )
    except SessionNotFound as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except InvalidFilter as exc:
        raise _named(exc, _ID_FLAGS) from None
    out = console()
    for section in render_session(trace):
        out.print(section)
    return 0


def _change(new_status: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        from_statuses = args.from_status
        _statuses(from_statuses, "--from-status")
        filters = _filters(args)
        settings = _connect(args)
        with connect(settings) as conn, translate_errors(settings.display_url):
            try:
                result = review_sessions(
                    conn,
                    new_status,
                    session_ids=args.ids or None,
                    filters=filters,
                    from_statuses=from_statuses,
                    note=args.note,
                    reviewer=args.reviewer,
                    dry_run=args.dry_run,
                )
            except InvalidFilter as exc:
                raise _named(exc, {**_ID_FLAGS, "from_statuses": "--from-status"}) from None
        if args.dry_run:
            title = f"would set {len(result.matched)} session(s) to {new_status} (dry run)"
            console().print(_table(result.matched, title))
        else:
            print(f"Set {result.changed} session(s) to {new_status}.", file=sys.stderr)
        if result.unmatched:
            left = ", ".join(str(i) for i in result.unmatched)
            print(
                f"Left session(s) {left} as they are: their review status or the filters "
                "did not match.",
                file=sys.stderr,
            )
        if result.missing:
            missing = ", ".join(str(i) for i in result.missing)
            print(f"Error: no session with id {missing} in the database.", file=sys.stderr)
            return 1
        return 0

    return handler


def _filter_options(parser: argparse.ArgumentParser, *, run_status_flags: tuple[str, ...]) -> None:
    """The selection flags of ``review sessions``, ``approve`` and ``quarantine``."""
    parser.add_argument("--min-reward", type=float, metavar="X", help="reward_stats.score >= X")
    parser.add_argument("--max-reward", type=float, metavar="X", help="reward_stats.score <= X")
    parser.add_argument("--learning-key", action="append", metavar="KEY", help="(repeatable)")
    parser.add_argument(
        *run_status_flags, dest="status_filters", action="append", metavar="STATUS",
        help=f"runtime status: {', '.join(SESSION_STATUSES)}, in any case (repeatable)",
    )  # fmt: skip
    parser.add_argument("--created-after", metavar="WHEN", help="ISO 8601, inclusive")
    parser.add_argument("--created-before", metavar="WHEN", help="ISO 8601, exclusive")
    parser.add_argument("--task-contains", metavar="TEXT", help="the task contains TEXT (any case)")


def register(
    commands: Any, add_connection_options: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Add the ``review`` command group."""
    group = commands.add_parser("review", help="list, show, approve and quarantine sessions")
    sub = group.add_subparsers(dest="review_command", metavar="REVIEW_COMMAND", required=True)
    review_statuses = f"{', '.join(REVIEW_STATUSES)} or all"
    listing = sub.add_parser(
        "sessions",
        help="show sessions awaiting review (pending by default)",
        description="A page of sessions, newest first, in the given review statuses and "
        "matching the filters.",
    )
    add_connection_options(listing)
    listing.add_argument(
        "--status", action="append", metavar="REVIEW_STATUS",
        help=f"review status: {review_statuses}, in any case (repeatable; default pending)",
    )  # fmt: skip
    _filter_options(listing, run_status_flags=("--run-status",))
    listing.add_argument(
        "--session-id", dest="session_ids", action="append", type=int, metavar="ID",
        help="only this session (repeatable)",
    )  # fmt: skip
    listing.add_argument("--limit", type=int, default=50, metavar="N", help="default 50")
    listing.add_argument("--offset", type=int, default=0, metavar="N", help="rows to skip")
    listing.set_defaults(handler=_list)
    show = sub.add_parser(
        "show",
        help="one session in full: plan, steps, rewards, guidance, attempts, answer, review",
        description="Show one session, whatever its review status; exit 1 if there is none.",
    )
    add_connection_options(show)
    show.add_argument("session_id_arg", type=int, metavar="ID", help="session id")
    show.set_defaults(handler=_show)
    for name, status in (("approve", "approved"), ("quarantine", "quarantined")):
        parser = sub.add_parser(
            name,
            help=f"mark sessions {status}, by id or by filter",
            description=f"Mark sessions {status}: list ids (any review status), or select "
            "them with filters (pending sessions only, unless --from-status says otherwise; "
            "--dry-run shows what would change).",
        )
        add_connection_options(parser)
        parser.add_argument("ids", nargs="*", type=int, metavar="ID", help="session ids")
        parser.add_argument("--note", metavar="TEXT", help="review note stored with the change")
        parser.add_argument(
            "--reviewer", metavar="NAME", help="who is reviewing (default: the OS user)"
        )
        parser.add_argument("--dry-run", action="store_true", help="show what would change")
        _filter_options(parser, run_status_flags=("--run-status", "--status"))
        parser.add_argument(
            "--from-status", action="append", metavar="REVIEW_STATUS",
            help=f"change only sessions now in this review status: {review_statuses}, in any "
            "case (repeatable; default pending for a change by filter, any for ids)",
        )  # fmt: skip
        parser.set_defaults(handler=_change(status), session_ids=None)
