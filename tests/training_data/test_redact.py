"""Redaction at export (issue 12, part 3): rules, placeholders, report, config, the export path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atlas.errors import ConfigError
from atlas.storage.synthetic import seed_sessions
from atlas.training_data import Redactor, export_jsonl
from atlas.training_data import redact as redact_module

GITHUB = "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
GOOGLE = "AIzaSyA1234567890abcdefghijklmnopqrstuv"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk"
# One planted value per built-in rule: (rule, value as planted, what must disappear).
PLANTS: list[tuple[str, str, str]] = [
    ("aws_access_key", "AKIAQWERTYUIOPASDFGH", "AKIAQWERTYUIOPASDFGH"),
    ("api_key", "sk-proj-Zx9Qw8Er7Ty6Ui5Op4As3Df2", "sk-proj-Zx9Qw8Er7Ty6Ui5Op4As3Df2"),
    (
        "api_key",
        "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
        "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    ),
    ("api_key", "xoxb-1234567890-abcdefghij", "xoxb-1234567890-abcdefghij"),
    (
        "api_key",
        "AIzaSyA1234567890abcdefghijklmnopqrstuv",
        "AIzaSyA1234567890abcdefghijklmnopqrstuv",
    ),
    ("bearer_token", "Bearer tok3n.Secret-value_42", "tok3n.Secret-value_42"),
    ("jwt", JWT, JWT),
    (
        "private_key",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAplanted\n-----END RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEAplanted",
    ),
    ("url_password", "postgres://alice:Hunter2pw@db.internal:5432/app", "Hunter2pw"),
    ("email", "jane.doe@example.com", "jane.doe@example.com"),
    ("phone", "+1 415-555-0132", "415-555-0132"),
    ("card_number", "4111 1111 1111 1111", "4111 1111 1111 1111"),
    ("ip_address", "203.0.113.77", "203.0.113.77"),
    ("ip_address", "2001:db8::8a2e:370:7334", "2001:db8::8a2e:370:7334"),
]
LUHN_INVALID = "4111111111111112"


def test_each_builtin_rule_replaces_its_value():
    for rule, planted, secret in PLANTS:
        redactor = Redactor.builtin()
        text = redactor.redact_text(f"before {planted} after", "field")
        assert secret not in text, rule
        assert text.startswith("before ") and text.endswith(" after"), (rule, text)
        assert redactor.report == {rule: {"field": 1}}, (rule, redactor.report)


def test_context_is_kept_where_only_the_secret_goes():
    redactor = Redactor.builtin()
    text = redactor.redact_text("dsn postgres://alice:Hunter2pw@db.internal:5432/app", "x")
    assert text == "dsn postgres://alice:<PASSWORD_1>@db.internal:5432/app"
    assert redactor.redact_text("Authorization: Bearer abc123def456", "x") == (
        "Authorization: Bearer <BEARER_TOKEN_1>"
    )


def test_near_misses_are_left_alone():
    redactor = Redactor.builtin()
    text = (
        f"card {LUHN_INVALID}; date 2026-01-31; time 12:30:45; version 1.2.3; "
        "ms 1764467560000; octets 999.1.1.1; scope std::vector; mac 00:1a:2b:3c:4d:5e; "
        "uuid 9c5ef014-5280-4c51-a906-e1413261009a 58c2b868-1234-5678-9012-e4527ae7d033"
    )
    assert redactor.redact_text(text, "x") == text
    assert redactor.report == {}


def test_same_value_same_placeholder_numbered_per_rule():
    redactor = Redactor.builtin()
    first = redactor.redact_text("a@example.com b@example.com a@example.com 10.0.0.1", "x")
    second = redactor.redact_text("b@example.com 10.0.0.1", "y")
    assert first == "<EMAIL_1> <EMAIL_2> <EMAIL_1> <IP_1>"
    assert second == "<EMAIL_2> <IP_1>"
    assert redactor.report == {"email": {"x": 3, "y": 1}, "ip_address": {"x": 1, "y": 1}}
    assert redactor.total == 6


def test_record_walk_paths_keys_numbers_and_json_text():
    record: dict[str, Any] = {
        "task": "mail ops@example.com",
        "steps": [
            {"trace": "ip 10.1.2.3", "reward": {"judges": [{"rationale": "ops@example.com"}]}},
            {"trace": "nothing", "step_id": 5551234567},
        ],
        "session_metadata": {"reward_audit": json.dumps({"prompt": "key AKIAQWERTYUIOPASDFGH"})},
        "ops@example.com": 1.5,
        "flag": True,
        "none": None,
    }
    before = json.dumps(record)
    redactor = Redactor.builtin()
    out = redactor.redact_record(record)
    assert json.dumps(record) == before  # the input is untouched
    assert out["task"] == "mail <EMAIL_1>"
    assert out["steps"][0]["trace"] == "ip <IP_1>"
    assert out["steps"][0]["reward"]["judges"][0]["rationale"] == "<EMAIL_1>"
    assert out["steps"][1] is record["steps"][1]  # nothing to replace: shared, not copied
    assert json.loads(out["session_metadata"]["reward_audit"]) == {"prompt": "key <AWS_KEY_1>"}
    assert "ops@example.com" in out and out["ops@example.com"] == 1.5  # keys stay
    assert redactor.report == {
        "email": {"task": 1, "steps[].reward.judges[].rationale": 1},
        "ip_address": {"steps[].trace": 1},
        "aws_access_key": {"session_metadata.reward_audit": 1},
    }
    json.dumps(redactor.report)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "redact.yaml"
    path.write_text(text)
    return path


def test_config_adds_and_disables_rules(tmp_path):
    path = _write(
        tmp_path,
        "disable: [ip_address]\n"
        "rules:\n"
        "  - name: employee_id\n"
        "    pattern: 'EMP-\\d{6}'\n"
        "  - name: ticket\n"
        "    pattern: 'TCK-[0-9]+'\n"
        "    placeholder: TICKET_REF\n",
    )
    redactor = Redactor.from_config(path)
    text = redactor.redact_text("EMP-123456 TCK-9 10.0.0.1 x@example.com EMP-123456", "f")
    assert text == "<EMPLOYEE_ID_1> <TICKET_REF_1> 10.0.0.1 <EMAIL_1> <EMPLOYEE_ID_1>"
    assert redactor.report == {"email": {"f": 1}, "employee_id": {"f": 2}, "ticket": {"f": 1}}
    assert Redactor.from_config(_write(tmp_path, "")).redact_text("10.0.0.1", "f") == "<IP_1>"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("rules:\n  - name: broken\n    pattern: '([a-z'\n", ["broken", "invalid pattern"]),
        ("rules:\n  - name: empty\n    pattern: 'x*'\n", ["empty", "empty string"]),
        ("rules:\n  - name: Bad Name\n    pattern: 'x'\n", ["Bad Name"]),
        ("rules:\n  - name: nopattern\n", ["nopattern", "pattern"]),
        ("rules:\n  - name: email\n    pattern: 'x'\n", ["email", "taken"]),
        ("rules:\n  - name: p\n    pattern: 'x'\n    placeholder: lower\n", ["'p'", "placeholder"]),
        ("rules:\n  - name: p\n    pattern: 'x'\n    colour: red\n", ["'p'", "colour"]),
        ("disable: [no_such_rule]\n", ["no_such_rule"]),
        ("extra: 1\n", ["extra"]),
        ("rules: [\n", ["not valid YAML"]),
        ("- just\n- a list\n", ["mapping"]),
    ],
)
def test_bad_config_is_one_line_naming_file_and_rule(tmp_path, text, names):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        Redactor.from_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    for name in names:
        assert name in message


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="Cannot read redaction config"):
        Redactor.from_config(tmp_path / "absent.yaml")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
_sensitive = st.sampled_from([planted for _, planted, _ in PLANTS] + [LUHN_INVALID, ""])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=st.dictionaries(st.text(), _json, max_size=5), prefix=st.text(), plant=_sensitive)
def test_never_raises_and_is_idempotent(record, prefix, plant):
    record["planted"] = prefix + plant + prefix
    redactor = Redactor.builtin()
    once = redactor.redact_record(record)
    report = redactor.report
    assert redactor.redact_record(once) == once  # placeholders match no built-in rule
    assert redactor.report == report
    assert Redactor.builtin().redact_record(once) == once


# The export path, against a real PostgreSQL.

STEP_TRACE = "login AKIAQWERTYUIOPASDFGH as jane.doe@example.com from 203.0.113.77"
STEP_OUTPUT = "dsn postgres://alice:Hunter2pw@db.internal:5432/app card 4111 1111 1111 1111"
RATIONALE = f"called +1 415-555-0132 about jane.doe@example.com; order {LUHN_INVALID}"
METADATA_NOTE = "token Bearer tok3n.Secret-value_42 and sk-proj-Zx9Qw8Er7Ty6Ui5Op4As3Df2"
AUDIT_PROMPT = f"judge prompt: {JWT}"
EVENT_TEXT = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAplanted\n-----END RSA PRIVATE KEY-----"
    " from 2001:db8::8a2e:370:7334 by jane.doe@example.com"
)
SECRETS = [
    "AKIAQWERTYUIOPASDFGH", "jane.doe@example.com", "203.0.113.77", "Hunter2pw",
    "4111 1111 1111 1111", "415-555-0132", "tok3n.Secret-value_42",
    "sk-proj-Zx9Qw8Er7Ty6Ui5Op4As3Df2", "eyJhbGciOiJIUzI1NiJ9", "MIIEowIBAAKCAQEAplanted",
    "2001:db8::8a2e:370:7334",
]  # fmt: skip


def plant(url: str, session_ids: list[int]) -> None:
    """Plant the values above in a step trace, a step output, a judge rationale, the
    session metadata, reward_audit and a trajectory event payload of each session."""
    with psycopg.connect(url, autocommit=True) as conn:
        for sid in session_ids:
            step = conn.execute(
                "SELECT min(step_id) FROM step_results WHERE session_id = %s", (sid,)
            ).fetchone()[0]  # type: ignore[index]
            conn.execute(
                "UPDATE step_results SET trace = %s, output = %s, evaluation = "
                "jsonb_build_object('reward', jsonb_build_object('score', 0.5, 'judges', "
                "jsonb_build_array(jsonb_build_object('identifier', 'j', 'score', 0.5, "
                "'rationale', %s::text)))) WHERE session_id = %s AND step_id = %s",
                (STEP_TRACE, STEP_OUTPUT, RATIONALE, sid, step),
            )
            conn.execute(
                "UPDATE sessions SET metadata = coalesce(metadata, '{}'::jsonb) || "
                "jsonb_build_object('planted_note', %s::text), reward_audit = "
                "jsonb_build_array(jsonb_build_object('prompt', %s::text)) WHERE id = %s",
                (METADATA_NOTE, AUDIT_PROMPT, sid),
            )
            event = conn.execute(
                "SELECT min(id) FROM trajectory_events WHERE session_id = %s", (sid,)
            ).fetchone()[0]  # type: ignore[index]
            conn.execute(
                "UPDATE trajectory_events SET event = jsonb_set(event, '{payload}', "
                "jsonb_build_object('text', %s::text)) WHERE id = %s",
                (EVENT_TEXT, event),
            )


def expected_counts(records: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per rule and field path, how often the planted values occur in unredacted records
    (plain substring counts: independent of the redactor's own patterns)."""
    counts: dict[str, dict[str, int]] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, str):
            for rule, planted, _ in PLANTS:
                n = value.count(planted)
                if n:
                    counts.setdefault(rule, {}).setdefault(path, 0)
                    counts[rule][path] += n
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else key)
        elif isinstance(value, list):
            for item in value:
                walk(item, f"{path}[]")

    for record in records:
        walk(record, "")
    return counts


