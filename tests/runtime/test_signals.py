"""Triage, adaptive mode, reward aggregation, escalation and drift."""

from __future__ import annotations

import math

import pytest

from atlas.runtime.signals import (
    aggregate_reward,
    choose_mode,
    detect_drift,
    needs_escalation,
    triage,
)


def test_triage_finds_risks_signals_and_tags():
    dossier = triage(
        "Rotate the leaked credentials. Then report.", {"tenant": "acme", "tags": ["x"]}
    )
    assert dossier["summary"] == "Rotate the leaked credentials."
    assert [r["category"] for r in dossier["risks"]] == ["security", "quality"]
    assert {"name": "tenant", "value": "acme"} in dossier["signals"]
    assert dossier["tags"][:2] == ["tenant:acme", "risk:security"] and "x" in dossier["tags"]


@pytest.mark.parametrize(
    ("task", "history", "mode"),
    [
        pytest.param("Summarize the notes", [], "coach", id="no-history"),
        pytest.param("Delete the old tables", [0.95] * 5, "coach", id="high-risk"),
        pytest.param("List the files", [0.9, 0.92, 0.95], "auto", id="confident"),
        pytest.param("List the files", [0.6, 0.7], "paired", id="middling"),
    ],
)
def test_adaptive_mode(task, history, mode):
    probe = choose_mode(triage(task, {}), history)
    assert probe["mode"] == mode
    assert 0 < probe["confidence"] <= 1 and probe["evidence"]


def test_configured_mode_wins():
    assert choose_mode(triage("Delete it", {}), [], requested="auto")["mode"] == "auto"


def test_aggregate_reward_over_scored_judges_only():
    stats = aggregate_reward([{"score": 0.8}, {"score": 0.6}, {"error": "unreadable"}])
    assert stats == {"score": 0.7, "uncertainty": 0.1, "judge_count": 2, "min": 0.6, "max": 0.8}
    assert aggregate_reward([{"error": "x"}]) is None


@pytest.mark.parametrize(
    ("scores", "escalate"),
    [([0.9, 0.1], True), ([0.8, 0.82], False), ([0.5], False)],
)
def test_escalation_on_disagreement(scores, escalate):
    assert needs_escalation(scores, 0.02) is escalate


def test_drift_alert_beyond_threshold():
    drift = detect_drift(0.2, [0.8, 0.82, 0.79, 0.81, 0.8], z_threshold=3, min_baseline=5)
    assert drift.alert and drift.z_score is not None and drift.z_score < -3


def test_no_drift_with_a_small_baseline():
    drift = detect_drift(0.1, [0.9, 0.9], z_threshold=3, min_baseline=5)
    assert not drift.alert and drift.reason == "baseline too small"


def test_constant_baseline_and_a_different_score_alerts():
    drift = detect_drift(0.5, [0.9] * 6, z_threshold=3, min_baseline=5)
    assert drift.alert and drift.z_score is None
    assert not math.isnan(drift.baseline_mean or 0)
