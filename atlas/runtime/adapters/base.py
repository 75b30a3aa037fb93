"""What every adapter is: the :class:`Adapter` protocol, its :class:`Completion` and its error.

The runtime sees the Student, the Teacher and the reward judges only through
this seam, so a Python function, an HTTP service and a hosted chat model are
interchangeable. This module does no I/O; the small helpers here (rendering
messages as one prompt, reading token counts) are shared by the adapters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from atlas.errors import AdapterError

__all__ = ["Adapter", "AdapterError", "Completion", "one_line", "parse_usage", "render_prompt"]

_MAX_MESSAGE_CHARS = 300


@dataclass(frozen=True)
class Completion:
    """One answer from an adapter.

    ``usage`` holds token counts when the adapter knows them (``prompt_tokens``,
    ``completion_tokens``, ``total_tokens``); ``raw`` is the provider's reply as
    JSON-compatible data, for telemetry; ``latency_ms`` covers the whole call,
    retries and waits included; ``attempts`` counts the tries it took.
    """

    text: str
    usage: dict[str, int] = field(default_factory=dict)
    raw: Any = None
    latency_ms: float = 0.0
    attempts: int = 1


class Adapter(Protocol):
    """The one interface through which the runtime calls an agent, a teacher or a judge."""

    name: str
    """Identifies the adapter in telemetry and errors, e.g. ``openai:gpt-4o-mini``."""

    async def complete(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> Completion:
        """Answer OpenAI-style ``messages``; raises :class:`AdapterError` when that fails."""
        ...

    async def aclose(self) -> None:
        """Release connections and other resources; call it in the loop that used the adapter."""
        ...


def render_prompt(messages: Sequence[Mapping[str, str]]) -> str:
    """Join the messages' contents, in order, with a blank line between them.

    With the usual system-then-user messages this is the system prompt, a
    blank line, then the user's message. Empty contents are left out.
    """
    return "\n\n".join(str(m.get("content") or "") for m in messages if m.get("content"))


def parse_usage(value: Any) -> dict[str, int]:
    """Token counts from a ``usage`` mapping; anything that is not a plain integer is dropped."""
    if not isinstance(value, Mapping):
        return {}
    return {
        str(key): count
        for key, count in value.items()
        if isinstance(count, int) and not isinstance(count, bool)
    }


def one_line(text: str, limit: int = _MAX_MESSAGE_CHARS) -> str:
    """``text`` with runs of whitespace collapsed to one space, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
