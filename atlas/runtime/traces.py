"""The trace dataclasses: one session, its steps, and their rewards.

These are the records both read paths produce: ``atlas.training_data``
returns them and the JSONL exporter writes ``to_dict()`` of them, one per
line. ``from_dict(to_dict(trace)) == trace`` for every trace, and
``json.dumps(trace.to_dict())`` always works (timestamps become ISO 8601
text; everything else is already JSON).

Reward breakdowns keep keys they do not model in ``extra``, so a judge's
custom fields survive a round trip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, ClassVar

__all__ = [
    "AtlasJudgeBreakdown",
    "AtlasJudgeSample",
    "AtlasRewardBreakdown",
    "AtlasSessionTrace",
    "AtlasStepTrace",
    "canonical_reward",
]


def _as_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _extra(data: Mapping[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in known}


def _compact(known: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Known keys that carry a value, then the extra keys (which never shadow known ones)."""
    out = {k: v for k, v in known.items() if v is not None and v != []}
    out.update((k, v) for k, v in extra.items() if k not in known)
    return out


@dataclass(frozen=True)
class AtlasJudgeSample:
    """One sample drawn from a judge (a judge may sample several times)."""

    score: float | None = None
    rationale: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    _KEYS: ClassVar[tuple[str, ...]] = ("score", "rationale")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AtlasJudgeSample:
        """Build from a stored sample; unknown keys go to ``extra``."""
        return cls(_as_float(data.get("score")), data.get("rationale"), _extra(data, cls._KEYS))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (keys without a value are left out)."""
        return _compact({"score": self.score, "rationale": self.rationale}, self.extra)


@dataclass(frozen=True)
class AtlasJudgeBreakdown:
    """One judge's verdict: identifier, score, rationale, principles, samples."""

    identifier: str | None = None
    score: float | None = None
    rationale: str | None = None
    principles: list[Any] = field(default_factory=list)
    samples: list[AtlasJudgeSample] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    _KEYS: ClassVar[tuple[str, ...]] = ("identifier", "score", "rationale", "principles", "samples")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AtlasJudgeBreakdown:
        """Build from a stored judge entry; unknown keys go to ``extra``."""
        samples = data.get("samples")
        principles = data.get("principles")
        return cls(
            identifier=data.get("identifier", data.get("name")),
            score=_as_float(data.get("score")),
            rationale=data.get("rationale"),
            principles=list(principles) if isinstance(principles, list) else [],
            samples=[AtlasJudgeSample.from_dict(s) for s in samples or () if isinstance(s, Mapping)]
            if isinstance(samples, list)
            else [],
            extra=_extra(data, (*cls._KEYS, "name") if "identifier" not in data else cls._KEYS),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (keys without a value are left out)."""
        out = _compact(
            {
                "identifier": self.identifier,
                "score": self.score,
                "rationale": self.rationale,
                "principles": self.principles,
                "samples": [s.to_dict() for s in self.samples],
            },
            self.extra,
        )
        if self.identifier is None and "name" in self.extra:
            # Without an explicit null, from_dict would read "name" as the identifier.
            out["identifier"] = None
        return out


@dataclass(frozen=True)
class AtlasRewardBreakdown:
    """A reward: the aggregate score with the judges that produced it."""

    score: float | None = None
    judges: list[AtlasJudgeBreakdown] = field(default_factory=list)
    rationale: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    _KEYS: ClassVar[tuple[str, ...]] = ("score", "judges", "rationale")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | float | int | None) -> AtlasRewardBreakdown:
        """Build from a stored reward (a mapping, or a bare number from very old rows)."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            return cls(score=_as_float(data))
        judges = data.get("judges")
        return cls(
            score=_as_float(data.get("score")),
            judges=[AtlasJudgeBreakdown.from_dict(j) for j in judges if isinstance(j, Mapping)]
            if isinstance(judges, list)
            else [],
            rationale=data.get("rationale"),
            extra=_extra(data, cls._KEYS),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (keys without a value are left out)."""
        return _compact(
            {
                "score": self.score,
                "judges": [j.to_dict() for j in self.judges],
                "rationale": self.rationale,
            },
            self.extra,
        )

    @property
    def samples(self) -> list[AtlasJudgeSample]:
        """Every judge's samples, in judge order."""
        return [s for j in self.judges for s in j.samples]


@dataclass(frozen=True)
class AtlasStepTrace:
    """One step of a session: what was planned, what ran, how it was judged."""

    step_id: int
    description: str | None = None
    trace: str | None = None
    output: str | None = None
    reward: AtlasRewardBreakdown = field(default_factory=AtlasRewardBreakdown)
    tool: str | None = None
    tool_params: dict[str, Any] | None = None
    context: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] | None = None
    attempts: int = 1
    guidance: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Any] | None = None
    deliverable: Any = None
    runtime: float | None = None
    depends_on: list[Any] = field(default_factory=list)
    attempt_history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def prior_results(self) -> dict[str, Any]:
        """Outputs of earlier steps this step could see (``context["prior_results"]``)."""
        value = self.context.get("prior_results")
        return value if isinstance(value, dict) else {}

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: every field, rewards as nested objects."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["reward"] = self.reward.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AtlasStepTrace:
        """Inverse of :meth:`to_dict` (exported JSONL and older shapes are normalised elsewhere)."""
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        values["reward"] = AtlasRewardBreakdown.from_dict(data.get("reward"))
        return cls(**values)


_DATETIME_FIELDS = ("created_at", "completed_at")


