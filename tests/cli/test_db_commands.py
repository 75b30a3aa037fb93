"""``arc-atlas db ...`` through the real entry point, against a real PostgreSQL."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from atlas.cli.main import main
from atlas.storage.migrate import available_migrations
from atlas.storage.urls import mask_url
from atlas.storage.writer import SessionWriter

LATEST = available_migrations()[-1].version


def _scalar(url: str, query: str) -> object:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def test_upgrade_creates_schema_and_reports_it(cli, empty_db_url):
    result = cli("db", "upgrade", "--database-url", empty_db_url)
    assert result.returncode == 0, result.stderr
    assert "applied 0001 tables" in result.stdout
    assert _scalar(empty_db_url, "SELECT count(*) FROM atlas_schema_migrations") == LATEST


def test_upgrade_dry_run_changes_nothing(cli, empty_db_url):
    result = cli("db", "upgrade", "--dry-run", "--database-url", empty_db_url)
    assert result.returncode == 0
    assert "would apply 0001 tables" in result.stdout
    assert _scalar(empty_db_url, "SELECT to_regclass('sessions') IS NULL") is True


def test_second_upgrade_applies_nothing(cli, db_url):
    result = cli("db", "upgrade", "--database-url", db_url)
    assert result.returncode == 0
    assert "applied" not in result.stdout
    assert f"is at schema version {LATEST}" in result.stdout


def test_status_shows_schema_and_counts(cli, db_url):
    assert cli("db", "seed-demo", "--sessions", "12", "--database-url", db_url).returncode == 0
    result = cli("db", "status", "--database-url", db_url)
    assert result.returncode == 0, result.stderr
    assert f"version {LATEST}, up to date" in result.stdout
    assert "PostgreSQL" in result.stdout
    sessions_line = next(line for line in result.stdout.splitlines() if "│ sessions " in line)
    assert "│ 12 " in sessions_line


def test_status_on_empty_database_says_what_to_run(cli, empty_db_url):
    result = cli("db", "status", "--database-url", empty_db_url)
    assert result.returncode == 0
    assert "pending: run `arc-atlas db upgrade`" in result.stdout


def test_seed_demo_writes_sessions(cli, db_url):
    result = cli(
        "db", "seed-demo", "--sessions", "25", "--legacy-fraction", "0.2", "--database-url", db_url
    )
    assert result.returncode == 0, result.stderr
    assert "Wrote 25 synthetic sessions" in result.stderr
    assert _scalar(db_url, "SELECT count(*) FROM sessions") == 25


def test_recover_marks_stale_running_sessions_failed(cli, db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        stale = conn.execute(
            "INSERT INTO sessions (task, created_at) VALUES ('old', now() - interval '3 hours') "
            "RETURNING id"
        ).fetchone()[0]
        fresh = conn.execute("INSERT INTO sessions (task) VALUES ('new') RETURNING id").fetchone()[
            0
        ]
    result = cli("db", "recover", "--older-than", "2h", "--database-url", db_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(stale)]
    with psycopg.connect(db_url) as conn:
        rows = dict(conn.execute("SELECT id, status FROM sessions").fetchall())
    assert rows == {stale: "failed", fresh: "running"}


def test_recover_dry_run_changes_nothing(cli, db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO sessions (task, created_at) VALUES ('old', now() - interval '3 hours')"
        )
    result = cli("db", "recover", "--older-than", "1h", "--dry-run", "--database-url", db_url)
    assert result.returncode == 0
    assert "Would mark 1 session(s)" in result.stderr
    assert _scalar(db_url, "SELECT status FROM sessions") == "running"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(
            ("db", "status", "--database-url", "postgresql://ann:s3cret@127.0.0.1:1/atlas"),
            "Error: Database at postgresql://ann:***@127.0.0.1:1/atlas refused the connection: "
            "is PostgreSQL running? Start it, or leave --database-url out to use the embedded "
            "database.",
            id="unreachable",
        ),
        pytest.param(
            ("db", "frobnicate"),
            "Error: argument DB_COMMAND: invalid choice: 'frobnicate' (choose from 'upgrade', "
            "'status', 'url', 'stop', 'server', 'recover', 'partition-events', "
            "'retention', 'seed-demo') (see `arc-atlas db --help`).",
            id="unknown-command",
        ),
        pytest.param(
            ("db", "status", "--bogus"),
            "Error: unrecognized arguments: --bogus (see `arc-atlas --help`).",
            id="unknown-flag",
        ),
    ],
)
def test_expected_errors_are_one_line_with_exit_2(cli, args, expected):
    result = cli(*args)
    assert result.returncode == 2
    assert result.stderr.strip() == expected
    assert "Traceback" not in result.stderr
    assert "s3cret" not in result.stderr + result.stdout


def test_missing_database_is_named_without_password(cli, url_for):
    result = cli("db", "status", "--database-url", url_for("atlas_no_such_db_here"))
    assert result.returncode == 2
    assert "does not exist on that server" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_config_names_file_and_key(cli, tmp_path: Path):
    config = tmp_path / "atlas.yaml"
    config.write_text("storage:\n  databse_url: postgresql://x@h/d\n")
    result = cli("db", "url", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.startswith(f"Error: {config}: storage.databse_url: unknown key;")
    assert "database_url" in result.stderr


@pytest.mark.parametrize(
    ("env", "args", "expected_url", "source"),
    [
        pytest.param({}, ("--database-url", "postgresql://a:pw@h1/d"), "postgresql://a:***@h1/d",
                     "--database-url", id="flag"),
        pytest.param({"ATLAS_DATABASE_URL": "postgresql://b@h2/d"}, (), "postgresql://b@h2/d",
                     "ATLAS_DATABASE_URL", id="atlas-env"),
        pytest.param({"STORAGE__DATABASE_URL": "postgresql://c@h3/d"}, (), "postgresql://c@h3/d",
                     "STORAGE__DATABASE_URL", id="legacy-env"),
        pytest.param({"DATABASE_URL": "postgresql://d@h4/d"}, (), "postgresql://d@h4/d",
                     "DATABASE_URL", id="generic-env"),
    ],
)  # fmt: skip
def test_url_reports_value_and_source(cli, env, args, expected_url, source):
    result = cli("db", "url", "--source", *args, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected_url
    assert result.stderr.strip() == f"# from {source}"


def test_url_show_password(cli):
    result = cli("db", "url", "--show-password", "--database-url", "postgresql://a:pw@h/d")
    assert result.stdout.strip() == "postgresql://a:pw@h/d"


def test_global_flag_before_subcommand(cli):
    result = cli("--database-url", "postgresql://a@h/d", "db", "url")
    assert result.stdout.strip() == mask_url("postgresql://a@h/d")


def test_stop_when_embedded_not_running(cli):
    result = cli("db", "stop")
    assert result.returncode == 0
    assert "is not running" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        pytest.param([sys.executable, "-m", "atlas.cli.export"], id="python-m-export"),
        pytest.param(["arc-atlas"], id="arc-atlas"),
        pytest.param(["atlas.export"], id="atlas.export"),
        pytest.param(["atlas-export"], id="atlas-export"),
    ],
)
def test_every_entry_point_offers_help(command):
    executable = shutil.which(command[0], path=str(Path(sys.executable).parent))
    assert executable is not None, f"{command[0]} is not installed next to {sys.executable}"
    result = subprocess.run(
        [executable, *command[1:], "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert "usage: arc-atlas" in result.stdout
    assert "db" in result.stdout


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("soon", "Error: --older-than: cannot read duration 'soon': use a number "
                     "with a unit, such as 30m, 2h, 1d or 1h30m.", id="malformed"),
        pytest.param("99999999999d", "Error: --older-than must be longer than 0s and at most "
                     "36500d; got '99999999999d'.", id="overflow"),
        pytest.param("9" * 400 + "s", "Error: --older-than must be longer than 0s and at most "
                     f"36500d; got '{'9' * 400}s'.", id="beyond-float"),
        pytest.param("0s", "Error: --older-than must be longer than 0s and at most 36500d; "
                     "got '0s'.", id="zero"),
        pytest.param("-5m", "Error: --older-than: cannot read duration '-5m': use a number "
                     "with a unit, such as 30m, 2h, 1d or 1h30m.", id="negative"),
    ],
)  # fmt: skip
def test_recover_older_than_is_validated_before_connecting(
    capsys: pytest.CaptureFixture[str], value: str, expected: str
) -> None:
    # The URL is unreachable: the flag must be refused before any connection.
    argv = ["db", "recover", f"--older-than={value}", "--database-url", "postgresql://x@h:1/d"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [expected]
    assert captured.out == ""


def test_recover_leaves_a_session_with_a_recent_heartbeat(cli, db_url):
    with SessionWriter.open(db_url) as writer:
        long_ago = datetime.now(timezone.utc) - timedelta(hours=1)
        writer.heartbeat(writer.create_session("long agent call", created_at=long_ago))
    result = cli("db", "recover", "--older-than", "5s", "--database-url", db_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert _scalar(db_url, "SELECT status FROM sessions") == "running"
