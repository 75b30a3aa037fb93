"""Trainer-ready records as Parquet: streamed in row groups, one fixed schema per kind.

The schema is :data:`trainers.columns.COLUMNS` in Arrow types (JSON text
columns are ``string``; see :mod:`trainers.columns`), and it is the same for
every file of a kind, however the values vary. The file's schema metadata
names the kind and its JSON text columns (``arc-atlas.kind``,
``arc-atlas.json_columns``), so a reader can decode them without this package.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from atlas.runtime.traces import AtlasSessionTrace
from atlas.training_data.output import OutputError, SafeOutput, compression_for
from trainers.columns import (
    COLUMNS,
    DEFAULT_ROW_GROUP_SIZE,
    JSON_COLUMNS,
    check_kind,
    iter_row_groups,
    iter_rows,
)

__all__ = ["DEFAULT_ROW_GROUP_SIZE", "ParquetOutput", "arrow_schema", "write_parquet"]

_ARROW_TYPES: Mapping[str, pa.DataType] = {
    "text": pa.string(),
    "json": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "text_list": pa.list_(pa.string()),
}


def arrow_schema(kind: str = "rl") -> pa.Schema:
    """The Arrow schema of ``kind`` (``rl``, ``flat``, ``sessions``, ``grpo``, ``dpo``)."""
    columns = COLUMNS[check_kind(kind)]
    return pa.schema(
        [pa.field(name, _ARROW_TYPES[column_type]) for name, column_type in columns],
        metadata={
            "arc-atlas.kind": kind,
            "arc-atlas.json_columns": ",".join(JSON_COLUMNS[kind]),
        },
    )


class ParquetOutput:
    """A Parquet file being written: rows in, row groups out, in place only when committed.

    Data goes to a temporary file beside ``path`` (see
    :class:`~atlas.training_data.output.SafeOutput`); :meth:`commit` writes
    the footer and renames it, :meth:`abort` throws it away. Raises
    :class:`~atlas.training_data.output.OutputError` at once when ``path``
    cannot be written, is ``-`` (stdout) or ends in ``.gz``/``.xz``/``.zst``
    (Parquet compresses inside the file, see ``compression``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        kind: str = "rl",
        row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
        compression: str = "zstd",
    ):
        if isinstance(row_group_size, bool) or not isinstance(row_group_size, int):
            raise ValueError(f"row_group_size must be a whole number, not {row_group_size!r}.")
        if row_group_size < 1:
            raise ValueError(f"row_group_size must be at least 1, not {row_group_size}.")
        self.kind = check_kind(kind)
        self.schema = arrow_schema(kind)
        self.row_group_size = row_group_size
        self.rows_written = 0
        self.bytes_written = 0  # the file's size, once committed
        target = os.fspath(path)
        if target == "-":
            raise OutputError("Parquet cannot be written to stdout: give a file name.")
        if compression_for(target) is not None:
            raise OutputError(
                f"Output {target} asks for file compression, but Parquet compresses inside the "
                f"file ({compression}): name it .parquet."
            )
        self._sink = SafeOutput(target)
        try:
            # ParquetWriter leaves a file object it did not open to its owner:
            # the sink flushes, syncs and renames it after the footer is written.
            self._writer = pq.ParquetWriter(self._sink.stream, self.schema, compression=compression)
        except BaseException:
            self._sink.abort()
            raise

    def write_rows(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Write encoded rows (see :func:`trainers.columns.iter_rows`); returns how many."""
        count = 0
        for chunk in iter_row_groups(rows, self.row_group_size):
            table = pa.Table.from_pylist(chunk, schema=self.schema)
            self._writer.write_table(table, row_group_size=self.row_group_size)
            count += len(chunk)
        self.rows_written += count
        return count

    def commit(self) -> None:
        """Write the footer and move the file into place."""
        self._writer.close()
        self.bytes_written = self._sink.stream.tell()
        self._sink.commit()

    def abort(self) -> None:
        """Throw the partial file away (safe to call more than once)."""
        with contextlib.suppress(Exception):  # discarded anyway; the original error matters
            self._writer.close()
        self._sink.abort()

    def __enter__(self) -> ParquetOutput:
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def write_parquet(
    records: Iterable[AtlasSessionTrace] | Iterable[Mapping[str, Any]],
    path: str | os.PathLike[str],
    *,
    kind: str = "rl",
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    compression: str = "zstd",
) -> int:
    """Write traces (converted to ``kind`` records) or ready records to a Parquet file.

    Reads ``records`` lazily and writes one row group per ``row_group_size``
    rows, so memory holds one row group. The file appears under ``path`` only
    when complete (see :class:`ParquetOutput`, which also lists the errors);
    no input gives a valid file with no rows. Returns the number of rows.
    Raises :class:`~trainers.columns.RecordSchemaError` for a record with
    fields the kind has no column for.
    """
    with ParquetOutput(
        path, kind=kind, row_group_size=row_group_size, compression=compression
    ) as output:
        return output.write_rows(iter_rows(records, kind))
