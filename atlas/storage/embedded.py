"""The embedded PostgreSQL server: zero-setup storage through ``pgserver``.

With no database URL configured anywhere, arc-atlas runs its own PostgreSQL
from the binaries shipped in the ``pgserver`` wheel, with its data in
``$ATLAS_HOME/pgdata`` (default: the platform's per-user data folder, e.g.
``~/.local/share/arc-atlas`` on Linux, or ``~/.arc-atlas`` where that folder's
path has a space, as on macOS). The server listens on a Unix socket
only and is left running when the process exits, so later processes reuse it
at no cost; ``arc-atlas db stop`` stops it.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from atlas.errors import EmbeddedServerError

__all__ = [
    "EMBEDDED_DATABASE",
    "EmbeddedServer",
    "atlas_home",
    "embedded_server",
    "ensure_embedded",
    "stop_embedded",
]

EMBEDDED_DATABASE = "atlas"
_USER = "postgres"


def atlas_home() -> Path:
    """The folder arc-atlas keeps its own state in (``$ATLAS_HOME`` overrides)."""
    override = os.environ.get("ATLAS_HOME")
    if override:
        return Path(override).expanduser().resolve()
    import platformdirs

    default = Path(platformdirs.user_data_dir("arc-atlas", appauthor=False))
    if _has_space(default):
        # macOS: "~/Library/Application Support" cannot host the server (see _start).
        return Path.home() / ".arc-atlas"
    return default


def _has_space(path: Path) -> bool:
    # pgserver hands PostgreSQL its Unix socket folder (the data folder) unquoted,
    # so postgres splits a path with a space into two arguments and exits.
    # Windows uses TCP instead, where the data folder is quoted correctly.
    return os.name != "nt" and any(char.isspace() for char in str(path))


@dataclass(frozen=True)
class EmbeddedServer:
    """A running embedded server, as read from its ``postmaster.pid``."""

    pgdata: Path
    pid: int
    socket_dir: Path | None
    port: int | None

    def url(self, database: str = EMBEDDED_DATABASE) -> str:
        """libpq URL for ``database`` on this server (socket, trust authentication)."""
        if self.socket_dir is not None:
            host = quote(str(self.socket_dir), safe="/")  # the folder may hold "&", "#", ...
            return f"postgresql://{_USER}@/{database}?host={host}&port={self.port or 5432}"
        return f"postgresql://{_USER}@127.0.0.1:{self.port}/{database}"


def _pgdata() -> Path:
    return atlas_home() / "pgdata"


def _read_running(pgdata: Path) -> EmbeddedServer | None:
    """The server described by ``postmaster.pid``, if that process is alive and ready."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return None
    if len(lines) < 8 or lines[7].strip() != "ready":
        return None
    pid = int(lines[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, owned by the pgserver system user when we run as root
    socket_dir = Path(lines[4].strip()) if lines[4].strip() else None
    port = int(lines[3]) if lines[3].strip() else None
    return EmbeddedServer(pgdata, pid, socket_dir, port)


def embedded_server() -> EmbeddedServer | None:
    """The running embedded server, or None when it is not running (nothing is started)."""
    return _read_running(_pgdata())


def _import_pgserver() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns at import time when XDG_RUNTIME_DIR is unset.
        warnings.simplefilter("ignore")
        try:
            import pgserver
        except ImportError as exc:  # pragma: no cover - it is a dependency
            raise EmbeddedServerError(
                "The embedded database needs the pgserver package: pip install pgserver, "
                "or set ATLAS_DATABASE_URL to use your own PostgreSQL."
            ) from exc
    return pgserver


def ensure_embedded() -> str:
    """Start the embedded server if needed, create its database, and return its URL.

    Migrations are not applied here; :mod:`atlas.storage.database` does that
    for the embedded database because arc-atlas owns it. Raises
    :class:`EmbeddedServerError` when the server cannot be started.
    """
    pgdata = _pgdata()
    server = _read_running(pgdata)
    if server is None:
        server = _start(pgdata)
    _ensure_database(server)
    return server.url()


def _start(pgdata: Path) -> EmbeddedServer:
    if _has_space(pgdata):
        raise EmbeddedServerError(
            f"The embedded PostgreSQL cannot run in {pgdata}: its path contains a space, "
            "which pgserver cannot pass to PostgreSQL. Set ATLAS_HOME to a folder without "
            "spaces, or set ATLAS_DATABASE_URL to use your own server."
        )
    pgserver = _import_pgserver()
    # pgserver keeps one handle per data folder and returns it without checking
    # that its server still runs, so after stop_embedded() it would not restart.
    getattr(pgserver.PostgresServer, "_instances", {}).pop(pgdata.resolve(), None)
    try:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # cleanup_mode=None: the server outlives this process for reuse.
            pgserver.get_server(pgdata, cleanup_mode=None)
    except Exception as exc:
        log = pgdata / "log"
        raise EmbeddedServerError(
            f"The embedded PostgreSQL in {pgdata} did not start ({type(exc).__name__}: {exc}); "
            f"see its log at {log}, or set ATLAS_DATABASE_URL to use your own server."
        ) from exc
    server = _read_running(pgdata)
    if server is None:
        raise EmbeddedServerError(
            f"The embedded PostgreSQL in {pgdata} started but is not ready; "
            f"see its log at {pgdata / 'log'}."
        )
    return server


def _ensure_database(server: EmbeddedServer) -> None:
    try:
        with psycopg.connect(server.url("postgres"), autocommit=True, connect_timeout=10) as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DATABASE,)
            ).fetchone()
            if found is None:
                # Another process may create it between our check and now.
                with contextlib.suppress(pg_errors.DuplicateDatabase):
                    conn.execute(
                        sql.SQL("CREATE DATABASE {}").format(sql.Identifier(EMBEDDED_DATABASE))
                    )
    except psycopg.OperationalError as exc:
        raise EmbeddedServerError(
            f"The embedded PostgreSQL in {server.pgdata} is running but refused a connection "
            f"({str(exc).strip().splitlines()[0]}); stop it with `arc-atlas db stop` and retry."
        ) from exc


def stop_embedded() -> bool:
    """Stop the embedded server; return False if it was not running."""
    pgdata = _pgdata()
    if _read_running(pgdata) is None:
        return False
    pgserver = _import_pgserver()
    user = "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    try:
        pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=60)
    except Exception as exc:
        raise EmbeddedServerError(
            f"Could not stop the embedded PostgreSQL in {pgdata} ({exc}); "
            f"see its log at {pgdata / 'log'}."
        ) from exc
    return True
