"""The readers' event tests, run again on a partitioned trajectory_events.

Imported by name from the modules that read events (lossless records,
paging, lookups, the library export, a SELECT-only role). ``db_url`` is a
fresh database partitioned right after the migrations
(``tests/partitioned.py``); ``seeded_url`` holds the usual 400 synthetic
sessions, spread over twelve weeks and partitioned by week, so a session's
events are looked up across many partitions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import psycopg
import pytest
from partitioned import db_url, is_partitioned, partition, partitioned_template
from test_export_library import (
    test_handles_export_the_same_bytes,
    test_worker_count_does_not_change_the_output,
)
from test_lookup import (
    test_count_equals_the_number_of_sessions_returned,
    test_lookup_loads_the_whole_session,
    test_lookup_takes_the_loading_options,
)
from test_lossless import (
    read_all,
    test_a_timestamp_python_cannot_hold_is_text_and_aborts_nothing,
    test_events_keep_their_row_id_and_created_at,
)
from test_pagination import (
    seeded_db,
    test_batches_concatenate_to_the_whole_result,
    test_sync_pages_see_every_existing_session_once_under_concurrent_inserts,
)
from test_read_only_role import reader_url, test_a_select_only_role_reads_and_exports

from atlas.storage.synthetic import seed_sessions

__all__ = [
    "db_url",
    "partitioned_template",
    "read_all",
    "reader_url",
    "seeded_db",
    "test_a_select_only_role_reads_and_exports",
    "test_a_timestamp_python_cannot_hold_is_text_and_aborts_nothing",
    "test_batches_concatenate_to_the_whole_result",
    "test_count_equals_the_number_of_sessions_returned",
    "test_events_keep_their_row_id_and_created_at",
    "test_handles_export_the_same_bytes",
    "test_lookup_loads_the_whole_session",
    "test_lookup_takes_the_loading_options",
    "test_sync_pages_see_every_existing_session_once_under_concurrent_inserts",
    "test_worker_count_does_not_change_the_output",
]


@pytest.fixture(scope="module")
def seeded_url(scratch_database: Callable[[], str]) -> str:
    """400 sessions over twelve weeks, partitioned by week (only read, never written)."""
    url = scratch_database()
    with psycopg.connect(url, autocommit=True) as conn:
        seed_sessions(conn, 400, seed=11, legacy_fraction=0.1, spacing=timedelta(hours=5))
    partition(url, "week")
    return url


def test_the_seeded_events_span_many_partitions(seeded_url: str) -> None:
    assert is_partitioned(seeded_url)
    with psycopg.connect(seeded_url) as conn:
        row = conn.execute("SELECT count(DISTINCT tableoid) FROM trajectory_events").fetchone()
    assert row is not None and row[0] >= 10


def test_the_fresh_databases_are_partitioned(db_url: str) -> None:
    assert is_partitioned(db_url)
