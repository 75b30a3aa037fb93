"""The ``arc-atlas ui`` application: settings, the Starlette app, its error pages.

:func:`create_app` assembles the pages of :mod:`atlas.ui.pages`, the packaged
static files and the middlewares of :mod:`atlas.ui.security`. The app reads
and writes through the public library API only, over one
:class:`~atlas.storage.Database` pool kept on ``app.state.db``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import HTTPExceptionHandler

from atlas.errors import DatabaseError, InvalidFilter, PermissionDenied, SessionNotFound
from atlas.storage import Database, mask_url
from atlas.ui import pages
from atlas.ui.security import AccessGuard, CSRFCookie, SecurityHeaders
from atlas.ui.templating import render_error

__all__ = ["STATIC_DIR", "UISettings", "create_app"]

STATIC_DIR = Path(__file__).resolve().parent / "static"


@dataclass(frozen=True, repr=False)
class UISettings:
    """How ``arc-atlas ui`` runs: which database, who reviews, where it listens, its token.

    ``reviewer`` None records the OS user, as ``arc-atlas review`` does.
    ``token`` None serves without one, which :func:`~atlas.ui.security.check_bind`
    allows on a loopback ``host`` only. The repr masks the token and any
    password in ``database_url``.
    """

    database_url: str | None = None
    config_path: str | None = None
    reviewer: str | None = None
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None

    def __repr__(self) -> str:
        url = None if self.database_url is None else mask_url(self.database_url)
        token = None if self.token is None else "***"
        return (
            f"UISettings(database_url={url!r}, config_path={self.config_path!r}, "
            f"reviewer={self.reviewer!r}, host={self.host!r}, port={self.port!r}, "
            f"token={token!r})"
        )


def _handler(status_code: int, title: str) -> HTTPExceptionHandler:
    def handle(request: Request, exc: Exception) -> Response:
        return render_error(request, status_code, title, str(exc))

    return handle


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):  # no body allowed
        return Response(status_code=exc.status_code, headers=exc.headers)
    response = render_error(request, exc.status_code, f"Error {exc.status_code}", exc.detail)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def create_app(settings: UISettings, *, database: Database | None = None) -> Starlette:
    """The ASGI app of ``arc-atlas ui``.

    With ``database`` given, the app uses that pool and leaves closing it to the
    caller. Without it, the app's lifespan opens
    ``Database.open(settings.database_url, config_path=settings.config_path)``
    at startup and closes it at shutdown (so a server without lifespan events
    has no database). ``app.state.db`` is the pool and ``app.state.settings``
    the settings.

    Library errors become pages: :class:`~atlas.errors.SessionNotFound` 404,
    :class:`~atlas.errors.InvalidFilter` 400 with its message,
    :class:`~atlas.errors.PermissionDenied` 403, any other
    :class:`~atlas.errors.DatabaseError` (unreachable, schema out of date,
    statement timeout) 503.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if database is not None:
            yield
            return
        # Opening may start the embedded server and apply nothing else: a reader.
        db = await run_in_threadpool(
            Database.open, settings.database_url, config_path=settings.config_path
        )
        app.state.db = db
        try:
            yield
        finally:
            await run_in_threadpool(db.close)

    handlers: dict[type[Exception], HTTPExceptionHandler] = {
        SessionNotFound: _handler(404, "Session not found"),
        InvalidFilter: _handler(400, "Invalid filter"),
        PermissionDenied: _handler(403, "Permission denied"),
        DatabaseError: _handler(503, "Database unavailable"),
        HTTPException: _http_error,
    }
    app = Starlette(
        routes=[
            *pages.routes,
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(AccessGuard, token=settings.token),
            Middleware(CSRFCookie),
        ],
        exception_handlers=handlers,
        lifespan=lifespan,
    )
    app.state.settings = settings
    if database is not None:
        app.state.db = database
    return app
