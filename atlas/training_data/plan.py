"""The queries behind a page of sessions, as a generator that does no I/O.

:func:`page_plan` yields batches of :class:`Query` and receives their rows;
the sync and async drivers in :mod:`atlas.training_data.drivers` do the
talking. A page is one query, one round trip, whatever its size: the page of
session rows, with each session's plan, steps, attempts, guidance and events
aggregated by the server into JSON arrays beside it.

Paging is keyset on ``(created_at, id)``, newest first: a page starts strictly
after the last row of the previous one, so sessions written while paging
(which are newer) never shift a page, and each page costs the same at any depth.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import sql

from atlas.runtime.traces import AtlasSessionTrace
from atlas.storage.events import ENVELOPE_KEYS
from atlas.training_data.assembly import (
    EVENT_ROW_KEYS,
    EventBlock,
    LoadOptions,
    PageRows,
    assemble_page,
)
from atlas.training_data.filters import SessionFilters, where_clause
from atlas.training_data.review_gate import ReviewGate

__all__ = ["Cursor", "Page", "Query", "count_plan", "ids_plan", "page_plan", "rows_plan"]

Cursor = tuple[datetime, int]
Rows = list[dict[str, Any]]
Plan = Generator[list["Query"], list[Rows], Any]


@dataclass(frozen=True)
class Query:
    """One statement and its bound parameters."""

    sql: sql.SQL | sql.Composed
    params: Sequence[Any] = ()


@dataclass(frozen=True)
class Page:
    """Traces of one page and the cursor that continues after it (None at the end)."""

    traces: list[AtlasSessionTrace]
    cursor: Cursor | None


# The page itself: filters, keyset and LIMIT on sessions alone, so that the
# children below are gathered for the rows of this page only, whatever plan
# the filters lead to.
_PAGE = (
    "SELECT s.id, s.task, s.status, s.metadata, s.final_answer, s.reward, s.reward_stats, "
    "s.reward_audit, {learning}, s.review_status, s.review_notes, s.created_at, "
    "s.completed_at FROM sessions s {where} "
    "ORDER BY s.created_at DESC, s.id DESC LIMIT %s OFFSET %s"
)
# Each session's children, aggregated on the server into one JSON array per
# table: one row per session reaches Python, parsed by orjson in one call.
_PLAN = "(SELECT p.plan FROM plans p WHERE p.session_id = s.id) AS plan"
_STEPS = (
    "(SELECT json_agg(json_build_object('step_id', r.step_id, 'trace', r.trace, "
    "'output', r.output, 'evaluation', r.evaluation, 'attempts', r.attempts, "
    "'metadata', r.metadata) ORDER BY r.step_id) "
    "FROM step_results r WHERE r.session_id = s.id) AS steps"
)
_ATTEMPTS = (
    "(SELECT json_agg(json_build_object('step_id', a.step_id, 'attempt', a.attempt, "
    "'evaluation', a.evaluation) ORDER BY a.step_id, a.attempt) "
    "FROM step_attempts a WHERE a.session_id = s.id) AS attempts"
)
_GUIDANCE = (
    "(SELECT json_agg(json_build_object('step_id', g.step_id, 'note', g.note) "
    "ORDER BY g.step_id, g.sequence) FROM guidance_notes g WHERE g.session_id = s.id) AS guidance"
)
# A complete flat envelope: passed through as text by the exporter.
_FLAT = (
    "(jsonb_typeof(t.event) = 'object' "
    f"AND t.event ?& ARRAY[{', '.join(repr(key) for key in ENVELOPE_KEYS)}] "
    "AND jsonb_typeof(t.event -> 'timestamp') IN ('string', 'null'))"
)


def _iso_text(column: str) -> str:
    """SQL for a timestamptz as Python's ``isoformat()`` writes it in UTC.

    PostgreSQL's own JSON form trims the fraction (``.1``), which
    ``datetime.fromisoformat`` on Python 3.10 rejects. Values Python cannot
    hold (infinity, BC, past 9999) come out as the server's text, as they do
    for the session columns.
    """
    utc = f"{column} AT TIME ZONE 'UTC'"
    return (
        f"CASE WHEN isfinite({column}) AND extract(year FROM {utc}) BETWEEN 1 AND 9999 "
        f"THEN to_char({utc}, CASE WHEN extract(microseconds FROM {column}) %% 1000000 = 0 "
        'THEN \'YYYY-MM-DD"T"HH24:MI:SS"+00:00"\' '
        'ELSE \'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"\' END) '
        f"ELSE {column}::text END"
    )


def _with_row_fields() -> str:
    """SQL for one event as it goes out: the stored object with its row's columns added.

    A stored key wins over a row column of the same name (the column then
    takes its second name, see ``EVENT_ROW_KEYS``). An event that is not a
    JSON object goes out as ``[id, created_at, event]`` for assembly to wrap.
    """
    values = {"id": "t.id", "created_at": _iso_text("t.created_at")}
    pairs = ", ".join(
        f"CASE WHEN t.event ? '{key}' THEN '{fallback}' ELSE '{key}' END, {values[key]}"
        for key, fallback in EVENT_ROW_KEYS
    )
    columns = ", ".join(values[key] for key, _ in EVENT_ROW_KEYS)
    return (
        f"CASE WHEN jsonb_typeof(t.event) = 'object' THEN jsonb_build_object({pairs}) || t.event "
        f"ELSE jsonb_build_array({columns}, t.event) END"
    )


# Events (the first `limit`, if limited) as one JSON array in chronological
# order, whether all are complete flat envelopes, and how many there are.
_EVENTS = (
    "CROSS JOIN LATERAL (SELECT count(*) AS kept, COALESCE(bool_and(" + _FLAT + "), true) "
    "AS all_flat, '[' || string_agg((" + _with_row_fields() + ")::text, ',' "
    "ORDER BY t.created_at, t.id) || ']' "
    "AS raw FROM (SELECT event, created_at, id FROM trajectory_events "
    "WHERE session_id = s.id ORDER BY created_at, id LIMIT %s) AS t) AS e"
)
_EVENT_TOTAL = "(SELECT count(*) FROM trajectory_events c WHERE c.session_id = s.id)"


def _keyset_where(
    filters: SessionFilters, gate: ReviewGate | None, after: Cursor | None
) -> tuple[sql.Composable, list[Any]]:
    """The filters' WHERE clause, continued strictly after ``after`` in newest-first order."""
    where, params = where_clause(filters, gate)
    if after is None:
        return where, params
    keyset = sql.SQL("(s.created_at, s.id) < (%s, %s)")
    where = sql.SQL(" AND ").join([where, keyset]) if params else sql.SQL("WHERE ") + keyset
    return where, [*params, after[0], after[1]]


