"""Property: whatever JSON the session tables hold, every stored key and value reaches the record.

Hypothesis writes arbitrary JSON (objects, arrays, scalars, nested-event
shapes, odd scores) into every JSON column of the six session tables with
plain SQL, then reads the session through the API, the JSONL exporter, the
loader and a Parquet file. Each stored scalar must be found among the record's values
(as a multiset: two equal values stored twice are found twice) and each
stored key among its keys. The only renames allowed are the documented ones:
a score that is not a number is kept as ``score_raw``, a judge's ``name`` is
its ``identifier``, and a value that does not fit is kept under a ``*_raw``
or ``legacy_value`` key.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from atlas.errors import TraceDecodeWarning
from atlas.training_data import get_session_by_id
from atlas.training_data.export import export_jsonl
from trainers.columns import decode_row
from trainers.parquet import write_parquet
from trainers.runtime_dataset import load_runtime_traces

# jsonb holds neither NUL nor NaN; numbers within 64-bit integers and doubles.
_TEXT = st.text(
    st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=8
)
_SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
)
_KEYS = st.sampled_from(
    ["score", "judges", "samples", "name", "identifier", "reward", "validation", "payload",
     "event_type", "metadata", "runtime", "id", "created_at", "steps", "timestamp",
     "event_timestamp", "row_id", "lifted_keys", "context", "attempts", "x"]
) | _TEXT  # fmt: skip
JSON = st.recursive(
    _SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5),
    max_leaves=20,
)
_NESTED_EVENT = st.fixed_dictionaries(
    {"payload": st.fixed_dictionaries({"event_type": _TEXT}, optional={"metadata": JSON})},
    optional={"parent_id": JSON, "x": JSON},
)
COLUMNS = (
    "metadata", "reward", "reward_stats", "reward_audit", "plan", "step_metadata",
    "evaluation", "attempt_evaluation", "event",
)  # fmt: skip


def _scalars(value: Any) -> Iterator[tuple[str, Any]]:
    """Every non-null scalar of ``value``, tagged so that 1, 1.0 and True stay apart."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from _scalars(item)
    elif isinstance(value, bool):
        yield ("bool", value)
    elif isinstance(value, (int, float)):
        yield ("number", float(value))
    elif value is not None:
        yield ("text", value)


def _keys(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        found.update(value)
        for item in value.values():
            found |= _keys(item)
    elif isinstance(value, list):
        for item in value:
            found |= _keys(item)
    return found


_RENAMES = {"score": ("score_raw",), "name": ("identifier",)}


def assert_found(stored: Any, record: dict[str, Any]) -> None:
    """Every stored scalar (multiset) and key (allowing the documented renames) is in ``record``."""
    missing = Counter(_scalars(stored)) - Counter(_scalars(record))
    assert not missing, f"values not in the record: {dict(missing)}"
    keys = _keys(record)
    lost = {
        k
        for k in _keys(stored)
        if k not in keys
        and f"{k}_raw" not in keys
        and not any(alt in keys for alt in _RENAMES.get(k, ()))
    }
    assert not lost, f"keys not in the record: {lost}"


def _write(conn: psycopg.Connection[Any], values: dict[str, Any]) -> int:
    j = {name: Jsonb(value) for name, value in values.items()}
    row = conn.execute(
        "INSERT INTO sessions (task, status, review_status, metadata, reward, reward_stats, "
        "reward_audit) VALUES ('t', 'succeeded', 'approved', %s, %s, %s, %s) RETURNING id",
        [j["metadata"], j["reward"], j["reward_stats"], j["reward_audit"]],
    ).fetchone()
    assert row is not None
    sid = int(row[0])
    conn.execute("INSERT INTO plans (session_id, plan) VALUES (%s, %s)", [sid, j["plan"]])
    conn.execute(
        "INSERT INTO step_results (session_id, step_id, output, evaluation, metadata) "
        "VALUES (%s, 1, 'o', %s, %s)",
        [sid, j["evaluation"], j["step_metadata"]],
    )
    conn.execute(
        "INSERT INTO step_attempts (session_id, step_id, attempt, evaluation) "
        "VALUES (%s, 1, 1, %s)",
        [sid, j["attempt_evaluation"]],
    )
    conn.execute(
        "INSERT INTO trajectory_events (session_id, event) VALUES (%s, %s)", [sid, j["event"]]
    )
    return sid


@pytest.fixture(scope="module")
def property_db(scratch_database: Any) -> str:
    url: str = scratch_database()
    return url


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    values=st.fixed_dictionaries(
        {name: JSON for name in COLUMNS if name != "event"} | {"event": JSON | _NESTED_EVENT}
    )
)
def test_every_stored_value_reaches_every_reader(
    property_db: str, tmp_path_factory: pytest.TempPathFactory, values: dict[str, Any]
):
    with psycopg.connect(property_db, autocommit=True) as conn:
        sid = _write(conn, values)
    out = tmp_path_factory.mktemp("prop") / "s.jsonl"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceDecodeWarning)
        trace = get_session_by_id(sid, property_db)
        export_jsonl(str(out), property_db, session_ids=[sid], include_all_review_statuses=True)
    (loaded,) = load_runtime_traces(Path(out))
    write_parquet([trace], out.with_suffix(".parquet"), kind="sessions")
    (row,) = pq.read_table(out.with_suffix(".parquet")).to_pylist()
    for record in (trace.to_dict(), loaded.to_dict(), decode_row(row, "sessions")):
        # Values are found in the part of the record that holds their column.
        step = record["steps"][0]
        assert_found(values["metadata"], record["session_metadata"])
        assert_found(values["reward"], {"r": record["session_reward"]})
        assert_found(values["reward_stats"], {"r": record["reward_stats"]})
        assert_found(values["reward_audit"], {"r": record["reward_audit"]})
        assert_found(values["plan"], {"r": record["plan"]})
        assert_found(values["step_metadata"], step["metadata"])
        assert_found(values["evaluation"], step)
        assert_found(values["attempt_evaluation"], step["attempt_history"])
        assert_found(values["event"], record["trajectory_events"][0])


@pytest.mark.parametrize(
    ("stored", "record"),
    [
        pytest.param({"a": [1, "x"]}, {"a": [1]}, id="value"),
        pytest.param({"a": 1, "b": 1}, {"a": 1}, id="repeated-value"),
        pytest.param({"k": None}, {"j": None}, id="key"),
        pytest.param({"a": True}, {"a": 1}, id="bool-is-not-one"),
    ],
)
def test_the_check_notices_what_is_missing(stored: Any, record: dict[str, Any]):
    with pytest.raises(AssertionError):
        assert_found(stored, record)
