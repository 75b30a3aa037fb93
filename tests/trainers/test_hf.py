"""trainers.columns, trainers.parquet, trainers.hf: fixed schemas, Parquet, HF datasets."""

from __future__ import annotations

import json
import math
from dataclasses import fields
from datetime import datetime, timezone

import pyarrow.parquet as pq
import pytest

from atlas.runtime.traces import AtlasRewardBreakdown, AtlasSessionTrace, AtlasStepTrace
from atlas.training_data.output import OutputError
from trainers.columns import (
    COLUMNS,
    JSON_COLUMNS,
    RecordSchemaError,
    decode_row,
    encode_record,
    iter_rows,
    records_from_sessions,
)
from trainers.exports import export_parquet
from trainers.hf import hf_features, to_hf_dataset
from trainers.parquet import arrow_schema, write_parquet
from trainers.runtime_dataset import iter_runtime_traces

EVERY_STATUS = {"include_all_review_statuses": True}
KINDS = [pytest.param(kind, id=kind) for kind in COLUMNS]


def _names(kind: str) -> set[str]:
    return {name for name, _ in COLUMNS[kind]}


def mixed_sessions() -> list[AtlasSessionTrace]:
    """Two sessions whose free-form fields are strings in one and objects in the other."""
    plain = AtlasStepTrace(
        step_id=1,
        tool_params=None,
        context={"prior_results": "none"},
        deliverable="a plain string",
        validation={"valid": True},
        metadata={"ground_truth": "42"},
    )
    nested = AtlasStepTrace(
        step_id=2,
        tool="web_search",
        tool_params={"query": "atlas", "limit": 3},
        deliverable={"notes": ["a", {"b": 1}]},
        artifacts={"sources": []},
        reward=AtlasRewardBreakdown(score=0.5),
        metadata={"ground_truth": {"answer": 42}},
    )
    return [
        AtlasSessionTrace(task="t1", steps=[plain], learning_history=["x"], session_id=1),
        AtlasSessionTrace(
            task="t2",
            steps=[nested],
            learning_history={"entries": []},
            session_metadata={"batch": 7},
            session_id=2,
            created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        ),
    ]


@pytest.mark.parametrize(
    ("kind", "record_keys"),
    [
        pytest.param("rl", lambda s: next(records_from_sessions([s], "rl")).keys(), id="rl"),
        pytest.param("flat", lambda s: next(records_from_sessions([s], "flat")).keys(), id="flat"),
        pytest.param("sessions", lambda s: s.to_dict().keys(), id="sessions"),
    ],
)
def test_columns_cover_every_record_field(kind, record_keys):
    session = mixed_sessions()[1]
    expected = set(record_keys(session))
    if kind == "sessions":
        expected |= {f.name for f in fields(AtlasSessionTrace)} | set(AtlasSessionTrace.DERIVED)
    assert _names(kind) == expected


def test_json_columns_are_the_free_form_fields():
    free_form = {"tool_params", "step_context", "validation", "session_metadata", "plan"}
    free_form |= {"reward_breakdown", "trajectory_events", "learning_history", "ground_truth"}
    assert free_form | {"artifacts", "deliverable"} <= set(JSON_COLUMNS["rl"])
    assert "prompt" not in JSON_COLUMNS["rl"]


@pytest.mark.parametrize(
    ("value", "column", "expected"),
    [
        pytest.param("7", "step_id", 7, id="int-from-text"),
        pytest.param(3.0, "step_id", 3, id="int-from-float"),
        pytest.param("step-a", "step_id", None, id="int-unreadable"),
        pytest.param(2**70, "step_id", None, id="int-too-big"),
        pytest.param("0.5", "reward_score", 0.5, id="float-from-text"),
        pytest.param(math.nan, "reward_score", None, id="float-nan"),
        pytest.param({"a": 1}, "step_output", '{"a":1}', id="text-from-object"),
        pytest.param({"b": 1, "a": [2]}, "tool_params", '{"a":[2],"b":1}', id="json-sorted"),
        pytest.param("plain", "tool_params", '"plain"', id="json-from-text"),
        pytest.param(["a", {"b": 1}], "guidance_history", ["a", '{"b":1}'], id="text-list"),
    ],
)
def test_values_convert_to_their_column_type(value, column, expected):
    assert encode_record({column: value}, "flat")[column] == expected


def test_unknown_fields_are_refused_not_dropped():
    with pytest.raises(RecordSchemaError, match="no column for field"):
        encode_record({"prompt": "p", "extra": 1}, "rl")


