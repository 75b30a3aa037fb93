"""The filter a page shows, read from its URL: validated by the library, written back as links.

A filter lives in the query string (``?review_status=pending&min_reward=0.8``)
so it can be bookmarked and shared. Parameter names are the API's filter
names; repeatable ones (``status``, ``review_status``, ``learning_key``,
``session_id``) may repeat or hold commas. :meth:`UIFilter.export_command`
writes the same selection as an ``arc-atlas export`` command line.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import ImmutableMultiDict

from atlas.config import parse_review_statuses
from atlas.errors import InvalidFilter
from atlas.training_data import SessionFilters

__all__ = ["FIELDS", "UIFilter"]

# URL parameter -> (the library's filter name, repeatable, the export flag).
FIELDS: dict[str, tuple[str, bool, str]] = {
    "task_contains": ("task_contains", False, "--task-contains"),
    "status": ("status_filters", True, "--status"),
    "review_status": ("review_status_filters", True, "--include-status"),
    "learning_key": ("learning_key", True, "--learning-key"),
    "min_reward": ("min_reward", False, "--min-reward"),
    "max_reward": ("max_reward", False, "--max-reward"),
    "created_after": ("created_after", False, "--created-after"),
    "created_before": ("created_before", False, "--created-before"),
    "session_id": ("session_ids", True, "--session-id"),
}


def _values(params: ImmutableMultiDict[str, str] | Mapping[str, Any], name: str) -> list[str]:
    raw = params.getlist(name) if isinstance(params, ImmutableMultiDict) else [params.get(name)]
    return [v for v in raw if isinstance(v, str) and v.strip()]


@dataclass(frozen=True)
class UIFilter:
    """The filter fields as given (text), and the validated selection they make.

    ``values`` maps each URL parameter in :data:`FIELDS` to its texts.
    ``filters`` is the :class:`SessionFilters`; ``review_statuses`` the
    review statuses named (None: any).
    """

    values: dict[str, list[str]] = field(default_factory=dict)
    filters: SessionFilters = field(default_factory=SessionFilters)
    review_statuses: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, params: ImmutableMultiDict[str, str]) -> UIFilter:
        """Read the filter fields; raises :class:`InvalidFilter` naming the field at fault."""
        values: dict[str, list[str]] = {}
        for name, (_, repeatable, _) in FIELDS.items():
            given = _values(params, name)
            if repeatable:
                given = [part.strip() for v in given for part in v.split(",") if part.strip()]
            else:
                given = [given[-1].strip()] if given else []
            if given:
                values[name] = given
        arguments: dict[str, Any] = {}
        for name, texts in values.items():
            target, repeatable, _ = FIELDS[name]
            if target == "review_status_filters":
                continue
            if target == "session_ids":
                arguments[target] = [_id(t) for t in texts]
            else:
                arguments[target] = texts if repeatable else texts[0]
        try:
            filters = SessionFilters.build(**arguments)
        except InvalidFilter as exc:
            raise _field_error(exc) from None
        statuses = None
        if "review_status" in values:
            try:
                statuses = parse_review_statuses(values["review_status"], "review_status")
            except InvalidFilter as exc:
                raise InvalidFilter(str(exc), parameter="review_status") from None
        return cls(values, filters, statuses)

    @property
    def empty(self) -> bool:
        return not self.values

    def items(self, **overrides: str | list[str] | None) -> list[tuple[str, str]]:
        """The fields as (name, value) pairs, with ``overrides`` replacing or dropping fields."""
        merged: dict[str, list[str]] = dict(self.values)
        for name, value in overrides.items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = [value] if isinstance(value, str) else list(value)
        return [(name, v) for name, texts in merged.items() for v in texts]

    def query(self, **overrides: str | list[str] | None) -> str:
        """The query string of this filter (with ``overrides``), ``?`` included; or ``""``."""
        pairs = self.items(**overrides)
        return "?" + urlencode(pairs) if pairs else ""

    def training_filters(self, *, review_gate: bool) -> dict[str, Any]:
        """The filter as keyword arguments of the library's query functions.

        ``review_gate=True`` applies the export's gate when no review status
        is named (approved only); False means any review status then.
        """
        f = self.filters
        out: dict[str, Any] = {
            "min_reward": f.min_reward,
            "max_reward": f.max_reward,
            "learning_key": list(f.learning_keys) if f.learning_keys else None,
            "status_filters": list(f.statuses) if f.statuses else None,
            "created_after": f.created_after,
            "created_before": f.created_before,
            "session_ids": list(f.session_ids) if f.session_ids else None,
            "task_contains": f.task_contains,
        }
        if self.review_statuses is not None:
            out["review_status_filters"] = list(self.review_statuses)
        elif not review_gate:
            out["include_all_review_statuses"] = True
        return {k: v for k, v in out.items() if v is not None}

    def flags(self) -> str:
        """This filter as the flags of ``arc-atlas export``, each value shell-quoted."""
        words = [w for name, texts in self.values.items() for t in texts
                 for w in (FIELDS[name][2], t)]  # fmt: skip
        return " ".join(shlex.quote(w) for w in words)

    def export_command(self, output: str = "sessions.jsonl.gz") -> str:
        """The ``arc-atlas export`` command line that writes this filter's sessions."""
        flags = self.flags()
        return f"arc-atlas export --output {shlex.quote(output)}" + (f" {flags}" if flags else "")


def _id(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidFilter(
            f"session_id must be a whole number, not {text[:40]!r}.", parameter="session_id"
        ) from None


# The library's parameter name -> the field a person typed it in.
_FIELD_OF = {target: name for name, (target, _, _) in FIELDS.items()}
_FIELD_OF["review_statuses"] = "review_status"


def _field_error(exc: InvalidFilter) -> InvalidFilter:
    """``exc`` naming the form field (``session_id``) instead of the parameter (``session_ids``)."""
    name = _FIELD_OF.get(exc.parameter or "", exc.parameter)
    text = str(exc)
    if exc.parameter and name != exc.parameter:
        text = text.replace(exc.parameter, name or exc.parameter)
    return InvalidFilter(text, parameter=name)
