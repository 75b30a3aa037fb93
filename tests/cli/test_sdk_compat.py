"""The CLI as atlas-sdk users type it: its config files, its status values, its review gate."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from atlas.cli.main import main

# A complete atlas-sdk config, in the shape of its configs/examples files:
# sections arc-atlas does not have (student, prompt_rewrite, adaptive_teaching)
# and an agent type it does not know (litellm).
SDK_CONFIG = """\
agent:
  type: litellm
  name: reviewer
  system_prompt: You review code for security problems.
  tools: []
  llm: {{provider: openai, model: gpt-5-mini, api_key_env: OPENAI_API_KEY, temperature: 0.2}}
  response_format: null
student: {{max_plan_tokens: 2048, max_step_tokens: 2048}}
teacher:
  llm: {{provider: openai, model: gpt-5-mini, api_key_env: OPENAI_API_KEY}}
rim:
  small_model: {{provider: gemini, model: gemini/gemini-2.5-flash, api_key_env: GEMINI_API_KEY}}
  large_model: {{provider: gemini, model: gemini/gemini-2.5-flash, api_key_env: GEMINI_API_KEY}}
  judge_prompt: Reward depth of analysis.
  variance_threshold: 0.15
orchestration: {{max_retries: 1, step_timeout_seconds: 900}}
prompt_rewrite: {{llm: {{provider: openai, model: gpt-5-mini}}}}
learning:
  gates: {{enforce_actionability: true, enforce_cue: true}}
adaptive_teaching: {{certify_first_run: false}}
storage:
  database_url: {url}
  min_connections: 1
  max_connections: 5
  statement_timeout_seconds: 30
runtime_safety:
  review:
    require_approval: true
    default_export_statuses: {statuses}
