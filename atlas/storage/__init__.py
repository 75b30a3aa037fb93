"""PostgreSQL storage: schema and migrations, connection pools, the embedded server, the writer."""

from atlas.storage.connection import ConnectionSettings
from atlas.storage.database import AsyncDatabase, Database, resolve_settings
from atlas.storage.embedded import atlas_home, embedded_server, ensure_embedded, stop_embedded
from atlas.storage.events import to_envelope
from atlas.storage.migrate import (
    apply_migrations,
    available_migrations,
    schema_status,
)
from atlas.storage.urls import mask_url
from atlas.storage.writer import AsyncSessionWriter, SessionWriter
from atlas.storage.writes import AttemptRecord, StepRecord

__all__ = [
    "AsyncDatabase",
    "AsyncSessionWriter",
    "AttemptRecord",
    "ConnectionSettings",
    "Database",
    "SessionWriter",
    "StepRecord",
    "apply_migrations",
    "atlas_home",
    "available_migrations",
    "embedded_server",
    "ensure_embedded",
    "mask_url",
    "resolve_settings",
    "schema_status",
    "stop_embedded",
    "to_envelope",
]
