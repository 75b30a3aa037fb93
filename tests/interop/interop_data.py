"""The sessions the interop tier writes through atlas-sdk: every field, our own values.

Each spec says what ``sdk_driver.py write`` hands to the sdk's ``Database``:
``initial_metadata`` at ``create_session``, ``metadata`` at the end
(``update_session_metadata``, as the orchestrator does), the plan, step
results (``StepResult``: trace, output, evaluation, attempts, metadata),
attempts and guidance per step, ``IntermediateStep`` events, the session
reward with its stats and audit, learning notes, final status and review.
A key left out of a spec is not written (the third session is sparse).
Tasks are unique, so a session can be found by task in any export.
"""

from __future__ import annotations

from typing import Any

# Seed 002's session metadata fields, plus the other keys the sdk runtime writes.
METADATA_KEYS = (
    "session_reward",
    "student_learning",
    "teacher_learning",
    "learning_history",
    "adaptive_summary",
    "learning_key",
    "teacher_notes",
    "reward_summary",
    "drift",
    "drift_alert",
    "triage_dossier",
    "reward_audit",
    "personas_used",
    "persona_updates",
    "execution_mode",
    "executor_system_prompt",
    "ground_truth",
)


def _judge(identifier: str, score: float) -> dict[str, Any]:
    return {
        "identifier": identifier,
        "score": score,
        "rationale": f"{identifier}: cites every source",
        "principles": [{"name": "grounded", "weight": 0.7}, {"name": "concise", "weight": 0.3}],
        "samples": [
            {
                "score": score,
                "rationale": f"{identifier} sample at low temperature",
                "principles": [{"name": "grounded", "weight": 1.0}],
                "uncertainty": 0.04,
                "temperature": 0.2,
            },
            {
                "score": round(score - 0.1, 2),
                "rationale": f"{identifier} sample at high temperature",
                "principles": [],
                "uncertainty": 0.11,
                "temperature": 0.8,
            },
        ],
        "escalated": identifier == "outcome",
        "escalation_reason": "samples disagreed" if identifier == "outcome" else None,
    }


def _reward(score: float, rationale: str) -> dict[str, Any]:
    return {
        "score": score,
        "rationale": rationale,
        "judges": [_judge("process", score), _judge("outcome", round(score - 0.05, 2))],
    }


def _event(kind: str, name: str, actor: str, step_id: int | None, at: float) -> dict[str, Any]:
    """An ``IntermediateStep`` as the sdk's runtime builds it (nested under ``payload``)."""
    return {
        "parent_id": f"{actor}-root",
        "function_ancestry": {
            "function_id": f"{actor}-{step_id}",
            "function_name": actor,
            "parent_id": "session",
            "parent_name": "orchestrator",
        },
        "payload": {
            "event_type": kind,
            "event_timestamp": at,
            "framework": "atlas",
            "name": name,
            "tags": [f"step:{step_id}", actor],
            "metadata": {"actor": actor, "step_id": step_id, "attempt": 1, "channel": "stream"},
            "data": {"input": {"query": f"{name} input"}, "output": f"{name} output"},
            "usage_info": {"prompt_tokens": 120, "completion_tokens": 48, "total_tokens": 168},
            "UUID": f"00000000-0000-4000-8000-{int(at * 1000) % 10**12:012d}",
        },
    }


def _step(
    step_id: int,
    output: str,
    score: float,
    *,
    runtime: Any,
    attempt_history: list[dict[str, Any]],
    extra: dict[str, Any],
) -> dict[str, Any]:
    return {
        "step_id": step_id,
        "trace": f"HUMAN: run step {step_id}\nAGENT: {output}",
        "output": output,
        "evaluation": {
            "validation": {"valid": True, "rationale": f"step {step_id} complete", "cached": False},
            "reward": _reward(score, f"step {step_id} judged"),
        },
        "attempts": len(attempt_history),
        "metadata": {
            "runtime": runtime,
            "artifacts": {"sources": [f"https://example.test/notes/{step_id}"], "rows": step_id},
            "deliverable": {"summary": output, "format": "markdown"},
            "attempt_history": attempt_history,
            "status": "completed",
            "notes": [f"step {step_id} needed {len(attempt_history)} attempt(s)"],
            **extra,
        },
    }


