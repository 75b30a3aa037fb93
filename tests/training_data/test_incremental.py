"""Incremental exports: the snapshot watermark, under concurrent writes and reviews."""

from __future__ import annotations

from pathlib import Path

import orjson
import psycopg
import pytest
from busy_database import writers_and_reviewers

from atlas.errors import ConfigError, InvalidFilter, ReviewGateWarning
from atlas.storage import seed_sessions
from atlas.training_data import get_training_sessions, iter_new_sessions, review_sessions
from atlas.training_data.incremental import IdRanges


def _ids(url: str, state: Path, **filters: object) -> list[int]:
    return [t.session_id for t in iter_new_sessions(url, state=state, **filters)]  # type: ignore[arg-type,misc]


def test_each_run_takes_what_became_eligible_and_nothing_twice(db_url: str, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 6, seed=1)
        conn.execute("UPDATE sessions SET review_status = 'pending'")
        conn.execute("UPDATE sessions SET review_status = 'approved' WHERE id <= 2")
        assert sorted(_ids(db_url, state)) == [1, 2]
        assert _ids(db_url, state) == []  # nothing changed
        # Approved days later: created before the last run, eligible only now.
        review_sessions(conn, "approved", session_ids=[4], reviewer="r")
        seed_sessions(conn, 1, seed=2)
        conn.execute("UPDATE sessions SET review_status = 'pending' WHERE id = 7")  # not eligible
        assert _ids(db_url, state) == [4]
        # A change to an exported session does not export it again.
        conn.execute("UPDATE sessions SET metadata = metadata || '{\"x\": 1}' WHERE id = 1")
        review_sessions(conn, "approved", session_ids=[7], reviewer="r")
        assert _ids(db_url, state) == [7]
    saved = orjson.loads(state.read_bytes())
    assert saved["exported"] == [[1, 2], [4, 4], [7, 7]] and saved["runs"] == 4


def test_an_interrupted_run_changes_no_state(db_url: str, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 5, seed=3)
        conn.execute("UPDATE sessions SET review_status = 'approved'")
    first = _ids(db_url, state)
    before = state.read_bytes()
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 3, seed=4)
        conn.execute("UPDATE sessions SET review_status = 'approved' WHERE id > 5")
    stream = iter_new_sessions(db_url, state=state)
    next(stream)
    stream.close()  # stopped after one session
    assert state.read_bytes() == before
    assert sorted(_ids(db_url, state)) == [6, 7, 8] and len(first) == 5


def test_a_later_run_with_only_gated_news_is_quiet_but_a_first_run_explains(
    db_url: str, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 2, seed=6)
        conn.execute("UPDATE sessions SET review_status = 'quarantined'")
        with pytest.warns(ReviewGateWarning, match="2 quarantined"):
            assert _ids(db_url, state) == []
        seed_sessions(conn, 2, seed=7)
        conn.execute("UPDATE sessions SET review_status = 'quarantined' WHERE id > 2")
        # Nothing new is eligible: the usual answer for a nightly run, so no warning.
        assert _ids(db_url, state) == []
        review_sessions(conn, "approved", session_ids=[3], reviewer="r")
        assert _ids(db_url, state) == [3]


def test_five_runs_under_concurrent_writers_and_reviewers_equal_one_full_export(
    db_url: str, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 10, seed=50)
    runs: list[list[int]] = []
    with writers_and_reviewers(db_url, seed=100, approve=0.7):
        for _ in range(4):
            runs.append(_ids(db_url, state))
    runs.append(_ids(db_url, state))
    union = [i for run in runs for i in run]
    full = [t.session_id for t in get_training_sessions(db_url)]
    assert len(union) == len(set(union)), "a session was exported twice"
    assert sorted(union) == sorted(full)
    assert sum(map(len, runs[1:])) > 0, "the later runs found the sessions approved meanwhile"


def test_a_state_is_refused_for_other_filters_databases_or_windows(
    db_url: str, url_for: object, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 2, seed=5)
    _ids(db_url, state, min_reward=0.5)
    with pytest.raises(ConfigError, match="other filters"):
        _ids(db_url, state, min_reward=0.6)
    with pytest.raises(InvalidFilter) as exc:
        _ids(db_url, tmp_path / "other.json", limit=3)
    assert exc.value.parameter == "limit"
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot be read"):
        _ids(db_url, tmp_path / "bad.json")


def test_id_ranges_merge_and_answer_membership() -> None:
    ranges = IdRanges()
    ranges.update([5, 1, 2, 3, 9, 10, 7])
    assert ranges.to_json() == [[1, 3], [5, 5], [7, 7], [9, 10]]
    ranges.update([4, 6, 8])
    assert ranges.to_json() == [[1, 10]] and len(ranges) == 10
    assert 10 in ranges and 11 not in ranges and 0 not in ranges
    assert IdRanges(ranges.to_json()).to_json() == [[1, 10]]
