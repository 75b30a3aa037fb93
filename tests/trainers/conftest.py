"""Fixtures for the training stack: one seeded database shared read-only, and its export.

``trainer_db`` holds 24 synthetic sessions (a fifth in legacy shapes) whose
tasks are rewritten to four shared texts, so grouping by task finds groups;
review statuses stay mixed, so readers pass ``include_all_review_statuses``.
Tests that write use the per-test ``db_url`` instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from atlas.runtime.traces import AtlasSessionTrace
from atlas.storage.migrate import apply_migrations
from atlas.storage.synthetic import seed_sessions
from atlas.training_data import get_training_sessions
from atlas.training_data.export import export_jsonl


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the Ray tests unless the marker expression names them (``-m ray``).

    They start a local Ray cluster; ``.ci/run`` runs them once per CI run.
    """
    if "ray" in (config.option.markexpr or ""):
        return
    keep = [item for item in items if item.get_closest_marker("ray") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


@pytest.fixture(scope="session")
def trainer_db(server_url: str, url_for: Callable[[str], str]) -> Iterator[str]:
    """URL of the shared seeded database (tests must not write to it)."""
    name = f"atlas_trn_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(url_for(name), autocommit=True) as conn:
        apply_migrations(conn)
        seed_sessions(conn, 24, seed=5, legacy_fraction=0.2)
        conn.execute("UPDATE sessions SET task = 'Shared task ' || (id % 4)")
    yield url_for(name)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def trainer_export(trainer_db: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole of ``trainer_db`` exported by arc-atlas as JSONL."""
    path = tmp_path_factory.mktemp("trainer-export") / "traces.jsonl"
    export_jsonl(str(path), trainer_db, include_all_review_statuses=True)
    return path


@pytest.fixture(scope="session")
def trainer_sessions(trainer_db: str) -> list[AtlasSessionTrace]:
    """Every session of ``trainer_db``, read through the Python API."""
    return get_training_sessions(trainer_db, include_all_review_statuses=True)


@pytest.fixture
def seeded(db_url: str) -> str:
    """30 sessions, every third pending, the rest approved."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 30, seed=6)
        conn.execute(
            "UPDATE sessions SET review_status = CASE WHEN id % 3 = 0 THEN 'pending' "
            "ELSE 'approved' END"
        )
    return db_url
