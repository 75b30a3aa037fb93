"""``arc-atlas`` export through the real entry point, against a real PostgreSQL."""

from __future__ import annotations

import gzip
import json
import lzma
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import zstandard

from atlas.cli.export_cmd import PARAMETER_FLAGS, flag_message
from atlas.cli.main import main
from atlas.errors import InvalidFilter
from atlas.runtime import AtlasSessionTrace
from atlas.storage.synthetic import seed_sessions
from atlas.training_data import get_session_by_id
from atlas.training_data.api import FILTER_KEYS


@pytest.fixture
def seeded(db_url: str) -> str:
    """A database with 40 synthetic sessions (mixed statuses and review statuses)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 40, seed=11)
    return db_url


def _ids(url: str, where: str, params: tuple[object, ...] = (), tail: str = "") -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f"SELECT id FROM sessions WHERE {where} ORDER BY created_at DESC, id DESC {tail}",
            params,
        ).fetchall()
    return [row[0] for row in rows]


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_seed_000_command_line(cli, seeded, tmp_path):
    result = cli(
        "--database-url", seeded, "--output", "traces/my-session.jsonl",
        "--include-status", "approved", "--trajectory-event-limit", "500",
        "--status", "succeeded", "--limit", "50", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    records = _records(tmp_path / "traces" / "my-session.jsonl")
    expected = _ids(seeded, "review_status = 'approved' AND status = 'succeeded'")[:50]
    assert [r["session_id"] for r in records] == expected
    assert all(len(r["trajectory_events"]) <= 500 for r in records)


@pytest.mark.parametrize(
    "entry",
    [pytest.param(["arc-atlas"], id="arc-atlas"), pytest.param(["-m"], id="python-m")],
)
def test_seed_001_basic_usage(cli, seeded, tmp_path, entry):
    args = ["--database-url", seeded, "--output", "traces.jsonl"]
    if entry == ["-m"]:
        result = subprocess.run(
            [sys.executable, "-m", "atlas.cli.export", *args],
            capture_output=True, text=True, cwd=tmp_path, timeout=120,
        )  # fmt: skip
    else:
        result = cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    exported = [r["session_id"] for r in _records(tmp_path / "traces.jsonl")]
    assert exported == _ids(seeded, "review_status = 'approved'")
    assert "Exported" in result.stderr and "review statuses: approved" in result.stderr


def test_record_equals_the_python_api_trace(cli, seeded, tmp_path):
    out = tmp_path / "all.jsonl"
    assert (
        cli("export", "--database-url", seeded, "-o", str(out), "--include-all-statuses").returncode
        == 0
    )
    for record in _records(out):
        loaded = AtlasSessionTrace.from_dict(record)
        assert loaded == get_session_by_id(record["session_id"], seeded)


def test_events_are_written_once_and_metadata_whole(cli, seeded, tmp_path):
    out = tmp_path / "x.jsonl"
    assert cli("-o", str(out), "--database-url", seeded, "--include-all-statuses").returncode == 0
    with psycopg.connect(seeded) as conn:
        stored = dict(conn.execute("SELECT id, metadata FROM sessions").fetchall())
    for record in _records(out):
        assert record["trajectory_events"]
        assert "trajectory_events" not in record["session_metadata"]
        metadata = stored[record["session_id"]]
        assert {k: record["session_metadata"][k] for k in metadata} == metadata
        assert {"triage_dossier", "reward_summary", "personas_used"} <= set(record)


def test_events_in_metadata_is_an_explicit_choice(cli, seeded, tmp_path):
    out = tmp_path / "x.jsonl"
    args = ("-o", str(out), "--database-url", seeded, "--include-all-statuses")
    assert cli(*args, "--events-in-metadata").returncode == 0
    for record in _records(out):
        assert record["session_metadata"]["trajectory_events"] == record["trajectory_events"]


@pytest.mark.parametrize(
    ("args", "where"),
    [
        pytest.param(("--session-id", "{a}", "--session-id", "{b}", "--include-all-statuses"),
                     "id IN ({a}, {b})", id="session-ids"),
        pytest.param(("--limit", "5", "--offset", "5", "--include-all-statuses"),
                     "true", id="limit-offset"),
        pytest.param(("--status", "succeeded", "--status", "failed", "--include-all-statuses"),
                     "status IN ('succeeded', 'failed')", id="statuses"),
        pytest.param(("--include-status", "pending", "--include-status", "quarantined"),
                     "review_status IN ('pending', 'quarantined')", id="review-statuses"),
        pytest.param(("--min-reward", "0.7", "--max-reward", "0.9", "--include-all-statuses"),
                     "(reward_stats->>'score')::float BETWEEN 0.7 AND 0.9", id="reward-range"),
        pytest.param(("--learning-key", "security-review", "--include-all-statuses"),
                     "metadata->>'learning_key' = 'security-review'", id="learning-key"),
        pytest.param(("--batch-size", "3", "--include-all-statuses"), "true", id="batch-size"),
    ],
)  # fmt: skip
def test_filters_select_what_sql_selects(cli, seeded, tmp_path, args, where):
    a, b = _ids(seeded, "true")[2:4]
    out = tmp_path / "f.jsonl"
    result = cli("--database-url", seeded, "-o", str(out), *(x.format(a=a, b=b) for x in args))
    assert result.returncode == 0, result.stderr
    tail = "OFFSET 5 LIMIT 5" if "--offset" in args else ""
    expected = _ids(seeded, where.format(a=a, b=b), tail=tail)
    assert [r["session_id"] for r in _records(out)] == expected


def test_trajectory_limit_spelling_and_truncation(cli, seeded, tmp_path):
    out = tmp_path / "t.jsonl"
    result = cli("--database-url", seeded, "-o", str(out), "--trajectory-limit", "7",
                 "--include-all-statuses")  # fmt: skip
    assert result.returncode == 0
    for record in _records(out):
        assert len(record["trajectory_events"]) == 7
        assert record["trajectory_events_truncated"] is (record["trajectory_event_count"] > 7)


def test_config_default_export_statuses(cli, seeded, tmp_path):
    config = tmp_path / "atlas.yaml"
    config.write_text(
        f"storage:\n  database_url: {seeded}\n"
        "runtime_safety:\n  review:\n    default_export_statuses: [pending]\n"
    )
    out = tmp_path / "c.jsonl"
    assert cli("--config", str(config), "-o", str(out)).returncode == 0
    assert [r["session_id"] for r in _records(out)] == _ids(seeded, "review_status = 'pending'")


def test_quiet_prints_nothing(cli, seeded, tmp_path):
    result = cli("--database-url", seeded, "-o", str(tmp_path / "q.jsonl"), "--quiet")
    assert result.returncode == 0
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("suffix", "opener"),
    [
        pytest.param(".gz", gzip.decompress, id="gzip"),
        pytest.param(".xz", lzma.decompress, id="xz"),
        pytest.param(".zst", lambda b: zstandard.ZstdDecompressor().stream_reader(b).read(),
                     id="zstd"),
    ],
)  # fmt: skip
def test_compression_by_extension(cli, seeded, tmp_path, suffix, opener):
    plain, packed = tmp_path / "p.jsonl", tmp_path / f"p.jsonl{suffix}"
    cli("--database-url", seeded, "-o", str(plain), "--include-all-statuses")
    cli("--database-url", seeded, "-o", str(packed), "--include-all-statuses")
    assert opener(packed.read_bytes()) == plain.read_bytes()


def test_stdout_output(cli, seeded):
    result = cli("--database-url", seeded, "-o", "-", "--include-all-statuses", "--limit", "4")
    assert result.returncode == 0
    assert [json.loads(line)["session_id"] for line in result.stdout.splitlines()] == _ids(
        seeded, "true"
    )[:4]


def test_nothing_matched_exits_1_with_gate_hint(cli, db_url, tmp_path):
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 6, seed=1)
        conn.execute("UPDATE sessions SET review_status = 'pending'")
    out = tmp_path / "none.jsonl"
    result = cli("--database-url", db_url, "-o", str(out))
    assert result.returncode == 1
    assert "hid 6 matching session(s)" in result.stderr
    assert "ATLAS_REVIEW_REQUIRE_APPROVAL=0" in result.stderr
    assert not out.exists()


def test_require_approval_off_exports_approved_and_pending(cli, seeded, tmp_path):
    out = tmp_path / "all.jsonl"
    result = cli("--database-url", seeded, "-o", str(out),
                 env={"ATLAS_REVIEW_REQUIRE_APPROVAL": "0"})  # fmt: skip
    assert result.returncode == 0
    expected = _ids(seeded, "review_status IN ('approved', 'pending')")
    assert [r["session_id"] for r in _records(out)] == expected


def test_unwritable_output_is_reported_before_any_query(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = cli("--database-url", "postgresql://u:pw@127.0.0.1:1/db",
                 "-o", str(blocker / "out.jsonl"))  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith(f"Error: Cannot create output directory {blocker}")


BIGINT = "9,223,372,036,854,775,807 (PostgreSQL's bigint)"
LEVELS_ONLY_COMPRESSED = (
    "--compression-level applies only to .gz, .xz and .zst outputs; {} is written "
    "uncompressed: leave it out, or name the output e.g. out.jsonl.gz."
)


@pytest.mark.parametrize(
    ("args", "line"),
    [
        pytest.param(("--limit", "-3"), "--limit must be a whole number >= 0, not -3.",
                     id="limit"),
        pytest.param(("--status", "done"),
                     "--status: unknown session status 'done'; use running, succeeded, failed.",
                     id="status"),
        pytest.param(("--include-status", "ok"), "--include-status: unknown review status 'ok'; "
                     "use pending, approved, quarantined or all.", id="review"),
        pytest.param(("--created-after", "yesterday"), "--created-after 'yesterday' is not a "
                     "date: use ISO 8601, e.g. 2026-01-31 or 2026-01-31T12:00:00+00:00.",
                     id="date"),
        pytest.param(("--include-status", "approved", "--include-all-statuses"),
                     "--include-status and --include-all-statuses cannot be combined.", id="both"),
        pytest.param(("--min-reward", "nan"),
                     "--min-reward must be a finite number such as 0.8, not nan.", id="nan"),
        pytest.param(("--max-reward", "1e400"),
                     "--max-reward must be a finite number such as 0.8, not inf.", id="inf"),
        pytest.param(("--min-reward", "0.9", "--max-reward", "0.1"),
                     "--min-reward (0.9) is greater than --max-reward (0.1).", id="reward-range"),
        pytest.param(("--offset", str(2**63)),
                     f"--offset must be at most {BIGINT}, not {2**63}.", id="offset-bigint"),
        pytest.param(("--limit", str(2**63)),
                     f"--limit must be at most {BIGINT}, not {2**63}.", id="limit-bigint"),
        pytest.param(("--batch-size", str(2**63)),
                     f"--batch-size must be at most {BIGINT}, not {2**63}.", id="batch-bigint"),
        pytest.param(("--batch-size", "0"),
                     "--batch-size must be a whole number >= 1, not 0.", id="batch-zero"),
        pytest.param(("--trajectory-event-limit", str(2**63)),
                     f"--trajectory-event-limit must be at most {BIGINT}, not {2**63}.",
                     id="events-bigint"),
        pytest.param(("--session-id", str(2**31)),
                     f"--session-id must be at most 2,147,483,647, not {2**31}.", id="id-int4"),
        pytest.param(("--compression-level", "3"), LEVELS_ONLY_COMPRESSED.format("o.jsonl"),
                     id="level-on-plain"),
        pytest.param(("-o", "-", "--compression-level", "3"),
                     LEVELS_ONLY_COMPRESSED.format("stdout"), id="level-on-stdout"),
        pytest.param(("-o", "o.jsonl.gz", "--compression-level", "99"),
                     "--compression-level 99 is out of range for gzip (o.jsonl.gz): use 0 to 9.",
                     id="gzip-99"),
        pytest.param(("-o", "o.jsonl.xz", "--compression-level", "10"),
                     "--compression-level 10 is out of range for xz (o.jsonl.xz): use 0 to 9.",
                     id="xz-10"),
        pytest.param(("-o", "o.jsonl.zst", "--compression-level", "0"),
                     "--compression-level 0 is out of range for zstd (o.jsonl.zst): use 1 to 22.",
                     id="zstd-0"),
        pytest.param(("--min-margin", "0.2"),
                     "--min-margin does not apply to --format jsonl: it is for dpo only.",
                     id="margin-jsonl"),
        pytest.param(("--format", "grpo", "--records", "flat"),
                     "--records does not apply to --format grpo: it is for parquet only.",
                     id="records-grpo"),
        pytest.param(("--group-by", "task"), "--group-by does not apply to --format jsonl: it is "
                     "for grpo and dpo only.", id="group-by-jsonl"),
        pytest.param(("-o", "o.parquet", "--format", "parquet", "--group-by", "task"),
                     "--group-by does not apply to --format parquet: it is for grpo and dpo only.",
                     id="group-by-parquet"),
        pytest.param(("--format", "dpo", "--min-group-size", "3"),
                     "--min-group-size does not apply to --format dpo: it is for grpo only.",
                     id="group-size-dpo"),
        pytest.param(("--format", "grpo", "--events-in-metadata"),
                     "--events-in-metadata does not apply to --format grpo: it is for jsonl only.",
                     id="events-in-metadata-grpo"),
        pytest.param(("-o", "o.parquet", "--format", "parquet", "--compression-level", "3"),
                     "--compression-level does not apply to --format parquet: it is for jsonl, "
                     "grpo and dpo only.", id="level-parquet"),
    ],
)  # fmt: skip
def test_bad_flags_are_one_line_errors(capsys, monkeypatch, tmp_path, args, line):
    monkeypatch.chdir(tmp_path)
    rc = main(["--database-url", "postgresql://u@127.0.0.1:1/db", "-o", "o.jsonl", *args])
    assert (rc, capsys.readouterr().err) == (2, f"Error: {line}\n")
    assert list(tmp_path.iterdir()) == []


def test_parquet_without_pyarrow_names_the_extra(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # as if not installed
    rc = main(["--database-url", "postgresql://u@127.0.0.1:1/db", "-o",
               str(tmp_path / "o.parquet"), "--format", "parquet"])  # fmt: skip
    err = capsys.readouterr().err
    assert (rc, err.count("\n")) == (2, 1)
    assert err.startswith("Error: pyarrow is not installed, and --format parquet needs it: run ")
    assert "pip install" in err and "[train]'" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("level", ["0", "9"])
def test_gzip_takes_the_level_given(seeded, tmp_path, capsys, level):
    out = tmp_path / f"l{level}.jsonl.gz"
    rc = main(["--database-url", seeded, "-o", str(out), "--include-all-statuses", "-q",
               "--compression-level", level])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    plain = gzip.decompress(out.read_bytes())
    # Level 0 stores the data: the file is larger than what it holds.
    assert (out.stat().st_size > len(plain)) == (level == "0")


def test_unreachable_database_leaves_no_file(cli, tmp_path):
    out = tmp_path / "o.jsonl"
    result = cli("--database-url", "postgresql://ann:hunter2@127.0.0.1:1/atlas", "-o", str(out))
    assert result.returncode == 2
    assert result.stderr.strip().startswith(
        "Error: Database at postgresql://ann:***@127.0.0.1:1/atlas refused the connection"
    )
    assert "hunter2" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def _wait_until_blocked(url: str, deadline: float = 30.0) -> None:
    """Poll until an arc-atlas query waits on a lock (queries, not sleeps, pace the loop)."""
    end = time.monotonic() + deadline
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < end:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'arc-atlas' "
                "AND wait_event_type = 'Lock'"
            ).fetchone()
            if row and row[0]:
                return
    raise AssertionError("the export never blocked on the lock")


def _export_process(url: str, out: Path, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "ATLAS_DATABASE_URL"}
    return subprocess.Popen(
        [sys.executable, "-m", "atlas.cli", "--database-url", url, "-o", str(out),
         "--include-all-statuses", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("sig", "code"),
    [
        pytest.param(signal.SIGINT, 130, id="SIGINT"),
        pytest.param(signal.SIGTERM, 143, id="SIGTERM"),
    ],
)
def test_signal_during_export_leaves_nothing(seeded, tmp_path, sig, code):
    out = tmp_path / "sig.jsonl"
    with psycopg.connect(seeded) as locker:
        locker.execute("LOCK TABLE step_results IN ACCESS EXCLUSIVE MODE")
        proc = _export_process(seeded, out, "--batch-size", "5")
        _wait_until_blocked(seeded)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code
    assert "no partial output" in stderr
    assert list(tmp_path.iterdir()) == []


def test_an_export_removes_what_a_killed_export_to_the_same_file_left(seeded, tmp_path):
    out = tmp_path / "again.jsonl"
    with psycopg.connect(seeded) as locker:
        locker.execute("LOCK TABLE step_results IN ACCESS EXCLUSIVE MODE")
        proc = _export_process(seeded, out, "--batch-size", "5")
        _wait_until_blocked(seeded)
        proc.kill()  # SIGKILL: nothing runs to clean up
        proc.communicate(timeout=60)
    (orphan,) = tmp_path.glob(".again.jsonl.*.partial")
    assert main(["--database-url", seeded, "-o", str(out), "--include-all-statuses", "-q"]) == 0
    assert not orphan.exists()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["again.jsonl", "again.jsonl.manifest.json"]


def test_statement_timeout_is_one_line(seeded, tmp_path, cli):
    config = tmp_path / "atlas.yaml"
    config.write_text(f"storage:\n  database_url: {seeded}\n  statement_timeout_seconds: 1\n")
    out = tmp_path / "slow.jsonl"
    with psycopg.connect(seeded) as locker:
        locker.execute("LOCK TABLE step_results IN ACCESS EXCLUSIVE MODE")
        result = cli("--config", str(config), "-o", str(out), "--include-all-statuses")
    assert result.returncode == 2
    assert result.stderr.startswith("Error: A query on ") and "statement_timeout" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_export_reads_one_snapshot(seeded, tmp_path):
    """Sessions committed during the export are not in it, even where paging would reach them."""
    before = set(_ids(seeded, "true"))
    out = tmp_path / "snap.jsonl"
    with psycopg.connect(seeded) as locker:
        locker.execute("LOCK TABLE step_results IN ACCESS EXCLUSIVE MODE")
        proc = _export_process(seeded, out, "--batch-size", "4")
        _wait_until_blocked(seeded)
        with psycopg.connect(seeded, autocommit=True) as writer:
            # Older than everything: keyset paging would reach them on a later page.
            writer.execute(
                "INSERT INTO sessions (task, status, review_status, created_at) "
                "SELECT 'late', 'succeeded', 'approved', now() - interval '400 days' "
                "FROM generate_series(1, 5)"
            )
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert {r["session_id"] for r in _records(out)} == before


def test_legacy_rows_export_with_warning_count(cli, db_url, tmp_path):
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 12, seed=4, legacy_fraction=1.0)
        conn.execute(
            "UPDATE sessions SET metadata = to_jsonb('{not json'::text) "
            "WHERE id = (SELECT min(id) FROM sessions)"
        )
    out = tmp_path / "legacy.jsonl"
    result = cli("--database-url", db_url, "-o", str(out), "--include-all-statuses")
    assert result.returncode == 0, result.stderr
    assert len(_records(out)) == 12
    assert "Warning: 1 session(s) held stored values that could not be decoded" in result.stderr
    assert all("event_type" in e for r in _records(out) for e in r["trajectory_events"])


def _limit_file_size() -> None:
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))


@pytest.mark.parametrize(("name", "extra"), [
    pytest.param("full.jsonl", (), id="plain"),
    pytest.param("full.jsonl.zst", ("--compression-level", "1"), id="zstd"),
])  # fmt: skip
def test_a_full_disk_is_one_line_and_leaves_nothing(seeded, tmp_path, name, extra):
    env = {k: v for k, v in os.environ.items() if k != "ATLAS_DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "atlas.cli", "--database-url", seeded, "-o", str(tmp_path / name),
         "--include-all-statuses", *extra],
        capture_output=True, text=True, env=env, preexec_fn=_limit_file_size, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"Error: Could not write {tmp_path / name} (File too large)")
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param("min_reward (0.9) is greater than max_reward (0.1).",
                     "--min-reward (0.9) is greater than --max-reward (0.1).", id="two-names"),
        pytest.param("status_filters: unknown session status 'limit'; use running.",
                     "--status: unknown session status 'limit'; use running.", id="quoted-value"),
        pytest.param("offset must be at most 9 (PostgreSQL's bigint), not 10; see limit.",
                     "--offset must be at most 9 (PostgreSQL's bigint), not 10; see --limit.",
                     id="apostrophe-is-no-quote"),
        pytest.param("review_status_filters: unknown", "--include-status: unknown",
                     id="longest-name-first"),
    ],
)  # fmt: skip
def test_parameter_names_become_flags(message, expected):
    exc = flag_message(InvalidFilter(message, parameter="x"))
    assert (str(exc), exc.parameter) == (expected, "x")


def test_every_filter_has_a_flag_or_is_not_a_flag_value():
    # The switches the CLI never passes as values need no flag of their own.
    no_flag = {"include_trajectory_events", "include_learning_data"}
    assert set(FILTER_KEYS) - no_flag <= set(PARAMETER_FLAGS)
