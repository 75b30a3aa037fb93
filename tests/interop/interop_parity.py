"""Field-by-field differences between atlas-sdk's export and arc-atlas's, and the documented table.

``export_differences`` pairs sessions by task, steps by ``step_id`` and
events by their row id, and returns every differing field path with an
example of the two values. ``documented_deviations`` reads the one table of
docs/atlas-sdk-compat.md whose first column is a field path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from interop_compare import MISSING, differences

COMPAT_DOC = Path(__file__).resolve().parents[2] / "docs" / "atlas-sdk-compat.md"
TABLE_HEADER = ("field / behaviour", "atlas-sdk 0.1.16", "arc-atlas", "reason")


def row_id(event: dict[str, Any]) -> Any:
    """An exported event's row id: its ``id``, or ``row_id`` when the stored event had an id."""
    return event.get("row_id", event.get("id"))


def _by(items: list[dict[str, Any]], key: Any) -> dict[Any, dict[str, Any]]:
    return {key(item): item for item in items}


def _merge(found: dict[str, tuple[Any, Any]], more: dict[str, tuple[Any, Any]]) -> None:
    for path, pair in more.items():
        found.setdefault(path, pair)


def _paired(
    sdk: list[dict[str, Any]], ours: list[dict[str, Any]], key: Any, path: str
) -> dict[str, tuple[Any, Any]]:
    found: dict[str, tuple[Any, Any]] = {}
    left, right = _by(sdk, key), _by(ours, key)
    for k in sorted(set(left) | set(right), key=str):
        _merge(found, differences(left.get(k, MISSING), right.get(k, MISSING), path))
    return found


def export_differences(
    sdk: list[dict[str, Any]], ours: list[dict[str, Any]]
) -> dict[str, tuple[Any, Any]]:
    """Every field path where the two exports differ: ``{path: (sdk value, our value)}``."""
    found: dict[str, tuple[Any, Any]] = {}
    left, right = _by(sdk, lambda r: r["task"]), _by(ours, lambda r: r["task"])
    assert set(left) == set(right), "both exports must hold the same sessions"
    for task, a in left.items():
        b = right[task]
        nested = ("steps", "trajectory_events")
        _merge(
            found,
            differences(
                {k: v for k, v in a.items() if k not in nested},
                {k: v for k, v in b.items() if k not in nested},
            ),
        )
        a_steps, b_steps = a.get("steps") or [], b.get("steps") or []
        _merge(found, _paired(a_steps, b_steps, lambda s: s.get("step_id"), "steps[]"))
        a_events, b_events = a.get("trajectory_events") or [], b.get("trajectory_events") or []
        _merge(found, _paired(a_events, b_events, row_id, "trajectory_events[]"))
    return found


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def documented_deviations(doc: Path = COMPAT_DOC) -> dict[str, list[str]]:
    """The deviations table: ``{field path: [atlas-sdk, arc-atlas, reason]}``.

    A row names one or more field paths in its first cell, each in
    backquotes; rows whose first cell starts with "Behaviour" are not about a
    record field and are left out.
    """
    lines = doc.read_text(encoding="utf-8").splitlines()
    start = next(
        i for i, line in enumerate(lines) if tuple(c.lower() for c in _cells(line)) == TABLE_HEADER
    )
    table: dict[str, list[str]] = {}
    for line in lines[start + 2 :]:
        if not line.strip().startswith("|"):
            break
        first, *rest = _cells(line)
        if first.lower().startswith("behaviour"):
            continue
        for path in re.findall(r"`([^`]+)`", first):
            table[path] = rest
    return table
