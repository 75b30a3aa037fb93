"""Fixtures of the UI tests: the real app served by uvicorn, and Debian's chromium.

``ui_server(settings)`` serves ``create_app(settings)`` on a free 127.0.0.1
port in a background thread and returns its base URL (stopped at teardown);
``ui_url`` is that for the test's fresh database, reviewing as ``tester``.
``browser`` is Debian's chromium driven by Playwright (never a downloaded
browser): a missing ``/usr/bin/chromium`` skips the browser tests, unless
``ATLAS_REQUIRE_BROWSER=1`` (CI) makes it a failure. ``page`` is a page in a
fresh browser context, and ``page_events`` what it reported: console errors,
uncaught exceptions and dialogs (dismissed, so nothing blocks).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import uvicorn
from psycopg import sql

from atlas.ui import UISettings, create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT = 30.0


class _Served:
    """One uvicorn server in a thread, on a socket bound here (so the port cannot be taken)."""

    def __init__(self, settings: UISettings) -> None:
        # IPPROTO_TCP, as getaddrinfo gives: Python then sets TCP_NODELAY, and a
        # keep-alive response does not wait ~40 ms for the delayed ACK.
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.listener.bind(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning",
            lifespan="on",
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.listener]}, daemon=True
        )

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        # Waiting on a flag uvicorn sets once it listens: a poll, not a fixed sleep.
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the arc-atlas ui server did not start")
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=START_TIMEOUT)
        self.listener.close()


@contextmanager
def _servers() -> Iterator[Callable[[UISettings], str]]:
    running: list[_Served] = []

    def serve(settings: UISettings) -> str:
        served = _Served(settings)
        running.append(served)
        return served.start()

    try:
        yield serve
    finally:
        for served in running:
            served.stop()


@pytest.fixture
def ui_server() -> Iterator[Callable[[UISettings], str]]:
    """Serve ``create_app(settings)``: ``base_url = ui_server(UISettings(...))``."""
    with _servers() as serve:
        yield serve


@pytest.fixture(scope="module")
def module_ui_server() -> Iterator[Callable[[UISettings], str]]:
    """:func:`ui_server` for a whole module: for tests that change nothing."""
    with _servers() as serve:
        yield serve


@pytest.fixture(scope="module")
def module_db_url(server_url: str, _template: str) -> Iterator[str]:
    """A migrated database shared by a module's tests that change nothing (faster)."""
    name = f"atlas_ui_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(_template)
            )
        )
    try:
        yield psycopg.conninfo.make_conninfo(server_url, dbname=name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def ui_url(db_url: str, ui_server: Callable[[UISettings], str]) -> str:
    """The UI on the test's fresh database, reviewing as ``tester``, without a token."""
    return ui_server(UISettings(database_url=db_url, reviewer="tester"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, shared by a test module.

    Not by the whole run: while Playwright's sync API is started it keeps an
    event loop running in the main thread, and ``asyncio.run`` in any later
    test (the runtime's adapters) would fail.
    """
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium to run the browser tests"
        if os.environ.get("ATLAS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason} (ATLAS_REQUIRE_BROWSER=1)")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
    finally:
        playwright.stop()


@dataclass
class PageEvents:
    """What a page reported while a test drove it."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture
def page_events() -> PageEvents:
    """Console errors, uncaught exceptions and dialog messages of ``page``."""
    return PageEvents()


@pytest.fixture
def page(browser: Any, page_events: PageEvents) -> Iterator[Any]:
    """A page in a fresh browser context (no cookies); its events go to ``page_events``."""
    context = browser.new_context()
    new = context.new_page()
    new.set_default_timeout(15_000)

    def on_console(message: Any) -> None:
        if message.type == "error":
            page_events.console_errors.append(message.text)

    def on_dialog(dialog: Any) -> None:
        page_events.dialogs.append(dialog.message)
        dialog.dismiss()

    new.on("console", on_console)
    new.on("pageerror", lambda error: page_events.page_errors.append(str(error)))
    new.on("dialog", on_dialog)
    try:
        yield new
    finally:
        context.close()
