"""Reading from a hot standby: exports, incremental runs, the query API, shared snapshots.

Each test writes on the primary of the session's pair (tests/replica.py),
waits for the standby to replay, and reads on the standby.
"""

from __future__ import annotations

import gzip
import threading
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from replica import ReplicaDatabase as Pair
from replica import ReplicaPair

from atlas.errors import (
    DatabaseUnavailable,
    InvalidFilter,
    ReadOnlyDatabase,
    RecoveryConflict,
    ReviewGateWarning,
    SchemaOutOfDate,
)
from atlas.storage import SessionWriter, is_standby, replay_status, seed_sessions
from atlas.training_data import (
    ExportProgress,
    count_training_sessions,
    export_jsonl,
    exported_snapshot,
    get_session_by_id,
    get_training_sessions,
    iter_new_sessions,
    paginate_sessions_sync,
    review_permission,
    review_sessions,
)
from atlas.training_data.assembly import assemble_records
from atlas.training_data.export import _PageFetcher
from atlas.training_data.incremental import database_identity, read_snapshot, same_database
from atlas.training_data.query import TrainingQuery
from atlas.training_data.snapshot import join_snapshot, share_snapshot

ALL = {"include_all_review_statuses": True}


@pytest.fixture
def pair(replica_db: Pair) -> Pair:
    """20 synthetic sessions (some approved, some pending), replayed on the standby."""
    with psycopg.connect(replica_db.primary, autocommit=True) as conn:
        seed_sessions(conn, 20, seed=3)
        conn.execute("UPDATE sessions SET review_status = 'pending' WHERE id % 3 = 0")
    replica_db.replay()
    return replica_db


def lines(path: Path) -> list[dict[str, object]]:
    opener = gzip.open if path.suffix == ".gz" else open
    if not path.exists():
        return []
    with opener(path, "rb") as handle:
        return [orjson.loads(line) for line in handle]


def exported_ids(path: Path) -> list[int]:
    return [int(str(record["session_id"])) for record in lines(path)]


def pending_ids(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id FROM sessions WHERE review_status = 'pending' ORDER BY id"
        ).fetchall()
    return [row[0] for row in rows]


def test_the_standby_replays_the_primary_and_says_so(pair: Pair) -> None:
    with psycopg.connect(pair.standby) as standby, psycopg.connect(pair.primary) as primary:
        assert is_standby(standby) and not is_standby(primary)
        assert replay_status(primary) is None
        status = replay_status(standby)
        assert status is not None and status.replayed_lsn and status.lag_bytes == 0
        assert standby.execute("SELECT count(*) FROM sessions").fetchone() == (20,)


def test_the_query_api_reads_the_standby_as_the_primary(pair: Pair) -> None:
    on_primary = get_training_sessions(pair.primary, **ALL)
    assert get_training_sessions(pair.standby, **ALL) == on_primary
    assert count_training_sessions(pair.standby) == count_training_sessions(pair.primary) < 20
    pages = list(paginate_sessions_sync(pair.standby, batch_size=3, **ALL))
    assert [t for page in pages for t in page] == on_primary and len(pages) == 7
    first = on_primary[0].session_id
    assert get_session_by_id(pair.standby, first) == get_session_by_id(pair.primary, first)


def test_the_review_gate_explains_an_empty_result_on_the_standby(pair: Pair) -> None:
    pair.write("UPDATE sessions SET review_status = 'pending'")
    pair.replay()
    with pytest.warns(ReviewGateWarning, match="20"):
        assert get_training_sessions(pair.standby) == []


def test_an_export_with_parallel_readers_equals_the_primarys(pair: Pair, tmp_path: Path) -> None:
    summary = export_jsonl(str(tmp_path / "standby.jsonl"), pair.standby, batch_size=2, workers=3)
    export_jsonl(str(tmp_path / "primary.jsonl"), pair.primary, batch_size=2, workers=3)
    assert summary.sessions > 5
    assert (tmp_path / "standby.jsonl").read_bytes() == (tmp_path / "primary.jsonl").read_bytes()


