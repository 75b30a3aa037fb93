"""The exceptions arc-atlas raises, all under one root.

::

    AtlasError                      anything arc-atlas raises on purpose
    ├── UsageError                  a command line that cannot be parsed or combined (the CLI)
    ├── ConfigError                 a config file, key, value or environment variable is wrong
    ├── InvalidFilter (ValueError)  a query filter has a bad value (e.g. min_reward="high")
    ├── SessionNotFound (LookupError)  a session id that is not in the database
    ├── SessionFailed               a session the CLI ran ended ``failed`` (exit code 1)
    ├── SelectionChanged            a bulk review no longer matches the count that was confirmed
    ├── MissingExtra (ImportError)  an optional dependency is not installed: names the extra
    ├── AdapterError                an agent, teacher or judge call failed (atlas.runtime.adapters)
    ├── OutputError                 an output path cannot be written: unwritable, disk full
    ├── TraceFileError (ValueError) a trace file cannot be read, or a line is not a JSON object
    ├── RecordSchemaError (ValueError)  a record does not fit the table kind it is written as
    └── DatabaseError               something about the database itself
        ├── DatabaseUnavailable (ConnectionError)  cannot connect: refused, wrong password, ...
        ├── EmbeddedServerError     the embedded PostgreSQL (pgserver) could not start or stop
        ├── PermissionDenied (PermissionError)  the role lacks a privilege: names it and the fix
        ├── ReadOnlyDatabase        a write sent to a hot standby (or a read-only session)
        ├── RecoveryConflict        a hot standby cancelled a read to replay the primary's changes
        ├── SchemaOutOfDate         migrations are pending: run ``arc-atlas db upgrade``
        └── StatementTimeout (TimeoutError)  a statement ran past ``statement_timeout_seconds``

The builtin in brackets is a second base, so ``except ValueError`` and the
like keep working for callers who do not know arc-atlas's classes.

Warnings (data was read, but something deserves attention) have their own root::

    AtlasWarning (UserWarning)
    ├── ReviewGateWarning           the review gate hid every matching session
    └── TraceDecodeWarning          some stored values could not be decoded; kept as found

Every message is a full sentence that names the thing and the fix, and never
contains a password: URLs are masked with :func:`atlas.storage.urls.mask_url`
before they reach a message. The CLI prints ``Error: <message>`` on stderr and
exits with the code ``docs/cli.md`` documents: 1 for :class:`SessionFailed`
and :class:`SessionNotFound` (nothing matched), 2 for the others.

This module imports nothing from arc-atlas, so anything may import it (the CLI
imports it before anything else, to catch an interrupt while it loads).
"""

from __future__ import annotations

__all__ = [
    "AdapterError",
    "AtlasError",
    "AtlasWarning",
    "ConfigError",
    "DatabaseError",
    "DatabaseUnavailable",
    "EmbeddedServerError",
    "InvalidFilter",
    "MissingExtra",
    "OutputError",
    "PermissionDenied",
    "ReadOnlyDatabase",
    "RecordSchemaError",
    "RecoveryConflict",
    "ReviewGateWarning",
    "SchemaOutOfDate",
    "SelectionChanged",
    "SessionFailed",
    "SessionNotFound",
    "StatementTimeout",
    "TraceDecodeWarning",
    "TraceFileError",
    "UsageError",
    "install_hint",
]


class AtlasError(Exception):
    """Root of every error arc-atlas raises on purpose."""


class UsageError(AtlasError):
    """A command line that cannot be parsed, or flags that cannot be combined."""


class ConfigError(AtlasError):
    """A configuration file, key, value or environment variable is invalid."""


class InvalidFilter(AtlasError, ValueError):
    """A query filter has a value that cannot be evaluated.

    ``parameter`` names the argument at fault (``min_reward``), when there is
    one, so the CLI can name its flag and a UI its field.
    """

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


class SessionNotFound(AtlasError, LookupError):
    """A session id was asked for that the database does not hold."""


class SessionFailed(AtlasError):
    """A session that ``arc-atlas run`` started ended ``failed``; the message says why."""

    def __init__(self, message: str, *, session_id: int | None = None) -> None:
        super().__init__(message)
        self.session_id = session_id


class SelectionChanged(AtlasError):
    """A bulk review matched a different number of sessions than the caller confirmed.

    Sessions were written or reviewed between the preview and the change;
    nothing was changed. ``matched`` is the new count, to confirm again.
    """

    def __init__(self, message: str, *, matched: int) -> None:
        super().__init__(message)
        self.matched = matched


