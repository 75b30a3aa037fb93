"""Synthetic sessions in the exact shape atlas-sdk 0.1.16 writes, for upgrade tests and benchmarks.

A user moving from atlas-sdk brings a database that its ``Database`` class
created and filled. This module reproduces one, so that ``arc-atlas db
upgrade`` and every reader can be measured on it:

* :data:`ATLAS_SDK_SCHEMA` is the DDL atlas-sdk runs on connect (its eight
  tables and five indexes; no migrations table, no triggers).
* :class:`SdkBuilder` makes the rows its orchestrator persists. Trajectory
  events are ``IntermediateStep.model_dump()``: nested, with
  ``function_ancestry`` and the payload (``event_type`` in upper case,
  ``event_timestamp`` as epoch seconds, ``data.input/output/chunk``,
  ``usage_info``, ``UUID``). Session metadata carries the keys its
  ``_persist_results`` merges in (``review``, ``drift``, ``reward_stats``,
  ``reward_audit``, ``session_reward``, ``token_usage`` ...); step metadata
  has ``runtime`` as a dict ``{"reward_skipped", "timings_ms"}``.
* Failed sessions have events and metadata but no plan, steps or reward;
  running ones have only their session row, as atlas-sdk leaves them.

Sizes follow the same specification as the own-layout generator (2–8 steps,
1–6 KB traces, 20–80 events of 0.2–0.8 KB).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from statistics import fmean, pstdev
from typing import Any

import psycopg

from atlas.storage.jsonenc import dumps
from atlas.storage.synthetic import LEARNING_KEYS, SessionRows, _Builder, _Text

__all__ = ["ATLAS_SDK_SCHEMA", "SdkBuilder", "create_atlas_sdk_schema"]

ATLAS_SDK_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id SERIAL PRIMARY KEY, task TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'running',
    metadata JSONB, final_answer TEXT, reward JSONB, reward_stats JSONB, reward_audit JSONB,
    student_learning TEXT, teacher_learning TEXT,
    review_status TEXT NOT NULL DEFAULT 'pending', review_notes TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), completed_at TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS sessions_learning_key_idx ON sessions ((metadata ->> 'learning_key'));
CREATE INDEX IF NOT EXISTS sessions_reward_score_idx
    ON sessions (((reward_stats ->> 'score')::float)) WHERE reward_stats IS NOT NULL;
CREATE INDEX IF NOT EXISTS sessions_created_at_idx ON sessions (created_at DESC);
CREATE INDEX IF NOT EXISTS sessions_metadata_gin_idx ON sessions USING gin (metadata);
CREATE TABLE IF NOT EXISTS plans (
    session_id INTEGER PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
    plan JSONB NOT NULL
);
CREATE TABLE IF NOT EXISTS step_results (
    session_id INTEGER REFERENCES sessions(id) ON DELETE CASCADE, step_id INTEGER NOT NULL,
    trace TEXT, output TEXT, evaluation JSONB, attempts INTEGER, metadata JSONB,
    PRIMARY KEY (session_id, step_id)
);
CREATE TABLE IF NOT EXISTS step_attempts (
    session_id INTEGER REFERENCES sessions(id) ON DELETE CASCADE, step_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL, evaluation JSONB, PRIMARY KEY (session_id, step_id, attempt)
);
CREATE TABLE IF NOT EXISTS guidance_notes (
    session_id INTEGER REFERENCES sessions(id) ON DELETE CASCADE, step_id INTEGER NOT NULL,
    sequence INTEGER NOT NULL, note TEXT NOT NULL, PRIMARY KEY (session_id, step_id, sequence)
);
CREATE TABLE IF NOT EXISTS trajectory_events (
    id SERIAL PRIMARY KEY, session_id INTEGER REFERENCES sessions(id) ON DELETE CASCADE,
    event JSONB NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE TABLE IF NOT EXISTS discovery_runs (
    id SERIAL PRIMARY KEY, project_root TEXT NOT NULL, task TEXT,
    source TEXT NOT NULL DEFAULT 'discovery', payload JSONB NOT NULL, metadata JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE TABLE IF NOT EXISTS learning_registry (
    learning_key TEXT PRIMARY KEY, student_learning TEXT, teacher_learning TEXT,
    metadata JSONB, updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
"""
"""The tables and indexes atlas-sdk 0.1.16 creates when its ``Database`` connects."""

