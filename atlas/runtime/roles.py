"""What the runtime asks the Student, the Teacher and the judges, and how it reads the answers.

Pure functions: messages to send, and parsers for the replies. Agents answer
in free text around a JSON object; :func:`extract_json` finds it. A reply
that cannot be read raises :class:`UnreadableReply`, which the orchestrator
records (a judge's unreadable verdict is an error in the audit, never a
made-up score).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Judgement",
    "PlannedStep",
    "UnreadableReply",
    "Validation",
    "execute_messages",
    "extract_json",
    "judge_messages",
    "learning_messages",
    "parse_judgement",
    "parse_learning",
    "parse_plan",
    "parse_review",
    "parse_validation",
    "plan_messages",
    "review_messages",
    "synthesis_messages",
    "validation_messages",
]

Messages = list[dict[str, str]]


class UnreadableReply(ValueError):
    """An agent's reply does not contain what was asked for."""


@dataclass(frozen=True)
class PlannedStep:
    """One step of a plan."""

    id: int
    description: str
    tool: str | None = None
    tool_params: dict[str, Any] = field(default_factory=dict)
    depends_on: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The plan entry as stored."""
        return {
            "id": self.id,
            "description": self.description,
            "tool": self.tool,
            "tool_params": self.tool_params,
            "depends_on": list(self.depends_on),
        }


@dataclass(frozen=True)
class Validation:
    """The Teacher's verdict on one attempt at a step."""

    valid: bool
    rationale: str
    guidance: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """As stored in step evaluations."""
        return {"valid": self.valid, "rationale": self.rationale, "guidance": self.guidance}


@dataclass(frozen=True)
class Judgement:
    """One judge's score."""

    score: float
    rationale: str
    principles: list[Any] = field(default_factory=list)


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def extract_json(text: str) -> Any:
    """The first JSON object (or array) in ``text``, fenced or bare.

    Raises :class:`UnreadableReply` when there is none.
    """
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        for index, char in enumerate(candidate):
            if char in "{[":
                try:
                    value, _ = decoder.raw_decode(candidate[index:])
                except json.JSONDecodeError:
                    continue
                return value
    raise UnreadableReply("no JSON object in the reply")


def _system(role: str, playbook: str | None) -> str:
    base = {
        "student": "You are the Student: you plan and carry out tasks step by step.",
        "teacher": "You are the Teacher: you review the Student's plans and work, and guide it.",
        "judge": "You are a reward judge: you score work against principles, strictly.",
    }[role]
    return base + (f"\n\nPlaybook learned from earlier sessions:\n{playbook}" if playbook else "")


def plan_messages(task: str, playbook: str | None = None) -> Messages:
    """Ask the Student for a plan."""
    return [
        {"role": "system", "content": _system("student", playbook)},
        {
            "role": "user",
            "content": f"Task: {task}\n\nReply with a JSON object "
            '{"steps": [{"id": 1, "description": "...", "tool": null, "tool_params": {}, '
            '"depends_on": []}]}. Keep steps small; depends_on lists earlier step ids.',
        },
    ]


def parse_plan(reply: str | Mapping[str, Any]) -> list[PlannedStep]:
    """Read a plan; ids must be unique and dependencies must point at earlier-known steps."""
    data = extract_json(reply) if isinstance(reply, str) else reply
    steps = data.get("steps") if isinstance(data, Mapping) else data
    if not isinstance(steps, list) or not steps:
        raise UnreadableReply("the plan has no steps")
    parsed: list[PlannedStep] = []
    for position, raw in enumerate(steps, start=1):
        if isinstance(raw, str):
            raw = {"description": raw}
        if not isinstance(raw, Mapping):
            raise UnreadableReply(f"step {position} is not an object")
        try:
            step_id = int(raw.get("id", raw.get("step_id", position)))
        except (TypeError, ValueError):
            raise UnreadableReply(f"step {position} has no usable id") from None
        params = raw.get("tool_params")
        if isinstance(params, str):
            try:
                params = json.loads(params)
            except json.JSONDecodeError:
                params = {"input": params}
        depends = raw.get("depends_on") or []
        parsed.append(
            PlannedStep(
                id=step_id,
                description=str(raw.get("description") or raw.get("title") or f"Step {step_id}"),
                tool=raw.get("tool") or None,
                tool_params=params if isinstance(params, dict) else {},
                depends_on=tuple(int(d) for d in depends if str(d).lstrip("-").isdigit()),
            )
        )
    ids = [s.id for s in parsed]
    if len(set(ids)) != len(ids):
        raise UnreadableReply("the plan repeats a step id")
    known = set(ids)
    for step in parsed:
        missing = [d for d in step.depends_on if d not in known or d == step.id]
        if missing:
            raise UnreadableReply(f"step {step.id} depends on unknown step {missing[0]}")
    _check_acyclic(parsed)
    return parsed


def _check_acyclic(steps: Sequence[PlannedStep]) -> None:
    done: set[int] = set()
    remaining = {s.id: set(s.depends_on) for s in steps}
    while remaining:
        ready = [sid for sid, deps in remaining.items() if deps <= done]
        if not ready:
            raise UnreadableReply("the plan's dependencies form a cycle")
        for sid in ready:
            done.add(sid)
            del remaining[sid]


