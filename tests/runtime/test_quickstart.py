"""``arc-atlas quickstart`` on a database that is not the embedded one: demo data, left pending."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from atlas.cli.main import main
from atlas.cli.run_cmd import _demo_config


def test_quickstart_on_a_shared_database_leaves_labelled_sessions_pending(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "q.jsonl"
    assert main(["quickstart", "--database-url", db_url, "--output", str(out), "--tasks", "2"]) == 0
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT status, review_status, metadata -> 'demo', metadata -> 'tags' FROM sessions"
        ).fetchall()
    assert rows == [("succeeded", "pending", True, ["demo"])] * 2
    assert len(out.read_text().splitlines()) == 2  # quickstart's own export names them
    assert "training exports skip them unless approved" in capsys.readouterr().err


def test_quickstart_sessions_do_not_pass_the_default_review_gate(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["quickstart", "--database-url", db_url, "-o", str(tmp_path / "q.jsonl"), "--tasks", "1"])
    capsys.readouterr()
    out = tmp_path / "gate.jsonl"
    assert main(["export", "--database-url", db_url, "--output", str(out)]) == 1
    assert not out.exists()
    assert "hid 1 matching session(s): 1 pending" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("shared", "require_approval"),
    [pytest.param(False, False, id="embedded"), pytest.param(True, True, id="shared")],
)
def test_demo_config_requires_approval_only_on_a_shared_database(
    shared: bool, require_approval: bool
) -> None:
    config = _demo_config(shared=shared)
    assert config["metadata"]["demo"] is True
    assert config["runtime_safety"]["review"]["require_approval"] is require_approval
