"""canonical_reward's fast path never disagrees with the dataclasses."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from atlas.runtime.traces import AtlasRewardBreakdown, canonical_reward

_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False), st.text(max_size=3)
)
_sample = st.dictionaries(st.sampled_from(["score", "rationale", "temperature"]), _scalar)
_judge = st.dictionaries(
    st.sampled_from(["identifier", "name", "score", "rationale", "principles", "samples", "x"]),
    st.one_of(_scalar, st.lists(_sample, max_size=2), st.lists(_scalar, max_size=2)),
)
_reward = st.one_of(
    _scalar,
    st.dictionaries(
        st.sampled_from(["score", "judges", "rationale", "uncertainty"]),
        st.one_of(_scalar, st.lists(st.one_of(_judge, _scalar), max_size=3)),
    ),
)


@settings(max_examples=600, deadline=None)
@given(_reward)
def test_canonical_reward_matches_the_dataclasses(value):
    expected = AtlasRewardBreakdown.from_dict(
        value if isinstance(value, (dict, int, float)) and not isinstance(value, bool) else None
    ).to_dict()
    assert canonical_reward(value) == expected


def test_canonical_reward_returns_canonical_input_itself():
    reward = {"score": 0.9, "judges": [{"identifier": "process", "score": 0.9, "rationale": "ok"}]}
    assert canonical_reward(reward) is reward


def test_a_reward_as_atlas_sdk_stores_it_is_returned_itself():
    sample = {"score": 0.4, "rationale": "s", "principles": [], "uncertainty": None}
    judge = {"identifier": "p", "score": 0.4, "rationale": "r", "principles": [],
             "samples": [sample], "escalated": False, "escalation_reason": None}  # fmt: skip
    reward = {"score": 0.4, "rationale": None, "judges": [judge], "raw": None}
    assert canonical_reward(reward) is reward
