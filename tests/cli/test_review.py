"""``arc-atlas review sessions|approve|quarantine`` in-process, against a real PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from atlas.cli.main import main
from atlas.errors import InvalidFilter
from atlas.storage.synthetic import seed_sessions
from atlas.training_data.filters import SessionFilters

STATUSES = "use pending, approved, quarantined or all."


@pytest.fixture
def queue(db_url: str) -> str:
    """Twelve synthetic sessions, all pending review."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 12, seed=3)
        conn.execute("UPDATE sessions SET review_status = 'pending', review_notes = NULL")
    return db_url


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``arc-atlas ARGS...`` in this process: (exit code, stdout, stderr)."""
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def listed(table: str) -> list[int]:
    """Session ids in the first column of a review table, top to bottom."""
    return [int(m[1]) for m in re.finditer(r"^│\s*(\d+)\s*│", table, re.MULTILINE)]


def review_state(url: str) -> dict[int, tuple[str, str | None, list]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id, review_status, review_notes, metadata -> 'review_history' FROM sessions"
        ).fetchall()
    return {row[0]: (row[1], row[2], row[3] or []) for row in rows}


def by_status(url: str) -> dict[str, set[int]]:
    grouped: dict[str, set[int]] = {}
    for sid, (status, _, _) in review_state(url).items():
        grouped.setdefault(status, set()).add(sid)
    return grouped


def ids(url: str, where: str = "true") -> list[int]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(f"SELECT id FROM sessions s WHERE {where} ORDER BY id")]


# --- review sessions -------------------------------------------------------------------------


def test_sessions_table_lists_the_pending_queue(capsys, queue):
    rc, out, _ = run(capsys, "review", "sessions", "--database-url", queue, "--limit", "5")
    assert rc == 0
    assert "5 session(s), review status: pending" in out
    for header in ("id", "created", "status", "reward", "drift", "task", "notes"):
        assert header in out
    assert "±" in out


def test_sessions_default_to_pending_only(capsys, reviewed_url):
    rc, out, _ = run(capsys, "review", "sessions", "--database-url", reviewed_url)
    assert rc == 0
    assert set(listed(out)) == by_status(reviewed_url)["pending"]


@pytest.mark.parametrize(
    ("flags", "where"),
    [
        pytest.param(["--min-reward", "0.6"], "(s.reward_stats->>'score')::float >= 0.6", id="min"),
        pytest.param(["--max-reward", "0.6"], "(s.reward_stats->>'score')::float <= 0.6", id="max"),
        pytest.param(
            ["--learning-key", "security-review", "--learning-key", "sre-incident-triage"],
            "s.metadata->>'learning_key' IN ('security-review', 'sre-incident-triage')",
            id="learning-keys",
        ),
        pytest.param(["--run-status", "FAILED"], "s.status = 'failed'", id="run-status"),
        pytest.param(
            ["--created-after", "2026-01-01T00:03:00Z"],
            "s.created_at >= '2026-01-01T00:03:00Z'",
            id="created-after",
        ),
        pytest.param(
            ["--created-before", "2026-01-01T00:03:00Z"],
            "s.created_at < '2026-01-01T00:03:00Z'",
            id="created-before",
        ),
        pytest.param(["--session-id", "2", "--session-id", "5"], "s.id IN (2, 5)", id="ids"),
    ],
)
def test_sessions_filters_select_what_sql_selects(capsys, queue, flags, where):
    with psycopg.connect(queue, autocommit=True) as conn:
        conn.execute(
            "UPDATE sessions SET created_at = '2026-01-01'::timestamptz + id * '30s'::interval"
        )
    rc, out, _ = run(capsys, "review", "sessions", "--database-url", queue, *flags)
    assert rc == 0
    assert sorted(listed(out)) == ids(queue, where)


def test_sessions_status_picks_review_statuses(capsys, reviewed_url):
    args = ("--status", "Approved", "--status", "quarantined", "--database-url", reviewed_url)
    rc, out, _ = run(capsys, "review", "sessions", *args)
    assert rc == 0
    groups = by_status(reviewed_url)
    assert set(listed(out)) == groups["approved"] | groups["quarantined"]


def test_sessions_pages_with_limit_and_offset(capsys, queue):
    with psycopg.connect(queue) as conn:
        rows = conn.execute("SELECT id FROM sessions ORDER BY created_at DESC, id DESC")
        newest_first = [r[0] for r in rows]
    pages = []
    for offset in ("0", "5", "10"):
        rc, out, _ = run(capsys, "review", "sessions", "--database-url", queue,
                         "--limit", "5", "--offset", offset)  # fmt: skip
        assert rc == 0
        pages.append(listed(out))
    assert pages == [newest_first[:5], newest_first[5:10], newest_first[10:]]


BIG = str(2**63)


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        pytest.param("--limit", "-1", id="limit-negative"),
        pytest.param("--limit", BIG, id="limit-above-bigint"),
        pytest.param("--offset", "-1", id="offset-negative"),
        pytest.param("--offset", BIG, id="offset-above-bigint"),
    ],
)
def test_sessions_paging_out_of_range_is_one_usage_line(capsys, queue, flag, value):
    rc, out, err = run(capsys, "review", "sessions", "--database-url", queue, flag, value)
    assert rc == 2
    assert out == ""
    assert err == (f"Error: {flag} must be a whole number from 0 to {2**63 - 1}, not {value}.\n")


@pytest.mark.parametrize(
    ("args", "line"),
    [
        pytest.param(
            ["review", "sessions", "--status", "bogus"],
            f"Error: --status: unknown review status 'bogus'; {STATUSES}",
            id="sessions-status",
        ),
        pytest.param(
            ["review", "approve", "--min-reward", "0", "--from-status", "aproved"],
            f"Error: --from-status: unknown review status 'aproved'; {STATUSES}",
            id="approve-from-status",
        ),
        pytest.param(
            ["review", "quarantine", "3", "--from-status", "pending", "--from-status", "Nope"],
            f"Error: --from-status: unknown review status 'nope'; {STATUSES}",
            id="quarantine-from-status",
        ),
        pytest.param(
            ["review", "sessions", "--status", " "],
            "Error: --status: give at least one review status (or all).",
            id="sessions-status-empty",
        ),
    ],
)
def test_unknown_review_status_is_an_error(capsys, reviewed_url, args, line):
    before = review_state(reviewed_url)
    rc, out, err = run(capsys, *args, "--database-url", reviewed_url)
    assert (rc, out, err) == (2, "", line + "\n")
    assert review_state(reviewed_url) == before


@pytest.mark.parametrize("command", ["sessions", "approve"])
def test_unknown_run_status_names_the_flag(capsys, reviewed_url, command):
    with pytest.raises(InvalidFilter) as reason:
        SessionFilters.build(status_filters=["bogus"])
    # The library's sentence, with its parameter name replaced by the flag (or the flag first).
    said = str(reason.value)
    line = said.replace("status_filters", "--run-status")
    line = line if line != said else f"--run-status: {said}"
    rc, out, err = run(capsys, "review", command, "--run-status", "bogus",
                       "--database-url", reviewed_url)  # fmt: skip
    assert (rc, out, err) == (2, "", f"Error: {line}\n")


# --- approve / quarantine by id ----------------------------------------------------------------


def test_approve_by_id_records_who_when_and_note(capsys, queue):
    first, second = ids(queue)[:2]
    rc, _, err = run(capsys, "review", "approve", str(first), str(second), "--note", "checked",
                     "--reviewer", "ana", "--database-url", queue)  # fmt: skip
    assert (rc, err) == (0, "Set 2 session(s) to approved.\n")
    state = review_state(queue)
    for session_id in (first, second):
        status, notes, history = state[session_id]
        assert (status, notes) == ("approved", "checked")
        assert history[-1]["reviewer"] == "ana" and history[-1]["status"] == "approved"
        assert history[-1]["at"]


def test_quarantine_by_id(capsys, queue):
    target = ids(queue)[3]
    assert run(capsys, "review", "quarantine", str(target), "--database-url", queue)[0] == 0
    assert review_state(queue)[target][0] == "quarantined"


def test_approve_by_id_changes_a_quarantined_session(capsys, reviewed_url):
    target = min(by_status(reviewed_url)["quarantined"])
    rc, _, _ = run(capsys, "review", "approve", str(target), "--database-url", reviewed_url)
    assert rc == 0
    assert review_state(reviewed_url)[target][0] == "approved"


def test_by_id_with_from_status_leaves_other_statuses_and_says_so(capsys, reviewed_url):
    groups = by_status(reviewed_url)
    pending, quarantined = min(groups["pending"]), min(groups["quarantined"])
    rc, _, err = run(capsys, "review", "approve", str(pending), str(quarantined),
                     "--from-status", "pending", "--database-url", reviewed_url)  # fmt: skip
    assert rc == 0
    assert err == (
        "Set 1 session(s) to approved.\n"
        f"Left session(s) {quarantined} as they are: their review status or the filters "
        "did not match.\n"
    )
    assert review_state(reviewed_url)[quarantined][0] == "quarantined"


def test_unknown_id_exits_1_and_changes_the_rest(capsys, queue):
    known = ids(queue)[0]
    rc, _, err = run(capsys, "review", "approve", str(known), "999999", "--database-url", queue)
    assert rc == 1
    assert err.splitlines()[-1] == "Error: no session with id 999999 in the database."
    assert review_state(queue)[known][0] == "approved"


# --- approve / quarantine by filter --------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "new_status"),
    [
        pytest.param("approve", "approved", id="approve"),
        pytest.param("quarantine", "quarantined", id="quarantine"),
    ],
)
def test_bulk_by_filter_changes_only_pending_sessions(capsys, reviewed_url, command, new_status):
    before = by_status(reviewed_url)
    rc, _, err = run(capsys, "review", command, "--min-reward", "0", "--max-reward", "1",
                     "--database-url", reviewed_url)  # fmt: skip
    assert (rc, err) == (0, f"Set {len(before['pending'])} session(s) to {new_status}.\n")
    after = review_state(reviewed_url)
    assert {after[i][0] for i in before["pending"]} == {new_status}
    for status in ("approved", "quarantined"):
        assert {after[i][0] for i in before[status]} == {status}


def test_bulk_approve_never_lifts_a_quarantine_by_filter(capsys, reviewed_url):
    quarantined = by_status(reviewed_url)["quarantined"]
    run(capsys, "review", "approve", "--min-reward", "0", "--database-url", reviewed_url)
    assert by_status(reviewed_url)["quarantined"] == quarantined


def test_bulk_from_status_quarantined_changes_quarantined_sessions(capsys, reviewed_url):
    before = by_status(reviewed_url)
    rc, _, _ = run(capsys, "review", "approve", "--min-reward", "0", "--max-reward", "1",
                   "--from-status", "quarantined", "--database-url", reviewed_url)  # fmt: skip
    assert rc == 0
    assert by_status(reviewed_url) == {
        "approved": before["approved"] | before["quarantined"],
        "pending": before["pending"],
    }


def test_bulk_from_status_all_changes_every_match(capsys, reviewed_url):
    rc, _, _ = run(capsys, "review", "quarantine", "--min-reward", "0", "--max-reward", "1",
                   "--from-status", "all", "--database-url", reviewed_url)  # fmt: skip
    assert rc == 0
    assert set(by_status(reviewed_url)) == {"quarantined"}


@pytest.mark.parametrize(
    "flags",
    [
        pytest.param([], id="default-pending"),
        pytest.param(["--from-status", "quarantined"], id="from-quarantined"),
        pytest.param(["--from-status", "approved", "--from-status", "pending"], id="two"),
    ],
)
def test_dry_run_shows_the_selection_the_change_makes(capsys, reviewed_url, flags):
    selection = ["--min-reward", "0", *flags, "--database-url", reviewed_url]
    before = review_state(reviewed_url)
    rc, out, _ = run(capsys, "review", "quarantine", "--dry-run", *selection)
    assert rc == 0 and "(dry run)" in out
    assert review_state(reviewed_url) == before
    run(capsys, "review", "quarantine", *selection)
    after = review_state(reviewed_url)
    changed = {i for i in after if after[i][2] != before[i][2]}
    assert set(listed(out)) == changed


def test_bulk_by_filter_changes_exactly_the_matches(capsys, queue):
    matches = (
        "(reward_stats->>'score')::float >= 0.8 AND metadata->>'learning_key' = 'security-review'"
    )
    expected = set(ids(queue, matches))
    rc, _, _ = run(capsys, "review", "approve", "--min-reward", "0.8", "--learning-key",
                   "security-review", "--database-url", queue)  # fmt: skip
    assert rc == 0
    assert by_status(queue).get("approved", set()) == expected


def test_bulk_without_any_filter_is_refused(capsys, queue):
    rc, _, err = run(capsys, "review", "approve", "--database-url", queue)
    assert rc == 2
    assert err == (
        "Error: Give session ids or at least one filter (--min-reward, --learning-key, ...); "
        "arc-atlas will not change every session's review status at once.\n"
    )
    assert set(by_status(queue)) == {"pending"}


def test_conflicting_filters_name_both_flags(capsys, queue):
    rc, _, err = run(capsys, "review", "approve", "--min-reward", "0.9", "--max-reward", "0.1",
                     "--database-url", queue)  # fmt: skip
    assert rc == 2
    assert err.startswith("Error: --min-reward (0.9) is greater than --max-reward (0.1)")


def test_approved_sessions_become_exportable(capsys, queue, tmp_path: Path):
    target = ids(queue)[0]
    out = tmp_path / "x.jsonl"
    assert run(capsys, "--database-url", queue, "-o", str(out))[0] == 1
    run(capsys, "review", "approve", str(target), "--database-url", queue)
    assert run(capsys, "--database-url", queue, "-o", str(out))[0] == 0
    assert len(out.read_text().splitlines()) == 1