# (event type, invoking function) pairs as atlas-sdk's orchestrator and
# adapters emit them; START/END come in pairs around each unit of work.
_SDK_EVENTS = (
    ("TASK_START", "orchestrator"),
    ("TASK_END", "orchestrator"),
    ("LLM_START", "student"),
    ("LLM_END", "student"),
    ("TOOL_START", "student"),
    ("TOOL_END", "student"),
    ("LLM_START", "teacher"),
    ("LLM_END", "teacher"),
    ("WORKFLOW_START", "orchestrator"),
    ("CUSTOM_END", "reward"),
)
_MODELS = ("gemini/gemini-2.5-flash", "openai/gpt-4.1-mini", "anthropic/claude-haiku-4-5")


def create_atlas_sdk_schema(conn: psycopg.Connection[Any]) -> None:
    """Create atlas-sdk 0.1.16's tables in the connected database (no-op where they exist)."""
    conn.execute(ATLAS_SDK_SCHEMA)


def _samples(rng: Any, text: _Text, score: float, n: int) -> list[dict[str, Any]]:
    return [
        {
            "score": min(1.0, max(0.0, round(score + rng.uniform(-0.05, 0.05), 4))),
            "rationale": text.take(30, 90),
            "principles": [{"name": "accuracy", "weight": 0.6}],
            "uncertainty": round(rng.uniform(0.02, 0.3), 4),
            "temperature": None,
        }
        for _ in range(n)
    ]


def _reward(rng: Any, text: _Text, score: float, identifier: str) -> dict[str, Any]:
    """An ``AtlasRewardBreakdown.to_dict()``: score, rationale, judges with samples, raw."""
    samples = _samples(rng, text, score, rng.randint(1, 3))
    return {
        "score": score,
        "rationale": None,
        "judges": [
            {
                "identifier": identifier,
                "score": score,
                "rationale": text.take(60, 180),
                "principles": samples[0]["principles"],
                "samples": samples,
                "escalated": False,
                "escalation_reason": None,
            }
        ],
        "raw": {"score": score, "samples": [{"score": s["score"],
                                             "uncertainty": s["uncertainty"]} for s in samples]},
    }  # fmt: skip


