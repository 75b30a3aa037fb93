"""The command line pointed at a hot standby: reads work, writes are refused in one line."""

from __future__ import annotations

from pathlib import Path

import orjson
import psycopg
import pytest
from replica import ReplicaDatabase

from atlas.cli.main import main
from atlas.storage.synthetic import seed_sessions


@pytest.fixture
def pair(replica_db: ReplicaDatabase) -> ReplicaDatabase:
    """Twelve synthetic sessions, half of them approved, replayed on the standby."""
    with psycopg.connect(replica_db.primary, autocommit=True) as conn:
        seed_sessions(conn, 12, seed=3)
        conn.execute(
            "UPDATE sessions SET review_status = CASE WHEN id % 2 = 0 THEN 'approved' "
            "ELSE 'pending' END"
        )
    replica_db.replay()
    return replica_db


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``arc-atlas ARGS...`` in this process: (exit code, stdout, stderr)."""
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def one_error_line(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert all(needle in lines[0] for needle in needles), lines[0]


def test_export_and_verify_on_the_standby(
    pair: ReplicaDatabase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.jsonl"
    rc, _, err = run(capsys, "export", "--database-url", pair.standby, "--output", str(out),
                     "--batch-size", "2")  # fmt: skip
    assert rc == 0, err
    ids = sorted(orjson.loads(line)["session_id"] for line in out.read_bytes().splitlines())
    assert ids == [2, 4, 6, 8, 10, 12]
    manifest = tmp_path / "out.jsonl.manifest.json"
    rc, _, err = run(capsys, "verify", str(manifest), "--database-url", pair.standby)
    assert rc == 0, err


def test_incremental_export_on_the_standby_takes_what_was_approved_since(
    pair: ReplicaDatabase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.json"

    def export(name: str) -> list[int]:
        out = tmp_path / name
        rc, _, err = run(capsys, "export", "--database-url", pair.standby, "--output", str(out),
                         "--state", str(state), "--no-manifest")  # fmt: skip
        assert rc == 0, err
        lines = out.read_bytes().splitlines() if out.exists() else []
        return sorted(orjson.loads(line)["session_id"] for line in lines)

    assert export("1.jsonl") == [2, 4, 6, 8, 10, 12]
    pair.write("UPDATE sessions SET review_status = 'approved' WHERE id IN (3, 5)")
    pair.replay()
    assert export("2.jsonl") == [3, 5]
    assert export("3.jsonl") == []


def test_a_review_on_the_standby_is_refused_and_a_dry_run_is_not(
    pair: ReplicaDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, _ = run(capsys, "review", "approve", "3", "--dry-run", "--database-url", pair.standby)
    assert rc == 0 and "would set 1 session(s)" in out
    rc, _, err = run(capsys, "review", "approve", "3", "--database-url", pair.standby)
    assert rc == 2
    one_error_line(err, "hot standby", "primary")
    rc, out, _ = run(capsys, "review", "sessions", "--database-url", pair.standby)
    assert rc == 0 and "6 session(s), review status: pending" in out


def test_db_status_on_the_standby_says_it_is_one(
    pair: ReplicaDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = run(capsys, "db", "status", "--database-url", pair.standby)
    assert rc == 0, err
    assert "Replica:  hot standby (read-only" in out and "bytes received but not yet" in out
    rc, out, _ = run(capsys, "db", "status", "--database-url", pair.primary)
    assert rc == 0 and "Replica:" not in out


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["db", "upgrade"], id="upgrade"),
        pytest.param(["db", "recover", "--older-than", "1h"], id="recover"),
    ],
)
def test_writes_of_db_commands_on_the_standby_name_the_primary(
    pair: ReplicaDatabase, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    rc, _, err = run(capsys, *argv, "--database-url", pair.standby)
    assert rc == 2
    one_error_line(err, "hot standby", "primary")


def test_db_upgrade_dry_run_on_the_standby_reads_only(
    pair: ReplicaDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, _ = run(capsys, "db", "upgrade", "--dry-run", "--database-url", pair.standby)
    assert rc == 0 and "is up to date" in out
