"""Stored values that used to be dropped reach every reader: the API, the export and the loader.

Each case writes rows with plain SQL, as any writer (an older Atlas, a script)
could, then reads the session back through ``get_session_by_id`` and through
``arc-atlas export`` + ``load_runtime_traces``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from atlas.cli.main import main
from atlas.errors import TraceDecodeWarning
from atlas.runtime import AtlasSessionTrace
from atlas.training_data import (
    get_session_by_id,
    get_training_sessions,
    paginate_sessions_sync,
)
from trainers.runtime_dataset import load_runtime_traces

RUNTIME = {"reward_skipped": False, "timings_ms": {"execute": 812.5, "judge": 40}}


def _session(conn: psycopg.Connection[Any], **columns: Any) -> int:
    values = {"task": "t", "status": "succeeded", "review_status": "approved", **columns}
    names = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    row = conn.execute(
        f"INSERT INTO sessions ({names}) VALUES ({marks}) RETURNING id", list(values.values())
    ).fetchone()
    assert row is not None
    return int(row[0])


def _step(conn: psycopg.Connection[Any], session_id: int, step_id: int, **columns: Any) -> None:
    values = {"session_id": session_id, "step_id": step_id, "output": f"out {step_id}", **columns}
    names = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    conn.execute(f"INSERT INTO step_results ({names}) VALUES ({marks})", list(values.values()))


ReadAll = Callable[[int], list[AtlasSessionTrace]]


@pytest.fixture
def read_all(db_url: str, tmp_path: Path) -> ReadAll:
    """Read one session by every path: by id, by query, by pages, and export + loader."""

    def read(session_id: int) -> list[AtlasSessionTrace]:
        out = tmp_path / f"s{session_id}.jsonl"
        argv = ["export", "--database-url", db_url, "-o", str(out), "--quiet"]
        assert main([*argv, "--session-id", str(session_id), "--include-all-statuses"]) == 0
        with pytest.warns(TraceDecodeWarning) if _damaged(out) else _no_warning():
            by_id = get_session_by_id(session_id, db_url)
            (queried,) = get_training_sessions(
                db_url, session_ids=[session_id], include_all_review_statuses=True
            )
            (paged,) = [
                t
                for page in paginate_sessions_sync(db_url=db_url, include_all_review_statuses=True)
                for t in page
                if t.session_id == session_id
            ]
        (loaded,) = load_runtime_traces(out)
        return [by_id, queried, paged, loaded]

    return read


def _damaged(path: Path) -> bool:
    return any(json.loads(line)["load_warnings"] for line in path.read_text().splitlines())


class _no_warning:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_a_step_runtime_dict_is_kept_as_stored(db_url: str, read_all: ReadAll):
    with psycopg.connect(db_url, autocommit=True) as conn:
        sid = _session(conn)
        _step(conn, sid, 1, metadata=Jsonb({"runtime": RUNTIME, "status": "ok"}))
    for trace in read_all(sid):
        assert trace.steps[0].runtime == RUNTIME
        assert trace.steps[0].metadata == {"runtime": RUNTIME, "status": "ok"}


def test_events_keep_their_row_id_and_created_at(db_url: str, read_all: ReadAll):
    with psycopg.connect(db_url, autocommit=True) as conn:
        sid = _session(conn)
        ids = [
            conn.execute(
                "INSERT INTO trajectory_events (session_id, event, created_at) "
                "VALUES (%s, %s, '2026-03-01 10:00:00+00') RETURNING id",
                [sid, Jsonb(event)],
            ).fetchone()[0]  # type: ignore[index]
            for event in ({"event_type": "a", "payload": {}}, {"event_type": "b", "id": "mine"})
        ]
    for trace in read_all(sid):
        first, second = trace.trajectory_events
        assert (first["id"], first["created_at"]) == (ids[0], "2026-03-01T10:00:00+00:00")
        # The stored key wins; the row's id takes the second name.
        assert (second["id"], second["row_id"]) == ("mine", ids[1])


@pytest.mark.parametrize(
    ("column", "stored", "expected", "warning"),
    [
        pytest.param(
            "reward_stats", [0.5], {"legacy_value": [0.5]}, "reward_stats is not", id="stats-list"
        ),
        pytest.param(
            "reward", "0.9", {"score": 0.9, "legacy_value": "0.9"}, "session reward", id="text"
        ),
    ],
)
def test_session_values_of_the_wrong_shape_are_kept_and_noted(
    db_url: str, read_all: ReadAll, column: str, stored: Any, expected: Any, warning: str
):
    with psycopg.connect(db_url, autocommit=True) as conn:
        sid = _session(conn, **{column: Jsonb(stored)})
    for trace in read_all(sid):
        value = trace.reward_stats if column == "reward_stats" else trace.session_reward
        assert value == expected
        assert any(w.startswith(warning) for w in trace.load_warnings), trace.load_warnings


def test_a_step_score_that_is_not_a_number_is_kept(db_url: str, read_all: ReadAll):
    with psycopg.connect(db_url, autocommit=True) as conn:
        sid = _session(conn)
        _step(conn, sid, 1, evaluation=Jsonb({"reward": {"score": "high"}}))
    for trace in read_all(sid):
        assert trace.steps[0].reward.score is None
        assert trace.steps[0].reward.extra == {"score_raw": "high"}
        assert "step 1 reward score 'high' is not a number; kept as score_raw" in (
            trace.load_warnings
        )


def test_an_evaluation_that_is_not_json_is_kept_in_the_step(db_url: str, read_all: ReadAll):
    with psycopg.connect(db_url, autocommit=True) as conn:
        sid = _session(conn)
        _step(conn, sid, 1, evaluation=Jsonb("judge said: fine"))
    for trace in read_all(sid):
        assert trace.steps[0].metadata["raw_evaluation"] == "judge said: fine"
        assert trace.load_warnings


def test_attempt_and_guidance_rows_without_a_step_row_are_kept(db_url: str, read_all: ReadAll):
    with psycopg.connect(db_url, autocommit=True) as conn:
        sid = _session(conn)
        _step(conn, sid, 1)
        conn.execute(
            "INSERT INTO step_attempts (session_id, step_id, attempt, evaluation) "
            "VALUES (%s, 2, 1, '{\"valid\": false}')",
            [sid],
        )
        conn.execute(
            "INSERT INTO guidance_notes (session_id, step_id, sequence, note) "
            "VALUES (%s, 3, 1, 'Cite it.')",
            [sid],
        )
    for trace in read_all(sid):
        assert [s.step_id for s in trace.steps] == [1, 2, 3]
        assert trace.steps[1].attempt_history == [{"attempt": 1, "evaluation": {"valid": False}}]
        assert trace.steps[2].guidance == ["Cite it."]
        assert len(trace.load_warnings) == 2


def test_zero_attempts_stay_zero(db_url: str, read_all: ReadAll):
    with psycopg.connect(db_url, autocommit=True) as conn:
        sid = _session(conn)
        _step(conn, sid, 1, attempts=0)
    assert [t.steps[0].attempts for t in read_all(sid)] == [0, 0, 0, 0]


def test_later_steps_see_the_outputs_of_earlier_ones(db_url: str, read_all: ReadAll):
    with psycopg.connect(db_url, autocommit=True) as conn:
        sid = _session(conn)
        _step(conn, sid, 1, metadata=Jsonb({"artifacts": {"url": "u"}, "status": "ok"}))
        _step(conn, sid, 2)
    for trace in read_all(sid):
        first, second = trace.steps
        assert first.context == {"prior_results": {}, "prior_results_text": {}}
        assert second.context == {
            "prior_results": {
                "1": {"output_text": "out 1", "artifacts": {"url": "u"}, "status": "ok"}
            },
            "prior_results_text": {"1": "out 1"},
        }


@pytest.mark.parametrize(
    "moment",
    [
        pytest.param("infinity", id="infinity"),
        pytest.param("-infinity", id="minus-infinity"),
        pytest.param("0044-03-15 00:00:00+00 BC", id="bc"),
        pytest.param("12000-01-01 00:00:00+00", id="year-12000"),
    ],
)
def test_a_timestamp_python_cannot_hold_is_text_and_aborts_nothing(
    db_url: str, read_all: ReadAll, moment: str, capsys: pytest.CaptureFixture[str]
):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        sid = _session(conn, created_at=moment, completed_at=moment)
        _session(conn)  # a normal neighbour on the same pages
    for trace in read_all(sid):
        assert trace.created_at == trace.completed_at
        assert isinstance(trace.created_at, str)
        assert "created_at" in trace.load_warnings[0]
    assert main(["review", "sessions", "--database-url", db_url, "--status", "all"]) == 0
    assert str(sid) in capsys.readouterr().out