class SdkBuilder(_Builder):
    """Rows of one batch of sessions as atlas-sdk 0.1.16 persists them (see the module doc)."""

    def session(self, rows: SessionRows, session_id: int, index: int) -> tuple[int, int, bool]:
        """Append one session's rows; returns (steps, events, legacy) like the base builder."""
        rng, text = self.rng, self.text
        created = self.start + self.spacing * index + timedelta(seconds=rng.uniform(0, 1))
        status = rng.choices(("succeeded", "failed", "running"), weights=(80, 14, 6))[0]
        review = rng.choices(("approved", "pending", "quarantined"), weights=(60, 30, 10))[0]
        key = rng.choice(LEARNING_KEYS)
        mode = rng.choice(("auto", "paired", "coach"))
        n_steps = rng.randint(2, 8)
        task = f"{key.replace('-', ' ').title()}: " + text.take(40, 160)
        # What the caller passed to create_session; atlas-sdk merges the rest in at the end.
        metadata: dict[str, Any] = {
            "synthetic": True,
            "batch": f"synthetic-sdk-{self.seed}",
            "learning_key_override": key,
            "tags": ["tenant:demo", f"domain:{key}"],
        }
        if status == "running":
            rows.sessions.append(
                (session_id, task, status, dumps(metadata), None, None, None, None, None, None,
                 review, None, created, None)
            )  # fmt: skip
            return 0, 0, False
        completed = created + timedelta(seconds=rng.uniform(5, 600))
        metadata |= self._insights(task, key, mode)
        n_events = self._sdk_events(rows, session_id, n_steps, created, completed)
        if status == "failed":
            rows.sessions.append(
                (session_id, task, status, dumps(metadata), "", None, None, None, None, None,
                 review, None, created, completed)
            )  # fmt: skip
            return 0, n_events, False
        score = round(rng.betavariate(5, 2), 4)
        reward = _reward(rng, text, score, "session_reward")
        reward["raw"] |= {"execution_mode": mode, "teacher_intervened": mode != "auto"}
        uncertainties = [s["uncertainty"] for s in reward["judges"][0]["samples"]]
        stats = {
            "score": score,
            "score_mean": score,
            "score_stddev": 0.0,
            "sample_count": len(uncertainties),
            "uncertainty_mean": fmean(uncertainties),
            "uncertainty_stddev": pstdev(uncertainties),
            "best_uncertainty": min(uncertainties),
            "timestamp": completed.isoformat(),
        }
        audit = [self._audit_entry(task) for _ in range(len(uncertainties))]
        drift = self._drift(key, score)
        student, teacher = text.take(100, 400), text.take(100, 400)
        metadata |= {
            "review": {"require_approval": True, "default_export_statuses": ["approved"],
                       "include_all_statuses": False},
            "drift": drift,
            "drift_alert": drift["alert"],
            "reward_audit": audit,
            "session_reward": reward,
            "reward_stats": stats,
            "reward_summary": {"score": score, "score_stddev": 0.0,
                               "uncertainty_mean": stats["uncertainty_mean"],
                               "uncertainty_stddev": stats["uncertainty_stddev"]},
            "student_learning": student,
            "teacher_learning": teacher,
        }  # fmt: skip
        rows.sessions.append(
            (session_id, task, status, dumps(metadata), text.take(200, 1500), dumps(reward),
             dumps(stats), dumps(audit), student, teacher, review,
             text.take(20, 80) if review != "pending" else None, created, completed)
        )  # fmt: skip
        plan: list[dict[str, Any]] = [
            {
                "id": step,
                "description": text.take(30, 90),
                "tool": rng.choice(("web_search", "sql_query", "code_exec", None)),
                "tool_params": {"query": text.take(10, 40)} if rng.random() < 0.7 else None,
                "depends_on": [step - 1] if step > 1 else [],
            }
            for step in range(1, n_steps + 1)
        ]
        execution = "single_shot" if mode == "auto" and n_steps == 2 else "stepwise"
        rows.plans.append((session_id, dumps({"steps": plan, "execution_mode": execution})))
        for spec in plan:
            self._step(rows, session_id, int(spec["id"]))
        return n_steps, n_events, False

    def _insights(self, task: str, key: str, mode: str) -> dict[str, Any]:
        """The keys atlas-sdk's ``_collect_session_insights`` adds to every finished session."""
        rng, text = self.rng, self.text
        confidence = round(rng.uniform(0.3, 0.95), 2)
        calls = rng.randint(4, 30)
        prompt = rng.randint(2_000, 40_000)
        completion = rng.randint(500, 8_000)
        return {
            "triage_dossier": {
                "task": task[:120],
                "summary": text.take(40, 120),
                "risks": [{"category": "quality", "description": text.take(20, 60),
                           "severity": "moderate"}],
                "signals": [{"name": "tenant", "value": "demo", "annotation": None}],
                "persona_references": [],
                "embeddings": {},
                "tags": ["tenant:demo", f"domain:{key}"],
                "metadata": {},
                "fingerprint_hint": None,
            },
            "adaptive_summary": {
                "adaptive_mode": mode,
                "mode_history": [{"mode": mode, "confidence": confidence, "source": "probe"}],
                "confidence": confidence,
                "probe": {"mode": mode, "confidence": confidence,
                          "evidence": ["persona_helpful_ratio=0.62"]},
            },
            "execution_mode": mode,
            "token_usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                            "total_tokens": prompt + completion, "calls": calls},
            "learning_history": {
                "entries": [{"reward": {"score": round(rng.random(), 3)},
                             "student_learning": text.take(40, 120)} for _ in range(2)],
                "count": 2,
                "total_count": rng.randint(2, 40),
            },
            "learning_key": key,
            "teacher_notes": [text.take(30, 100) for _ in range(rng.randint(0, 3))],
        }  # fmt: skip

    def _audit_entry(self, task: str) -> dict[str, Any]:
        text = self.text
        return {
            "stage": "tier1",
            "model": self.rng.choice(_MODELS),
            "temperature": 0.2,
            "messages": [
                {"role": "system", "content": text.take(150, 400)},
                {"role": "user", "content": task[:200]},
            ],
            "response": '{"score": 0.8, "rationale": "' + text.take(40, 120) + '"}',
            "reasoning": {},
        }

    def _drift(self, key: str, score: float) -> dict[str, Any]:
        rng = self.rng
        z = round(rng.gauss(0, 1.2), 3)
        alert = abs(z) > 3.0
        return {
            "alert": alert,
            "drift_alert": alert,
            "reason": "score_z" if alert else None,
            "score_delta": round(score - 0.7, 4),
            "score_z": z,
            "score_mad_z": round(z * 0.9, 3),
            "uncertainty_delta": round(rng.uniform(-0.05, 0.05), 4),
            "uncertainty_z": round(rng.gauss(0, 1), 3),
            "uncertainty_mad_z": None,
            "threshold": 3.0,
            "window": 50,
            "learning_key": key,
            "baseline": {"sample_count": 50, "score_mean": 0.7, "score_stddev": 0.1},
        }

    def _step(self, rows: SessionRows, session_id: int, step: int) -> None:
        rng, text = self.rng, self.text
        attempts = rng.choices((1, 2, 3), weights=(75, 20, 5))[0]
        score = round(rng.betavariate(5, 2), 4)
        history = []
        for attempt in range(1, attempts + 1):
            valid = attempt == attempts
            evaluation = {
                "validation": {"valid": valid, "guidance": None if valid else text.take(30, 90),
                               "cached": False, "rationale": text.take(30, 120)},
                "reward": _reward(rng, text, score if valid else round(score * 0.6, 4), "process"),
            }  # fmt: skip
            timings = {"execution_ms": round(rng.uniform(200, 60_000), 3),
                       "validation_ms": round(rng.uniform(50, 5_000), 3)}  # fmt: skip
            timings["total_ms"] = round(sum(timings.values()), 3)
            history.append({"attempt": attempt, "evaluation": evaluation, "timings_ms": timings,
                            "reward_skipped": False,
                            "status": "passed" if valid else "failed"})  # fmt: skip
            rows.step_attempts.append((session_id, step, attempt, dumps(evaluation)))
        for sequence in range(1, attempts):
            rows.guidance_notes.append((session_id, step, sequence, text.take(40, 200)))
        deliverable = text.take(100, 600)
        artifacts = {"sources": [f"https://example.org/{rng.randrange(10**6)}"]}
        structured = {
            "status": "ok",
            "result": {"deliverable": deliverable, "artifacts": artifacts},
        }
        metadata = {
            "usage": {"prompt_tokens": rng.randint(300, 6_000),
                      "completion_tokens": rng.randint(50, 1_500)},
            "artifacts": artifacts,
            "deliverable": deliverable,
            "result": structured["result"],
            "structured_output": structured,
            "status": "ok",
            "runtime": {"reward_skipped": False, "timings_ms": history[-1]["timings_ms"]},
            "attempt_history": history[:-1],
        }  # fmt: skip
        trace = "HUMAN: " + text.take(500, 2500) + "\nAI: " + text.take(500, 3500)
        rows.step_results.append(
            (session_id, step, trace, dumps(structured), dumps(history[-1]["evaluation"]),
             attempts, dumps(metadata))
        )  # fmt: skip

    def _sdk_events(
        self,
        rows: SessionRows,
        session_id: int,
        n_steps: int,
        created: datetime,
        completed: datetime,
    ) -> int:
        """``IntermediateStep.model_dump()`` rows, inserted as the run ends (as atlas-sdk does)."""
        rng, text = self.rng, self.text
        count = rng.randint(20, 80)
        moment = created
        inserted = completed
        for _ in range(count):
            moment += timedelta(milliseconds=rng.randint(5, 4000))
            inserted += timedelta(microseconds=rng.randint(200, 2000))
            event_type, function = rng.choice(_SDK_EVENTS)
            step_id = rng.randint(1, n_steps)
            ending = event_type.endswith("_END")
            llm = event_type.startswith("LLM")
            body: Any = text.take(5, 220)
            if event_type == "TASK_END":
                # The orchestrator's step-end event carries the outcome and its timings.
                body = {
                    "output": text.take(5, 150),
                    "status": "passed",
                    "runtime": {
                        "reward_skipped": False,
                        "timings_ms": {"student_ms": rng.randint(200, 9000)},
                    },
                }
            name = {
                "TASK": f"step_{step_id}",
                "WORKFLOW": "orchestration",
                "CUSTOM": "reward",
                "LLM": rng.choice(_MODELS),
                "TOOL": "web_search",
            }[event_type.split("_")[0]]
            event = {
                "parent_id": "root",
                "function_ancestry": {
                    "function_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "function_name": function,
                    "parent_id": "root",
                    "parent_name": "orchestrator",
                },
                "payload": {
                    "event_type": event_type,
                    "event_timestamp": moment.timestamp(),
                    "span_event_timestamp": moment.timestamp() - 0.5 if ending else None,
                    "framework": "langchain" if llm else None,
                    "name": name,
                    "tags": None,
                    # The orchestrator passes no metadata; adapter events carry LangGraph's.
                    "metadata": (
                        {"langgraph": {"langgraph_node": function, "langgraph_step": step_id},
                         "tags": [f"seq:step:{step_id}"]}
                        if function in ("student", "teacher") else None
                    ),
                    "data": {"input": None if ending else body,
                             "output": body if ending else None, "chunk": None},
                    "usage_info": (
                        {"prompt_tokens": rng.randint(50, 4000),
                         "completion_tokens": rng.randint(10, 900), "total_tokens": None,
                         "num_llm_calls": 1, "seconds_between_calls": 0.0}
                        if llm and ending else None
                    ),
                    "UUID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                },
            }  # fmt: skip
            rows.trajectory_events.append((session_id, dumps(event), inserted))
        return count
