"""What keeps ``arc-atlas ui`` safe: the bind check, the access token, CSRF and response headers.

Three pure ASGI middlewares (pure so a streamed export keeps streaming; Starlette's
``BaseHTTPMiddleware`` would buffer it), outermost first:

* :class:`SecurityHeaders` puts a strict Content-Security-Policy and friends on
  every response, and ``Server-Timing: app;dur=MS`` (the time until the
  response started, which the benchmark reads).
* :class:`AccessGuard` checks the token on every request when one is set
  (``Authorization: Bearer``, the ``atlas_ui_token`` cookie, or ``?token=``,
  which sets the cookie and redirects to the same URL without it). Without a
  token the app is bound to a loopback address, and the guard refuses any
  ``Host`` header that does not name one: a web page cannot reach the UI by
  pointing its own host name at 127.0.0.1 (DNS rebinding).
* :class:`CSRFCookie` gives each browser a random nonce cookie; the CSRF token
  of a form is an HMAC of that nonce under a key made at process start, so a
  token is worthless in another browser or after a restart.
  :func:`csrf_form` is what every POST handler calls to read its form.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Iterable
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atlas.errors import UsageError

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "TOKEN_COOKIE",
    "AccessGuard",
    "CSRFCookie",
    "SecurityHeaders",
    "check_bind",
    "csrf_form",
    "csrf_token",
    "is_loopback",
]

TOKEN_COOKIE = "atlas_ui_token"
CSRF_COOKIE = "atlas_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_CSRF_REFUSED = "CSRF token missing or invalid; reload the page"
_TOKEN_REFUSED = (
    "This arc-atlas ui needs its token: open the URL it printed (the one ending in ?token=...) "
    "or send Authorization: Bearer TOKEN.\n"
)
_HOST_REFUSED = (
    "arc-atlas ui answers only to a loopback host name (127.0.0.1, localhost, [::1]); "
    "to serve other hosts, start it with --token.\n"
)
# The key CSRF tokens are signed with: one per process, so tokens die with it.
_CSRF_KEY = secrets.token_bytes(32)
# The request.state attribute that holds this request's CSRF nonce.
_NONCE_STATE = "atlas_csrf_nonce"
_NONCE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1`` (brackets allowed): this machine only."""
    name = host.strip().rstrip(".").lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve a non-loopback ``host`` without a token.

    Raises :class:`~atlas.errors.UsageError`: anyone who can reach that address
    could read every session and change review statuses.
    """
    if not token and not is_loopback(host):
        raise UsageError(
            f"--host {host} is not a loopback address, so anyone who can reach it could read "
            "and review sessions: pass --token TOKEN or set ATLAS_UI_TOKEN."
        )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _cookies(scope: Scope) -> dict[str, str]:
    raw = _header(scope, b"cookie")
    if not raw:
        return {}
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed Cookie header counts as no cookies
        return {}
    return {key: morsel.value for key, morsel in jar.items()}


def _set_cookie(name: str, value: str) -> tuple[bytes, bytes]:
    """A ``Set-Cookie`` header scripts cannot read and other sites cannot send."""
    return b"set-cookie", f"{name}={value}; HttpOnly; SameSite=Strict; Path=/".encode("latin-1")


async def _plain(
    send: Send, status: int, text: str, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """Strict security headers and ``Server-Timing`` on every HTTP response.

    ``Cache-Control: no-store`` goes on everything outside ``/static/``: pages
    show review state that other people change, and may be behind a token.
    A header the app set itself (a download's ``Cache-Control``) is kept.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                millis = (time.perf_counter() - started) * 1000
                headers = list(message.get("headers", []))
                present = {key.lower() for key, _ in headers}
                wanted = [
                    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"x-frame-options", b"DENY"),
                ]
                if not static:
                    wanted.append((b"cache-control", b"no-store"))
                headers += [(k, v) for k, v in wanted if k not in present]
                headers.append((b"server-timing", f"app;dur={millis:.1f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class AccessGuard:
    """The token check (when ``token`` is set), or else the loopback ``Host`` check.

    ``?token=T`` is for the URL ``arc-atlas ui`` prints: it is swapped for an
    HttpOnly cookie and a redirect, so the token leaves the address bar and
    the history. A missing or wrong token is a one-line 401.
    """

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    def _valid(self, candidate: str | None) -> bool:
        assert self.token is not None
        return candidate is not None and hmac.compare_digest(candidate.encode(), self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.token is None:
            host = _header(scope, b"host")
            # "host:port", "[::1]:port": drop the port to get the name.
            name = host.rsplit(":", 1)[0] if host and not host.endswith("]") else host
            if host is not None and not is_loopback(name or ""):
                await _plain(send, 400, _HOST_REFUSED)
                return
            await self.app(scope, receive, send)
            return
        authorization = _header(scope, b"authorization") or ""
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and self._valid(credentials.strip()):
            await self.app(scope, receive, send)
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = [value for key, value in query if key == "token"]
        if given and self._valid(given[-1]):
            rest = urlencode([(key, value) for key, value in query if key != "token"])
            location = scope.get("root_path", "") + scope["path"] + (f"?{rest}" if rest else "")
            await _plain(
                send,
                303,
                "",
                [(b"location", location.encode()), _set_cookie(TOKEN_COOKIE, given[-1])],
            )
            return
        if self._valid(_cookies(scope).get(TOKEN_COOKIE)):
            await self.app(scope, receive, send)
            return
        await _plain(send, 401, _TOKEN_REFUSED, [(b"www-authenticate", b"Bearer")])


def _usable_nonce(value: str | None) -> bool:
    return value is not None and 32 <= len(value) <= 64 and set(value) <= _NONCE_CHARS


class CSRFCookie:
    """Gives each browser a random ``atlas_csrf`` nonce cookie, set on the first response.

    The nonce of this request (the cookie's, or the one being set) is kept in
    ``request.state`` so :func:`csrf_token` works on the very first page.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = _cookies(scope).get(CSRF_COOKIE)
        fresh = not _usable_nonce(nonce)
        if fresh:
            nonce = secrets.token_urlsafe(32)
        scope.setdefault("state", {})[_NONCE_STATE] = nonce

        async def send_with_cookie(message: Message) -> None:
            if fresh and message["type"] == "http.response.start":
                assert nonce is not None
                headers = [*message.get("headers", []), _set_cookie(CSRF_COOKIE, nonce)]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _sign(nonce: str) -> str:
    return hmac.new(_CSRF_KEY, nonce.encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """The CSRF token to put in this browser's forms (field ``csrf_token``).

    Raises :class:`RuntimeError` when the app has no :class:`CSRFCookie`.
    """
    nonce = getattr(request.state, _NONCE_STATE, None)
    if nonce is None:
        raise RuntimeError("csrf_token needs the CSRFCookie middleware (see create_app).")
    return _sign(str(nonce))


def _same_origin(request: Request) -> bool:
    """False when an ``Origin`` header is present and names another host than ``Host``."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host")
    parts = urlsplit(origin)
    return host is not None and parts.scheme in ("http", "https") and parts.netloc == host


async def csrf_form(request: Request) -> FormData:
    """Read a POST's form after checking its CSRF token; what every state-changing handler calls.

    The token comes from the ``csrf_token`` field or the ``X-CSRF-Token`` header
    and must be the HMAC of the nonce in the browser's ``atlas_csrf`` cookie (a
    nonce only just set does not count: the request did not carry it). A
    request whose ``Origin`` names another site is refused as well.

    Raises :class:`~starlette.exceptions.HTTPException` 403 otherwise.
    """
    if not _same_origin(request):
        raise HTTPException(403, _CSRF_REFUSED)
    form = await request.form()
    given = form.get(CSRF_FIELD)
    if not isinstance(given, str):
        given = request.headers.get(CSRF_HEADER)
    nonce = request.cookies.get(CSRF_COOKIE)
    if not given or not _usable_nonce(nonce):
        raise HTTPException(403, _CSRF_REFUSED)
    assert nonce is not None
    if not hmac.compare_digest(given.encode(), _sign(nonce).encode()):
        raise HTTPException(403, _CSRF_REFUSED)
    return form
