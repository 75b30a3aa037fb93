"""Reading agents' replies: plans, reviews, validations, verdicts."""

from __future__ import annotations

import pytest

from atlas.runtime import roles


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        pytest.param('{"a": 1}', {"a": 1}, id="bare"),
        pytest.param('Sure!\n```json\n{"a": 2}\n```\nDone.', {"a": 2}, id="fenced"),
        pytest.param('Here: {"a": 3} and {"b": 4}', {"a": 3}, id="first-of-several"),
        pytest.param('noise {not json} then {"a": 5}', {"a": 5}, id="skips-broken"),
    ],
)
def test_extract_json(reply, expected):
    assert roles.extract_json(reply) == expected


def test_extract_json_without_json():
    with pytest.raises(roles.UnreadableReply):
        roles.extract_json("I cannot help with that.")


def test_plan_is_read_with_defaults():
    plan = roles.parse_plan('{"steps": [{"description": "a"}, {"id": 2, "description": "b", '
                            '"depends_on": [1], "tool_params": "{\\"q\\": 1}"}]}')  # fmt: skip
    assert [(s.id, s.depends_on, s.tool_params) for s in plan] == [(1, (), {}), (2, (1,), {"q": 1})]


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        pytest.param('{"steps": []}', "no steps", id="empty"),
        pytest.param('{"steps": [{"id": 1}, {"id": 1}]}', "repeats", id="duplicate-id"),
        pytest.param('{"steps": [{"id": 1, "depends_on": [7]}]}', "unknown step 7", id="unknown"),
        pytest.param('{"steps": [{"id": 1, "depends_on": [2]}, {"id": 2, "depends_on": [1]}]}',
                     "cycle", id="cycle"),
        pytest.param('{"steps": [{"id": 1, "depends_on": [1]}]}', "unknown step 1", id="self"),
    ],
)  # fmt: skip
def test_bad_plans_are_refused(reply, message):
    with pytest.raises(roles.UnreadableReply, match=message):
        roles.parse_plan(reply)


def test_validation_needs_valid_field():
    assert roles.parse_validation('{"valid": false, "guidance": "cite"}').guidance == "cite"
    with pytest.raises(roles.UnreadableReply):
        roles.parse_validation('{"rationale": "?"}')


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param('{"score": "high"}', id="not-a-number"),
        pytest.param('{"score": 7}', id="out-of-range"),
        pytest.param('{"rationale": "no score"}', id="missing"),
        pytest.param("great work", id="no-json"),
    ],
)
def test_unreadable_verdicts_are_refused_not_guessed(reply):
    with pytest.raises(roles.UnreadableReply):
        roles.parse_judgement(reply)


def test_verdict_is_read():
    verdict = roles.parse_judgement('{"score": 0.75, "rationale": "ok"}')
    assert (verdict.score, verdict.rationale) == (0.75, "ok")


def test_review_may_revise_the_plan():
    approved, notes, revised = roles.parse_review(
        '{"approved": false, "notes": "split it", "steps": [{"id": 1, "description": "x"}]}'
    )
    assert (approved, notes, [s.description for s in revised or []]) == (False, "split it", ["x"])
