"""Hypothesis strategies for trajectory events in the nested (atlas-sdk) shape, odd ones included.

Shared by the Python envelope tests and the SQL agreement tests (imported by
name: the test folders are not packages). Values are what ``jsonb`` can hold:
no NaN or infinity, no NUL in strings.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from atlas.storage.events import LIFTED_KEYS, LIFTED_MARKER

# Python's datetime range in epoch seconds: years 1 to 9999.
FIRST_SECOND, LAST_SECOND = -62_135_596_800, 253_402_300_799

text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)
keys = st.one_of(st.sampled_from(["id", "data", "metadata", "é", "名前", "UUID"]), text)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
)
json_values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)

# Exactly half a microsecond past a whole one: where rounding rules differ.
half_micros = st.builds(
    lambda s, us: s + (us + 0.5) / 1e6,
    st.integers(min_value=0, max_value=2_000_000_000),
    st.integers(min_value=0, max_value=999_999),
)
timestamps = st.one_of(
    st.floats(min_value=FIRST_SECOND - 2, max_value=LAST_SECOND + 2),
    st.floats(min_value=-1e4, max_value=1e4),
    st.floats(min_value=1.6e9, max_value=1.8e9),
    half_micros,
    st.integers(min_value=FIRST_SECOND - 2, max_value=LAST_SECOND + 2),
    st.sampled_from([FIRST_SECOND, LAST_SECOND, LAST_SECOND + 0.9999996, 5e-324, -0.0, 1e300]),
    json_values,
)

metadata = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={"actor": json_values, "step_id": json_values, "trace_id": text},
    ),
    json_values,
)

payloads = st.fixed_dictionaries(
    {"event_type": json_values},
    optional={
        "event_timestamp": timestamps,
        "timestamp": timestamps,
        "span_event_timestamp": timestamps,
        "name": json_values,
        "metadata": metadata,
        "data": json_values,
        "usage_info": json_values,
        "UUID": text,
    },
)

_RESERVED = {"event_type", "payload", LIFTED_MARKER}


def _nested(payload: dict[str, Any], present: dict[str, Any], extra: dict[str, Any]) -> Any:
    return {**{k: v for k, v in extra.items() if k not in _RESERVED}, **present, "payload": payload}


# Top-level keys: sometimes some envelope keys already (never event_type, which
# would make the event flat), sometimes atlas-sdk's own, sometimes anything.
nested_events = st.builds(
    _nested,
    payloads,
    st.dictionaries(st.sampled_from([k for k in LIFTED_KEYS if k != "event_type"]), json_values),
    st.dictionaries(
        st.one_of(st.sampled_from(["parent_id", "function_ancestry", "id", "created_at"]), keys),
        json_values,
        max_size=3,
    ),
)
