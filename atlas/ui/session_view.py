"""One session as the page shows it: the trace's fields arranged for the templates.

Nothing is dropped on the way: every documented field has its section, and
the whole ``session_metadata`` is shown at the end of the page as stored, so
a key this page does not know yet is still visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from atlas.runtime import AtlasSessionTrace, AtlasStepTrace
from atlas.ui.charts import PlanNode, plan_graph

__all__ = ["EventView", "StepView", "session_context"]


@dataclass(frozen=True)
class EventView:
    """A trajectory event with the fields the timeline filters and sorts on."""

    when: str
    event_type: str
    actor: str
    step_id: Any
    event: dict[str, Any]


@dataclass(frozen=True)
class StepView:
    """A step with its judges and attempts, ready to show."""

    step: AtlasStepTrace
    reward: dict[str, Any]
    judges: list[dict[str, Any]] = field(default_factory=list)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _event_view(event: dict[str, Any]) -> EventView:
    kind = event.get("event_type") or event.get("type") or event.get("name") or "event"
    when = event.get("timestamp") or event.get("created_at") or ""
    return EventView(_text(when), _text(kind), _text(event.get("actor") or "-"),
                     event.get("step_id"), event)  # fmt: skip


def _plan_nodes(trace: AtlasSessionTrace) -> list[PlanNode]:
    """The plan's steps (or, with no stored plan, the executed steps) as graph nodes."""
    planned = trace.plan.get("steps") if isinstance(trace.plan, dict) else None
    nodes: list[PlanNode] = []
    if isinstance(planned, list):
        for i, step in enumerate(planned, start=1):
            if not isinstance(step, dict):
                continue
            deps = step.get("depends_on")
            nodes.append(
                PlanNode(
                    _text(step.get("id", i)),
                    _text(step.get("description")),
                    tuple(_text(d) for d in deps) if isinstance(deps, list) else (),
                )
            )
    if not nodes:
        nodes = [
            PlanNode(str(s.step_id), _text(s.description), tuple(_text(d) for d in s.depends_on))
            for s in trace.steps
        ]
    seen: set[str] = set()
    unique = []
    for node in nodes:  # a duplicated id is drawn once
        if node.step_id not in seen:
            seen.add(node.step_id)
            unique.append(node)
    return unique


def _step_view(step: AtlasStepTrace) -> StepView:
    reward = step.reward.to_dict()
    judges = reward.get("judges")
    return StepView(step, reward, [j for j in judges if isinstance(j, dict)] if judges else [])


def session_context(trace: AtlasSessionTrace) -> dict[str, Any]:
    """What ``session.html`` (and the queue) shows of ``trace``."""
    events = sorted((_event_view(e) for e in trace.trajectory_events), key=lambda e: e.when)
    meta = trace.session_metadata
    history = meta.get("review_history")
    graph: Markup = plan_graph(_plan_nodes(trace), f"Plan of session {trace.session_id}")
    return {
        "trace": trace,
        "meta": meta,
        "plan_graph": graph,
        "steps": [_step_view(s) for s in trace.steps],
        "events": events,
        "event_types": sorted({e.event_type for e in events}),
        "actors": sorted({e.actor for e in events}),
        "review_history": history if isinstance(history, list) else [],
        "review_history_raw": None if isinstance(history, list) else history,
        "adaptive": trace.adaptive_summary if isinstance(trace.adaptive_summary, dict) else None,
        "dossier": meta.get("triage_dossier"),
        "drift": meta.get("drift"),
    }
