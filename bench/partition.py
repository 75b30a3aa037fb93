"""The partitioned-events cases: ``db partition-events`` on a copy of the data set, and reads after.

Each interval measured has three cases, all on a copy of the data set's
database made with ``CREATE DATABASE ... TEMPLATE`` (the data set itself is
never changed), named ``<database>_events_<interval>``:

* the conversion, ``partition_events(conn, interval=...)``, timed alone on a
  fresh copy each pass (then ``VACUUM ANALYZE``, as the harness does for the
  data sets), against the COPY of all session tables;
* ``COPY (SELECT * FROM trajectory_events WHERE event ->> 'event_type' = T)``,
  002's filter, on the partitioned copy, against the same COPY on the data
  set (T is the type of the first event, so both layouts have matches);
* the whole-table export on the partitioned copy, against the export of the
  data set.

The copies are left for inspection; ``DROP DATABASE`` them when done.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from atlas.storage.partition import events_layout
from bench.cases import (
    Dataset,
    Measurement,
    create_database,
    database_url,
    drop_database,
    export_whole_table,
)

__all__ = ["convert", "copy_event_type", "export_partitioned"]


def _names(dataset: Dataset, interval: str) -> tuple[str, str, str]:
    """The data set's database, its partitioned copy, and the URL of the server's postgres db."""
    source = urlsplit(dataset.url).path.lstrip("/")
    return source, f"{source}_events_{interval}", database_url(dataset.url, "postgres")


def _copy_database(dataset: Dataset, interval: str) -> str:
    source, copy, admin_url = _names(dataset, interval)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        drop_database(admin, copy)
        create_database(admin, copy, template=source)
    return database_url(dataset.url, copy)


def _partitioned_copy(dataset: Dataset, interval: str) -> str:
    """The partitioned copy's URL, made (untimed) if an earlier case did not make it."""
    _, copy, admin_url = _names(dataset, interval)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (copy,)).fetchone()
    url = database_url(dataset.url, copy)
    if found:
        with psycopg.connect(url, autocommit=True) as conn:
            if events_layout(conn).partitioned:
                return url
    convert(dataset, interval)
    return url


def convert(dataset: Dataset, interval: str) -> Measurement:
    """Copy the data set's database, then time ``partition_events`` on the copy."""
    from atlas.storage.partition import partition_events

    url = _copy_database(dataset, interval)
    with psycopg.connect(url, autocommit=True) as conn:
        size = conn.execute("SELECT pg_total_relation_size('trajectory_events')").fetchone()
        started = time.perf_counter()
        done = partition_events(conn, interval=interval)
        seconds = time.perf_counter() - started
        conn.execute("VACUUM ANALYZE")
    print(
        f"partition-events --interval {interval}: {done.rows:,} events into "
        f"{len(done.partitions)} partitions in {seconds:.1f} s",
        file=sys.stderr,
    )
    return Measurement(seconds, dataset.sessions, int(size[0]) if size else 0)


def _event_type(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute(
        "SELECT event ->> 'event_type' FROM trajectory_events ORDER BY id LIMIT 1"
    ).fetchone()
    return str(row[0]) if row else ""


def copy_event_type(dataset: Dataset, interval: str | None) -> Measurement:
    """COPY the events of one type (002's ``event ->> 'event_type'`` filter) to the client.

    On the data set itself when ``interval`` is None, else on its partitioned copy.
    """
    url = dataset.url if interval is None else _partitioned_copy(dataset, interval)
    with psycopg.connect(dataset.url, autocommit=True) as conn:
        wanted = _event_type(conn)
    query = sql.SQL(
        "COPY (SELECT * FROM trajectory_events WHERE event ->> 'event_type' = {}) TO STDOUT"
    ).format(sql.Literal(wanted))
    total = 0
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        with cur.copy(query) as copy:
            for block in copy:
                total += len(block)
        return Measurement(time.perf_counter() - started, dataset.sessions, total)


def export_partitioned(dataset: Dataset, interval: str) -> Measurement:
    """The whole-table export (all review statuses) of the partitioned copy."""
    return export_whole_table(replace(dataset, url=_partitioned_copy(dataset, interval)))
