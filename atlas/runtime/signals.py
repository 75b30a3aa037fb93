"""The runtime's decisions that need no agent: triage, adaptive mode, rewards, drift.

Pure functions over plain data, tested without a database or an agent.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Drift",
    "aggregate_reward",
    "choose_mode",
    "detect_drift",
    "needs_escalation",
    "triage",
]

_RISKS = (
    ("security", re.compile(r"secur|credential|secret|password|token|vulnerab", re.I), "high"),
    ("data-loss", re.compile(r"delete|drop|truncate|wipe|migrat|rollback", re.I), "high"),
    ("production", re.compile(r"prod|outage|incident|deploy|sev[0-9]", re.I), "moderate"),
    ("quality", re.compile(r"customer|summar|report|release|publish", re.I), "moderate"),
)  # fmt: skip
_SEVERITY = {"low": 0, "moderate": 1, "high": 2}


def triage(task: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The pre-execution dossier: summary, risks, signals and tags (heuristic default)."""
    first = re.split(r"(?<=[.!?])\s", task.strip(), maxsplit=1)[0]
    risks = [
        {"category": name, "description": f"The task mentions {name} concerns.", "severity": sev}
        for name, pattern, sev in _RISKS
        if pattern.search(task)
    ]
    signals = [
        {"name": key, "value": metadata[key]}
        for key in ("tenant", "learning_key", "source")
        if metadata.get(key) is not None
    ]
    tags = [f"{s['name']}:{s['value']}" for s in signals] + [f"risk:{r['category']}" for r in risks]
    tags += [str(tag) for tag in metadata.get("tags") or ()]
    return {
        "task": task,
        "summary": first[:240],
        "risks": risks,
        "signals": signals,
        "tags": list(dict.fromkeys(tags)),
    }


def choose_mode(
    dossier: Mapping[str, Any],
    history_scores: Sequence[float],
    *,
    requested: str = "adaptive",
) -> dict[str, Any]:
    """The capability probe: which mode to run in, how confident, and why.

    ``auto``: the Student alone, the Teacher reviews the plan only.
    ``paired``: the Teacher also validates the final answer.
    ``coach``: the Teacher validates every step, with guidance and retries.
    A mode named in the config is used as is (confidence 1).
    """
    if requested != "adaptive":
        return {"mode": requested, "confidence": 1.0, "evidence": ["configured"]}
    worst = max((_SEVERITY[r["severity"]] for r in dossier.get("risks", ())), default=0)
    evidence = [f"risk_max_severity={['low', 'moderate', 'high'][worst]}"]
    if history_scores:
        mean = statistics.fmean(history_scores)
        evidence.append(f"history_mean_reward={mean:.2f}")
        evidence.append(f"history_sessions={len(history_scores)}")
    else:
        mean = 0.0
        evidence.append("no_history")
    if worst >= 2 or not history_scores:
        mode, confidence = "coach", 0.55 if history_scores else 0.5
    elif mean >= 0.85 and worst == 0 and len(history_scores) >= 3:
        mode, confidence = "auto", min(0.95, mean)
    else:
        mode, confidence = "paired", round(0.5 + mean / 3, 2)
    return {"mode": mode, "confidence": round(confidence, 2), "evidence": evidence}


def needs_escalation(scores: Sequence[float], variance_threshold: float) -> bool:
    """Whether the small judges disagree enough to ask the large ones."""
    return len(scores) > 1 and statistics.pvariance(scores) > variance_threshold


def aggregate_reward(judges: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The reward from the judges that gave a score: mean, uncertainty, statistics.

    ``uncertainty`` is the standard deviation of the scores (0 with one judge).
    Returns None when no judge gave a score.
    """
    scores = [float(j["score"]) for j in judges if isinstance(j.get("score"), (int, float))]
    if not scores:
        return None
    mean = statistics.fmean(scores)
    spread = statistics.pstdev(scores) if len(scores) > 1 else 0.0
    return {
        "score": round(mean, 4),
        "uncertainty": round(spread, 4),
        "judge_count": len(scores),
        "min": min(scores),
        "max": max(scores),
    }


@dataclass(frozen=True)
class Drift:
    """How this session's reward compares with its learning key's recent baseline."""

    z_score: float | None
    baseline_mean: float | None
    baseline_std: float | None
    baseline_count: int
    alert: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """As stored in the session metadata."""
        return {
            "z_score": self.z_score,
            "baseline_mean": self.baseline_mean,
            "baseline_std": self.baseline_std,
            "baseline_count": self.baseline_count,
            "reason": self.reason,
        }


def detect_drift(
    score: float | None,
    baseline: Sequence[float],
    *,
    z_threshold: float,
    min_baseline: int,
) -> Drift:
    """Compare ``score`` with ``baseline`` (recent scores, this session excluded)."""
    if score is None:
        return Drift(None, None, None, len(baseline), False, "no session reward")
    if len(baseline) < min_baseline:
        return Drift(None, None, None, len(baseline), False, "baseline too small")
    mean = statistics.fmean(baseline)
    std = statistics.pstdev(baseline)
    if std < 1e-9:
        z = (
            0.0
            if math.isclose(score, mean, abs_tol=1e-9)
            else math.copysign(math.inf, score - mean)
        )
    else:
        z = (score - mean) / std
    alert = abs(z) > z_threshold
    reason = (
        f"z={z:.2f} against {len(baseline)} recent sessions"
        if math.isfinite(z)
        else ("the baseline never varies and this score differs")
    )
    return Drift(
        round(z, 3) if math.isfinite(z) else None,
        round(mean, 4),
        round(std, 4),
        len(baseline),
        alert,
        reason,
    )
