"""arc-atlas: the data layer for agent orchestration sessions.

Persist every session to PostgreSQL (:mod:`atlas.storage`), query it as
training data (:mod:`atlas.training_data`), export it to JSONL (the
``arc-atlas`` CLI), and feed it to trainers (:mod:`trainers.runtime_dataset`).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("arc-atlas")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
