"""The benchmark cases. Each runs in a fresh subprocess so its peak memory is its own.

A case is a function ``(conn_url, dataset) -> Measurement``. The reference case
streams every session table with ``COPY ... TO STDOUT`` and throws the bytes
away: that is what PostgreSQL itself can hand out, and every other case is
reported as its throughput divided by the reference's, measured in the same run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

__all__ = ["CASES", "REFERENCE", "Dataset", "Measurement", "copy_reference"]

SESSION_TABLES = (
    "sessions",
    "plans",
    "step_results",
    "step_attempts",
    "guidance_notes",
    "trajectory_events",
)


@dataclass(frozen=True)
class Dataset:
    """The data set a run measures: where it is and how big."""

    url: str
    sessions: int
    bytes_on_disk: int


@dataclass(frozen=True)
class Measurement:
    """One timed pass of a case."""

    seconds: float
    sessions: int
    bytes_out: int


def copy_reference(url: str, dataset: Dataset) -> Measurement:
    """COPY every session table to the client and discard it (the reference)."""
    total = 0
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        # One snapshot for all tables, as an export would use.
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            with conn.cursor() as cur:
                for table in SESSION_TABLES:
                    with cur.copy(f"COPY {table} TO STDOUT") as copy:
                        for block in copy:
                            total += len(block)
        seconds = time.perf_counter() - started
    return Measurement(seconds, dataset.sessions, total)


REFERENCE = "reference: COPY TO STDOUT"
CASES: dict[str, Callable[[str, Dataset], Measurement]] = {REFERENCE: copy_reference}
