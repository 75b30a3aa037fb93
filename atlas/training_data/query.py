"""The filters of the query functions, typed once, and the validated query they make.

:class:`TrainingFilters` is the one written-down list of filter parameters:
the public functions take it as ``**filters: Unpack[TrainingFilters]``, so
mypy and an IDE see every name and its type, and :data:`FILTER_KEYS` (the
names the runtime accepts) is read from it. :meth:`TrainingQuery.build`
checks every value, once.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from typing_extensions import TypedDict, Unpack

from atlas.config.models import AtlasConfig
from atlas.errors import InvalidFilter
from atlas.training_data.assembly import LoadOptions
from atlas.training_data.filters import SessionFilters, whole_number
from atlas.training_data.review_gate import ReviewGate, resolve_review_gate

__all__ = [
    "COUNT_FILTER_KEYS",
    "FILTER_KEYS",
    "CountFilters",
    "TrainingFilters",
    "TrainingQuery",
    "check_filter_names",
]


class CountFilters(TypedDict, total=False):
    """Which sessions to select and what to load: the filters a count takes.

    Rewards are numbers or numeric text; statuses are case-insensitive; dates
    are datetimes, dates or ISO 8601 text (naive means UTC); ``created_after``
    is inclusive and ``created_before`` exclusive; ``task_contains`` keeps
    sessions whose task contains the text, ignoring case; ``shard`` (``"I/N"``
    or ``(I, N)``) keeps the I-th of N disjoint parts, split by a hash of the
    session id: the N parts together are the whole selection.
    """

    min_reward: float | str | None
    max_reward: float | str | None
    learning_key: str | Sequence[str] | None
    status_filters: str | Sequence[str] | None
    review_status_filters: str | Sequence[str] | None
    include_all_review_statuses: bool
    created_after: datetime | str | None
    created_before: datetime | str | None
    session_ids: int | Sequence[int] | None
    task_contains: str | None
    shard: str | tuple[int, int] | None
    include_trajectory_events: bool
    include_learning_data: bool
    trajectory_event_limit: int | None


class TrainingFilters(CountFilters, total=False):
    """:class:`CountFilters` and the window: ``limit`` sessions after skipping ``offset``."""

    limit: int | None
    offset: int | None


# The names a filters mapping may hold, read from the typed definitions above.
FILTER_KEYS: tuple[str, ...] = tuple(TrainingFilters.__annotations__)
COUNT_FILTER_KEYS: tuple[str, ...] = tuple(CountFilters.__annotations__)

# What an absent switch means; every other filter is absent as None.
_SWITCH_DEFAULTS = {
    "include_all_review_statuses": False,
    "include_trajectory_events": True,
    "include_learning_data": True,
}


def check_filter_names(names: Iterable[str]) -> None:
    """Raise :class:`~atlas.errors.InvalidFilter` for the first name that is not a filter.

    The message names it, the closest filter when one is close, and every
    filter there is (:data:`FILTER_KEYS`).
    """
    for name in names:
        if name not in FILTER_KEYS:
            close = difflib.get_close_matches(name, FILTER_KEYS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise InvalidFilter(
                f"Unknown filter {name!r}{hint}: use {', '.join(FILTER_KEYS)}.", parameter=name
            )


def _gate(statuses: Any, include_all: bool, config: AtlasConfig | None) -> ReviewGate:
    """The review gate, with a bad ``review_status_filters`` reported under its name."""
    if statuses is not None and not isinstance(statuses, (str, Iterable)):
        raise InvalidFilter(
            "review_status_filters must be a status or a list of statuses, not "
            f"{type(statuses).__name__}.",
            parameter="review_status_filters",
        )
    try:
        return resolve_review_gate(statuses, include_all=include_all, config=config)
    except InvalidFilter as exc:
        if statuses is None or exc.parameter is not None:
            raise  # from the environment, which names itself
        raise InvalidFilter(str(exc), parameter="review_status_filters") from None


@dataclass(frozen=True)
class TrainingQuery:
    """A validated query: filters, review gate, what to load, and the window."""

    filters: SessionFilters
    gate: ReviewGate
    options: LoadOptions
    limit: int | None = None
    offset: int = 0

    @classmethod
    def build(
        cls, *, config: AtlasConfig | None = None, **filters: Unpack[TrainingFilters]
    ) -> TrainingQuery:
        """Validate every filter, once; raises :class:`~atlas.errors.InvalidFilter`.

        A name that is not one of :data:`FILTER_KEYS` (a typo such as
        ``min_rewrd``) is named with the filters there are. ``limit``,
        ``offset`` and ``trajectory_event_limit`` are real integers (not
        bools) from 0 to PostgreSQL's bigint maximum; the ``include_*``
        switches are bools (``"no"`` would otherwise read as true); the
        session filters are checked by :meth:`SessionFilters.build` and review
        statuses by :func:`~atlas.config.models.parse_review_statuses`. The
        error's ``parameter`` names the filter at fault.
        """
        check_filter_names(filters)
        given: dict[str, Any] = {**_SWITCH_DEFAULTS, **filters}
        counts = {
            name: None if given.get(name) is None else whole_number(given[name], name, minimum=0)
            for name in ("limit", "offset", "trajectory_event_limit")
        }
        for name in _SWITCH_DEFAULTS:
            if not isinstance(given[name], bool):
                raise InvalidFilter(
                    f"{name} must be True or False, not {given[name]!r}.", parameter=name
                )
        session_filters = SessionFilters.build(
            min_reward=given.get("min_reward"),
            max_reward=given.get("max_reward"),
            learning_key=given.get("learning_key"),
            status_filters=given.get("status_filters"),
            created_after=given.get("created_after"),
            created_before=given.get("created_before"),
            session_ids=given.get("session_ids"),
            task_contains=given.get("task_contains"),
            shard=given.get("shard"),
        )
        return cls(
            filters=session_filters,
            gate=_gate(
                given.get("review_status_filters"), given["include_all_review_statuses"], config
            ),
            options=LoadOptions(
                include_trajectory_events=given["include_trajectory_events"],
                include_learning_data=given["include_learning_data"],
                trajectory_event_limit=counts["trajectory_event_limit"],
            ),
            limit=counts["limit"],
            offset=counts["offset"] or 0,
        )

    @classmethod
    def from_filters(
        cls, filters: Mapping[str, Any], *, config: AtlasConfig | None = None
    ) -> TrainingQuery:
        """:meth:`build` from a mapping of filters, such as atlas-sdk's ``filters`` dict."""
        check_filter_names(filters)
        return cls.build(config=config, **filters)

    def pages(self, page_size: int) -> Iterator[tuple[int, int]]:
        """(size, offset) of successive pages; the offset applies to the first only."""
        remaining = self.limit
        offset = self.offset
        while remaining is None or remaining > 0:
            size = page_size if remaining is None else min(page_size, remaining)
            yield size, offset
            offset = 0
            if remaining is not None:
                remaining -= size


def count_query(
    function: str, filters: Mapping[str, Any], config: AtlasConfig | None
) -> TrainingQuery:
    """The query of a count: every filter but the window, which ``function`` does not take."""
    check_filter_names(filters)
    window = sorted(set(filters) - set(COUNT_FILTER_KEYS))
    if window:
        raise InvalidFilter(f"{function} does not take {window[0]}.", parameter=window[0])
    return TrainingQuery.from_filters(filters, config=config)
