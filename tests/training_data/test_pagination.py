"""Keyset pagination: every session once, newest first, while other clients keep writing."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from training_data_sql import ids_where

from atlas.storage import AsyncSessionWriter, SessionWriter
from atlas.storage.synthetic import seed_sessions
from atlas.training_data import paginate_sessions, paginate_sessions_sync

OPTIONS: dict[str, Any] = {
    "include_all_review_statuses": True,
    "include_trajectory_events": False,
    "include_learning_data": False,
}
LONG_AGO = datetime(2001, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def seeded_db(db_url: str) -> str:
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 40, seed=9)
    return db_url


def _write_between_batches(writer: SessionWriter, batch_number: int) -> None:
    """A newer session, and one older than anything paged so far."""
    writer.create_session(f"new {batch_number}", status="succeeded")
    older = LONG_AGO + timedelta(minutes=batch_number)
    writer.create_session(f"old {batch_number}", status="succeeded", created_at=older)


def test_sync_pages_see_every_existing_session_once_under_concurrent_inserts(seeded_db):
    existing = ids_where(seeded_db)
    seen: list[int] = []
    with SessionWriter.open(seeded_db) as writer:
        for number, batch in enumerate(paginate_sessions_sync(seeded_db, batch_size=7, **OPTIONS)):
            seen.extend(t.session_id for t in batch)
            _write_between_batches(writer, number)
    assert [i for i in seen if i in existing] == existing
    assert max(Counter(seen).values()) == 1


def test_async_pages_see_every_existing_session_once_under_concurrent_inserts(seeded_db):
    existing = ids_where(seeded_db)

    async def page_while_writing() -> list[int]:
        seen: list[int] = []
        async with await AsyncSessionWriter.open(seeded_db) as writer:
            number = 0
            async for batch in paginate_sessions(seeded_db, batch_size=7, **OPTIONS):
                seen.extend(t.session_id for t in batch)
                await writer.create_session(f"new {number}", status="succeeded")
                number += 1
        return seen

    seen = asyncio.run(page_while_writing())
    assert [i for i in seen if i in existing] == existing
    assert max(Counter(seen).values()) == 1


def test_sessions_written_while_paging_are_not_returned_when_newer(seeded_db):
    with SessionWriter.open(seeded_db) as writer:
        batches = paginate_sessions_sync(seeded_db, batch_size=10, **OPTIONS)
        first = next(batches)
        new_id = writer.create_session("arrived late", status="succeeded")
        rest = [t.session_id for batch in batches for t in batch]
    assert new_id not in rest
    assert len(first) + len(rest) == 40


@pytest.mark.parametrize("size", [pytest.param(n, id=f"batch-{n}") for n in (1, 13, 500)])
def test_batches_concatenate_to_the_whole_result(seeded_url, oracle, size):
    key = "release-notes"
    batches = list(paginate_sessions_sync(seeded_url, batch_size=size, learning_key=key, **OPTIONS))
    assert [t.session_id for b in batches for t in b] == oracle(
        "metadata ->> 'learning_key' = %s", [key]
    )
    assert all(len(b) == size for b in batches[:-1])


def test_sessions_sharing_a_timestamp_are_paged_by_id(db_url):
    with SessionWriter.open(db_url) as writer:
        ids = [writer.create_session(f"t{n}", created_at=LONG_AGO) for n in range(5)]
    batches = paginate_sessions_sync(db_url, batch_size=2, **OPTIONS)
    assert [t.session_id for b in batches for t in b] == sorted(ids, reverse=True)
