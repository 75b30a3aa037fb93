"""Runtime records: the trace dataclasses every read path returns."""

from atlas.runtime.traces import (
    AtlasJudgeBreakdown,
    AtlasJudgeSample,
    AtlasRewardBreakdown,
    AtlasSessionTrace,
    AtlasStepTrace,
)

__all__ = [
    "AtlasJudgeBreakdown",
    "AtlasJudgeSample",
    "AtlasRewardBreakdown",
    "AtlasSessionTrace",
    "AtlasStepTrace",
]
