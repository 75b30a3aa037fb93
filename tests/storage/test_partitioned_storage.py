"""The writer's and the triggers' event tests, run again on a partitioned trajectory_events.

The tests are those of ``test_writer.py`` and ``test_triggers.py`` that write
or read events, imported by name; ``db_url`` here is a database whose events
went through ``partition_events`` first (``tests/partitioned.py``), so the
writer, atlas-sdk's nested inserts and the envelope trigger are checked on
that layout unchanged.
"""

from __future__ import annotations

from partitioned import db_url, is_partitioned, partitioned_template
from test_triggers import (
    conn,
    test_event_type_filter_finds_a_nested_insert,
    test_nested_insert_is_stored_lifted,
    test_other_events_are_stored_as_written,
    test_update_to_a_nested_event_is_lifted,
)
from test_writer import (
    db,
    stale_and_fresh,
    test_a_recent_heartbeat_keeps_a_session_from_recovery,
    test_event_type_is_filterable_in_sql,
    test_event_without_timestamp_is_dated_now,
    test_events_are_stored_flat_in_order,
    test_hundred_events_in_order,
    test_recover_stale_sessions,
    test_recover_stale_sessions_dry_run_changes_nothing,
    writer,
)

__all__ = [
    "conn",
    "db",
    "db_url",
    "partitioned_template",
    "stale_and_fresh",
    "test_a_recent_heartbeat_keeps_a_session_from_recovery",
    "test_event_type_filter_finds_a_nested_insert",
    "test_event_type_is_filterable_in_sql",
    "test_event_without_timestamp_is_dated_now",
    "test_events_are_stored_flat_in_order",
    "test_hundred_events_in_order",
    "test_nested_insert_is_stored_lifted",
    "test_other_events_are_stored_as_written",
    "test_recover_stale_sessions",
    "test_recover_stale_sessions_dry_run_changes_nothing",
    "test_update_to_a_nested_event_is_lifted",
    "writer",
]


def test_these_tests_run_on_a_partitioned_table(db_url: str) -> None:
    assert is_partitioned(db_url)
