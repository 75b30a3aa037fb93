"""Hugging Face ``datasets.Dataset`` from traces or records, built from a generator.

``Dataset.from_generator`` writes rows to an Arrow file in ``cache_dir`` as
they come and then memory-maps it, so the data is never held in memory twice
(pass ``keep_in_memory=True`` for small data you want in RAM instead). The
features are the fixed schema of :mod:`trainers.columns` (free-form fields
as JSON text, listed in :data:`~trainers.columns.JSON_COLUMNS`), so rows whose
values mix strings and objects convert, and every dataset of a kind has the
same features. Nothing is downloaded: the dataset is built locally.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from atlas.runtime.traces import AtlasSessionTrace
from trainers.columns import iter_rows
from trainers.parquet import arrow_schema

if TYPE_CHECKING:
    import datasets

__all__ = ["hf_features", "to_hf_dataset"]


def hf_features(kind: str = "rl") -> datasets.Features:
    """The ``datasets.Features`` of ``kind``: :func:`trainers.parquet.arrow_schema` in HF terms."""
    import datasets

    return datasets.Features.from_arrow_schema(arrow_schema(kind))


def to_hf_dataset(
    sessions_or_records: Iterable[AtlasSessionTrace] | Iterable[Mapping[str, Any]],
    kind: str = "rl",
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    keep_in_memory: bool = False,
    split: str = "train",
) -> datasets.Dataset:
    """A ``datasets.Dataset`` of ``kind`` rows (``rl``, ``flat``, ``sessions``, ``grpo``, ``dpo``).

    ``sessions_or_records`` may be traces (converted to ``kind`` records, see
    :func:`trainers.columns.records_from_sessions`) or records already in that
    shape, from any iterable, read once and lazily. The Arrow file goes to
    ``cache_dir`` (default: the ``datasets`` cache, ``~/.cache/huggingface``);
    each call builds a new one, never reusing an older cache entry. Decode the
    JSON text columns with ``json.loads`` or :func:`trainers.columns.decode_row`.
    """
    import datasets

    features = hf_features(kind)
    rows = iter_rows(sessions_or_records, kind)

    def generate() -> Iterator[dict[str, Any]]:
        yield from rows

    # A fresh fingerprint: hashing the generator would be slow (or fail, for a
    # stream) and could make datasets reuse a cache entry built from other data.
    dataset = datasets.Dataset.from_generator(
        generate,
        features=features,
        cache_dir=os.fspath(cache_dir) if cache_dir is not None else None,
        keep_in_memory=keep_in_memory,
        split=datasets.NamedSplit(split),
        fingerprint=uuid.uuid4().hex,
    )
    assert isinstance(dataset, datasets.Dataset)
    return dataset
