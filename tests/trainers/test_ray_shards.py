"""trainers.ray_data without a Ray cluster: the read task's body, the plan, the checks.

The tasks' body, :func:`read_shard`, is plain code: here it runs in this
process against the test server. What needs Ray itself is in
``test_ray_data.py`` (``-m ray``).
"""

from __future__ import annotations

import pickle
import sys

import psycopg
import pyarrow as pa
import pytest

from atlas.errors import InvalidFilter, MissingExtra
from atlas.storage import ConnectionSettings, resolve_settings, seed_sessions
from atlas.training_data import TrainingQuery, exported_snapshot, get_training_sessions
from trainers.columns import iter_rows
from trainers.parquet import arrow_schema
from trainers.ray_data import SnapshotHolder, plan_reads, read_sessions, read_shard

ALL = {"include_all_review_statuses": True}


@pytest.fixture
def seeded(db_url: str) -> str:
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 30, seed=4)
        conn.execute(
            "UPDATE sessions SET review_status = CASE WHEN id % 3 = 0 THEN 'pending' "
            "ELSE 'approved' END"
        )
    return db_url


def tables(url: str, snapshot: str, kind: str, parallelism: int, **filters: object) -> list:
    query = TrainingQuery.build(**filters)  # type: ignore[arg-type]
    reads = plan_reads(resolve_settings(url), snapshot, query, kind=kind,
                       parallelism=parallelism, block_rows=7)  # fmt: skip
    return [table for read in reads for table in read_shard(read)]


def test_the_shards_together_are_the_selection_in_the_snapshot(seeded: str) -> None:
    with exported_snapshot(seeded) as snapshot:
        with psycopg.connect(seeded, autocommit=True) as writer:
            seed_sessions(writer, 4, seed=5)  # after the snapshot: out
            writer.execute("UPDATE sessions SET review_status = 'approved'")
        read = tables(seeded, snapshot, "sessions", 3, **ALL)
    ids = [i for t in read for i in t.column("session_id").to_pylist()]
    assert sorted(ids) == list(range(1, 31))
    assert all(len(t) <= 7 for t in read)
    assert {t.schema for t in read} == {arrow_schema("sessions")}


def test_the_gate_of_the_query_is_applied_as_resolved(seeded: str) -> None:
    with exported_snapshot(seeded) as snapshot:
        read = tables(seeded, snapshot, "sessions", 2)
    ids = sorted(i for t in read for i in t.column("session_id").to_pylist())
    assert ids == [i for i in range(1, 31) if i % 3]


def test_rl_rows_are_those_of_the_same_sessions(seeded: str) -> None:
    with exported_snapshot(seeded) as snapshot:
        read = tables(seeded, snapshot, "rl", 4, min_reward=0.5, **ALL)
    got = pa.concat_tables(read).to_pylist()
    sessions = get_training_sessions(seeded, min_reward=0.5, **ALL)
    expected = pa.Table.from_pylist(list(iter_rows(sessions, "rl")), schema=arrow_schema("rl"))
    key = lambda row: (row["session_id"], row["step_id"])  # noqa: E731
    assert sorted(got, key=key) == sorted(expected.to_pylist(), key=key) and got


def test_an_empty_shard_yields_one_empty_table_with_the_schema(seeded: str) -> None:
    with exported_snapshot(seeded) as snapshot:
        read = tables(seeded, snapshot, "flat", 2, session_ids=[999])
    assert [len(t) for t in read] == [0, 0]
    assert read[0].schema == arrow_schema("flat")


def test_a_closed_snapshot_fails_with_one_clear_line(seeded: str) -> None:
    with exported_snapshot(seeded) as snapshot:
        pass
    with pytest.raises(InvalidFilter, match=f"^snapshot {snapshot} is not open") as raised:
        tables(seeded, snapshot, "sessions", 1)
    assert "\n" not in str(raised.value)


def test_a_pickled_holder_carries_the_id_and_never_closes_the_original(seeded: str) -> None:
    holder = SnapshotHolder(resolve_settings(seeded), None, None)
    copy = pickle.loads(pickle.dumps(holder))
    assert copy.snapshot == holder.snapshot
    copy.close()
    del copy
    tables(seeded, holder.snapshot, "sessions", 1)  # still open
    holder.close()
    with pytest.raises(InvalidFilter, match="is not open"):
        tables(seeded, holder.snapshot, "sessions", 1)


def test_a_read_shows_no_password() -> None:
    settings = ConnectionSettings("postgresql://u:Sentinel-Pw@127.0.0.1:1/db")
    query = TrainingQuery.build()
    (read,) = plan_reads(settings, "00000003-0000001B-1", query, kind="rl", parallelism=1)
    assert "Sentinel-Pw" not in repr(read) and "Sentinel-Pw" not in str(read)


@pytest.mark.parametrize(
    ("arguments", "parameter"),
    [
        pytest.param({"limit": 5}, "limit", id="limit"),
        pytest.param({"offset": 5}, "offset", id="offset"),
        pytest.param({"shard": "1/2"}, "shard", id="shard"),
        pytest.param({"kind": "dpo"}, "kind", id="dpo"),
        pytest.param({"kind": "records"}, "kind", id="unknown-kind"),
        pytest.param({"parallelism": 0}, "parallelism", id="no-tasks"),
        pytest.param({"parallelism": True}, "parallelism", id="bool-tasks"),
        pytest.param({"block_rows": 0}, "block_rows", id="empty-blocks"),
        pytest.param({"min_rewrd": 0.5}, "min_rewrd", id="typo"),
        pytest.param({"min_reward": "high"}, "min_reward", id="bad-reward"),
        pytest.param({"review_status_filters": "done"}, "review_status_filters", id="status"),
        pytest.param({"snapshot": "yesterday"}, "snapshot", id="snapshot"),
    ],
)
def test_bad_arguments_fail_in_the_driver_naming_the_parameter(
    arguments: dict[str, object], parameter: str
) -> None:
    # An unreachable database: the check must come before any connection.
    with pytest.raises(InvalidFilter) as raised:
        read_sessions("postgresql://nobody@127.0.0.1:1/none", **arguments)  # type: ignore[arg-type]
    assert raised.value.parameter == parameter


def test_without_ray_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.data", None)
    with pytest.raises(MissingExtra, match=r"ray is not installed.*\[ray\]") as raised:
        read_sessions("postgresql://nobody@127.0.0.1:1/none")
    assert raised.value.extra == "ray"


def test_the_datasource_makes_one_task_per_shard_whatever_ray_asks(seeded: str) -> None:
    from trainers._ray_source import SessionsDatasource

    settings = resolve_settings(seeded)
    holder = SnapshotHolder(settings, None, None)
    reads = plan_reads(settings, holder.snapshot, TrainingQuery.build(**ALL), kind="rl",
                       parallelism=3)  # fmt: skip
    source = SessionsDatasource(holder, reads)
    tasks = source.get_read_tasks(200)  # Ray's default asks for many blocks
    assert len(tasks) == 3 and source.get_name() == "AtlasSessions"
    assert source.estimate_inmemory_data_size() is None
    # A read task is a plain callable: called here, as a Ray worker would.
    rows = [row for task in tasks for table in task() for row in table.to_pylist()]
    assert sorted({row["session_id"] for row in rows}) == list(range(1, 31))
    holder.close()
