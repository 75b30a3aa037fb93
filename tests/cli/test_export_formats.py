"""``arc-atlas export --format parquet|grpo|dpo`` through the real entry point."""

from __future__ import annotations

import gzip
import json

import psycopg
import pyarrow.parquet as pq
import pytest

from atlas.storage.synthetic import seed_sessions


@pytest.fixture
def shared_tasks(db_url: str) -> str:
    """16 sessions over 4 tasks, all approved: groups and pairs can form."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 16, seed=8)
        conn.execute("UPDATE sessions SET review_status = 'approved', task = 'task ' || (id % 4)")
    return db_url


def test_parquet_has_one_row_per_step(cli, shared_tasks, tmp_path):
    out = tmp_path / "records.parquet"
    result = cli("--database-url", shared_tasks, "-o", str(out), "--format", "parquet")
    assert result.returncode == 0, result.stderr
    with psycopg.connect(shared_tasks) as conn:
        steps = conn.execute("SELECT count(*) FROM step_results").fetchone()[0]
    table = pq.read_table(out)
    assert table.num_rows == steps
    assert {"prompt", "reward_score", "session_reward"} <= set(table.column_names)


def test_grpo_groups_by_task_with_zero_mean_advantages(cli, shared_tasks, tmp_path):
    out = tmp_path / "groups.jsonl"
    result = cli("--database-url", shared_tasks, "-o", str(out), "--format", "grpo")
    assert result.returncode == 0, result.stderr
    groups = [json.loads(line) for line in out.read_text().splitlines()]
    assert {g["key"] for g in groups} <= {f"task {i}" for i in range(4)}
    for group in groups:
        assert abs(sum(m["advantage"] for m in group["members"])) < 1e-6


def test_dpo_pairs_respect_the_margin(cli, shared_tasks, tmp_path):
    out = tmp_path / "pairs.jsonl"
    result = cli("--database-url", shared_tasks, "-o", str(out), "--format", "dpo",
                 "--min-margin", "0.05")  # fmt: skip
    assert result.returncode == 0, result.stderr
    pairs = [json.loads(line) for line in out.read_text().splitlines()]
    assert pairs
    assert all(p["chosen_reward"] - p["rejected_reward"] >= 0.05 for p in pairs)


def test_no_pair_formed_exits_1(cli, shared_tasks, tmp_path):
    out = tmp_path / "none.jsonl"
    result = cli("--database-url", shared_tasks, "-o", str(out), "--format", "dpo",
                 "--min-margin", "2")  # fmt: skip
    assert result.returncode == 1
    assert "formed no dpo pair; nothing was written" in result.stderr
    assert not out.exists()


def test_grpo_takes_a_compression_level_for_a_compressed_output(cli, shared_tasks, tmp_path):
    out = tmp_path / "groups.jsonl.gz"
    result = cli("--database-url", shared_tasks, "-o", str(out), "--format", "grpo",
                 "--compression-level", "0")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert all(
        json.loads(line)["members"] for line in gzip.decompress(out.read_bytes()).splitlines()
    )


def test_parquet_takes_records(cli, shared_tasks, tmp_path):
    out = tmp_path / "sessions.parquet"
    result = cli("--database-url", shared_tasks, "-o", str(out), "--format", "parquet",
                 "--records", "sessions")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert pq.read_table(out).num_rows == 16
