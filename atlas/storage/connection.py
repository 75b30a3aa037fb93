"""Connection settings, connecting, and turning driver errors into arc-atlas errors.

Everything a pooled connection needs is passed at connection start-up
(``options=-c statement_timeout=...``), not with a ``SET`` after the fact, so
the timeout holds on every connection the pool ever hands out, including
reconnections, and survives the pool's reset between borrowers.
"""

from __future__ import annotations

import contextlib
import json
import re
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

import orjson
import psycopg
from psycopg import errors as pg_errors
from psycopg.adapt import Loader
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import Format
from psycopg.types.json import set_json_loads

from atlas.config.database_url import ResolvedURL
from atlas.config.models import StorageConfig
from atlas.errors import ConfigError, DatabaseUnavailable, PermissionDenied, StatementTimeout
from atlas.storage.standby import (
    is_recovery_conflict,
    read_only_error,
    recovery_conflict_error,
    reported_standby,
)
from atlas.storage.urls import invalid_url_message, mask_url

__all__ = [
    "ConnectionSettings",
    "configure_connection",
    "connect",
    "describe_connect_error",
    "describe_privilege_error",
    "load_json",
    "translate_errors",
]

APPLICATION_NAME = "arc-atlas"

_MISSING_DATABASE = re.compile(r'database ".*" does not exist')
_MISSING_ROLE = re.compile(r'role ".*" does not exist')


@dataclass(frozen=True, repr=False)
class ConnectionSettings:
    """Where to connect and how: the storage block with its URL resolved.

    Its repr shows the URL with the password masked, so a logged or printed
    settings object gives nothing away.
    """

    url: str
    source: str = "--database-url"
    min_connections: int = 1
    max_connections: int = 5
    statement_timeout_seconds: float = 30.0
    connect_timeout_seconds: float = 10.0
    embedded: bool = False

    @classmethod
    def from_config(
        cls, resolved: ResolvedURL, storage: StorageConfig | None
    ) -> ConnectionSettings:
        """Combine a resolved URL (never the embedded marker) with a storage block."""
        if resolved.url is None:
            raise ValueError("resolve the embedded server's URL before building settings")
        block = storage or StorageConfig()
        return cls(
            url=resolved.url,
            source=resolved.source,
            min_connections=block.min_connections,
            max_connections=block.max_connections,
            statement_timeout_seconds=block.statement_timeout_seconds,
            connect_timeout_seconds=block.connect_timeout_seconds,
        )

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={self.display_url if f.name == 'url' else getattr(self, f.name)!r}"
            for f in fields(self)
        )
        return f"ConnectionSettings({shown})"

    @property
    def display_url(self) -> str:
        """The URL with its password masked."""
        return mask_url(self.url)

    def connect_kwargs(self) -> dict[str, Any]:
        """libpq parameters added to the URL for every connection arc-atlas opens.

        Raises :class:`ConfigError` (password masked) when libpq would refuse
        or misread the URL.
        """
        message = invalid_url_message(self.url, self.source)
        if message is not None:
            raise ConfigError(message)
        existing = conninfo_to_dict(self.url).get("options") or ""
        timeout_ms = round(self.statement_timeout_seconds * 1000)
        options = f"{existing} -c statement_timeout={timeout_ms}".strip()
        return {
            "options": options,
            "connect_timeout": max(1, round(self.connect_timeout_seconds)),
            "application_name": APPLICATION_NAME,
            "autocommit": True,
        }


