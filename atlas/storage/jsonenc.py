"""JSON encoding for values bound for PostgreSQL ``jsonb`` and ``text`` columns.

PostgreSQL cannot store the NUL character in ``text`` or in a ``jsonb``
string, and LLM output occasionally contains one; a write must not fail for
that, so NUL becomes U+FFFD. Values orjson cannot encode (sets, paths,
pydantic models, arbitrary objects) are converted rather than rejected.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import orjson

__all__ = ["clean_text", "decode_object", "dumps", "loads_lenient"]

logger = logging.getLogger(__name__)

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
# An escaped NUL preceded by an even number of backslashes is a real NUL
# (an odd number means the backslash itself was escaped: literal text "\u0000").
_ESCAPED_NUL = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")


def _default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return dict(value)
    return str(value)


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(map(_has_non_finite, value.values()))
    if isinstance(value, (list, tuple)):
        return any(map(_has_non_finite, value))
    return False


def _spelled(value: Any) -> Any:
    """``value`` with NaN and the infinities as the text Python's json module writes for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _spelled(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_spelled(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """Encode ``value`` as JSON text that PostgreSQL's ``jsonb`` accepts.

    JSON has no NaN or infinity, and orjson would write ``null`` for them,
    losing the value without a word; they are stored as the text ``"NaN"``,
    ``"Infinity"``, ``"-Infinity"`` instead, and a warning is logged.
    """
    try:
        data = orjson.dumps(value, default=_default, option=_OPTIONS)
    except TypeError:
        # orjson rejects integers beyond 64 bits (uuid.int, big counters); the
        # standard library takes them, and jsonb stores them as numeric.
        data = json.dumps(_spelled(value), default=_default, ensure_ascii=False).encode("utf-8")
    if b"null" in data and _has_non_finite(value):
        # Only values that wrote a null can hold a NaN: the walk is rare.
        logger.warning("NaN or infinite number(s) stored as text (JSON cannot hold them)")
        data = orjson.dumps(_spelled(value), default=_default, option=_OPTIONS)
    if b"\\u0000" in data:
        data = _ESCAPED_NUL.sub(rb"\1\\ufffd", data)
    return data.decode("utf-8")


def clean_text(value: str | None) -> str | None:
    """Make a string storable in a ``text`` column (NUL becomes U+FFFD)."""
    if value is None or "\x00" not in value:
        return value
    return value.replace("\x00", "\ufffd")


def loads_lenient(value: Any) -> Any:
    """Decode JSON that older writers stored as a JSON string; anything else passes through.

    A ``str`` that parses as a JSON object or array is decoded; every other
    value (including strings that are plain text) is returned unchanged.
    """
    if isinstance(value, str):
        stripped = value.lstrip()
        if stripped[:1] in ("{", "["):
            try:
                return orjson.loads(stripped)
            except orjson.JSONDecodeError:
                return value
    return value


def decode_object(value: Any, what: str, warnings: list[str]) -> dict[str, Any] | None:
    """``value`` decoded into a dict, or None; any other value is kept as ``{"legacy_value": ...}``.

    The kept value is named in ``warnings`` (``what`` says where it was).
    """
    value = loads_lenient(value)
    if value is None or isinstance(value, dict):
        return value
    warnings.append(
        f"{what} is not a JSON object ({type(value).__name__}); kept under legacy_value"
    )
    return {"legacy_value": value}
