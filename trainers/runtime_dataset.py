"""Feed arc-atlas traces to trainers: load JSONL exports, convert to RL and SFT records.

Both paths give the same dataclasses: ``load_runtime_traces("traces.jsonl")``
and ``atlas.training_data.get_training_sessions(...)`` return
:class:`~atlas.runtime.AtlasSessionTrace`, and every function here accepts
either (or any iterable of them, a generator included)::

    from trainers.runtime_dataset import load_runtime_traces, sessions_to_rl_records

    sessions = load_runtime_traces("traces/my-session.jsonl")
    records = sessions_to_rl_records(sessions)

Files may be plain JSONL or compressed (``.gz``, ``.xz``, ``.zst``), read and
decompressed as a stream. Records written by older Atlas exporters are
accepted too (see :mod:`trainers._coerce`).
"""

from __future__ import annotations

import gzip
import json
import lzma
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from atlas.errors import TraceFileError
from atlas.runtime.traces import AtlasSessionTrace, AtlasStepTrace
from atlas.training_data.output import open_decompressed
from trainers._coerce import coerce_session

__all__ = [
    "LoadReport",
    "TraceFileError",
    "build_executor_prompt",
    "flatten_traces_for_training",
    "iter_flat_records",
    "iter_reward_scores",
    "iter_rl_records",
    "iter_runtime_traces",
    "load_runtime_traces",
    "sessions_to_rl_records",
]

OnError = Literal["raise", "skip"]

DEFAULT_SYSTEM_PROMPT = (
    "You are the Student executor of an Atlas session. Carry out the step below "
    "exactly, using the tool it names when there is one, and return the step's result."
)


@dataclass
class LoadReport:
    """What :func:`iter_runtime_traces` read: pass one in to have it filled."""

    lines: int = 0
    sessions: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


def _open(path: Path) -> IO[bytes]:
    try:
        return open_decompressed(path)
    except FileNotFoundError:
        raise TraceFileError(f"Trace file {path} does not exist.") from None