@pytest.mark.parametrize("kind", KINDS)
def test_database_and_jsonl_give_equal_rows(trainer_sessions, trainer_export, kind):
    expected = list(iter_rows(trainer_sessions, kind))
    assert expected
    assert list(iter_rows(iter_runtime_traces(trainer_export), kind)) == expected


@pytest.mark.parametrize("kind", KINDS)
def test_parquet_round_trips(trainer_sessions, tmp_path, kind):
    path = tmp_path / "records.parquet"
    count = write_parquet(trainer_sessions, path, kind=kind, row_group_size=16)
    table = pq.read_table(path)
    assert table.schema.equals(arrow_schema(kind))
    assert table.to_pylist() == list(iter_rows(trainer_sessions, kind))
    assert table.num_rows == count


def test_parquet_rows_decode_to_the_records(trainer_sessions, tmp_path):
    path = tmp_path / "rl.parquet"
    write_parquet(trainer_sessions, path)
    rows = [decode_row(row, "rl") for row in pq.read_table(path).to_pylist()]
    records = records_from_sessions(trainer_sessions, "rl")
    assert rows == [{**record, "ground_truth": None} for record in records]


def test_parquet_is_written_in_row_groups(trainer_sessions, tmp_path):
    path = tmp_path / "rl.parquet"
    count = write_parquet(trainer_sessions, path, row_group_size=10)
    assert pq.ParquetFile(path).metadata.num_row_groups == math.ceil(count / 10)


def test_mixed_types_convert_to_parquet(tmp_path):
    write_parquet(mixed_sessions(), tmp_path / "mixed.parquet")
    rows = pq.read_table(tmp_path / "mixed.parquet").to_pylist()
    assert [row["deliverable"] for row in rows] == ['"a plain string"', '{"notes":["a",{"b":1}]}']
    assert [json.loads(row["ground_truth"]) for row in rows] == ["42", {"answer": 42}]


def test_mixed_types_convert_to_hf_dataset(tmp_path):
    dataset = to_hf_dataset(mixed_sessions(), "rl", cache_dir=tmp_path)
    assert dataset.features == hf_features("rl")
    assert dataset["tool_params"] == [None, '{"limit":3,"query":"atlas"}']
    assert dataset["learning_history"] == ['["x"]', '{"entries":[]}']


@pytest.mark.parametrize("kind", [pytest.param(k, id=k) for k in ("rl", "sessions", "dpo")])
def test_hf_dataset_has_the_parquet_rows(trainer_sessions, tmp_path, kind):
    dataset = to_hf_dataset(iter(trainer_sessions), kind, cache_dir=tmp_path / "hf")
    write_parquet(trainer_sessions, tmp_path / "same.parquet", kind=kind)
    assert dataset.to_list() == pq.read_table(tmp_path / "same.parquet").to_pylist()


def test_hf_dataset_from_records(tmp_path):
    records = [{"prompt": "p", "chosen": "a", "rejected": "b", "margin": 0.5}]
    dataset = to_hf_dataset(records, "dpo", cache_dir=tmp_path)
    assert dataset[0]["margin"] == 0.5 and dataset[0]["key"] is None


def test_interrupted_write_leaves_no_file(trainer_sessions, tmp_path):
    def failing():
        yield from trainer_sessions[:3]
        raise RuntimeError("source went away")

    with pytest.raises(RuntimeError, match="source went away"):
        write_parquet(failing(), tmp_path / "rl.parquet", row_group_size=1)
    assert list(tmp_path.iterdir()) == []


def test_no_input_gives_an_empty_file_with_the_schema(tmp_path):
    assert write_parquet([], tmp_path / "empty.parquet", kind="flat") == 0
    table = pq.read_table(tmp_path / "empty.parquet")
    assert (table.num_rows, table.schema.names) == (0, [name for name, _ in COLUMNS["flat"]])


@pytest.mark.parametrize(
    ("name", "message"),
    [pytest.param("-", "stdout", id="stdout"), pytest.param("rl.parquet.gz", "inside", id="gz")],
)
def test_parquet_output_names_are_checked(tmp_path, monkeypatch, name, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputError, match=message):
        write_parquet([], name)


def test_export_parquet_reads_the_database(trainer_db, trainer_sessions, tmp_path):
    path = tmp_path / "flat.parquet"
    summary = export_parquet(str(path), trainer_db, kind="flat", batch_size=5, **EVERY_STATUS)
    assert pq.read_table(path).to_pylist() == list(iter_rows(trainer_sessions, "flat"))
    assert (summary.sessions, summary.format) == (len(trainer_sessions), "parquet")
    assert summary.bytes_written == path.stat().st_size
