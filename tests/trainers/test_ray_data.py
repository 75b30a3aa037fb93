"""read_sessions on a local Ray cluster (``-m ray``; ``.ci/run`` runs it once per CI run).

One cluster for the module (``ray.init(num_cpus=2)``), shut down at its end.
Each test reads a database of its own through real read tasks in Ray's
worker processes, which were started before any test changed this
process's environment.
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from replica import ReplicaDatabase

from atlas.errors import InvalidFilter
from atlas.storage import seed_sessions
from atlas.training_data import exported_snapshot, get_training_sessions
from trainers.columns import iter_rows
from trainers.parquet import arrow_schema
from trainers.runtime_dataset import sessions_to_rl_records

ray = pytest.importorskip("ray")
from trainers.ray_data import read_sessions  # noqa: E402

pytestmark = [
    pytest.mark.ray,
    # Ray warns about its own deprecated settings while it sets up its data context.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*"),
]

ALL = {"include_all_review_statuses": True}
APPROVED = "SELECT id FROM sessions WHERE review_status = 'approved' ORDER BY id"


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def sql_ids(url: str, query: str = APPROVED) -> list[int]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute(query)]


def ids(dataset: ray.data.Dataset) -> list[int]:
    return sorted(row["session_id"] for row in dataset.iter_rows())


def idle_transactions(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'idle in transaction'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_count_and_ids_equal_sql(seeded: str) -> None:
    dataset = read_sessions(seeded, parallelism=3)
    assert dataset.count() == len(sql_ids(seeded)) == 20
    assert ids(dataset) == sql_ids(seeded)
    assert dataset.materialize().num_blocks() >= 3  # one task per shard, at least a block each


def test_writes_after_the_call_are_all_out(seeded: str) -> None:
    before = sql_ids(seeded)
    dataset = read_sessions(seeded, parallelism=2)
    with psycopg.connect(seeded, autocommit=True) as writer:
        seed_sessions(writer, 5, seed=7)
        writer.execute("UPDATE sessions SET review_status = 'approved'")
        writer.execute("DELETE FROM sessions WHERE id = %s", (before[0],))
    assert ids(dataset) == before  # read by the tasks only now, in the snapshot
    assert ids(dataset) == before  # and again: the same snapshot


def test_iter_batches_and_write_parquet(seeded: str, tmp_path: Path) -> None:
    dataset = read_sessions(seeded, kind="flat", parallelism=2, block_rows=5)
    batches = list(dataset.iter_batches(batch_size=8, batch_format="pyarrow"))
    rows = sum(len(batch) for batch in batches)
    assert rows > 20 and all(len(b) <= 8 for b in batches)
    dataset.write_parquet(str(tmp_path / "flat"))
    table = pq.read_table(tmp_path / "flat")
    assert len(table) == rows
    assert table.schema.remove_metadata() == arrow_schema("flat").remove_metadata()


def test_rl_records_equal_sessions_to_rl_records(seeded: str) -> None:
    rows = read_sessions(seeded, kind="rl", parallelism=4, **ALL).take_all()
    records = sessions_to_rl_records(get_training_sessions(seeded, **ALL))
    expected = pa.Table.from_pylist(list(iter_rows(records, "rl")), schema=arrow_schema("rl"))
    key = lambda row: (row["session_id"], row["step_id"])  # noqa: E731
    assert sorted(rows, key=key) == sorted(expected.to_pylist(), key=key)
    assert len(rows) == len(records) > 30


def test_the_tasks_apply_the_drivers_gate(seeded: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The workers started with the cluster, without this variable: only the driver has it.
    monkeypatch.setenv("ATLAS_REVIEW_REQUIRE_APPROVAL", "0")
    in_a_task = ray.remote(lambda: os.environ.get("ATLAS_REVIEW_REQUIRE_APPROVAL"))
    assert ray.get(in_a_task.remote()) is None
    assert ids(read_sessions(seeded, parallelism=2)) == list(range(1, 31))


def test_a_task_after_the_snapshot_ended_fails_clearly(seeded: str) -> None:
    dataset = read_sessions(seeded, parallelism=2)
    with psycopg.connect(seeded, autocommit=True) as admin:
        # The driver's transaction ends (a restart, an administrator) before the tasks run.
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
            "datname = current_database() AND state = 'idle in transaction'"
        )
    with pytest.raises(InvalidFilter) as raised:
        dataset.take_all()
    # Ray raises RayTaskError(InvalidFilter), an InvalidFilter; .cause is the task's own
    # error, whose first line is ours (Ray adds lines about its retries below it).
    cause = str(getattr(raised.value, "cause", raised.value)).splitlines()
    assert re.fullmatch(r"snapshot \S+ is not open on this server: .*\.", cause[0])


def test_a_snapshot_given_is_the_one_read(seeded: str) -> None:
    with exported_snapshot(seeded) as snapshot:
        with psycopg.connect(seeded, autocommit=True) as writer:
            writer.execute("DELETE FROM sessions")
        dataset = read_sessions(seeded, parallelism=2, snapshot=snapshot, **ALL)
    assert ids(dataset) == list(range(1, 31))


def test_the_snapshot_is_released_with_the_dataset(seeded: str) -> None:
    dataset = read_sessions(seeded, parallelism=2).map(lambda row: row)
    assert idle_transactions(seeded) == 1
    assert dataset.count() == 20
    del dataset
    gc.collect()
    assert idle_transactions(seeded) == 0


def test_no_password_in_task_names_or_reprs(seeded: str) -> None:
    url = seeded.replace("://postgres@", "://postgres:Sentinel-Pw@", 1)
    if url == seeded:
        pytest.skip("the test server's URL names no user to give a password")
    dataset = read_sessions(url, parallelism=2).materialize()
    shown = f"{dataset!r} {dataset.stats()} {dataset._logical_plan.dag!r}"
    assert "Sentinel-Pw" not in shown and "AtlasSessions" in shown


def test_a_hot_standby_reads_as_the_primary(replica_db: ReplicaDatabase) -> None:
    with psycopg.connect(replica_db.primary, autocommit=True) as conn:
        seed_sessions(conn, 12, seed=8)
    replica_db.replay()
    dataset = read_sessions(replica_db.standby, kind="rl", parallelism=2, **ALL)
    with psycopg.connect(replica_db.primary, autocommit=True) as conn:
        seed_sessions(conn, 3, seed=9)  # written after the call, replayed: out
    replica_db.replay()
    rows = dataset.take_all()
    on_primary = read_sessions(replica_db.primary, kind="rl", parallelism=3, **ALL).take_all()
    key = lambda row: (row["session_id"], row["step_id"])  # noqa: E731
    assert {row["session_id"] for row in rows} == set(range(1, 13))
    assert {row["session_id"] for row in on_primary} == set(range(1, 16))
    older = [row for row in on_primary if row["session_id"] <= 12]
    assert sorted(rows, key=key) == sorted(older, key=key)