@pytest.fixture
def planted(db_url: str) -> tuple[str, list[int]]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 6, seed=5)
        ids = [row[0] for row in conn.execute("SELECT id FROM sessions ORDER BY id LIMIT 3")]
    plant(db_url, ids)
    return db_url, ids


def test_export_replaces_every_planted_value_and_counts_them(planted, tmp_path):
    url, ids = planted
    plain_path, red_path = tmp_path / "plain.jsonl", tmp_path / "red.jsonl"
    export_jsonl(str(plain_path), url, include_all_review_statuses=True)
    plain = [json.loads(line) for line in plain_path.read_text().splitlines()]
    redactor = Redactor.builtin()
    summary = export_jsonl(str(red_path), url, include_all_review_statuses=True, redact=redactor)
    raw = red_path.read_bytes()
    for secret in SECRETS:
        assert secret.encode() not in raw, secret
        assert json.dumps(secret)[1:-1].encode() not in raw, secret
    assert LUHN_INVALID.encode() in raw
    assert b"postgres://alice:<PASSWORD_1>@db.internal:5432/app" in raw
    expected = expected_counts(plain)
    assert summary.redaction == expected == redactor.report
    # The planted fields are all among the counted paths.
    for path in ("steps[].trace", "steps[].output", "steps[].reward.judges[].rationale",
                 "session_metadata.planted_note", "reward_audit[].prompt",
                 "trajectory_events[].payload.text"):  # fmt: skip
        assert any(path in paths for paths in expected.values()), path
    redacted = {r["session_id"]: r for r in map(json.loads, raw.decode().splitlines())}
    for sid in ids:
        record = redacted[sid]
        step = record["steps"][0]
        # One address, one token, whatever the field or the session.
        assert step["trace"] == "login <AWS_KEY_1> as <EMAIL_1> from <IP_1>"
        assert step["reward"]["judges"][0]["rationale"] == (
            f"called <PHONE_1> about <EMAIL_1>; order {LUHN_INVALID}"
        )
        assert (
            step["output"] == "dsn postgres://alice:<PASSWORD_1>@db.internal:5432/app card <CARD_1>"
        )
        assert record["trajectory_events"][0]["payload"]["text"] == (
            "<PRIVATE_KEY_1> from <IP_2> by <EMAIL_1>"
        )
    # Sessions without plants are written as they would be without redaction.
    others = [r for r in plain if r["session_id"] not in ids]
    assert others and all(redacted[r["session_id"]] == r for r in others)


