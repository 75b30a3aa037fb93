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
from atlas.storage.schema import TABLES
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
    "SESSION_STATUSES",
    "SHAPES",
    "TABLES",
    "AsyncDatabase",
    "AsyncSessionWriter",
    "AttemptRecord",
    "ConnectionSettings",
    "Database",
    "MigrationProgress",
    "SessionWriter",
    "StepRecord",
    "apply_migrations",
    "atlas_home",
    "available_migrations",
    "connect",
    "create_atlas_sdk_schema",
    "embedded_server",
    "ensure_embedded",
    "mask_url",
    "prepare",
    "resolve_settings",
    "schema_status",
    "seed_sessions",
    "stop_embedded",
    "to_envelope",
    "translate_errors",
]
