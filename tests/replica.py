"""A PostgreSQL primary and its hot standby, built for the tests that read from a replica.

::

    from replica import replica_pair, wait_for_replay      # tests/ is on sys.path

    with replica_pair() as pair:                       # a few seconds
        with psycopg.connect(pair.primary_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (x int)")
        wait_for_replay(pair.primary_url, pair.standby_url)
        psycopg.connect(pair.standby_url).execute("SELECT * FROM t")  # there, read-only

Both servers are Debian's PostgreSQL binaries (``/usr/lib/postgresql/15/bin``,
or ``ATLAS_PG_BIN``): ``initdb`` a primary, ``pg_basebackup -R`` a standby
that streams from it (``hot_standby=on``, ``hot_standby_feedback=on``), each
on a free port of 127.0.0.1 with trust authentication and no Unix socket, in
one temporary folder removed at the end. initdb refuses to run as root, so as
root the servers run as the ``postgres`` user (``ATLAS_REPLICA_USER``) via
``runuser``; as anyone else, as that user.

Fixtures (registered in tests/conftest.py):

- ``replica`` (session-scoped: one pair per test run) yields the
  :class:`ReplicaPair`;
- ``replica_db`` yields a :class:`ReplicaDatabase`: a fresh database with the
  arc-atlas schema and no sessions, its URL on the primary and on the
  standby, ``replay()`` to wait for the standby and ``write(sql)`` to change
  it on the primary; dropped after the test.

Missing binaries (or no user to run them as) skip those tests with the
reason, unless ``ATLAS_REQUIRE_REPLICA=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

__all__ = [
    "REQUIRE_VARIABLE",
    "ReplicaDatabase",
    "ReplicaPair",
    "missing_reason",
    "replica",
    "replica_db",
    "replica_pair",
    "replica_template",
    "standby_lag_bytes",
    "wait_for_replay",
]

PG_BIN = Path(os.environ.get("ATLAS_PG_BIN", "/usr/lib/postgresql/15/bin"))
REQUIRE_VARIABLE = "ATLAS_REQUIRE_REPLICA"
SUPERUSER = "postgres"
START_TIMEOUT = 60.0
REPLAY_TIMEOUT = 60.0
# On the standby: feedback keeps the primary's VACUUM from removing rows a standby
# query still reads (no snapshot conflicts); the delay is PostgreSQL's default.
STANDBY_SETTINGS: Mapping[str, str] = {
    "hot_standby": "on",
    "hot_standby_feedback": "on",
    "max_standby_streaming_delay": "30s",
}
_TOOLS = ("initdb", "pg_ctl", "pg_basebackup", "postgres")


@dataclass(frozen=True)
class ReplicaPair:
    """Where the two servers listen; URLs name the ``postgres`` database as superuser."""

    primary_port: int
    standby_port: int
    folder: Path

    @property
    def primary_url(self) -> str:
        return self.url("primary")

    @property
    def standby_url(self) -> str:
        return self.url("standby")

    def url(self, server: str, database: str = "postgres") -> str:
        """``postgresql://postgres@127.0.0.1:PORT/DATABASE`` of ``server`` (primary/standby)."""
        port = {"primary": self.primary_port, "standby": self.standby_port}[server]
        return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{database}"

    def create_database(self, template: str | None = None) -> str:
        """A new database on the primary (copied from ``template``), replayed; its name."""
        name = f"atlas_r_{uuid.uuid4().hex[:12]}"
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
        with psycopg.connect(self.primary_url, autocommit=True) as conn:
            conn.execute(query)
        wait_for_replay(self.primary_url, self.standby_url)
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name`` on the primary (the standby follows, closing its connections there)."""
        with psycopg.connect(self.primary_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _server_user() -> str | None:
    """Who runs the servers: ourselves, or (as root, whom initdb refuses) ATLAS_REPLICA_USER."""
    if os.geteuid() != 0:
        return None
    return os.environ.get("ATLAS_REPLICA_USER", "postgres")


def missing_reason() -> str | None:
    """Why a pair cannot be built here (a missing binary or user), or None when it can."""
    for tool in _TOOLS:
        if not (PG_BIN / tool).is_file():
            return (
                f"{PG_BIN / tool} is missing (apt-get install postgresql-15, or set ATLAS_PG_BIN)"
            )
    user = _server_user()
    if user is not None:
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"running as root and there is no user {user!r} to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and runuser (util-linux) is missing"
    return None


def _run(args: list[str], user: str | None, cwd: Path) -> None:
    """Run a PostgreSQL tool (as ``user`` when given); its output becomes the error if it fails."""
    command = [str(args[0]), *args[1:]]
    if user is not None:
        command = ["runuser", "-u", user, "--", *command]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _append_settings(data: Path, settings: Mapping[str, str]) -> None:
    with (data / "postgresql.conf").open("a", encoding="utf-8") as conf:
        for name, value in settings.items():
            conf.write(f"{name} = '{value}'\n")


def _start(data: Path, log: Path, user: str | None, cwd: Path) -> None:
    _run([str(PG_BIN / "pg_ctl"), "start", "-w", "-t", str(int(START_TIMEOUT)), "-D", str(data),
          "-l", str(log)], user, cwd)  # fmt: skip


def _stop(data: Path, user: str | None, cwd: Path) -> None:
    if (data / "postmaster.pid").exists():
        with contextlib.suppress(RuntimeError):
            _run([str(PG_BIN / "pg_ctl"), "stop", "-w", "-m", "immediate", "-D", str(data)],
                 user, cwd)  # fmt: skip


@contextlib.contextmanager
def replica_pair(standby_settings: Mapping[str, str] | None = None) -> Iterator[ReplicaPair]:
    """Build a primary and a streaming hot standby; stop both and remove their folder after.

    ``standby_settings`` replace :data:`STANDBY_SETTINGS` (postgresql.conf
    names to values). Returns once the standby accepts read-only connections
    and streams. Raises :class:`RuntimeError` (with the tool's output) when a
    step fails; call :func:`missing_reason` first to skip cleanly.
    """
    reason = missing_reason()
    if reason is not None:
        raise RuntimeError(f"cannot build a replica pair: {reason}")
    user = _server_user()
    # As root the folder is for another user: under /tmp, which every user may traverse
    # (a TMPDIR of root's own may not be).
    folder = Path(tempfile.mkdtemp(prefix="atlas-replica-", dir="/tmp" if user else None))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    primary, standby = folder / "primary", folder / "standby"
    try:
        _run([str(PG_BIN / "initdb"), "-D", str(primary), "-U", SUPERUSER, "--auth=trust",
              "-E", "UTF8", "--locale=C", "--no-sync"], user, folder)  # fmt: skip
        primary_port = _free_port()
        _append_settings(primary, {
            "listen_addresses": "127.0.0.1", "port": str(primary_port),
            "unix_socket_directories": "", "wal_level": "replica", "max_wal_senders": "4",
            "fsync": "off", "full_page_writes": "off",
        })  # fmt: skip
        with (primary / "pg_hba.conf").open("a", encoding="utf-8") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        _start(primary, folder / "primary.log", user, folder)
        _run([str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary_port),
              "-U", SUPERUSER, "-D", str(standby), "-R", "-X", "stream", "-c", "fast",
              "--no-sync"], user, folder)  # fmt: skip
        standby_port = _free_port()
        _append_settings(
            standby, {"port": str(standby_port), **(standby_settings or STANDBY_SETTINGS)}
        )
        _start(standby, folder / "standby.log", user, folder)
        pair = ReplicaPair(primary_port, standby_port, folder)
        _wait_streaming(pair)
        yield pair
    finally:
        _stop(standby, user, folder)
        _stop(primary, user, folder)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_streaming(pair: ReplicaPair) -> None:
    """Until the primary lists the standby's WAL receiver as streaming."""
    deadline = time.monotonic() + START_TIMEOUT
    with psycopg.connect(pair.primary_url, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
            ).fetchone()
            if row is not None and row[0] > 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError("the standby did not start streaming from the primary")
            time.sleep(0.05)


def standby_lag_bytes(primary_url: str, standby_url: str) -> int:
    """How many bytes of the primary's WAL the standby has still to replay (0 = caught up)."""
    with psycopg.connect(primary_url, autocommit=True) as primary:
        row = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    with psycopg.connect(standby_url, autocommit=True) as standby:
        lag = standby.execute(
            "SELECT greatest(pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn()), 0)::bigint",
            (row[0],),
        ).fetchone()
    assert lag is not None
    return int(lag[0])


def wait_for_replay(primary_url: str, standby_url: str, *, timeout: float = REPLAY_TIMEOUT) -> None:
    """Return once the standby has replayed everything the primary had written when called.

    Compares the primary's ``pg_current_wal_lsn()`` with the standby's
    ``pg_last_wal_replay_lsn()``, polling; raises :class:`TimeoutError`
    after ``timeout`` seconds (replay blocked by a conflict, or not streaming).
    """
    with psycopg.connect(primary_url, autocommit=True) as primary:
        row = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    target = row[0]
    deadline = time.monotonic() + timeout
    with psycopg.connect(standby_url, autocommit=True) as standby:
        while True:
            done = standby.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)
            ).fetchone()
            if done is not None and done[0]:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the standby did not replay up to {target} in {timeout:g} s")
            time.sleep(0.01)


