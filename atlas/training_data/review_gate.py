"""Which review statuses count as training data: one resolution for every reader.

The Python API and the exporter both call :func:`resolve_review_gate`, so a
session is training data in one place exactly when it is in the other.
First match wins:

1. explicit statuses (``review_status_filters=``, ``--include-status``);
2. ``include_all=True`` (``--include-all-statuses``): no gate;
3. ``ATLAS_REVIEW_DEFAULT_EXPORT_STATUSES`` (comma-separated);
4. ``ATLAS_REVIEW_REQUIRE_APPROVAL=0``: no gate (local experiments only);
5. the config's ``runtime_safety.review.default_export_statuses``;
6. the config's ``runtime_safety.review.require_approval: false``: no gate;
7. approved sessions only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from atlas.config.models import REVIEW_STATUSES, AtlasConfig
from atlas.errors import InvalidFilter

__all__ = ["ReviewGate", "resolve_review_gate"]

_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class ReviewGate:
    """The review statuses allowed through (``None`` = every status) and why."""

    statuses: tuple[str, ...] | None
    source: str

    @property
    def is_open(self) -> bool:
        """True when every review status passes."""
        return self.statuses is None

    def describe(self) -> str:
        """``approved`` / ``approved, pending`` / ``all`` — for messages and export notes."""
        return "all" if self.statuses is None else ", ".join(self.statuses)


def _validated(statuses: Iterable[str], where: str) -> tuple[str, ...]:
    cleaned = tuple(dict.fromkeys(s.strip() for s in statuses if s and s.strip()))
    unknown = [s for s in cleaned if s not in REVIEW_STATUSES]
    if unknown:
        raise InvalidFilter(
            f"{where}: unknown review status {unknown[0]!r}; use {', '.join(REVIEW_STATUSES)}."
        )
    if not cleaned:
        raise InvalidFilter(f"{where}: give at least one review status.")
    return cleaned


def resolve_review_gate(
    review_status_filters: Iterable[str] | str | None = None,
    *,
    include_all: bool = False,
    config: AtlasConfig | None = None,
    environ: Mapping[str, str] | None = None,
) -> ReviewGate:
    """Resolve the review gate by the precedence in this module's docstring.

    Raises :class:`InvalidFilter` for a status that is not pending, approved
    or quarantined.
    """
    env = os.environ if environ is None else environ
    if isinstance(review_status_filters, str):
        review_status_filters = [review_status_filters]
    if review_status_filters is not None:
        return ReviewGate(_validated(review_status_filters, "review_status_filters"), "explicit")
    if include_all:
        return ReviewGate(None, "--include-all-statuses")
    listed = env.get("ATLAS_REVIEW_DEFAULT_EXPORT_STATUSES")
    if listed:
        statuses = _validated(listed.split(","), "ATLAS_REVIEW_DEFAULT_EXPORT_STATUSES")
        return ReviewGate(statuses, "ATLAS_REVIEW_DEFAULT_EXPORT_STATUSES")
    if env.get("ATLAS_REVIEW_REQUIRE_APPROVAL", "").strip().lower() in _FALSE:
        return ReviewGate(None, "ATLAS_REVIEW_REQUIRE_APPROVAL=0")
    review = config.runtime_safety.review if config is not None else None
    if review is not None and "default_export_statuses" in review.model_fields_set:
        return ReviewGate(
            tuple(review.default_export_statuses),
            "runtime_safety.review.default_export_statuses",
        )
    if review is not None and not review.require_approval:
        return ReviewGate(None, "runtime_safety.review.require_approval")
    return ReviewGate(("approved",), "default")
