"""trainers.ray_data without a Ray cluster: the read task's body, the plan, the checks.

The tasks' body, :func:`read_shard`, is plain code: here it runs in this
process against the test server. What needs Ray itself is in
``test_ray_data.py`` (``-m ray``).
"""

from __future__ import annotations

import pickle
import sys
import warnings
from array import array
from dataclasses import replace
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from replica import ReplicaDatabase

from atlas.errors import InvalidFilter, MissingExtra, ReviewGateWarning
from atlas.storage import ConnectionSettings, resolve_settings, seed_sessions
from atlas.training_data import TrainingQuery, exported_snapshot, get_training_sessions
from atlas.training_data.assembly import LoadOptions
from atlas.training_data.snapshot import SharedSnapshot
from trainers.columns import iter_rows
from trainers.parquet import arrow_schema
from trainers.ray_data import ShardRead, SnapshotHolder, read_sessions, read_shard

ALL = {"include_all_review_statuses": True}


def shards(holder: SnapshotHolder, kind: str, count: int, **filters: Any) -> list[ShardRead]:
    """What read_sessions hands its tasks: the driver's listing, one read per shard."""
    query = TrainingQuery.build(**filters)
    parts = holder.list_shards(query, count)
    common = {"page_size": 4, "block_rows": 7}
    return [
        ShardRead(
            holder.settings,
            holder.shared,
            ids,
            i,
            count,
            kind,
            query.options,
            query.filters,
            query.gate,
            **common,
        )
        for i, ids in enumerate(parts, start=1)
    ]


def read(tasks: list[ShardRead]) -> list[pa.Table]:
    return [table for task in tasks for table in read_shard(task)]


def session_ids(tables: list[pa.Table]) -> list[int]:
    return sorted(i for t in tables for i in t.column("session_id").to_pylist())


def test_the_shards_are_those_of_the_shard_filter_in_the_snapshot(seeded: str) -> None:
    expected = [
        sorted(t.session_id for t in get_training_sessions(seeded, shard=(i, 3), **ALL))
        for i in (1, 2, 3)
    ]
    holder = SnapshotHolder(resolve_settings(seeded))
    tasks = shards(holder, "sessions", 3, **ALL)
    with psycopg.connect(seeded, autocommit=True) as writer:
        seed_sessions(writer, 4, seed=5)  # after the snapshot: out
        writer.execute("UPDATE sessions SET review_status = 'quarantined'")
        writer.execute("DELETE FROM sessions WHERE id = 1")
    tables = [read([task]) for task in tasks]
    assert [session_ids(part) for part in tables] == expected
    assert all(expected) and sorted(i for part in expected for i in part) == list(range(1, 31))
    assert all(len(t) <= 7 for part in tables for t in part)
    assert {t.schema for part in tables for t in part} == {arrow_schema("sessions")}
    holder.close()


def test_the_gate_is_applied_once_in_the_listing(seeded: str) -> None:
    holder = SnapshotHolder(resolve_settings(seeded))
    assert session_ids(read(shards(holder, "sessions", 2))) == [i for i in range(1, 31) if i % 3]
    holder.close()


def test_limit_and_offset_choose_the_newest_of_the_whole_selection(seeded: str) -> None:
    window = {"limit": 5, "offset": 2, **ALL}
    holder = SnapshotHolder(resolve_settings(seeded))
    got = session_ids(read(shards(holder, "sessions", 3, **window)))
    assert got == sorted(t.session_id for t in get_training_sessions(seeded, **window))
    holder.close()


def test_a_snapshot_given_is_the_one_read(seeded: str) -> None:
    with exported_snapshot(seeded) as snapshot:
        with psycopg.connect(seeded, autocommit=True) as writer:
            writer.execute("DELETE FROM sessions WHERE id > 10")
        holder = SnapshotHolder(resolve_settings(seeded), snapshot)
    # Still in it after the block: the holder's own transaction keeps it.
    assert set(session_ids(read(shards(holder, "flat", 2, **ALL)))) == set(range(1, 31))
    holder.close()


def test_rl_rows_are_those_of_the_same_sessions(seeded: str) -> None:
    holder = SnapshotHolder(resolve_settings(seeded))
    got = pa.concat_tables(read(shards(holder, "rl", 4, min_reward=0.5, **ALL))).to_pylist()
    holder.close()
    sessions = get_training_sessions(seeded, min_reward=0.5, **ALL)
    expected = pa.Table.from_pylist(list(iter_rows(sessions, "rl")), schema=arrow_schema("rl"))
    key = lambda row: (row["session_id"], row["step_id"])  # noqa: E731
    assert sorted(got, key=key) == sorted(expected.to_pylist(), key=key) and got


