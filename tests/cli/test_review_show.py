"""``arc-atlas review show ID`` in-process, against a real PostgreSQL."""

from __future__ import annotations

import json

import psycopg
import pytest

from atlas.cli.main import main
from atlas.errors import InvalidFilter
from atlas.training_data.filters import SessionFilters

# Stored text that rich would read as markup, an emoji code, or fail on ("[/]").
HOSTILE = "[bold red]not bold[/] [/] :smile: [link=http://x]y[/link]"


def _insert(conn: psycopg.Connection, table: str, **values: object) -> None:
    names = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    cells = [json.dumps(v) if isinstance(v, (dict, list)) else v for v in values.values()]
    conn.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", cells)


@pytest.fixture
def session(db_url: str) -> tuple[str, int]:
    """One session with a plan, two steps, judges, guidance, attempts and a review history."""
    review = {"status": "quarantined", "reviewer": "ana", "at": "2026-01-02T03:04:05+00:00"}
    metadata = {
        "learning_key": "lk-1",
        "review_history": [{**review, "note": "NOTE-" + HOSTILE}],
        "teacher_notes": ["TEACHER-" + HOSTILE],
    }
    plan = {
        "steps": [
            {"id": 1, "description": "PLAN-ONE " + HOSTILE, "depends_on": []},
            {"id": 2, "description": "PLAN-TWO", "tool": "grep", "depends_on": [1]},
        ]
    }
    with psycopg.connect(db_url, autocommit=True) as conn:
        sid = conn.execute(
            "INSERT INTO sessions (task, status, final_answer, review_status, review_notes, "
            "reward_stats, metadata) VALUES (%s, 'succeeded', %s, 'quarantined', %s, %s, %s) "
            "RETURNING id",
            [
                "TASK-" + HOSTILE,
                "ANSWER-" + HOSTILE,
                "NOTES-" + HOSTILE,
                json.dumps({"score": 0.75, "uncertainty": 0.05}),
                json.dumps(metadata),
            ],
        ).fetchone()[0]
        _insert(conn, "plans", session_id=sid, plan=plan)
        for step in (1, 2):
            judge = {"identifier": f"judge-{step}", "score": 0.25, "rationale": f"WHY-{step} "}
            judge["rationale"] += HOSTILE
            reward = {"score": 0.5 + step / 10, "judges": [judge]}
            _insert(conn, "step_results", session_id=sid, step_id=step, output=f"OUT-{step}",
                    trace="t", evaluation={"reward": reward}, attempts=2)  # fmt: skip
            _insert(conn, "guidance_notes", session_id=sid, step_id=step, sequence=1,
                    note=f"GUIDE-{step} " + HOSTILE)  # fmt: skip
            for attempt in (1, 2):
                verdict = {"reward": {"score": attempt / 4}, "verdict": f"TRY-{step}-{attempt}"}
                _insert(conn, "step_attempts", session_id=sid, step_id=step, attempt=attempt,
                        evaluation=verdict)  # fmt: skip
    return db_url, sid


def _show(
    capsys: pytest.CaptureFixture[str], url: str, session_id: int | str
) -> tuple[int, str, str]:
    rc = main(["review", "show", str(session_id), "--database-url", url])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize(
    "expected",
    [
        pytest.param(["TASK-", "succeeded", "lk-1", "0.75 ± 0.05"], id="summary"),
        pytest.param(["Plan", "PLAN-ONE", "PLAN-TWO", "grep", "[1]"], id="plan"),
        pytest.param(["Step 1: PLAN-ONE", "Step 2: PLAN-TWO", "OUT-1", "OUT-2"], id="steps"),
        pytest.param(["0.6", "0.7", "judge-1", "judge-2", "WHY-1", "WHY-2"], id="rewards-judges"),
        pytest.param(["GUIDE-1", "GUIDE-2", "TEACHER-"], id="guidance"),
        pytest.param(["TRY-1-1", "TRY-1-2", "TRY-2-2"], id="attempts"),
        pytest.param(["Final answer", "ANSWER-"], id="final-answer"),
        pytest.param(
            ["quarantined", "NOTES-", "review_history", "ana", "NOTE-", "2026-01-02T03"],
            id="review",
        ),
    ],
)
def test_show_renders_each_part_of_the_session(capsys, session, expected):
    rc, out, err = _show(capsys, *session)
    assert (rc, err) == (0, "")
    for text in expected:
        assert text in out


def test_show_prints_stored_markup_as_written(capsys, session):
    rc, out, _ = _show(capsys, *session)
    assert rc == 0
    for prefix in ("TASK-", "ANSWER-", "NOTES-", "WHY-1 ", "GUIDE-1 ", "TEACHER-", "NOTE-"):
        assert prefix + "[bold red]not bold[/] [/] :smile:" in out, prefix
    assert "😄" not in out


def test_show_works_for_any_review_status(capsys, session):
    url, sid = session
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE sessions SET review_status = 'pending'")
    assert _show(capsys, url, sid)[0] == 0


def test_show_unknown_id_exits_1_with_one_line(capsys, db_url):
    assert _show(capsys, db_url, 999999) == (
        1,
        "",
        "Error: Session 999999 is not in the database.\n",
    )


@pytest.mark.parametrize(
    "session_id",
    [pytest.param(-3, id="negative"), pytest.param(2**63, id="above-bigint")],
)
def test_show_id_out_of_range_is_one_line(capsys, db_url, session_id):
    """The API's verdict on the id (invalid: exit 2, or simply absent: 1), naming ID."""
    try:
        SessionFilters.build(session_ids=[session_id])
    except InvalidFilter as exc:
        expected = (2, "", "Error: " + str(exc).replace("session_ids", "ID") + "\n")
    else:
        expected = (1, "", f"Error: Session {session_id} is not in the database.\n")
    assert _show(capsys, db_url, session_id) == expected


def test_show_id_that_is_not_a_number_is_a_usage_error(capsys, db_url):
    rc, out, err = _show(capsys, db_url, "abc")
    assert (rc, out) == (2, "")
    assert err.startswith("Error: argument ID: invalid int value: 'abc'")
