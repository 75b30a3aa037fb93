"""``arc-atlas export`` (also plain ``arc-atlas --output FILE ...``): sessions to JSONL."""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from atlas.config import AtlasConfig, ignored_sections_message, load_config_sections
from atlas.errors import InvalidFilter, MissingExtra, UsageError
from atlas.training_data import (
    ExportProgress,
    ExportSummary,
    Redactor,
    check_compression_level,
    count_hidden_by_review_status,
    export_jsonl,
    gate_hint,
)

__all__ = ["register", "run_export"]

EXIT_NOTHING = 1


def _progress_printer(quiet: bool) -> tuple[Callable[[ExportProgress], None] | None, Any]:
    """A progress callback: a bar on a terminal, a log line every 5 s otherwise."""
    if quiet:
        return None, None
    if sys.stderr.isatty():
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            transient=True,
        )
        task = bar.add_task("exporting")
        bar.start()

        def update(p: ExportProgress) -> None:
            rate = p.sessions / p.seconds if p.seconds else 0.0
            bar.update(
                task,
                description=f"{p.sessions:,} sessions, {p.steps:,} steps, "
                f"{p.bytes_written / 1e6:,.1f} MB, {rate:,.0f} sessions/s",
            )

        return update, bar
    last = [time.monotonic()]

    def log(p: ExportProgress) -> None:
        now = time.monotonic()
        if now - last[0] >= 5.0:
            last[0] = now
            rate = p.sessions / p.seconds if p.seconds else 0.0
            print(
                f"exported {p.sessions:,} sessions ({p.steps:,} steps), {rate:,.0f} sessions/s",
                file=sys.stderr,
            )

    return log, None


def _nothing_message(summary: ExportSummary, hidden: dict[str, int]) -> str:
    """Why nothing was written; ``hidden`` counts what the gate hid, per review status."""
    where = "stdout" if summary.output == "-" else summary.output
    if summary.hidden_by_gate:
        # The per-status counts come from a second look; should they disagree
        # (sessions written meanwhile), the way that always works is named.
        how = (
            gate_hint(summary.gate, hidden, cli=True)
            if hidden
            else "To include them, pass --include-all-statuses."
        )
        return (
            f"No sessions exported; nothing was written to {where}. The review gate "
            f"({summary.gate.describe()} only, from {summary.gate.source}) hid "
            f"{summary.hidden_by_gate:,} matching session(s): {how}"
        )
    return (
        f"No sessions matched the filters; nothing was written to {where}. Check that the "
        "storage block is enabled and that runs completed, or loosen the filters."
    )


# Library parameter -> the flag that sets it, so an InvalidFilter names the flag.
PARAMETER_FLAGS: dict[str, str] = {
    "session_ids": "--session-id",
    "limit": "--limit",
    "offset": "--offset",
    "status_filters": "--status",
    "review_status_filters": "--include-status",
    "include_all_review_statuses": "--include-all-statuses",
    "trajectory_event_limit": "--trajectory-event-limit",
    "batch_size": "--batch-size",
    "min_reward": "--min-reward",
    "max_reward": "--max-reward",
    "learning_key": "--learning-key",
    "created_after": "--created-after",
    "created_before": "--created-before",
    "task_contains": "--task-contains",
    "shard": "--shard",
    "snapshot": "--snapshot",
    "state": "--state",
    "compression_level": "--compression-level",
}
# A quoted value (left as it is; an apostrophe inside a word, as in
# "PostgreSQL's", opens none) or a parameter name (replaced by its flag).
_NAMES = re.compile(
    r"""((?<!\w)'[^']*'(?!\w)|(?<!\w)"[^"]*"(?!\w))|\b("""
    + "|".join(sorted(PARAMETER_FLAGS, key=len, reverse=True))
    + r""")\b"""
)
# Flags that only some formats take: dest -> the formats that take it.
FORMAT_FLAGS: dict[str, tuple[str, ...]] = {
    "events_in_metadata": ("jsonl",),
    "snapshot": ("jsonl",),
    "state": ("jsonl",),
    "compression_level": ("jsonl", "grpo", "dpo"),
    "records": ("parquet",),
    "group_by": ("grpo", "dpo"),
    "min_group_size": ("grpo",),
    "min_margin": ("dpo",),
}


