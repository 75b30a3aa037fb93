"""atlas-sdk's writer, readers and exporter keep working on a database arc-atlas upgraded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from interop_compare import missing
from interop_data import sessions
from interop_expect import stored_reward
from interop_sdk import Sdk

pytestmark = pytest.mark.interop


@dataclass(frozen=True)
class Upgraded:
    """Sessions the sdk wrote before and after ``arc-atlas db upgrade``, and what it reads back."""

    specs: dict[int, dict[str, Any]]
    read: dict[str, Any]
    export: list[dict[str, Any]]


@pytest.fixture(scope="module")
def upgraded(
    sdk: Sdk,
    arc_atlas: Callable[..., str],
    new_database: Callable[[], str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Upgraded:
    url = new_database()
    before, after = sessions(), sessions()
    ids = sdk.write(url, before)
    arc_atlas("db", "upgrade", "--database-url", url)
    ids += sdk.write(url, after)
    specs = dict(zip(ids, before + after, strict=True))
    export = sdk.export(url, tmp_path_factory.mktemp("sdk-upgraded") / "sdk.jsonl")
    return Upgraded(specs, sdk.read(url, ids), export)


def lost(trace: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    """Written values that an sdk reader's trace (or its export record) does not hold."""
    expected = {
        key: spec[key]
        for key in ("task", "final_answer", "student_learning", "teacher_learning")
        if key in spec
    }
    if "metadata" in spec:
        expected["session_metadata"] = spec["metadata"]
    if "reward" in spec:
        expected["session_reward"] = stored_reward(spec["reward"])
    found = missing(expected, trace)
    steps = {step["step_id"]: step for step in trace.get("steps") or []}
    for step in spec["steps"]:
        written = {"trace": step["trace"], "output": step["output"], "metadata": step["metadata"]}
        where = f"steps[{step['step_id']}]"
        found += [f"{where}.{p}" for p in missing(written, steps.get(step["step_id"]))]
    events = trace.get("trajectory_events") or []
    if len(events) != len(spec.get("events", [])):
        found.append(f"trajectory_events: {len(events)} found")
    return found


def test_count_sees_sessions_from_before_and_after(upgraded: Upgraded) -> None:
    assert upgraded.read["count"] == len(upgraded.specs)


def test_get_session_by_id_reads_every_session(upgraded: Upgraded) -> None:
    by_id = upgraded.read["by_id"]
    assert {i: lost(by_id[str(i)], spec) for i, spec in upgraded.specs.items()} == {
        i: [] for i in upgraded.specs
    }


def _pages(upgraded: Upgraded) -> list[dict[str, Any]]:
    return [trace for page in upgraded.read["pages"] for trace in page]


@pytest.mark.parametrize(
    "found",
    [
        pytest.param(lambda u: u.read["sessions"], id="get_training_sessions"),
        pytest.param(_pages, id="paginate_sessions"),
        pytest.param(lambda u: u.export, id="atlas.cli.export"),
    ],
)
def test_listing_readers_return_every_session_whole(
    found: Callable[[Upgraded], list[dict[str, Any]]], upgraded: Upgraded
) -> None:
    traces = found(upgraded)
    assert len(traces) == len(upgraded.specs)
    for spec in upgraded.specs.values():
        # Each task was written twice, once on each side of the upgrade.
        twins = [t for t in traces if t["task"] == spec["task"]]
        assert [lost(t, spec) for t in twins] == [[], []]
