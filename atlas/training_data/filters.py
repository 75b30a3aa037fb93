"""Query filters, validated, and turned into SQL with bound parameters only.

Every condition here can use an index (see ``0003_indexes.sql``); the tests
check each with ``EXPLAIN``. No user value is ever formatted into SQL text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from typing import Any

from psycopg import sql

from atlas.errors import InvalidFilter
from atlas.storage.writes import SESSION_STATUSES
from atlas.training_data.review_gate import ReviewGate

__all__ = ["SessionFilters", "where_clause"]


def _as_list(value: Any, name: str) -> tuple[Any, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, int)):
        return (value,)
    if isinstance(value, Iterable):
        items = tuple(value)
        if not items:
            raise InvalidFilter(f"{name} is empty: leave it out to mean 'any'.")
        return items
    raise InvalidFilter(f"{name} must be a value or a list of values, not {type(value).__name__}.")


def _session_statuses(values: tuple[Any, ...] | None) -> tuple[str, ...] | None:
    """Runtime statuses trimmed and lowercased (``SUCCEEDED`` is ``succeeded``), as atlas-sdk."""
    if values is None:
        return None
    cleaned: list[str] = []
    for value in values:
        status = value.strip().lower() if isinstance(value, str) else value
        if status not in SESSION_STATUSES:
            raise InvalidFilter(
                f"Unknown session status {value!r}: use {', '.join(SESSION_STATUSES)}."
            )
        if status not in cleaned:
            cleaned.append(status)
    return tuple(cleaned)


def _reward(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidFilter(f"{name} must be a number, not {value!r}.")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidFilter(f"{name} must be a number such as 0.8, not {value!r}.") from None


def _moment(value: Any, name: str) -> datetime | None:
    """Accept datetime, date or ISO 8601 text; naive values are taken as UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidFilter(
                f"{name} {value!r} is not a date: use ISO 8601, e.g. 2026-01-31 "
                "or 2026-01-31T12:00:00+00:00."
            ) from None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=timezone.utc)
    raise InvalidFilter(f"{name} must be a datetime, a date or ISO 8601 text.")


def _count(value: Any, name: str, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidFilter(f"{name} must be a whole number >= {minimum}, not {value!r}.")
    return value


@dataclass(frozen=True)
class SessionFilters:
    """Which sessions a query selects. Build with :meth:`build`, which validates."""

    min_reward: float | None = None
    max_reward: float | None = None
    learning_keys: tuple[str, ...] | None = None
    statuses: tuple[str, ...] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    session_ids: tuple[int, ...] | None = None

    @classmethod
    def build(
        cls,
        *,
        min_reward: Any = None,
        max_reward: Any = None,
        learning_key: str | Sequence[str] | None = None,
        status_filters: str | Sequence[str] | None = None,
        created_after: Any = None,
        created_before: Any = None,
        session_ids: int | Sequence[int] | None = None,
    ) -> SessionFilters:
        """Validate user-facing filter arguments; raises :class:`InvalidFilter`."""
        low, high = _reward(min_reward, "min_reward"), _reward(max_reward, "max_reward")
        if low is not None and high is not None and low > high:
            raise InvalidFilter(f"min_reward ({low}) is greater than max_reward ({high}).")
        statuses = _session_statuses(_as_list(status_filters, "status_filters"))
        ids = _as_list(session_ids, "session_ids")
        try:
            ids = tuple(int(i) for i in ids) if ids is not None else None
        except (TypeError, ValueError):
            raise InvalidFilter("session_ids must be integers.") from None
        keys = _as_list(learning_key, "learning_key")
        after = _moment(created_after, "created_after")
        before = _moment(created_before, "created_before")
        if after and before and after >= before:
            raise InvalidFilter("created_after must be earlier than created_before.")
        return cls(
            min_reward=low,
            max_reward=high,
            learning_keys=tuple(str(k) for k in keys) if keys else None,
            statuses=statuses or None,
            created_after=after,
            created_before=before,
            session_ids=ids,
        )


# The reward expression must match sessions_reward_score_idx exactly for the
# planner to use the index.
_SCORE = sql.SQL("(s.reward_stats ->> 'score')::float")


def where_clause(
    filters: SessionFilters, gate: ReviewGate | None
) -> tuple[sql.Composable, list[Any]]:
    """``WHERE ...`` (or empty) for ``sessions s`` and its parameters, in order."""
    parts: list[sql.Composable] = []
    params: list[Any] = []

    def add(condition: str | sql.Composable, value: Any) -> None:
        parts.append(sql.SQL(condition) if isinstance(condition, str) else condition)
        params.append(value)

    if filters.min_reward is not None:
        add(sql.SQL("{} >= %s").format(_SCORE), filters.min_reward)
    if filters.max_reward is not None:
        add(sql.SQL("{} <= %s").format(_SCORE), filters.max_reward)
    if filters.learning_keys is not None:
        add("(s.metadata ->> 'learning_key') = ANY(%s)", list(filters.learning_keys))
    if filters.statuses is not None:
        add("s.status = ANY(%s)", list(filters.statuses))
    if gate is not None and gate.statuses is not None:
        add("s.review_status = ANY(%s)", list(gate.statuses))
    if filters.created_after is not None:
        add("s.created_at >= %s", filters.created_after)
    if filters.created_before is not None:
        add("s.created_at < %s", filters.created_before)
    if filters.session_ids is not None:
        add("s.id = ANY(%s)", list(filters.session_ids))
    if not parts:
        return sql.SQL(""), params
    return sql.SQL("WHERE ") + sql.SQL(" AND ").join(parts), params