def flag_message(exc: InvalidFilter) -> InvalidFilter:
    """``exc`` with the library's parameter names replaced by the flags that set them.

    ``min_reward must be a finite number`` becomes ``--min-reward must be a
    finite number``; quoted values the message echoes are left alone.
    """
    text = _NAMES.sub(lambda m: m[1] or PARAMETER_FLAGS[m[2]], str(exc))
    return InvalidFilter(text, parameter=exc.parameter)


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _check_format_flags(args: argparse.Namespace) -> None:
    """Refuse a flag the chosen ``--format`` would ignore (their defaults are ``None``)."""
    for dest, formats in FORMAT_FLAGS.items():
        value = getattr(args, dest)
        if value not in (None, False) and args.format not in formats:
            names = f"{', '.join(formats[:-1])} and {formats[-1]}" if formats[1:] else formats[0]
            raise UsageError(
                f"{_flag(dest)} does not apply to --format {args.format}: it is for {names} only."
            )
    # Checked before any file or connection is opened, by the library's rule.
    check_compression_level(args.output, args.compression_level)


def _given(**options: Any) -> dict[str, Any]:
    """The options that were given, so the library's own defaults apply to the rest."""
    return {name: value for name, value in options.items() if value is not None}


def _exporter(args: argparse.Namespace) -> tuple[Callable[..., ExportSummary], dict[str, Any]]:
    """The library function for ``--format`` and its format-specific arguments."""
    if args.format == "jsonl":
        return export_jsonl, _given(
            compression_level=args.compression_level,
            events_in_metadata=args.events_in_metadata,
            snapshot=args.snapshot,
            redact=_redactor(args),
            state=args.state,
            manifest=_manifest_wanted(args),
        )
    try:
        from trainers import exports

        if args.format == "parquet":
            # Imported by the writer only once sessions were read: check now.
            import pyarrow.parquet  # noqa: F401
    except ImportError as exc:  # pyarrow/datasets are the `train` extra
        module = (exc.name or "pyarrow").split(".")[0]
        raise MissingExtra.for_module(module, needed_for=f"--format {args.format}") from None
    common = _given(redact=_redactor(args), manifest=_manifest_wanted(args))
    if args.format == "parquet":
        return exports.export_parquet, {**common, **_given(kind=args.records)}
    if args.format == "grpo":
        return exports.export_grpo, {
            **common,
            **_given(
                by=args.group_by,
                min_group_size=args.min_group_size,
                compression_level=args.compression_level,
            ),
        }
    return exports.export_dpo, {
        **common,
        **_given(
            by=args.group_by,
            min_margin=args.min_margin,
            compression_level=args.compression_level,
        ),
    }


def _manifest_wanted(args: argparse.Namespace) -> bool:
    """A manifest beside every file unless ``--no-manifest`` (none for stdout)."""
    return args.no_manifest is None and args.output != "-"


def _redactor(args: argparse.Namespace) -> Redactor | None:
    """The ``--redact`` / ``--redact-config FILE`` redactor (a bad file: ConfigError, rc 2)."""
    if args.redact_config is not None:
        return Redactor.from_config(args.redact_config)
    return Redactor.builtin() if args.redact else None


def _redaction_lines(report: dict[str, dict[str, int]], quiet: bool) -> list[str]:
    """The summary's redaction lines: the total, then (unless quiet) one line per rule."""
    per_rule = {rule: sum(paths.values()) for rule, paths in report.items()}
    lines = [f"Redacted {sum(per_rule.values()):,} value(s)."]
    if not quiet:
        for rule, count in sorted(per_rule.items(), key=lambda item: (-item[1], item[0])):
            fields = ", ".join(
                f"{path or '(record)'} {n:,}"
                for path, n in sorted(report[rule].items(), key=lambda item: -item[1])
            )
            lines.append(f"  {rule}: {count:,} ({fields})")
    return lines


def reader_config(path: str | None) -> AtlasConfig | None:
    """The ``--config`` file as readers see it: storage and runtime_safety only.

    Sections arc-atlas does not know (a complete atlas-sdk config has
    ``student``, ``prompt_rewrite``, ...) are named in one ``Warning:`` line.
    """
    if path is None:
        return None
    config, ignored = load_config_sections(path)
    if ignored:
        print(f"Warning: {ignored_sections_message(path, ignored)}", file=sys.stderr)
    return config


def run_export(args: argparse.Namespace) -> int:
    """Handler of the export command: an :class:`InvalidFilter` names the flag at fault."""
    try:
        return _run_export(args)
    except InvalidFilter as exc:
        raise flag_message(exc) from None


