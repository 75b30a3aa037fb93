"""The ``arc-atlas`` command line: argument parsing and the one error boundary.

Every command returns an exit code; errors arc-atlas expects (bad config,
unreachable database, bad flag) are printed once as ``Error: ...`` on stderr
with exit code 2 and no traceback. Data goes to stdout, messages to stderr.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import NoReturn

from atlas import __version__
from atlas.cli import db, export_cmd, review, run_cmd
from atlas.errors import AtlasError

__all__ = ["EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "UsageError", "build_parser", "main"]

EXIT_OK = 0
EXIT_NOTHING = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
COMMANDS = ("export", "db", "review", "run", "quickstart", "env")
# Options (of any command) that take a value, to find the first positional word.
_VALUED = {
    "--database-url", "--config", "--output", "-o", "--session-id", "--limit", "--offset",
    "--status", "--include-status", "--trajectory-event-limit", "--trajectory-limit",
    "--batch-size", "--min-reward", "--max-reward", "--learning-key", "--created-after",
    "--created-before", "--compression-level", "--note", "--reviewer", "--from-status",
    "--format", "--records", "--group-by", "--min-group-size", "--min-margin",
    "--task", "--tasks", "--path",
}  # fmt: skip


class Terminated(BaseException):
    """SIGTERM arrived; unwinds like Ctrl-C so partial output is removed."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


class UsageError(AtlasError):
    """A command line that cannot be parsed."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`).")


def _connection_options(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    # On subcommands the defaults are SUPPRESS so a value given before the
    # subcommand (`arc-atlas --database-url X db status`) is not overwritten.
    default = None if top_level else argparse.SUPPRESS
    parser.add_argument(
        "--database-url",
        metavar="URL",
        default=default,
        help="PostgreSQL URL (default: ATLAS_DATABASE_URL, the config's storage block, "
        "or the embedded database)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=default,
        help="YAML configuration file (arc-atlas's or a complete atlas-sdk one: export and "
        "review read only its storage and runtime_safety sections)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The full ``arc-atlas`` argument parser."""
    parser = _Parser(
        prog="arc-atlas",
        description="Persist agent sessions to PostgreSQL and turn them into training data. "
        "`arc-atlas --output FILE [flags]` is short for `arc-atlas export --output FILE [flags]`.",
        epilog="Export flags: `arc-atlas export --help`.",
    )
    parser.add_argument("--version", action="version", version=f"arc-atlas {__version__}")
    _connection_options(parser, top_level=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    add_options = lambda p: _connection_options(p, top_level=False)  # noqa: E731
    export_cmd.register(commands, add_options)
    review.register(commands, add_options)
    run_cmd.register(commands, add_options)
    db.register(commands, add_options)
    return parser


def _with_default_command(args: list[str]) -> list[str]:
    """Insert ``export`` when no command word is given (``arc-atlas --output x.jsonl``)."""
    skip = False
    for token in args:
        if skip:
            skip = False
        elif token.startswith("-"):
            skip = token in _VALUED
            if token in ("-h", "--help", "--version") and not any(a in COMMANDS for a in args):
                return args
        else:
            return args if token in COMMANDS else ["export", *args]
    return ["export", *args] if args else args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (console scripts call ``sys.exit`` on it)."""
    args_list = _with_default_command(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        args = parser.parse_args(args_list)
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return EXIT_OK if not args_list else EXIT_USAGE
        return int(handler(args))
    except AtlasError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("Interrupted; no partial output was left behind.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print("Terminated; no partial output was left behind.", file=sys.stderr)
        return EXIT_TERMINATED
    finally:
        signal.signal(signal.SIGTERM, previous)


def run() -> NoReturn:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
