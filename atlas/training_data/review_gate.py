"""Which review statuses count as training data: one resolution for every reader.

The Python API and the exporter both call :func:`resolve_review_gate`, so a
session is training data in one place exactly when it is in the other.
First match wins:

1. explicit statuses (``review_status_filters=``, ``--include-status``);
2. ``include_all=True`` (``--include-all-statuses``): every status;
3. ``ATLAS_REVIEW_DEFAULT_EXPORT_STATUSES`` (comma-separated; ``all`` or ``*``
   = every status);
4. ``ATLAS_REVIEW_REQUIRE_APPROVAL=0``: approved + pending;
5. the config's ``runtime_safety.review.default_export_statuses``;
6. the config's ``runtime_safety.review.require_approval: false``: approved + pending;
7. approved sessions only.

Statuses are accepted as atlas-sdk takes them: trimmed and case-insensitive
(``Approved`` is ``approved``). Quarantine exists to keep a session out of
training data, so turning approval off never brings quarantined sessions
back: only naming ``quarantined``, or asking for every status (``all``, ``*``,
``--include-all-statuses``), does.

When the gate hides every matching session, :func:`gate_hint` says how to
bring back the ones it hid, naming only ways that work for their statuses.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from atlas.config.models import REVIEW_STATUSES, AtlasConfig, parse_review_statuses

__all__ = [
    "WITHOUT_APPROVAL",
    "ReviewGate",
    "approval_switched_off",
    "gate_hint",
    "resolve_review_gate",
]

_FALSE = {"0", "false", "no", "off"}
# What "approval not required" lets through, as in atlas-sdk: never quarantined.
WITHOUT_APPROVAL: tuple[str, ...] = ("approved", "pending")
# Sources whose gate ATLAS_REVIEW_REQUIRE_APPROVAL=0 would replace (precedence 4).
_BELOW_REQUIRE_APPROVAL = (
    "runtime_safety.review.default_export_statuses",
    "runtime_safety.review.require_approval",
    "default",
)


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


def approval_switched_off(environ: Mapping[str, str]) -> bool:
    """True when ``ATLAS_REVIEW_REQUIRE_APPROVAL`` says no (``0``, ``false``, ``no``, ``off``)."""
    return environ.get("ATLAS_REVIEW_REQUIRE_APPROVAL", "").strip().lower() in _FALSE


def resolve_review_gate(
    review_status_filters: Iterable[str] | str | None = None,
    *,
    include_all: bool = False,
    config: AtlasConfig | None = None,
    environ: Mapping[str, str] | None = None,
) -> ReviewGate:
    """Resolve the review gate by the precedence in this module's docstring.

    Raises :class:`~atlas.errors.InvalidFilter` for a status that is not
    pending, approved, quarantined, ``all`` or ``*`` (in any case).
    """
    env = os.environ if environ is None else environ
    if review_status_filters is not None:
        return ReviewGate(
            parse_review_statuses(review_status_filters, "review_status_filters"), "explicit"
        )
    if include_all:
        return ReviewGate(None, "--include-all-statuses")
    listed = env.get("ATLAS_REVIEW_DEFAULT_EXPORT_STATUSES", "")
    if listed.strip():
        name = "ATLAS_REVIEW_DEFAULT_EXPORT_STATUSES"
        return ReviewGate(parse_review_statuses(listed, name), name)
    if approval_switched_off(env):
        return ReviewGate(WITHOUT_APPROVAL, "ATLAS_REVIEW_REQUIRE_APPROVAL=0")
    review = config.runtime_safety.review if config is not None else None
    if review is not None and "default_export_statuses" in review.model_fields_set:
        listed_in_config = review.default_export_statuses
        return ReviewGate(
            None if listed_in_config == "all" else tuple(listed_in_config),
            "runtime_safety.review.default_export_statuses",
        )
    if review is not None and not review.require_approval:
        return ReviewGate(WITHOUT_APPROVAL, "runtime_safety.review.require_approval")
    return ReviewGate(("approved",), "default")


def gate_hint(gate: ReviewGate, hidden: Mapping[str, int], *, cli: bool) -> str:
    """How many sessions ``gate`` hid, by review status, and how to bring them back.

    ``hidden`` counts the hidden sessions per review status (statuses outside
    :data:`~atlas.config.models.REVIEW_STATUSES`, written by other tools, may
    appear too). Phrased for the command line (``--include-status``) or for
    the Python API (``review_status_filters=``). Only ways that bring those
    very sessions back are named: pending ones can be approved, listed or let
    through with ``ATLAS_REVIEW_REQUIRE_APPROVAL=0``; quarantined ones only by
    naming ``quarantined`` or asking for every status.
    """
    allowed = list(gate.statuses or ())
    known = [s for s in REVIEW_STATUSES if hidden.get(s)]
    other = [s for s in hidden if s not in REVIEW_STATUSES and hidden[s]]
    if cli:
        listing = " ".join(f"--include-status {s}" for s in (*allowed, *known))
        everything = "--include-all-statuses"
    else:
        listing = f"review_status_filters={[*allowed, *known]!r}"
        everything = "include_all_review_statuses=True"
    ways: list[str] = []
    if "pending" in known:
        ways.append("approve the pending ones with `arc-atlas review approve ID...`")
    if known:
        ways.append(f"pass {listing}")
    ways.append(f"pass {everything}")
    if known == ["pending"] and not other and gate.source in _BELOW_REQUIRE_APPROVAL:
        # Precedence 4 beats these sources, and it lets pending (only) through.
        ways.append("set ATLAS_REVIEW_REQUIRE_APPROVAL=0 for local experiments")
    counted = ", ".join(f"{hidden[s]:,} {s}" for s in (*known, *other))
    phrase = ways[0] if len(ways) == 1 else f"{', '.join(ways[:-1])} or {ways[-1]}"
    return f"{counted}. To include them, {phrase}."
