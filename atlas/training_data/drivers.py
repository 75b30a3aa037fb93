"""Run the query plans of :mod:`atlas.training_data.plan` on a connection, sync or async.

Each yielded batch of queries is sent in one pipeline: one network round trip.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from atlas.training_data.plan import Plan, Query

__all__ = ["drive", "drive_async"]


def _single(conn: psycopg.Connection[Any], query: Query) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query.sql, query.params)
        return cur.fetchall()


def drive(conn: psycopg.Connection[Any], plan: Plan) -> Any:
    """Run ``plan`` to completion on a sync connection and return its result."""
    try:
        batch = next(plan)
        while True:
            if len(batch) == 1:
                results = [_single(conn, batch[0])]
            else:
                with conn.pipeline():
                    cursors = [conn.cursor(row_factory=dict_row) for _ in batch]
                    for cur, query in zip(cursors, batch, strict=True):
                        cur.execute(query.sql, query.params)
                    results = [cur.fetchall() for cur in cursors]
                for cur in cursors:
                    cur.close()
            batch = plan.send(results)
    except StopIteration as done:
        return done.value


async def drive_async(conn: psycopg.AsyncConnection[Any], plan: Plan) -> Any:
    """Run ``plan`` to completion on an async connection and return its result."""
    try:
        batch = next(plan)
        while True:
            async with conn.pipeline():
                cursors = [conn.cursor(row_factory=dict_row) for _ in batch]
                for cur, query in zip(cursors, batch, strict=True):
                    await cur.execute(query.sql, query.params)
                results = [await cur.fetchall() for cur in cursors]
            for cur in cursors:
                await cur.close()
            batch = plan.send(results)
    except StopIteration as done:
        return done.value
