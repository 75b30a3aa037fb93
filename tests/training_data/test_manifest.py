"""Export manifests and arc-atlas verify: a changed byte, a changed database, a missing file."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import psycopg
import pytest

from atlas.errors import ConfigError
from atlas.storage import seed_sessions
from atlas.training_data import Redactor, export_jsonl, verify_manifest
from atlas.training_data.manifest import manifest_path, merkle_root, record_hash

ALL = {"include_all_review_statuses": True}


@pytest.fixture
def seeded(db_url: str) -> str:
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 7, seed=21)
    return db_url


def test_the_manifest_records_the_export(seeded: str, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    summary = export_jsonl(str(out), seeded, manifest=True, min_reward=0.1, **ALL)
    data = orjson.loads(manifest_path(out).read_bytes())
    assert data["schema_version"] == 6 and data["arc_atlas_version"]
    assert data["filters"]["min_reward"] == 0.1 and data["review_gate"] == "all"
    assert data["counts"] == {"sessions": summary.sessions, "steps": summary.steps,
                              "events": summary.events}  # fmt: skip
    lines = out.read_bytes().splitlines(keepends=True)
    ids = [orjson.loads(line)["session_id"] for line in lines]
    assert [item[0] for item in data["records"]["items"]] == ids
    assert data["records"]["merkle_root"] == merkle_root([record_hash(x) for x in lines])
    assert data["snapshot"]["snapshot"] and data["watermark"] is None
    assert verify_manifest(manifest_path(out), db_url=seeded).ok


def test_one_changed_byte_is_caught_and_named(seeded: str, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    export_jsonl(str(out), seeded, manifest=True, **ALL)
    raw = bytearray(out.read_bytes())
    lines = raw.split(b"\n")
    at = len(lines[0]) + 1 + lines[1].index(b'"task"') + 9  # a byte inside record 2's task
    raw[at] = ord("#") if raw[at] != ord("#") else ord("$")
    out.write_bytes(bytes(raw))
    result = verify_manifest(manifest_path(out))
    assert not result.ok
    assert any("sha256 differs" in p for p in result.problems)
    assert any(p.startswith("record 2 ") for p in result.problems)


def test_a_changed_database_or_a_missing_file_is_reported(seeded: str, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl.gz"
    export_jsonl(str(out), seeded, manifest=True, **ALL)
    assert verify_manifest(manifest_path(out), db_url=seeded).ok
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute("UPDATE sessions SET final_answer = 'edited' WHERE id = 3")
        conn.execute("DELETE FROM sessions WHERE id = 5")
    problems = verify_manifest(manifest_path(out), db_url=seeded).problems
    assert any("no longer holds 1" in p and "5" in p for p in problems)
    assert any("1 record(s) differently (first: session 3)" in p for p in problems)
    assert verify_manifest(manifest_path(out)).ok  # the file itself did not change
    out.unlink()
    assert "missing" in verify_manifest(manifest_path(out)).problems[0]


def test_no_manifest_for_stdout_or_when_not_asked_and_bad_manifests(
    seeded: str, tmp_path: Path
) -> None:
    out = tmp_path / "plain.jsonl"
    export_jsonl(str(out), seeded, **ALL)
    assert not manifest_path(out).exists()
    (tmp_path / "bad.json").write_text('{"manifest_version": 99}')
    with pytest.raises(ConfigError, match="not a readable export manifest"):
        verify_manifest(tmp_path / "bad.json")


def test_a_redacted_export_is_verified_as_a_file_only(seeded: str, tmp_path: Path) -> None:
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute("UPDATE sessions SET task = 'mail ada@example.org' WHERE id = 2")
    out = tmp_path / "r.jsonl.gz"
    export_jsonl(str(out), seeded, manifest=True, redact=Redactor.builtin(), **ALL)
    data = orjson.loads(manifest_path(out).read_bytes())
    assert data["redaction"]["email"]
    assert verify_manifest(manifest_path(out)).ok
    assert "redacted" in verify_manifest(manifest_path(out), db_url=seeded).problems[0]
    assert b"ada@example.org" not in gzip.decompress(out.read_bytes())


def test_cli_writes_a_manifest_and_verify_exits_by_result(cli, seeded: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "c.jsonl"
    done = cli("export", "--database-url", seeded, "--include-all-statuses", "--output", str(out))
    assert done.returncode == 0, done.stderr
    manifest = manifest_path(out)
    ok = cli("verify", str(manifest), "--database-url", seeded)
    assert ok.returncode == 0 and ok.stdout.startswith("OK: ")
    out.write_bytes(out.read_bytes().replace(b'"task":"', b'"task":"X', 1))
    bad = cli("verify", str(manifest))
    assert bad.returncode == 1 and "Differs: " in bad.stderr and "Traceback" not in bad.stderr
    none = tmp_path / "n.jsonl"
    cli("export", "--database-url", seeded, "--include-all-statuses", "--no-manifest",
        "--output", str(none))  # fmt: skip
    assert none.exists() and not manifest_path(none).exists()
    missing = cli("verify", str(tmp_path / "nope.manifest.json"))
    assert missing.returncode == 2 and missing.stderr.startswith("Error: ")
