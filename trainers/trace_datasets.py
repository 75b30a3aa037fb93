"""Datasets over traces, ready for trainers: the targets of the Hydra data configs.

``configs/data/runtime_traces.yaml`` instantiates :class:`RuntimeTracesDataset`
(a JSONL export) and ``configs/data/runtime_postgres.yaml``
:class:`RuntimePostgresDataset` (the database, with the filters of
:func:`~atlas.training_data.get_training_sessions`)::

    with hydra.initialize_config_dir(config_dir=".../configs", version_base="1.3"):
        cfg = hydra.compose(config_name="data/runtime_traces", overrides=["data.path=t.jsonl"])
    dataset = hydra.utils.instantiate(cfg.data)
    for record in dataset:          # RL records, streamed from the file
        ...

Both are lazy and re-iterable: each pass streams the file again or pages
through the database again (one batch in memory), so they suit multi-epoch
loops. Iterating yields the kind chosen by ``records`` (``rl`` records, one
per step; ``flat`` records, one per step; or the ``sessions`` themselves);
every kind is also at hand by method, with GRPO groups, preference pairs, a
Hugging Face dataset and a Parquet file. Neither defines ``len()``: counting
records means reading every step; :meth:`RuntimePostgresDataset.count_sessions`
counts sessions with one query.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atlas.config.loader import load_config
from atlas.runtime.traces import AtlasSessionTrace
from atlas.storage import mask_url
from atlas.training_data import TrainingQuery, count_training_sessions, paginate_sessions_sync
from trainers.columns import DEFAULT_ROW_GROUP_SIZE
from trainers.preferences import (
    GroupBy,
    GrpoGroup,
    PreferencePair,
    iter_grpo_groups,
    iter_preference_pairs,
)
from trainers.runtime_dataset import (
    LoadReport,
    OnError,
    TraceFileError,
    iter_flat_records,
    iter_rl_records,
    iter_runtime_traces,
)

if TYPE_CHECKING:
    import datasets

__all__ = ["RECORD_KINDS", "RuntimePostgresDataset", "RuntimeTracesDataset", "TraceDataset"]

RECORD_KINDS = ("rl", "flat", "sessions")


class TraceDataset(ABC):
    """What both datasets offer; subclasses say where the sessions come from."""

    def __init__(self, records: str = "rl"):
        if records not in RECORD_KINDS:
            raise ValueError(f"records must be one of {', '.join(RECORD_KINDS)}, not {records!r}.")
        self.records = records

    @abstractmethod
    def sessions(self) -> Iterator[AtlasSessionTrace]:
        """Every session, lazily, in the source's order."""

    def __iter__(self) -> Iterator[Any]:
        """The records chosen by ``records``: RL or flat record dicts, or the sessions."""
        if self.records == "sessions":
            return self.sessions()
        if self.records == "flat":
            return self.flat_records()
        return self.rl_records()

    def rl_records(self) -> Iterator[dict[str, Any]]:
        """RL records, one per step (:func:`trainers.runtime_dataset.iter_rl_records`)."""
        return iter_rl_records(self.sessions())

    def flat_records(self) -> Iterator[dict[str, Any]]:
        """Flat records, one per step (:func:`trainers.runtime_dataset.iter_flat_records`)."""
        return iter_flat_records(self.sessions())

    def grpo_groups(self, *, by: GroupBy = "task", min_group_size: int = 2) -> Iterator[GrpoGroup]:
        """GRPO groups of these sessions (:func:`trainers.preferences.iter_grpo_groups`)."""
        return iter_grpo_groups(self.sessions(), by=by, min_group_size=min_group_size)

    def preference_pairs(
        self, *, min_margin: float = 0.1, by: GroupBy = "task"
    ) -> Iterator[PreferencePair]:
        """DPO pairs of these sessions (:func:`trainers.preferences.iter_preference_pairs`)."""
        return iter_preference_pairs(self.sessions(), min_margin=min_margin, by=by)

    def to_hf_dataset(
        self,
        kind: str | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        keep_in_memory: bool = False,
        split: str = "train",
    ) -> datasets.Dataset:
        """A Hugging Face dataset of ``kind`` rows (default: ``records``); see
        :func:`trainers.hf.to_hf_dataset` for the options."""
        from trainers.hf import to_hf_dataset

        return to_hf_dataset(
            self.sessions(),
            kind or self.records,
            cache_dir=cache_dir,
            keep_in_memory=keep_in_memory,
            split=split,
        )

    def write_parquet(
        self,
        path: str | os.PathLike[str],
        kind: str | None = None,
        *,
        row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
        compression: str = "zstd",
    ) -> int:
        """Write ``kind`` rows (default: ``records``) to Parquet; see
        :func:`trainers.parquet.write_parquet` for the options."""
        from trainers.parquet import write_parquet

        return write_parquet(
            self.sessions(),
            path,
            kind=kind or self.records,
            row_group_size=row_group_size,
            compression=compression,
        )


