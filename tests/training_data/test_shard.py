"""--shard I/N and --snapshot: disjoint parts of one selection, read in one snapshot."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import psycopg
import pytest

from atlas.errors import InvalidFilter
from atlas.storage import seed_sessions
from atlas.training_data import (
    count_training_sessions,
    export_jsonl,
    exported_snapshot,
    get_training_sessions,
)

ALL = {"include_all_review_statuses": True}


@pytest.fixture
def seeded(db_url: str) -> str:
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 40, seed=9)
    return db_url


def ids(path: Path) -> list[int]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        return [orjson.loads(line)["session_id"] for line in handle]


def test_shards_are_disjoint_and_make_the_whole(seeded: str) -> None:
    whole = {t.session_id for t in get_training_sessions(seeded, **ALL)}
    parts = [
        {t.session_id for t in get_training_sessions(seeded, shard=f"{i}/3", **ALL)}
        for i in (1, 2, 3)
    ]
    assert set().union(*parts) == whole and sum(map(len, parts)) == len(whole) == 40
    assert all(parts), "a hash of 40 ids leaves no part of 3 empty"
    assert [count_training_sessions(seeded, shard=(i, 3), **ALL) for i in (1, 2, 3)] == [
        len(p) for p in parts
    ]
    assert {t.session_id for t in get_training_sessions(seeded, shard="1/1", **ALL)} == whole


def test_shards_in_one_snapshot_equal_the_unsharded_export_despite_writes(
    seeded: str, tmp_path: Path
) -> None:
    with exported_snapshot(seeded) as snapshot:
        with psycopg.connect(seeded, autocommit=True) as writer:
            seed_sessions(writer, 5, seed=10)  # written after the snapshot
        whole = tmp_path / "whole.jsonl"
        export_jsonl(str(whole), seeded, snapshot=snapshot, **ALL)
        parts = []
        for i in range(1, 5):
            part = tmp_path / f"part-{i}.jsonl.gz"
            summary = export_jsonl(str(part), seeded, snapshot=snapshot, shard=(i, 4), **ALL)
            parts += ids(part) if summary.sessions else []
    assert sorted(parts) == sorted(ids(whole)) and len(parts) == len(set(parts)) == 40
    now = tmp_path / "now.jsonl"
    assert export_jsonl(str(now), seeded, **ALL).sessions == 45


@pytest.mark.parametrize(
    "shard", ["0/4", "5/4", "1/0", "a/b", "1/2/3", "", "1/65537", (0, 2), (1,), True, 3, b"1/2"]
)
def test_a_bad_shard_is_refused_by_name(seeded: str, shard: object) -> None:
    with pytest.raises(InvalidFilter) as exc:
        count_training_sessions(seeded, shard=shard, **ALL)  # type: ignore[arg-type]
    assert exc.value.parameter == "shard"


def test_a_bad_or_closed_snapshot_is_refused_and_writes_nothing(
    seeded: str, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    with pytest.raises(InvalidFilter, match="is not an id such as"):
        export_jsonl(str(out), seeded, snapshot="latest", **ALL)
    with exported_snapshot(seeded) as snapshot:
        pass  # the transaction that exported it has ended
    with pytest.raises(InvalidFilter, match="not open on this server") as exc:
        export_jsonl(str(out), seeded, snapshot=snapshot, **ALL)
    assert exc.value.parameter == "snapshot"
    assert list(tmp_path.iterdir()) == []


def test_cli_shard_and_snapshot_flags(cli, seeded: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "p.jsonl"
    done = cli("export", "--database-url", seeded, "--include-all-statuses", "--shard", "2/2",
               "--output", str(out), "--quiet")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(ids(out)) == count_training_sessions(seeded, shard="2/2", **ALL)
    bad = cli("export", "--database-url", seeded, "--shard", "3/2", "--output", str(out))
    assert bad.returncode == 2 and bad.stderr.startswith("Error: --shard")
    parquet = cli("export", "--database-url", seeded, "--snapshot", "00000003-0000001B-1",
                  "--format", "parquet", "--output", str(tmp_path / "x.parquet"))  # fmt: skip
    assert parquet.returncode == 2 and "--snapshot" in parquet.stderr
    closed = cli("export", "--database-url", seeded, "--snapshot", "00000003-0000001B-1",
                 "--output", str(out))  # fmt: skip
    assert closed.returncode == 2, closed.stderr
    assert closed.stderr.startswith("Error: --snapshot 00000003-0000001B-1 is not open")
    assert "Traceback" not in closed.stderr
