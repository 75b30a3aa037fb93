"""``arc-atlas db partition-events`` and ``db retention`` through the real entry point."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from atlas.cli.db_partition import parse_age
from atlas.cli.main import main
from atlas.errors import InvalidFilter
from atlas.storage.synthetic import seed_sessions


@pytest.fixture
def seeded(db_url: str) -> str:
    """Ten sessions 20 days apart: their events span several months."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 10, seed=1, spacing=timedelta(days=20))
    return db_url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_partition_events_says_what_it_did(seeded: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "db", "partition-events", "--database-url", seeded)
    assert (code, err) == (0, "")
    assert "created partition trajectory_events_default" in out
    assert "row(s) copied, count and checksum" in out
    assert "key PRIMARY KEY (id, created_at)" in out


def test_a_second_run_exits_0_and_says_so(seeded: str, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "db", "partition-events", "--interval", "week", "--database-url", seeded)
    code, out, _ = run(capsys, "db", "partition-events", "--database-url", seeded)
    assert code == 0
    assert out.splitlines() == [
        "trajectory_events is already partitioned by week: nothing to convert.",
        "--interval month is ignored: the interval is chosen once, at conversion.",
    ]


def test_status_shows_the_layout(seeded: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "db", "status", "--database-url", seeded)
    assert "Events:   not partitioned (opt in: arc-atlas db partition-events)" in out
    run(capsys, "db", "partition-events", "--ahead", "2", "--database-url", seeded)
    _, out, _ = run(capsys, "db", "status", "--database-url", seeded)
    assert "Events:   partitioned by month" in out and "kept 2 ahead" in out
    events = next(line for line in out.splitlines() if "│ trajectory_events " in line)
    assert "missing" not in events


def test_upgrade_tops_the_partitions_up(seeded: str, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "db", "partition-events", "--database-url", seeded)
    with psycopg.connect(seeded, autocommit=True) as conn:
        last = conn.execute(
            "SELECT max(inhrelid::regclass::text) FROM pg_inherits "
            "WHERE inhparent = 'trajectory_events'::regclass "
            "AND inhrelid::regclass::text <> 'trajectory_events_default'"
        ).fetchone()
        assert last is not None
        conn.execute(f'DROP TABLE "{last[0]}"')
    code, out, _ = run(capsys, "db", "upgrade", "--database-url", seeded)
    assert code == 0 and f"created partition {last[0]}" in out


def test_retention_refuses_an_unpartitioned_table(
    seeded: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "db", "retention", "--events-older-than", "30d",
                         "--database-url", seeded)  # fmt: skip
    assert (code, out) == (2, "")
    assert err == (
        "Error: trajectory_events is not partitioned: run `arc-atlas db partition-events` first.\n"
    )


def test_retention_dry_run_then_detach(seeded: str, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "db", "partition-events", "--database-url", seeded)
    args = ("db", "retention", "--events-older-than", "40d", "--database-url", seeded)
    code, planned, _ = run(capsys, *args, "--dry-run")
    assert code == 0 and "would detach trajectory_events_p" in planned
    code, done, _ = run(capsys, *args)
    assert code == 0
    assert [line.replace("would detach", "detached") for line in planned.splitlines()
            if line.startswith("would")] == [
        line for line in done.splitlines() if line.startswith("detached")
    ]  # fmt: skip
    assert "out of every read and export" in done
    _, again, _ = run(capsys, *args)
    assert "No partition lies entirely before" in again


def test_retention_drop_says_dropped(seeded: str, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "db", "partition-events", "--database-url", seeded)
    code, out, _ = run(capsys, "db", "retention", "--events-older-than", "40d", "--drop",
                       "--database-url", seeded)  # fmt: skip
    assert code == 0 and "dropped trajectory_events_p" in out and "Dropped " in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["--events-older-than", "6m"],
            "Error: --events-older-than: cannot read age '6m' (m is ambiguous: write 6mo for "
            "six months): use a whole number of days, weeks, months or years, such as 180d, "
            "26w, 6mo or 1y.",
            id="minutes-or-months",
        ),
        pytest.param(
            ["--events-older-than", "0d"],
            "Error: --events-older-than must be at least 1d and at most 36500d; got '0d'.",
            id="zero",
        ),
        pytest.param(
            ["--events-older-than", "30d", "--lock-timeout", "0"],
            "Error: --lock-timeout must be more than 0 and at most 3600 s; got 0.",
            id="lock-timeout",
        ),
    ],
)
def test_bad_values_are_one_line_and_exit_2(
    db_url: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, "db", "retention", *argv, "--database-url", db_url)
    assert (code, out, err) == (2, "", message + "\n")


def test_detach_and_drop_cannot_be_combined(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "db", "retention", "--events-older-than", "1d", "--detach",
                       "--drop", "--database-url", db_url)  # fmt: skip
    assert code == 2 and "not allowed with argument" in err


@pytest.mark.parametrize(
    ("text", "age"),
    [
        pytest.param("180d", (0, 180), id="days"),
        pytest.param("26w", (0, 182), id="weeks"),
        pytest.param("6mo", (6, 0), id="months"),
        pytest.param("1y", (12, 0), id="year"),
        pytest.param(" 1Y 6mo 2d ", (18, 2), id="sum"),
    ],
)
def test_parse_age(text: str, age: tuple[int, int]) -> None:
    assert parse_age(text) == age


@pytest.mark.parametrize("text", ["", "d", "1.5d", "2h", "-3d", "101y", "180"])
def test_parse_age_refuses(text: str) -> None:
    with pytest.raises(InvalidFilter, match="--events-older-than"):
        parse_age(text)
