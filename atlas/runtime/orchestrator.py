"""The orchestration loop: triage, probe, plan, steps, rewards, drift, learning, answer.

One :func:`run_session` call is one session, persisted as it happens through a
:class:`~atlas.runtime.recorder.SessionRecorder`: the session row at start,
the plan once reviewed, each step with its attempts and guidance when it
completes, events in batches, and rewards, review status and learning at the
end. Any failure ends the session as ``failed`` with the error in its
metadata; what was written before stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from atlas.config.models import DriftConfig
from atlas.runtime import roles
from atlas.runtime.recorder import (
    Heartbeat,
    SessionRecorder,
    load_history,
    load_playbook,
    reward_baseline,
)
from atlas.runtime.signals import (
    aggregate_reward,
    choose_mode,
    detect_drift,
    needs_escalation,
    triage,
)
from atlas.storage import writes
from atlas.storage.writer import AsyncSessionWriter
from atlas.storage.writes import AttemptRecord, StepRecord

__all__ = ["JudgeSpec", "Reporter", "RunResult", "RuntimeParts", "RuntimeSettings", "run_session"]


class Completer(Protocol):
    """What the loop needs of an adapter (see :mod:`atlas.runtime.adapters`)."""

    name: str

    async def complete(
        self, messages: Sequence[Mapping[str, str]], *, metadata: Mapping[str, Any] | None = None
    ) -> Any: ...


class Reporter(Protocol):
    """Live progress (``stream_progress=True``); every method is a notification."""

    def phase(self, name: str, detail: str = "") -> None: ...

    def step(self, step_id: int, attempt: int, status: str, detail: str = "") -> None: ...

    def reward(self, subject: str, score: float | None) -> None: ...


class _Silent:
    def phase(self, name: str, detail: str = "") -> None:
        pass

    def step(self, step_id: int, attempt: int, status: str, detail: str = "") -> None:
        pass

    def reward(self, subject: str, score: float | None) -> None:
        pass


@dataclass(frozen=True)
class JudgeSpec:
    """One reward judge: a name, what it judges by, and the agent that judges."""

    identifier: str
    adapter: Completer
    principles: tuple[str, ...] = ("correctness", "completeness", "clarity")


@dataclass(frozen=True)
class RuntimeParts:
    """The agents of a run."""

    student: Completer
    teacher: Completer | None
    judges: tuple[JudgeSpec, ...]
    large_judges: tuple[JudgeSpec, ...] = ()


@dataclass(frozen=True)
class RuntimeSettings:
    """How a run behaves (from the config's orchestration, rim, learning, safety blocks)."""

    mode: str = "adaptive"
    max_retries: int = 2
    step_timeout_seconds: float = 300.0
    parallelism: int = 4
    variance_threshold: float = 0.02
    learning_enabled: bool = True
    learning_update: bool = True
    history_limit: int = 10
    drift: DriftConfig = field(default_factory=DriftConfig)
    require_approval: bool = True
    learning_key: str | None = None
    tags: tuple[str, ...] = ()
    tenant: str | None = None
    extra_metadata: Mapping[str, Any] = field(default_factory=dict)
    # How often a running session's metadata.heartbeat_at is refreshed; keep
    # it well below the --older-than given to `arc-atlas db recover`.
    heartbeat_seconds: float = 30.0


@dataclass
class RunResult:
    """What a run produced; the full record is in the database under ``session_id``."""

    session_id: int
    status: str
    task: str
    final_answer: str | None = None
    plan: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    session_reward: dict[str, Any] | None = None
    review_status: str = "pending"
    learning_key: str = ""
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class StepFailed(RuntimeError):
    """A step could not produce a result within its attempts."""


def learning_key_for(task: str, settings: RuntimeSettings) -> str:
    """The configured learning key, or one derived from the task's words."""
    if settings.learning_key:
        return settings.learning_key
    words = re.findall(r"[a-z0-9]+", task.lower())[:6]
    digest = hashlib.sha256(" ".join(words).encode()).hexdigest()[:10]
    return f"task:{'-'.join(words[:3]) or 'untitled'}:{digest}"


def _text(completion: Any) -> str:
    return str(getattr(completion, "text", completion))


def _usage(completion: Any) -> dict[str, int]:
    usage = getattr(completion, "usage", None)
    return dict(usage) if isinstance(usage, Mapping) else {}


@dataclass
class _Context:
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
        for key, value in _usage(completion).items():
            if isinstance(value, int):
                self.usage[key] = self.usage.get(key, 0) + value


async def _ask(
    ctx: _Context, who: str, adapter: Completer, messages: list[dict[str, str]], phase: str,
    **meta: Any,
) -> str:  # fmt: skip
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


async def _judge(
    ctx: _Context, subject: str, work: str, *, step_id: int | None = None
) -> dict[str, Any] | None:
    """Score ``work`` with the judges (escalating to the large ones on disagreement)."""

    async def one(spec: JudgeSpec, stage: str) -> dict[str, Any]:
        messages = roles.judge_messages(ctx.task, subject, work, spec.principles, spec.identifier)
        entry: dict[str, Any] = {"identifier": spec.identifier, "stage": stage, "step_id": step_id}
        try:
            reply = await _ask(ctx, "judge", spec.adapter, messages, "judge", step_id=step_id)
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


async def _plan(ctx: _Context) -> list[roles.PlannedStep]:
    ctx.reporter.phase("plan")
    playbook = ctx.playbook.get("student")
    reply = await _ask(
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
        reply = await _ask(ctx, "teacher", ctx.parts.teacher, messages, "review")
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


async def _run_step(ctx: _Context, step: roles.PlannedStep) -> None:
    settings, teacher = ctx.settings, ctx.parts.teacher
    prior = {str(d): ctx.outputs[d] for d in step.depends_on if d in ctx.outputs}
    guidance: list[str] = []
    history: list[dict[str, Any]] = []
    started = time.perf_counter()
    output: str | None = None
    validation = roles.Validation(True, f"accepted without step validation ({ctx.mode} mode)")
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
        try:
            output = await asyncio.wait_for(
                _ask(ctx, "student", ctx.parts.student, messages, "execute",
                     step_id=step.id, attempt=attempt),
                timeout=settings.step_timeout_seconds,
            )  # fmt: skip
            error: str | None = None
        except (asyncio.TimeoutError, TimeoutError):
            error = f"timed out after {settings.step_timeout_seconds:g} s"
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
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
        if ctx.mode == "coach" and teacher is not None:
            reply = await _ask(ctx, "teacher", teacher,
                               roles.validation_messages(ctx.task, step, output), "validate",
                               step_id=step.id, attempt=attempt)  # fmt: skip
            try:
                validation = roles.parse_validation(reply)
            except roles.UnreadableReply as exc:
                validation = roles.Validation(True, f"validation unreadable ({exc}); accepted")
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
    reward = await _judge(ctx, f"Result of step {step.id} ({step.description})", output,
                          step_id=step.id)  # fmt: skip
    ctx.reporter.reward(f"step {step.id}", reward["score"] if reward else None)
    trace = "\n".join(f"{m['role'].upper()}: {m['content']}" for m in messages)
    trace += f"\nASSISTANT: {output}"
    await _record_step(ctx, step, output, history, guidance, prior, started, reward, validation,
                       "succeeded" if validation.valid else "unvalidated", trace)  # fmt: skip


async def _record_step(
    ctx: _Context,
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


async def _run_steps(ctx: _Context, plan: Sequence[roles.PlannedStep]) -> None:
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


async def _final_answer(ctx: _Context) -> str:
    ctx.reporter.phase("synthesize")
    messages = roles.synthesis_messages(ctx.task, ctx.outputs, ctx.playbook.get("student"))
    answer = await _ask(ctx, "student", ctx.parts.student, messages, "synthesize")
    if ctx.mode in ("paired", "coach") and ctx.parts.teacher is not None:
        final = roles.PlannedStep(0, "final answer")
        check = roles.validation_messages(ctx.task, final, answer)
        reply = await _ask(ctx, "teacher", ctx.parts.teacher, check, "validate_final")
        try:
            verdict = roles.parse_validation(reply)
        except roles.UnreadableReply:
            verdict = roles.Validation(True, "final validation unreadable; accepted")
        await ctx.recorder.emit("validation", "teacher", "final answer", verdict.to_dict())
        if not verdict.valid:
            note = verdict.guidance or verdict.rationale
            ctx.guidance_given.append(note)
            messages[-1]["content"] += f"\nTeacher guidance: {note}"
            answer = await _ask(ctx, "student", ctx.parts.student, messages, "synthesize")
    return answer


async def _learn(
    ctx: _Context, learning_key: str, score: float | None
) -> tuple[str | None, str | None, dict[str, Any]]:
    """New playbooks for the learning key (and the registry row), and the persona updates."""
    old_student, old_teacher = ctx.playbook.get("student"), ctx.playbook.get("teacher")
    student, teacher = old_student, old_teacher
    if ctx.parts.teacher is not None:
        messages = roles.learning_messages(ctx.task, ctx.playbook, ctx.guidance_given, score)
        reply = await _ask(ctx, "teacher", ctx.parts.teacher, messages, "learn")
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


async def run_session(
    task: str,
    parts: RuntimeParts,
    settings: RuntimeSettings,
    writer: AsyncSessionWriter,
    reporter: Reporter | None = None,
) -> RunResult:
    """Run ``task`` once, persisting everything as it happens; see the module docstring.

    While it runs, the session's heartbeat is recorded every
    ``settings.heartbeat_seconds``. A session ``arc-atlas db recover`` marks
    failed meanwhile stays failed, and so does the result.
    """
    async with Heartbeat(writer, settings.heartbeat_seconds) as heartbeat:
        return await _run_session(task, parts, settings, writer, reporter, heartbeat)


async def _run_session(
    task: str,
    parts: RuntimeParts,
    settings: RuntimeSettings,
    writer: AsyncSessionWriter,
    reporter: Reporter | None,
    heartbeat: Heartbeat,
) -> RunResult:
    reporter = reporter or _Silent()
    learning_key = learning_key_for(task, settings)
    metadata: dict[str, Any] = {
        **settings.extra_metadata,
        "learning_key": learning_key,
        "tags": list(settings.tags),
        "tenant": settings.tenant,
    }
    session_id = await writer.create_session(task, metadata)
    heartbeat.watch(session_id)
    recorder = SessionRecorder(writer, session_id)
    result = RunResult(session_id, "running", task, learning_key=learning_key)
    phase = "triage"
    try:
        reporter.phase("triage")
        dossier = triage(task, metadata)
        await recorder.emit("triage", "runtime", "dossier", dossier)
        history = (
            await load_history(
                writer, learning_key, exclude=session_id, limit=settings.history_limit
            )
            if settings.learning_enabled
            else []
        )
        playbook = (
            await load_playbook(writer, learning_key)
            if settings.learning_enabled
            else {"student": None, "teacher": None}
        )
        phase = "probe"
        scores = [h["reward"] for h in history if h.get("reward") is not None]
        probe = choose_mode(dossier, scores, requested=settings.mode)
        await recorder.emit("probe", "runtime", "capability probe", probe)
        reporter.phase("mode", f"{probe['mode']} (confidence {probe['confidence']})")
        ctx = _Context(task, parts, settings, recorder, reporter, probe["mode"], playbook)
        phase = "plan"
        plan = await _plan(ctx)
        plan_record = {"steps": [s.to_dict() for s in plan], "execution_mode": ctx.mode}
        await recorder.write([writes.record_plan(session_id, plan_record)])
        result.plan = plan_record
        phase = "execute"
        await _run_steps(ctx, plan)
        phase = "synthesize"
        answer = await _final_answer(ctx)
        phase = "reward"
        reporter.phase("reward")
        session_reward = await _judge(ctx, "Final answer", answer)
        score = session_reward["score"] if session_reward else None
        reporter.reward("session", score)
        step_scores = [s["reward"] for s in ctx.step_summaries if s["reward"] is not None]
        reward_stats = aggregate_reward(session_reward["judges"]) if session_reward else None
        if reward_stats is not None and step_scores:
            reward_stats["step_mean"] = round(statistics.fmean(step_scores), 4)
        phase = "drift"
        baseline = await reward_baseline(writer, learning_key, exclude=session_id,
                                         window=settings.drift.window)  # fmt: skip
        drift = detect_drift(score, baseline, z_threshold=settings.drift.z_threshold,
                             min_baseline=settings.drift.min_baseline)  # fmt: skip
        drift_alert = settings.drift.enabled and drift.alert
        phase = "learning"
        student_learning = teacher_learning = None
        persona_updates: dict[str, Any] = {"new_candidates": []}
        if settings.learning_enabled:
            student_learning, teacher_learning, persona_updates = await _learn(
                ctx, learning_key, score
            )
        personas_used = [
            {"persona": persona, "instruction": text[:500], "source": "learning_registry"}
            for persona, text in (("student", playbook.get("student")),
                                  ("teacher", playbook.get("teacher")))
            if text
        ]  # fmt: skip
        completion = [writes.record_reward(
            session_id,
            reward=session_reward,
            reward_stats=reward_stats,
            reward_audit=ctx.audit,
            student_learning=student_learning,
            teacher_learning=teacher_learning,
        ), writes.update_metadata(
            session_id,
            {
                "triage_dossier": dossier,
                "adaptive_summary": {
                    "adaptive_mode": ctx.mode,
                    "confidence": probe["confidence"],
                    "certification_run": False,
                    "probe": probe,
                    "mode_history": [{"mode": ctx.mode, "confidence": probe["confidence"]}],
                },
                "execution_mode": ctx.mode,
                "session_reward": session_reward,
                "reward_summary": {
                    "score": score,
                    "step_mean": (reward_stats or {}).get("step_mean"),
                },
                "teacher_notes": ctx.guidance_given,
                "drift": drift.to_dict(),
                "drift_alert": drift_alert,
                "learning_history": {"count": len(history), "entries": history},
                "personas_used": personas_used,
                "persona_updates": persona_updates,
                "token_usage": ctx.usage,
                "steps_summary": ctx.step_summaries,
            },
        )]  # fmt: skip
        if drift_alert:
            review, notes = "pending", f"drift alert: {drift.reason}; review before training"
        elif not settings.require_approval:
            review, notes = "approved", "approved automatically (approval not required)"
        else:
            review, notes = "pending", None
        await recorder.emit("session_completed", "runtime", "session", {"review_status": review})
        # Rewards, metadata, review status, the last events and the final
        # status: one transaction, one round trip.
        # only_running: no verdict lands on a session `db recover` has failed.
        completion.append(writes.set_review_status(
            [session_id], review, notes=notes, reviewer="atlas-runtime", only_running=True
        ))  # fmt: skip
        completion.append(
            writes.finalize_session(session_id, status="succeeded", final_answer=answer)
        )
        stored = await recorder.write(completion)
        if stored != "succeeded":
            review = "pending"
            result.error = ("interrupted: `arc-atlas db recover` marked the session failed "
                            "before it finished; it stays failed")  # fmt: skip
        reporter.phase("done", f"session {session_id}, reward {score}, review {review}")
        result.status, result.final_answer = str(stored or "failed"), answer
        result.session_reward, result.review_status = session_reward, review
        result.steps = ctx.step_summaries
        result.metadata = {"drift": drift.to_dict(), "drift_alert": drift_alert, "mode": ctx.mode}
        return result
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        reporter.phase("failed", error)
        await recorder.emit("session_failed", "runtime", phase, {"error": error})
        failure = {"error": error, "error_type": type(exc).__name__, "failed_phase": phase}
        await recorder.write(
            [writes.finalize_session(session_id, status="failed", metadata=failure)]
        )
        result.status, result.error = "failed", error
        return result
