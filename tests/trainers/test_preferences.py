"""trainers.preferences and the grpo/dpo exports: groups, advantages, pairs."""

from __future__ import annotations

import gzip
import itertools
import json
import math

import psycopg
import pytest

from atlas.runtime.traces import AtlasSessionTrace
from atlas.storage.synthetic import seed_sessions
from atlas.training_data import paginate_sessions_sync
from trainers.exports import export_dpo, export_grpo, write_jsonl
from trainers.preferences import (
    iter_grpo_groups,
    iter_grpo_records,
    iter_preference_pairs,
    iter_preference_records,
)
from trainers.runtime_dataset import iter_runtime_traces

EVERY_STATUS = {"include_all_review_statuses": True}


def trace(
    session_id: int | None,
    reward: float | None,
    *,
    task: str = "Summarise the incident",
    answer: str | None = None,
    key: str = "sre",
) -> AtlasSessionTrace:
    return AtlasSessionTrace(
        task=task,
        final_answer=answer if answer is not None else f"answer {session_id}",
        session_id=session_id,
        session_reward=None if reward is None else {"score": reward},
        session_metadata={"learning_key": key},
    )


def test_grpo_advantages_match_a_hand_computation():
    (group,) = iter_grpo_groups([trace(3, 0.8), trace(1, 0.2), trace(2, 0.5)])
    std = math.sqrt((0.3**2 + 0 + 0.3**2) / 3)
    assert (group.reward_mean, group.reward_std) == pytest.approx((0.5, std))
    assert [m.session_id for m in group.members] == [1, 2, 3]
    expected = [-0.3 / (std + 1e-4), 0.0, 0.3 / (std + 1e-4)]
    assert [m.advantage for m in group.members] == pytest.approx(expected)


@pytest.mark.parametrize(
    "by", [pytest.param("task", id="task"), pytest.param("learning_key", id="key")]
)
def test_grpo_advantages_sum_to_zero_per_group(trainer_sessions, by):
    groups = list(iter_grpo_groups(trainer_sessions, by=by))
    assert groups
    for group in groups:
        assert len(group.members) >= 2
        assert math.fsum(m.advantage for m in group.members) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(
    ("min_group_size", "sizes"),
    [
        pytest.param(1, [1, 2], id="singletons-kept"),
        pytest.param(2, [2], id="default"),
        pytest.param(3, [], id="all-too-small"),
    ],
)
def test_small_groups_are_dropped(min_group_size, sizes):
    sessions = [trace(1, 0.1, task="a"), trace(2, 0.2, task="b"), trace(3, 0.9, task="b")]
    groups = iter_grpo_groups(sessions, min_group_size=min_group_size)
    assert [len(g.members) for g in groups] == sizes


def test_sessions_without_reward_answer_or_key_are_left_out():
    sessions = [trace(1, None), trace(2, 0.5, answer=""), trace(3, 0.5, key=""), trace(4, 0.7)]
    (group,) = iter_grpo_groups([*sessions, trace(5, 0.9)], by="learning_key")
    assert [m.session_id for m in group.members] == [4, 5]


def test_grouping_by_learning_key_mixes_tasks():
    sessions = [trace(1, 0.2, task="a"), trace(2, 0.9, task="b")]
    (group,) = iter_grpo_groups(sessions, by="learning_key")
    assert (group.key, [m.prompt for m in group.members]) == ("sre", ["a", "b"])


def test_dpo_hand_example_orders_by_margin():
    sessions = [trace(1, 0.5), trace(2, 0.9), trace(3, 0.45)]
    pairs = list(iter_preference_pairs(sessions, min_margin=0.1))
    assert [(p.chosen_session_id, p.rejected_session_id) for p in pairs] == [(2, 3), (2, 1)]
    assert [p.margin for p in pairs] == pytest.approx([0.45, 0.4])


@pytest.mark.parametrize(
    "min_margin",
    [pytest.param(0.0, id="zero"), pytest.param(0.1, id="default"), pytest.param(0.3, id="wide")],
)
def test_dpo_pairs_respect_the_margin(trainer_sessions, min_margin):
    pairs = list(iter_preference_pairs(trainer_sessions, min_margin=min_margin))
    assert pairs
    for pair in pairs:
        assert pair.margin >= min_margin and pair.margin > 0
        assert pair.chosen_reward - pair.rejected_reward == pytest.approx(pair.margin)
        assert pair.prompt == pair.rejected_prompt == pair.key


def test_dpo_never_repeats_a_pair_or_pairs_equal_answers():
    sessions = [trace(1, 0.9), trace(2, 0.1), trace(3, 0.1, answer="answer 1")]
    pairs = list(iter_preference_pairs(sessions + sessions))
    assert [(p.chosen, p.rejected) for p in pairs] == [("answer 1", "answer 2")]


def test_order_does_not_depend_on_input_order(trainer_sessions):
    reordered = list(reversed(trainer_sessions))
    assert list(iter_grpo_groups(reordered)) == list(iter_grpo_groups(trainer_sessions))
    assert list(iter_preference_pairs(reordered)) == list(iter_preference_pairs(trainer_sessions))


def _from_pages(url: str) -> list[AtlasSessionTrace]:
    return list(
        itertools.chain.from_iterable(paginate_sessions_sync(url, batch_size=5, **EVERY_STATUS))
    )


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda s: list(iter_grpo_records(s, by="learning_key")), id="grpo"),
        pytest.param(lambda s: list(iter_preference_records(s, min_margin=0.05)), id="dpo"),
    ],
)
def test_database_pages_and_jsonl_give_equal_records(
    trainer_db, trainer_export, trainer_sessions, build
):
    expected = build(trainer_sessions)
    assert expected
    assert build(_from_pages(trainer_db)) == expected
    assert build(iter_runtime_traces(trainer_export)) == expected


@pytest.mark.parametrize(
    ("export", "build"),
    [
        pytest.param(export_grpo, iter_grpo_records, id="grpo"),
        pytest.param(export_dpo, iter_preference_records, id="dpo"),
    ],
)
def test_exports_write_one_record_per_line(trainer_db, trainer_sessions, tmp_path, export, build):
    path = tmp_path / "out.jsonl.gz"
    summary = export(str(path), trainer_db, batch_size=7, **EVERY_STATUS)
    lines = gzip.decompress(path.read_bytes()).splitlines()
    assert [json.loads(line) for line in lines] == list(build(trainer_sessions))
    assert (summary.records, summary.sessions) == (len(lines), len(trainer_sessions))


def test_export_writes_nothing_when_the_review_gate_hides_everything(db_url, tmp_path):
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 4, seed=1)
        conn.execute("UPDATE sessions SET review_status = 'pending'")
    summary = export_dpo(str(tmp_path / "pairs.jsonl"), db_url)
    assert (summary.records, summary.hidden_by_gate) == (0, 4)
    assert list(tmp_path.iterdir()) == []


def test_jsonl_source_can_be_written_as_pairs(trainer_export, tmp_path):
    path = tmp_path / "pairs.jsonl"
    count = write_jsonl(iter_preference_records(iter_runtime_traces(trainer_export)), path)
    assert count == len(path.read_text().splitlines()) > 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(lambda: iter_grpo_groups([], by="user"), "by must be", id="by"),
        pytest.param(lambda: iter_grpo_groups([], min_group_size=0), "at least 1", id="size"),
        pytest.param(lambda: iter_preference_pairs([], min_margin=-0.1), "min_margin", id="margin"),
        pytest.param(
            lambda: iter_preference_pairs([], min_margin=math.nan), "min_margin", id="nan"
        ),
    ],
)
def test_bad_arguments_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        list(call())
