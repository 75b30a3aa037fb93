"""The UI's filter: read from the URL, validated by the library, written back as links and flags."""

from __future__ import annotations

import shlex
import subprocess
import sys

import pytest
from starlette.datastructures import QueryParams

from atlas.errors import InvalidFilter
from atlas.ui.params import FIELDS, UIFilter


def parse(query: str) -> UIFilter:
    return UIFilter.parse(QueryParams(query))


def test_fields_repeat_or_hold_commas_and_blank_fields_are_no_filter() -> None:
    flt = parse(
        "status=succeeded,FAILED&review_status=pending&review_status=Approved&learning_key=a,b"
        "&session_id=3&session_id=4,5&task_contains=+&min_reward=&created_after=2026-01-02"
    )
    assert flt.filters.statuses == ("succeeded", "failed")
    assert flt.review_statuses == ("pending", "approved")
    assert flt.filters.learning_keys == ("a", "b")
    assert flt.filters.session_ids == (3, 4, 5)
    assert flt.filters.task_contains is None and flt.filters.min_reward is None
    assert "task_contains" not in flt.values and "min_reward" not in flt.values
    assert parse("").empty and not flt.empty


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("min_reward=high", "min_reward"),
        ("min_reward=0.9&max_reward=0.1", "min_reward"),
        ("session_id=abc", "session_id"),
        ("session_id=0", "session_id"),
        ("review_status=maybe", "review_status"),
        ("status=sleeping", "status"),
        ("created_after=yesterday", "created_after"),
    ],
)
def test_a_bad_field_is_named_as_the_form_names_it(query: str, field: str) -> None:
    with pytest.raises(InvalidFilter) as exc:
        parse(query)
    assert exc.value.parameter == field
    assert field in str(exc.value)


def test_links_keep_the_filter_and_overrides_replace_or_drop() -> None:
    flt = parse("learning_key=a&min_reward=0.5&older=xyz")
    assert "older" not in flt.values  # paging is not part of the filter
    assert QueryParams(flt.query()[1:]) == QueryParams("learning_key=a&min_reward=0.5")
    moved = QueryParams(flt.query(older="c1", min_reward=None)[1:])
    assert moved == QueryParams("learning_key=a&older=c1")
    assert parse("").query() == ""


def test_training_filters_apply_the_export_gate_only_when_asked() -> None:
    flt = parse("min_reward=0.8&task_contains=login")
    assert flt.training_filters(review_gate=True) == {"min_reward": 0.8, "task_contains": "login"}
    assert flt.training_filters(review_gate=False)["include_all_review_statuses"] is True
    named = parse("review_status=quarantined")
    assert named.training_filters(review_gate=True) == {"review_status_filters": ["quarantined"]}


def test_the_export_command_is_a_command_line_the_cli_parses_to_the_same_filter() -> None:
    flt = parse(
        "task_contains=it's+%22quoted%22+;+rm+-rf&learning_key=a+b&review_status=pending"
        "&min_reward=0.5&session_id=7&created_before=2027-01-01"
    )
    words = shlex.split(flt.export_command())
    assert words[:4] == ["arc-atlas", "export", "--output", "sessions.jsonl.gz"]
    # Every flag the command uses is one `arc-atlas export` takes, with the value as typed.
    from atlas.cli.main import build_parser

    args = build_parser().parse_args(words[1:])
    assert args.task_contains == 'it\'s "quoted" ; rm -rf'
    assert args.learning_key == ["a b"] and args.include_status == ["pending"]
    assert args.min_reward == 0.5 and args.session_id == [7]
    assert args.created_before == "2027-01-01"
    assert {flag for _, _, flag in FIELDS.values()} <= {
        option for action in build_parser()._subparsers._group_actions[0].choices["export"]._actions  # type: ignore[union-attr]
        for option in action.option_strings
    }  # fmt: skip


def test_the_command_runs() -> None:
    flt = parse("min_reward=0.5")
    words = shlex.split(flt.export_command())
    done = subprocess.run(
        [sys.executable, "-m", "atlas.cli", *words[1:], "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
