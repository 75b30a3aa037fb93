"""Query filters, validated, and turned into SQL with bound parameters only.

Every condition here can use an index (see ``0003_indexes.sql``); the tests
check each with ``EXPLAIN``. No user value is ever formatted into SQL text.
"""

from __future__ import annotations

import contextlib
import math
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timezone
from typing import Any

from psycopg import sql

from atlas.errors import InvalidFilter
from atlas.storage.schema import reward_score
from atlas.storage.writes import SESSION_STATUSES
from atlas.training_data.review_gate import ReviewGate

__all__ = ["BIGINT_MAX", "SESSION_ID_MAX", "SessionFilters", "where_clause", "whole_number"]


# LIMIT, OFFSET and every count arc-atlas binds are PostgreSQL bigint: a larger
# Python int reaches the server as numeric and fails there
# (NumericValueOutOfRange), so it is refused here with the parameter's name.
BIGINT_MAX = 2**63 - 1
# sessions.id is SERIAL (int4, a sequence that starts at 1) in both layouts: an
# id outside 1..2**31-1 can never match, so it is a mistake, not a miss.
SESSION_ID_MAX = 2**31 - 1


def whole_number(value: Any, name: str, *, minimum: int, maximum: int = BIGINT_MAX) -> int:
    """``value`` as an int in ``minimum..maximum``; raises :class:`InvalidFilter` naming ``name``.

    Only real integers pass (``int`` and integer types such as numpy's that
    define ``__index__``): ``True`` is not 1, ``2.0`` and ``"2"`` are not 2.
    """
    number: int | None = None
    if not isinstance(value, bool):
        with contextlib.suppress(TypeError):
            number = operator.index(value)
    if number is not None and number > maximum:
        limit = " (PostgreSQL's bigint)" if maximum == BIGINT_MAX else ""
        raise InvalidFilter(
            f"{name} must be at most {maximum:,}{limit}, not {_shown(value)}.", parameter=name
        )
    if number is None or number < minimum:
        raise InvalidFilter(
            f"{name} must be a whole number >= {minimum}, not {_shown(value)}.", parameter=name
        )
    return number


def _shown(value: Any) -> str:
    """``repr`` of a rejected value, shortened: a 400-digit number is not worth echoing."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _as_list(value: Any, name: str) -> tuple[Any, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Iterable):
        return (value,)  # one value, checked by the caller
    # bytes and mappings are iterable, but their items (ints, keys) are never
    # what the caller meant.
    if not isinstance(value, (bytes, bytearray, Mapping)):
        items = tuple(value)
        if not items:
            raise InvalidFilter(f"{name} is empty: leave it out to mean 'any'.", parameter=name)
        return items
    raise InvalidFilter(
        f"{name} must be a value or a list of values, not {type(value).__name__}.",
        parameter=name,
    )


def _texts(value: Any, name: str) -> tuple[str, ...] | None:
    """Text values; PostgreSQL text cannot hold NUL, so one is refused here, not by the driver."""
    items = _as_list(value, name)
    if items is None:
        return None
    for item in items:
        if not isinstance(item, str):
            raise InvalidFilter(f"{name} must be text, not {_shown(item)}.", parameter=name)
        if "\x00" in item:
            raise InvalidFilter(
                f"{name} {_shown(item)} contains a NUL character, which PostgreSQL text "
                "cannot hold.",
                parameter=name,
            )
    return tuple(dict.fromkeys(items))


def _task_text(value: Any) -> str | None:
    """The text a task must contain; blank means no filter (a search box left empty)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidFilter(
            f"task_contains must be text, not {_shown(value)}.", parameter="task_contains"
        )
    (text,) = _texts(value, "task_contains") or ("",)
    return text if text.strip() else None


# The most parts a selection may be split into: far beyond any cluster's readers.
MAX_SHARDS = 65536
# Which of N parts (0-based, N the parameter) a session of ``sessions s`` is in:
# shard=(I, N) keeps part I-1. hashint4 is PostgreSQL's own hash of an int4 (that
# of hash indexes and hash partitions): stable, and spread evenly whatever the ids.
SHARD_OF = "mod(hashint4(s.id)::bigint + 2147483648, %s)"


def _shard(value: Any) -> tuple[int, int] | None:
    """``"I/N"`` or ``(I, N)`` as (I, N) with 1 <= I <= N <= :data:`MAX_SHARDS`."""
    if value is None:
        return None
    parts: Any = value
    if isinstance(value, str):
        parts = value.strip().split("/")
    elif isinstance(value, (bytes, bytearray, Mapping)) or not isinstance(value, Iterable):
        parts = None
    try:
        index, count = (
            whole_number(p if not isinstance(p, str) else int(p.strip()), "shard", minimum=1)
            for p in parts
        )
    except (TypeError, ValueError):
        raise InvalidFilter(
            f"shard must be I/N such as 1/4 (the first of four parts), not {_shown(value)}.",
            parameter="shard",
        ) from None
    if not index <= count <= MAX_SHARDS:
        raise InvalidFilter(
            f"shard {index}/{count}: I must be from 1 to N, and N at most {MAX_SHARDS}.",
            parameter="shard",
        )
    return index, count