def test_writes_replayed_during_a_standby_export_stay_out_of_it(pair: Pair, tmp_path: Path) -> None:
    before = tmp_path / "before.jsonl"
    export_jsonl(str(before), pair.standby, batch_size=2, workers=2, **ALL)
    changed: list[int] = []

    def write_on_the_primary(progress: ExportProgress) -> None:
        if not changed:  # after the first page: change every session, add more, replay
            pair.write("UPDATE sessions SET review_notes = 'changed', task = 'changed'")
            with psycopg.connect(pair.primary, autocommit=True) as conn:
                seed_sessions(conn, 3, seed=4)
            pair.replay()
        changed.append(progress.sessions)

    during = tmp_path / "during.jsonl"
    export_jsonl(str(during), pair.standby, batch_size=2, workers=2,
                 on_progress=write_on_the_primary, **ALL)  # fmt: skip
    assert len(changed) == 10, "pages were read after the writes were replayed"
    assert during.read_bytes() == before.read_bytes()
    assert b"changed" not in during.read_bytes()
    assert count_training_sessions(pair.standby, **ALL) == 23


def test_an_exported_snapshot_of_the_standby_is_shared_by_exports_there(
    pair: Pair, tmp_path: Path
) -> None:
    approved = count_training_sessions(pair.standby)
    with exported_snapshot(pair.standby) as snapshot:
        pair.write("UPDATE sessions SET review_status = 'approved'")
        pair.replay()
        summary = export_jsonl(str(tmp_path / "in.jsonl"), pair.standby, snapshot=snapshot)
    assert summary.sessions == approved < count_training_sessions(pair.standby) == 20


def test_a_snapshot_exported_on_the_primary_is_refused_on_the_standby(
    pair: Pair, tmp_path: Path
) -> None:
    with exported_snapshot(pair.primary) as snapshot, pytest.raises(InvalidFilter) as exc:
        export_jsonl(str(tmp_path / "out.jsonl"), pair.standby, snapshot=snapshot)
    assert "not open on this server" in str(exc.value) and "same URL" in str(exc.value)
    assert not list(tmp_path.iterdir())


def test_a_reader_on_the_coordinators_standby_joins_its_very_snapshot(
    pair: Pair,
) -> None:
    with psycopg.connect(pair.standby, autocommit=True) as coordinator, coordinator.transaction():
        coordinator.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        shared = share_snapshot(coordinator)
        assert shared.standby
        pair.write("DELETE FROM sessions WHERE id > 10")
        pair.replay()
        with psycopg.connect(pair.standby, autocommit=True) as reader:
            with join_snapshot(reader, shared) as exact:
                assert exact
                assert reader.execute("SELECT count(*) FROM sessions").fetchone() == (20,)
            assert reader.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_a_reader_on_another_server_reads_after_the_coordinators_position(
    pair: Pair,
) -> None:
    with psycopg.connect(pair.primary, autocommit=True) as coordinator, coordinator.transaction():
        coordinator.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        shared = share_snapshot(coordinator)
        assert not shared.standby
        reader = psycopg.connect(pair.standby, autocommit=True)
        with reader, join_snapshot(reader, shared) as exact:
            assert not exact  # the primary's snapshot does not exist on the standby
            assert reader.execute("SELECT count(*) FROM sessions").fetchone() == (20,)


def test_a_reader_waits_for_a_standby_that_lags_and_gives_up_with_a_clear_error(
    pair: Pair,
) -> None:
    standby = psycopg.connect(pair.standby, autocommit=True)
    reader = psycopg.connect(pair.standby, autocommit=True)
    coordinator = psycopg.connect(pair.primary, autocommit=True)
    with standby, reader, coordinator:
        standby.execute("SELECT pg_wal_replay_pause()")
        try:
            pair.write("UPDATE sessions SET review_notes = 'later'")
            with coordinator.transaction():
                coordinator.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                shared = share_snapshot(coordinator)
                with (
                    pytest.raises(DatabaseUnavailable, match="has not replayed"),
                    join_snapshot(reader, shared, wait=0.2),
                ):
                    pass
                resume = threading.Timer(0.2, standby.execute, ("SELECT pg_wal_replay_resume()",))
                resume.start()
                with join_snapshot(reader, shared) as exact:
                    notes = reader.execute("SELECT DISTINCT review_notes FROM sessions")
                    assert not exact and notes.fetchall() == [("later",)]
                resume.join()
        finally:
            standby.execute("SELECT pg_wal_replay_resume()")


