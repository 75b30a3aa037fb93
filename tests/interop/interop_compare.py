"""Comparing records: is every stored value in a record, and where do two records differ.

Paths are written the way docs/atlas-sdk-compat.md writes them: keys joined
with ``.``, and ``[]`` for "any element of a list" (``steps[].reward.raw``).
"""

from __future__ import annotations

import re
from typing import Any


def missing(stored: Any, record: Any, path: str = "") -> list[str]:
    """Paths of ``stored`` whose value is not in ``record`` (dict keys may be added, nothing lost).

    Dicts: every stored key must be there with its value found recursively;
    lists: same length, element by element; anything else: equal.
    """
    if isinstance(stored, dict):
        if not isinstance(record, dict):
            return [f"{path or '.'}: stored an object, found {record!r}"]
        lost: list[str] = []
        for key, value in stored.items():
            where = f"{path}.{key}" if path else key
            if key not in record:
                lost.append(f"{where}: stored {value!r}, key absent")
            else:
                lost.extend(missing(value, record[key], where))
        return lost
    if isinstance(stored, list):
        if not isinstance(record, list) or len(record) != len(stored):
            return [f"{path}: stored {stored!r}, found {record!r}"]
        return [p for i, v in enumerate(stored) for p in missing(v, record[i], f"{path}[{i}]")]
    if stored != record or type(stored) is not type(record):
        return [f"{path}: stored {stored!r}, found {record!r}"]
    return []


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def differences(a: Any, b: Any, path: str = "") -> dict[str, tuple[Any, Any]]:
    """Every path where ``a`` and ``b`` differ, with the two values (``MISSING`` when absent).

    Dicts recurse key by key; lists of equal length recurse element by
    element under ``path[]``; anything else is compared whole.
    """
    if isinstance(a, dict) and isinstance(b, dict):
        found: dict[str, tuple[Any, Any]] = {}
        for key in sorted(set(a) | set(b), key=str):
            found.update(
                differences(a.get(key, MISSING), b.get(key, MISSING), _join(path, str(key)))
            )
        return found
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        found = {}
        for x, y in zip(a, b, strict=True):
            for where, pair in differences(x, y, f"{path}[]").items():
                found.setdefault(where, pair)
        return found
    if a == b and type(a) is type(b):
        return {}
    return {path: (a, b)}


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def covers(documented: str, path: str) -> bool:
    """Whether a documented field path covers ``path``: itself or anything beneath it.

    ``*`` in the documented path stands for one key.
    """
    pattern = re.escape(documented).replace(r"\*", r"[^.\[]+")
    return re.fullmatch(pattern + r"(?:[.\[].*)?", path) is not None
