"""Offline demo agents: a deterministic Student, Teacher and judges. For demos and tests only.

They let ``arc-atlas quickstart`` run the whole loop with no model and no API
key: the Student plans from the task's words, the Teacher asks for one retry
on the second step, and each judge scores text by simple, stated criteria
(length, covering the task's words, citing earlier steps), so the rewards
are real functions of the work, not constants. Every reply says it comes
from a demo agent. Use them through ``python`` adapters:
``import_path: atlas.runtime.demo:DemoStudent`` and so on.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEMO_CONFIG", "DEMO_TASKS", "DemoCompletion", "DemoJudge", "DemoStudent", "DemoTeacher"]

DEMO_TASKS = (
    "Summarize the latest Atlas SDK updates for stakeholders.",
    "Triage the overnight checkout latency incident and propose next steps.",
    "Review the login service for credential handling risks.",
    "Draft release notes for the reporting dashboard.",
    "Summarize the latest Atlas SDK updates for stakeholders.",
)


@dataclass(frozen=True)
class DemoCompletion:
    """A completion as the adapters return it."""

    text: str
    usage: dict[str, int] = field(default_factory=dict)
    raw: Any = None
    latency_ms: float = 0.0
    attempts: int = 1


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z]{4,}", text.lower()) if w not in _STOP]


_STOP = {
    "with",
    "from",
    "that",
    "this",
    "their",
    "the",
    "step",
    "task",
    "reply",
    "result",
    "results",
}


def _user(messages: Sequence[Mapping[str, str]]) -> str:
    return next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")


def _task(messages: Sequence[Mapping[str, str]]) -> str:
    match = re.search(r"^Task: (.*)$", _user(messages), re.M)
    return match.group(1) if match else _user(messages)


def _usage(messages: Sequence[Mapping[str, str]], reply: str) -> dict[str, int]:
    prompt = sum(len(m.get("content", "").split()) for m in messages)
    completion = len(reply.split())
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}  # fmt: skip


class _ThroughPythonAdapter:
    """Lets the ``python`` adapter call a demo agent: ``agent(prompt, metadata, messages=...)``."""

    async def complete(
        self, messages: Sequence[Mapping[str, str]], *, metadata: Mapping[str, Any] | None = None
    ) -> DemoCompletion:
        raise NotImplementedError

    async def __call__(
        self,
        prompt: str,
        metadata: Mapping[str, Any] | None = None,
        messages: Sequence[Mapping[str, str]] | None = None,
    ) -> dict[str, Any]:
        """Answer as the python adapter expects: a mapping with text and usage."""
        reply = await self.complete(messages or [{"role": "user", "content": prompt}],
                                    metadata=metadata)  # fmt: skip
        return {"text": reply.text, "usage": reply.usage}


class DemoStudent(_ThroughPythonAdapter):
    """A deterministic demo Student: plans two or three steps and writes plain results."""

    name = "demo:student"

    async def complete(
        self, messages: Sequence[Mapping[str, str]], *, metadata: Mapping[str, Any] | None = None
    ) -> DemoCompletion:
        """Answer the runtime's plan, execute and synthesize requests."""
        phase = (metadata or {}).get("phase")
        task = _task(messages)
        words = _words(task) or ["task"]
        if phase == "plan":
            steps = [
                {"id": 1, "description": f"Gather facts about {' '.join(words[:3])}",
                 "tool": "web_search", "tool_params": {"query": " ".join(words[:4])},
                 "depends_on": []},
                {"id": 2, "description": f"Analyse the findings on {words[0]}",
                 "tool": None, "tool_params": {}, "depends_on": [1]},
            ]  # fmt: skip
            if len(words) > 5:
                steps.append({"id": 3, "description": "Write the answer for the reader",
                              "tool": None, "tool_params": {}, "depends_on": [1, 2]})  # fmt: skip
            reply = "[demo student] plan:\n" + json.dumps({"steps": steps})
        elif phase == "synthesize":
            reply = (
                f"[demo student] Answer to '{task}': "
                + " ".join(f"({i}) {w}" for i, w in enumerate(words[:6], start=1))
                + ". Guidance applied." * ("Teacher guidance" in _user(messages))
            )
        else:
            content = _user(messages)
            cited = "earlier results considered; " if '"1"' in content else ""
            fixed = "revised per guidance; " if "Teacher guidance" in content else ""
            step = re.search(r"^Step (\d+): (.*)$", content, re.M)
            what = step.group(2) if step else "the step"
            reply = f"[demo student] {fixed}{cited}{what}: " + ", ".join(words[:8]) + "."
        return DemoCompletion(reply, _usage(messages, reply))