def _session_one() -> dict[str, Any]:
    audit = [
        {"stage": "judge", "judge": "process", "model": "judge-small", "latency_ms": 812},
        {"stage": "arbiter", "judge": "outcome", "model": "judge-large", "escalated": True},
    ]
    reward = _reward(0.88, "release notes summarised with sources")
    metadata = {
        "session_reward": reward,
        "student_learning": "Cite the release date first.",
        "teacher_learning": "Ask for sources before drafting.",
        "learning_history": {
            "entries": [{"reward": 0.71, "note": "missed date"}, {"reward": 0.8}],
            "count": 2,
        },
        "adaptive_summary": {
            "adaptive_mode": "coach",
            "confidence": 0.58,
            "probe": {"mode": "coach", "confidence": 0.55, "evidence": ["risk_high_severity"]},
            "mode_history": [{"mode": "paired", "confidence": 0.71, "certification": True}],
        },
        "learning_key": "interop-release-notes",
        "teacher_notes": ["Cite the release date.", "Keep it under 200 words."],
        "reward_summary": {"score": 0.88, "uncertainty": 0.07},
        "drift": {"z_score": 0.4, "baseline_mean": 0.81, "drift_alert": False},
        "drift_alert": False,
        "triage_dossier": {
            "task": "Summarise the release",
            "summary": "Customer-facing copy",
            "risks": [{"category": "quality", "severity": "moderate"}],
            "signals": [{"name": "tenant", "value": "demo"}],
            "tags": ["tenant:demo"],
        },
        "reward_audit": audit,
        "personas_used": [{"persona": "planner", "instruction": "Be brief", "source": "memory"}],
        "persona_updates": {"new_candidates": [{"persona": "planner", "instruction": "Date"}]},
        "execution_mode": "coach",
        "executor_system_prompt": "You are the interop executor. Quote your sources.",
        "ground_truth": "Atlas 0.1.16 shipped on 22 November.",
        "batch": "interop-1",
    }
    return {
        "task": "Interop: summarise the latest release notes",
        "initial_metadata": {"batch": "interop-1", "learning_key": "interop-release-notes"},
        "metadata": metadata,
        "plan": {
            "steps": [
                {
                    "id": 1,
                    "description": "Collect release notes",
                    "tool": "web_search",
                    "tool_params": {"query": "atlas release notes"},
                    "depends_on": [],
                },
                {
                    "id": 2,
                    "description": "Draft the summary",
                    "tool": None,
                    "tool_params": None,
                    "depends_on": [1],
                },
            ],
            "execution_mode": "stepwise",
        },
        "steps": [
            _step(
                1,
                "Notes: 0.1.16 adds review gating.",
                0.9,
                runtime={"reward_skipped": False, "timings_ms": {"execute": 812.5, "total": 930.0}},
                attempt_history=[
                    {"attempt": 1, "status": "retry", "output": "no sources", "score": 0.4},
                    {"attempt": 2, "status": "ok", "output": "Notes: ...", "score": 0.9},
                ],
                extra={"tool_calls": [{"name": "web_search", "ok": True}]},
            ),
            _step(
                2,
                "Summary: review gating is new.",
                0.86,
                runtime={"reward_skipped": True, "timings_ms": {"execute": 402.25}},
                attempt_history=[{"attempt": 1, "status": "ok", "output": "Summary"}],
                extra={"executor_system_prompt": "Step 2 executor prompt.", "ground_truth": "ok"},
            ),
        ],
        "attempts": {
            "1": [
                {"attempt": 1, "evaluation": {"reward": {"score": 0.4}, "valid": False}},
                {"attempt": 2, "evaluation": {"reward": {"score": 0.9}, "valid": True}},
            ],
            "2": [{"attempt": 1, "evaluation": {"reward": {"score": 0.86}, "valid": True}}],
        },
        "guidance": {"1": ["Cite the release date.", "Name the sources."], "2": ["Be brief."]},
        "events": [
            _event("TASK_START", "session", "orchestrator", None, 1767268800.125),
            _event("TOOL_START", "web_search", "student", 1, 1767268801.5),
            _event("TOOL_END", "web_search", "student", 1, 1767268802.75),
            _event("LLM_END", "validate", "teacher", 2, 1767268803.0),
        ],
        "reward": reward,
        "student_learning": "Cite the release date first.",
        "teacher_learning": "Ask for sources before drafting.",
        "reward_stats": {"score": 0.88, "score_mean": 0.88, "uncertainty_mean": 0.07},
        "reward_audit": audit,
        "final_answer": "Atlas 0.1.16 adds review gating and drift alerts.",
        "status": "succeeded",
        "review_status": "approved",
        "review_notes": "Checked by the interop tier.",
    }