def test_a_reader_of_another_cluster_or_an_ended_snapshot_is_refused(
    pair: Pair, db_url: str
) -> None:
    coordinator = psycopg.connect(pair.standby, autocommit=True)
    with coordinator, coordinator.transaction():
        coordinator.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        shared = share_snapshot(coordinator)
        elsewhere = psycopg.connect(db_url, autocommit=True)
        with (
            elsewhere,
            pytest.raises(InvalidFilter, match="another database cluster"),
            join_snapshot(elsewhere, shared),
        ):
            pass
    late = psycopg.connect(pair.standby, autocommit=True)
    with (
        late,
        pytest.raises(InvalidFilter, match="not open on this server"),
        join_snapshot(late, shared),
    ):
        pass


def test_the_standby_watermark_does_not_skip_a_transaction_running_on_the_primary(
    pair: Pair, tmp_path: Path
) -> None:
    state, pending = tmp_path / "state.json", pending_ids(pair.primary)
    with psycopg.connect(pair.primary) as running:
        running.execute("UPDATE sessions SET review_status = 'approved' WHERE id = %s",
                        (pending[0],))  # fmt: skip
        # A later transaction commits, so the standby knows the first one is still running.
        pair.write("UPDATE sessions SET review_notes = 'seen' WHERE id = %s", (pending[1],))
        pair.replay()
        first = export_jsonl(str(tmp_path / "1.jsonl"), pair.standby, state=state)
        running.commit()
    pair.replay()
    export_jsonl(str(tmp_path / "2.jsonl"), pair.standby, state=state)
    assert pending[0] not in exported_ids(tmp_path / "1.jsonl") and first.sessions > 0
    assert exported_ids(tmp_path / "2.jsonl") == [pending[0]]


def test_sessions_committed_on_the_primary_but_not_yet_replayed_come_in_the_next_run(
    pair: Pair, tmp_path: Path
) -> None:
    state, pending = tmp_path / "state.json", pending_ids(pair.primary)
    first = [t.session_id for t in iter_new_sessions(pair.standby, state=state)]
    with psycopg.connect(pair.standby, autocommit=True) as standby:
        standby.execute("SELECT pg_wal_replay_pause()")
        try:
            pair.write("UPDATE sessions SET review_status = 'approved' WHERE id = ANY(%s)",
                       (pending[:2],))  # fmt: skip
            # Committed on the primary, not replayed here: this run cannot see them.
            lagging = [t.session_id for t in iter_new_sessions(pair.standby, state=state)]
        finally:
            standby.execute("SELECT pg_wal_replay_resume()")
    pair.replay()
    caught_up = [t.session_id for t in iter_new_sessions(pair.standby, state=state)]
    assert first and lagging == [] and sorted(caught_up) == pending[:2]


def test_a_standby_watermark_is_its_oldest_running_transaction(pair: Pair) -> None:
    with psycopg.connect(pair.standby) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        watermark = read_snapshot(conn)
        row = conn.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text").fetchone()
    assert row is not None and watermark == f"{row[0]}:{row[0]}:"


def test_a_state_started_on_the_primary_goes_on_on_the_standby(pair: Pair, tmp_path: Path) -> None:
    state, pending = tmp_path / "state.json", pending_ids(pair.primary)
    first = [t.session_id for t in iter_new_sessions(pair.primary, state=state)]
    pair.write("UPDATE sessions SET review_status = 'approved' WHERE id = ANY(%s)",
               (pending[:2],))  # fmt: skip
    pair.replay()
    second = [t.session_id for t in iter_new_sessions(pair.standby, state=state)]
    third = [t.session_id for t in iter_new_sessions(pair.primary, state=state)]
    assert first and sorted(second) == pending[:2] and third == []
    with psycopg.connect(pair.primary) as primary, psycopg.connect(pair.standby) as standby:
        assert database_identity(primary) == database_identity(standby)
    assert "@" in orjson.loads(state.read_bytes())["database"]


@pytest.mark.parametrize(
    ("stored", "current", "same"),
    [
        pytest.param("atlas/16384@7", "atlas/16384@7", True, id="same-cluster"),
        pytest.param("atlas/16384@7", "atlas/16384@8", False, id="a-copy-elsewhere"),
        pytest.param("atlas/16384", "atlas/16384@8", True, id="state-without-system"),
        pytest.param("atlas/16384@7", "atlas/16384", True, id="role-without-system"),
        pytest.param("atlas/16384@7", "other/16384@7", False, id="another-database"),
    ],
)
def test_same_database_compares_the_system_identifier_when_both_have_one(
    stored: str, current: str, same: bool
) -> None:
    assert same_database(stored, current) is same


