"""export_jsonl(state=...) and arc-atlas export --state: five files under concurrent writes
and reviews together are one full export; an interrupted run changes no state."""

from __future__ import annotations

from pathlib import Path

import orjson
import psycopg
import pytest
from busy_database import writers_and_reviewers

from atlas.storage import seed_sessions
from atlas.training_data import ExportProgress, export_jsonl


def _ids(path: Path) -> list[int]:
    if not path.exists():
        return []
    return [orjson.loads(line)["session_id"] for line in path.read_bytes().splitlines()]


def test_five_incremental_files_equal_one_full_export(db_url: str, tmp_path: Path) -> None:
    state = tmp_path / "nightly.state.json"
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 12, seed=60)
    files = [tmp_path / f"night-{i}.jsonl" for i in range(1, 6)]
    with writers_and_reviewers(db_url, seed=200, approve=0.6):
        for path in files[:4]:
            export_jsonl(str(path), db_url, state=str(state))
    export_jsonl(str(files[4]), db_url, state=str(state))
    full = tmp_path / "full.jsonl"
    export_jsonl(str(full), db_url)
    union = [i for path in files for i in _ids(path)]
    assert len(union) == len(set(union)), "a session was exported twice"
    assert sorted(union) == sorted(_ids(full))
    assert sum(len(_ids(p)) for p in files[1:]) > 0


def test_an_interrupted_export_changes_no_state_and_leaves_no_file(
    db_url: str, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 8, seed=70)
        conn.execute("UPDATE sessions SET review_status = 'approved'")
    first = tmp_path / "first.jsonl"
    assert export_jsonl(str(first), db_url, state=str(state)).sessions == 8
    saved = state.read_bytes()
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 30, seed=71)
        conn.execute("UPDATE sessions SET review_status = 'approved' WHERE id > 8")

    def interrupt(progress: ExportProgress) -> None:
        raise KeyboardInterrupt

    second = tmp_path / "second.jsonl"
    with pytest.raises(KeyboardInterrupt):
        export_jsonl(str(second), db_url, state=str(state), batch_size=5, on_progress=interrupt)
    assert state.read_bytes() == saved
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.jsonl", "state.json"]
    assert export_jsonl(str(second), db_url, state=str(state)).sessions == 30
    assert sorted(_ids(second)) == list(range(9, 39))


def test_cli_state_runs_and_nothing_new_exits_0(cli, db_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 4, seed=80)
        conn.execute("UPDATE sessions SET review_status = 'approved'")
    state, out = tmp_path / "s.json", tmp_path / "o.jsonl"
    args = ("export", "--database-url", db_url, "--state", str(state), "--output", str(out))
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    assert len(_ids(out)) == 4
    out.unlink()
    again = cli(*args)
    assert again.returncode == 0 and "No sessions became eligible" in again.stderr
    assert not out.exists()
    other = cli(*args, "--min-reward", "0.9")
    assert other.returncode == 2 and "other filters" in other.stderr
    parquet = cli("export", "--database-url", db_url, "--state", str(state), "--format",
                  "parquet", "--output", str(tmp_path / "x.parquet"))  # fmt: skip
    assert parquet.returncode == 2 and "--state" in parquet.stderr
