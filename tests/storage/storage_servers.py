"""A private PostgreSQL cluster that checks passwords, for the connection-error tests.

The shared test server trusts every connection, so a wrong password cannot be
observed on it. This cluster is built from the ``pgserver`` binaries with
scram-sha-256 authentication, listens on a Unix socket in a temporary folder
only (no TCP), and is stopped and deleted at the end of the test session.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg.conninfo import make_conninfo

PASSWORD = "correct-horse-7#battery"


@dataclass(frozen=True)
class PasswordServer:
    """Where the private cluster listens and the one account it knows."""

    socket_dir: Path
    user: str
    password: str

    def url(self, password: str, database: str = "postgres") -> str:
        return f"postgresql://{self.user}:{password}@/{database}?host={self.socket_dir}&port=5432"

    def keywords(self, password: str, database: str = "postgres") -> str:
        """The same target as a libpq keyword string."""
        return make_conninfo(
            host=str(self.socket_dir), port=5432, user=self.user, password=password, dbname=database
        )


def _pgserver() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns on import without XDG_RUNTIME_DIR
        import pgserver
        import pgserver.utils
    return pgserver


def _system_user(pgserver: Any, folder: Path) -> str | None:
    """PostgreSQL refuses to run as root: do as pgserver does and run as its own user."""
    if os.geteuid() != 0:
        return None
    import pwd

    from pgserver._commands import POSTGRES_BIN_PATH

    entry = pgserver.utils.ensure_user_exists("pgserver")
    pgserver.utils.ensure_prefix_permissions(POSTGRES_BIN_PATH)
    pgserver.utils.ensure_prefix_permissions(folder)
    pgserver.utils.ensure_folder_permissions(POSTGRES_BIN_PATH, 0o555)
    pgserver.utils.ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o444)
    os.chown(folder, entry.pw_uid, entry.pw_gid)
    return str(pwd.getpwuid(entry.pw_uid).pw_name)


@contextmanager
def password_cluster() -> Iterator[PasswordServer]:
    """Run a cluster with scram-sha-256 authentication for user ``atlas``; delete it after."""
    pgserver = _pgserver()
    folder = Path(tempfile.mkdtemp(prefix="atlas-scram-"))
    user = _system_user(pgserver, folder)
    pgdata, socket_dir, pwfile = folder / "pgdata", folder / "socket", folder / "pwfile"
    socket_dir.mkdir()
    pwfile.write_text(PASSWORD + "\n")
    if user is not None:
        for path in (socket_dir, pwfile):
            shutil.chown(path, user)
    try:
        pgserver.initdb(
            ["--auth=scram-sha-256", f"--pwfile={pwfile}", "-U", "atlas", "--encoding=utf8"],
            pgdata=pgdata,
            user=user,
        )
        pgserver.pg_ctl(
            ["-w", "-o", "-h ''", "-o", f"-k {socket_dir}", "-l", str(folder / "log"), "start"],
            pgdata=pgdata,
            user=user,
            timeout=60,
        )
        try:
            yield PasswordServer(socket_dir, "atlas", PASSWORD)
        finally:
            pgserver.pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=pgdata, user=user)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
