"""Pydantic models for the runtime's configuration sections.

``agent`` (the Student), ``teacher``, ``rim`` (reward judges),
``orchestration``, ``learning`` and ``metadata``; ``storage`` and
``runtime_safety`` live in :mod:`atlas.config.models`. API keys are never in
the file: adapters name the environment variable that holds them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from atlas.config.adapters import AdapterConfig

__all__ = [
    "JudgeConfig",
    "LearningConfig",
    "MetadataConfig",
    "OrchestrationConfig",
    "RimConfig",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JudgeConfig(_Section):
    """One reward judge: its name, its principles, and the model or callable behind it."""

    identifier: str = Field(min_length=1)
    principles: tuple[str, ...] = ("correctness", "completeness", "clarity")
    adapter: AdapterConfig


class RimConfig(_Section):
    """The ``rim:`` block: reward judges, with escalation when they disagree."""

    judges: tuple[JudgeConfig, ...] = ()
    large_judges: tuple[JudgeConfig, ...] = Field(
        default=(), description="Asked when the judges' scores vary more than variance_threshold."
    )
    variance_threshold: float = Field(default=0.02, ge=0)


class OrchestrationConfig(_Section):
    """The ``orchestration:`` block."""

    mode: Literal["adaptive", "auto", "paired", "coach"] = "adaptive"
    max_retries: int = Field(default=2, ge=0, le=10)
    step_timeout_seconds: float = Field(default=300.0, gt=0)
    parallelism: int = Field(default=4, ge=1, le=64)


class LearningConfig(_Section):
    """The ``learning:`` block: playbooks per learning key."""

    enabled: bool = True
    update_enabled: bool = True
    history_limit: int = Field(default=10, ge=0, le=1000)


class MetadataConfig(BaseModel):
    """The ``metadata:`` block: stored with every session; unknown keys are kept too."""

    model_config = ConfigDict(extra="allow", frozen=True)

    learning_key: str | None = None
    tags: tuple[str, ...] = ()
    tenant: str | None = None