"""


def _where(url: str, where: str) -> list[int]:
    with psycopg.connect(url) as conn:
        query = f"SELECT id FROM sessions WHERE {where} ORDER BY created_at DESC, id DESC"
        return [row[0] for row in conn.execute(query).fetchall()]  # type: ignore[call-overload]


def _exported(path: Path) -> list[int]:
    return [json.loads(line)["session_id"] for line in path.read_text().splitlines()]


def sdk_config(tmp_path: Path, url: str, statuses: str = "[Approved]") -> Path:
    path = tmp_path / "atlas-sdk.yaml"
    path.write_text(SDK_CONFIG.format(url=url, statuses=statuses))
    return path


def _export(*args: str) -> int:
    return main(["-o", *args, "--quiet"])


# --- --config takes a complete atlas-sdk config -----------------------------


def test_export_reads_a_complete_atlas_sdk_config_with_one_warning(reviewed_url, tmp_path, capsys):
    config = sdk_config(tmp_path, reviewed_url, "[Approved, QUARANTINED]")
    out = tmp_path / "out.jsonl"
    assert _export(str(out), "--config", str(config)) == 0
    assert _exported(out) == _where(reviewed_url, "review_status IN ('approved', 'quarantined')")
    assert capsys.readouterr().err == (
        f"Warning: {config}: ignored section(s) student, prompt_rewrite, adaptive_teaching: "
        "arc-atlas does not know them (only storage and runtime_safety are read here).\n"
    )


def test_a_bad_value_in_a_used_section_is_still_an_error(reviewed_url, tmp_path, capsys):
    config = sdk_config(tmp_path, reviewed_url, "[approved, good]")
    assert _export(str(tmp_path / "x.jsonl"), "--config", str(config)) == 2
    assert "default_export_statuses: unknown review status 'good'" in capsys.readouterr().err


def test_run_still_validates_the_whole_file(reviewed_url, tmp_path, capsys):
    config = sdk_config(tmp_path, reviewed_url)
    assert main(["run", "--config", str(config), "--task", "hello"]) == 2
    assert "unknown key" in capsys.readouterr().err


def test_review_sessions_reads_an_atlas_sdk_config(reviewed_url, tmp_path, capsys):
    config = sdk_config(tmp_path, reviewed_url)
    assert main(["review", "sessions", "--config", str(config), "--status", "Quarantined"]) == 0
    assert "3 session(s), review status: quarantined" in capsys.readouterr().out


# --- statuses as atlas-sdk takes them ---------------------------------------


@pytest.mark.parametrize(
    ("args", "where"),
    [
        pytest.param(["--status", "SUCCEEDED"], "status = 'succeeded' AND "
                     "review_status = 'approved'", id="status"),
        pytest.param(["--include-status", "Approved", "--include-status", " PENDING"],
                     "review_status IN ('approved', 'pending')", id="include-status"),
        pytest.param(["--include-status", "ALL"], "TRUE", id="include-status-all"),
    ],
)  # fmt: skip
def test_status_flags_are_case_insensitive(reviewed_url, tmp_path, args, where):
    out = tmp_path / "out.jsonl"
    assert _export(str(out), "--database-url", reviewed_url, *args) == 0
    assert _exported(out) == _where(reviewed_url, where)


@pytest.mark.parametrize("value", [pytest.param(v, id=v) for v in ("all", "*", "All")])
def test_default_export_statuses_all_exports_every_status(
    reviewed_url, tmp_path, monkeypatch, value
):
    monkeypatch.setenv("ATLAS_REVIEW_DEFAULT_EXPORT_STATUSES", value)
    out = tmp_path / "out.jsonl"
    assert _export(str(out), "--database-url", reviewed_url) == 0
    assert _exported(out) == _where(reviewed_url, "TRUE")


def test_review_approve_from_status_is_case_insensitive(reviewed_url, capsys):
    assert (
        main(["review", "approve", "--from-status", "Pending", "--database-url", reviewed_url]) == 0
    )
    assert "Set 3 session(s) to approved." in capsys.readouterr().err


# --- the review gate never leaks quarantine --------------------------------


def test_require_approval_off_exports_approved_and_pending_only(
    reviewed_url, tmp_path, monkeypatch
):
    monkeypatch.setenv("ATLAS_REVIEW_REQUIRE_APPROVAL", "0")
    out = tmp_path / "out.jsonl"
    assert _export(str(out), "--database-url", reviewed_url) == 0
    assert _exported(out) == _where(reviewed_url, "review_status IN ('approved', 'pending')")


def test_config_require_approval_false_exports_approved_and_pending_only(reviewed_url, tmp_path):
    config = tmp_path / "atlas.yaml"
    config.write_text("runtime_safety:\n  review:\n    require_approval: false\n")
    out = tmp_path / "out.jsonl"
    assert _export(str(out), "--database-url", reviewed_url, "--config", str(config)) == 0
    assert _exported(out) == _where(reviewed_url, "review_status IN ('approved', 'pending')")


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--include-all-statuses"], id="include-all"),
        pytest.param(["--include-status", "quarantined"], id="by-name"),
        pytest.param(["--include-status", "*"], id="star"),
    ],
)
def test_quarantined_comes_back_only_when_asked_for(reviewed_url, tmp_path, monkeypatch, args):
    monkeypatch.setenv("ATLAS_REVIEW_REQUIRE_APPROVAL", "0")
    out = tmp_path / "out.jsonl"
    assert _export(str(out), "--database-url", reviewed_url, *args) == 0
    assert set(_exported(out)) >= set(_where(reviewed_url, "review_status = 'quarantined'"))


def _hint(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    out = tmp_path / "none.jsonl"
    assert _export(str(out), "--database-url", url, *args) == 1
    assert not out.exists()
    return capsys.readouterr().err


def test_hint_for_hidden_quarantined_sessions_never_suggests_pending(
    reviewed_url, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("ATLAS_REVIEW_REQUIRE_APPROVAL", "0")
    quarantined = _where(reviewed_url, "review_status = 'quarantined'")
    err = _hint(reviewed_url, tmp_path, capsys, *(f"--session-id={i}" for i in quarantined))
    assert err == (
        f"No sessions exported; nothing was written to {tmp_path / 'none.jsonl'}. The review gate "
        "(approved, pending only, from ATLAS_REVIEW_REQUIRE_APPROVAL=0) hid 3 matching "
        "session(s): 3 quarantined. To include them, pass --include-status approved "
        "--include-status pending --include-status quarantined or pass --include-all-statuses.\n"
    )


def test_hint_under_the_default_gate_names_quarantined_not_pending(reviewed_url, tmp_path, capsys):
    quarantined = _where(reviewed_url, "review_status = 'quarantined'")
    err = _hint(reviewed_url, tmp_path, capsys, *(f"--session-id={i}" for i in quarantined))
    assert "3 quarantined. To include them, pass --include-status approved --include-status " \
        "quarantined or pass --include-all-statuses.\n" in err  # fmt: skip
    assert "pending" not in err and "ATLAS_REVIEW_REQUIRE_APPROVAL" not in err


def test_hint_for_hidden_pending_sessions_offers_approval_and_the_switch(
    reviewed_url, tmp_path, capsys
):
    pending = _where(reviewed_url, "review_status = 'pending'")
    err = _hint(reviewed_url, tmp_path, capsys, *(f"--session-id={i}" for i in pending))
    assert "3 pending. To include them, approve the pending ones with `arc-atlas review " \
        "approve ID...`, pass --include-status approved --include-status pending, pass " \
        "--include-all-statuses or set ATLAS_REVIEW_REQUIRE_APPROVAL=0" in err  # fmt: skip


# --- the `atlas` console script ---------------------------------------------


def _script(name: str) -> str:
    found = shutil.which(name, path=os.path.dirname(sys.executable))
    assert found, f"{name} is not installed beside {sys.executable}: pip install -e ."
    return found


@pytest.mark.parametrize("name", ["atlas", "arc-atlas", "atlas.export", "atlas-export"])
def test_every_console_script_runs_the_same_cli(name):
    result = subprocess.run([_script(name), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "review" in result.stdout and "export" in result.stdout


def test_atlas_review_sessions_works_as_typed(reviewed_url, tmp_path):
    env = {**os.environ, "ATLAS_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [_script("atlas"), "review", "sessions", "--database-url", reviewed_url, "--status", "all"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "9 session(s), review status: any" in result.stdout
