"""Shared fixtures: a real PostgreSQL server and a clean database per test.

The server is the one named by ``ATLAS_TEST_DATABASE_URL`` (any database on
it; the tests create and drop their own), or else an embedded server started
in a temporary ``ATLAS_HOME`` for this test run, so the user's own embedded
database is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

# `replica`: one primary + hot standby pair per test run, `replica_db`: a database on it
# (tests/replica.py), for any test.
from replica import replica, replica_db, replica_template  # noqa: F401

from atlas.storage.embedded import ensure_embedded, stop_embedded
from atlas.storage.migrate import apply_migrations
from atlas.storage.synthetic import seed_sessions

_URL_VARIABLES = ("ATLAS_DATABASE_URL", "STORAGE__DATABASE_URL", "DATABASE_URL")


def database_url(server_url: str, name: str) -> str:
    """The same server as ``server_url``, database ``name``."""
    if "://" not in server_url:
        return psycopg.conninfo.make_conninfo(server_url, dbname=name)
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """URL of a database on the test server that tests may use to create databases."""
    configured = os.environ.get("ATLAS_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    home = Path(tempfile.mkdtemp(prefix="atlas-test-home-"))
    previous = os.environ.get("ATLAS_HOME")
    os.environ["ATLAS_HOME"] = str(home)
    try:
        yield database_url(ensure_embedded(), "postgres")
    finally:
        stop_embedded()
        if previous is None:
            os.environ.pop("ATLAS_HOME", None)
        else:
            os.environ["ATLAS_HOME"] = previous
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def url_for(server_url: str) -> Callable[[str], str]:
    """Build the URL of another database on the test server: ``url_for("name")``."""
    return lambda name: database_url(server_url, name)


@pytest.fixture(scope="session")
def _template(server_url: str) -> Iterator[str]:
    """A database with every migration applied, cloned for each test that needs one."""
    name = f"atlas_tpl_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(database_url(server_url, name), autocommit=True) as conn:
        apply_migrations(conn)
    yield name
    _drop(server_url, name)


def _drop(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _create(server_url: str, template: str | None) -> str:
    name = f"atlas_t_{uuid.uuid4().hex[:12]}"
    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(query)
    return name


@pytest.fixture
def empty_db_url(server_url: str) -> Iterator[str]:
    """A fresh database with nothing in it."""
    name = _create(server_url, None)
    yield database_url(server_url, name)
    _drop(server_url, name)


@pytest.fixture
def db_url(server_url: str, _template: str) -> Iterator[str]:
    """A fresh database with the current arc-atlas schema."""
    name = _create(server_url, _template)
    yield database_url(server_url, name)
    _drop(server_url, name)


@pytest.fixture
def reviewed_url(db_url: str) -> str:
    """Nine synthetic sessions: three approved, three pending, three quarantined."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 9, seed=5)
        conn.execute(
            "UPDATE sessions SET review_status = (ARRAY['approved', 'pending', "
            "'quarantined'])[id % 3 + 1]"
        )
    return db_url


@pytest.fixture(autouse=True)
def _no_ambient_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their database explicitly; the developer's environment must not leak in."""
    for name in _URL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("ATLAS_REVIEW_REQUIRE_APPROVAL", raising=False)


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Call ``arc-atlas ARGS...``; returns the completed process (text mode).

    ``ATLAS_HOME`` points at an empty folder so no test can touch the
    developer's own embedded database by accident.
    """

    def run(
        *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        environ = {
            k: v
            for k, v in os.environ.items()
            if k not in ("ATLAS_DATABASE_URL", "STORAGE__DATABASE_URL", "DATABASE_URL")
        }
        environ["ATLAS_HOME"] = str(tmp_path / "atlas-home")
        environ.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "atlas.cli", *args],
            capture_output=True,
            text=True,
            env=environ,
            cwd=cwd,
            timeout=120,
        )

    return run
