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

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, ClassVar

__all__ = [
    "AtlasJudgeBreakdown",
    "AtlasJudgeSample",
    "AtlasRewardBreakdown",
    "AtlasSessionTrace",
    "AtlasStepTrace",
    "as_score",
    "canonical_reward",
    "is_raw_score",
    "parse_moment",
]


def as_score(value: Any) -> float | None:
    """A finite float, or None ("NaN" and "1e400" are not scores JSON can carry)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _score_fields(data: Mapping[str, Any]) -> tuple[float | None, dict[str, Any]]:
    """A stored score as a float, and ``{"score_raw": value}`` when that changed it.

    A score stored as text (``"0.9"``, ``"high"``) or as a boolean is not a
    number; the float (or None) goes in ``score`` and the value as stored is
    kept beside it, so nothing a judge wrote is lost.
    """
    value = data.get("score")
    score = as_score(value)
    if value is None or (score is not None and _number(value)):
        return score, {}
    return score, {"score_raw": value}


def is_raw_score(value: Any) -> bool:
    """True for a stored score that is present but not a JSON number (kept as ``score_raw``)."""
    return value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)))


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, list) and not value)


def _extra(data: Mapping[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    """Unknown keys, and known ones stored empty (``"rationale": null``, ``"judges": []``).

    A field cannot tell "stored as null" from "not stored"; keeping the stored
    empty value in ``extra`` lets :func:`_compact` write it back as it was.
    """
    return {k: v for k, v in data.items() if k not in known or _empty(v)}


def _compact(known: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Known keys that carry a value, then the extra keys (which never shadow them)."""
    out = {k: v for k, v in known.items() if not _empty(v)}
    out.update((k, v) for k, v in extra.items() if k not in out)
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
        score, raw = _score_fields(data)
        return cls(score, data.get("rationale"), {**raw, **_extra(data, cls._KEYS)})

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
        score, raw = _score_fields(data)
        kept = [s for s in samples if isinstance(s, Mapping)] if isinstance(samples, list) else []
        if samples is not None and (not isinstance(samples, list) or len(kept) != len(samples)):
            raw["samples_raw"] = samples
        if principles is not None and not isinstance(principles, list):
            raw["principles_raw"] = principles
        extra = {
            **raw,
            **_extra(data, (*cls._KEYS, "name") if "identifier" not in data else cls._KEYS),
        }
        if "name" in extra:
            # to_dict writes the null identifier itself whenever "name" is kept.
            extra.pop("identifier", None)
        return cls(
            identifier=data.get("identifier", data.get("name")),
            score=score,
            rationale=data.get("rationale"),
            principles=list(principles) if isinstance(principles, list) else [],
            samples=[AtlasJudgeSample.from_dict(s) for s in kept],
            extra=extra,
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
            return cls(score=as_score(data))
        judges = data.get("judges")
        score, raw = _score_fields(data)
        kept = [j for j in judges if isinstance(j, Mapping)] if isinstance(judges, list) else []
        extra = {**raw, **_extra(data, cls._KEYS)}
        if judges is not None and (not isinstance(judges, list) or len(kept) != len(judges)):
            # A judges value that is not a list of objects is kept as stored.
            extra.setdefault("judges_raw", judges)
        return cls(
            score=score,
            judges=[AtlasJudgeBreakdown.from_dict(j) for j in kept],
            rationale=data.get("rationale"),
            extra=extra,
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
    # As stored: milliseconds, or a dict such as {"reward_skipped": false, "timings_ms": {...}}.
    runtime: Any = None
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
    # Text when the stored timestamp is outside Python's range ("infinity", BC, year 12000).
    created_at: datetime | str | None = None
    completed_at: datetime | str | None = None
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
        """Whether drift required review (``drift_alert``, else ``drift.drift_alert``)."""
        value = self._meta("drift_alert")
        drift = self._meta("drift")
        if value is None and isinstance(drift, Mapping):
            value = drift.get("drift_alert")
        return value

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
        """The adaptive mode the session ran in (``adaptive_summary.adaptive_mode`` if unset)."""
        mode = self._meta("execution_mode")
        if mode is None and isinstance(self.adaptive_summary, Mapping):
            mode = self.adaptive_summary.get("adaptive_mode")
        return mode

    # Metadata fields also written at the top level of a record, as in the
    # published export format (seed 000). They stay in session_metadata too:
    # ATLAS core's trainers read them from there.
    DERIVED: ClassVar[tuple[str, ...]] = (
        "learning_key",
        "teacher_notes",
        "reward_summary",
        "drift",
        "drift_alert",
        "triage_dossier",
        "personas_used",
        "persona_updates",
        "execution_mode",
    )

    def to_dict(self) -> dict[str, Any]:
        """The JSONL record: every field, plus top-level copies of the documented metadata fields.

        ``session_metadata`` is written whole; ``triage_dossier``,
        ``reward_summary``, ``personas_used`` ... are also copied to the top
        of the record (the published export format) when the metadata has them.
        """
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "steps":
                value = [step.to_dict() for step in self.steps]
            elif f.name in _DATETIME_FIELDS and isinstance(value, datetime):
                value = value.isoformat()
            out[f.name] = value
        metadata = self.session_metadata
        for name in self.DERIVED:
            if name in metadata:
                out[name] = metadata[name]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AtlasSessionTrace:
        """Inverse of :meth:`to_dict`; also reads records with metadata fields only at the top.

        A timestamp that is not ISO 8601 text (``"infinity"``) stays text.
        """
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        values["steps"] = [AtlasStepTrace.from_dict(step) for step in data.get("steps") or ()]
        metadata = data.get("session_metadata") or {}
        missing = {n: data[n] for n in cls.DERIVED if n in data and n not in metadata}
        if missing:
            # Earlier arc-atlas exports moved these out of session_metadata.
            values["session_metadata"] = {**metadata, **missing}
        for name in _DATETIME_FIELDS:
            values[name] = parse_moment(values.get(name))
        return cls(**values)


def parse_moment(value: Any) -> Any:
    """ISO 8601 text as a datetime; any other value (``"infinity"``, None) unchanged."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _plain_score(data: Mapping[str, Any]) -> bool:
    """Whether the score comes back unchanged: absent, null or a JSON number."""
    score = data.get("score")
    return score is None or (_number(score) and math.isfinite(score))


def _canonical_list(value: Any, item: Callable[[Any], bool]) -> bool:
    """Absent, null, or a list whose every entry comes back unchanged."""
    return value is None or (isinstance(value, list) and all(map(item, value)))


def _canonical_sample(sample: Any) -> bool:
    return isinstance(sample, dict) and _plain_score(sample)


def _canonical_judge(judge: Any) -> bool:
    if not isinstance(judge, dict):
        return False
    if "identifier" in judge:
        if not isinstance(judge["identifier"], str):
            return False
    elif "name" in judge:
        return False  # the name is read as the identifier
    principles = judge.get("principles")
    return (
        _plain_score(judge)
        and (principles is None or isinstance(principles, list))
        and _canonical_list(judge.get("samples"), _canonical_sample)
    )


def canonical_reward(value: Any) -> dict[str, Any]:
    """``AtlasRewardBreakdown.from_dict(value).to_dict()``, without rebuilding what is canonical.

    Rewards read from the database are nearly always in canonical form
    already; checking that is much cheaper than building the objects, and the
    exporter does it for every step. Anything unusual takes the slow path,
    so the result is always exactly what the dataclasses would produce.
    """
    if (
        isinstance(value, dict)
        and _plain_score(value)
        and _canonical_list(value.get("judges"), _canonical_judge)
    ):
        # Every value comes back as stored (empty ones too, through ``extra``).
        return value
    if not isinstance(value, (Mapping, int, float)) or isinstance(value, bool):
        value = None
    return AtlasRewardBreakdown.from_dict(value).to_dict()
