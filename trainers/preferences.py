"""GRPO groups and DPO preference pairs: sessions compared by their session reward.

Both take any iterable of :class:`~atlas.runtime.AtlasSessionTrace` (from
``get_training_sessions``, ``paginate_sessions_sync``, ``iter_runtime_traces``
...) and compare sessions that share a key: the same ``task`` text
(``by="task"``, the default) or the same ``learning_key``. A session takes
part when it has a session reward score (``session_reward["score"]``), a
non-empty ``final_answer`` and the key; the prompt is its task and the
completion its final answer. A session id seen twice counts once.

Memory: a group is complete only when every input session has been read, so
both functions read the whole input before yielding anything. They keep one
small summary per session (session id, task, final answer, reward), never
the traces themselves: steps and trajectory events are dropped as soon as
each trace has been summarised, so the input may be a lazy stream of
any length whose answers fit in memory.

Output order is deterministic whatever the input order: groups by key,
members by session id, pairs by chosen rank then rejected rank (largest
margin first).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

from atlas.runtime.traces import AtlasSessionTrace

__all__ = [
    "GroupBy",
    "GroupMember",
    "GrpoGroup",
    "PreferencePair",
    "iter_grpo_groups",
    "iter_grpo_records",
    "iter_grpo_rows",
    "iter_preference_pairs",
    "iter_preference_records",
]

GroupBy = Literal["task", "learning_key"]

DEFAULT_EPSILON = 1e-4


@dataclass(frozen=True)
class GroupMember:
    """One session in a GRPO group, with its group-relative advantage."""

    session_id: int | None
    prompt: str
    completion: str
    reward: float
    advantage: float


@dataclass(frozen=True)
class GrpoGroup:
    """Sessions sharing a key, with the group's reward mean and (population) standard deviation.

    ``advantage = (reward - reward_mean) / (reward_std + eps)`` for each member,
    so the advantages of a group sum to zero (up to rounding).
    """

    key: str
    by: str
    members: tuple[GroupMember, ...]
    reward_mean: float
    reward_std: float

    def to_record(self) -> dict[str, Any]:
        """The JSONL record of ``--format grpo``: one line per group, members nested."""
        return {
            "key": self.key,
            "by": self.by,
            "size": len(self.members),
            "reward_mean": self.reward_mean,
            "reward_std": self.reward_std,
            "members": [asdict(member) for member in self.members],
        }


@dataclass(frozen=True)
class PreferencePair:
    """A DPO pair: two answers under one key, the higher-reward one chosen.

    ``prompt`` is the chosen session's task; ``rejected_prompt`` the rejected
    one's (the same text when grouping by task).
    """

    key: str
    by: str
    prompt: str
    chosen: str
    rejected: str
    chosen_reward: float
    rejected_reward: float
    margin: float
    chosen_session_id: int | None
    rejected_session_id: int | None
    rejected_prompt: str

    def to_record(self) -> dict[str, Any]:
        """The JSONL record of ``--format dpo`` (``prompt``/``chosen``/``rejected`` first)."""
        return asdict(self)


@dataclass(frozen=True)
class _Summary:
    session_id: int | None
    prompt: str
    completion: str
    reward: float
    order: int  # position in the input: the tie-break for sessions without an id

    def sort_key(self) -> tuple[bool, int, int]:
        return (self.session_id is None, self.session_id or 0, self.order)


def _reward(session: AtlasSessionTrace) -> float | None:
    reward = session.session_reward
    score = reward.get("score") if isinstance(reward, dict) else None
    if isinstance(score, (int, float)) and not isinstance(score, bool) and math.isfinite(score):
        return float(score)
    return None


def _check_by(by: str) -> str:
    if by not in ("task", "learning_key"):
        raise ValueError(f"by must be 'task' or 'learning_key', not {by!r}.")
    return by


def _collect(sessions: Iterable[AtlasSessionTrace], by: str) -> list[tuple[str, list[_Summary]]]:
    """Summaries of the usable sessions, grouped by key, groups sorted by key."""
    _check_by(by)
    groups: dict[str, list[_Summary]] = {}
    seen: set[int] = set()
    for order, session in enumerate(sessions):
        reward = _reward(session)
        answer = session.final_answer
        key = session.task if by == "task" else session.learning_key
        if reward is None or not isinstance(answer, str) or not answer or not key:
            continue
        if session.session_id is not None:
            if session.session_id in seen:
                continue
            seen.add(session.session_id)
        summary = _Summary(session.session_id, session.task, answer, reward, order)
        groups.setdefault(key, []).append(summary)
    return sorted(groups.items())


def iter_grpo_groups(
    sessions: Iterable[AtlasSessionTrace],
    *,
    by: GroupBy = "task",
    min_group_size: int = 2,
    eps: float = DEFAULT_EPSILON,
) -> Iterator[GrpoGroup]:
    """Groups of sessions sharing a task (or learning key), with group-relative advantages.

    Groups with fewer than ``min_group_size`` members are dropped. Each
    member's advantage is ``(reward - mean) / (std + eps)`` with the group's
    mean and population standard deviation. Reads the whole input first
    (see the module docstring for what stays in memory).
    """
    if isinstance(min_group_size, bool) or not isinstance(min_group_size, int):
        raise ValueError(f"min_group_size must be a whole number, not {min_group_size!r}.")
    if min_group_size < 1:
        raise ValueError(f"min_group_size must be at least 1, not {min_group_size}.")
    for key, summaries in _collect(sessions, by):
        if len(summaries) < min_group_size:
            continue
        rewards = [s.reward for s in summaries]
        mean = math.fsum(rewards) / len(rewards)
        std = math.sqrt(math.fsum((r - mean) ** 2 for r in rewards) / len(rewards))
        members = tuple(
            GroupMember(
                s.session_id, s.prompt, s.completion, s.reward, (s.reward - mean) / (std + eps)
            )
            for s in sorted(summaries, key=_Summary.sort_key)
        )
        yield GrpoGroup(key, by, members, mean, std)


def iter_grpo_records(
    sessions: Iterable[AtlasSessionTrace],
    *,
    by: GroupBy = "task",
    min_group_size: int = 2,
    eps: float = DEFAULT_EPSILON,
) -> Iterator[dict[str, Any]]:
    """JSONL records of :func:`iter_grpo_groups`: one per group, members nested."""
    groups = iter_grpo_groups(sessions, by=by, min_group_size=min_group_size, eps=eps)
    return (group.to_record() for group in groups)


def iter_grpo_rows(
    sessions: Iterable[AtlasSessionTrace],
    *,
    by: GroupBy = "task",
    min_group_size: int = 2,
    eps: float = DEFAULT_EPSILON,
) -> Iterator[dict[str, Any]]:
    """Flat rows of :func:`iter_grpo_groups` for tables: one per member, group fields repeated."""
    for group in iter_grpo_groups(sessions, by=by, min_group_size=min_group_size, eps=eps):
        for member in group.members:
            yield {
                "group_key": group.key,
                "group_by": group.by,
                "group_size": len(group.members),
                "reward_mean": group.reward_mean,
                "reward_std": group.reward_std,
                **asdict(member),
            }


def iter_preference_pairs(
    sessions: Iterable[AtlasSessionTrace],
    *,
    min_margin: float = 0.1,
    by: GroupBy = "task",
) -> Iterator[PreferencePair]:
    """DPO pairs: within each group, a higher-reward answer over a lower-reward one.

    A pair is made when the chosen reward exceeds the rejected one by at
    least ``min_margin`` (and by more than zero: equal rewards never pair).
    Two sessions with the same answer text are never paired, and the same
    (prompt, chosen, rejected) texts are never emitted twice. Within a group,
    pairs come chosen-best first and, for each chosen answer, largest margin
    first. Reads the whole input first (see the module docstring).
    """
    number = isinstance(min_margin, (int, float)) and not isinstance(min_margin, bool)
    if not number or not min_margin >= 0:  # "not >=" also rejects NaN
        raise ValueError(f"min_margin must be a number >= 0, not {min_margin!r}.")
    for key, summaries in _collect(sessions, by):
        ranked = sorted(summaries, key=lambda s: (-s.reward, *s.sort_key()))
        emitted: set[tuple[str, str, str, str]] = set()
        for i, chosen in enumerate(ranked):
            # From the lowest reward upwards: margins shrink, so stop below min_margin.
            for rejected in reversed(ranked[i + 1 :]):
                margin = chosen.reward - rejected.reward
                if margin < min_margin or margin <= 0:
                    break
                texts = (chosen.prompt, chosen.completion, rejected.prompt, rejected.completion)
                if chosen.completion == rejected.completion or texts in emitted:
                    continue
                emitted.add(texts)
                yield PreferencePair(
                    key=key,
                    by=by,
                    prompt=chosen.prompt,
                    chosen=chosen.completion,
                    rejected=rejected.completion,
                    chosen_reward=chosen.reward,
                    rejected_reward=rejected.reward,
                    margin=margin,
                    chosen_session_id=chosen.session_id,
                    rejected_session_id=rejected.session_id,
                    rejected_prompt=rejected.prompt,
                )


def iter_preference_records(
    sessions: Iterable[AtlasSessionTrace],
    *,
    min_margin: float = 0.1,
    by: GroupBy = "task",
) -> Iterator[dict[str, Any]]:
    """JSONL records of :func:`iter_preference_pairs`, one per pair."""
    pairs = iter_preference_pairs(sessions, min_margin=min_margin, by=by)
    return (pair.to_record() for pair in pairs)
