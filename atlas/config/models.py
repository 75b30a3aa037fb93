"""Pydantic models for the YAML configuration file.

Every section forbids unknown keys, so a typo such as ``databse_url`` is an
error that names the key instead of a setting that silently does nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from atlas.config.adapters import AdapterConfig
from atlas.config.runtime import (
    LearningConfig,
    MetadataConfig,
    OrchestrationConfig,
    RimConfig,
)
from atlas.errors import InvalidFilter

__all__ = [
    "ALL_STATUSES",
    "REVIEW_STATUSES",
    "AtlasConfig",
    "DriftConfig",
    "ReviewConfig",
    "ReviewStatus",
    "RuntimeSafetyConfig",
    "StorageConfig",
    "parse_review_statuses",
]

ReviewStatus = Literal["pending", "approved", "quarantined"]
# The one list of review statuses; everything else (CLI help, the gate, SQL
# parameters) is built from it.
REVIEW_STATUSES: tuple[str, ...] = get_args(ReviewStatus)
# Words that mean "every review status", as atlas-sdk accepts them.
ALL_STATUSES: tuple[str, ...] = ("all", "*")


def parse_review_statuses(values: str | Iterable[str], where: str) -> tuple[str, ...] | None:
    """Review statuses as users write them, cleaned: ``None`` means every status.

    A string may hold a comma-separated list. Each item is trimmed and
    lowercased (``" Approved"`` is ``approved``), empty items and repeats are
    dropped, and ``all`` or ``*`` anywhere means every status. Raises
    :class:`~atlas.errors.InvalidFilter` (a ``ValueError``, so pydantic reports
    it on the config key) for an unknown status or an empty list; the message
    starts with ``where`` when one is given.
    """
    prefix = f"{where}: " if where else ""
    items = values.split(",") if isinstance(values, str) else list(values)
    cleaned: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidFilter(f"{prefix}review statuses are text, not {item!r}.")
        word = item.strip().lower()
        if word and word not in cleaned:
            cleaned.append(word)
    unknown = [s for s in cleaned if s not in REVIEW_STATUSES and s not in ALL_STATUSES]
    if unknown:
        raise InvalidFilter(
            f"{prefix}unknown review status {unknown[0]!r}; use "
            f"{', '.join(REVIEW_STATUSES)} or all."
        )
    if not cleaned:
        raise InvalidFilter(f"{prefix}give at least one review status (or all).")
    if any(s in ALL_STATUSES for s in cleaned):
        return None
    return tuple(cleaned)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageConfig(_Section):
    """The ``storage:`` block: where sessions are persisted and how to connect."""

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL; leave unset to use the embedded database.",
        repr=False,  # it may hold a password; a repr ends up in logs and tracebacks
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
    # "all" (or "*") = every status, as atlas-sdk's config allows.
    default_export_statuses: tuple[ReviewStatus, ...] | Literal["all"] = ("approved",)

    @field_validator("default_export_statuses", mode="before")
    @classmethod
    def _statuses(cls, value: Any) -> Any:
        if isinstance(value, str) or (isinstance(value, Iterable) and not isinstance(value, dict)):
            try:
                statuses = parse_review_statuses(value, "")
            except InvalidFilter as exc:
                # The config loader adds the key and ends the sentence itself.
                raise ValueError(str(exc).rstrip(".")) from None
            return "all" if statuses is None else statuses
        return value


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
