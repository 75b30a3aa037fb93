"""Pydantic models for the YAML configuration file.

Every section forbids unknown keys, so a typo such as ``databse_url`` is an
error that names the key instead of a setting that silently does nothing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from atlas.config.adapters import AdapterConfig
from atlas.config.runtime import (
    LearningConfig,
    MetadataConfig,
    OrchestrationConfig,
    RimConfig,
)

__all__ = [
    "REVIEW_STATUSES",
    "AtlasConfig",
    "DriftConfig",
    "ReviewConfig",
    "ReviewStatus",
    "RuntimeSafetyConfig",
    "StorageConfig",
]

ReviewStatus = Literal["pending", "approved", "quarantined"]
REVIEW_STATUSES: tuple[str, ...] = ("pending", "approved", "quarantined")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageConfig(_Section):
    """The ``storage:`` block: where sessions are persisted and how to connect."""

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL; leave unset to use the embedded database.",
    )
    min_connections: int = Field(default=1, ge=0, le=1000)
    max_connections: int = Field(default=5, ge=1, le=1000)
    statement_timeout_seconds: float = Field(
        default=30.0, ge=0, description="Per-statement limit on every pooled connection; 0 = none."
    )
    connect_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    apply_schema_on_connect: bool = Field(
        default=True,
        description="Writers apply pending migrations when they connect (readers never do).",
    )

    @model_validator(mode="after")
    def _pool_bounds(self) -> StorageConfig:
        if self.min_connections > self.max_connections:
            raise ValueError(
                f"min_connections ({self.min_connections}) must not exceed "
                f"max_connections ({self.max_connections})"
            )
        return self


class ReviewConfig(_Section):
    """Review gating: which sessions count as training data by default."""

    require_approval: bool = True
    default_export_statuses: tuple[ReviewStatus, ...] = ("approved",)


class DriftConfig(_Section):
    """Reward drift detection against a learning key's recent baseline."""

    enabled: bool = True
    window: int = Field(default=50, ge=2)
    z_threshold: float = Field(default=3.0, gt=0)
    min_baseline: int = Field(default=5, ge=2)


class RuntimeSafetyConfig(_Section):
    """The ``runtime_safety:`` block."""

    review: ReviewConfig = ReviewConfig()
    drift: DriftConfig = DriftConfig()


class AtlasConfig(_Section):
    """A whole arc-atlas configuration file.

    ``storage`` is ``None`` when the file has no storage block: arc-atlas then
    uses the database named by the environment, or the embedded one. The
    runtime sections are described in :mod:`atlas.config.runtime` and
    :mod:`atlas.config.adapters`; ``agent`` is required to run tasks.
    """

    storage: StorageConfig | None = None
    runtime_safety: RuntimeSafetyConfig = RuntimeSafetyConfig()
    agent: AdapterConfig | None = None
    teacher: AdapterConfig | None = None
    rim: RimConfig = RimConfig()
    orchestration: OrchestrationConfig = OrchestrationConfig()
    learning: LearningConfig = LearningConfig()
    metadata: MetadataConfig = MetadataConfig()
