"""Configuration: the YAML file, its validated models, and database URL resolution."""

from atlas.config.database_url import EMBEDDED, ResolvedURL, resolve_database_url
from atlas.config.loader import (
    config_from_mapping,
    ignored_sections_message,
    load_config,
    load_config_sections,
)
from atlas.config.models import (
    REVIEW_STATUSES,
    AtlasConfig,
    DriftConfig,
    ReviewConfig,
    RuntimeSafetyConfig,
    StorageConfig,
    parse_review_statuses,
)

__all__ = [
    "EMBEDDED",
    "REVIEW_STATUSES",
    "AtlasConfig",
    "DriftConfig",
    "ResolvedURL",
    "ReviewConfig",
    "RuntimeSafetyConfig",
    "StorageConfig",
    "config_from_mapping",
    "ignored_sections_message",
    "load_config",
    "load_config_sections",
    "parse_review_statuses",
    "resolve_database_url",
]
