"""atlas-sdk's own JSONL export loads through trainers.runtime_dataset with every field."""

from __future__ import annotations

from typing import Any

import pytest
from interop_expect import lost_fields
from interop_sdk import SdkDatabase

from trainers.runtime_dataset import load_runtime_traces

pytestmark = pytest.mark.interop

# step_id has its own test: an event outside any step has none.
ENVELOPE = ("event_type", "actor", "name", "timestamp", "id", "created_at")


@pytest.fixture(scope="module")
def loaded(sdk_db: SdkDatabase) -> dict[str, dict[str, Any]]:
    """The sdk's export of its own (not yet upgraded) database, loaded and back as records."""
    traces = load_runtime_traces(sdk_db.sdk_export_before_upgrade)
    return {trace.task: trace.to_dict() for trace in traces}


@pytest.mark.parametrize(
    "index", [0, 1, 2], ids=["succeeded-approved", "failed-quarantined", "running"]
)
def test_every_written_value_is_loaded(
    index: int, sdk_db: SdkDatabase, loaded: dict[str, dict[str, Any]]
) -> None:
    spec = sdk_db.specs[index]
    assert lost_fields(loaded[spec["task"]], spec) == []


@pytest.mark.parametrize("key", ENVELOPE)
def test_every_event_has_its_envelope_field(
    key: str, sdk_db: SdkDatabase, loaded: dict[str, dict[str, Any]]
) -> None:
    events = [e for record in loaded.values() for e in record["trajectory_events"]]
    assert len(events) == sum(len(spec.get("events", [])) for spec in sdk_db.specs)
    assert [e for e in events if e.get(key) is None] == []


def test_event_step_ids_are_the_written_ones(
    sdk_db: SdkDatabase, loaded: dict[str, dict[str, Any]]
) -> None:
    for spec in sdk_db.specs:
        found = [e["step_id"] for e in loaded[spec["task"]]["trajectory_events"]]
        assert found == [e["payload"]["metadata"]["step_id"] for e in spec.get("events", [])]
