"""Readers run no DDL: a role that may only SELECT can query and export."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from atlas.storage.synthetic import seed_sessions
from atlas.training_data import count_training_sessions, get_training_sessions
from atlas.training_data.export import export_jsonl


@pytest.fixture
def reader_url(db_url: str) -> Iterator[str]:
    role = f"atlas_reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 12, seed=2)
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(
            sql.Identifier(role)))  # fmt: skip
    yield psycopg.conninfo.make_conninfo(db_url, user=role)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_select_only_role_reads_and_exports(reader_url, tmp_path):
    with psycopg.connect(reader_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("CREATE TABLE probe (x int)")  # the role really cannot change the schema
    sessions = get_training_sessions(reader_url, include_all_review_statuses=True)
    assert len(sessions) == 12
    assert count_training_sessions(reader_url, include_all_review_statuses=True) == 12
    out = tmp_path / "ro.jsonl"
    summary = export_jsonl(str(out), reader_url, include_all_review_statuses=True)
    assert summary.sessions == 12 and len(out.read_text().splitlines()) == 12
