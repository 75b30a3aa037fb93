"""The schema the migrations must build, and readers for what a database holds.

Shared by the migration tests and the legacy-upgrade tests (imported by name:
the test folders are not packages).
"""

from __future__ import annotations

from typing import Any

import psycopg

from atlas.storage.migrate import MIGRATIONS_TABLE

# information_schema.columns data types, per table, in column order.
SCHEMA = {
    "sessions": {
        "id": "integer",
        "task": "text",
        "status": "text",
        "metadata": "jsonb",
        "final_answer": "text",
        "reward": "jsonb",
        "reward_stats": "jsonb",
        "reward_audit": "jsonb",
        "student_learning": "text",
        "teacher_learning": "text",
        "review_status": "text",
        "review_notes": "text",
        "created_at": "timestamp with time zone",
        "completed_at": "timestamp with time zone",
        # Derived from metadata by the trigger of 0005.
        "learning_key": "text",
        "drift_alert": "boolean",
        # The transaction of the last change (0006): the incremental export's watermark.
        "changed_xid": "xid8",
    },
    "plans": {"session_id": "integer", "plan": "jsonb"},
    "step_results": {
        "session_id": "integer",
        "step_id": "integer",
        "trace": "text",
        "output": "text",
        "evaluation": "jsonb",
        "attempts": "integer",
        "metadata": "jsonb",
    },
    "step_attempts": {
        "session_id": "integer",
        "step_id": "integer",
        "attempt": "integer",
        "evaluation": "jsonb",
    },
    "guidance_notes": {
        "session_id": "integer",
        "step_id": "integer",
        "sequence": "integer",
        "note": "text",
    },
    "trajectory_events": {
        "id": "integer",
        "session_id": "integer",
        "event": "jsonb",
        "created_at": "timestamp with time zone",
    },
    "discovery_runs": {
        "id": "integer",
        "project_root": "text",
        "task": "text",
        "source": "text",
        "payload": "jsonb",
        "metadata": "jsonb",
        "created_at": "timestamp with time zone",
    },
    "learning_registry": {
        "learning_key": "text",
        "student_learning": "text",
        "teacher_learning": "text",
        "metadata": "jsonb",
        "updated_at": "timestamp with time zone",
    },
}

# The index definitions readers rely on (the text after "USING").
INDEXES = {
    "sessions_reward_score_idx": "btree ((((reward_stats ->> 'score'::text))::double precision))",
    "sessions_created_at_idx": "btree (created_at DESC, id DESC)",
    "sessions_metadata_gin_idx": "gin (metadata)",
    "sessions_learning_key_idx": "btree (((metadata ->> 'learning_key'::text)))",
    "sessions_status_idx": "btree (status, created_at DESC, id DESC)",
    "sessions_review_status_idx": "btree (review_status, created_at DESC, id DESC)",
    "trajectory_events_session_idx": "btree (session_id, id)",
    "sessions_changed_xid_idx": "btree (changed_xid)",
}


def columns(conn: psycopg.Connection[Any]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for table, column, data_type in conn.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name <> %s "
        "ORDER BY table_name, ordinal_position",
        (MIGRATIONS_TABLE,),
    ):
        found.setdefault(table, {})[column] = data_type
    return found


def indexes(conn: psycopg.Connection[Any]) -> dict[str, str]:
    rows = conn.execute(
        "SELECT indexname, split_part(indexdef, ' USING ', 2) FROM pg_indexes "
        "WHERE schemaname = current_schema()"
    ).fetchall()
    return dict(rows)
