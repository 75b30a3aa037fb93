"""Every query argument is checked once, before any connection, and the error names it."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from atlas.errors import InvalidFilter
from atlas.training_data import (
    TrainingQuery,
    count_training_sessions,
    get_session_by_id,
    get_training_sessions,
    paginate_sessions_sync,
)
from atlas.training_data.api import FILTER_KEYS
from atlas.training_data.export import export_jsonl
from atlas.training_data.filters import BIGINT_MAX, SESSION_ID_MAX, whole_number

# Nothing listens here: a test that reached the database would fail differently.
NOWHERE = "postgresql://nobody@127.0.0.1:1/none"

BAD_ARGUMENTS = [
    pytest.param("offset", 2**63, "must be at most 9,223,372,036,854,775,807", id="offset-bigint"),
    pytest.param("limit", 2**63, "must be at most 9,223,372,036,854,775,807", id="limit-bigint"),
    pytest.param("limit", -1, "must be a whole number >= 0, not -1", id="limit-negative"),
    pytest.param("limit", True, "must be a whole number >= 0, not True", id="limit-bool"),
    pytest.param("offset", 2.0, "must be a whole number >= 0, not 2.0", id="offset-float"),
    pytest.param("offset", "3", "must be a whole number >= 0, not '3'", id="offset-text"),
    pytest.param(
        "trajectory_event_limit", 2**63, "must be at most 9,223,372,036,854,775,807", id="events"
    ),
    pytest.param("session_ids", True, "must be a whole number >= 1, not True", id="id-bool"),
    pytest.param("session_ids", [1, False], "must be a whole number >= 1", id="id-bool-in-list"),
    pytest.param("session_ids", [2.5], "must be a whole number >= 1, not 2.5", id="id-float"),
    pytest.param("session_ids", "7", "must be a whole number >= 1, not '7'", id="id-text"),
    pytest.param("session_ids", 0, "must be a whole number >= 1, not 0", id="id-zero"),
    pytest.param("session_ids", 2**31, "must be at most 2,147,483,647", id="id-above-int4"),
    pytest.param("session_ids", [], "is empty", id="ids-empty"),
    pytest.param("min_reward", math.nan, "must be a finite number such as 0.8, not nan", id="nan"),
    pytest.param("min_reward", "NaN", "must be a finite number such as 0.8", id="nan-text"),
    pytest.param("max_reward", math.inf, "must be a finite number", id="inf"),
    pytest.param("max_reward", "-inf", "must be a finite number", id="minus-inf-text"),
    pytest.param("min_reward", 10**400, "must be a finite number", id="huge-int"),
    pytest.param("min_reward", "1e400", "must be a finite number", id="huge-text"),
    pytest.param("min_reward", True, "must be a number such as 0.8, not True", id="reward-bool"),
    pytest.param("learning_key", "a\x00b", "contains a NUL character", id="nul"),
    pytest.param("learning_key", ["ok", "a\x00"], "contains a NUL character", id="nul-in-list"),
    pytest.param("learning_key", 5, "must be text, not 5", id="key-int"),
    pytest.param("learning_key", b"key", "must be a value or a list of values", id="key-bytes"),
    pytest.param("status_filters", "bogus", "unknown session status 'bogus'", id="status"),
    pytest.param("status_filters", {"failed": 1}, "must be a value or a list", id="status-dict"),
    pytest.param(
        "review_status_filters", "aproved", "unknown review status 'aproved'", id="review"
    ),
    pytest.param("review_status_filters", 5, "must be a status or a list", id="review-int"),
    pytest.param("include_all_review_statuses", "no", "must be True or False", id="switch"),
    pytest.param("include_trajectory_events", 0, "must be True or False", id="switch-int"),
    pytest.param("created_after", 20260101, "must be a datetime, a date", id="date-int"),
]


@pytest.mark.parametrize(("name", "value", "problem"), BAD_ARGUMENTS)
def test_bad_argument_is_invalid_filter_naming_the_parameter(name, value, problem):
    with pytest.raises(InvalidFilter) as caught:
        TrainingQuery.build(**{name: value})
    assert caught.value.parameter == name
    assert str(caught.value).startswith(name)
    assert problem in str(caught.value)


@pytest.mark.parametrize(("name", "value", "problem"), BAD_ARGUMENTS)
def test_the_public_functions_refuse_it_before_connecting(name, value, problem):
    with pytest.raises(InvalidFilter, match=re.escape(problem)):
        get_training_sessions(NOWHERE, **{name: value})


def test_bigint_maximum_itself_is_accepted():
    query = TrainingQuery.build(offset=BIGINT_MAX, limit=BIGINT_MAX, trajectory_event_limit=0)
    assert (query.offset, query.limit, query.options.trajectory_event_limit) == (
        BIGINT_MAX,
        BIGINT_MAX,
        0,
    )


def test_session_ids_at_the_serial_bounds_are_accepted():
    ids = TrainingQuery.build(session_ids=[1, SESSION_ID_MAX]).filters.session_ids
    assert ids == (1, SESSION_ID_MAX)


def test_integer_types_with_index_are_ids():
    class Numpyish:
        def __index__(self) -> int:
            return 7

    assert TrainingQuery.build(session_ids=Numpyish()).filters.session_ids == (7,)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(" SUCCEEDED ", ("succeeded",), id="upper"),
        pytest.param(["Failed", "failed"], ("failed",), id="repeat"),
    ],
)
def test_session_statuses_are_case_folded(given, expected):
    assert TrainingQuery.build(status_filters=given).filters.statuses == expected


def test_review_statuses_use_the_shared_parser():
    gate = TrainingQuery.build(review_status_filters=" Approved,PENDING").gate
    assert gate.statuses == ("approved", "pending")


def test_finite_numeric_text_is_a_reward():
    assert TrainingQuery.build(min_reward=" 0.25 ").filters.min_reward == 0.25


@pytest.mark.parametrize("value", [-(2**63), -(2**63) - 1])
def test_whole_number_checks_the_lower_bound(value):
    with pytest.raises(InvalidFilter, match=r"^n must be a whole number >= 0"):
        whole_number(value, "n", minimum=0)


CALLS: list[Any] = [
    pytest.param(lambda **kw: get_training_sessions(NOWHERE, **kw), id="get_training_sessions"),
    pytest.param(lambda **kw: count_training_sessions(NOWHERE, **kw), id="count"),
    pytest.param(lambda **kw: next(paginate_sessions_sync(NOWHERE, **kw)), id="paginate"),
    pytest.param(lambda **kw: next(paginate_sessions_sync(NOWHERE, kw)), id="paginate-mapping"),
    pytest.param(lambda **kw: TrainingQuery.from_filters(kw), id="from_filters"),
]


@pytest.mark.parametrize("call", CALLS)
def test_a_misspelt_filter_is_named_with_the_filters_there_are(call):
    with pytest.raises(InvalidFilter) as caught:
        call(min_rewrd=1)
    message = str(caught.value)
    assert message.startswith("Unknown filter 'min_rewrd' (did you mean min_reward?): use ")
    assert message.endswith(", ".join(FILTER_KEYS) + ".")
    assert caught.value.parameter == "min_rewrd"


def test_the_exporter_names_a_misspelt_filter_and_writes_nothing(tmp_path):
    with pytest.raises(InvalidFilter, match=r"^Unknown filter 'stauts_filters'"):
        export_jsonl(str(tmp_path / "out.jsonl"), NOWHERE, stauts_filters="failed")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("size", [pytest.param(2**63, id="bigint"), pytest.param(True, id="bool")])
def test_the_exporter_checks_batch_size(tmp_path, size):
    with pytest.raises(InvalidFilter) as caught:
        export_jsonl(str(tmp_path / "out.jsonl"), NOWHERE, batch_size=size)
    assert caught.value.parameter == "batch_size"
    assert list(tmp_path.iterdir()) == []


def test_a_name_far_from_any_filter_gets_no_suggestion():
    with pytest.raises(InvalidFilter, match=r"^Unknown filter 'colour': use min_reward"):
        TrainingQuery.from_filters({"colour": "red"})


@pytest.mark.parametrize("session_id", [0, -5, 2**31, 2**63])
def test_an_id_no_session_can_have_is_refused_by_lookups_too(session_id):
    with pytest.raises(InvalidFilter) as caught:
        get_session_by_id(NOWHERE, session_id)
    assert caught.value.parameter == "session_ids"
