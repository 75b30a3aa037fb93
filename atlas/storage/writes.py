"""What each session write sends to PostgreSQL, as data (no I/O here).

Every public function returns a :class:`WriteOp`: the statements of one
logical write, run by :mod:`atlas.storage.writer` in one transaction and one
pipeline (a single network round trip). Keeping the SQL and the value
encoding here means the sync and async writers cannot drift apart, and the
encoding is tested without a database.
"""

from __future__ import annotations

import getpass
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from typing_extensions import Required, TypedDict

from atlas.config.models import REVIEW_STATUSES
from atlas.errors import InvalidFilter
from atlas.storage.events import event_timestamp, to_envelope
from atlas.storage.jsonenc import clean_text, dumps

__all__ = [
    "HEARTBEAT_KEY",
    "MAX_RECOVER_AGE",
    "SESSION_STATUSES",
    "AttemptRecord",
    "Statement",
    "StepRecord",
    "WriteOp",
    "append_events",
    "create_session",
    "finalize_session",
    "heartbeat",
    "record_discovery_run",
    "record_plan",
    "record_reward",
    "record_step",
    "recover_stale_sessions",
    "set_review_status",
    "update_metadata",
    "upsert_learning",
]

SESSION_STATUSES: tuple[str, ...] = ("running", "succeeded", "failed")
# The metadata key a running session's heartbeat is kept under.
HEARTBEAT_KEY = "heartbeat_at"
# The longest idle time `recover_stale_sessions` accepts: now() minus anything
# much longer leaves PostgreSQL's timestamp range, and nothing idles a century.
MAX_RECOVER_AGE = timedelta(days=36500)


@dataclass(frozen=True)
class Statement:
    """One SQL statement with its bound parameters (never interpolated)."""

    sql: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WriteOp:
    """The statements of one logical write.

    ``returns``: the op's value is the first cell of the last statement's first row.
    """

    statements: tuple[Statement, ...]
    returns: bool = False


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt at a step: its number and the Teacher's evaluation of it."""

    attempt: int
    evaluation: Any = None


@dataclass(frozen=True)
class StepRecord:
    """A completed step as the runtime hands it to the writer.

    ``evaluation`` holds the Teacher's validation and the judges' reward
    (``{"validation": {...}, "reward": {...}}``); ``metadata`` holds the
    step's runtime, attempt history, artifacts, deliverable and so on.
    """

    step_id: int
    trace: str | None = None
    output: str | None = None
    evaluation: Any = None
    metadata: Mapping[str, Any] | None = None
    attempts: Sequence[AttemptRecord | Mapping[str, Any]] = ()
    guidance: Sequence[str] = ()


def _json(value: Any) -> str | None:
    return None if value is None else dumps(value)