def review_messages(
    task: str, plan: Sequence[PlannedStep], playbook: str | None = None
) -> Messages:
    """Ask the Teacher to review a plan (and optionally return a revised one)."""
    body = json.dumps({"steps": [s.to_dict() for s in plan]}, ensure_ascii=False)
    return [
        {"role": "system", "content": _system("teacher", playbook)},
        {
            "role": "user",
            "content": f"Task: {task}\nProposed plan: {body}\n\nReply with JSON "
            '{"approved": true|false, "notes": "...", "steps": [...revised steps, optional]}.',
        },
    ]


def parse_review(reply: str) -> tuple[bool, str, list[PlannedStep] | None]:
    """(approved, notes, revised plan or None)."""
    data = extract_json(reply)
    if not isinstance(data, Mapping):
        raise UnreadableReply("the review is not an object")
    revised = parse_plan(data) if data.get("steps") else None
    return bool(data.get("approved", True)), str(data.get("notes") or ""), revised


def execute_messages(
    task: str,
    step: PlannedStep,
    prior_results: Mapping[str, str],
    guidance: Sequence[str],
    playbook: str | None = None,
) -> Messages:
    """Ask the Student to carry out one step."""
    lines = [
        f"Task: {task}",
        f"Step {step.id}: {step.description}",
        f"Tool: {step.tool or 'none'} {json.dumps(step.tool_params, ensure_ascii=False)}",
        f"Results of earlier steps: {json.dumps(dict(prior_results), ensure_ascii=False)}",
    ]
    if guidance:
        lines.append("Teacher guidance: " + " | ".join(guidance))
    lines.append("Reply with the step's result.")
    return [
        {"role": "system", "content": _system("student", playbook)},
        {"role": "user", "content": "\n".join(lines)},
    ]


def validation_messages(task: str, step: PlannedStep, output: str) -> Messages:
    """Ask the Teacher whether an attempt at a step is acceptable."""
    return [
        {"role": "system", "content": _system("teacher", None)},
        {
            "role": "user",
            "content": f"Task: {task}\nStep {step.id}: {step.description}\nResult: {output}\n\n"
            'Reply with JSON {"valid": true|false, "rationale": "...", '
            '"guidance": "what to fix, if not valid"}.',
        },
    ]


def parse_validation(reply: str) -> Validation:
    """Read the Teacher's validation."""
    data = extract_json(reply)
    if not isinstance(data, Mapping) or "valid" not in data:
        raise UnreadableReply("the validation has no 'valid' field")
    guidance = data.get("guidance")
    return Validation(bool(data["valid"]), str(data.get("rationale") or ""), guidance or None)


def judge_messages(
    task: str, subject: str, work: str, principles: Sequence[str], identifier: str
) -> Messages:
    """Ask a judge to score a step's output or a session's final answer."""
    return [
        {"role": "system", "content": _system("judge", None) + f" Your name: {identifier}."},
        {
            "role": "user",
            "content": f"Task: {task}\n{subject}: {work}\nPrinciples: {', '.join(principles)}"
            '\n\nReply with JSON {"score": 0.0-1.0, "rationale": "..."}.',
        },
    ]


def parse_judgement(reply: str) -> Judgement:
    """Read a judge's score; it must be a number between 0 and 1."""
    data = extract_json(reply)
    if not isinstance(data, Mapping):
        raise UnreadableReply("the verdict is not an object")
    try:
        score = float(data["score"])
    except (KeyError, TypeError, ValueError):
        raise UnreadableReply("the verdict has no numeric score") from None
    if not 0.0 <= score <= 1.0:
        raise UnreadableReply(f"the score {score} is outside 0..1")
    principles = data.get("principles")
    return Judgement(
        score, str(data.get("rationale") or ""), principles if isinstance(principles, list) else []
    )


def synthesis_messages(task: str, outputs: Mapping[int, str], playbook: str | None) -> Messages:
    """Ask the Student for the final answer from its step results."""
    results = "\n".join(f"- step {sid}: {text}" for sid, text in outputs.items())
    return [
        {"role": "system", "content": _system("student", playbook)},
        {"role": "user", "content": f"Task: {task}\nStep results:\n{results}\n\nFinal answer:"},
    ]


def learning_messages(
    task: str, playbook: Mapping[str, str | None], guidance: Sequence[str], reward: float | None
) -> Messages:
    """Ask the Teacher to update the playbooks from this session."""
    return [
        {"role": "system", "content": _system("teacher", None)},
        {
            "role": "user",
            "content": f"Task: {task}\nSession reward: {reward}\nGuidance given: "
            f"{json.dumps(list(guidance), ensure_ascii=False)}\nCurrent student playbook: "
            f"{playbook.get('student') or ''}\nCurrent teacher playbook: "
            f"{playbook.get('teacher') or ''}\n\nReply with JSON "
            '{"student_learning": "...", "teacher_learning": "..."}: the updated playbooks, short.',
        },
    ]


def parse_learning(reply: str) -> tuple[str, str]:
    """(student playbook, teacher playbook)."""
    data = extract_json(reply)
    if not isinstance(data, Mapping):
        raise UnreadableReply("the learning update is not an object")
    return str(data.get("student_learning") or ""), str(data.get("teacher_learning") or "")
