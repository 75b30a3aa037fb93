"""The read flows, written once and run by a sync or an async driver.

A flow is a generator that does no I/O. It yields either a query plan
(:mod:`atlas.training_data.plan`), which the driver runs on its connection
and answers with the plan's result, or :class:`Emit`, a page of traces the
driver hands to its caller. :func:`run_flow` and :func:`run_flow_async` are
the two drivers; the public sync and async functions only choose a
connection and a driver, so the twins cannot drift apart.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from atlas.config.models import REVIEW_STATUSES, AtlasConfig
from atlas.errors import InvalidFilter, ReviewGateWarning, SessionNotFound, TraceDecodeWarning
from atlas.runtime.traces import AtlasSessionTrace
from atlas.training_data.drivers import drive, drive_async
from atlas.training_data.filters import whole_number
from atlas.training_data.plan import Cursor, Page, Plan, count_plan, page_plan
from atlas.training_data.query import TrainingQuery, check_filter_names
from atlas.training_data.review_gate import ReviewGate, gate_hint
from atlas.training_data.targets import looks_like_database

__all__ = [
    "Emit",
    "Flow",
    "by_id_plan",
    "by_id_query",
    "explain_empty",
    "hidden_by_gate",
    "hidden_by_status",
    "hidden_plan",
    "pager_flow",
    "pager_query",
    "run_flow",
    "run_flow_async",
    "target_and_id",
]


@dataclass(frozen=True)
class Emit:
    """A page of traces for the driver to hand to its caller."""

    traces: list[AtlasSessionTrace]


Flow = Generator["Plan | Emit", Any, None]


def run_flow(conn: psycopg.Connection[Any], flow: Flow) -> Iterator[list[AtlasSessionTrace]]:
    """Drive ``flow`` on a sync connection, yielding each page it emits."""
    reply: Any = None
    try:
        while True:
            try:
                step = flow.send(reply)
            except StopIteration:
                return
            if isinstance(step, Emit):
                reply = None
                yield step.traces
            else:
                reply = drive(conn, step)
    finally:
        flow.close()


async def run_flow_async(
    conn: psycopg.AsyncConnection[Any], flow: Flow
) -> AsyncIterator[list[AtlasSessionTrace]]:
    """Drive ``flow`` on an async connection, yielding each page it emits."""
    reply: Any = None
    try:
        while True:
            try:
                step = flow.send(reply)
            except StopIteration:
                return
            if isinstance(step, Emit):
                reply = None
                yield step.traces
            else:
                reply = await drive_async(conn, step)
    finally:
        flow.close()


def _report(
    traces: list[AtlasSessionTrace], hidden: Mapping[str, int], query: TrainingQuery
) -> None:
    """Warn when the review gate hid every match, or when a trace could not be fully decoded."""
    if hidden:
        gate = query.gate
        warnings.warn(
            f"No sessions returned: the review gate ({gate.describe()} only, from "
            f"{gate.source}) hid {sum(hidden.values())} matching session(s): "
            f"{gate_hint(gate, hidden, cli=False)}",
            ReviewGateWarning,
            stacklevel=5,
        )
    damaged = sum(1 for trace in traces if trace.load_warnings)
    if damaged:
        warnings.warn(
            f"{damaged} session(s) held values that could not be fully decoded; they were "
            "kept as found (see trace.load_warnings).",
            TraceDecodeWarning,
            stacklevel=5,
        )


def _outside(gate: ReviewGate) -> list[str]:
    return [s for s in REVIEW_STATUSES if s not in (gate.statuses or ())]


def hidden_plan(query: TrainingQuery) -> Plan:
    """Matching sessions the review gate hid, per review status, when it is why none came back.

    Run it only when a read returned nothing. One pipeline of counts: under
    the gate, under none, and under each status the gate keeps out. Returns
    {} when the gate is open, when ``limit`` was 0, or when some sessions pass
    the gate (then the offset, not the gate, left nothing, and the gate must
    not be blamed). Sessions whose review status is none of
    :data:`REVIEW_STATUSES` (other tools' values) are counted as "other".
    """
    if query.limit == 0 or query.gate.is_open:
        return {}
    outside = _outside(query.gate)
    gates = [query.gate, None, *(ReviewGate((s,), "hint") for s in outside)]
    gated, ungated, *per_status = yield from count_plan(query.filters, gates)
    if gated:
        return {}
    hidden = {s: n for s, n in zip(outside, per_status, strict=True) if n}
    other = ungated - sum(per_status)
    if other > 0:
        hidden["other"] = other
    return hidden


def hidden_by_status(conn: psycopg.Connection[Any], query: TrainingQuery) -> dict[str, int]:
    """:func:`hidden_plan` on a sync connection."""
    hidden: dict[str, int] = drive(conn, hidden_plan(query))
    return hidden


def explain_empty(conn: psycopg.Connection[Any], query: TrainingQuery) -> None:
    """After a read that found nothing: the :class:`ReviewGateWarning` if the gate hid it all.

    For readers that select outside :func:`pager_flow` (a cluster's driver
    listing ids). The warning points two frames above the caller.
    """
    _report([], hidden_by_status(conn, query), query)


def hidden_by_gate(conn: psycopg.Connection[Any], query: TrainingQuery) -> int:
    """How many matching sessions the review gate hid (see :func:`hidden_plan`)."""
    return sum(hidden_by_status(conn, query).values())


def pager_flow(query: TrainingQuery, batch_size: int, *, explain_empty: bool = True) -> Flow:
    """Every page of ``query``, keyset-paged, then the gate's warning if none came back.

    ``explain_empty=False`` skips that warning: for a later incremental run,
    where nothing new is the usual answer and the gate is not to blame.
    """
    returned = 0
    cursor: Cursor | None = None
    for size, offset in query.pages(batch_size):
        page: Page = yield page_plan(
            query.filters, query.gate, query.options, size=size, after=cursor, offset=offset
        )
        if page.traces:
            returned += len(page.traces)
            _report(page.traces, {}, query)
            yield Emit(page.traces)
        cursor = page.cursor
        if cursor is None:
            break
    if not returned and explain_empty:
        _report([], (yield hidden_plan(query)), query)


def _is_id(value: object) -> bool:
    # bool is an int subclass, but True is never meant as session 1.
    return isinstance(value, int) and not isinstance(value, bool)


def pager_query(
    database: Any,
    db_url: Any,
    filters: Mapping[str, Any] | None,
    arguments: dict[str, Any],
    batch_size: Any,
    config: AtlasConfig | None,
) -> tuple[Any, TrainingQuery, int]:
    """Where to read, what, and the page size, from either pagination form.

    atlas-sdk's form is ``(database, filters)`` with a mapping of filters;
    arc-atlas's is ``(db_url=..., min_reward=..., ...)``. Both may be mixed as
    long as no filter is given twice. Unknown keys raise :class:`InvalidFilter`
    naming the key; a ``limit`` in both places means the smaller.
    """
    # The page query's LIMIT: a bigint like every count.
    size = whole_number(batch_size, "batch_size", minimum=1)
    if database is not None and db_url is not None:
        raise TypeError("paginate_sessions got both database and db_url: pass one of them.")
    if filters is not None and not isinstance(filters, Mapping):
        raise TypeError(
            f"filters must be a mapping such as {{'min_reward': 0.8}}, not "
            f"{type(filters).__name__}."
        )
    given = dict(filters or {})
    keywords = dict(arguments)
    limit = keywords.pop("limit", None)
    check_filter_names([*given, *keywords])
    for key in given.keys() & keywords.keys():
        if given[key] != keywords[key]:
            raise InvalidFilter(f"Filter {key!r} is given twice, with different values.")
    merged = {**given, **keywords}
    caps = [c for c in (merged.get("limit"), limit) if c is not None]
    if caps:
        # Validated by TrainingQuery.build; min() only needs them comparable.
        merged["limit"] = min(caps) if all(_is_id(c) for c in caps) else caps[-1]
    target = database if database is not None else db_url
    return target, TrainingQuery.from_filters(merged, config=config), size


def target_and_id(first: Any, second: Any) -> tuple[Any, int]:
    """(database, session id) from a call in either order, decided by type.

    atlas-sdk orders them ``(db_url, session_id)``, arc-atlas used
    ``(session_id, db_url)``: an int (never a bool) is the id, the other the
    database. Raises :class:`InvalidFilter` when that does not decide it.
    """
    if _is_id(second) and not _is_id(first):
        return first, second
    if _is_id(first) and not _is_id(second):
        return second, first
    if _is_id(first):
        raise InvalidFilter(
            f"get_session_by_id got two integers ({first!r} and {second!r}): pass the "
            "database and the session id, e.g. get_session_by_id(db_url, 42)."
        )
    bad = next((v for v in (second, first) if not looks_like_database(v)), second)
    raise InvalidFilter(f"session_id must be an integer, not {bad!r}.")


def by_id_query(
    session_id: int,
    include_trajectory_events: bool,
    include_learning_data: bool,
    trajectory_event_limit: int | None,
) -> TrainingQuery:
    """The query of a lookup: an explicit id is not a training-data selection, so no gate."""
    return TrainingQuery.build(
        session_ids=[session_id],
        include_all_review_statuses=True,
        limit=1,
        include_trajectory_events=include_trajectory_events,
        include_learning_data=include_learning_data,
        trajectory_event_limit=trajectory_event_limit,
    )


def by_id_plan(query: TrainingQuery, session_id: int) -> Plan:
    """The one session of a lookup; raises :class:`SessionNotFound` when there is none."""
    page: Page = yield from page_plan(query.filters, query.gate, query.options, size=1)
    if not page.traces:
        raise SessionNotFound(f"Session {session_id} is not in the database.")
    _report(page.traces, {}, query)
    return page.traces[0]