def _check_status(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise InvalidFilter(f"{what} must be one of {', '.join(allowed)}; got {value!r}.")
    return value


def _numeric_score(stats: Any) -> Any:
    """Keep ``reward_stats.score`` numeric: the reward index casts it to float."""
    if not isinstance(stats, Mapping) or "score" not in stats:
        return stats
    score = stats["score"]
    if score is None:
        return stats
    # Same rule as migration 0002: booleans, NaN and infinities are not scores
    # (JSON has no NaN, so the encoder would silently turn it into null).
    number: float | None = None
    if not isinstance(score, bool):
        try:
            number = float(score)
        except (TypeError, ValueError):
            number = None
    if number is None or not math.isfinite(number):
        return {k: v for k, v in stats.items() if k != "score"} | {"score_raw": score}
    if isinstance(score, (int, float)):
        return stats
    return {**stats, "score": number}


class SessionOptions(TypedDict, total=False):
    """Keywords of :func:`create_session` (and the writers' ``create_session``)."""

    status: str
    review_status: str
    created_at: datetime | None


class RewardFields(TypedDict, total=False):
    """Keywords of :func:`record_reward`."""

    reward: Any
    reward_stats: Any
    reward_audit: Any
    student_learning: str | None
    teacher_learning: str | None


class ReviewOptions(TypedDict, total=False):
    """Keywords of :func:`set_review_status`."""

    notes: str | None
    reviewer: str | None
    at: datetime | None
    only_running: bool


class FinalizeFields(TypedDict, total=False):
    """Keywords of :func:`finalize_session` (``status`` is required)."""

    status: Required[str]
    final_answer: str | None
    metadata: Mapping[str, Any] | None
    completed_at: datetime | None


class LearningFields(TypedDict, total=False):
    """Keywords of :func:`upsert_learning` (both notes are required)."""

    student_learning: Required[str | None]
    teacher_learning: Required[str | None]
    metadata: Mapping[str, Any] | None


class DiscoveryFields(TypedDict, total=False):
    """Keywords of :func:`record_discovery_run`."""

    project_root: Required[str]
    task: Required[str | None]
    payload: Required[Mapping[str, Any]]
    metadata: Mapping[str, Any] | None
    source: str


def create_session(
    task: str,
    metadata: Mapping[str, Any] | None = None,
    *,
    status: str = "running",
    review_status: str = "pending",
    created_at: datetime | None = None,
) -> WriteOp:
    """Insert a session row; the op returns its new id."""
    return WriteOp(
        (
            Statement(
                "INSERT INTO sessions (task, status, review_status, metadata, created_at) "
                "VALUES (%(task)s, %(status)s, %(review)s, %(metadata)s::jsonb, "
                "COALESCE(%(created_at)s, now())) RETURNING id",
                {
                    "task": clean_text(task),
                    "status": _check_status(status, SESSION_STATUSES, "status"),
                    "review": _check_status(review_status, REVIEW_STATUSES, "review_status"),
                    "metadata": dumps(dict(metadata or {})),
                    "created_at": created_at,
                },
            ),
        ),
        returns=True,
    )


def record_plan(session_id: int, plan: Any) -> WriteOp:
    """Insert or replace the session's plan."""
    return WriteOp(
        (
            Statement(
                "INSERT INTO plans (session_id, plan) VALUES (%(sid)s, %(plan)s::jsonb) "
                "ON CONFLICT (session_id) DO UPDATE SET plan = EXCLUDED.plan",
                {"sid": session_id, "plan": _json(plan)},
            ),
        )
    )


def _attempt(item: AttemptRecord | Mapping[str, Any], index: int) -> tuple[int, str | None]:
    if isinstance(item, AttemptRecord):
        return item.attempt, _json(item.evaluation)
    number = item.get("attempt", index + 1)
    return int(number), _json(item.get("evaluation"))


def record_step(session_id: int, step: StepRecord) -> WriteOp:
    """Upsert a step result and replace its attempts and guidance, all in one transaction."""
    attempts = [_attempt(item, i) for i, item in enumerate(step.attempts)]
    key = {"sid": session_id, "step": step.step_id}
    return WriteOp(
        (
            Statement(
                "INSERT INTO step_results "
                "(session_id, step_id, trace, output, evaluation, attempts, metadata) "
                "VALUES (%(sid)s, %(step)s, %(trace)s, %(output)s, %(evaluation)s::jsonb, "
                "%(attempts)s, %(metadata)s::jsonb) "
                "ON CONFLICT (session_id, step_id) DO UPDATE SET trace = EXCLUDED.trace, "
                "output = EXCLUDED.output, evaluation = EXCLUDED.evaluation, "
                "attempts = EXCLUDED.attempts, metadata = EXCLUDED.metadata",
                {
                    **key,
                    "trace": clean_text(step.trace),
                    "output": clean_text(step.output),
                    "evaluation": _json(step.evaluation),
                    "attempts": max(len(attempts), 1),
                    "metadata": _json(dict(step.metadata) if step.metadata is not None else None),
                },
            ),
            Statement(
                "DELETE FROM step_attempts WHERE session_id = %(sid)s AND step_id = %(step)s", key
            ),
            Statement(
                "INSERT INTO step_attempts (session_id, step_id, attempt, evaluation) "
                "SELECT %(sid)s, %(step)s, a.attempt, a.evaluation::jsonb "
                "FROM unnest(%(numbers)s::int[], %(evaluations)s::text[]) "
                "AS a(attempt, evaluation)",
                {
                    **key,
                    "numbers": [a[0] for a in attempts],
                    "evaluations": [a[1] for a in attempts],
                },
            ),
            Statement(
                "DELETE FROM guidance_notes WHERE session_id = %(sid)s AND step_id = %(step)s", key
            ),
            Statement(
                "INSERT INTO guidance_notes (session_id, step_id, sequence, note) "
                "SELECT %(sid)s, %(step)s, g.sequence, g.note "
                "FROM unnest(%(notes)s::text[]) WITH ORDINALITY AS g(note, sequence)",
                {**key, "notes": [clean_text(str(note)) for note in step.guidance]},
            ),
        )
    )


def append_events(session_id: int, events: Iterable[Mapping[str, Any]]) -> WriteOp:
    """Append trajectory events as flat envelopes, in order, with one statement for the batch.

    ``created_at`` is the event's own timestamp when it has one, else the time
    of the write, so chronological order survives batching.
    """
    envelopes = [to_envelope(event, iso_timestamp=True) for event in events]
    return WriteOp(
        (
            Statement(
                "INSERT INTO trajectory_events (session_id, event, created_at) "
                "SELECT %(sid)s, e.event::jsonb, COALESCE(e.at, now()) "
                "FROM unnest(%(events)s::text[], %(times)s::timestamptz[]) "
                "WITH ORDINALITY AS e(event, at, n) ORDER BY e.n",
                {
                    "sid": session_id,
                    "events": [dumps(envelope) for envelope in envelopes],
                    "times": [event_timestamp(envelope) for envelope in envelopes],
                },
            ),
        )
    )


def record_reward(
    session_id: int,
    *,
    reward: Any = None,
    reward_stats: Any = None,
    reward_audit: Any = None,
    student_learning: str | None = None,
    teacher_learning: str | None = None,
) -> WriteOp:
    """Set the session's reward columns and learning notes; arguments left None stay as they are."""
    return WriteOp(
        (
            Statement(
                "UPDATE sessions SET reward = COALESCE(%(reward)s::jsonb, reward), "
                "reward_stats = COALESCE(%(stats)s::jsonb, reward_stats), "
                "reward_audit = COALESCE(%(audit)s::jsonb, reward_audit), "
                "student_learning = COALESCE(%(student)s, student_learning), "
                "teacher_learning = COALESCE(%(teacher)s, teacher_learning) "
                "WHERE id = %(sid)s",
                {
                    "sid": session_id,
                    "reward": _json(reward),
                    "stats": _json(_numeric_score(reward_stats)),
                    "audit": _json(reward_audit),
                    "student": clean_text(student_learning),
                    "teacher": clean_text(teacher_learning),
                },
            ),
        )
    )


# Merging into metadata that an older writer left as a non-object (a string,
# an array) would fail; such a value is kept under "legacy_metadata".
_OBJECT_METADATA = (
    "(CASE WHEN jsonb_typeof(metadata) = 'object' THEN metadata "
    "WHEN metadata IS NULL OR metadata = 'null'::jsonb THEN '{}'::jsonb "
    "ELSE jsonb_build_object('legacy_metadata', metadata) END)"
)
_MERGE_METADATA = f"{_OBJECT_METADATA} || %(patch)s::jsonb"

# A heartbeat is UTC text of one fixed width (2026-01-31T12:00:00.000000Z),
# written from the server's clock, so SQL can compare two of them as strings
# (in the "C" collation, where that is time order) and never has to cast
# metadata text to timestamptz: a cast of a malformed value would fail the
# whole statement, a comparison cannot. A value not of that shape is ignored.
_HEARTBEAT_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'
_HEARTBEAT_SHAPE = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[.][0-9]{6}Z$"
# The row `arc-atlas db recover` marked failed (see recover_stale_sessions).
_INTERRUPTED = "(status = 'failed' AND metadata -> 'interrupted' IS NOT NULL)"


def _utc_text(timestamp_sql: str) -> str:
    return f"to_char(({timestamp_sql}) AT TIME ZONE 'UTC', '{_HEARTBEAT_FORMAT}')"


def heartbeat(session_id: int) -> WriteOp:
    """Record that the process running the session is alive (``metadata.heartbeat_at``).

    Only a ``running`` session is touched: a heartbeat arriving after the
    session ended changes nothing.
    """
    return WriteOp(
        (
            Statement(
                f"UPDATE sessions SET metadata = {_OBJECT_METADATA} || "
                f"jsonb_build_object('{HEARTBEAT_KEY}', {_utc_text('now()')}) "
                "WHERE id = %(sid)s AND status = 'running'",
                {"sid": session_id},
            ),
        )
    )


def update_metadata(session_id: int, patch: Mapping[str, Any]) -> WriteOp:
    """Merge ``patch`` into the session's metadata (top-level keys replace)."""
    return WriteOp(
        (
            Statement(
                f"UPDATE sessions SET metadata = {_MERGE_METADATA} WHERE id = %(sid)s",
                {"sid": session_id, "patch": dumps(dict(patch))},
            ),
        )
    )


def set_review_status(
    session_ids: Sequence[int],
    status: str,
    *,
    notes: str | None = None,
    reviewer: str | None = None,
    at: datetime | None = None,
    only_running: bool = False,
) -> WriteOp:
    """Set the review status (and notes) of sessions, recording who and when in metadata.

    Each change appends ``{"status", "reviewer", "at", "note"}`` to
    ``metadata.review_history`` so a dataset can be traced to its approvals.
    ``only_running=True`` changes only sessions still ``running``: the
    runtime's own verdict at the end of a run, which must not land on a
    session ``arc-atlas db recover`` has meanwhile failed. The op returns the
    number of sessions changed.
    """
    _check_status(status, REVIEW_STATUSES, "review status")
    running = "AND status = 'running' " if only_running else ""
    entry = {
        "status": status,
        "reviewer": reviewer or _os_user(),
        "at": (at or datetime.now(timezone.utc)).isoformat(),
        "note": notes,
    }
    return WriteOp(
        (
            Statement(
                "WITH changed AS (UPDATE sessions SET review_status = %(status)s, "
                "review_notes = COALESCE(%(notes)s, review_notes), "
                f"metadata = {_OBJECT_METADATA} || jsonb_build_object('review_history', "
                "COALESCE(CASE WHEN jsonb_typeof(metadata -> 'review_history') = 'array' "
                "THEN metadata -> 'review_history' END, '[]'::jsonb) || %(entry)s::jsonb) "
                "WHERE id = ANY(%(ids)s::int[]) "
                f"{running}"
                "RETURNING 1) SELECT count(*) FROM changed",
                {
                    "status": status,
                    "notes": clean_text(notes),
                    "entry": dumps([entry]),
                    "ids": list(session_ids),
                },
            ),
        ),
        returns=True,
    )


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"


def finalize_session(
    session_id: int,
    *,
    status: str,
    final_answer: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    completed_at: datetime | None = None,
) -> WriteOp:
    """Mark a session finished: status, final answer, completion time, last metadata.

    A session ``arc-atlas db recover`` already marked failed (interrupted)
    stays ``failed``: a run that was declared dead must not come back as
    training data on its own. What the run finished with is still stored
    (answer, metadata), and ``metadata.finished_after_interrupt`` records the
    status it would have had. The op returns the session's stored status.
    """
    _check_status(status, SESSION_STATUSES, "status")
    late = (
        f"CASE WHEN {_INTERRUPTED} THEN jsonb_build_object('finished_after_interrupt', "
        "jsonb_build_object('status', %(status)s::text, 'at', now())) ELSE '{}'::jsonb END"
    )
    return WriteOp(
        (
            Statement(
                f"UPDATE sessions SET status = CASE WHEN {_INTERRUPTED} THEN status "
                "ELSE %(status)s END, "
                "final_answer = COALESCE(%(answer)s, final_answer), "
                "completed_at = COALESCE(%(completed_at)s, now()), "
                f"metadata = {_MERGE_METADATA} || {late} WHERE id = %(sid)s RETURNING status",
                {
                    "sid": session_id,
                    "status": status,
                    "answer": clean_text(final_answer),
                    "completed_at": completed_at,
                    "patch": dumps(dict(metadata or {})),
                },
            ),
        ),
        returns=True,
    )


def upsert_learning(
    learning_key: str,
    *,
    student_learning: str | None,
    teacher_learning: str | None,
    metadata: Mapping[str, Any] | None = None,
) -> WriteOp:
    """Insert or replace the learning registry's playbook for ``learning_key``."""
    return WriteOp(
        (
            Statement(
                "INSERT INTO learning_registry "
                "(learning_key, student_learning, teacher_learning, metadata, updated_at) "
                "VALUES (%(key)s, %(student)s, %(teacher)s, %(metadata)s::jsonb, now()) "
                "ON CONFLICT (learning_key) DO UPDATE SET "
                "student_learning = EXCLUDED.student_learning, "
                "teacher_learning = EXCLUDED.teacher_learning, "
                "metadata = EXCLUDED.metadata, updated_at = EXCLUDED.updated_at",
                {
                    "key": learning_key,
                    "student": clean_text(student_learning),
                    "teacher": clean_text(teacher_learning),
                    "metadata": _json(dict(metadata) if metadata is not None else None),
                },
            ),
        )
    )


def record_discovery_run(
    *,
    project_root: str,
    task: str | None,
    payload: Mapping[str, Any],
    metadata: Mapping[str, Any] | None = None,
    source: str = "discovery",
) -> WriteOp:
    """Insert a discovery run (``arc-atlas env init``); the op returns its id."""
    return WriteOp(
        (
            Statement(
                "INSERT INTO discovery_runs (project_root, task, source, payload, metadata) "
                "VALUES (%(root)s, %(task)s, %(source)s, %(payload)s::jsonb, %(metadata)s::jsonb) "
                "RETURNING id",
                {
                    "root": clean_text(project_root),
                    "task": clean_text(task),
                    "source": source,
                    "payload": dumps(dict(payload)),
                    "metadata": _json(dict(metadata) if metadata is not None else None),
                },
            ),
        ),
        returns=True,
    )


def recover_stale_sessions(older_than: timedelta, *, dry_run: bool = False) -> WriteOp:
    """Mark sessions still ``running`` with no sign of life for ``older_than`` as failed.

    A sign of life is the session's start, its newest trajectory event, or
    its heartbeat (``metadata.heartbeat_at``, written by the runtime while a
    run is in progress, even during a long agent call): a session with any of
    them newer than ``older_than`` is left alone. The reason goes into
    ``metadata.error`` and ``metadata.interrupted``. The op returns the ids
    (as an array) of the sessions affected, or that would be. Raises
    :class:`~atlas.errors.InvalidFilter` unless ``0 < older_than <=``
    :data:`MAX_RECOVER_AGE`.
    """
    if not timedelta(0) < older_than <= MAX_RECOVER_AGE:
        raise InvalidFilter(
            f"older_than must be a positive duration of at most {MAX_RECOVER_AGE.days} days, "
            f"such as 30m or 2h; got {older_than}."
        )
    beat = f"(s.metadata ->> '{HEARTBEAT_KEY}') COLLATE \"C\""
    heartbeat_recent = (
        f"({beat} ~ '{_HEARTBEAT_SHAPE}' AND {beat} >= {_utc_text('now() - %(age)s')})"
    )
    stale = (
        "SELECT s.id FROM sessions s WHERE s.status = 'running' "
        "AND GREATEST(s.created_at, (SELECT e.created_at FROM trajectory_events e "
        "WHERE e.session_id = s.id ORDER BY e.id DESC LIMIT 1)) < now() - %(age)s "
        f"AND NOT COALESCE({heartbeat_recent}, false)"
    )
    if dry_run:
        sql = f"SELECT COALESCE(array_agg(id ORDER BY id), '{{}}') FROM ({stale}) AS stale"
        return WriteOp((Statement(sql, {"age": older_than}),), returns=True)
    reason = {
        "error": "interrupted: the process running this session stopped before it finished",
        "interrupted": {
            "reason": "no activity",
            "idle_longer_than_seconds": older_than.total_seconds(),
        },
    }
    sql = (
        "WITH changed AS (UPDATE sessions SET status = 'failed', "
        "completed_at = COALESCE(completed_at, now()), "
        f"metadata = {_MERGE_METADATA} "
        f"WHERE id IN ({stale}) RETURNING id) "
        "SELECT COALESCE(array_agg(id ORDER BY id), '{}') FROM changed"
    )
    return WriteOp((Statement(sql, {"age": older_than, "patch": dumps(reason)}),), returns=True)
