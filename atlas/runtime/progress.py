"""``stream_progress=True``: the run, live, on the terminal.

Progress goes to stderr, so a program's stdout (an answer piped elsewhere)
is never disturbed. On a terminal each phase, step, attempt and reward gets
a line; when stderr is not a terminal nothing is printed unless asked.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console

__all__ = ["ConsoleReporter"]

_STYLE = {"running": "cyan", "retry": "yellow", "error": "red", "failed": "bold red"}


class ConsoleReporter:
    """Print a run's phases, steps, attempts and rewards as they happen."""

    def __init__(self, stream: TextIO | None = None, *, force: bool = False):
        target = stream or sys.stderr
        self.enabled = force or target.isatty()
        self._console = Console(file=target, highlight=False, soft_wrap=True)
        self._started = time.monotonic()

    def _line(self, text: str, style: str = "") -> None:
        if self.enabled:
            elapsed = time.monotonic() - self._started
            self._console.print(f"[dim]{elapsed:6.1f}s[/dim] {text}", style=style or None)

    def phase(self, name: str, detail: str = "") -> None:
        """A phase started (triage, plan, execute, reward, ...)."""
        self._line(f"[bold]{name}[/bold] {detail}".rstrip(), _STYLE.get(name, ""))

    def step(self, step_id: int, attempt: int, status: str, detail: str = "") -> None:
        """A step attempt changed state."""
        self._line(f"  step {step_id} attempt {attempt}: {status} {detail[:100]}".rstrip(),
                   _STYLE.get(status, ""))  # fmt: skip

    def reward(self, subject: str, score: float | None) -> None:
        """A reward was computed."""
        shown = "no score" if score is None else f"{score:.3f}"
        self._line(f"  reward {subject}: {shown}", "green" if score is not None else "yellow")
