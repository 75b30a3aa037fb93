"""atlas-sdk 0.1.16's call forms: argument orders, the (database, filters) pager, its values."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import psycopg
import pytest
from training_data_sql import ids_where

from atlas.config.models import StorageConfig
from atlas.errors import InvalidFilter, ReviewGateWarning
from atlas.storage import AsyncDatabase
from atlas.training_data import (
    count_training_sessions,
    get_session_by_id,
    get_session_by_id_async,
    get_training_sessions,
    paginate_sessions,
    paginate_sessions_sync,
)

LIGHT: dict[str, Any] = {"include_trajectory_events": False, "include_learning_data": False}
NOWHERE = "postgresql://nobody@127.0.0.1:1/none"


def _ids(traces: list[Any]) -> list[int]:
    return [t.session_id for t in traces]


# --- get_session_by_id: either order, decided by type -----------------------


@pytest.fixture(scope="module")
def some_id(seeded_url: str) -> int:
    return ids_where(seeded_url, "review_status = 'quarantined'")[0]


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda url, sid: get_session_by_id(url, sid), id="atlas-sdk-order"),
        pytest.param(lambda url, sid: get_session_by_id(sid, url), id="arc-atlas-order"),
        pytest.param(lambda url, sid: get_session_by_id(db_url=url, session_id=sid), id="keywords"),
        pytest.param(lambda url, sid: get_session_by_id(url, session_id=sid), id="mixed"),
        pytest.param(
            lambda url, sid: asyncio.run(get_session_by_id_async(url, sid)), id="async-sdk-order"
        ),
        pytest.param(
            lambda url, sid: asyncio.run(get_session_by_id_async(sid, url)), id="async-own-order"
        ),
    ],
)
def test_get_session_by_id_takes_either_order(seeded_url, some_id, call):
    assert call(seeded_url, some_id).session_id == some_id


def test_get_session_by_id_takes_upstream_keyword_options(seeded_url, some_id):
    trace = get_session_by_id(
        seeded_url, some_id, include_trajectory_events=False, include_learning_data=False
    )
    assert (trace.trajectory_events, trace.student_learning) == ([], None)


def test_get_session_by_id_takes_a_storage_config_as_atlas_sdk_does(seeded_url, some_id):
    config = StorageConfig(database_url=seeded_url)
    assert get_session_by_id(None, some_id, config=config).session_id == some_id


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        pytest.param(3, 4, r"got two integers \(3 and 4\)", id="two-ints"),
        pytest.param(True, NOWHERE, r"session_id must be an integer, not True\.", id="bool"),
        pytest.param(NOWHERE, False, r"session_id must be an integer, not False\.", id="bool-2nd"),
        pytest.param(NOWHERE, "7", r"session_id must be an integer, not '7'\.", id="text"),
        pytest.param(NOWHERE, None, r"session_id must be an integer, not None\.", id="no-id"),
    ],
)
def test_ambiguous_get_session_by_id_calls_are_refused(first, second, message):
    with pytest.raises(InvalidFilter, match=message):
        get_session_by_id(first, second)


# --- paginate_sessions(database, filters, *, batch_size, limit) -------------

SDK_FILTERS: dict[str, Any] = {
    "min_reward": 0.5,
    "learning_key": "data-cleanup",
    "status_filters": ["SUCCEEDED"],
    "review_status_filters": [" Approved", "PENDING"],
    "include_trajectory_events": False,
    "include_learning_data": False,
}
SDK_WHERE = (
    "metadata ->> 'learning_key' = 'data-cleanup' AND (reward_stats ->> 'score')::float >= 0.5 "
    "AND status = 'succeeded' AND review_status IN ('approved', 'pending')"
)


async def _collect(database: Any, filters: dict[str, Any], **kw: Any) -> list[int]:
    return [
        t.session_id async for batch in paginate_sessions(database, filters, **kw) for t in batch
    ]


def test_async_pager_takes_an_open_database_and_a_filters_dict(seeded_url):
    async def run() -> list[int]:
        async with await AsyncDatabase.open(seeded_url) as database:
            return await _collect(database, SDK_FILTERS, batch_size=3)

    assert asyncio.run(run()) == ids_where(seeded_url, SDK_WHERE)


def test_async_pager_takes_an_async_connection(seeded_url):
    async def run() -> list[int]:
        async with await psycopg.AsyncConnection.connect(seeded_url) as conn:
            return await _collect(conn, SDK_FILTERS, batch_size=3, limit=4)

    assert asyncio.run(run()) == ids_where(seeded_url, SDK_WHERE, tail="LIMIT 4")


def test_sync_pager_takes_the_same_form(seeded_url):
    batches = list(paginate_sessions_sync(seeded_url, SDK_FILTERS, batch_size=2, limit=5))
    assert [len(b) for b in batches] == [2, 2, 1]
    assert _ids([t for b in batches for t in b]) == ids_where(seeded_url, SDK_WHERE, tail="LIMIT 5")


def test_limit_and_offset_inside_the_filters_dict_apply(seeded_url):
    filters = {**SDK_FILTERS, "limit": 3, "offset": 2}
    batches = paginate_sessions_sync(seeded_url, filters, limit=10)
    expected = ids_where(seeded_url, SDK_WHERE, tail="LIMIT 3 OFFSET 2")
    assert _ids([t for b in batches for t in b]) == expected


def test_the_keyword_form_keeps_working(seeded_url):
    batches = asyncio.run(_keyword_form(seeded_url))
    assert batches == ids_where(seeded_url, "(reward_stats ->> 'score')::float >= 0.9 AND "
                                "review_status = 'approved'")  # fmt: skip


async def _keyword_form(url: str) -> list[int]:
    pages = paginate_sessions(db_url=url, batch_size=50, min_reward=0.9, **LIGHT)
    return [t.session_id async for batch in pages for t in batch]


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        pytest.param(
            {"filters": {"min_rewrd": 0.5}}, InvalidFilter, "Unknown filter 'min_rewrd'", id="key"
        ),
        pytest.param(
            {"filters": ["min_reward"]}, TypeError, "filters must be a mapping", id="list"
        ),
        pytest.param(
            {"filters": {"min_reward": 0.5}, "min_reward": 0.7},
            InvalidFilter,
            "Filter 'min_reward' is given twice",
            id="twice",
        ),
        pytest.param({"db_url": NOWHERE}, TypeError, "both database and db_url", id="two-targets"),
    ],
)
def test_bad_pager_arguments_are_refused_before_connecting(arguments, error, message):
    with pytest.raises(error, match=message):
        next(paginate_sessions_sync(NOWHERE, **arguments))


# --- review values as atlas-sdk takes them ----------------------------------


@pytest.mark.parametrize("value", [pytest.param(v, id=v) for v in ("all", "*", " ALL ")])
def test_default_export_statuses_all_means_every_status(seeded_url, monkeypatch, value):
    monkeypatch.setenv("ATLAS_REVIEW_DEFAULT_EXPORT_STATUSES", value)
    assert count_training_sessions(seeded_url) == len(ids_where(seeded_url))


def test_statuses_are_case_insensitive(seeded_url):
    shouted = get_training_sessions(
        seeded_url, status_filters="FAILED", review_status_filters=["Quarantined "], **LIGHT
    )
    where = "status = 'failed' AND review_status = 'quarantined'"
    assert _ids(shouted) == ids_where(seeded_url, where)


# --- a complete atlas-sdk config file ---------------------------------------

SDK_CONFIG = """\
agent:
  type: litellm
  name: sdk-agent
  system_prompt: You review code.
  tools: []
  llm: {{provider: openai, model: gpt-5-mini, api_key_env: OPENAI_API_KEY}}
