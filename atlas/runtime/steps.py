"""Planning and executing: the plan, the steps in dependency order, the final answer.

A step is retried with the Teacher's guidance while its validation fails (coach
mode) or its call errors or times out, up to ``max_retries`` more attempts; each
step is judged and written when it completes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from atlas.runtime import roles
from atlas.runtime.judging import judge
from atlas.runtime.run_context import RunContext, ask
from atlas.storage import writes
from atlas.storage.writes import AttemptRecord, StepRecord

__all__ = ["StepFailed", "final_answer", "make_plan", "run_steps"]

_log = logging.getLogger(__name__)


class StepFailed(RuntimeError):
    """A step could not produce a result within its attempts."""


async def make_plan(ctx: RunContext) -> list[roles.PlannedStep]:
    """The Student's plan, reviewed (and perhaps revised) by the Teacher if there is one."""
    ctx.reporter.phase("plan")
    playbook = ctx.playbook.get("student")
    reply = await ask(
        ctx, "student", ctx.parts.student, roles.plan_messages(ctx.task, playbook), "plan"
    )
    try:
        plan = roles.parse_plan(reply)
    except roles.UnreadableReply as exc:
        # One step doing the whole task is a plan the Student can always follow.
        await ctx.recorder.emit("plan_fallback", "runtime", "plan", {"reason": str(exc)})
        plan = [roles.PlannedStep(1, ctx.task)]
    if ctx.parts.teacher is not None:
        ctx.reporter.phase("review")
        messages = roles.review_messages(ctx.task, plan, ctx.playbook.get("teacher"))
        reply = await ask(ctx, "teacher", ctx.parts.teacher, messages, "review")
        try:
            approved, notes, revised = roles.parse_review(reply)
        except roles.UnreadableReply as exc:
            approved, notes, revised = True, f"review unreadable ({exc}); plan kept", None
        if revised:
            plan = revised
        if notes:
            ctx.guidance_given.append(notes)
        await ctx.recorder.emit(
            "plan_approved" if approved else "plan_revised",
            "teacher",
            "review",
            {"approved": approved, "notes": notes, "revised": revised is not None},
        )
    return plan


async def _run_step(ctx: RunContext, step: roles.PlannedStep) -> None:
    """Run one step until it is accepted or out of retries, then judge and record it."""
    settings = ctx.settings
    prior = {str(d): ctx.outputs[d] for d in step.depends_on if d in ctx.outputs}
    guidance: list[str] = []
    history: list[dict[str, Any]] = []
    started = time.perf_counter()
    output: str | None = None
    validation: roles.Validation
    messages: list[dict[str, str]] = []
    attempt = 0
    while True:
        attempt += 1
        ctx.reporter.step(step.id, attempt, "running", step.description)
        await ctx.recorder.emit("step_started", "runtime", f"step {step.id}", {"attempt": attempt},
                                step_id=step.id)  # fmt: skip
        if step.tool:
            await ctx.recorder.emit("tool_call", "student", step.tool,
                                    {"params": step.tool_params, "attempt": attempt},
                                    step_id=step.id)  # fmt: skip
        messages = roles.execute_messages(
            ctx.task, step, prior, guidance, ctx.playbook.get("student")
        )
        output, error = await _execute(ctx, step, messages, attempt)
        if error is not None:
            failed = {"validation": {"valid": False, "rationale": error}}
            history.append({"attempt": attempt, "output": None, "error": error,
                            "evaluation": failed})  # fmt: skip
            await ctx.recorder.emit("step_error", "runtime", f"step {step.id}", {"error": error},
                                    step_id=step.id)  # fmt: skip
            ctx.reporter.step(step.id, attempt, "error", error)
            if attempt > settings.max_retries:
                ctx.outputs[step.id] = ""
                await _record_step(ctx, step, None, history, guidance, prior, started, None,
                                   roles.Validation(False, error), "failed")  # fmt: skip
                raise StepFailed(f"step {step.id} failed after {attempt} attempt(s): {error}")
            continue
        assert output is not None
        if step.tool:
            await ctx.recorder.emit("tool_result", "runtime", step.tool, {"output": output[:400]},
                                    step_id=step.id)  # fmt: skip
        validation = await _validate(ctx, step, output, attempt)
        await ctx.recorder.emit("validation", "teacher", f"step {step.id}", validation.to_dict(),
                                step_id=step.id)  # fmt: skip
        history.append({"attempt": attempt, "output": output,
                        "evaluation": {"validation": validation.to_dict()}})  # fmt: skip
        if validation.valid or attempt > settings.max_retries:
            break
        note = validation.guidance or validation.rationale
        guidance.append(note)
        ctx.guidance_given.append(note)
        await ctx.recorder.emit("guidance", "teacher", f"step {step.id}", {"note": note},
                                step_id=step.id)  # fmt: skip
        ctx.reporter.step(step.id, attempt, "retry", note)
    ctx.outputs[step.id] = output
    reward = await judge(ctx, f"Result of step {step.id} ({step.description})", output,
                         step_id=step.id)  # fmt: skip
    ctx.reporter.reward(f"step {step.id}", reward["score"] if reward else None)
    trace = "\n".join(f"{m['role'].upper()}: {m['content']}" for m in messages)
    trace += f"\nASSISTANT: {output}"
    await _record_step(ctx, step, output, history, guidance, prior, started, reward, validation,
                       "succeeded" if validation.valid else "unvalidated", trace)  # fmt: skip