def _session_statuses(values: tuple[Any, ...] | None) -> tuple[str, ...] | None:
    """Runtime statuses trimmed and case-folded (``SUCCEEDED`` is ``succeeded``), as atlas-sdk."""
    if values is None:
        return None
    cleaned: list[str] = []
    for value in values:
        status = value.strip().casefold() if isinstance(value, str) else value
        if status not in SESSION_STATUSES:
            raise InvalidFilter(
                f"status_filters: unknown session status {_shown(value)}; use "
                f"{', '.join(SESSION_STATUSES)}.",
                parameter="status_filters",
            )
        if status not in cleaned:
            cleaned.append(status)
    return tuple(cleaned)


def _reward(value: Any, name: str) -> float | None:
    """A finite float, from a number or numeric text.

    NaN and infinity are refused: PostgreSQL sorts NaN above every number, so
    ``score >= 'NaN'`` would select only NaN scores and ``score <= 'NaN'``
    every score; neither is a bound anyone means.
    """
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise TypeError
        number = float(value)
    except OverflowError:  # an int beyond a float's range, such as 10**400
        number = math.inf
    except (TypeError, ValueError):
        raise InvalidFilter(
            f"{name} must be a number such as 0.8, not {_shown(value)}.", parameter=name
        ) from None
    if not math.isfinite(number):
        raise InvalidFilter(
            f"{name} must be a finite number such as 0.8, not {_shown(value)}.", parameter=name
        )
    return number


def _moment(value: Any, name: str) -> datetime | None:
    """Accept datetime, date or ISO 8601 text; naive values are taken as UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidFilter(
                f"{name} {_shown(value)} is not a date: use ISO 8601, e.g. 2026-01-31 "
                "or 2026-01-31T12:00:00+00:00.",
                parameter=name,
            ) from None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=timezone.utc)
    raise InvalidFilter(
        f"{name} must be a datetime, a date or ISO 8601 text, not {type(value).__name__}.",
        parameter=name,
    )


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
    task_contains: str | None = None
    shard: tuple[int, int] | None = None

    def only(self, ids: Sequence[int]) -> SessionFilters:
        """These filters, narrowed to ``ids`` (a reader re-checks the sessions it was handed).

        ``ids`` come from a selection made with these filters, so they are
        within any ``session_ids`` and ``shard`` already given.
        """
        return replace(self, session_ids=tuple(ids))

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
        task_contains: str | None = None,
        shard: str | Sequence[int] | None = None,
    ) -> SessionFilters:
        """Validate user-facing filter arguments, the only place they are checked.

        Rewards are finite numbers (or numeric text); learning keys are text
        without NUL; statuses are trimmed and case-folded; session ids are
        real integers in 1..2**31-1 (``sessions.id`` is SERIAL); ``task_contains``
        is one text, matched case-insensitively anywhere in the task; ``shard``
        is ``"I/N"`` or ``(I, N)``, the I-th of N parts (1 <= I <= N). Raises
        :class:`InvalidFilter` whose ``parameter`` names the argument at fault.
        """
        low, high = _reward(min_reward, "min_reward"), _reward(max_reward, "max_reward")
        if low is not None and high is not None and low > high:
            raise InvalidFilter(
                f"min_reward ({low}) is greater than max_reward ({high}).", parameter="min_reward"
            )
        statuses = _session_statuses(_as_list(status_filters, "status_filters"))
        ids = _as_list(session_ids, "session_ids")
        if ids is not None:
            ids = tuple(
                whole_number(i, "session_ids", minimum=1, maximum=SESSION_ID_MAX) for i in ids
            )
        after = _moment(created_after, "created_after")
        before = _moment(created_before, "created_before")
        if after and before and after >= before:
            raise InvalidFilter(
                "created_after must be earlier than created_before.", parameter="created_after"
            )
        return cls(
            min_reward=low,
            task_contains=_task_text(task_contains),
            shard=_shard(shard),
            max_reward=high,
            learning_keys=_texts(learning_key, "learning_key"),
            statuses=statuses,
            created_after=after,
            created_before=before,
            session_ids=ids,
        )


def _like_escaped(text: str) -> str:
    """``text`` as a LIKE pattern that matches only itself (backslash is LIKE's escape)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# The reward expression must match sessions_reward_score_idx exactly for the
# planner to use the index.
_SCORE = sql.SQL(reward_score("s"))


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
    if filters.task_contains is not None:
        # LIKE with the text's own % _ and \ escaped (matched as written), on
        # lower() of both sides: sessions_task_trgm_idx serves it where pg_trgm exists.
        add("lower(s.task) LIKE lower(%s)", f"%{_like_escaped(filters.task_contains)}%")
    if filters.shard is not None:
        index, count = filters.shard
        parts.append(sql.SQL(SHARD_OF + " = %s"))
        params.extend([count, index - 1])
    if not parts:
        return sql.SQL(""), params
    return sql.SQL("WHERE ") + sql.SQL(" AND ").join(parts), params
