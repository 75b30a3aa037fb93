"""Training data straight from PostgreSQL: filtered, paginated, as trace dataclasses.

>>> from atlas.training_data import get_training_sessions
>>> sessions = get_training_sessions(db_url="postgresql://...", min_reward=0.8, limit=1000)
"""

from atlas.training_data.api import (
    TrainingQuery,
    count_training_sessions,
    count_training_sessions_async,
    get_session_by_id,
    get_session_by_id_async,
    get_training_sessions,
    get_training_sessions_async,
    paginate_sessions,
    paginate_sessions_sync,
)
from atlas.training_data.converters import (
    convert_session_dict_to_trace,
    convert_step_dict_to_trace,
)
from atlas.training_data.review_gate import ReviewGate, resolve_review_gate

__all__ = [
    "ReviewGate",
    "TrainingQuery",
    "convert_session_dict_to_trace",
    "convert_step_dict_to_trace",
    "count_training_sessions",
    "count_training_sessions_async",
    "get_session_by_id",
    "get_session_by_id_async",
    "get_training_sessions",
    "get_training_sessions_async",
    "paginate_sessions",
    "paginate_sessions_sync",
    "resolve_review_gate",
]
