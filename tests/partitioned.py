"""Databases whose trajectory_events is partitioned, for running existing tests on that layout.

::

    from partitioned import partitioned_template, db_url   # tests/ is on sys.path

A module that imports these fixtures (``db_url`` under its usual name) runs
every test it defines or imports on a fresh database that went through
``partition_events`` (monthly partitions, the current one and three ahead,
and DEFAULT) right after the migrations, instead of the plain one of
``tests/conftest.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql

from atlas.storage.partition import partition_events

__all__ = ["db_url", "is_partitioned", "partition", "partitioned_template"]


def partition(url: str, interval: str = "month") -> None:
    """Partition the events of the database at ``url``."""
    with psycopg.connect(url, autocommit=True) as conn:
        partition_events(conn, interval=interval)


def is_partitioned(url: str) -> bool:
    """True when trajectory_events at ``url`` is a partitioned table."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT relkind = 'p' FROM pg_class WHERE oid = 'trajectory_events'::regclass"
        ).fetchone()
    return bool(row and row[0])


def _admin(server_url: str, statement: sql.Composable) -> None:
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(statement)


def _clone(server_url: str, template: str, prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    _admin(
        server_url,
        sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        ),
    )
    return name


def _drop(server_url: str, name: str) -> None:
    _admin(
        server_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    )


@pytest.fixture(scope="session")
def partitioned_template(
    server_url: str, url_for: Callable[[str], str], _template: str
) -> Iterator[str]:
    """The migrated template of conftest, copied and partitioned once per run."""
    name = _clone(server_url, _template, "atlas_ptpl")
    partition(url_for(name))
    yield name
    _drop(server_url, name)


@pytest.fixture
def db_url(
    server_url: str, url_for: Callable[[str], str], partitioned_template: str
) -> Iterator[str]:
    """A fresh database with the current schema and trajectory_events partitioned."""
    name = _clone(server_url, partitioned_template, "atlas_tp")
    yield url_for(name)
    _drop(server_url, name)
