"""PostgreSQL storage: schema and migrations, connection pools, the embedded server, the writer."""

from atlas.storage.connection import ConnectionSettings, connect, translate_errors
from atlas.storage.database import AsyncDatabase, Database, prepare, resolve_settings
from atlas.storage.embedded import atlas_home, embedded_server, ensure_embedded, stop_embedded
from atlas.storage.events import to_envelope
from atlas.storage.migrate import DEFAULT_BATCH_SIZE as MIGRATION_BATCH_SIZE
from atlas.storage.migrate import Progress as MigrationProgress
from atlas.storage.migrate import (
    apply_migrations,
    available_migrations,
    schema_status,
)
from atlas.storage.partition import DEFAULT_AHEAD as PARTITIONS_AHEAD
from atlas.storage.partition import DEFAULT_INTERVAL as PARTITION_INTERVAL
from atlas.storage.partition import DEFAULT_LOCK_TIMEOUT as PARTITION_LOCK_TIMEOUT
from atlas.storage.partition import INTERVALS as PARTITION_INTERVALS
from atlas.storage.partition import (
    Conversion,
    EventsLayout,
    Retention,
    TopUp,
    apply_retention,
    create_partitions_ahead,
    events_layout,
    partition_events,
    retention_cutoff,
)
from atlas.storage.schema import TABLES
from atlas.storage.standby import ReplayStatus, is_standby, replay_status
from atlas.storage.synthetic import SHAPES, seed_sessions
from atlas.storage.synthetic_sdk import create_atlas_sdk_schema
from atlas.storage.urls import mask_url
from atlas.storage.writer import AsyncSessionWriter, SessionWriter
from atlas.storage.writes import (
    MAX_RECOVER_AGE,
    SESSION_STATUSES,
    AttemptRecord,
    StepRecord,
)

__all__ = [
    "MAX_RECOVER_AGE",
    "MIGRATION_BATCH_SIZE",
    "PARTITIONS_AHEAD",
    "PARTITION_INTERVAL",
    "PARTITION_INTERVALS",
    "PARTITION_LOCK_TIMEOUT",
    "SESSION_STATUSES",
    "SHAPES",
    "TABLES",
    "AsyncDatabase",
    "AsyncSessionWriter",
    "AttemptRecord",
    "ConnectionSettings",
    "Conversion",
    "Database",
    "EventsLayout",
    "MigrationProgress",
    "ReplayStatus",
    "Retention",
    "SessionWriter",
    "StepRecord",
    "TopUp",
    "apply_migrations",
    "apply_retention",
    "atlas_home",
    "available_migrations",
    "connect",
    "create_atlas_sdk_schema",
    "create_partitions_ahead",
    "embedded_server",
    "ensure_embedded",
    "events_layout",
    "is_standby",
    "mask_url",
    "partition_events",
    "prepare",
    "replay_status",
    "resolve_settings",
    "retention_cutoff",
    "schema_status",
    "seed_sessions",
    "stop_embedded",
    "to_envelope",
    "translate_errors",
]
