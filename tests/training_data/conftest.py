"""Fixtures for the query layer: a shared read-only seeded database and a SQL oracle.

Tests that only read share ``seeded_url`` (built once per run: 400 synthetic
sessions, a tenth of them in legacy shapes). Tests that write use the
per-test ``db_url`` of the top-level conftest and seed it themselves.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql
from training_data_sql import ids_where

from atlas.storage.migrate import apply_migrations
from atlas.storage.synthetic import seed_sessions

SEEDED_SESSIONS = 400

IdsQuery = Callable[..., list[int]]


@pytest.fixture(autouse=True)
def _no_ambient_review_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    """The review gate reads the environment; a developer's setting must not leak in."""
    monkeypatch.delenv("ATLAS_REVIEW_DEFAULT_EXPORT_STATUSES", raising=False)


def _admin(server_url: str, statement: sql.Composable) -> None:
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(statement)


@pytest.fixture(scope="session")
def scratch_database(server_url: str, url_for: Callable[[str], str]) -> Iterator[Callable[[], str]]:
    """Make migrated databases that outlive one test: ``url = scratch_database()``."""
    names: list[str] = []

    def make() -> str:
        name = f"atlas_td_{uuid.uuid4().hex[:12]}"
        _admin(server_url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        names.append(name)
        with psycopg.connect(url_for(name), autocommit=True) as conn:
            apply_migrations(conn)
        return url_for(name)

    yield make
    for name in names:
        _admin(
            server_url,
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)),
        )


@pytest.fixture(scope="session")
def seeded_url(scratch_database: Callable[[], str]) -> str:
    """A database of synthetic sessions that tests only read (never write to it)."""
    url = scratch_database()
    with psycopg.connect(url, autocommit=True) as conn:
        seed_sessions(conn, SEEDED_SESSIONS, seed=11, legacy_fraction=0.1)
    return url


@pytest.fixture
def oracle(seeded_url: str) -> IdsQuery:
    """``oracle("status = %s", ["failed"])``: what SQL says the API should return."""

    def query(where: str = "TRUE", params: object = (), **kw: str) -> list[int]:
        return ids_where(seeded_url, where, params, **kw)

    return query
