"""The review gate: one resolution (pure), and what readers do with it (database)."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from training_data_sql import ids_where

from atlas.config.models import AtlasConfig, ReviewConfig, RuntimeSafetyConfig
from atlas.errors import InvalidFilter, ReviewGateWarning
from atlas.storage.synthetic import seed_sessions
from atlas.training_data import (
    ReviewGate,
    get_training_sessions,
    get_training_sessions_async,
    resolve_review_gate,
)


def _config(**review: Any) -> AtlasConfig:
    return AtlasConfig(runtime_safety=RuntimeSafetyConfig(review=ReviewConfig(**review)))


# Every source of the gate, highest precedence first. Each case below switches
# on one source and every source under it: the one named must win.
_SOURCES = (
    "explicit",
    "include_all",
    "env_statuses",
    "env_require_approval",
    "config_statuses",
    "config_require_approval",
)


def _resolve_with(sources: tuple[str, ...]) -> ReviewGate:
    review: dict[str, Any] = {}
    if "config_statuses" in sources:
        review["default_export_statuses"] = ("quarantined",)
    if "config_require_approval" in sources:
        review["require_approval"] = False
    environ = {}
    if "env_statuses" in sources:
        environ["ATLAS_REVIEW_DEFAULT_EXPORT_STATUSES"] = "pending, approved"
    if "env_require_approval" in sources:
        environ["ATLAS_REVIEW_REQUIRE_APPROVAL"] = "0"
    return resolve_review_gate(
        ["pending"] if "explicit" in sources else None,
        include_all="include_all" in sources,
        config=_config(**review) if review else None,
        environ=environ,
    )


@pytest.mark.parametrize(
    ("winner", "statuses", "source"),
    [
        pytest.param("explicit", ("pending",), "explicit", id="explicit"),
        pytest.param("include_all", None, "--include-all-statuses", id="include-all"),
        pytest.param(
            "env_statuses",
            ("pending", "approved"),
            "ATLAS_REVIEW_DEFAULT_EXPORT_STATUSES",
            id="env-statuses",
        ),
        pytest.param(
            "env_require_approval",
            ("approved", "pending"),
            "ATLAS_REVIEW_REQUIRE_APPROVAL=0",
            id="env-approval",
        ),
        pytest.param(
            "config_statuses",
            ("quarantined",),
            "runtime_safety.review.default_export_statuses",
            id="config-statuses",
        ),
        pytest.param(
            "config_require_approval",
            ("approved", "pending"),
            "runtime_safety.review.require_approval",
            id="config-approval",
        ),
        pytest.param(None, ("approved",), "default", id="default"),
    ],
)
def test_precedence(winner, statuses, source):
    enabled = _SOURCES[_SOURCES.index(winner) :] if winner else ()
    assert _resolve_with(enabled) == ReviewGate(statuses, source)


@pytest.mark.parametrize("value", [pytest.param(v, id=v) for v in ("0", "false", "No", " off ")])
def test_require_approval_accepts_the_usual_spellings_of_false(value):
    gate = resolve_review_gate(environ={"ATLAS_REVIEW_REQUIRE_APPROVAL": value})
    assert gate.statuses == ("approved", "pending")


@pytest.mark.parametrize("value", [pytest.param(v, id=v or "empty") for v in ("1", "true", "")])
def test_require_approval_other_values_keep_the_default(value):
    gate = resolve_review_gate(environ={"ATLAS_REVIEW_REQUIRE_APPROVAL": value})
    assert gate.statuses == ("approved",)


def test_a_single_status_string_is_one_status():
    assert resolve_review_gate("quarantined", environ={}).statuses == ("quarantined",)


def test_env_statuses_are_validated():
    with pytest.raises(InvalidFilter, match=r"^ATLAS_REVIEW_DEFAULT_EXPORT_STATUSES: unknown"):
        resolve_review_gate(environ={"ATLAS_REVIEW_DEFAULT_EXPORT_STATUSES": "approved,ok"})


def test_reads_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv("ATLAS_REVIEW_DEFAULT_EXPORT_STATUSES", "pending")
    assert resolve_review_gate().statuses == ("pending",)


@pytest.mark.parametrize(
    ("gate", "text"),
    [
        pytest.param(ReviewGate(None, "x"), "all", id="open"),
        pytest.param(ReviewGate(("approved", "pending"), "x"), "approved, pending", id="two"),
    ],
)
def test_describe(gate, text):
    assert gate.describe() == text


# --- against the database -------------------------------------------------


def test_default_gate_returns_approved_sessions_only(seeded_url):
    traces = get_training_sessions(seeded_url, include_trajectory_events=False)
    assert [t.session_id for t in traces] == ids_where(seeded_url, "review_status = 'approved'")
    assert {t.review_status for t in traces} == {"approved"}


def test_require_approval_off_widens_to_approved_and_pending_only(seeded_url, monkeypatch):
    monkeypatch.setenv("ATLAS_REVIEW_REQUIRE_APPROVAL", "0")
    expected = ids_where(seeded_url, "review_status IN ('approved', 'pending')")
    traces = get_training_sessions(seeded_url, include_trajectory_events=False)
    assert [t.session_id for t in traces] == expected
    assert "quarantined" not in {t.review_status for t in traces}


def test_config_statuses_apply_to_the_api(seeded_url):
    config = _config(default_export_statuses=("quarantined",))
    traces = get_training_sessions(seeded_url, config=config, include_trajectory_events=False)
    assert [t.session_id for t in traces] == ids_where(seeded_url, "review_status = 'quarantined'")


@pytest.fixture
def pending_only_url(db_url: str) -> str:
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 12, seed=4)
        conn.execute("UPDATE sessions SET review_status = 'pending'")
    return db_url


def test_gate_hiding_everything_warns_with_the_count_and_the_fix(pending_only_url):
    with pytest.warns(ReviewGateWarning) as caught:
        traces = get_training_sessions(pending_only_url)
    assert traces == []
    (message,) = [str(w.message) for w in caught]
    assert "hid 12 matching session(s)" in message
    assert "ATLAS_REVIEW_REQUIRE_APPROVAL=0" in message


def test_hidden_count_respects_the_other_filters(pending_only_url):
    hidden = len(ids_where(pending_only_url, "status = 'succeeded'"))
    with pytest.warns(ReviewGateWarning, match=f"hid {hidden} matching"):
        get_training_sessions(pending_only_url, status_filters="succeeded")


def test_no_warning_when_nothing_matches_at_all(pending_only_url):
    assert get_training_sessions(pending_only_url, session_ids=[10**6]) == []


def test_the_async_reader_warns_the_same_way(pending_only_url):
    with pytest.warns(ReviewGateWarning, match="hid 12 matching"):
        assert asyncio.run(get_training_sessions_async(pending_only_url)) == []


def test_no_gate_warning_when_the_offset_is_what_emptied_the_result(pending_only_url):
    with psycopg.connect(pending_only_url, autocommit=True) as conn:
        conn.execute("UPDATE sessions SET review_status = 'approved' WHERE id IN (1, 2)")
    assert get_training_sessions(pending_only_url, offset=5) == []