def load_json(data: bytes | bytearray | memoryview | str) -> Any:
    """Decode JSON from the server: orjson, or the standard library for what orjson refuses.

    ``jsonb`` stores numbers orjson cannot hold as a double (``1e400``); rather
    than abort a reader, such a document is decoded with numbers as
    :class:`~decimal.Decimal`, which keeps the value exactly.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8")
        return json.loads(text, parse_float=Decimal)


class _LenientTimeLoader(Loader):
    """A text-format date/time loader that returns the server's text for what Python cannot hold.

    ``infinity``, BC dates and years past 9999 are valid PostgreSQL values but
    not :class:`datetime` values; psycopg raises for them, which would abort
    the whole read. They come back as the server's own text instead (which
    PostgreSQL parses again when it is passed back, e.g. as a paging cursor).
    """

    inner: type[Loader]

    def __init__(self, oid: int, context: Any = None) -> None:
        super().__init__(oid, context)
        self._inner = self.inner(oid, context)

    def load(self, data: Any) -> Any:
        try:
            return self._inner.load(data)
        except psycopg.DataError:
            return bytes(data).decode("utf-8")


def _lenient_times(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> None:
    for name in ("timestamptz", "timestamp", "date"):
        info = conn.adapters.types[name]
        inner = conn.adapters.get_loader(info.oid, Format.TEXT)
        if inner is None or issubclass(inner, _LenientTimeLoader):
            continue
        loader = type(f"Lenient{inner.__name__}", (_LenientTimeLoader,), {"inner": inner})
        conn.adapters.register_loader(info.oid, loader)


def configure_connection(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> None:
    """Per-connection set-up that needs no round trip.

    JSON is decoded by :func:`load_json`; dates and times outside Python's
    range come back as text rather than failing the query.
    """
    set_json_loads(load_json, conn)
    _lenient_times(conn)


def connect(settings: ConnectionSettings) -> psycopg.Connection[tuple[Any, ...]]:
    """Open one autocommit connection, or raise :class:`DatabaseUnavailable`."""
    with translate_errors(settings.display_url):
        conn = psycopg.connect(settings.url, **settings.connect_kwargs())
    configure_connection(conn)
    return conn


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def describe_connect_error(exc: BaseException, target: str) -> str:
    """One sentence saying why a connection to ``target`` failed and what to do."""
    raw = str(exc)
    lowered = raw.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return (
            f"Database at {target} rejected the credentials (password authentication failed): "
            "check the user name and password in the URL."
        )
    # Match the server's phrasing, not loose words: a role named
    # "database_reader" must not read as a missing database.
    if _MISSING_DATABASE.search(raw):
        return (
            f"Database at {target} does not exist on that server: create it "
            "(createdb) or fix the database name in the URL."
        )
    if _MISSING_ROLE.search(raw):
        return f"Database at {target} has no such user (role): fix the user name in the URL."
    if "connection refused" in lowered or "no such file or directory" in lowered:
        return (
            f"Database at {target} refused the connection: is PostgreSQL running? Start it, "
            "or leave --database-url out to use the embedded database."
        )
    if "timeout expired" in lowered or "timed out" in lowered:
        return (
            f"Database at {target} did not answer in time: check the host and port, "
            "and that no firewall drops the connection."
        )
    if "could not translate host name" in lowered or "name or service not known" in lowered:
        return f"Database at {target} names a host that cannot be resolved: fix the host name."
    if "too many clients" in lowered or "remaining connection slots" in lowered:
        return (
            f"Database at {target} has no free connection slots: lower max_connections "
            "or raise the server's max_connections."
        )
    return f"Database at {target} is unavailable: {_first_line(exc)}."


# PostgreSQL's message names the object ("permission denied for table
# sessions") but not the privilege: that follows from the statement's verbs
# (a table) or from the kind of object (nextval() needs USAGE on a sequence).
_WRITE_VERBS = re.compile(r"\b(INSERT|UPDATE|DELETE|TRUNCATE)\b", re.I)
_DENIED_OBJECT = re.compile(r"permission denied for (\w+) (\S+)")
_PRIVILEGE_BY_KIND = {"schema": "CREATE", "sequence": "USAGE", "function": "EXECUTE"}


def _failed_statement(exc: BaseException) -> tuple[str, str | None]:
    """The text of the statement that raised ``exc`` and the role that sent it, if found."""
    statement, conn = _failed_on(exc)
    return statement, conn.info.user if conn is not None else None


def _failed_on(
    exc: BaseException,
) -> tuple[str, psycopg.Connection[Any] | psycopg.AsyncConnection[Any] | None]:
    """The text of the statement that raised ``exc`` and the connection that sent it, if found.

    psycopg does not attach the query to the error, but the cursor or
    connection that ran it is still on the traceback: its ``execute`` frame
    holds the query, and in pipeline mode (the writer) the cursor keeps its
    last query as ``_query`` (psycopg's own name, read defensively).
    """
    statement: str = ""
    conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any] | None = None
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        owner = frame.f_locals.get("self")
        query = frame.f_locals.get("query")
        if isinstance(owner, (psycopg.Cursor, psycopg.AsyncCursor)):
            query = query or getattr(getattr(owner, "_query", None), "query", None)
            owner = owner.connection
        if not isinstance(owner, (psycopg.Connection, psycopg.AsyncConnection)):
            continue
        conn = owner
        if isinstance(query, bytes):
            statement = query.decode("utf-8", "replace")
        elif isinstance(query, psycopg.sql.Composable):
            statement = query.as_string(None)
        elif query is not None:
            statement = str(query)
    return statement, conn


def describe_privilege_error(exc: pg_errors.InsufficientPrivilege, target: str) -> PermissionDenied:
    """A :class:`PermissionDenied` naming the missing privilege, the object and the role to use."""
    statement, role = _failed_statement(exc)
    found = _DENIED_OBJECT.search(exc.diag.message_primary or str(exc))
    kind, name = found.groups() if found else ("object", "")
    if kind in _PRIVILEGE_BY_KIND:
        privilege = _PRIVILEGE_BY_KIND[kind]
    else:
        verbs = dict.fromkeys(verb.upper() for verb in _WRITE_VERBS.findall(statement))
        privilege = ", ".join(verbs) or "SELECT"
    who = f"role {role}" if role else "the role in the URL"
    return PermissionDenied(
        f"Database at {target} refused {privilege} on {kind} {name}: {who} lacks that "
        "privilege. Connect as a role that has it (the one that ran `arc-atlas db upgrade` "
        f"owns the tables), or have the owner run GRANT {privilege} ON {kind.upper()} {name} "
        f"TO {role or '<role>'}.",
        privilege=privilege,
        role=role,
    )


@contextlib.contextmanager
def translate_errors(target: str) -> Iterator[None]:
    """Turn driver errors the caller cannot fix in code into :mod:`atlas.errors` classes.

    Connection failures become :class:`DatabaseUnavailable`, a statement
    timeout :class:`StatementTimeout`, a missing privilege (a read-only
    role running a writer) :class:`PermissionDenied`, a write sent to a hot
    standby :class:`ReadOnlyDatabase`, and a read cancelled by the standby's
    replay :class:`RecoveryConflict`. Usable around both sync and async code:
    the body may contain ``await``.
    """
    try:
        yield
    except pg_errors.InsufficientPrivilege as exc:
        raise describe_privilege_error(exc, target) from exc
    except pg_errors.ReadOnlySqlTransaction as exc:
        _, conn = _failed_on(exc)
        raise read_only_error(exc, target, reported_standby(conn) if conn else None) from exc
    except pg_errors.QueryCanceled as exc:
        if "statement timeout" not in str(exc):
            # Cancelled by someone (pg_cancel_backend, Ctrl-C), not by the timeout.
            raise DatabaseUnavailable(
                f"A query on {target} was cancelled: {_first_line(exc)}."
            ) from exc
        raise StatementTimeout(
            f"A query on {target} ran past statement_timeout_seconds and was cancelled "
            "(raise storage.statement_timeout_seconds, or narrow the query)."
        ) from exc
    except psycopg.OperationalError as exc:
        # The errors a recovery conflict arrives with are all OperationalErrors.
        if is_recovery_conflict(exc):
            raise recovery_conflict_error(exc, target) from exc
        raise DatabaseUnavailable(describe_connect_error(exc, target)) from exc
