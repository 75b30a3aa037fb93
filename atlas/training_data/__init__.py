"""Training data straight from PostgreSQL: filtered, paginated, as trace dataclasses.

>>> from atlas.training_data import get_training_sessions
>>> sessions = get_training_sessions(db_url="postgresql://...", min_reward=0.8, limit=1000)
"""

from atlas.training_data.api import (
    CountFilters,
    TrainingFilters,
    TrainingQuery,
    count_hidden_by_review_status,
    count_training_sessions,
    count_training_sessions_async,
    get_session_by_id,
    get_session_by_id_async,
    get_training_sessions,
    get_training_sessions_async,
    paginate_sessions,
    paginate_sessions_sync,
)
from atlas.training_data.browse import (
    PageCursor,
    SessionPage,
    SessionRow,
    browse_sessions,
    review_permission,
)
from atlas.training_data.converters import (
    convert_session_dict_to_trace,
    convert_step_dict_to_trace,
)
from atlas.training_data.export import ExportProgress, ExportSummary, export_jsonl
from atlas.training_data.filters import SessionFilters
from atlas.training_data.incremental import iter_new_sessions
from atlas.training_data.insights import HourStats, Insights, KeyStats, session_insights
from atlas.training_data.manifest import VerifyResult, verify_manifest
from atlas.training_data.output import check_compression_level
from atlas.training_data.redact import RedactionRule, Redactor
from atlas.training_data.review import (
    ReviewResult,
    ReviewRow,
    check_row_count,
    list_sessions_for_review,
    review_sessions,
)
from atlas.training_data.review_gate import ReviewGate, gate_hint, resolve_review_gate
from atlas.training_data.snapshot import exported_snapshot

__all__ = [
    "CountFilters",
    "ExportProgress",
    "ExportSummary",
    "HourStats",
    "Insights",
    "KeyStats",
    "PageCursor",
    "RedactionRule",
    "Redactor",
    "ReviewGate",
    "ReviewResult",
    "ReviewRow",
    "SessionFilters",
    "SessionPage",
    "SessionRow",
    "TrainingFilters",
    "TrainingQuery",
    "VerifyResult",
    "browse_sessions",
    "check_compression_level",
    "check_row_count",
    "convert_session_dict_to_trace",
    "convert_step_dict_to_trace",
    "count_hidden_by_review_status",
    "count_training_sessions",
    "count_training_sessions_async",
    "export_jsonl",
    "exported_snapshot",
    "gate_hint",
    "get_session_by_id",
    "get_session_by_id_async",
    "get_training_sessions",
    "get_training_sessions_async",
    "iter_new_sessions",
    "list_sessions_for_review",
    "paginate_sessions",
    "paginate_sessions_sync",
    "resolve_review_gate",
    "review_permission",
    "review_sessions",
    "session_insights",
    "verify_manifest",
]
