"""The ``arc-atlas`` command line: argument parsing and the one error boundary.

Every command returns an exit code. :func:`main` is the only place that turns
an exception into output: an error arc-atlas expects (an :class:`AtlasError`,
a full or unwritable disk, a missing optional dependency, Ctrl-C, SIGTERM) is
printed once as ``Error: ...`` on stderr with the exit code ``docs/cli.md``
documents, and no traceback. Anything else is a bug and keeps its traceback.
Data goes to stdout, messages to stderr.

This module imports only the standard library and :mod:`atlas.errors` at the
top; the commands (and psycopg, pydantic, ...) are imported inside the
boundary, so a Ctrl-C while they load is reported like any other.
"""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import NoReturn

from atlas.errors import AtlasError, MissingExtra, SessionFailed, SessionNotFound, UsageError

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_NOTHING",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "UsageError",
    "build_parser",
    "exit_code_for",
    "main",
]

EXIT_OK = 0
EXIT_NOTHING = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

# OSErrors that describe the machine, not a bug: the disk is full, the path is
# not writable or does not exist. Any other OSError keeps its traceback.
_DISK_ERRNOS = {
    errno.ENOSPC: "free some space or write elsewhere",
    errno.EDQUOT: "free some space or write elsewhere",
    errno.EFBIG: "write to another file system, or split the output",
    errno.EACCES: "choose a path you may write, or fix its permissions",
    errno.EPERM: "choose a path you may write, or fix its permissions",
    errno.EROFS: "choose a path on a writable file system",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "check the path",
    errno.EISDIR: "give a file name, not a folder",
    errno.ENAMETOOLONG: "choose a shorter path",
    errno.EEXIST: "choose another path, or remove the existing one",
    errno.EPIPE: "the reader of the output went away",
}
# What psycopg logs while it drops a second error during the first one's
# unwinding (a rollback on a connection the server closed). The first error
# reaches the boundary and is reported; these lines would only repeat it.
_DRIVER_NOISE = (
    "error ignored",
    "discarding broken connection",
    "discarding closed connection",
    "error connecting in",
    "error resetting connection",
    "rolling back returned connection",
)
_DRIVER_LOGGERS = ("psycopg", "psycopg.transaction", "psycopg.pool")


class Terminated(BaseException):
    """SIGTERM arrived; unwinds like Ctrl-C so partial output is removed."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


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
    from atlas import __version__
    from atlas.cli import db, export_cmd, review, run_cmd, ui_cmd, verify_cmd

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
    ui_cmd.register(commands, add_options)
    verify_cmd.register(commands, add_options)
    return parser


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and every subcommand's parser below it."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def _with_default_command(args: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """Insert ``export`` when no command word is given (``arc-atlas --output x.jsonl``)."""
    commands = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    # Options (of any command) that take a value, to find the first positional word.
    valued = {
        option for p in _parsers(parser) for a in p._actions if a.nargs != 0
        for option in a.option_strings
    }  # fmt: skip
    skip = False
    for token in args:
        if skip:
            skip = False
        elif token.startswith("-"):
            skip = token in valued
            if token in ("-h", "--help", "--version") and not any(a in commands for a in args):
                return args
        else:
            return args if token in commands else ["export", *args]
    return ["export", *args] if args else args


def _missing_extra(exc: ModuleNotFoundError) -> MissingExtra | None:
    """A :class:`MissingExtra` when ``exc`` is about a module of the ``train`` extra."""
    from importlib import metadata

    top = (exc.name or "").partition(".")[0].lower()
    try:
        requires = metadata.requires("arc-atlas") or []
    except metadata.PackageNotFoundError:
        return None
    for requirement in requires:
        name, _, marker = requirement.partition(";")
        if "extra ==" not in marker:
            continue
        # Distribution "hydra-core" is module "hydra": compare the first word too.
        dist = name.split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip().lower()
        if top and top in (dist.replace("-", "_"), dist.split("-")[0]):
            extra = marker.split("extra ==")[1].strip().strip("'\"")
            return MissingExtra.for_module(top, extra=extra)
    return None


def _one_line(text: str) -> str:
    """``text`` with control characters escaped (``\\n``), so an error is one line.

    A value the user typed (a URL, a path, a status) can hold a newline or a
    carriage return, and messages quote such values.
    """
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def exit_code_for(exc: BaseException) -> tuple[int, str] | None:
    """The exit code and the ``Error:`` line for an expected failure, or None for a bug."""
    known = _classify(exc)
    return None if known is None else (known[0], _one_line(known[1]))


def _classify(exc: BaseException) -> tuple[int, str] | None:
    if isinstance(exc, Terminated):
        return EXIT_TERMINATED, "Error: terminated (SIGTERM); no partial output was left behind."
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "Error: interrupted (Ctrl-C); no partial output was left behind."
    if isinstance(exc, AtlasError):
        # "Nothing matched": the session asked for is not there, or the one run failed.
        nothing = isinstance(exc, (SessionFailed, SessionNotFound))
        return (EXIT_NOTHING if nothing else EXIT_USAGE), f"Error: {exc}"
    if isinstance(exc, ModuleNotFoundError):
        extra = _missing_extra(exc)
        return None if extra is None else (EXIT_USAGE, f"Error: {extra}")
    if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:
        where = f" ({exc.filename})" if exc.filename else ""
        return EXIT_USAGE, f"Error: {exc.strerror}{where}: {_DISK_ERRNOS[exc.errno]}."
    return None


class _DropDriverNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(_DRIVER_NOISE))


@contextmanager
def _boundary_state() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated`, and psycopg's follow-up warnings are dropped."""
    noise = _DropDriverNoise()
    loggers = [logging.getLogger(name) for name in _DRIVER_LOGGERS]
    for logger in loggers:
        logger.addFilter(noise)
    # signal.signal only works in the main thread (main() may run in another, e.g. a UI).
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        yield
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        for logger in loggers:
            logger.removeFilter(noise)


def _dispatch(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args_list = _with_default_command(list(sys.argv[1:] if argv is None else argv), parser)
    # A shell cannot pass a NUL byte (argv is C strings); only a caller of
    # main() can, and every path and SQL text parameter would refuse it later.
    for token in args_list:
        if "\x00" in token:
            raise UsageError(f"Argument {token[:40]!r} contains a NUL byte (\\x00).")
    args = parser.parse_args(args_list)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_OK if not args_list else EXIT_USAGE
    return int(handler(args))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (console scripts call ``sys.exit`` on it).

    Raises only what :func:`exit_code_for` does not know: arc-atlas's bugs,
    with their traceback.
    """
    try:
        with _boundary_state():
            return _dispatch(argv)
    except BaseException as exc:
        if isinstance(exc, SystemExit):  # --help, --version: argparse already printed
            raise
        known = exit_code_for(exc)
        if known is None:
            raise
        code, line = known
        print(line, file=sys.stderr)
        return code


def run() -> NoReturn:
    """Console-script entry point."""
    try:
        code = main()
    except KeyboardInterrupt:
        # A second Ctrl-C while the first was being reported.
        code = EXIT_INTERRUPTED
    sys.exit(code)


if __name__ == "__main__":
    run()