def _run_export(args: argparse.Namespace) -> int:
    if args.include_status and args.include_all_statuses:
        raise UsageError("--include-status and --include-all-statuses cannot be combined.")
    _check_format_flags(args)
    export, extra = _exporter(args)
    config = reader_config(args.config)
    # The selection, shared by the export and the review-gate hint's count.
    selection: dict[str, Any] = {
        "session_ids": args.session_id,
        "status_filters": args.status,
        "review_status_filters": args.include_status,
        "include_all_review_statuses": args.include_all_statuses,
        "min_reward": args.min_reward,
        "max_reward": args.max_reward,
        "learning_key": args.learning_key,
        "created_after": args.created_after,
        "created_before": args.created_before,
        "task_contains": args.task_contains,
        "shard": args.shard,
    }
    on_progress, bar = _progress_printer(args.quiet)
    try:
        summary = export(
            args.output,
            args.database_url,
            config=config,
            batch_size=args.batch_size,
            on_progress=on_progress,
            **extra,
            **selection,
            limit=args.limit,
            offset=args.offset,
            trajectory_event_limit=args.trajectory_event_limit,
        )
    finally:
        if bar is not None:
            bar.stop()
    if summary.damaged_sessions:
        print(
            f"Warning: {summary.damaged_sessions:,} session(s) held stored values that could "
            "not be decoded; they were exported as found (see load_warnings in those records).",
            file=sys.stderr,
        )
    records = getattr(summary, "records", summary.sessions)
    if summary.sessions == 0 and getattr(args, "state", None):
        # A nightly run with nothing new did its job: exit 0, and the state moved on.
        print(
            f"No sessions became eligible since the last run (state {args.state}); "
            "nothing was written.",
            file=sys.stderr,
        )
        return 0
    if summary.sessions == 0:
        hidden = (
            count_hidden_by_review_status(args.database_url, config=config, **selection)
            if summary.hidden_by_gate
            else {}
        )
        print(_nothing_message(summary, hidden), file=sys.stderr)
        return EXIT_NOTHING
    if records == 0:
        print(
            f"Read {summary.sessions:,} sessions but they formed no {args.format} "
            f"{'group' if args.format == 'grpo' else 'pair'}; nothing was written. "
            "Lower --min-group-size / --min-margin, or group by --group-by learning_key.",
            file=sys.stderr,
        )
        return EXIT_NOTHING
    if not args.quiet:
        rate = summary.sessions / summary.seconds if summary.seconds else 0.0
        where = "stdout" if summary.output == "-" else summary.output
        written = f" as {records:,} {args.format} records" if args.format != "jsonl" else ""
        print(
            f"Exported {summary.sessions:,} sessions{written} ({summary.steps:,} steps, "
            f"{summary.events:,} events; review statuses: {summary.gate.describe()}) to {where}: "
            f"{summary.bytes_written / 1e6:,.1f} MB in {summary.seconds:.1f} s "
            f"({rate:,.0f} sessions/s).",
            file=sys.stderr,
        )
    redaction = getattr(summary, "redaction", None)
    if redaction is not None:
        for line in _redaction_lines(redaction, args.quiet):
            print(line, file=sys.stderr)
    return 0


