"""The record the exporter writes is the trace the API returns: one assembly, checked.

Every session of the shared seeded database (legacy rows included) must give a
record in canonical ``to_dict()`` form, and the raw-event fast path of the
exporter must serialise to exactly the same JSON values.
"""

from __future__ import annotations

from dataclasses import replace

import orjson
import psycopg
import pytest

from atlas.runtime.traces import AtlasSessionTrace
from atlas.training_data.assembly import LoadOptions, assemble_records
from atlas.training_data.drivers import drive
from atlas.training_data.filters import SessionFilters
from atlas.training_data.plan import rows_plan


def _records(url: str, options: LoadOptions) -> list[dict]:
    records: list[dict] = []
    cursor = None
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            rows, cursor = drive(
                conn, rows_plan(SessionFilters(), None, options, size=150, after=cursor)
            )
            if rows is not None:
                records.extend(assemble_records(rows, options))
            if cursor is None:
                return records


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(LoadOptions(), id="everything"),
        pytest.param(LoadOptions(trajectory_event_limit=3), id="event-limit"),
        pytest.param(
            LoadOptions(include_trajectory_events=False, include_learning_data=False), id="lean"
        ),
    ],
)
def test_every_record_is_in_canonical_form(seeded_url, options):
    records = _records(seeded_url, options)
    assert records
    for record in records:
        assert AtlasSessionTrace.from_dict(record).to_dict() == record


def test_raw_events_serialise_to_the_same_values(seeded_url):
    parsed = _records(seeded_url, LoadOptions())
    raw = _records(seeded_url, replace(LoadOptions(), raw_events=True))
    assert len(raw) == len(parsed)
    passed_through = 0
    for fast, slow in zip(raw, parsed, strict=True):
        passed_through += isinstance(fast["trajectory_events"], orjson.Fragment)
        assert orjson.loads(orjson.dumps(fast)) == orjson.loads(orjson.dumps(slow))
    assert passed_through > 0
