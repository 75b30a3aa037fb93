"""Drive the real atlas-sdk client (PyPI ``arc-atlas==0.1.16``) for the interop tier.

Run with the python of the atlas-sdk virtualenv, never with arc-atlas's: both
packages import as ``atlas``. One command per process, JSON in and out::

    python sdk_driver.py write  < {"database_url": ..., "sessions": [spec, ...]}
    python sdk_driver.py read   < {"database_url": ..., "session_ids": [...]}

``write`` stores each session spec (see ``interop_data.py``) through the
sdk's ``Database`` with the calls its orchestrator makes, and prints
``{"session_ids": [...]}``. ``read`` calls the sdk's public readers
(``get_training_sessions``, ``get_session_by_id``, ``count_training_sessions``,
``paginate_sessions``) and prints what each returned, as ``to_dict()``.
The exporter needs no driver: it is run as ``python -m atlas.cli.export``.
"""

# The `atlas` imported here is atlas-sdk's; ruff would sort it as if it were ours.
# ruff: noqa: I001

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from atlas.config.models import StorageConfig
from atlas.runtime.models.intermediate_step import IntermediateStep
from atlas.runtime.schema import AtlasRewardBreakdown
from atlas.runtime.storage.database import Database
from atlas.training_data import (
    count_training_sessions,
    get_session_by_id,
    get_training_sessions,
    paginate_sessions,
)
from atlas.types import Plan, StepResult


async def _write_session(database: Database, spec: dict[str, Any]) -> int:
    """The orchestrator's calls, in its order; a key missing from ``spec`` skips its call."""
    session_id = await database.create_session(spec["task"], spec.get("initial_metadata"))
    if "plan" in spec:
        await database.log_plan(session_id, Plan.model_validate(spec["plan"]))
    for step in spec.get("steps", []):
        await database.log_step_result(session_id, StepResult.model_validate(step))
    for step_id, attempts in spec.get("attempts", {}).items():
        await database.log_step_attempts(session_id, int(step_id), attempts)
    for step_id, notes in spec.get("guidance", {}).items():
        await database.log_guidance(session_id, int(step_id), notes)
    for event in spec.get("events", []):
        await database.log_intermediate_step(session_id, IntermediateStep.model_validate(event))
    if "reward" in spec:
        # The orchestrator hands the evaluator's breakdown over, not a plain dict.
        await database.log_session_reward(
            session_id,
            AtlasRewardBreakdown.from_dict(spec["reward"]),
            spec["student_learning"],
            spec["teacher_learning"],
            spec["reward_stats"],
            spec["reward_audit"],
        )
    if "metadata" in spec:
        await database.update_session_metadata(session_id, spec["metadata"])
    if "status" in spec:
        await database.finalize_session(session_id, spec["final_answer"], spec["status"])
    if "review_status" in spec:
        await database.update_session_review_status(
            session_id, spec["review_status"], spec["review_notes"]
        )
    return session_id


async def write(request: dict[str, Any]) -> dict[str, Any]:
    """Store every session spec; returns their new ids in order."""
    database = Database(StorageConfig(database_url=request["database_url"]))
    await database.connect()
    try:
        ids = [await _write_session(database, spec) for spec in request["sessions"]]
    finally:
        await database.disconnect()
    return {"session_ids": ids}


async def _pages(url: str) -> list[list[dict[str, Any]]]:
    database = Database(StorageConfig(database_url=url))
    await database.connect()
    try:
        return [
            [trace.to_dict() for trace in batch]
            async for batch in paginate_sessions(database, {}, batch_size=1)
        ]
    finally:
        await database.disconnect()


def read(request: dict[str, Any]) -> dict[str, Any]:
    """Every session through each public reader of ``atlas.training_data``."""
    url = request["database_url"]
    sessions = [trace.to_dict() for trace in get_training_sessions(url)]
    by_id = {}
    for session_id in request["session_ids"]:
        # Upstream's positional order: database first, then the id.
        found = get_session_by_id(url, session_id)
        by_id[str(session_id)] = found.to_dict() if found is not None else None
    return {
        "sessions": sessions,
        "by_id": by_id,
        "count": count_training_sessions(url),
        "pages": asyncio.run(_pages(url)),
    }


def main(argv: list[str]) -> int:
    request = json.load(sys.stdin)
    if argv == ["write"]:
        result = asyncio.run(write(request))
    elif argv == ["read"]:
        result = read(request)
    else:
        print(f"usage: sdk_driver.py write|read (got {argv!r})", file=sys.stderr)
        return 2
    json.dump(result, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
