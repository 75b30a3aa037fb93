"""The queries behind a page of sessions, as a generator that does no I/O.

:func:`page_plan` yields batches of :class:`Query` and receives their rows;
the sync and async drivers in :mod:`atlas.training_data.drivers` do the
talking. A page costs two round trips whatever its size: the page of session
rows, then every child table for the whole page in one pipeline.

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
from atlas.training_data.assembly import EventBlock, LoadOptions, PageRows, assemble_page
from atlas.training_data.filters import SessionFilters, where_clause
from atlas.training_data.review_gate import ReviewGate

__all__ = ["Cursor", "Page", "Query", "count_plan", "page_plan", "rows_plan"]

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


_SESSION_COLUMNS = (
    "s.id, s.task, s.status, s.metadata, s.final_answer, s.reward, s.reward_stats, "
    "s.reward_audit, {learning}, s.review_status, s.review_notes, s.created_at, "
    "s.completed_at, p.plan"
)


def _page_query(
    filters: SessionFilters,
    gate: ReviewGate | None,
    options: LoadOptions,
    size: int,
    after: Cursor | None,
    offset: int,
) -> Query:
    where, params = where_clause(filters, gate)
    if after is not None:
        keyset = sql.SQL("(s.created_at, s.id) < (%s, %s)")
        where = sql.SQL(" AND ").join([where, keyset]) if params else sql.SQL("WHERE ") + keyset
        params = [*params, after[0], after[1]]
    learning = (
        "s.student_learning, s.teacher_learning"
        if options.include_learning_data
        else "NULL::text AS student_learning, NULL::text AS teacher_learning"
    )
    query = sql.SQL(
        "SELECT " + _SESSION_COLUMNS.format(learning=learning) + " FROM sessions s "
        "LEFT JOIN plans p ON p.session_id = s.id {where} "
        "ORDER BY s.created_at DESC, s.id DESC LIMIT %s OFFSET %s"
    ).format(where=where)
    return Query(query, [*params, size, offset])


_FLAT = (
    "(jsonb_typeof({t}.event) = 'object' "
    "AND {t}.event ?& ARRAY['event_type', 'actor', 'name', 'timestamp', 'step_id', 'payload'] "
    "AND jsonb_typeof({t}.event -> 'timestamp') IN ('string', 'null'))"
)


def _child_queries(ids: list[int], options: LoadOptions) -> list[Query]:
    queries = [
        Query(
            sql.SQL(
                "SELECT session_id, step_id, trace, output, evaluation, attempts, metadata "
                "FROM step_results WHERE session_id = ANY(%s) ORDER BY session_id, step_id"
            ),
            [ids],
        ),
        Query(
            sql.SQL(
                "SELECT session_id, step_id, attempt, evaluation FROM step_attempts "
                "WHERE session_id = ANY(%s) ORDER BY session_id, step_id, attempt"
            ),
            [ids],
        ),
        Query(
            sql.SQL(
                "SELECT session_id, step_id, note FROM guidance_notes "
                "WHERE session_id = ANY(%s) ORDER BY session_id, step_id, sequence"
            ),
            [ids],
        ),
    ]
    if not options.include_trajectory_events:
        return queries
    # One row per session: its events (the first `limit` of them, if limited)
    # as one JSON array in chronological order, whether they are all complete
    # flat envelopes (then the exporter passes the text through untouched),
    # and how many the session has in all.
    limit = options.trajectory_event_limit
    total = (
        "(SELECT count(*) FROM trajectory_events c WHERE c.session_id = ids.sid)"
        if limit is not None
        else "e.kept"
    )
    events = Query(
        sql.SQL(
            "SELECT ids.sid AS session_id, e.kept, e.all_flat, e.raw, " + total + " AS total "
            "FROM unnest(%s::int[]) AS ids(sid) CROSS JOIN LATERAL ("
            "SELECT count(*) AS kept, COALESCE(bool_and(" + _FLAT.format(t="t") + "), true) "
            "AS all_flat, '[' || string_agg(t.event::text, ',' ORDER BY t.created_at, t.id) "
            "|| ']' AS raw FROM (SELECT event, created_at, id FROM trajectory_events "
            "WHERE session_id = ids.sid ORDER BY created_at, id LIMIT %s) AS t) AS e"
        ),
        [ids, limit],
    )
    queries.append(events)
    return queries


def _group(sessions: Rows, children: list[Rows]) -> PageRows:
    steps: defaultdict[int, Rows] = defaultdict(list)
    attempts: defaultdict[tuple[int, int], Rows] = defaultdict(list)
    guidance: defaultdict[tuple[int, int], list[str]] = defaultdict(list)
    events: dict[int, Any] = {}
    totals: dict[int, int] = {}
    for row in children[0]:
        steps[row["session_id"]].append(row)
    for row in children[1]:
        attempts[(row["session_id"], row["step_id"])].append(row)
    for row in children[2]:
        guidance[(row["session_id"], row["step_id"])].append(row["note"])
    if len(children) > 3:
        for row in children[3]:
            sid = row["session_id"]
            events[sid] = EventBlock(row["raw"], row["all_flat"], row["kept"])
            totals[sid] = row["total"]
    return PageRows(sessions, steps, attempts, guidance, events, totals)


def rows_plan(
    filters: SessionFilters,
    gate: ReviewGate | None,
    options: LoadOptions,
    *,
    size: int,
    after: Cursor | None = None,
    offset: int = 0,
) -> Plan:
    """Fetch one page's rows; returns ``(PageRows or None, next cursor)``."""
    (sessions,) = yield [_page_query(filters, gate, options, size, after, offset)]
    if not sessions:
        return None, None
    ids = [row["id"] for row in sessions]
    children = yield _child_queries(ids, options)
    last = sessions[-1]
    cursor = (last["created_at"], last["id"]) if len(sessions) == size else None
    return _group(sessions, children), cursor


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