class RuntimeTracesDataset(TraceDataset):
    """Sessions streamed from a JSONL export (plain or ``.gz``/``.xz``/``.zst``).

    Raises :class:`~trainers.runtime_dataset.TraceFileError` at once when the
    file does not exist. With ``on_error="skip"`` malformed lines are skipped;
    :attr:`last_report` counts them for the latest pass.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, on_error: OnError = "raise", records: str = "rl"
    ):
        super().__init__(records)
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}.")
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise TraceFileError(
                f"Trace file {self.path} does not exist: export one with "
                "`arc-atlas --output FILE` or point path at it."
            )
        self.on_error: OnError = on_error
        self.last_report = LoadReport()

    def sessions(self) -> Iterator[AtlasSessionTrace]:
        """Every session in the file, read as a stream."""
        self.last_report = LoadReport()
        return iter_runtime_traces(self.path, on_error=self.on_error, report=self.last_report)

    def __repr__(self) -> str:
        return f"RuntimeTracesDataset({str(self.path)!r}, records={self.records!r})"


def _plain(value: Any) -> Any:
    """Sequences from a config (an OmegaConf ListConfig, a tuple) as plain lists."""
    if value is None or isinstance(value, (str, bytes, int, float)):
        return value
    return list(value) if isinstance(value, Iterable) else value


class RuntimePostgresDataset(TraceDataset):
    """Sessions paged from PostgreSQL with the filters of ``get_training_sessions``.

    ``database_url`` None means the configured database (``ATLAS_DATABASE_URL``,
    the ``config`` file's storage block) or else the embedded one. The filters
    are checked here, so a bad value fails at instantiation with
    :class:`~atlas.errors.InvalidFilter`; nothing connects until iteration.
    Each pass reads ``batch_size`` sessions per query, newest first.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        records: str = "rl",
        config: str | os.PathLike[str] | None = None,
        batch_size: int = 100,
        min_reward: float | None = None,
        max_reward: float | None = None,
        learning_key: str | Sequence[str] | None = None,
        status_filters: str | Sequence[str] | None = None,
        review_status_filters: str | Sequence[str] | None = None,
        include_all_review_statuses: bool = False,
        created_after: Any = None,
        created_before: Any = None,
        session_ids: int | Sequence[int] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        include_trajectory_events: bool = True,
        include_learning_data: bool = True,
        trajectory_event_limit: int | None = None,
    ):
        super().__init__(records)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a whole number >= 1, not {batch_size!r}.")
        self.database_url = database_url
        self.config = load_config(config) if config is not None else None
        self.batch_size = batch_size
        self.filters: dict[str, Any] = {
            "min_reward": min_reward,
            "max_reward": max_reward,
            "learning_key": _plain(learning_key),
            "status_filters": _plain(status_filters),
            "review_status_filters": _plain(review_status_filters),
            "include_all_review_statuses": include_all_review_statuses,
            "created_after": created_after,
            "created_before": created_before,
            "session_ids": _plain(session_ids),
            "limit": limit,
            "offset": offset,
            "include_trajectory_events": include_trajectory_events,
            "include_learning_data": include_learning_data,
            "trajectory_event_limit": trajectory_event_limit,
        }
        TrainingQuery.build(
            config=self.config, **self.filters
        )  # raises InvalidFilter now rather than mid-training

    def sessions(self) -> Iterator[AtlasSessionTrace]:
        """Every matching session, one page in memory at a time."""
        pages = paginate_sessions_sync(
            self.database_url, batch_size=self.batch_size, config=self.config, **self.filters
        )
        return (trace for page in pages for trace in page)

    def count_sessions(self) -> int:
        """How many sessions a pass yields (one ``count(*)`` query, limit and offset applied)."""
        ignored = ("limit", "offset", "include_trajectory_events", "include_learning_data",
                   "trajectory_event_limit")  # fmt: skip
        filters = {k: v for k, v in self.filters.items() if k not in ignored}
        total = count_training_sessions(self.database_url, config=self.config, **filters)
        remaining = max(total - (self.filters["offset"] or 0), 0)
        limit = self.filters["limit"]
        return remaining if limit is None else min(remaining, limit)

    def __repr__(self) -> str:
        where = mask_url(self.database_url) if self.database_url else "configured database"
        return f"RuntimePostgresDataset({where!r}, records={self.records!r})"
