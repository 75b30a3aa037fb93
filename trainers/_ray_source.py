"""The Ray Data datasource behind :func:`trainers.ray_data.read_sessions` (imports Ray).

Kept apart so that :mod:`trainers.ray_data` imports without Ray and can
say which extra brings it. Ray calls :meth:`SessionsDatasource.get_read_tasks`
in the driver, maybe several times (to plan, to estimate) and again each
time the dataset is executed; it does no I/O. Each :class:`ReadTask` is
pickled to a worker with its :class:`~trainers.ray_data.ShardRead` only.
"""

from __future__ import annotations

import functools

from ray.data.block import BlockMetadata
from ray.data.context import DataContext
from ray.data.datasource import Datasource, ReadTask

from trainers.parquet import arrow_schema
from trainers.ray_data import ShardRead, SnapshotHolder, read_shard

__all__ = ["SessionsDatasource"]


class SessionsDatasource(Datasource):
    """Sessions of one snapshot, one read task per shard (see :mod:`trainers.ray_data`)."""

    def __init__(self, holder: SnapshotHolder, reads: list[ShardRead]):
        super().__init__()  # type: ignore[no-untyped-call]
        # Owning the holder ties the snapshot's lifetime to this datasource,
        # which every dataset made from the read refers to.
        self._holder = holder
        self._reads = reads

    def get_name(self) -> str:
        """The read tasks' name in Ray's logs and dashboard (never the URL)."""
        return "AtlasSessions"

    def estimate_inmemory_data_size(self) -> int | None:
        """Unknown until read: sessions vary from kilobytes to megabytes."""
        return None

    def get_read_tasks(
        self,
        parallelism: int,
        per_task_row_limit: int | None = None,
        data_context: DataContext | None = None,
    ) -> list[ReadTask]:
        """One task per shard, whatever ``parallelism`` Ray asks for (read_sessions chose)."""
        schema = arrow_schema(self._reads[0].kind)
        return [
            ReadTask(
                functools.partial(read_shard, read),
                # Rows are unknown until read: a session has any number of steps.
                BlockMetadata(num_rows=None, size_bytes=None, input_files=None, exec_stats=None),
                schema=schema,
                per_task_row_limit=per_task_row_limit,
            )
            for read in self._reads
        ]
