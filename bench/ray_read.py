"""The Ray Data cases: read_sessions with 1, 2 and 4 read tasks, and export_parquet beside them.

Each pass runs in its own process (as every case): it starts a local Ray
cluster (``ray.init(num_cpus=max(2, tasks))``, so no read task waits for a
CPU Ray thinks is busy), warms the workers up with a read of no session
(the first task of a worker imports arc-atlas and pyarrow), then times
``read_sessions(...)`` (the snapshot and the listing of the ids in the
driver) through the last Arrow batch reaching the driver by
``ds.iter_batches``. Every session, all review statuses, kind ``sessions``
(one row per session, as the JSONL export writes one line per session).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time

from bench.cases import Dataset, Measurement

__all__ = ["export_parquet", "read"]


def read(dataset: Dataset, tasks: int) -> Measurement:
    """``read_sessions(kind="sessions", parallelism=tasks)``, every batch to the driver."""
    import pyarrow as pa
    import ray

    from trainers.ray_data import read_sessions

    ray.init(
        num_cpus=max(2, tasks), include_dashboard=False, log_to_driver=False,
        logging_level=logging.ERROR,
    )  # fmt: skip
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        every = {"parallelism": tasks, "include_all_review_statuses": True}
        warm = read_sessions(dataset.url, created_before="1971-01-01", **every)  # type: ignore[arg-type]
        assert warm.count() == 0
        started = time.perf_counter()
        rows = size = 0
        dataset_read = read_sessions(dataset.url, **every)  # type: ignore[arg-type]
        for batch in dataset_read.iter_batches(batch_size=None, batch_format="pyarrow"):
            assert isinstance(batch, pa.Table)
            rows += len(batch)
            size += batch.nbytes
        return Measurement(time.perf_counter() - started, rows, size)
    finally:
        ray.shutdown()


def export_parquet(dataset: Dataset) -> Measurement:
    """The single-process ``export_parquet(kind="sessions")`` of the same rows."""
    from trainers.exports import export_parquet as export

    with tempfile.TemporaryDirectory() as folder:
        summary = export(os.path.join(folder, "sessions.parquet"), dataset.url, kind="sessions",
                         include_all_review_statuses=True)  # fmt: skip
        return Measurement(summary.seconds, summary.sessions, summary.bytes_written)
