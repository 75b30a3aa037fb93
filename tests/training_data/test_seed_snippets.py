"""The two atlas.training_data snippets of seed 000, as written (only the URL differs)."""

from __future__ import annotations

import asyncio
from typing import Any

from training_data_sql import ids_where

SCORE = "(reward_stats ->> 'score')::float"


def test_query_sessions_with_filters(seeded_url):
    db_url = seeded_url
    # --- seed 000, "Query sessions with filters" ---
    from atlas.training_data import get_training_sessions

    # Query sessions with filters
    sessions = get_training_sessions(
        db_url=db_url,
        min_reward=0.8,
        learning_key="security-review",
        status_filters=["succeeded"],
        limit=1000,
    )

    # Access session data
    for session in sessions:
        reward_score = session.session_reward["score"]
        trajectory = session.trajectory_events
        learning_data = session.learning_history
        # --- end of the snippet ---
        assert reward_score >= 0.8
        assert trajectory
        assert learning_data["entries"]

    expected = ids_where(
        seeded_url,
        f"{SCORE} >= 0.8 AND metadata ->> 'learning_key' = 'security-review' "
        "AND status = 'succeeded' AND review_status = 'approved'",
        tail="LIMIT 1000",
    )
    assert len(expected) >= 3
    assert [s.session_id for s in sessions] == expected


def test_pagination_for_large_datasets(seeded_url):
    db_url = seeded_url
    seen: list[Any] = []
    batch_sizes: list[int] = []

    def process_session(session: Any) -> None:
        seen.append(session)

    async def main() -> None:
        # --- seed 000, "Example: Pagination for Large Datasets" ---
        from atlas.training_data import paginate_sessions

        async for batch in paginate_sessions(
            db_url=db_url,
            batch_size=100,
            min_reward=0.7,
        ):
            for session in batch:
                process_session(session)
            # --- end of the snippet ---
            batch_sizes.append(len(batch))

    asyncio.run(main())
    expected = ids_where(seeded_url, f"{SCORE} >= 0.7 AND review_status = 'approved'")
    assert [s.session_id for s in seen] == expected
    assert len(expected) > 100, "several batches are needed to be meaningful"
    assert batch_sizes == [len(expected[i : i + 100]) for i in range(0, len(expected), 100)]
    assert all(s.session_reward["score"] >= 0.7 and s.trajectory_events for s in seen)
