"""Learning: the key a task learns under, and the playbooks a run leaves for the next."""

from __future__ import annotations

import contextlib
import hashlib
import re
from typing import Any

from atlas.runtime import roles
from atlas.runtime.run_context import RunContext, ask
from atlas.runtime.run_types import RuntimeSettings

__all__ = ["learn", "learning_key_for"]


def learning_key_for(task: str, settings: RuntimeSettings) -> str:
    """The configured learning key, or one derived from the task's words."""
    if settings.learning_key:
        return settings.learning_key
    words = re.findall(r"[a-z0-9]+", task.lower())[:6]
    digest = hashlib.sha256(" ".join(words).encode()).hexdigest()[:10]
    return f"task:{'-'.join(words[:3]) or 'untitled'}:{digest}"


async def learn(
    ctx: RunContext, learning_key: str, score: float | None
) -> tuple[str | None, str | None, dict[str, Any]]:
    """New playbooks for the learning key (and the registry row), and the persona updates."""
    old_student, old_teacher = ctx.playbook.get("student"), ctx.playbook.get("teacher")
    student, teacher = old_student, old_teacher
    if ctx.parts.teacher is not None:
        messages = roles.learning_messages(ctx.task, ctx.playbook, ctx.guidance_given, score)
        reply = await ask(ctx, "teacher", ctx.parts.teacher, messages, "learn")
        with contextlib.suppress(roles.UnreadableReply):  # keep the old playbooks
            student, teacher = roles.parse_learning(reply)
    elif ctx.guidance_given:
        student = "\n".join(filter(None, [old_student, *ctx.guidance_given]))[-2000:]
    updates: dict[str, Any] = {"new_candidates": []}
    for persona, old, new in (("student", old_student, student), ("teacher", old_teacher, teacher)):
        if new and new != old:
            updates["new_candidates"].append(
                {"persona": persona, "instruction": new, "tags": list(ctx.settings.tags)}
            )
    if ctx.settings.learning_update and (student or teacher):
        await ctx.recorder.writer.upsert_learning(
            learning_key,
            student_learning=student,
            teacher_learning=teacher,
            metadata={"updated_by_session": ctx.recorder.session_id, "reward": score},
        )
        await ctx.recorder.emit("learning_playbook", "teacher", learning_key,
                                {"student": student, "teacher": teacher})  # fmt: skip
    return student, teacher, updates