student: {{max_plan_tokens: 2048}}
teacher:
  llm: {{provider: openai, model: gpt-5-mini, api_key_env: OPENAI_API_KEY}}
rim:
  small_model: {{provider: gemini, model: gemini/gemini-2.5-flash}}
  judge_prompt: reward depth
orchestration: {{max_retries: 1}}
prompt_rewrite: {{llm: {{provider: openai, model: gpt-5-mini}}}}
learning: {{gates: {{enforce_cue: true}}}}
adaptive_teaching: {{certify_first_run: false}}
storage:
  database_url: {url}
  min_connections: 1
  max_connections: 5
  statement_timeout_seconds: 30
runtime_safety:
  review:
    require_approval: false
    default_export_statuses: [Approved, quarantined]
"""


def sdk_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "atlas-sdk.yaml"
    path.write_text(SDK_CONFIG.format(url=url))
    return path


def test_the_api_reads_a_complete_atlas_sdk_config(seeded_url, tmp_path, caplog):
    path = sdk_config(tmp_path, seeded_url)
    with caplog.at_level(logging.WARNING, logger="atlas.config"):
        count = count_training_sessions(config=path)
    assert count == len(ids_where(seeded_url, "review_status IN ('approved', 'quarantined')"))
    (record,) = caplog.records
    assert record.getMessage() == (
        f"{path}: ignored section(s) student, prompt_rewrite, adaptive_teaching: arc-atlas "
        "does not know them (only storage and runtime_safety are read here)."
    )


# --- the gate never leaks quarantine, and its hint names what works --------


def test_require_approval_off_never_returns_quarantined(reviewed_url, monkeypatch):
    monkeypatch.setenv("ATLAS_REVIEW_REQUIRE_APPROVAL", "0")
    traces = get_training_sessions(reviewed_url, **LIGHT)
    assert sorted(t.review_status for t in traces) == ["approved"] * 3 + ["pending"] * 3


@pytest.mark.parametrize(
    "ask",
    [
        pytest.param({"include_all_review_statuses": True}, id="include-all"),
        pytest.param({"review_status_filters": ["QUARANTINED"]}, id="by-name"),
        pytest.param({"review_status_filters": "*"}, id="star"),
    ],
)
def test_quarantined_comes_back_only_when_asked_for(reviewed_url, monkeypatch, ask):
    monkeypatch.setenv("ATLAS_REVIEW_REQUIRE_APPROVAL", "0")
    traces = get_training_sessions(reviewed_url, **ask, **LIGHT)
    assert "quarantined" in {t.review_status for t in traces}


def _gate_warning(url: str, **filters: Any) -> str:
    with pytest.warns(ReviewGateWarning) as caught:
        assert get_training_sessions(url, **filters, **LIGHT) == []
    (message,) = [str(w.message) for w in caught]
    return message


def test_hint_for_hidden_quarantined_sessions_names_quarantined_only(reviewed_url, monkeypatch):
    monkeypatch.setenv("ATLAS_REVIEW_REQUIRE_APPROVAL", "0")
    quarantined = ids_where(reviewed_url, "review_status = 'quarantined'")
    message = _gate_warning(reviewed_url, session_ids=quarantined)
    assert message.endswith(
        "hid 3 matching session(s): 3 quarantined. To include them, pass review_status_filters="
        "['approved', 'pending', 'quarantined'] or pass include_all_review_statuses=True."
    )


def test_hint_for_hidden_pending_sessions_offers_approval(reviewed_url):
    pending = ids_where(reviewed_url, "review_status = 'pending'")
    message = _gate_warning(reviewed_url, session_ids=pending)
    assert "hid 3 matching session(s): 3 pending. To include them, approve" in message
    assert "set ATLAS_REVIEW_REQUIRE_APPROVAL=0" in message