def _page_query(
    filters: SessionFilters,
    gate: ReviewGate | None,
    options: LoadOptions,
    size: int,
    after: Cursor | None,
    offset: int,
) -> Query:
    """The one query of a page: session rows with plan, steps, attempts, guidance, events."""
    where, params = _keyset_where(filters, gate, after)
    learning = (
        "s.student_learning, s.teacher_learning"
        if options.include_learning_data
        else "NULL::text AS student_learning, NULL::text AS teacher_learning"
    )
    page = sql.SQL(_PAGE.format(learning=learning, where="{where}")).format(where=where)
    params = [*params, size, offset]
    # Lookups by session key, not joins: a join lets the planner scan a whole
    # child table for a page of 100 sessions.
    columns = ["s.*", _PLAN, _STEPS, _ATTEMPTS, _GUIDANCE]
    joins = ""
    if options.include_trajectory_events:
        limit = options.trajectory_event_limit
        total = _EVENT_TOTAL if limit is not None else "e.kept"
        columns.append(f"e.kept, e.all_flat, e.raw, {total} AS event_total")
        joins = _EVENTS
        params.append(limit)
    query = sql.SQL(
        "SELECT " + ", ".join(columns) + " FROM ({page}) AS s " + joins + " "
        "ORDER BY s.created_at DESC, s.id DESC"
    ).format(page=page)
    return Query(query, params)


