"""Incremental exports: each run takes exactly the sessions that became eligible since the last.

The watermark is a PostgreSQL snapshot, not a time. Every change to a session
stamps ``sessions.changed_xid`` with the id of the transaction that made it
(migration 0006). A run reads in one snapshot and records it in the state
file; the next run's candidates are the sessions whose last change that
snapshot could not see::

    changed_xid >= pg_snapshot_xmin(previous)            -- served by sessions_changed_xid_idx
    AND NOT pg_visible_in_snapshot(changed_xid, previous)

That holds under concurrent writes and reviews: a transaction still running
when the previous run read is invisible to its snapshot, so its sessions are
candidates next time however late it commits; nothing committed before is.
Candidates must still pass the filters and the review gate now, and sessions
already exported (their ids are kept in the state, as ranges) are never
exported again. The cost is proportional to what changed since the last run.

The state file is JSON, replaced atomically (a temporary file, fsync, rename)
and only once the output is complete: an interrupted run changes nothing, and
the next run exports what it would have.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import psycopg
from typing_extensions import Unpack

from atlas.errors import ConfigError, InvalidFilter, OutputError
from atlas.runtime.traces import AtlasSessionTrace
from atlas.training_data.filters import whole_number
from atlas.training_data.flows import pager_flow, run_flow
from atlas.training_data.output import place_file, stage_file
from atlas.training_data.query import TrainingFilters, TrainingQuery
from atlas.training_data.targets import ConfigArg, SyncTarget, connection, reader_config

__all__ = [
    "STATE_VERSION",
    "ExportState",
    "IdRanges",
    "IncrementalRun",
    "candidate_ids",
    "iter_new_sessions",
    "read_snapshot",
    "start_run",
]

STATE_VERSION = 1


class IdRanges:
    """Session ids as sorted, merged ``[first, last]`` ranges (compact for SERIAL ids)."""

    def __init__(self, ranges: Iterable[Iterable[int]] = ()) -> None:
        self._ranges: list[list[int]] = []
        self._merge([(int(first), int(last)) for first, last in ranges])

    def _merge(self, pairs: list[tuple[int, int]]) -> None:
        """Merge ``pairs`` into the ranges: one sort and one pass, whatever their number."""
        merged: list[list[int]] = []
        for first, last in sorted([*((lo, hi) for lo, hi in self._ranges), *pairs]):
            if merged and first <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], last)
            else:
                merged.append([first, last])
        self._ranges = merged

    def add_range(self, first: int, last: int) -> None:
        self._merge([(first, last)])

    def update(self, ids: Iterable[int]) -> None:
        self._merge([(i, i) for i in ids])

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int):
            return False
        lo, hi = 0, len(self._ranges)
        while lo < hi:
            mid = (lo + hi) // 2
            first, last = self._ranges[mid]
            if value < first:
                hi = mid
            elif value > last:
                lo = mid + 1
            else:
                return True
        return False

    def __len__(self) -> int:
        return sum(last - first + 1 for first, last in self._ranges)

    def to_json(self) -> list[list[int]]:
        return [list(r) for r in self._ranges]


@dataclass
class ExportState:
    """What an incremental export remembers between runs.

    ``snapshot`` is the ``pg_snapshot`` the last run read in (None before the
    first run); ``exported`` the ids written so far; ``selection`` a digest
    of the filters, so a state is never reused for another selection.
    """

    path: Path
    database: str
    selection: str
    snapshot: str | None = None
    exported: IdRanges = field(default_factory=IdRanges)
    runs: int = 0
    updated_at: str | None = None

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, database: str, selection: str) -> ExportState:
        """The state in ``path``, or a fresh one when the file does not exist.

        Raises :class:`ConfigError` for a file that is not a state, or one
        written for another database or another selection.
        """
        target = Path(path)
        if not target.exists():
            return cls(target, database, selection)
        try:
            data = orjson.loads(target.read_bytes())
            if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
                raise ValueError("not an arc-atlas export state")
            state = cls(
                target,
                str(data["database"]),
                str(data["selection"]),
                data.get("snapshot"),
                IdRanges(data.get("exported") or []),
                int(data.get("runs") or 0),
                data.get("updated_at"),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"State file {target} cannot be read ({exc}): pass another --state, or remove "
                "it to export everything again."
            ) from None
        if not same_database(state.database, database):
            raise ConfigError(
                f"State file {target} belongs to another database: pass a --state file of "
                "its own for each database (a primary and its standbys share one)."
            )
        if "@" in database:
            state.database = database  # a state written before the system identifier gets it
        if state.selection != selection:
            raise ConfigError(
                f"State file {target} was written for other filters: pass the same filters as "
                "its first run, or a new --state file."
            )
        return state

    def advance(self, snapshot: str, ids: Iterable[int]) -> None:
        """Record a completed run: the snapshot it read in and the ids it wrote."""
        self.snapshot = snapshot
        self.exported.update(ids)
        self.runs += 1
        self.updated_at = datetime.now(timezone.utc).isoformat()

    def check_writable(self) -> None:
        """Raise :class:`OutputError` now if the state file could not be replaced later."""
        try:
            handle, temp = tempfile.mkstemp(
                prefix=f".{self.path.name}.", suffix=".check", dir=self.path.parent
            )
            os.close(handle)
            os.unlink(temp)
        except OSError as exc:
            raise OutputError(
                f"State file {self.path} cannot be written ({exc.strerror or exc}): pass a "
                "--state path in a folder you can write."
            ) from None

    def prepare(self) -> Path:
        """Write the state to a temporary file beside it (fsync'd); :meth:`commit` renames it."""
        payload = {
            "version": STATE_VERSION,
            "database": self.database,
            "selection": self.selection,
            "snapshot": self.snapshot,
            "runs": self.runs,
            "updated_at": self.updated_at,
            "exported_count": len(self.exported),
            "exported": self.exported.to_json(),
        }
        return stage_file(self.path, orjson.dumps(payload, option=orjson.OPT_INDENT_2))

    def commit(self, prepared: Path) -> None:
        """Replace the state file with ``prepared`` in one rename."""
        place_file(prepared, self.path)

    def save(self) -> None:
        """Replace the file atomically: a temporary file beside it, fsync, rename."""
        self.commit(self.prepare())


def selection_digest(filters: dict[str, Any]) -> str:
    """A stable digest of the filters that define an incremental selection."""
    given = {k: v for k, v in sorted(filters.items()) if v not in (None, False)}
    return hashlib.sha256(orjson.dumps(given, default=str, option=orjson.OPT_SORT_KEYS)).hexdigest()


def database_identity(conn: psycopg.Connection[Any]) -> str:
    """This database, however it is reached: ``name/oid@system identifier``.

    A primary and its physical standbys are one database here: they share
    the system identifier (``pg_control_system()``), the database's oid and
    the transaction ids a watermark is made of, so a state may move between
    them. Another cluster (even with a database of the same name and oid,
    as a copy restored elsewhere) has another identifier. Where a role may
    not run ``pg_control_system()`` the identity is ``name/oid``.
    """
    row = conn.execute(
        "SELECT current_database() || '/' || oid::text, "
        "has_function_privilege('pg_control_system()', 'EXECUTE') FROM pg_database "
        "WHERE datname = current_database()"
    ).fetchone()
    assert row is not None
    identity, may_read_system = row
    if may_read_system:
        system = conn.execute("SELECT system_identifier::text FROM pg_control_system()").fetchone()
        assert system is not None
        identity = f"{identity}@{system[0]}"
    return str(identity)


def same_database(stored: str, current: str) -> bool:
    """Whether a state's ``database`` is ``current``; the system identifier counts when both
    have one (states written before it was recorded have ``name/oid`` only)."""
    stored_name, _, stored_system = stored.partition("@")
    name, _, system = current.partition("@")
    return stored_name == name and (not stored_system or not system or stored_system == system)


def read_snapshot(conn: psycopg.Connection[Any]) -> str:
    """The watermark of ``conn``'s REPEATABLE READ transaction, as ``pg_snapshot`` text.

    On a primary, its snapshot (``pg_current_snapshot()``). On a hot
    standby PostgreSQL's ``pg_current_snapshot()`` leaves out the
    transactions still running on the primary (a standby's snapshot keeps
    them where that function does not look), which would read as committed
    and be skipped by every later run; the watermark there is
    ``xmin:xmin:`` instead: every transaction from the oldest still running
    on counts as unseen, so the next run re-checks the sessions they changed
    (those already exported stay out: their ids are in the state).
    """
    row = conn.execute(
        "SELECT pg_current_snapshot()::text, pg_snapshot_xmin(pg_current_snapshot())::text, "
        "pg_is_in_recovery()"
    ).fetchone()
    assert row is not None
    snapshot, xmin, standby = row
    return f"{xmin}:{xmin}:" if standby else str(snapshot)


def candidate_ids(conn: psycopg.Connection[Any], previous: str) -> Iterator[int]:
    """Ids of sessions whose last change the snapshot ``previous`` could not see."""
    try:
        cursor = conn.execute(
            "SELECT id FROM sessions WHERE changed_xid >= pg_snapshot_xmin(%s::pg_snapshot) "
            "AND NOT pg_visible_in_snapshot(changed_xid, %s::pg_snapshot) ORDER BY id",
            (previous, previous),
        )
    except psycopg.errors.InvalidTextRepresentation:
        raise InvalidFilter(
            f"The state's snapshot {previous[:40]!r} is not a PostgreSQL snapshot.",
            parameter="state",
        ) from None
    for (sid,) in cursor:
        yield int(sid)


@dataclass
class IncrementalRun:
    """One run of an incremental export, inside the reading transaction.

    ``session_ids`` is None on the first run (everything that matches), else
    the sessions new since the last run (possibly none). :meth:`finish`
    records the ids written and saves the state: call it only once the
    output is complete.
    """

    state: ExportState
    snapshot: str
    session_ids: list[int] | None

    def finish(self, written: Iterable[int]) -> None:
        self.state.advance(self.snapshot, written)
        self.state.save()

    def prepare(self, written: Iterable[int]) -> Path:
        """Advance the state and write it beside the file, not yet in place (see commit)."""
        self.state.advance(self.snapshot, written)
        return self.state.prepare()


def start_run(
    conn: psycopg.Connection[Any], path: str | os.PathLike[str], filters: dict[str, Any]
) -> IncrementalRun:
    """Load the state at ``path`` and list this run's sessions, in ``conn``'s snapshot.

    ``conn`` is in the REPEATABLE READ transaction the run reads in. The
    window filters (``limit``, ``offset``) are refused: a run must take every
    new session, or the next would skip the rest.
    """
    for name in ("limit", "offset"):
        if filters.get(name) not in (None, 0):
            raise InvalidFilter(
                f"{name} cannot be combined with an incremental export (state): each run "
                "takes every session that became eligible.",
                parameter=name,
            )
    state = ExportState.load(
        path, database=database_identity(conn), selection=selection_digest(filters)
    )
    state.check_writable()
    snapshot = read_snapshot(conn)
    if state.snapshot is None:
        return IncrementalRun(state, snapshot, None)
    ids = [i for i in candidate_ids(conn, state.snapshot) if i not in state.exported]
    wanted = filters.get("session_ids")
    if wanted is not None:
        given = {wanted} if isinstance(wanted, int) else set(wanted)
        ids = [i for i in ids if i in given]
    return IncrementalRun(state, snapshot, ids)


def iter_new_sessions(
    db_url: SyncTarget = None,
    *,
    state: str | os.PathLike[str],
    config: ConfigArg = None,
    batch_size: int = 100,
    **filters: Unpack[TrainingFilters],
) -> Iterator[AtlasSessionTrace]:
    """The sessions that became eligible since the last run with this ``state`` file.

    The first run yields every session matching ``filters`` (and the review
    gate); each later run only those that finished, were approved or
    otherwise changed into the selection since, and never one yielded
    before. All are read in one snapshot. The state file is saved when the
    iteration is complete; stopping early leaves it unchanged, so the next
    run yields the same sessions again.
    """
    cfg = reader_config(config)
    TrainingQuery.build(config=cfg, **filters)  # every filter checked before connecting
    size = whole_number(batch_size, "batch_size", minimum=1)
    with connection(db_url, cfg) as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        run = start_run(conn, state, dict(filters))
        selection = dict(filters)
        if run.session_ids is not None:
            if not run.session_ids:
                run.finish([])
                return
            selection["session_ids"] = run.session_ids
        query = TrainingQuery.build(config=cfg, **selection)  # type: ignore[arg-type]
        written: list[int] = []
        # A later run that finds nothing new is the usual case, not the gate's doing.
        explain = run.session_ids is None
        for page in run_flow(conn, pager_flow(query, size, explain_empty=explain)):
            for trace in page:
                yield trace
                if trace.session_id is not None:
                    written.append(trace.session_id)
        run.finish(written)
