"""Database URLs made safe to show: passwords never reach a message or a log."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["describe_target", "mask_url"]

_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``.

    Handles URLs (``postgresql://user:secret@host/db``, ``?password=secret``)
    and libpq keyword strings (``host=x password=secret``).
    """
    if "://" not in url:
        return _KEYWORD_PASSWORD.sub(r"\1***", url)
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return "<unparseable database URL>"
    scheme, _, rest = url.partition("://")
    if "@" in netloc:
        userinfo, _, hostinfo = netloc.rpartition("@")
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            rest = f"{user}:***@{hostinfo}{rest[len(netloc) :]}"
    elif "@" in rest:
        # libpq takes everything up to the "@" as user:password, so a password
        # may hold an unencoded "#" or "?" that urlsplit reads as the start of
        # the fragment or query: mask the raw text instead.
        rest = _mask_raw_userinfo(rest)
    # Rebuilt by hand: urlunsplit would turn postgresql:///db into postgresql:/db.
    return _QUERY_PASSWORD.sub(r"\1***", f"{scheme}://{rest}")


def _mask_raw_userinfo(rest: str) -> str:
    userinfo, _, hostinfo = rest.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    if not colon or "/" in user:
        return rest  # no password, or the "@" is in the path or query
    return f"{user}:***@{hostinfo}"


def describe_target(url: str) -> str:
    """A short, password-free name for the server and database a URL points at."""
    return mask_url(url)
