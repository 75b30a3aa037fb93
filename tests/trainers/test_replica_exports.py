"""The trainer exports (parquet, GRPO groups, DPO pairs) read a hot standby as the primary."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from replica import ReplicaDatabase

from atlas.storage.synthetic import seed_sessions
from trainers.exports import export_dpo, export_grpo, export_parquet

ALL = {"include_all_review_statuses": True}


@pytest.fixture
def pair(replica_db: ReplicaDatabase) -> ReplicaDatabase:
    """Sixteen sessions on four shared tasks, so that groups and pairs form."""
    with psycopg.connect(replica_db.primary, autocommit=True) as conn:
        seed_sessions(conn, 16, seed=7)
        conn.execute("UPDATE sessions SET task = 'task ' || (id % 4)")
    replica_db.replay()
    return replica_db


@pytest.mark.parametrize(
    ("export", "name"),
    [
        pytest.param(export_parquet, "out.parquet", id="parquet"),
        pytest.param(export_grpo, "grpo.jsonl", id="grpo"),
        pytest.param(export_dpo, "dpo.jsonl", id="dpo"),
    ],
)
def test_a_trainer_export_of_the_standby_equals_the_primarys(
    pair: ReplicaDatabase, tmp_path: Path, export: Callable[..., Any], name: str
) -> None:
    (tmp_path / "standby").mkdir()
    (tmp_path / "primary").mkdir()
    on_standby = export(str(tmp_path / "standby" / name), pair.standby, **ALL)
    on_primary = export(str(tmp_path / "primary" / name), pair.primary, **ALL)
    assert on_standby.records == on_primary.records > 0
    if name.endswith(".jsonl"):  # parquet files carry their writing time
        standby_bytes = (tmp_path / "standby" / name).read_bytes()
        assert standby_bytes == (tmp_path / "primary" / name).read_bytes()
