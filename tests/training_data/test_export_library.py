"""export_jsonl as a library: every kind of database handle gives the same bytes."""

from __future__ import annotations

import psycopg
import pytest

from atlas.storage import Database
from atlas.training_data.export import export_jsonl


@pytest.mark.parametrize(
    "handle",
    [
        pytest.param("pool-with-room", id="database-pool"),
        pytest.param("pool-of-two", id="database-pool-of-two"),
        pytest.param("pool-of-one", id="database-pool-of-one"),
        pytest.param("connection", id="bare-connection"),
    ],
)
def test_handles_export_the_same_bytes(seeded_url, tmp_path, handle):
    reference = tmp_path / "by-url.jsonl"
    export_jsonl(str(reference), seeded_url, include_all_review_statuses=True, batch_size=7)
    out = tmp_path / f"{handle}.jsonl"
    if handle == "connection":
        with psycopg.connect(seeded_url, autocommit=True) as conn:
            export_jsonl(str(out), conn, include_all_review_statuses=True, batch_size=7)
    else:
        size = {"pool-with-room": 3, "pool-of-two": 2, "pool-of-one": 1}[handle]
        # connect_timeout_seconds=3: a reader waiting for a connection the pool
        # cannot give would fail the test quickly instead of hanging.
        with Database.open(
            seeded_url, max_connections=size, min_connections=1, connect_timeout_seconds=3
        ) as db:
            export_jsonl(str(out), db, include_all_review_statuses=True, batch_size=7)
    assert out.read_bytes() == reference.read_bytes()
    assert len(reference.read_bytes().splitlines()) == 400


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_worker_count_does_not_change_the_output(seeded_url, tmp_path, workers):
    one = tmp_path / "one.jsonl"
    many = tmp_path / f"many-{workers}.jsonl"
    export_jsonl(str(one), seeded_url, include_all_review_statuses=True, workers=1, limit=150)
    export_jsonl(str(many), seeded_url, include_all_review_statuses=True, workers=workers,
                 limit=150, batch_size=9)  # fmt: skip
    assert many.read_bytes() == one.read_bytes()