def iter_runtime_traces(
    path: str | os.PathLike[str],
    *,
    on_error: OnError = "raise",
    report: LoadReport | None = None,
) -> Iterator[AtlasSessionTrace]:
    """Yield one :class:`AtlasSessionTrace` per line, reading the file as a stream.

    Memory stays constant whatever the file size. A line that is not a JSON
    object raises :class:`TraceFileError` naming the file and line number, or
    with ``on_error="skip"`` is skipped and counted in ``report``.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError("on_error must be 'raise' or 'skip'")
    file = Path(path)
    tally = report if report is not None else LoadReport()
    with _open(file) as stream:
        for number, line in enumerate(stream, start=1):
            tally.lines += 1
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
                if not isinstance(record, dict):
                    raise TypeError(f"a JSON {type(record).__name__}, not an object")
                trace = coerce_session(record)
            except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError) as exc:
                message = f"{file}:{number}: not a session record ({exc})"
                if on_error == "raise":
                    raise TraceFileError(
                        message + "; fix the line or load with on_error='skip'."
                    ) from None
                tally.skipped += 1
                tally.errors.append(message)
                continue
            except (EOFError, lzma.LZMAError, gzip.BadGzipFile, OSError) as exc:
                raise TraceFileError(f"{file}: cannot be read ({exc}).") from None
            tally.sessions += 1
            yield trace


def load_runtime_traces(
    path: str | os.PathLike[str],
    *,
    on_error: OnError = "raise",
    report: LoadReport | None = None,
) -> list[AtlasSessionTrace]:
    """Load a JSONL trace file (plain or ``.gz``/``.xz``/``.zst``) into a list of traces."""
    return list(iter_runtime_traces(path, on_error=on_error, report=report))


def _block(value: Any) -> str:
    return json.dumps(value if value is not None else {}, ensure_ascii=False, indent=2)


def build_executor_prompt(step: AtlasStepTrace, session: AtlasSessionTrace) -> str:
    """The text the Student executor saw for ``step``: task, step, tool, context, guidance.

    The system prompt comes from the step's or the session's metadata
    (``executor_system_prompt``) when the runtime recorded one.
    """
    system = (
        step.metadata.get("executor_system_prompt")
        or session.session_metadata.get("executor_system_prompt")
        or DEFAULT_SYSTEM_PROMPT
    )
    lines = [
        f"Task: {session.task}",
        f"Step {step.step_id}: {step.description or ''}".rstrip(),
        f"Tool: {step.tool or 'none'}",
        f"Tool parameters: {json.dumps(step.tool_params or {}, ensure_ascii=False)}",
        f"Context from earlier steps: {_block(step.context)}",
        f"Teacher guidance so far: {_block(step.guidance or [])}",
        f"Last validation: {_block(step.validation)}",
    ]
    return f"{system}\n\n" + "\n".join(lines)


def _ground_truth(step: AtlasStepTrace, session: AtlasSessionTrace) -> Any:
    for source in (step.metadata, session.session_metadata):
        if source.get("ground_truth") is not None:
            return source["ground_truth"]
    return None


def _score(reward: Any) -> float | None:
    if isinstance(reward, dict):
        score = reward.get("score")
        if isinstance(score, (int, float)) and not isinstance(score, bool):
            return float(score)
    return None


def iter_rl_records(sessions: Iterable[AtlasSessionTrace]) -> Iterator[dict[str, Any]]:
    """One RL record per step, lazily (see :func:`sessions_to_rl_records`)."""
    for session in sessions:
        for step in session.steps:
            record: dict[str, Any] = {
                "prompt": build_executor_prompt(step, session),
                "session_id": session.session_id,
                "task": session.task,
                "plan": session.plan,
                "step_id": step.step_id,
                "step_description": step.description,
                "step_output": step.output,
                "step_trace": step.trace,
                "tool": step.tool,
                "tool_params": step.tool_params,
                "step_context": step.context,
                "guidance_history": step.guidance,
                "validation": step.validation,
                "attempts": step.attempts,
                "attempt_history": step.attempt_history,
                "reward_score": step.reward.score,
                "reward_breakdown": step.reward.to_dict(),
                "session_reward": session.session_reward,
                "session_reward_score": _score(session.session_reward),
                "learning_key": session.learning_key,
                "student_learning": session.student_learning,
                "teacher_learning": session.teacher_learning,
                "learning_history": session.learning_history,
                "adaptive_summary": session.adaptive_summary,
                "trajectory_events": session.trajectory_events,
                "session_metadata": session.session_metadata,
                "runtime": step.runtime,
                "artifacts": step.artifacts,
                "deliverable": step.deliverable,
                "depends_on": step.depends_on,
                "review_status": session.review_status,
                "status": session.status,
            }
            truth = _ground_truth(step, session)
            if truth is not None:
                record["ground_truth"] = truth
            yield record


def sessions_to_rl_records(sessions: Iterable[AtlasSessionTrace]) -> list[dict[str, Any]]:
    """Convert sessions to RL-ready records, one per step.

    Each record has the executor ``prompt``, the step's output and trace, its
    reward (``reward_score``, ``reward_breakdown``) and the session's
    (``session_reward``, ``session_reward_score``), the guidance and
    validation history, attempts, the session's learning data and trajectory
    events, runtime and artifacts, and ``ground_truth`` where the step or
    session carries one. ``sessions`` may come from the database or a file.
    """
    return list(iter_rl_records(sessions))


def iter_flat_records(sessions: Iterable[AtlasSessionTrace]) -> Iterator[dict[str, Any]]:
    """One flat SFT-style record per step, lazily (see :func:`flatten_traces_for_training`)."""
    for session in sessions:
        for step in session.steps:
            yield {
                "session_id": session.session_id,
                "task": session.task,
                "final_answer": session.final_answer,
                "plan": session.plan,
                "step_id": step.step_id,
                "step_description": step.description,
                "step_trace": step.trace,
                "step_output": step.output,
                "attempts": step.attempts,
                "guidance_history": step.guidance,
                "step_context": step.context,
                "validation": step.validation,
                "tool": step.tool,
                "tool_params": step.tool_params,
                "reward_score": step.reward.score,
                "reward_breakdown": step.reward.to_dict(),
                "session_metadata": session.session_metadata,
                "step_metadata": step.metadata,
            }


def flatten_traces_for_training(sessions: Iterable[AtlasSessionTrace]) -> list[dict[str, Any]]:
    """Flatten sessions into one plain record per step (task, step, output, reward ...)."""
    return list(iter_flat_records(sessions))


def iter_reward_scores(sessions: Iterable[AtlasSessionTrace]) -> Iterator[float | None]:
    """Every step's reward score, in order (None where a step was not scored)."""
    for session in sessions:
        for step in session.steps:
            yield step.reward.score
