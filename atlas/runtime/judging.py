"""Rewards: the small judges score a piece of work; the large ones settle a disagreement.

Every verdict, readable or not, goes into the run's audit and is recorded as a
``reward`` event.
"""

from __future__ import annotations

import asyncio
from typing import Any

from atlas.runtime import roles
from atlas.runtime.run_context import RunContext, ask
from atlas.runtime.run_types import JudgeSpec
from atlas.runtime.signals import aggregate_reward, needs_escalation

__all__ = ["judge"]


async def judge(
    ctx: RunContext, subject: str, work: str, *, step_id: int | None = None
) -> dict[str, Any] | None:
    """Score ``work`` with the judges (escalating to the large ones on disagreement)."""

    async def one(spec: JudgeSpec, stage: str) -> dict[str, Any]:
        messages = roles.judge_messages(ctx.task, subject, work, spec.principles, spec.identifier)
        entry: dict[str, Any] = {"identifier": spec.identifier, "stage": stage, "step_id": step_id}
        try:
            reply = await ask(ctx, "judge", spec.adapter, messages, "judge", step_id=step_id)
            verdict = roles.parse_judgement(reply)
        except roles.UnreadableReply as exc:
            entry["error"] = f"unreadable verdict: {exc}"
        except Exception as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
        else:
            entry.update(
                score=verdict.score,
                rationale=verdict.rationale,
                principles=verdict.principles or list(spec.principles),
                samples=[{"score": verdict.score, "rationale": verdict.rationale}],
            )
        ctx.audit.append(entry)
        await ctx.recorder.emit("reward", "judge", spec.identifier, entry, step_id=step_id)
        return entry

    small = await asyncio.gather(*(one(spec, "small") for spec in ctx.parts.judges))
    scored = [e for e in small if "score" in e]
    escalated = False
    if ctx.parts.large_judges and needs_escalation(
        [e["score"] for e in scored], ctx.settings.variance_threshold
    ):
        large = await asyncio.gather(*(one(spec, "large") for spec in ctx.parts.large_judges))
        if any("score" in e for e in large):
            scored = [e for e in large if "score" in e]
            escalated = True
    stats = aggregate_reward(scored)
    if stats is None:
        return None
    judges = [
        {k: e[k] for k in ("identifier", "score", "rationale", "principles", "samples")}
        | {"stage": e["stage"]}
        for e in scored
    ]
    return {"score": stats["score"], "uncertainty": stats["uncertainty"], "judges": judges,
            "escalated": escalated}  # fmt: skip
