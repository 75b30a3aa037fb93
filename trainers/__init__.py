"""Training-side helpers that consume arc-atlas traces (``trainers.runtime_dataset``)."""

__all__: list[str] = []
