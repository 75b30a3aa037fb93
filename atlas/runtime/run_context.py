"""A run's shared state and the one way the loop asks an agent (usage and an event per reply)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from atlas.runtime.recorder import SessionRecorder
from atlas.runtime.run_types import Completer, Reporter, RuntimeParts, RuntimeSettings

__all__ = ["RunContext", "ask"]


def _text(completion: Any) -> str:
    return str(getattr(completion, "text", completion))


def _usage(completion: Any) -> dict[str, int]:
    usage = getattr(completion, "usage", None)
    return dict(usage) if isinstance(usage, Mapping) else {}


@dataclass
class RunContext:
    """One run's shared state: its agents, settings, recorder, and what the steps produced."""

    task: str
    parts: RuntimeParts
    settings: RuntimeSettings
    recorder: SessionRecorder
    reporter: Reporter
    mode: str
    playbook: dict[str, Any]
    outputs: dict[int, str] = field(default_factory=dict)
    guidance_given: list[str] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    step_summaries: list[dict[str, Any]] = field(default_factory=list)

    def add_usage(self, completion: Any) -> None:
        """Add a completion's token counts to the run's totals."""
        for key, value in _usage(completion).items():
            if isinstance(value, int):
                self.usage[key] = self.usage.get(key, 0) + value


async def ask(
    ctx: RunContext, who: str, adapter: Completer, messages: list[dict[str, str]], phase: str,
    **meta: Any,
) -> str:  # fmt: skip
    """Send ``messages`` to ``adapter`` and record the reply as an ``llm_response`` event."""
    started = time.perf_counter()
    completion = await adapter.complete(messages, metadata={"phase": phase, **meta})
    ctx.add_usage(completion)
    await ctx.recorder.emit(
        "llm_response",
        who,
        f"{phase}",
        {
            "adapter": adapter.name,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            "usage": _usage(completion),
            "excerpt": _text(completion)[:400],
        },
        step_id=meta.get("step_id"),
    )
    return _text(completion)