def test_a_review_on_the_standby_is_refused_in_one_line(pair: Pair) -> None:
    with psycopg.connect(pair.standby, autocommit=True) as conn:
        dry = review_sessions(conn, "approved", session_ids=[3], dry_run=True)
        with pytest.raises(ReadOnlyDatabase) as exc:
            review_sessions(conn, "approved", session_ids=[3])
        assert "standby" in (review_permission(conn) or "")
    assert [row.session_id for row in dry.matched] == [3]
    assert exc.value.standby and "hot standby" in str(exc.value) and "\n" not in str(exc.value)
    assert str(exc.value).startswith(f"Database at {pair.standby} is a hot standby")


def test_a_writer_on_the_standby_names_the_standby(pair: Pair) -> None:
    with SessionWriter.open(pair.standby) as writer, pytest.raises(ReadOnlyDatabase) as exc:
        writer.create_session("a task")
    assert exc.value.standby and "hot standby" in str(exc.value)


def test_a_standby_behind_on_migrations_sends_the_upgrade_to_the_primary(
    replica: ReplicaPair,
) -> None:
    name = replica.create_database()
    try:
        for open_it in (lambda: get_training_sessions(replica.url("standby", name)),
                        lambda: SessionWriter.open(replica.url("standby", name))):  # fmt: skip
            with pytest.raises(SchemaOutOfDate, match=r"hot standby.*against its primary"):
                open_it()
    finally:
        replica.drop_database(name)


def test_a_read_cancelled_by_replay_says_which_settings_prevent_it(
    replica: ReplicaPair, pair: Pair, tmp_path: Path
) -> None:
    def set_delay(value: str) -> None:
        with psycopg.connect(replica.standby_url, autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET max_standby_streaming_delay = '{value}'")
            conn.execute("SELECT pg_reload_conf()")
        pair.write("SELECT pg_switch_wal()")  # a record to replay after the reload
        pair.replay()

    def lock_on_the_primary(progress: ExportProgress) -> None:
        with psycopg.connect(pair.primary) as conn:
            conn.execute("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
        pair.replay()  # replay waits 100 ms for the export's lock, then cancels it

    set_delay("100ms")
    try:
        with pytest.raises(RecoveryConflict) as exc:
            export_jsonl(str(tmp_path / "out.jsonl"), pair.standby, batch_size=2,
                         on_progress=lock_on_the_primary, **ALL)  # fmt: skip
    finally:
        set_delay("30s")
    message = str(exc.value)
    assert "cancelled this read to replay" in message and "relation lock" in message
    # A lock conflict: only the delay prevents it (hot_standby_feedback is for row versions).
    assert "raise max_standby_streaming_delay" in message and "\n" not in message
    assert "hot_standby_feedback does not prevent" in message
    assert not list(tmp_path.iterdir())


def test_an_export_reader_on_another_server_leaves_out_what_the_gate_now_refuses(
    pair: Pair,
) -> None:
    """A page reader that reaches another server (a load-balanced URL) reads later data."""
    pair.write("UPDATE sessions SET status = 'succeeded', review_status = 'approved'")
    pair.replay()
    query = TrainingQuery.build()
    quarantined: list[int] = []

    def reader_on_the_primary() -> psycopg.Connection[Any]:
        # Session 1 is quarantined after the export's snapshot (on the standby) was taken and
        # before the readers join it: they read in a later snapshot (on the primary).
        if not quarantined:
            pair.write("UPDATE sessions SET review_status = 'quarantined' WHERE id = 1")
            quarantined.append(1)
        return psycopg.connect(pair.primary, autocommit=True)

    with psycopg.connect(pair.standby, autocommit=True) as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        pages = _PageFetcher(conn, reader_on_the_primary, query, query.options, size=6, workers=2)
        try:
            records = [r for rows in pages for r in assemble_records(rows, query.options)]
        finally:
            pages.close()
        # The listing, in the export's snapshot, still named session 1.
        assert conn.execute("SELECT review_status FROM sessions WHERE id = 1").fetchone() == (
            "approved",
        )
    assert quarantined and sorted(r["session_id"] for r in records) == list(range(2, 21))