class DemoTeacher(_ThroughPythonAdapter):
    """A deterministic demo Teacher: approves plans, asks for one retry on step 2."""

    name = "demo:teacher"

    async def complete(
        self, messages: Sequence[Mapping[str, str]], *, metadata: Mapping[str, Any] | None = None
    ) -> DemoCompletion:
        """Answer review, validate and learn requests."""
        meta = metadata or {}
        phase = meta.get("phase")
        if phase == "review":
            reply = {"approved": True, "notes": "[demo teacher] Plan is reasonable; cite sources."}
        elif phase in ("validate", "validate_final"):
            retry = meta.get("step_id") == 2 and meta.get("attempt") == 1
            reply = {
                "valid": not retry,
                "rationale": "[demo teacher] " + ("Too thin." if retry else "Complete."),
                "guidance": "Name the evidence you used." if retry else None,
            }
        elif phase == "learn":
            reply = {
                "student_learning": "[demo playbook] Cite the evidence behind each finding.",
                "teacher_learning": "[demo playbook] Ask for evidence when a step is thin.",
            }
        else:
            reply = {"note": "[demo teacher] nothing to say"}
        text = json.dumps(reply)
        return DemoCompletion(text, _usage(messages, text))


class DemoJudge(_ThroughPythonAdapter):
    """A deterministic demo judge: scores coverage of the task, length and citations.

    ``strictness`` shifts its scores so that several demo judges can disagree.
    """

    def __init__(self, identifier: str = "demo-process", strictness: float = 0.0):
        self.identifier = identifier
        self.strictness = strictness
        self.name = f"demo:judge:{identifier}"

    async def complete(
        self, messages: Sequence[Mapping[str, str]], *, metadata: Mapping[str, Any] | None = None
    ) -> DemoCompletion:
        """Score the work named in the request."""
        content = _user(messages)
        task_words = set(_words(_task(messages)))
        work = content.split("\n", 2)[1] if "\n" in content else content
        covered = len(task_words & set(_words(work))) / max(1, len(task_words))
        length = min(1.0, len(work.split()) / 25)
        cites = 0.1 if "earlier results" in work or "evidence" in work else 0.0
        wobble = int(hashlib.sha256((self.identifier + work).encode()).hexdigest()[:4], 16) / 65535
        score = 0.35 + 0.35 * covered + 0.2 * length + cites + 0.05 * wobble - self.strictness
        score = round(max(0.0, min(1.0, score)), 3)
        reply = json.dumps({
            "score": score,
            "rationale": f"[demo judge {self.identifier}] covers {covered:.0%} of the task's "
            f"words, length factor {length:.2f}" + (", cites evidence" if cites else ""),
        })  # fmt: skip
        return DemoCompletion(reply, _usage(messages, reply))


def _python(target: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": "python", "import_path": f"atlas.runtime.demo:{target}", "kwargs": kwargs}


DEMO_CONFIG: dict[str, Any] = {
    "agent": _python("DemoStudent"),
    "teacher": _python("DemoTeacher"),
    "rim": {
        "judges": [
            {"identifier": "process", "adapter": _python("DemoJudge", identifier="process")},
            {"identifier": "helpfulness",
             "adapter": _python("DemoJudge", identifier="helpfulness", strictness=0.08)},
        ],
        "large_judges": [
            {"identifier": "arbiter", "adapter": _python("DemoJudge", identifier="arbiter")},
        ],
        "variance_threshold": 0.001,
    },
    "metadata": {"tags": ["demo"], "source": "arc-atlas quickstart"},
    # Demo sessions need no human review to be exported.
    "runtime_safety": {"review": {"require_approval": False}},
}  # fmt: skip
"""A complete configuration that runs the demo agents (no model, no API key)."""
