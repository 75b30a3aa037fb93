"""Insights: what a set of sessions looks like, computed by PostgreSQL in one pass.

:func:`session_insights` answers the questions a reviewer or a trainer asks of
the sessions matching a filter: how they split by runtime and review status,
how rewards are distributed per learning key, how the reward moved hour by hour
(with drift alerts), and per learning key its size, mean reward, trend and
latest playbook. Everything is aggregated in SQL with ``GROUPING SETS`` over a
single scan of ``sessions``; no session is loaded into Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from atlas.config.models import parse_review_statuses
from atlas.errors import InvalidFilter
from atlas.storage.schema import reward_number
from atlas.training_data.filters import SessionFilters, where_clause
from atlas.training_data.review_gate import ReviewGate

__all__ = ["HourStats", "Insights", "KeyStats", "session_insights"]

# Histogram bins over [0, 1]; scores outside it are counted apart, never folded in.
DEFAULT_BINS = 20
_PLAYBOOK_CHARS = 600


@dataclass(frozen=True)
class HourStats:
    """Sessions created in one UTC hour (``hour`` is its start, timezone-aware)."""

    hour: datetime
    sessions: int
    mean_reward: float | None
    drift_alerts: int


@dataclass(frozen=True)
class KeyStats:
    """One learning key: size, reward, trend, drift and its latest playbook.

    ``trend_per_day`` is the least-squares slope of reward against creation
    time, in reward per day (None with fewer than two scored sessions).
    ``learning_key`` None gathers sessions without a key.
    """

    learning_key: str | None
    sessions: int
    scored: int
    mean_reward: float | None
    trend_per_day: float | None
    drift_alerts: int
    last_session_at: datetime | str | None
    playbook_updated_at: datetime | str | None = None
    student_learning: str | None = None
    teacher_learning: str | None = None


@dataclass(frozen=True)
class Insights:
    """The aggregates of :func:`session_insights`.

    ``by_status`` maps (runtime status, review status) to a count.
    ``histograms`` maps a learning key to ``bins + 2`` counts: below 0, the
    ``bins`` equal bins of [0, 1] (1.0 falls in the last), above 1.
    ``over_time`` is per UTC hour that has sessions, oldest first (a chart
    sums hours into days or weeks as its span needs); sessions created at
    ±infinity are in the totals but in no hour.
    """

    total: int
    scored: int
    mean_reward: float | None
    drift_alerts: int
    bins: int
    by_status: dict[tuple[str, str], int] = field(default_factory=dict)
    histograms: dict[str | None, list[int]] = field(default_factory=dict)
    over_time: list[HourStats] = field(default_factory=list)
    keys: list[KeyStats] = field(default_factory=list)

    def _sum(self, index: int) -> dict[str, int]:
        out: dict[str, int] = {}
        for pair, count in self.by_status.items():
            out[pair[index]] = out.get(pair[index], 0) + count
        return out

    @property
    def status_counts(self) -> dict[str, int]:
        """Sessions per runtime status."""
        return self._sum(0)

    @property
    def review_counts(self) -> dict[str, int]:
        """Sessions per review status."""
        return self._sum(1)

    @property
    def queue_size(self) -> int:
        """Sessions waiting for review (``pending``)."""
        return self.review_counts.get("pending", 0)


_SCORE = reward_number("s")
_QUERY = (
    "WITH base AS MATERIALIZED ("
    # learning_key and drift_alert are the columns migration 0005 derives from
    # metadata: reading metadata itself would decompress it for every session.
    f" SELECT s.status, s.review_status, s.learning_key AS key, {_SCORE} AS score,"
    " s.drift_alert AS drift,"
    " CASE WHEN isfinite(s.created_at) THEN date_trunc('hour', s.created_at, 'UTC') END AS hour,"
    " s.created_at, CASE WHEN isfinite(s.created_at)"
    " THEN extract(epoch FROM s.created_at)::float / 86400 END AS days"
    " FROM sessions s {where}"
    "), binned AS ("
    " SELECT *, CASE WHEN score IS NULL THEN NULL WHEN score = 1 THEN %s"
    " ELSE width_bucket(score, 0, 1, %s) END AS bin FROM base"
    ") SELECT grouping(status, review_status) AS g_status, grouping(key, bin) AS g_bin,"
    " grouping(hour) AS g_hour, grouping(key) AS g_key,"
    " status, review_status, key, bin, hour, count(*) AS n, count(score) AS scored,"
    " avg(score) AS mean, sum(drift::int) AS drift, regr_slope(score, days) AS slope,"
    " max(created_at) AS last_at"
    " FROM binned GROUP BY GROUPING SETS ((status, review_status), (key, bin), (hour), (key), ())"
)


def session_insights(
    conn: psycopg.Connection[Any],
    *,
    filters: SessionFilters | None = None,
    review_statuses: str | Sequence[str] | None = None,
    bins: int = DEFAULT_BINS,
) -> Insights:
    """Aggregates of the sessions matching ``filters`` (any review status unless named).

    One scan of ``sessions`` computes every figure; the learning keys' latest
    playbooks come from ``learning_registry`` by primary key. Raises
    :class:`~atlas.errors.InvalidFilter` for a bad status or bin count.
    """
    if isinstance(bins, bool) or not isinstance(bins, int) or not 1 <= bins <= 1000:
        raise InvalidFilter(f"bins must be from 1 to 1000, not {bins!r}.", parameter="bins")
    gate = None
    if review_statuses is not None:
        gate = ReviewGate(parse_review_statuses(review_statuses, "review_statuses"), "review")
    where, params = where_clause(filters or SessionFilters(), gate)
    query = sql.SQL(_QUERY).format(where=where)
    total = scored = drift = 0
    mean: float | None = None
    by_status: dict[tuple[str, str], int] = {}
    histograms: dict[str | None, list[int]] = {}
    hours: list[HourStats] = []
    keys: list[KeyStats] = []
    with conn.cursor() as cur:
        cur.execute(query, [*params, bins, bins])
        for row in cur.fetchall():
            g_status, g_bin, g_hour, g_key = row[:4]
            status, review, key, bin_, hour, n, n_scored, avg, drifts, slope, last = row[4:]
            n, drifts = int(n), int(drifts or 0)
            if not g_status:
                by_status[(status, review)] = n
            elif not g_bin:
                if bin_ is not None:
                    histograms.setdefault(key, [0] * (bins + 2))[int(bin_)] += n
            elif not g_hour:
                if hour is not None:
                    hours.append(HourStats(hour, n, _float(avg), drifts))
            elif not g_key:
                keys.append(
                    KeyStats(key, n, int(n_scored), _float(avg), _float(slope), drifts, last)
                )
            else:
                total, scored, mean, drift = n, int(n_scored), _float(avg), drifts
        keys = _with_playbooks(cur, keys)
    hours.sort(key=lambda h: h.hour)
    keys.sort(key=lambda k: (-k.sessions, k.learning_key or ""))
    return Insights(total, scored, mean, drift, bins, by_status, histograms, hours, keys)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _with_playbooks(cur: psycopg.Cursor[Any], keys: list[KeyStats]) -> list[KeyStats]:
    """``keys`` with each key's row of ``learning_registry`` (its latest playbook), if any."""
    names = [k.learning_key for k in keys if k.learning_key is not None]
    if not names:
        return keys
    cur.execute(
        "SELECT learning_key, updated_at, left(student_learning, %s), left(teacher_learning, %s) "
        "FROM learning_registry WHERE learning_key = ANY(%s)",
        [_PLAYBOOK_CHARS, _PLAYBOOK_CHARS, names],
    )
    registry = {row[0]: row[1:] for row in cur.fetchall()}
    out = []
    for stats in keys:
        found = registry.get(stats.learning_key) if stats.learning_key is not None else None
        if found is not None:
            updated, student, teacher = found
            stats = replace(
                stats,
                playbook_updated_at=updated,
                student_learning=student,
                teacher_learning=teacher,
            )
        out.append(stats)
    return out