def _whole(text: str) -> int:
    """A whole number as text; its range is checked by the library, which names the flag."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _positive(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """The export flags of seeds 000 and 001, plus the query filters of the Python API."""
    parser.add_argument(
        "--output", "-o", required=True, metavar="FILE",
        help="JSONL file to write (.gz, .xz, .zst compress; - for stdout)",
    )  # fmt: skip
    parser.add_argument(
        "--session-id", type=int, action="append", metavar="ID",
        help="export only this session (repeatable)",
    )  # fmt: skip
    parser.add_argument("--limit", type=_whole, metavar="N", help="at most N sessions")
    parser.add_argument(
        "--offset", type=_whole, default=0, metavar="N",
        help="skip the N newest matching sessions",
    )  # fmt: skip
    parser.add_argument(
        "--status", action="append", metavar="STATUS",
        help="runtime status: succeeded, failed, running, in any case (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--include-status", action="append", metavar="REVIEW_STATUS",
        help="review status to export: approved, pending, quarantined or all, in any case "
        "(repeatable; replaces the default: ATLAS_REVIEW_DEFAULT_EXPORT_STATUSES, "
        "runtime_safety.review.default_export_statuses, else approved)",
    )  # fmt: skip
    parser.add_argument(
        "--include-all-statuses", action="store_true",
        help="export every review status (exploration only)",
    )  # fmt: skip
    parser.add_argument(
        "--trajectory-event-limit", "--trajectory-limit", dest="trajectory_event_limit",
        type=_whole, metavar="N", help="keep the first N trajectory events per session",
    )  # fmt: skip
    parser.add_argument(
        "--events-in-metadata", action="store_true", default=None,
        help="also write each session's events into session_metadata.trajectory_events "
        "(as atlas-sdk did; doubles the events' size)",
    )  # fmt: skip
    parser.add_argument(
        "--batch-size", type=_whole, default=50, metavar="N",
        help="sessions read per page (default 50: small pages keep the parallel readers busy)",
    )  # fmt: skip
    parser.add_argument("--min-reward", type=float, metavar="X", help="session reward >= X")
    parser.add_argument("--max-reward", type=float, metavar="X", help="session reward <= X")
    parser.add_argument(
        "--learning-key", action="append", metavar="KEY", help="learning key (repeatable)"
    )
    parser.add_argument(
        "--created-after", metavar="WHEN", help="created at or after (ISO 8601, e.g. 2026-01-31)"
    )
    parser.add_argument("--created-before", metavar="WHEN", help="created before (ISO 8601)")
    parser.add_argument(
        "--task-contains", metavar="TEXT", help="the task contains TEXT (ignoring case)"
    )
    parser.add_argument(
        "--shard", metavar="I/N",
        help="only the I-th of N disjoint parts (split by a hash of the session id; 1 <= I <= N)",
    )  # fmt: skip
    parser.add_argument(
        "--no-manifest", action="store_true", default=None,
        help="do not write OUTPUT.manifest.json beside the file (versions, filters, gate, "
        "snapshot, counts, hashes; see arc-atlas verify)",
    )  # fmt: skip
    parser.add_argument(
        "--state", metavar="FILE",
        help="incremental: export only the sessions that became eligible since the last run "
        "with this state file (all on the first run); jsonl only",
    )  # fmt: skip
    parser.add_argument(
        "--snapshot", metavar="ID",
        help="read in this exported snapshot (SELECT pg_export_snapshot() in a transaction "
        "kept open), so several exports see the same database; jsonl only",
    )  # fmt: skip
    parser.add_argument(
        "--redact", action="store_true", default=None,
        help="replace secrets and personal data (keys, tokens, passwords in URLs, emails, "
        "phone, card numbers, IP addresses) with consistent placeholders",
    )  # fmt: skip
    parser.add_argument(
        "--redact-config", metavar="FILE",
        help="YAML file adding redaction rules or disabling built-in ones (implies --redact; "
        "see docs/redaction.md)",
    )  # fmt: skip
    parser.add_argument(
        "--compression-level", type=int, metavar="N",
        help="gzip/xz/zstd level: 0-9/0-9/1-22 (default 6/3/3); only for a .gz, .xz or .zst "
        "--output, and not with --format parquet",
    )  # fmt: skip
    parser.add_argument(
        "--quiet", "-q", action="store_true", help="print nothing but warnings and errors"
    )
    parser.add_argument(
        "--format", choices=("jsonl", "parquet", "grpo", "dpo"), default="jsonl",
        help="jsonl: one session per line (default); parquet: columnar records; grpo: "
        "groups with group-relative advantages; dpo: preference pairs",
    )  # fmt: skip
    parser.add_argument(
        "--records", choices=("rl", "flat", "sessions"),
        help="parquet: which records, one per step (rl, flat) or per session (default rl)",
    )  # fmt: skip
    parser.add_argument(
        "--group-by", choices=("task", "learning_key"),
        help="grpo/dpo: sessions that compete (default task)",
    )  # fmt: skip
    parser.add_argument(
        "--min-group-size", type=_positive, metavar="N",
        help="grpo: smallest group to write (default 2)",
    )  # fmt: skip
    parser.add_argument(
        "--min-margin", type=float, metavar="X",
        help="dpo: minimum reward difference between chosen and rejected (default 0.1)",
    )  # fmt: skip


def register(
    commands: Any, add_connection_options: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Add the ``export`` command."""
    parser = commands.add_parser(
        "export",
        help="export sessions to JSONL (the default command)",
        description="Export sessions to JSONL, one AtlasSessionTrace per line. "
        "Only approved sessions unless told otherwise.",
    )
    add_connection_options(parser)
    add_export_arguments(parser)
    parser.set_defaults(handler=run_export)
