"""ATLAS core's trainer finds every field it reads in our export of an atlas-sdk database.

ATLAS core (Arc-Computer/ATLAS: trainers/runtime_dataset.py and
atlas_core/runtime/schema.py) is not on PyPI, so its reads are restated here
as the plain dict accesses it makes on a JSONL record: the documented
session fields through ``session_metadata``, ``drift_alert`` through
``drift.drift_alert`` first, ``executor_system_prompt`` and ``ground_truth``
from step metadata and then session metadata, the session reward from
``session_reward`` or ``reward``, a step's reward from ``evaluation`` or
``reward``, and its context from ``context`` (or ``prior_results``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from interop_data import complete
from interop_sdk import SdkDatabase, by_task, read_jsonl

pytestmark = pytest.mark.interop

Record = dict[str, Any]


def _meta(key: str) -> Callable[[Record], Any]:
    return lambda record: (record.get("session_metadata") or {}).get(key)


def _drift_alert(record: Record) -> Any:
    meta = record.get("session_metadata") or {}
    drift = meta.get("drift")
    if isinstance(drift, dict):
        return drift.get("drift_alert") or meta.get("drift_alert")
    return meta.get("drift_alert")


# Issue 9's "Done when": these must not only match what was written but be non-empty.
REQUIRED = ("learning_key", "triage_dossier", "drift", "reward_audit")
METADATA_READS = (
    "learning_key",
    "teacher_notes",
    "reward_summary",
    "drift",
    "triage_dossier",
    "reward_audit",
    "executor_system_prompt",
    "ground_truth",
)


def _written(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda spec: spec["metadata"][key]


def _top(key: str) -> Callable[[Record], Any]:
    return lambda record: record.get(key)


def _session_reward_score(record: Record) -> Any:
    return (record.get("session_reward") or record.get("reward") or {}).get("score")


# (how ATLAS core reads it from our record, the value written, whether it must be non-empty)
SESSION_READS = [
    *(
        pytest.param(_meta(k), _written(k), k in REQUIRED, id=f"session_metadata.{k}")
        for k in METADATA_READS
    ),
    pytest.param(_drift_alert, _written("drift_alert"), False, id="drift_alert"),
    pytest.param(_session_reward_score, lambda s: s["reward"]["score"], True, id="session_reward"),
    pytest.param(
        lambda r: len(r.get("trajectory_events") or []),
        lambda s: len(s["events"]),
        True,
        id="trajectory_events",
    ),
    *(
        pytest.param(_top(k), lambda s, k=k: s[k], True, id=k)
        for k in ("student_learning", "teacher_learning")
    ),
    *(
        pytest.param(_top(k), _written(k), True, id=k)
        for k in ("learning_history", "adaptive_summary")
    ),
]


@pytest.fixture(scope="module")
def records(our_export: Path) -> dict[str, Record]:
    return by_task(read_jsonl(our_export))


@pytest.mark.parametrize(("read", "written", "required"), SESSION_READS)
def test_session_field(
    read: Callable[[Record], Any],
    written: Callable[[dict[str, Any]], Any],
    required: bool,
    records: dict[str, Record],
    sdk_db: SdkDatabase,
) -> None:
    specs = complete(sdk_db.specs)
    found = {spec["task"]: read(records[spec["task"]]) for spec in specs}
    assert found == {spec["task"]: written(spec) for spec in specs}
    if required:
        assert all(found.values())


def _steps(records: dict[str, Record], sdk_db: SdkDatabase) -> list[tuple[Record, Record]]:
    """(our step, written step) for every step of every complete session."""
    pairs = []
    for spec in complete(sdk_db.specs):
        ours = {s.get("step_id"): s for s in records[spec["task"]]["steps"]}
        pairs += [(ours.get(step["step_id"], {}), step) for step in spec["steps"]]
    return pairs


STEP_READS = [
    pytest.param("runtime", lambda s: s.get("runtime"), True, id="runtime"),
    pytest.param("artifacts", lambda s: s.get("artifacts"), True, id="artifacts"),
    pytest.param("deliverable", lambda s: s.get("deliverable"), True, id="deliverable"),
    pytest.param(
        "attempt_history",
        lambda s: (s.get("metadata") or {}).get("attempt_history"),
        True,
        id="metadata.attempt_history",
    ),
    pytest.param(
        "executor_system_prompt",
        lambda s: (s.get("metadata") or {}).get("executor_system_prompt"),
        False,
        id="metadata.executor_system_prompt",
    ),
    pytest.param(
        "ground_truth",
        lambda s: (s.get("metadata") or {}).get("ground_truth"),
        False,
        id="metadata.ground_truth",
    ),
]


@pytest.mark.parametrize(("key", "read", "required"), STEP_READS)
def test_step_field(
    key: str,
    read: Callable[[Record], Any],
    required: bool,
    records: dict[str, Record],
    sdk_db: SdkDatabase,
) -> None:
    found = [read(ours) for ours, _ in _steps(records, sdk_db)]
    assert found == [written["metadata"].get(key) for _, written in _steps(records, sdk_db)]
    if required:
        assert all(found)


def test_step_reward(records: dict[str, Record], sdk_db: SdkDatabase) -> None:
    pairs = _steps(records, sdk_db)
    found = [(s.get("evaluation") or s.get("reward") or {}).get("score") for s, _ in pairs]
    assert found == [w["evaluation"]["reward"]["score"] for _, w in pairs]


def test_prior_step_context(records: dict[str, Record], sdk_db: SdkDatabase) -> None:
    spec = sdk_db.specs[0]
    step = next(s for s in records[spec["task"]]["steps"] if s["step_id"] == 2)
    context = step.get("context") or step.get("prior_results") or {}
    first = spec["steps"][0]
    assert context["prior_results"]["1"]["output_text"] == first["output"]
    assert context["prior_results"]["1"]["artifacts"] == first["metadata"]["artifacts"]
    assert context["prior_results_text"] == {"1": first["output"]}


def test_first_step_has_no_prior_results(records: dict[str, Record], sdk_db: SdkDatabase) -> None:
    step = next(s for s in records[sdk_db.specs[0]["task"]]["steps"] if s["step_id"] == 1)
    assert step["context"] == {"prior_results": {}, "prior_results_text": {}}
