"""Manifests and redaction for the trainer formats: Parquet rows, GRPO groups, DPO pairs."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from psycopg import sql

from atlas.storage.migrate import apply_migrations
from atlas.storage.synthetic import seed_sessions
from atlas.training_data import Redactor, verify_manifest
from atlas.training_data.manifest import manifest_path, merkle_root, parquet_records, record_hash
from trainers.exports import export_dpo, export_grpo, export_parquet

ALL = {"include_all_review_statuses": True}
EMAIL = "grace.hopper@example.com"

EXPORTS = [
    pytest.param(export_parquet, "out.parquet", {"kind": "rl"}, id="parquet-rl"),
    pytest.param(export_parquet, "out.parquet", {"kind": "flat"}, id="parquet-flat"),
    pytest.param(export_grpo, "groups.jsonl", {"min_group_size": 2}, id="grpo"),
    pytest.param(export_dpo, "pairs.jsonl.gz", {"min_margin": 0.01}, id="dpo"),
]


@pytest.fixture
def grouped(server_url: str, url_for: Callable[[str], str]) -> Iterator[str]:
    """Sixteen sessions on four shared tasks (so groups and pairs form), one task with an email."""
    name = f"atlas_mf_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(url_for(name), autocommit=True) as conn:
        apply_migrations(conn)
        seed_sessions(conn, 16, seed=9)
        conn.execute("UPDATE sessions SET task = 'Shared task ' || (id % 4)")
        conn.execute(
            "UPDATE sessions SET task = task || ' for ' || %s::text, "
            "final_answer = final_answer || ' write to ' || %s::text WHERE id %% 4 = 0",
            (EMAIL, EMAIL),
        )
    yield url_for(name)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _records_of(path: Path, fmt: str) -> list[bytes]:
    """The lines (JSONL) or canonical rows (Parquet) the manifest hashes."""
    if fmt == "parquet":
        return [
            orjson.dumps(row, default=str, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)
            for row in pq.read_table(path).to_pylist()
        ]
    import gzip

    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return raw.splitlines(keepends=True)


@pytest.mark.parametrize(("export", "name", "options"), EXPORTS)
def test_every_format_writes_a_manifest_that_verifies(
    grouped: str, tmp_path: Path, export: Any, name: str, options: dict[str, Any]
) -> None:
    out = tmp_path / name
    summary = export(str(out), grouped, manifest=True, **options, **ALL)
    assert summary.records > 0
    data = orjson.loads(manifest_path(out).read_bytes())
    fmt = "parquet" if name.endswith(".parquet") else summary.format
    assert data["format"] == fmt and data["records"]["key"] == "position"
    assert data["counts"]["records"] == summary.records == len(data["records"]["items"])
    assert data["counts"]["sessions"] == summary.sessions == 16
    assert data["source_sessions"] == [[1, 16]]
    assert data["review_gate"] == "all" and data["schema_version"] >= 6
    for key, value in options.items():
        assert data["options"][key] == value
    leaves = [record_hash(line) for line in _records_of(out, fmt)]
    assert [bytes.fromhex(h) for _, h in data["records"]["items"]] == leaves
    assert data["records"]["merkle_root"] == merkle_root(leaves)
    result = verify_manifest(manifest_path(out), db_url=grouped)
    assert result.ok, result.problems
    assert result.database_checked


@pytest.mark.parametrize(("export", "name", "options"), EXPORTS)
def test_a_changed_database_is_caught_for_every_format(
    grouped: str, tmp_path: Path, export: Any, name: str, options: dict[str, Any]
) -> None:
    out = tmp_path / name
    export(str(out), grouped, manifest=True, **options, **ALL)
    with psycopg.connect(grouped, autocommit=True) as conn:
        # Every format carries the task (the prompt of a pair, a group, an RL record).
        conn.execute("UPDATE sessions SET task = task || ' (edited)'")
    problems = verify_manifest(manifest_path(out), db_url=grouped).problems
    assert any("would now write record 1 " in p for p in problems), problems
    with psycopg.connect(grouped, autocommit=True) as conn:
        conn.execute("DELETE FROM sessions WHERE id = 2")
    problems = verify_manifest(manifest_path(out), db_url=grouped).problems
    assert any("no longer holds 1 of the 16 sessions" in p for p in problems), problems
    assert verify_manifest(manifest_path(out)).ok  # the file itself did not change


def test_one_changed_parquet_value_is_caught_and_named(grouped: str, tmp_path: Path) -> None:
    out = tmp_path / "rl.parquet"
    export_parquet(str(out), grouped, manifest=True, **ALL)
    table = pq.read_table(out)
    column = table.column_names.index("task")
    tasks = table.column("task").to_pylist()
    tasks[2] = tasks[2] + "!"
    pq.write_table(table.set_column(column, "task", pa.array(tasks, pa.string())), out)
    problems = verify_manifest(manifest_path(out)).problems
    assert any("sha256 differs" in p for p in problems)
    assert any(p.startswith("record 3 differs") for p in problems), problems
    out.write_bytes(b"PAR1 not parquet")
    problems = verify_manifest(manifest_path(out)).problems
    assert any("cannot be read as its manifest's records" in p for p in problems), problems


def test_parquet_records_hash_rows_as_read_back(grouped: str, tmp_path: Path) -> None:
    out = tmp_path / "s.parquet"
    export_parquet(str(out), grouped, kind="sessions", manifest=True, **ALL)
    records = parquet_records(out)
    assert records.keys == list(range(1, 17))
    data = orjson.loads(manifest_path(out).read_bytes())
    assert data["records"]["merkle_root"] == merkle_root(records.hashes)
    assert "read back as JSON with sorted keys" in data["records"]["hash"]


@pytest.mark.parametrize(("export", "name", "options"), EXPORTS)
def test_redaction_reaches_every_format_and_is_reported(
    grouped: str, tmp_path: Path, export: Any, name: str, options: dict[str, Any]
) -> None:
    out = tmp_path / name
    plain = tmp_path / ("plain" + "".join(Path(name).suffixes))
    export(str(plain), grouped, **options, **ALL)
    assert any(EMAIL.encode() in line for line in _records_of(plain, _fmt(name)))
    summary = export(str(out), grouped, redact=Redactor.builtin(), manifest=True, **options, **ALL)
    lines = _records_of(out, _fmt(name))
    assert not any(EMAIL.encode() in line for line in lines)
    assert any(b"<EMAIL_1>" in line for line in lines)  # one placeholder for the one address
    assert not any(b"<EMAIL_2>" in line for line in lines)
    assert summary.redaction is not None and sum(summary.redaction["email"].values()) > 0
    data = orjson.loads(manifest_path(out).read_bytes())
    assert data["redaction"] == summary.redaction
    assert verify_manifest(manifest_path(out)).ok
    problems = verify_manifest(manifest_path(out), db_url=grouped).problems
    assert problems and "redacted" in problems[0]


def _fmt(name: str) -> str:
    return "parquet" if name.endswith(".parquet") else "jsonl"


def test_cli_parquet_with_redaction_writes_a_manifest_verify_accepts(
    cli: Any, grouped: str, tmp_path: Path
) -> None:
    out = tmp_path / "train.parquet"
    done = cli("export", "--database-url", grouped, "--include-all-statuses", "--format",
               "parquet", "--redact", "--output", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Redacted " in done.stderr and "email:" in done.stderr
    assert EMAIL not in str(pq.read_table(out).to_pylist())
    ok = cli("verify", str(manifest_path(out)))
    assert ok.returncode == 0 and ok.stdout.startswith("OK: "), ok.stderr
    pairs = tmp_path / "pairs.jsonl"
    done = cli("export", "--database-url", grouped, "--include-all-statuses", "--format", "dpo",
               "--min-margin", "0.01", "--no-manifest", "--output", str(pairs))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert pairs.exists() and not manifest_path(pairs).exists()
    groups = tmp_path / "groups.jsonl"
    done = cli("export", "--database-url", grouped, "--include-all-statuses", "--format", "grpo",
               "--output", str(groups))  # fmt: skip
    assert done.returncode == 0, done.stderr
    checked = cli("verify", str(manifest_path(groups)), "--database-url", grouped)
    assert checked.returncode == 0, checked.stderr