def _group(sessions: Rows, options: LoadOptions) -> PageRows:
    """Split each page row into the session row and its children, keyed as assembly wants."""
    steps: dict[int, Rows] = {}
    attempts: defaultdict[tuple[int, int], Rows] = defaultdict(list)
    guidance: defaultdict[tuple[int, int], list[str]] = defaultdict(list)
    events: dict[int, Any] = {}
    totals: dict[int, int] = {}
    child_steps: dict[int, set[int]] = {}
    for row in sessions:
        sid = row["id"]
        steps[sid] = row.pop("steps") or []
        children: set[int] = set()
        for attempt in row.pop("attempts") or ():
            attempts[(sid, attempt["step_id"])].append(attempt)
            children.add(attempt["step_id"])
        for note in row.pop("guidance") or ():
            guidance[(sid, note["step_id"])].append(note["note"])
            children.add(note["step_id"])
        if children:
            child_steps[sid] = children
        if options.include_trajectory_events:
            events[sid] = EventBlock(row.pop("raw"), row.pop("all_flat"), row.pop("kept"))
            totals[sid] = row.pop("event_total")
    return PageRows(sessions, steps, attempts, guidance, events, totals, child_steps)


def rows_plan(
    filters: SessionFilters,
    gate: ReviewGate | None,
    options: LoadOptions,
    *,
    size: int,
    after: Cursor | None = None,
    offset: int = 0,
) -> Plan:
    """Fetch one page's rows (one query); returns ``(PageRows or None, next cursor)``."""
    (sessions,) = yield [_page_query(filters, gate, options, size, after, offset)]
    if not sessions:
        return None, None
    last = sessions[-1]
    cursor = (last["created_at"], last["id"]) if len(sessions) == size else None
    return _group(sessions, options), cursor


def page_plan(
    filters: SessionFilters,
    gate: ReviewGate | None,
    options: LoadOptions,
    *,
    size: int,
    after: Cursor | None = None,
    offset: int = 0,
) -> Plan:
    """Fetch and assemble one page; returns a :class:`Page`."""
    rows, cursor = yield from rows_plan(
        filters, gate, options, size=size, after=after, offset=offset
    )
    return Page(assemble_page(rows, options) if rows is not None else [], cursor)


def ids_plan(
    filters: SessionFilters,
    gate: ReviewGate | None,
    options: LoadOptions,
    *,
    size: int,
    after: Cursor | None = None,
    offset: int = 0,
) -> Plan:
    """One page of matching session ids only (keyset); returns ``(ids, next cursor)``."""
    where, params = _keyset_where(filters, gate, after)
    (rows,) = yield [
        Query(
            sql.SQL(
                "SELECT s.id, s.created_at FROM sessions s {where} "
                "ORDER BY s.created_at DESC, s.id DESC LIMIT %s OFFSET %s"
            ).format(where=where),
            [*params, size, offset],
        )
    ]
    if not rows:
        return [], None
    last = rows[-1]
    cursor = (last["created_at"], last["id"]) if len(rows) == size else None
    return [row["id"] for row in rows], cursor


def count_plan(filters: SessionFilters, gates: Sequence[ReviewGate | None]) -> Plan:
    """Count matching sessions under each gate (one pipeline); returns a list of ints."""
    queries = []
    for gate in gates:
        where, params = where_clause(filters, gate)
        queries.append(
            Query(sql.SQL("SELECT count(*) AS n FROM sessions s {}").format(where), params)
        )
    results = yield queries
    return [rows[0]["n"] for rows in results]
