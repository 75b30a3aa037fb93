"""On one database, atlas-sdk's export and ours differ exactly as docs/atlas-sdk-compat.md says."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from interop_compare import covers
from interop_parity import COMPAT_DOC, documented_deviations, export_differences, row_id
from interop_sdk import SdkDatabase, by_task, read_jsonl

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def found(sdk_export: Path, our_export: Path) -> dict[str, tuple[object, object]]:
    return export_differences(read_jsonl(sdk_export), read_jsonl(our_export))


def test_the_doc_has_a_deviations_table() -> None:
    assert documented_deviations(), f"no deviations table in {COMPAT_DOC}"


def test_every_difference_is_documented(found: dict[str, tuple[object, object]]) -> None:
    table = documented_deviations()
    undocumented = {
        path: f"atlas-sdk {a!r:.120} / arc-atlas {b!r:.120}"
        for path, (a, b) in found.items()
        if not any(covers(doc, path) for doc in table)
    }
    assert undocumented == {}


def test_every_documented_deviation_still_occurs(found: dict[str, tuple[object, object]]) -> None:
    stale = [doc for doc in documented_deviations() if not any(covers(doc, p) for p in found)]
    assert stale == []


def test_events_in_metadata_puts_them_where_the_sdk_does(
    arc_atlas: Callable[..., str], sdk_db: SdkDatabase, sdk_export: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ours.jsonl"
    arc_atlas("export", "--database-url", sdk_db.url, "-o", str(out), "--include-all-statuses",
              "--events-in-metadata")  # fmt: skip
    sdk = by_task(read_jsonl(sdk_export))

    def row_ids(record: dict[str, Any]) -> list[Any]:
        return [row_id(e) for e in record["session_metadata"].get("trajectory_events", [])]

    assert {task: row_ids(r) for task, r in by_task(read_jsonl(out)).items()} == {
        task: row_ids(r) for task, r in sdk.items()
    }