def test_an_empty_shard_yields_one_empty_table_with_the_schema(seeded: str) -> None:
    holder = SnapshotHolder(resolve_settings(seeded))
    tables = read(shards(holder, "flat", 2, session_ids=[999]))
    holder.close()
    assert [len(t) for t in tables] == [0, 0]
    assert tables[0].schema == arrow_schema("flat")


def test_a_task_after_the_snapshot_ended_fails_with_one_clear_line(seeded: str) -> None:
    holder = SnapshotHolder(resolve_settings(seeded))
    tasks = shards(holder, "sessions", 1, **ALL)
    holder.close()
    holder.close()  # idempotent
    snapshot = holder.shared.snapshot
    with pytest.raises(InvalidFilter, match=f"^snapshot {snapshot} is not open") as raised:
        read(tasks)
    assert "\n" not in str(raised.value)


def test_a_pickled_holder_carries_the_snapshot_and_never_ends_it(seeded: str) -> None:
    holder = SnapshotHolder(resolve_settings(seeded))
    tasks = shards(holder, "sessions", 1, **ALL)
    copy = pickle.loads(pickle.dumps(holder))
    assert copy.shared == holder.shared
    copy.close()
    del copy
    assert len(session_ids(read(tasks))) == 30  # still open
    holder.close()


def test_a_task_shows_no_password() -> None:
    settings = ConnectionSettings("postgresql://u:Sentinel-Pw@127.0.0.1:1/db")
    shared = SharedSnapshot("00000003-0000001B-1", "1/now", "1", "0/0", False)
    query = TrainingQuery.build()
    task = ShardRead(settings, shared, array("q", [1, 2]), 1, 2, "rl", LoadOptions(),
                     query.filters, query.gate)  # fmt: skip
    assert "Sentinel-Pw" not in repr(task) and "Sentinel-Pw" not in str(task)
    assert repr(task).startswith("ShardRead(1/2, 2 sessions, kind=rl")


@pytest.mark.parametrize(
    ("arguments", "parameter"),
    [
        pytest.param({"limit": -1}, "limit", id="limit"),
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

    holder = SnapshotHolder(resolve_settings(seeded))
    source = SessionsDatasource(holder, shards(holder, "rl", 3, **ALL))
    tasks = source.get_read_tasks(200)  # Ray's default asks for many blocks
    assert len(tasks) == 3 and source.get_name() == "AtlasSessions"
    assert source.estimate_inmemory_data_size() is None
    # A read task is a plain callable: called here, as a Ray worker would.
    rows = [row for task in tasks for table in task() for row in table.to_pylist()]
    assert sorted({row["session_id"] for row in rows}) == list(range(1, 31))
    holder.close()


@pytest.mark.parametrize(
    ("gate", "expected"),
    [
        pytest.param({}, list(range(2, 13)), id="default-gate"),
        pytest.param(ALL, list(range(1, 13)), id="all-statuses"),
    ],
)
def test_a_task_on_another_server_reads_the_listed_sessions_the_gate_still_lets_through(
    replica_db: ReplicaDatabase, gate: dict[str, bool], expected: list[int]
) -> None:
    with psycopg.connect(replica_db.primary, autocommit=True) as conn:
        seed_sessions(conn, 12, seed=8)
        conn.execute("UPDATE sessions SET status = 'succeeded', review_status = 'approved'")
    replica_db.replay()
    holder = SnapshotHolder(resolve_settings(replica_db.standby))
    tasks = shards(holder, "sessions", 2, **gate)
    assert sorted(i for task in tasks for i in task.ids) == list(range(1, 13))
    replica_db.write("UPDATE sessions SET review_status = 'quarantined' WHERE id = 1")
    with psycopg.connect(replica_db.primary, autocommit=True) as conn:
        seed_sessions(conn, 3, seed=9)  # not listed: out
        conn.execute(
            "UPDATE sessions SET status = 'succeeded', review_status = 'approved' WHERE id > 12"
        )
    # The tasks reach the primary (as behind a load balancer): the snapshot is not there, so
    # they read the listed sessions in a later snapshot, where session 1 is quarantined.
    elsewhere = [replace(task, settings=resolve_settings(replica_db.primary)) for task in tasks]
    rows = [row for table in read(elsewhere) for row in table.to_pylist()]
    assert sorted(row["session_id"] for row in rows) == expected
    assert all(row["review_status"] == "approved" for row in rows if row["session_id"] != 1)
    holder.close()


def test_a_listing_the_gate_emptied_warns_as_the_api_does(seeded: str) -> None:
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute("UPDATE sessions SET review_status = 'pending'")
    holder = SnapshotHolder(resolve_settings(seeded))
    with pytest.warns(ReviewGateWarning, match=r"hid 30 matching session\(s\)"):
        assert not any(holder.list_shards(TrainingQuery.build(), 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not any(holder.list_shards(TrainingQuery.build(session_ids=[99999]), 2))
        assert sum(map(len, holder.list_shards(TrainingQuery.build(**ALL), 2))) == 30
    holder.close()
