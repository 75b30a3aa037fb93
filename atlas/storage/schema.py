"""Facts about the schema that Python builds SQL from: the tables, and the reward-score expression.

Each is written once here. The migrations (SQL files, applied history) carry
their own copies; ``tests/storage/test_schema_facts.py`` checks that what
these build is what the database has (the tables, and the expression of
``sessions_reward_score_idx``, which the planner uses only for a query that
spells the expression the same way).
"""

from __future__ import annotations

__all__ = ["SESSION_TABLES", "TABLES", "reward_number", "reward_score"]

# The session and its children, each keyed by session_id (002), parent first.
SESSION_TABLES: tuple[str, ...] = (
    "sessions",
    "plans",
    "step_results",
    "step_attempts",
    "guidance_notes",
    "trajectory_events",
)
# All eight tables of 002.
TABLES: tuple[str, ...] = (*SESSION_TABLES, "discovery_runs", "learning_registry")


def reward_score(alias: str | None = None) -> str:
    """SQL for a session's reward score, as ``sessions_reward_score_idx`` indexes it.

    ``alias`` qualifies the column (``s`` gives ``(s.reward_stats ->> 'score')::float``).
    """
    column = f"{alias}.reward_stats" if alias else "reward_stats"
    return f"({column} ->> 'score')::float"


def reward_number(alias: str, key: str = "score") -> str:
    """SQL for ``reward_stats[key]`` as a float when it is a JSON number, else NULL.

    For ``score`` the cast is :func:`reward_score`'s, the indexed expression.
    """
    column = f"{alias}.reward_stats"
    value = reward_score(alias) if key == "score" else f"({column} ->> '{key}')::float"
    return f"CASE WHEN jsonb_typeof({column} -> '{key}') = 'number' THEN {value} END"
