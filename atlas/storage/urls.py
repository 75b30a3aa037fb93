"""Database URLs made safe to show, and checked before use: passwords never reach a message.

One rule covers every form a database URL can take, well-formed or not:

* URL forms (``postgresql://``, ``mysql://``, ``postgresql:/``, no scheme at
  all): everything between ``user:`` and the ``@`` that ends the user part is
  the password. A raw ``@`` or ``/`` in a password makes that ``@`` ambiguous,
  so the last candidate wins: masking too much is safe, too little is not.
* ``password=`` in a query string (``?password=...``) or in libpq's
  ``key=value`` form (``host=h password=...``) up to the next ``&`` or space
  (a quoted value as a whole).

:func:`mask_url` applies it; :func:`redact` also removes the password from a
driver's message about the URL; :func:`url_problem` says what is wrong with a
URL that libpq would refuse or misread, without quoting the password.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict

__all__ = ["MASK", "connection_url", "invalid_url_message", "mask_url", "redact", "url_problem"]

MASK = "***"

_EXAMPLE = "postgresql://user:password@host:port/database"
_SCHEMES = ("postgresql", "postgres")
# A scheme only counts when slashes follow it: "user:pw@host" has none.
_SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9+.\-]*):(/*)")
_KEYWORD_FORM = re.compile(r"\s*[A-Za-z_]+\s*=")
_QUERY_PASSWORD = re.compile(r"[?&]password=([^&]*)", re.IGNORECASE)
# libpq's key=value form: a value is quoted ('a b', with \' escapes; an
# unterminated quote runs to the end) or runs to the next space.
_KEYWORD_PASSWORD = re.compile(
    r"(?<![?&\w])password\s*=\s*('(?:[^'\\]|\\.)*(?:'|\\?$)|\S*)", re.IGNORECASE
)
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Pieces of a password shorter than this are not hunted in free text: they
# would mangle ordinary words and give little away.
_MIN_FRAGMENT = 4
_FRAGMENT_SPLIT = re.compile(r"[/@:?#&=\s']+")


def mask_url(url: str) -> str:
    """Return ``url`` with every password replaced by ``***``; never raises.

    Works on any string a user may give as a database URL: well-formed or
    malformed URLs, multi-host URLs, ``?password=`` in the query, libpq's
    ``key=value`` form, and strings that parse as none of these.
    """
    masked, last = [], 0
    for start, end in _password_spans(url):
        masked.append(url[last:start] + MASK)
        last = end
    masked.append(url[last:])
    return "".join(masked)


def connection_url(info: Any) -> str:
    """Where an open connection is, as a URL without a password (for messages).

    ``info`` is a psycopg ``ConnectionInfo``: user, host (or socket folder),
    port and database, as the server was reached.
    """
    host = info.host or ""
    if host.startswith("/"):
        return f"postgresql://{quote(info.user or '', safe='')}@/{info.dbname}?host={host}"
    if ":" in host:
        host = f"[{host}]"
    return f"postgresql://{quote(info.user or '', safe='')}@{host}:{info.port}/{info.dbname}"


def redact(text: str, url: str) -> str:
    """``text`` (e.g. a driver's error about ``url``) with ``url``'s passwords removed.

    The URL itself is replaced by its masked form, and so is every password
    in it, raw or percent-decoded, and every longer piece of one (libpq may
    quote only the part of a password before a ``/``).
    """
    text = text.replace(url, mask_url(url)) if url else text
    secrets: set[str] = set()
    for start, end in _password_spans(url):
        raw = url[start:end]
        for form in (raw, raw.strip("'"), unquote(raw)):
            secrets.add(form)
            secrets.update(_FRAGMENT_SPLIT.split(form))
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= _MIN_FRAGMENT:
            text = text.replace(secret, MASK)
    return text


def url_problem(url: str) -> str | None:
    """What is wrong with ``url`` and how to fix it, or None when libpq accepts it.

    The text names no part of the password (a driver's own message is passed
    through :func:`redact`).
    """
    scheme = _scheme(url)
    if scheme is None:
        if _KEYWORD_FORM.match(url):
            return _libpq_problem(url)
        return (
            f"it has no scheme: write {_EXAMPLE}, or libpq's key=value form (host=... dbname=...)"
        )
    name, slashes, end = scheme
    lowered = name.lower()
    if lowered not in _SCHEMES:
        base, plus, driver = lowered.partition("+")
        if plus and base in _SCHEMES:
            return f"'{name}' is SQLAlchemy's notation: drop '+{driver}' and write {_EXAMPLE}"
        return f"the scheme '{name}' is not PostgreSQL's: arc-atlas needs {_EXAMPLE}"
    if not slashes.startswith("//"):
        return f"'{name}:' must be followed by two slashes: write {_EXAMPLE}"
    if _BAD_ESCAPE.search(url):
        return (
            "it has a '%' that is not followed by two hex digits: write a literal '%' "
            "(in the password, say) as %25"
        )
    # libpq reads the user part up to the first "@" and the hosts up to "/" or
    # "?": a raw "@" or "/" in a password moves those borders, and the rest of
    # the password then lands in a host or port, where libpq would quote it.
    rest = url[end - len(slashes) + 2 :]  # a third slash starts the path
    hosts = re.split(r"[/?]", rest[_libpq_userinfo_end(rest) + 1 :], maxsplit=1)[0]
    if "@" in hosts:
        return "it has more than one '@' before the host: write an '@' in the password as %40"
    if any(not _port(host).isdigit() for host in hosts.split(",")):
        return "a port is not a number: write the port as digits, and a '/' in the password as %2F"
    return _libpq_problem(url)


def invalid_url_message(url: str, source: str | None = None) -> str | None:
    """The one-line error for an invalid ``url`` (password masked), or None when it is valid."""
    problem = url_problem(url)
    if problem is None:
        return None
    where = f" (set by {source})" if source else ""
    return f"Database URL {mask_url(url)} is not valid: {problem}{where}."


def _libpq_problem(url: str) -> str | None:
    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        lines = str(exc).strip().splitlines()
        reason = redact(lines[0] if lines else type(exc).__name__, url)
        return f"libpq says: {reason}; expected {_EXAMPLE}"
    return None


def _port(host: str) -> str:
    """The port written after ``host`` ("5432" for "h:5432", "[::1]:5432"); "0" when none."""
    name_end = host.rfind("]") + 1  # an IPv6 address holds colons of its own
    _, colon, port = host[name_end:].rpartition(":")
    return port if colon and port else "0"


def _scheme(url: str) -> tuple[str, str, int] | None:
    """``(scheme, slashes, where the rest starts)`` when ``url`` starts with a scheme."""
    match = _SCHEME.match(url)
    if match is None or (not match.group(2) and match.group(1).lower() not in _SCHEMES):
        return None
    return match.group(1), match.group(2), match.end()


def _password_spans(url: str) -> list[tuple[int, int]]:
    """``(start, end)`` of every password in ``url``, in order, not overlapping."""
    spans = [m.span(1) for m in _QUERY_PASSWORD.finditer(url)]
    spans += [m.span(1) for m in _KEYWORD_PASSWORD.finditer(url)]
    if not _KEYWORD_FORM.match(url):
        scheme = _scheme(url)
        offset = scheme[2] if scheme is not None else 0
        userinfo = _userinfo_password(url[offset:])
        if userinfo is not None:
            spans.append((offset + userinfo[0], offset + userinfo[1]))
    return _merge(spans)


def _userinfo_password(rest: str) -> tuple[int, int] | None:
    """The password's span in ``user:password@host...`` (what follows the scheme)."""
    end = max(_libpq_userinfo_end(rest), _last_userinfo_end(rest))
    if end < 0:
        return None
    colon = rest.find(":", 0, end)
    return None if colon < 0 else (colon + 1, end)


def _libpq_userinfo_end(rest: str) -> int:
    # libpq ends the user part at the first "@", unless a "/" comes first.
    at, slash = rest.find("@"), rest.find("/")
    return at if at >= 0 and (slash < 0 or at < slash) else -1


def _last_userinfo_end(rest: str) -> int:
    # What a person means by user:p@ss/w@host: the last "@", unless it sits in
    # a query parameter's value (?application_name=me@laptop).
    for at in reversed([i for i, c in enumerate(rest) if c == "@"]):
        separator = max(rest.rfind("?", 0, at), rest.rfind("&", 0, at))
        if separator < 0 or "=" not in rest[separator + 1 : at]:
            return at
    return -1


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
