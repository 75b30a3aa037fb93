"""The hand-written SQL the query layer is checked against (the oracle)."""

from __future__ import annotations

from typing import Any

import psycopg


def ids_where(url: str, where: str = "TRUE", params: Any = (), *, tail: str = "") -> list[int]:
    """Ids of ``sessions`` matching ``where``, newest first, as plain SQL computes them."""
    query = f"SELECT id FROM sessions WHERE {where} ORDER BY created_at DESC, id DESC {tail}"
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute(query, params)]  # type: ignore[call-overload]


def scalar(url: str, query: str, params: Any = ()) -> Any:
    """The first column of the first row of ``query``."""
    with psycopg.connect(url) as conn:
        row = conn.execute(query, params).fetchone()  # type: ignore[call-overload]
    return row[0] if row else None
