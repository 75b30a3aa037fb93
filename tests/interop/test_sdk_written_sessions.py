"""Sessions written by atlas-sdk's own writer are read by arc-atlas with every field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from interop_expect import lost_fields
from interop_sdk import SdkDatabase, read_jsonl

from atlas.training_data import get_session_by_id, get_training_sessions

pytestmark = pytest.mark.interop


def _api_list(db: SdkDatabase, _: Path) -> list[dict[str, Any]]:
    return [
        t.to_dict() for t in get_training_sessions(db_url=db.url, include_all_review_statuses=True)
    ]


def _api_by_id(db: SdkDatabase, _: Path) -> list[dict[str, Any]]:
    return [get_session_by_id(session_id=i, db_url=db.url).to_dict() for i in db.ids]


def _jsonl(_: SdkDatabase, export: Path) -> list[dict[str, Any]]:
    return read_jsonl(export)


READERS = [
    pytest.param(_api_list, id="get_training_sessions"),
    pytest.param(_api_by_id, id="get_session_by_id"),
    pytest.param(_jsonl, id="arc-atlas-export"),
]


@pytest.mark.parametrize("read", READERS)
@pytest.mark.parametrize(
    "index", [0, 1, 2], ids=["succeeded-approved", "failed-quarantined", "running"]
)
def test_every_written_value_reaches_the_record(
    read: Callable[[SdkDatabase, Path], list[dict[str, Any]]],
    index: int,
    sdk_db: SdkDatabase,
    our_export: Path,
) -> None:
    spec = sdk_db.specs[index]
    record = next(r for r in read(sdk_db, our_export) if r["task"] == spec["task"])
    assert lost_fields(record, spec) == []
