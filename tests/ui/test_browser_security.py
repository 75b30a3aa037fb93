"""The UI's defences as a browser meets them (Debian's chromium through Playwright).

A token-protected server turns a visitor without the token away, and one with
the printed ``?token=`` URL in, with the token moved to an HttpOnly cookie and
out of the address bar. The Content-Security-Policy really stops inline
script, and a POST without the CSRF token is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from starlette.routing import Route

from atlas.ui import UISettings, create_app

TOKEN = "browser-token-" + "k" * 16


@pytest.fixture
def token_url(db_url: str, ui_server: Callable[[UISettings], str]) -> str:
    return ui_server(UISettings(database_url=db_url, reviewer="tester", token=TOKEN))


def test_without_the_token_the_page_says_what_is_missing(page: Any, token_url: str):
    response = page.goto(token_url + "/")
    assert response.status == 401
    assert page.locator("body").inner_text().startswith("This arc-atlas ui needs its token")


def test_the_printed_url_opens_the_app_and_drops_the_token(
    page: Any, page_events: Any, token_url: str
):
    response = page.goto(f"{token_url}/?token={TOKEN}")
    assert response.status == 200
    assert page.url == token_url + "/"
    assert TOKEN not in page.url
    assert page.locator("nav a[href='/queue']").is_visible()
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "atlas_ui_token"]
    assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")
    assert TOKEN not in page.evaluate("document.cookie")  # scripts cannot read it
    # The stylesheets and the script came through the token check and the CSP.
    assert page.evaluate("document.styleSheets.length") >= 2
    assert page.evaluate("Array.from(document.styleSheets).every(s => s.cssRules.length > 0)")
    # Navigating on keeps working with the cookie alone.
    assert page.goto(token_url + "/insights").status == 200
    assert page_events.console_errors == [] and page_events.page_errors == []


def test_the_policy_stops_inline_script(page: Any, page_events: Any, ui_url: str):
    page.goto(ui_url + "/")
    page.evaluate(
        """() => {
            const s = document.createElement("script");
            s.textContent = "window.inlineRan = true";
            document.body.appendChild(s);
            const i = document.createElement("img");
            i.setAttribute("src", "x");
            i.setAttribute("onerror", "window.handlerRan = true");
            document.body.appendChild(i);
        }"""
    )
    page.wait_for_function(
        "() => document.querySelector('img[onerror]').complete"
    )  # the image failed: its handler had its chance
    assert page.evaluate("[window.inlineRan, window.handlerRan]") == [None, None]
    assert any("Content Security Policy" in e for e in page_events.console_errors)


def _post_path() -> str:
    for route in create_app(UISettings()).routes:
        if isinstance(route, Route) and route.methods and "POST" in route.methods:
            return re.sub(r"\{[^}]+\}", "1", route.path)
    pytest.fail("the app has no POST route")


def test_a_post_without_the_csrf_token_is_refused_in_the_browser(page: Any, ui_url: str):
    page.goto(ui_url + "/")
    status = page.evaluate(
        "async (path) => (await fetch(path, {method: 'POST', body: new FormData()})).status",
        _post_path(),
    )
    assert status == 403
