"""The exceptions arc-atlas raises, all under one root.

::

    AtlasError                      anything arc-atlas raises on purpose
    ├── ConfigError                 a config file, key, value or environment variable is wrong
    ├── InvalidFilter               a query filter has a bad value (e.g. min_reward="high")
    ├── SessionNotFound             a session id that is not in the database
    ├── AdapterError                an agent, teacher or judge call failed (atlas.runtime.adapters)
    └── DatabaseError               something about the database itself
        ├── DatabaseUnavailable     cannot connect: refused, wrong password, no such database
        ├── EmbeddedServerError     the embedded PostgreSQL (pgserver) could not start or stop
        ├── SchemaOutOfDate         migrations are pending: run ``arc-atlas db upgrade``
        └── StatementTimeout        a statement ran longer than ``statement_timeout_seconds``

Warnings (data was read, but something deserves attention) have their own root::

    AtlasWarning (UserWarning)
    ├── ReviewGateWarning           the review gate hid every matching session
    └── TraceDecodeWarning          some stored values could not be decoded; kept as found

Every message is a full sentence that names the thing and the fix, and never
contains a password: URLs are masked with :func:`atlas.storage.urls.mask_url`
before they reach a message. The CLI prints ``Error: <message>`` and exits 2.
"""

from __future__ import annotations

__all__ = [
    "AtlasError",
    "AtlasWarning",
    "ConfigError",
    "DatabaseError",
    "DatabaseUnavailable",
    "EmbeddedServerError",
    "InvalidFilter",
    "ReviewGateWarning",
    "SchemaOutOfDate",
    "SessionNotFound",
    "StatementTimeout",
    "TraceDecodeWarning",
]


class AtlasError(Exception):
    """Root of every error arc-atlas raises on purpose."""


class ConfigError(AtlasError):
    """A configuration file, key, value or environment variable is invalid."""


class InvalidFilter(AtlasError, ValueError):
    """A query filter has a value that cannot be evaluated."""


class SessionNotFound(AtlasError, LookupError):
    """A session id was asked for that the database does not hold."""


class DatabaseError(AtlasError):
    """A problem with the database rather than with the caller's input."""


class DatabaseUnavailable(DatabaseError, ConnectionError):
    """The database cannot be reached or refuses the connection."""


class EmbeddedServerError(DatabaseError):
    """The embedded PostgreSQL server could not be started, reached or stopped."""


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