@dataclass(frozen=True)
class AtlasSessionTrace:
    """A whole session as training data: task, plan, steps, rewards, events, learning.

    ``session_metadata`` is the session's persisted metadata; the properties
    below (``learning_key``, ``drift_alert``, ...) read the documented fields
    of it. ``trajectory_events`` are flat envelopes in chronological order;
    when a per-session limit cut them, ``trajectory_event_count`` still says
    how many there were and ``trajectory_events_truncated`` is true.
    ``load_warnings`` lists anything that could not be decoded.
    """

    task: str
    final_answer: str | None = None
    plan: dict[str, Any] | None = None
    steps: list[AtlasStepTrace] = field(default_factory=list)
    session_metadata: dict[str, Any] = field(default_factory=dict)
    session_reward: dict[str, Any] | None = None
    trajectory_events: list[dict[str, Any]] = field(default_factory=list)
    student_learning: str | None = None
    teacher_learning: str | None = None
    learning_history: Any = None
    adaptive_summary: dict[str, Any] | None = None
    session_id: int | None = None
    status: str | None = None
    review_status: str | None = None
    review_notes: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None
    reward_stats: dict[str, Any] | None = None
    reward_audit: Any = None
    trajectory_event_count: int = 0
    trajectory_events_truncated: bool = False
    load_warnings: list[str] = field(default_factory=list)

    def _meta(self, key: str) -> Any:
        return self.session_metadata.get(key)

    @property
    def learning_key(self) -> str | None:
        """The key that groups sessions of the same kind of task."""
        value = self._meta("learning_key")
        return value if isinstance(value, str) else None

    @property
    def teacher_notes(self) -> Any:
        """Guidance the Teacher gave during execution."""
        return self._meta("teacher_notes")

    @property
    def reward_summary(self) -> Any:
        """Simplified reward statistics."""
        return self._meta("reward_summary")

    @property
    def drift(self) -> Any:
        """Reward drift against the learning key's recent baseline."""
        return self._meta("drift")

    @property
    def drift_alert(self) -> Any:
        """Whether drift was large enough to require review."""
        return self._meta("drift_alert")

    @property
    def triage_dossier(self) -> Any:
        """The pre-execution risk assessment."""
        return self._meta("triage_dossier")

    @property
    def personas_used(self) -> Any:
        """Personas active during the run."""
        return self._meta("personas_used")

    @property
    def persona_updates(self) -> Any:
        """How persona memory changed during the run."""
        return self._meta("persona_updates")

    @property
    def execution_mode(self) -> Any:
        """The adaptive mode the session ran in."""
        return self._meta("execution_mode")

    DERIVED: ClassVar[tuple[str, ...]] = (
        "learning_key",
        "teacher_notes",
        "reward_summary",
        "drift",
        "drift_alert",
        "triage_dossier",
        "personas_used",
        "persona_updates",
    )

    def to_dict(self) -> dict[str, Any]:
        """The JSONL record: every field, with the documented metadata fields at the top level.

        ``triage_dossier``, ``reward_summary``, ``personas_used`` ... move out of
        ``session_metadata`` to the top of the record (as in the published
        export format), so nothing is written twice; :meth:`from_dict` puts
        them back.
        """
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "steps":
                value = [step.to_dict() for step in self.steps]
            elif f.name in _DATETIME_FIELDS and value is not None:
                value = value.isoformat()
            elif f.name == "session_metadata":
                value = {k: v for k, v in value.items() if k not in self.DERIVED}
            out[f.name] = value
        for name in self.DERIVED:
            if name in self.session_metadata:
                out[name] = self.session_metadata[name]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AtlasSessionTrace:
        """Inverse of :meth:`to_dict`."""
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        values["steps"] = [AtlasStepTrace.from_dict(step) for step in data.get("steps") or ()]
        lifted = {name: data[name] for name in cls.DERIVED if name in data}
        if lifted:
            values["session_metadata"] = {**(data.get("session_metadata") or {}), **lifted}
        for name in _DATETIME_FIELDS:
            if isinstance(values.get(name), str):
                values[name] = datetime.fromisoformat(values[name])
        return cls(**values)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kept(value: Any) -> bool:
    """Whether _compact keeps a known key with this value (it drops None and [])."""
    return value is not None and value != []


def _canonical_sample(sample: Any) -> bool:
    if not isinstance(sample, dict):
        return False
    return _number(sample.get("score", 0.0)) and _kept(sample.get("rationale", ""))


def _canonical_judge(judge: Any) -> bool:
    if not isinstance(judge, dict):
        return False
    if "identifier" in judge:
        if not isinstance(judge["identifier"], str):
            return False
    elif "name" in judge:
        return False
    if not _number(judge.get("score", 0.0)) or not _kept(judge.get("rationale", "")):
        return False
    principles = judge.get("principles", [None])
    if not isinstance(principles, list) or not principles:
        return False
    samples = judge.get("samples", [{}])
    return isinstance(samples, list) and bool(samples) and all(map(_canonical_sample, samples))


def canonical_reward(value: Any) -> dict[str, Any]:
    """``AtlasRewardBreakdown.from_dict(value).to_dict()``, without rebuilding what is canonical.

    Rewards read from the database are nearly always in canonical form
    already; checking that is much cheaper than building the objects, and the
    exporter does it for every step. Anything unusual takes the slow path,
    so the result is always exactly what the dataclasses would produce.
    """
    if isinstance(value, dict) and _number(value.get("score", 0.0)):
        judges = value.get("judges", [{}])
        if (
            _kept(value.get("rationale", ""))
            and isinstance(judges, list)
            and judges
            and ("judges" not in value or all(map(_canonical_judge, judges)))
        ):
            return value
    if not isinstance(value, (Mapping, int, float)) or isinstance(value, bool):
        value = None
    return AtlasRewardBreakdown.from_dict(value).to_dict()
