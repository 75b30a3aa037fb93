"""What a run is made of and what it returns: the agents, the settings, progress, the result.

These are the types callers of :func:`atlas.runtime.orchestrator.run_session`
build and read; the loop's modules share them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from atlas.config.models import DriftConfig

__all__ = [
    "Completer",
    "JudgeSpec",
    "Reporter",
    "RunResult",
    "RuntimeParts",
    "RuntimeSettings",
    "SilentReporter",
]


class Completer(Protocol):
    """What the loop needs of an adapter (see :mod:`atlas.runtime.adapters`)."""

    name: str

    async def complete(
        self, messages: Sequence[Mapping[str, str]], *, metadata: Mapping[str, Any] | None = None
    ) -> Any: ...


class Reporter(Protocol):
    """Live progress (``stream_progress=True``); every method is a notification."""

    def phase(self, name: str, detail: str = "") -> None: ...

    def step(self, step_id: int, attempt: int, status: str, detail: str = "") -> None: ...

    def reward(self, subject: str, score: float | None) -> None: ...


class SilentReporter:
    """A reporter that shows nothing (progress not streamed)."""

    def phase(self, name: str, detail: str = "") -> None:
        pass

    def step(self, step_id: int, attempt: int, status: str, detail: str = "") -> None:
        pass

    def reward(self, subject: str, score: float | None) -> None:
        pass


@dataclass(frozen=True)
class JudgeSpec:
    """One reward judge: a name, what it judges by, and the agent that judges."""

    identifier: str
    adapter: Completer
    principles: tuple[str, ...] = ("correctness", "completeness", "clarity")


@dataclass(frozen=True)
class RuntimeParts:
    """The agents of a run."""

    student: Completer
    teacher: Completer | None
    judges: tuple[JudgeSpec, ...]
    large_judges: tuple[JudgeSpec, ...] = ()


@dataclass(frozen=True)
class RuntimeSettings:
    """How a run behaves (from the config's orchestration, rim, learning, safety blocks)."""

    mode: str = "adaptive"
    max_retries: int = 2
    step_timeout_seconds: float = 300.0
    parallelism: int = 4
    variance_threshold: float = 0.02
    learning_enabled: bool = True
    learning_update: bool = True
    history_limit: int = 10
    drift: DriftConfig = field(default_factory=DriftConfig)
    require_approval: bool = True
    learning_key: str | None = None
    tags: tuple[str, ...] = ()
    tenant: str | None = None
    extra_metadata: Mapping[str, Any] = field(default_factory=dict)
    # How often a running session's metadata.heartbeat_at is refreshed; keep
    # it well below the --older-than given to `arc-atlas db recover`.
    heartbeat_seconds: float = 30.0


@dataclass
class RunResult:
    """What a run produced; the full record is in the database under ``session_id``."""

    session_id: int
    status: str
    task: str
    final_answer: str | None = None
    plan: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    session_reward: dict[str, Any] | None = None
    review_status: str = "pending"
    learning_key: str = ""
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