def _untriggered() -> Redactor:
    """The built-ins with the RE2 trigger switched off: every string is scanned."""
    redactor = Redactor.builtin()
    redactor._trigger = redactor._trigger_text = None
    return redactor


_pieces = st.lists(
    st.sampled_from([planted for _, planted, _ in PLANTS])
    | st.sampled_from(
        [
            " ",
            "\n",
            "\t",
            '"',
            "\\",
            "\\n",
            ":",
            "@",
            "-",
            ".",
            "é",
            "١٢٣",
            "\x01",
            "(",
            ")",
            "+",
            "7",
            "12",
        ]
    )
    | st.text(max_size=8),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(pieces=_pieces)
def test_the_trigger_hides_no_match(pieces):
    """Every built-in match, decoded or JSON-escaped, is flagged by the fast trigger."""
    from atlas.training_data.export import encode_line

    text = "".join(pieces)
    fast, slow = Redactor.builtin(), _untriggered()
    assert fast.redact_text(text, "t") == slow.redact_text(text, "t")
    events = orjson.Fragment(orjson.dumps([{"payload": {"text": text}, "n": 1.25}]))
    record = {"task": text, "trajectory_events": events}
    fast, slow = Redactor.builtin(), _untriggered()
    line = fast.redact_line(record, encode_line(record), encode_line)
    assert orjson.loads(line) == orjson.loads(encode_line(slow.redact_record(record)))
    assert fast.report == slow.report


def test_remembered_clean_texts_never_hide_a_secret_or_a_count(monkeypatch):
    monkeypatch.setattr(redact_module, "_CLEAN_ENTRIES", 3)
    redactor = Redactor.builtin()
    record = {"a": "succeeded", "b": ["succeeded", "mail bob@example.com"], "c": "succeeded"}
    for _ in range(3):
        out = redactor.redact_record(record)
        assert out == {"a": "succeeded", "b": ["succeeded", "mail <EMAIL_1>"], "c": "succeeded"}
    assert redactor.report == {"email": {"b[]": 3}}
    for word in ("one", "two", "three", "four"):  # past the bound: forgotten, still right
        assert redactor.redact_text(word) == word
    assert len(redactor._clean) <= 3
    assert redactor.redact_text("mail bob@example.com", "d") == "mail <EMAIL_1>"
    assert redactor.report["email"] == {"b[]": 3, "d": 1}
