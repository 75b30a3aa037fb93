"""Writers and reviewers at work while a test reads: for the incremental-export tests.

Imported by name (the test folders are not packages).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from atlas.storage import seed_sessions
from atlas.training_data import review_sessions


@contextmanager
def writers_and_reviewers(db_url: str, *, seed: int, approve: float) -> Iterator[None]:
    """While the block runs, one thread adds sessions and another reviews the pending ones.

    A reviewed session becomes ``approved`` with probability ``approve``, else
    ``quarantined``. On exit both stop, and any error they met is raised here.
    """
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with psycopg.connect(db_url, autocommit=True) as conn:
                n = 0
                while not stop.is_set():
                    n += 1
                    seed_sessions(conn, 2, seed=seed + n)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def reviewer() -> None:
        rng = random.Random(seed)
        try:
            with psycopg.connect(db_url, autocommit=True) as conn:
                while not stop.is_set():
                    rows = conn.execute(
                        "SELECT id FROM sessions WHERE review_status = 'pending' LIMIT 20"
                    ).fetchall()
                    for (sid,) in rows:
                        status = "approved" if rng.random() < approve else "quarantined"
                        review_sessions(conn, status, session_ids=[sid], reviewer="bot")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer), threading.Thread(target=reviewer)]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
