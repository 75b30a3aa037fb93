"""The orchestration loop: triage, probe, plan, steps, rewards, drift, learning, answer.

One :func:`run_session` call is one session, persisted as it happens through a
:class:`~atlas.runtime.recorder.SessionRecorder`: the session row at start,
the plan once reviewed, each step with its attempts and guidance when it
completes, events in batches, and rewards, review status and learning at the
end. Any failure ends the session as ``failed`` with the error in its
metadata; what was written before stays.

The phases live beside this module: :mod:`~atlas.runtime.steps` (plan, steps,
final answer), :mod:`~atlas.runtime.judging` (rewards), :mod:`~atlas.runtime.learning`
(learning key, playbooks); the types callers use are in :mod:`~atlas.runtime.run_types`
and re-exported here.
"""

from __future__ import annotations

import logging
import statistics
from typing import Any

from atlas.runtime.judging import judge
from atlas.runtime.learning import learn, learning_key_for
from atlas.runtime.recorder import (
    Heartbeat,
    SessionRecorder,
    load_history,
    load_playbook,
    reward_baseline,
)
from atlas.runtime.run_context import RunContext
from atlas.runtime.run_types import (
    JudgeSpec,
    Reporter,
    RunResult,
    RuntimeParts,
    RuntimeSettings,
    SilentReporter,
)
from atlas.runtime.signals import aggregate_reward, choose_mode, detect_drift, triage
from atlas.runtime.steps import final_answer, make_plan, run_steps
from atlas.storage import writes
from atlas.storage.writer import AsyncSessionWriter

__all__ = ["JudgeSpec", "Reporter", "RunResult", "RuntimeParts", "RuntimeSettings", "run_session"]

_log = logging.getLogger(__name__)


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
    reporter = reporter or SilentReporter()
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
        ctx = RunContext(task, parts, settings, recorder, reporter, probe["mode"], playbook)
        phase = "plan"
        plan = await make_plan(ctx)
        plan_record = {"steps": [s.to_dict() for s in plan], "execution_mode": ctx.mode}
        await recorder.write([writes.record_plan(session_id, plan_record)])
        result.plan = plan_record
        phase = "execute"
        await run_steps(ctx, plan)
        phase = "synthesize"
        answer = await final_answer(ctx)
        phase = "reward"
        reporter.phase("reward")
        session_reward = await judge(ctx, "Final answer", answer)
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
            student_learning, teacher_learning, persona_updates = await learn(
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
        # The failure becomes data (a failed session); the traceback goes to
        # the log, so a bug in the runtime is never silently turned into data.
        _log.exception("session %s failed in phase %s", session_id, phase)
        error = f"{type(exc).__name__}: {exc}"
        reporter.phase("failed", error)
        await recorder.emit("session_failed", "runtime", phase, {"error": error})
        failure = {"error": error, "error_type": type(exc).__name__, "failed_phase": phase}
        await recorder.write(
            [writes.finalize_session(session_id, status="failed", metadata=failure)]
        )
        result.status, result.error = "failed", error
        return result
