"""The facts Python builds SQL from (atlas.storage.schema) are what the migrated database has."""

from __future__ import annotations

import psycopg

from atlas.storage.schema import TABLES, reward_score


def test_the_tables_are_the_databases(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'atlas_schema_migrations'"
        ).fetchall()
    assert {name for (name,) in rows} == set(TABLES)


def test_the_reward_expression_is_the_indexed_one(db_url: str) -> None:
    # PostgreSQL normalises an indexed expression; an index built from ours
    # must come out exactly like sessions_reward_score_idx.
    with psycopg.connect(db_url) as conn:
        conn.execute(f"CREATE INDEX atlas_probe_idx ON sessions (({reward_score()}))")
        stored, probe = (
            conn.execute("SELECT pg_get_indexdef(%s::regclass)", [name]).fetchone()[0]  # type: ignore[index]
            for name in ("sessions_reward_score_idx", "atlas_probe_idx")
        )
        conn.rollback()
    assert probe.replace("atlas_probe_idx", "sessions_reward_score_idx") == stored


def test_an_alias_qualifies_the_column() -> None:
    assert reward_score("s") == "(s.reward_stats ->> 'score')::float"
