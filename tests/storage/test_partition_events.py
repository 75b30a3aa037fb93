"""Partitioning trajectory_events (atlas.storage.partition), against a real PostgreSQL.

The conversion loses nothing and keeps ids, the 002 queries and their
indexes, the envelope trigger and the writer; partitions are made ahead and
keep up with DEFAULT; retention detaches or drops whole partitions; a failed
conversion leaves the old table as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from atlas.errors import DatabaseError, InvalidFilter, SchemaOutOfDate
from atlas.storage import SessionWriter
from atlas.storage.partition import (
    apply_retention,
    create_partitions_ahead,
    events_layout,
    interval_after,
    interval_start,
    partition_events,
    partition_name,
)
from atlas.storage.synthetic import seed_sessions
from atlas.training_data.export import export_jsonl

UTC = timezone.utc
NOW = datetime.now(UTC)
# Stored timestamps far from the seeded ones: the first two get partitions of
# their own; the others (beyond years 1-9998, or infinite) land in DEFAULT.
ODD_TIMES = ["1900-01-01 00:00:00+00", "3000-06-01 00:00:00+00", "infinity", "-infinity",
             "12000-01-01 00:00:00+00", "0044-03-15 00:00:00+00 BC"]  # fmt: skip
IN_DEFAULT = ODD_TIMES[2:]
ROWS = "SELECT id, session_id, event, created_at::text FROM trajectory_events ORDER BY id"


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """Twelve sessions nine days apart (legacy ones among them) and events at odd times."""
    with psycopg.connect(db_url, autocommit=True) as connection:
        seed_sessions(connection, 12, seed=4, legacy_fraction=0.25, spacing=timedelta(days=9))
        for when in ODD_TIMES:
            connection.execute(
                "INSERT INTO trajectory_events (session_id, event, created_at) VALUES (1, %s, %s)",
                (Jsonb({"event_type": "odd", "at": when}), when),
            )
        yield connection


def scalar(conn: psycopg.Connection[Any], query: str, *params: Any) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def test_conversion_keeps_every_row_and_id(conn: psycopg.Connection[Any]) -> None:
    before = conn.execute(ROWS).fetchall()
    done = partition_events(conn)
    assert conn.execute(ROWS).fetchall() == before
    assert (done.already, done.rows) == (False, len(before))
    assert scalar(conn, "SELECT relkind FROM pg_class WHERE relname = 'trajectory_events'") == "p"


def test_odd_times_land_in_default_or_a_partition_of_their_own(
    conn: psycopg.Connection[Any],
) -> None:
    done = partition_events(conn)
    found = conn.execute("SELECT event ->> 'at' FROM trajectory_events_default ORDER BY id")
    assert [r[0] for r in found] == IN_DEFAULT
    assert {"trajectory_events_p190001", "trajectory_events_p300006"} <= set(done.partitions)


def test_partitions_cover_the_data_and_the_months_ahead(conn: psycopg.Connection[Any]) -> None:
    first = scalar(conn, "SELECT min(created_at) FROM trajectory_events WHERE event ? 'actor'")
    done = partition_events(conn, ahead=2)
    month = interval_start(NOW, "month")
    ahead = [
        month,
        interval_after(month, "month"),
        interval_after(interval_after(month, "month"), "month"),
    ]
    for start in [interval_start(first, "month"), *ahead]:
        assert partition_name(start, "month") in done.partitions
    assert done.partitions[-1] == "trajectory_events_default"


def test_key_indexes_trigger_and_foreign_key_are_carried(conn: psycopg.Connection[Any]) -> None:
    partition_events(conn)
    assert (
        scalar(
            conn,
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = %s",
            "trajectory_events_pkey",
        )
        == "PRIMARY KEY (id, created_at)"
    )
    assert "(session_id, id)" in scalar(
        conn, "SELECT indexdef FROM pg_indexes WHERE indexname = 'trajectory_events_session_idx'"
    )
    assert (
        scalar(
            conn,
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'trajectory_events_lift_nested' "
            "AND tgrelid = 'trajectory_events'::regclass",
        )
        == 1
    )
    conn.execute("DELETE FROM sessions WHERE id = 1")  # ON DELETE CASCADE still holds
    assert scalar(conn, "SELECT count(*) FROM trajectory_events WHERE session_id = 1") == 0


def test_new_rows_continue_the_id_sequence(conn: psycopg.Connection[Any]) -> None:
    highest = scalar(conn, "SELECT max(id) FROM trajectory_events")
    partition_events(conn)
    new = scalar(
        conn, "INSERT INTO trajectory_events (session_id, event) VALUES (2, '{}') RETURNING id"
    )
    assert new > highest


def test_an_atlas_sdk_nested_insert_is_lifted_after_partitioning(
    conn: psycopg.Connection[Any],
) -> None:
    partition_events(conn)
    nested = {"payload": {"event_type": "TOOL_END", "metadata": {"actor": "student"}}}
    conn.execute(
        "INSERT INTO trajectory_events (session_id, event) VALUES (2, %s)", (Jsonb(nested),)
    )
    found = scalar(
        conn,
        "SELECT event ->> 'actor' FROM trajectory_events WHERE event ->> 'event_type' = %s",
        "TOOL_END",
    )
    assert found == "student"


@pytest.mark.parametrize("when", ["0200-01-01T00:00:00Z", "9999-12-31T00:00:00Z", "infinity"])
def test_inserts_far_from_any_partition_land_in_default(
    conn: psycopg.Connection[Any], when: str
) -> None:
    partition_events(conn)
    where = scalar(
        conn,
        "INSERT INTO trajectory_events (session_id, event, created_at) VALUES (2, '{}', %s) "
        "RETURNING tableoid::regclass::text",
        when,
    )
    assert where == "trajectory_events_default"


def test_the_writer_appends_to_the_partitioned_table(db_url: str, conn: Any) -> None:
    partition_events(conn)
    with SessionWriter.open(db_url) as writer:
        sid = writer.create_session("t")
        writer.append_events(sid, [{"event_type": "x", "timestamp": NOW}, {"event_type": "y"}])
    found = conn.execute(
        "SELECT event ->> 'event_type', tableoid::regclass::text FROM trajectory_events "
        "WHERE session_id = %s ORDER BY id",
        (sid,),
    ).fetchall()
    assert found == [(t, partition_name(interval_start(NOW, "month"), "month")) for t in "xy"]


def test_a_nullable_created_at_keeps_null_rows_under_a_unique_key(
    conn: psycopg.Connection[Any],
) -> None:
    conn.execute("ALTER TABLE trajectory_events ALTER COLUMN created_at DROP NOT NULL")
    conn.execute(
        "INSERT INTO trajectory_events (session_id, event, created_at) VALUES (2, '{}', NULL)"
    )
    before = conn.execute(ROWS).fetchall()
    done = partition_events(conn)
    assert done.key == "UNIQUE (id, created_at)"
    assert conn.execute(ROWS).fetchall() == before
    assert (
        scalar(conn, "SELECT count(*) FROM trajectory_events_default WHERE created_at IS NULL") == 1
    )


def test_export_is_byte_identical_after_partitioning(
    db_url: str, conn: Any, tmp_path: Path
) -> None:
    before, after = tmp_path / "before.jsonl", tmp_path / "after.jsonl"
    export_jsonl(str(before), db_url, include_all_review_statuses=True)
    partition_events(conn, interval="week")
    export_jsonl(str(after), db_url, include_all_review_statuses=True)
    assert after.read_bytes() == before.read_bytes()
    assert len(before.read_bytes().splitlines()) == 12


def _plan(conn: psycopg.Connection[Any], query: str) -> str:
    with conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")
        return "\n".join(r[0] for r in conn.execute("EXPLAIN " + query))


def test_session_lookups_use_the_session_index(conn: psycopg.Connection[Any]) -> None:
    partition_events(conn)
    conn.execute("ANALYZE trajectory_events")
    plan = _plan(conn, "SELECT * FROM trajectory_events WHERE session_id = 3 ORDER BY id")
    assert "Index" in plan and "session_id_id_idx" in plan
    assert "Seq Scan" not in plan


def test_a_time_range_reads_one_partition(conn: psycopg.Connection[Any]) -> None:
    partition_events(conn)
    month = interval_start(NOW, "month")
    plan = _plan(
        conn,
        "SELECT count(*) FROM trajectory_events WHERE event ->> 'event_type' = 'reward' "
        f"AND created_at >= '{month.isoformat()}' AND created_at < "
        f"'{interval_after(month, 'month').isoformat()}'",
    )
    assert partition_name(month, "month") in plan
    assert "trajectory_events_default" not in plan


def test_event_type_filters_find_the_same_rows(conn: psycopg.Connection[Any]) -> None:
    query = "SELECT id FROM trajectory_events WHERE event ->> 'event_type' = %s ORDER BY id"
    before = {t: conn.execute(query, (t,)).fetchall() for t in ("odd", "TOOL_START", "reward")}
    partition_events(conn)
    assert {t: conn.execute(query, (t,)).fetchall() for t in before} == before
    assert before["odd"]


def test_a_second_run_says_it_is_already_partitioned(conn: psycopg.Connection[Any]) -> None:
    partition_events(conn)
    rows = conn.execute(ROWS).fetchall()
    again = partition_events(conn, interval="day")
    assert (again.already, again.interval, again.partitions) == (True, "month", ())
    assert conn.execute(ROWS).fetchall() == rows


def test_a_failed_conversion_leaves_the_old_table_as_it_was(
    conn: psycopg.Connection[Any],
) -> None:
    conn.execute("CREATE VIEW recent_events AS SELECT * FROM trajectory_events")
    before = conn.execute(ROWS).fetchall()
    with pytest.raises(DatabaseError, match="depend on trajectory_events"):
        partition_events(conn)
    assert scalar(conn, "SELECT relkind FROM pg_class WHERE relname = 'trajectory_events'") == "r"
    assert scalar(conn, "SELECT count(*) FROM pg_class WHERE relispartition OR relkind = 'p'") == 0
    assert conn.execute(ROWS).fetchall() == before
    conn.execute("DROP VIEW recent_events")
    assert partition_events(conn).rows == len(before)


def test_a_lock_not_granted_in_time_changes_nothing(db_url: str, conn: Any) -> None:
    with psycopg.connect(db_url) as reader:
        reader.execute("SELECT 1 FROM trajectory_events LIMIT 1")  # holds ACCESS SHARE
        with pytest.raises(DatabaseError, match=r"stayed locked .* more than 0\.2 s"):
            partition_events(conn, lock_timeout=0.2)
    assert scalar(conn, "SELECT relkind FROM pg_class WHERE relname = 'trajectory_events'") == "r"


def test_grants_and_comment_are_carried(conn: psycopg.Connection[Any]) -> None:
    conn.execute("GRANT SELECT, INSERT ON trajectory_events TO PUBLIC")
    conn.execute("COMMENT ON TABLE trajectory_events IS 'events'")
    partition_events(conn)
    privileges = scalar(
        conn,
        "SELECT array_agg(privilege_type::text ORDER BY privilege_type) FROM "
        "information_schema.role_table_grants WHERE table_name = 'trajectory_events' "
        "AND grantee = 'PUBLIC'",
    )
    assert privileges == ["INSERT", "SELECT"]
    assert scalar(conn, "SELECT obj_description('trajectory_events'::regclass)") == "events"


@pytest.mark.parametrize(
    ("interval", "ahead"),
    [pytest.param("hour", 3, id="interval"), pytest.param("day", -1, id="ahead")],
)
def test_bad_arguments_are_refused_before_anything(
    conn: psycopg.Connection[Any], interval: str, ahead: int
) -> None:
    with pytest.raises(InvalidFilter):
        partition_events(conn, interval=interval, ahead=ahead)


def test_a_database_with_pending_migrations_is_refused(empty_db_url: str) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn, pytest.raises(SchemaOutOfDate):
        partition_events(conn)


# -- partitions ahead ----------------------------------------------------------


def test_top_up_creates_what_became_due(conn: psycopg.Connection[Any]) -> None:
    partition_events(conn, ahead=1)
    later = interval_after(interval_after(NOW, "month"), "month")
    top = create_partitions_ahead(conn, now=later)
    due = interval_start(later, "month")
    assert top.created == tuple(
        partition_name(m, "month") for m in (due, interval_after(due, "month"))
    )
    assert create_partitions_ahead(conn, now=later).created == ()


def test_top_up_moves_rows_out_of_default(conn: psycopg.Connection[Any]) -> None:
    partition_events(conn, ahead=0)
    month = interval_after(interval_after(interval_start(NOW, "month"), "month"), "month")
    conn.execute(
        "INSERT INTO trajectory_events (session_id, event, created_at) VALUES (2, '{}', %s)",
        (month + timedelta(days=3),),
    )
    top = create_partitions_ahead(conn, now=month)
    assert (top.created, top.moved) == ((partition_name(month, "month"),), 1)
    assert (
        scalar(
            conn,
            "SELECT count(*) FROM trajectory_events_default WHERE created_at >= %s "
            "AND created_at < %s",
            month,
            interval_after(month, "month"),
        )
        == 0
    )
    assert scalar(conn, "SELECT count(*) FROM " + partition_name(month, "month")) == 1


def test_top_up_of_an_unpartitioned_table_does_nothing(conn: psycopg.Connection[Any]) -> None:
    assert create_partitions_ahead(conn).created == ()


def test_layout_names_interval_partitions_and_default(conn: psycopg.Connection[Any]) -> None:
    assert not events_layout(conn).partitioned
    partition_events(conn, interval="day", ahead=2)
    layout = events_layout(conn)
    assert (layout.interval, layout.ahead) == ("day", 2)
    assert layout.default is not None and layout.default.name == "trajectory_events_default"
    assert layout.ready_until(NOW) == interval_start(NOW, "day") + timedelta(days=3)
    assert layout.ready_until(datetime(1990, 1, 1, tzinfo=UTC)) is None


# -- retention -------------------------------------------------------------------


def _old_partitions(conn: psycopg.Connection[Any], cutoff: datetime) -> list[str]:
    return [p.name for p in events_layout(conn).partitions if p.upper and p.upper <= cutoff]


def test_retention_dry_run_counts_and_changes_nothing(conn: psycopg.Connection[Any]) -> None:
    partition_events(conn)
    cutoff = interval_start(NOW, "month")
    rows = conn.execute(ROWS).fetchall()
    plan = apply_retention(conn, cutoff, dry_run=True)
    assert [p.name for p, _ in plan.partitions] == _old_partitions(conn, cutoff)
    assert (
        plan.rows
        == scalar(
            conn,
            "SELECT count(*) FROM trajectory_events WHERE created_at >= '0001-01-01+00' "
            "AND created_at < %s",
            cutoff,
        )
        > 0
    )
    assert plan.default_rows_before == 2  # -infinity and 44 BC stay in DEFAULT
    assert conn.execute(ROWS).fetchall() == rows


def test_retention_detaches_by_default_and_keeps_the_rows(conn: psycopg.Connection[Any]) -> None:
    partition_events(conn)
    cutoff = interval_start(NOW, "month")
    old = _old_partitions(conn, cutoff)
    done = apply_retention(conn, cutoff)
    assert done.action == "detach" and [p.name for p, _ in done.partitions] == old
    left = "SELECT count(*) FROM trajectory_events WHERE created_at >= '0001-01-01+00' AND "
    assert scalar(conn, left + "created_at < %s", cutoff) == 0
    kept = sum(scalar(conn, f'SELECT count(*) FROM "{name}"') for name in old)
    assert kept == done.rows > 0


def test_retention_drop_deletes_the_partitions(conn: psycopg.Connection[Any]) -> None:
    partition_events(conn)
    cutoff = interval_start(NOW, "month")
    old = _old_partitions(conn, cutoff)
    apply_retention(conn, cutoff, drop=True)
    assert scalar(conn, "SELECT count(*) FROM pg_class WHERE relname = ANY(%s)", old) == 0


def test_retention_stopped_by_a_lock_names_what_it_already_did(
    db_url: str, conn: psycopg.Connection[Any]
) -> None:
    partition_events(conn)
    cutoff = interval_start(NOW, "month")
    old = _old_partitions(conn, cutoff)
    assert len(old) >= 2
    with psycopg.connect(db_url) as reader:
        reader.execute(f'SELECT 1 FROM "{old[1]}" LIMIT 1')  # holds ACCESS SHARE on the second
        with pytest.raises(DatabaseError) as exc:
            apply_retention(conn, cutoff, lock_timeout=0.2)
    message = str(exc.value)
    assert f"(detached before it: {old[0]})" in message and old[1] in message
    assert "nothing was changed" not in message
    assert _old_partitions(conn, cutoff) == old[1:]


def test_a_table_in_the_way_of_a_partition_is_one_sentence_and_changes_nothing(
    conn: psycopg.Connection[Any],
) -> None:
    in_the_way = partition_name(interval_start(NOW, "month"), "month")
    conn.execute(f'CREATE TABLE "{in_the_way}" (id int)')
    before = conn.execute(ROWS).fetchall()
    with pytest.raises(DatabaseError) as exc:
        partition_events(conn)
    message = str(exc.value)
    assert f'relation "{in_the_way}" already exists' in message and "\n" not in message
    assert "nothing was changed" in message and "Rename or drop that table" in message
    assert scalar(conn, "SELECT relkind FROM pg_class WHERE relname = 'trajectory_events'") == "r"
    assert conn.execute(ROWS).fetchall() == before


def test_retention_needs_a_partitioned_table(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(DatabaseError, match="run `arc-atlas db partition-events` first"):
        apply_retention(conn, NOW, dry_run=True)


# -- intervals (pure) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "start", "after", "name"),
    [
        pytest.param("day", "2024-02-29", "2024-03-01", "trajectory_events_p20240229", id="day"),
        pytest.param("week", "2024-12-30", "2025-01-06", "trajectory_events_p2025w01", id="week"),
        pytest.param("month", "2024-12-01", "2025-01-01", "trajectory_events_p202412", id="month"),
    ],
)
def test_interval_bounds_and_names(interval: Any, start: str, after: str, name: str) -> None:
    moment = datetime.fromisoformat(start).replace(tzinfo=UTC) + timedelta(hours=13)
    first = interval_start(moment + timedelta(days=1 if interval != "day" else 0), interval)
    assert first == datetime.fromisoformat(start).replace(tzinfo=UTC)
    assert interval_after(first, interval) == datetime.fromisoformat(after).replace(tzinfo=UTC)
    assert partition_name(first, interval) == name


def test_interval_start_is_in_utc() -> None:
    tokyo = timezone(timedelta(hours=9))
    assert interval_start(datetime(2024, 3, 1, 5, tzinfo=tokyo), "month") == datetime(
        2024, 2, 1, tzinfo=UTC
    )
