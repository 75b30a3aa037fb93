"""``arc-atlas export --redact`` / ``--redact-config`` through the real entry point."""

from __future__ import annotations

import json

import psycopg
import pytest

from atlas.storage.synthetic import seed_sessions

EMAIL = "jane.doe@example.com"
KEY = "AKIAQWERTYUIOPASDFGH"
IP = "203.0.113.77"
DSN = "postgres://alice:Hunter2pw@db.internal:5432/app"
NOT_A_CARD = "4111111111111112"  # fails the Luhn check
TRACE = f"login {KEY} as {EMAIL} from {IP} via {DSN}; order {NOT_A_CARD}; EMP-123456"
RATIONALE = f"judge saw {EMAIL} at {IP}"
EVENT = f"tool result for {EMAIL}: card 4111-1111-1111-1111"


@pytest.fixture
def planted(db_url: str) -> tuple[str, list[int]]:
    """Five sessions; the first two carry secrets in a trace, a judge rationale,
    the metadata, reward_audit and an event payload."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 5, seed=3)
        ids = [row[0] for row in conn.execute("SELECT id FROM sessions ORDER BY id LIMIT 2")]
        for sid in ids:
            conn.execute(
                "UPDATE step_results SET trace = %s, evaluation = jsonb_build_object('reward', "
                "jsonb_build_object('score', 0.5, 'judges', jsonb_build_array("
                "jsonb_build_object('identifier', 'j', 'score', 0.5, 'rationale', %s::text))))"
                " WHERE session_id = %s",
                (TRACE, RATIONALE, sid),
            )
            conn.execute(
                "UPDATE sessions SET metadata = coalesce(metadata, '{}'::jsonb) || "
                "jsonb_build_object('contact', %s::text), reward_audit = "
                "jsonb_build_object('prompt', %s::text) WHERE id = %s",
                (EMAIL, f"key {KEY}", sid),
            )
            conn.execute(
                "UPDATE trajectory_events SET event = jsonb_set(event, '{payload}', "
                "jsonb_build_object('text', %s::text)) WHERE session_id = %s",
                (EVENT, sid),
            )
    return db_url, ids


def _export(cli, url, out, *flags):
    return cli(
        "export", "--database-url", url, "--output", str(out), "--include-all-statuses", *flags
    )


def test_redact_replaces_planted_values_and_prints_counts(cli, planted, tmp_path):
    url, ids = planted
    out = tmp_path / "out.jsonl"
    result = _export(cli, url, out, "--redact")
    assert result.returncode == 0, result.stderr
    raw = out.read_bytes()
    for secret in (EMAIL, KEY, IP, "Hunter2pw", "4111-1111-1111-1111"):
        assert secret.encode() not in raw, secret
    assert NOT_A_CARD.encode() in raw
    assert b"EMP-123456" in raw  # no such built-in rule
    assert b"postgres://alice:<PASSWORD_1>@db.internal:5432/app" in raw
    records = {r["session_id"]: r for r in map(json.loads, raw.decode().splitlines())}
    assert len(records) == 5
    for sid in ids:
        record = records[sid]
        assert all(
            step["trace"] == "login <AWS_KEY_1> as <EMAIL_1> from <IP_1> via "
            f"postgres://alice:<PASSWORD_1>@db.internal:5432/app; order {NOT_A_CARD}; EMP-123456"
            for step in record["steps"]
        )
        assert record["steps"][0]["reward"]["judges"][0]["rationale"] == (
            "judge saw <EMAIL_1> at <IP_1>"
        )
        assert record["session_metadata"]["contact"] == "<EMAIL_1>"
        assert record["reward_audit"] == {"prompt": "key <AWS_KEY_1>"}
        assert {e["payload"]["text"] for e in record["trajectory_events"]} == {
            "tool result for <EMAIL_1>: card <CARD_1>"
        }
    lines = result.stderr.splitlines()
    summary = next(i for i, line in enumerate(lines) if line.startswith("Redacted "))
    per_rule = {
        line.split(":")[0].strip(): int(line.split(":")[1].split("(")[0].replace(",", ""))
        for line in lines[summary + 1 :]
    }
    total = int(lines[summary].split()[1].replace(",", ""))
    assert total == sum(per_rule.values())
    assert set(per_rule) == {
        "email", "aws_access_key", "ip_address", "url_password", "card_number"
    }  # fmt: skip
    steps = sum(len(records[sid]["steps"]) for sid in ids)
    events = sum(len(records[sid]["trajectory_events"]) for sid in ids)
    assert per_rule["url_password"] == steps
    assert per_rule["card_number"] == events
    assert "steps[].trace" in lines[summary + 1 + list(per_rule).index("url_password")]


def test_quiet_prints_only_the_total(cli, planted, tmp_path):
    url, _ = planted
    result = _export(cli, url, tmp_path / "q.jsonl", "--redact", "--quiet")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Redacted "), lines


def test_config_adds_and_disables_rules(cli, planted, tmp_path):
    url, _ = planted
    config = tmp_path / "redact.yaml"
    config.write_text(
        "disable: [ip_address]\nrules:\n  - name: employee_id\n    pattern: 'EMP-\\d{6}'\n"
    )
    out = tmp_path / "c.jsonl"
    result = _export(cli, url, out, "--redact-config", str(config))
    assert result.returncode == 0, result.stderr
    raw = out.read_bytes()
    assert IP.encode() in raw  # disabled
    assert b"EMP-123456" not in raw and b"<EMPLOYEE_ID_1>" in raw
    assert EMAIL.encode() not in raw  # the other built-ins still apply
    assert "employee_id:" in result.stderr and "ip_address" not in result.stderr


def test_bad_config_is_one_line_rc_2_and_no_file(cli, planted, tmp_path):
    url, _ = planted
    config = tmp_path / "bad.yaml"
    config.write_text("rules:\n  - name: broken\n    pattern: '([a-z'\n")
    out = tmp_path / "never.jsonl"
    result = _export(cli, url, out, "--redact-config", str(config))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert str(config) in result.stderr and "broken" in result.stderr
    assert not out.exists()
    assert list(tmp_path.glob("never*")) == []


def test_state_stays_jsonl_only_while_redaction_takes_every_format(cli, planted, tmp_path):
    url, _ = planted
    result = _export(cli, url, tmp_path / "x.parquet", "--state", str(tmp_path / "s.json"),
                     "--format", "parquet")  # fmt: skip
    assert result.returncode == 2
    assert "--state does not apply to --format parquet" in result.stderr
    out = tmp_path / "y.parquet"
    result = _export(cli, url, out, "--redact", "--format", "parquet", "--records", "flat")
    assert result.returncode == 0, result.stderr
    assert EMAIL.encode() not in out.read_bytes() and "Redacted " in result.stderr
