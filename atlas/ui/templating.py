"""Jinja templates of ``arc-atlas ui``: the environment, its filters and :func:`render`.

Autoescaping is on for every ``.html`` template (and for templates made from
strings): traces hold arbitrary model output, and each stored value must reach
the page as text, never as markup. Nothing in a template may use ``|safe`` on
stored data.
"""

from __future__ import annotations

import getpass
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from atlas.training_data import review_permission
from atlas.ui.security import csrf_token

__all__ = ["PageSettings", "format_json", "format_reward", "format_ts", "render", "templates"]

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
_DASH = "–"


def format_ts(value: datetime | str | None) -> str:
    """A timestamp as ``2026-11-30 12:34:56 UTC``; text (``infinity``) as it is, None as a dash.

    A naive datetime is taken to be UTC already (the database stores UTC).
    """
    if value is None:
        return _DASH
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_reward(value: float | None) -> str:
    """A reward with two decimals (``0.82``); None or a non-finite value as a dash."""
    if value is None or isinstance(value, bool):
        return _DASH
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _DASH
    return f"{number:.2f}" if math.isfinite(number) else _DASH


def format_json(value: Any) -> str:
    """Pretty JSON (two-space indent); what JSON cannot hold is written with ``str``.

    Returns a plain ``str``, so autoescaping still applies where it is shown.
    """
    option = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
    try:
        return orjson.dumps(value, default=str, option=option).decode()
    except TypeError:  # e.g. an integer beyond 64 bits: fall back to its text
        return str(value)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml"), default_for_string=True, default=True
        ),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ts"] = format_ts
    env.filters["reward"] = format_reward
    env.filters["json"] = format_json
    return env


templates = Jinja2Templates(env=_environment())
"""The UI's templates (``atlas/ui/templates``), with ``url_for`` and the filters above."""


@dataclass(frozen=True)
class PageSettings:
    """What a page may show about how the UI runs: no token, no password."""

    database: str
    """The database URL with its password masked."""
    host: str
    port: int
    token_required: bool


def reviewer_name(request: Request) -> str:
    """The reviewer recorded on a change: ``--reviewer``, else the OS user, as ``review`` does."""
    named: str | None = request.app.state.settings.reviewer
    if named:
        return named
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"


def review_block(request: Request, *, query: bool = True) -> str | None:
    """Why the connected role cannot change review statuses, or None when it can.

    Asked once per app (the role does not change while it runs) and kept on
    ``app.state``. ``query=False`` returns only a known answer: an error page
    must not touch a database that may be the error.
    """
    state = request.app.state
    if hasattr(state, "review_block"):
        known: str | None = state.review_block
        return known
    if not query:
        return None
    with state.db.connection() as conn:
        reason = review_permission(conn)
    state.review_block = reason
    return reason


def _page_settings(request: Request) -> PageSettings:
    settings = request.app.state.settings
    db = getattr(request.app.state, "db", None)
    return PageSettings(
        database=db.settings.display_url if db is not None else "",
        host=settings.host,
        port=settings.port,
        token_required=bool(settings.token),
    )


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    """Render template ``name`` with ``context`` plus what every page needs.

    Added: ``csrf_token`` (for forms), ``settings`` (a :class:`PageSettings`),
    ``reviewer`` (the resolved name) and ``review_block`` (see
    :func:`review_block`). A key in ``context`` wins over these.
    """
    return _render(request, name, context, status_code, query=True)


def _render(
    request: Request, name: str, context: dict[str, Any], status_code: int, *, query: bool
) -> Response:
    full: dict[str, Any] = {
        "csrf_token": csrf_token(request),
        "settings": _page_settings(request),
        "reviewer": reviewer_name(request),
        "review_block": review_block(request, query=query),
        **context,
    }
    return templates.TemplateResponse(request, name, full, status_code=status_code)


def render_error(request: Request, status_code: int, title: str, message: str) -> Response:
    """The error page (``error.html``); it never queries the database."""
    context = {"status_code": status_code, "title": title, "message": message}
    return _render(request, "error.html", context, status_code, query=False)
