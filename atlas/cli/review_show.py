"""``arc-atlas review show ID``: one session in full, rendered with rich.

The page is built from an :class:`~atlas.runtime.AtlasSessionTrace` as
:func:`atlas.training_data.get_session_by_id` returns it, so it shows what
the API and the export return. Every stored value goes
into a :class:`rich.text.Text`, never into a markup string: a task or a judge
rationale holding ``[bold]`` or ``[/]`` is printed as written.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from atlas.runtime import AtlasRewardBreakdown, AtlasSessionTrace, AtlasStepTrace

__all__ = ["console", "render_session"]


def console() -> Console:
    """stdout, at least 140 columns wide so tables stay readable in a pipe."""
    return Console(file=sys.stdout, width=max(Console().width, 140), highlight=False)


def _text(value: Any) -> Text:
    """A stored value as plain text: strings as written, JSON for anything else, ``-`` for None."""
    if value is None:
        return Text("-")
    if isinstance(value, str):
        return Text(value)
    if isinstance(value, datetime):
        return Text(value.isoformat())
    return Text(json.dumps(value, ensure_ascii=False, default=str))


def _score(value: float | None) -> Text:
    return Text("-" if value is None else f"{value:.4g}")


def _fields(rows: Iterable[tuple[str, Any]]) -> Table:
    """A two-column grid of label and value; values that are None are left out."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for label, value in rows:
        if value is not None:
            grid.add_row(label, value if isinstance(value, Text) else _text(value))
    return grid


def _reward_line(stats: Mapping[str, Any] | None) -> Text | None:
    if not isinstance(stats, Mapping) or stats.get("score") is None:
        return None
    line = _text(stats.get("score"))
    if stats.get("uncertainty") is not None:
        line.append(" ± ").append_text(_text(stats.get("uncertainty")))
    return line


def _summary(trace: AtlasSessionTrace) -> Panel:
    rows = [
        ("task", trace.task),
        ("status", trace.status),
        ("created", trace.created_at),
        ("completed", trace.completed_at),
        ("learning key", trace.learning_key),
        ("execution mode", trace.execution_mode),
        ("reward", _reward_line(trace.reward_stats)),
        ("drift alert", "ALERT" if trace.drift_alert is True else None),
    ]
    return Panel(_fields(rows), title=Text(f"Session {trace.session_id}"), title_align="left")


def _judges(reward: AtlasRewardBreakdown) -> Table | None:
    if not reward.judges:
        return None
    table = Table("judge", "score", "rationale", expand=True)
    for judge in reward.judges:
        table.add_row(_text(judge.identifier), _score(judge.score), _text(judge.rationale))
    return table


def _plan(plan: dict[str, Any] | None) -> RenderableType:
    steps = plan.get("steps") if isinstance(plan, dict) else None
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        return Panel(_text(plan), title="Plan", title_align="left")
    table = Table("step", "description", "tool", "depends on", title="Plan", title_justify="left")
    for step in steps:
        table.add_row(
            _text(step.get("id")),
            _text(step.get("description")),
            _text(step.get("tool")),
            _text(step.get("depends_on")),
        )
    return table


def _attempts(step: AtlasStepTrace) -> Table | None:
    if not step.attempt_history:
        return None
    table = Table("attempt", "details", title="attempts", title_justify="left", expand=True)
    for number, attempt in enumerate(step.attempt_history, 1):
        shown = attempt.get("attempt", number) if isinstance(attempt, dict) else number
        rest = (
            {k: v for k, v in attempt.items() if k != "attempt"}
            if isinstance(attempt, dict)
            else attempt
        )
        table.add_row(_text(shown), _text(rest))
    return table


def _guidance(notes: Any, title: str) -> Panel | None:
    if not notes:
        return None
    items = notes if isinstance(notes, list) else [notes]
    body = Text("\n").join(Text("• ").append_text(_text(item)) for item in items)
    return Panel(body, title=title, title_align="left")


def _step(step: AtlasStepTrace) -> Panel:
    parts: list[RenderableType] = [
        _fields(
            [
                ("reward", _score(step.reward.score)),
                ("reward rationale", step.reward.rationale),
                ("tool", step.tool),
                ("attempts", step.attempts),
                ("validation", step.validation),
                ("output", step.output),
            ]
        )
    ]
    for part in (_judges(step.reward), _guidance(step.guidance, "guidance"), _attempts(step)):
        if part is not None:
            parts.append(part)
    title = Text(f"Step {step.step_id}: ").append_text(_text(step.description))
    return Panel(Group(*parts), title=title, title_align="left")


def _review(trace: AtlasSessionTrace) -> Panel:
    history = trace.session_metadata.get("review_history")
    parts: list[RenderableType] = [
        _fields([("review status", trace.review_status), ("review notes", trace.review_notes)])
    ]
    if isinstance(history, list) and history:
        table = Table("at", "reviewer", "status", "note", title="review_history",
                      title_justify="left")  # fmt: skip
        for entry in history:
            entry = entry if isinstance(entry, dict) else {"note": entry}
            table.add_row(*(_text(entry.get(key)) for key in ("at", "reviewer", "status", "note")))
        parts.append(table)
    elif history:
        parts.append(_fields([("review_history", history)]))
    else:
        parts.append(Text("No review recorded in metadata.review_history."))
    return Panel(Group(*parts), title="Review", title_align="left")


def render_session(trace: AtlasSessionTrace) -> list[RenderableType]:
    """The sections of ``review show``, top to bottom."""
    sections: list[RenderableType] = [_summary(trace), _plan(trace.plan)]
    sections.extend(_step(step) for step in trace.steps)
    reward = AtlasRewardBreakdown.from_dict(trace.session_reward)
    session_judges = _judges(reward)
    if session_judges is not None:
        sections.append(Panel(session_judges, title="Session reward", title_align="left"))
    for part in (
        _guidance(trace.teacher_notes, "Guidance (teacher notes)"),
        Panel(_text(trace.final_answer), title="Final answer", title_align="left"),
        _review(trace),
    ):
        if part is not None:
            sections.append(part)
    damaged = _guidance(trace.load_warnings, "Could not be decoded (kept as found)")
    if damaged is not None:
        sections.append(damaged)
    return sections