class MissingExtra(AtlasError, ImportError):
    """An optional dependency is not installed; the message says which extra brings it.

    ``extra`` is the extra's name (``train``) and ``name`` the module that was
    missing (``pyarrow``), as on :class:`ImportError`. Build one with
    :meth:`for_module`, which words the install command for how arc-atlas
    itself was installed: ``pip install 'arc-atlas[train]'`` from an index,
    ``pip install -e '.[train]'`` in a source checkout.
    """

    def __init__(self, message: str, *, extra: str, name: str | None = None) -> None:
        super().__init__(message, name=name)
        self.extra = extra

    @classmethod
    def for_module(cls, module: str, *, extra: str = "train", needed_for: str = "") -> MissingExtra:
        """The error for a missing ``module``: ``for_module("pyarrow", needed_for="Parquet")``."""
        purpose = f", and {needed_for} needs it" if needed_for else ""
        return cls(
            f"{module} is not installed{purpose}: {install_hint(extra)}.",
            extra=extra,
            name=module,
        )


def install_hint(extra: str) -> str:
    """``pip install 'arc-atlas[EXTRA]'``, or the ``-e`` form when arc-atlas is a checkout."""
    from pathlib import Path

    # A source checkout (editable install or PYTHONPATH) has pyproject.toml
    # beside the package; an installed wheel has site-packages there instead.
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and root.name != "site-packages":
        return f"run `pip install -e '.[{extra}]'` in {root}"
    return f"run `pip install 'arc-atlas[{extra}]'`"


class AdapterError(AtlasError):
    """An adapter call failed: the agent raised, the endpoint refused, or the reply was unusable.

    The message is one line that names the adapter and never contains an API
    key. ``adapter`` is the adapter's name, ``status`` the last HTTP status
    (``None`` when there was none) and ``attempts`` the number of tries made.
    """

    def __init__(
        self, message: str, *, adapter: str = "", status: int | None = None, attempts: int = 1
    ) -> None:
        super().__init__(message)
        self.adapter = adapter
        self.status = status
        self.attempts = attempts


class OutputError(AtlasError):
    """The output path cannot be written (missing or unwritable folder, full disk)."""


class TraceFileError(AtlasError, ValueError):
    """A line of a trace file is not a JSON object (the message names the file and line)."""


class RecordSchemaError(AtlasError, ValueError):
    """A record does not fit the table kind it is written as (unknown fields, not a mapping)."""


class DatabaseError(AtlasError):
    """A problem with the database rather than with the caller's input."""


class DatabaseUnavailable(DatabaseError, ConnectionError):
    """The database cannot be reached or refuses the connection."""


class EmbeddedServerError(DatabaseError):
    """The embedded PostgreSQL server could not be started, reached or stopped."""


class PermissionDenied(DatabaseError, PermissionError):
    """The database role lacks a privilege the command needs.

    The message names the privilege (``UPDATE``), the object (``table
    sessions``) and the role, and says which role to connect as instead.
    ``privilege`` and ``role`` hold the first two when they are known.
    """

    def __init__(
        self, message: str, *, privilege: str | None = None, role: str | None = None
    ) -> None:
        super().__init__(message)
        self.privilege = privilege
        self.role = role


class ReadOnlyDatabase(DatabaseError):
    """The server refused a write: it is a hot standby, or the session is read-only.

    A standby replays its primary and accepts no writes: reviews, migrations
    and writers go to the primary. ``standby`` says which case it was (None
    when the server did not say).
    """

    def __init__(self, message: str, *, standby: bool | None = None) -> None:
        super().__init__(message)
        self.standby = standby


class RecoveryConflict(DatabaseError):
    """A hot standby cancelled a read so that it could replay the primary's changes.

    The read may be run again (the next one may well pass); the message names
    the standby settings that avoid it (``hot_standby_feedback``,
    ``max_standby_streaming_delay``). See ``docs/replicas.md``.
    """


class SchemaOutOfDate(DatabaseError):
    """The database schema is older than this version of arc-atlas expects."""


class StatementTimeout(DatabaseError, TimeoutError):
    """A statement was cancelled by the server's ``statement_timeout``."""


class AtlasWarning(UserWarning):
    """Root of the warnings arc-atlas issues."""


class ReviewGateWarning(AtlasWarning):
    """Nothing was returned because the review gate hid every matching session."""


class TraceDecodeWarning(AtlasWarning):
    """Some stored values could not be decoded; the traces say which (``load_warnings``)."""