@pytest.fixture(scope="session")
def replica() -> Iterator[ReplicaPair]:
    """One primary + hot standby pair for the whole test run (skipped where it cannot be built).

    With ``ATLAS_REQUIRE_REPLICA=1`` a missing binary or user fails instead.
    """
    reason = missing_reason()
    if reason is not None:
        if os.environ.get(REQUIRE_VARIABLE) == "1":
            pytest.fail(f"{reason} ({REQUIRE_VARIABLE}=1)")
        pytest.skip(reason)
    with replica_pair() as pair:
        yield pair


@dataclass(frozen=True)
class ReplicaDatabase:
    """One test's database: its URL on the primary and on the standby."""

    primary: str
    standby: str

    def replay(self) -> None:
        """Wait until the standby has replayed everything written on the primary so far."""
        wait_for_replay(self.primary, self.standby)

    def write(self, query: str, params: tuple[object, ...] = ()) -> None:
        """Run ``query`` on the primary (autocommit); :meth:`replay` shows it on the standby."""
        with psycopg.connect(self.primary, autocommit=True) as conn:
            conn.execute(query, params)


@pytest.fixture(scope="session")
def replica_template(replica: ReplicaPair) -> Iterator[str]:
    """A database on the primary with every arc-atlas migration applied, to copy."""
    from atlas.storage.migrate import apply_migrations

    name = replica.create_database()
    with psycopg.connect(replica.url("primary", name), autocommit=True) as conn:
        apply_migrations(conn)
    yield name
    replica.drop_database(name)


@pytest.fixture
def replica_db(replica: ReplicaPair, replica_template: str) -> Iterator[ReplicaDatabase]:
    """A fresh arc-atlas database (no sessions) on the primary, replayed on the standby."""
    name = replica.create_database(replica_template)
    yield ReplicaDatabase(replica.url("primary", name), replica.url("standby", name))
    replica.drop_database(name)