async def _execute(
    ctx: RunContext, step: roles.PlannedStep, messages: list[dict[str, str]], attempt: int
) -> tuple[str | None, str | None]:
    """One attempt's call to the Student within the step timeout, as ``(output, error)``."""
    settings = ctx.settings
    try:
        output = await asyncio.wait_for(
            ask(ctx, "student", ctx.parts.student, messages, "execute",
                step_id=step.id, attempt=attempt),
            timeout=settings.step_timeout_seconds,
        )  # fmt: skip
    except (asyncio.TimeoutError, TimeoutError):
        return None, f"timed out after {settings.step_timeout_seconds:g} s"
    except Exception as exc:
        # An agent's own error is an attempt's outcome (retried, then recorded);
        # its traceback goes to the log.
        _log.warning("step %s attempt %s: the agent raised", step.id, attempt, exc_info=True)
        return None, f"{type(exc).__name__}: {exc}"
    return output, None


async def _validate(
    ctx: RunContext, step: roles.PlannedStep, output: str, attempt: int
) -> roles.Validation:
    """The Teacher's verdict on a step's output in coach mode; otherwise the output is accepted."""
    teacher = ctx.parts.teacher
    if ctx.mode != "coach" or teacher is None:
        return roles.Validation(True, f"accepted without step validation ({ctx.mode} mode)")
    reply = await ask(ctx, "teacher", teacher,
                      roles.validation_messages(ctx.task, step, output), "validate",
                      step_id=step.id, attempt=attempt)  # fmt: skip
    try:
        return roles.parse_validation(reply)
    except roles.UnreadableReply as exc:
        return roles.Validation(True, f"validation unreadable ({exc}); accepted")


async def _record_step(
    ctx: RunContext,
    step: roles.PlannedStep,
    output: str | None,
    history: list[dict[str, Any]],
    guidance: list[str],
    prior: Mapping[str, str],
    started: float,
    reward: dict[str, Any] | None,
    validation: roles.Validation,
    status: str,
    trace: str | None = None,
) -> None:
    """Write the step with its attempts and guidance, and add it to the run's summary."""
    runtime_ms = round((time.perf_counter() - started) * 1000, 1)
    evaluation: dict[str, Any] = {"validation": validation.to_dict()}
    if reward is not None:
        evaluation["reward"] = reward
    await ctx.recorder.write([writes.record_step(
        ctx.recorder.session_id,
        StepRecord(
            step_id=step.id,
            trace=trace,
            output=output,
            evaluation=evaluation,
            metadata={
                "description": step.description,
                "tool": step.tool,
                "tool_params": step.tool_params,
                "depends_on": list(step.depends_on),
                "context": {"prior_results": dict(prior)},
                "runtime": runtime_ms,
                # Earlier attempts; a failed step has no accepted one, so all of them.
                "attempt_history": history if status == "failed" else history[:-1],
                "artifacts": {"tool": step.tool, "attempts": len(history)} if step.tool else {},
                "deliverable": {"output": output} if output is not None else None,
                "status": status,
            },
            attempts=[AttemptRecord(h["attempt"], h["evaluation"]) for h in history],
            guidance=guidance,
        ),
    )])  # fmt: skip
    ctx.step_summaries.append({"step_id": step.id, "status": status, "attempts": len(history),
                               "reward": reward["score"] if reward else None})  # fmt: skip


async def run_steps(ctx: RunContext, plan: Sequence[roles.PlannedStep]) -> None:
    """Every step in dependency order; independent steps at once, up to the parallelism."""
    ctx.reporter.phase("execute", f"{len(plan)} step(s)")
    limit = asyncio.Semaphore(max(1, ctx.settings.parallelism))
    done: set[int] = set()
    pending = {s.id: s for s in plan}

    async def guarded(step: roles.PlannedStep) -> None:
        async with limit:
            await _run_step(ctx, step)

    while pending:
        ready = [s for s in pending.values() if set(s.depends_on) <= done]
        results = await asyncio.gather(*(guarded(s) for s in ready), return_exceptions=True)
        for step, result in zip(ready, results, strict=True):
            if isinstance(result, BaseException):
                raise result
            done.add(step.id)
            del pending[step.id]


async def final_answer(ctx: RunContext) -> str:
    """The Student's answer from the step outputs; the Teacher checks it (paired, coach)."""
    ctx.reporter.phase("synthesize")
    messages = roles.synthesis_messages(ctx.task, ctx.outputs, ctx.playbook.get("student"))
    answer = await ask(ctx, "student", ctx.parts.student, messages, "synthesize")
    if ctx.mode in ("paired", "coach") and ctx.parts.teacher is not None:
        final = roles.PlannedStep(0, "final answer")
        check = roles.validation_messages(ctx.task, final, answer)
        reply = await ask(ctx, "teacher", ctx.parts.teacher, check, "validate_final")
        try:
            verdict = roles.parse_validation(reply)
        except roles.UnreadableReply:
            verdict = roles.Validation(True, "final validation unreadable; accepted")
        await ctx.recorder.emit("validation", "teacher", "final answer", verdict.to_dict())
        if not verdict.valid:
            note = verdict.guidance or verdict.rationale
            ctx.guidance_given.append(note)
            messages[-1]["content"] += f"\nTeacher guidance: {note}"
            answer = await ask(ctx, "student", ctx.parts.student, messages, "synthesize")
    return answer