def _session_two() -> dict[str, Any]:
    """A failed run that drifted: quarantined, a numeric step runtime, one step."""
    audit = [{"stage": "judge", "judge": "process", "model": "judge-small"}]
    reward = _reward(0.21, "answer contradicted the sources")
    metadata = {
        "session_reward": reward,
        "student_learning": "Check the units.",
        "teacher_learning": "Stop early when sources disagree.",
        "learning_history": {"entries": [{"reward": 0.79}], "count": 1},
        "adaptive_summary": {"adaptive_mode": "paired", "confidence": 0.4},
        "learning_key": "interop-unit-conversion",
        "teacher_notes": ["Units differ between sources."],
        "reward_summary": {"score": 0.21},
        "drift": {"z_score": -3.6, "baseline_mean": 0.79, "drift_alert": True, "reason": "z"},
        "drift_alert": True,
        "triage_dossier": {"task": "Convert units", "risks": [], "tags": ["domain:math"]},
        "reward_audit": audit,
        "personas_used": [],
        "persona_updates": {},
        "execution_mode": "paired",
        "executor_system_prompt": "You convert units.",
        "ground_truth": {"answer": 3.2808, "unit": "ft"},
    }
    return {
        "task": "Interop: convert one metre to feet",
        "initial_metadata": {"learning_key": "interop-unit-conversion"},
        "metadata": metadata,
        "plan": {
            "steps": [
                {
                    "id": 1,
                    "description": "Convert",
                    "tool": "calculator",
                    "tool_params": {"expr": "1/0.3048"},
                    "depends_on": [],
                }
            ],
            "execution_mode": "single_shot",
        },
        "steps": [
            _step(
                1,
                "1 m = 3.2 ft",
                0.21,
                runtime=1234.5,
                attempt_history=[{"attempt": 1, "status": "failed", "error": "rounding"}],
                extra={"error": "rounding"},
            )
        ],
        "attempts": {"1": [{"attempt": 1, "evaluation": {"reward": {"score": 0.21}}}]},
        "guidance": {"1": ["Keep four decimals."]},
        "events": [
            _event("LLM_START", "convert", "student", 1, 1767272400.0),
            _event("LLM_END", "convert", "student", 1, 1767272401.0),
        ],
        "reward": reward,
        "student_learning": "Check the units.",
        "teacher_learning": "Stop early when sources disagree.",
        "reward_stats": {"score": 0.21, "score_mean": 0.21},
        "reward_audit": audit,
        "final_answer": "3.2 ft",
        "status": "failed",
        "review_status": "quarantined",
        "review_notes": "Drift alert: held back from training.",
    }


def _session_three() -> dict[str, Any]:
    """A run still going: no metadata, reward, learning, events or final answer yet."""
    return {
        "task": "Interop: a run that is still going",
        "plan": {"steps": [{"id": 1, "description": "Start"}]},
        "steps": [
            {
                "step_id": 1,
                "trace": "",
                "output": "",
                "evaluation": {"validation": {}, "reward": {"score": 0.0}},
                "metadata": {},
            }
        ],
    }


def sessions() -> list[dict[str, Any]]:
    """Fresh copies of every session spec the tier writes: two complete runs, one sparse."""
    return [_session_one(), _session_two(), _session_three()]


def complete(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The specs of finished runs, which write every field."""
    return [spec for spec in specs if "metadata" in spec]
