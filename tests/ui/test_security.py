"""The UI's safety nets, over real HTTP to uvicorn on a real database.

The token on every request, the loopback ``Host`` check, CSRF on every POST
route, the security headers and ``Server-Timing``, the error pages, and
settings that never show a secret.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import psycopg
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from atlas.errors import (
    DatabaseUnavailable,
    InvalidFilter,
    PermissionDenied,
    SessionNotFound,
    UsageError,
)
from atlas.storage import seed_sessions
from atlas.ui import UISettings, check_bind, create_app
from atlas.ui.security import (
    CONTENT_SECURITY_POLICY,
    CSRFCookie,
    csrf_form,
    csrf_token,
    is_loopback,
)
from atlas.ui.templating import format_json, format_reward, format_ts, templates

TOKEN = "s3cret-token-for-tests"
TOKEN_REFUSED = re.compile(r"^This arc-atlas ui needs its token: [^\n]+\n$")


# Tests that change nothing share one database and two servers (with and without the token).


@pytest.fixture(scope="module")
def token_url(module_db_url: str, module_ui_server: Callable[[UISettings], str]) -> str:
    return module_ui_server(UISettings(database_url=module_db_url, token=TOKEN))


@pytest.fixture(scope="module")
def open_url(module_db_url: str, module_ui_server: Callable[[UISettings], str]) -> str:
    return module_ui_server(UISettings(database_url=module_db_url))


@pytest.fixture(scope="module")
def seeded_url(module_db_url: str) -> str:
    """The shared database with nine sessions: approved, pending and quarantined."""
    with psycopg.connect(module_db_url, autocommit=True) as conn:
        seed_sessions(conn, 9, seed=5)
        conn.execute(
            "UPDATE sessions SET review_status = "
            "(ARRAY['approved', 'pending', 'quarantined'])[id % 3 + 1]"
        )
    return module_db_url


@pytest.fixture
def client(open_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=open_url) as http:
        yield http


# --- the token ----------------------------------------------------------------------------------

GUARDED = [
    pytest.param("GET", "/", id="page"),
    pytest.param("GET", "/static/app.css", id="static"),
    pytest.param("GET", "/static/vendor/pico/pico.min.css", id="vendored"),
    pytest.param("GET", "/no-such-page", id="unknown"),
    pytest.param("POST", "/", id="post"),
]


@pytest.mark.parametrize(("method", "path"), GUARDED)
def test_without_the_token_every_request_is_refused(token_url: str, method: str, path: str):
    response = httpx.request(method, token_url + path)
    assert response.status_code == 401
    assert TOKEN_REFUSED.match(response.text)
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Authorization": "Bearer wrong"}, id="wrong-bearer"),
        pytest.param({"Authorization": f"Basic {TOKEN}"}, id="not-bearer"),
        pytest.param({"Cookie": "atlas_ui_token=wrong"}, id="wrong-cookie"),
        pytest.param({"Authorization": f"Bearer {TOKEN}x"}, id="longer"),
    ],
)
def test_a_wrong_token_is_refused(token_url: str, headers: dict[str, str]):
    assert httpx.get(token_url + "/", headers=headers).status_code == 401


@pytest.mark.parametrize("path", ["/", "/static/app.css", "/static/app.js"])
def test_the_bearer_header_opens_every_path(token_url: str, path: str):
    response = httpx.get(token_url + path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200


def test_the_cookie_opens_the_app(token_url: str):
    with httpx.Client(base_url=token_url, cookies={"atlas_ui_token": TOKEN}) as http:
        assert http.get("/").status_code == 200
        assert http.get("/static/app.js").status_code == 200


def test_the_query_token_becomes_a_cookie_and_leaves_the_url(token_url: str):
    with httpx.Client(base_url=token_url) as http:
        response = http.get("/", params={"token": TOKEN, "review_status": "pending"})
        assert response.status_code == 303
        assert response.headers["location"] == "/?review_status=pending"
        cookie = response.headers["set-cookie"]
        assert cookie == f"atlas_ui_token={TOKEN}; HttpOnly; SameSite=Strict; Path=/"
        assert http.get(response.headers["location"]).status_code == 200


def test_a_wrong_query_token_is_refused(token_url: str):
    response = httpx.get(token_url + "/", params={"token": "wrong"})
    assert response.status_code == 401
    assert "set-cookie" not in response.headers


# --- the Host check without a token -------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "10.0.0.1", "[fe80::1]"])
def test_without_a_token_only_loopback_host_names_are_served(client: httpx.Client, host: str):
    response = client.get("/", headers={"Host": host})
    assert response.status_code == 400
    assert "loopback host name" in response.text


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1:1234", "LOCALHOST:80", "[::1]:8765"])
def test_loopback_host_names_are_served(client: httpx.Client, host: str):
    assert client.get("/", headers={"Host": host}).status_code == 200


# --- CSRF -------------------------------------------------------------------------------------


def _post_paths() -> list[str]:
    """Every POST route of the app, with an existing session id in its path parameters."""
    app = create_app(UISettings())
    paths = []
    for route in app.routes:
        if isinstance(route, Route) and route.methods and "POST" in route.methods:
            paths.append(re.sub(r"\{[^}]+\}", "1", route.path))
    return sorted(set(paths))


POST_PATHS = _post_paths()


def _review_state(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT id, review_status, metadata::text FROM sessions ORDER BY id"
        ).fetchall()


def test_the_app_has_post_routes():
    assert POST_PATHS, "no POST route found: the CSRF tests below would test nothing"


@pytest.mark.parametrize("path", POST_PATHS)
@pytest.mark.parametrize(
    "form",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"csrf_token": "0" * 64}, id="forged-token"),
        pytest.param(
            {"csrf_token": "", "session_id": "1", "status": "approved", "to": "approved"},
            id="empty-token",
        ),
    ],
)
def test_every_post_route_refuses_a_request_without_a_valid_csrf_token(
    seeded_url: str, open_url: str, path: str, form: dict[str, str]
):
    before = _review_state(seeded_url)
    assert {row[1] for row in before} == {"approved", "pending", "quarantined"}
    with httpx.Client(base_url=open_url) as http:
        http.get("/")  # the browser's nonce cookie is set, as for a real visitor
        assert "atlas_csrf" in http.cookies
        response = http.post(path, data={"session_id": "1", "note": "x", **form})
    assert response.status_code == 403
    assert "CSRF token missing or invalid; reload the page" in response.text
    assert _review_state(seeded_url) == before


def _csrf_app() -> Starlette:
    async def show(request: Request) -> Response:
        return PlainTextResponse(csrf_token(request))

    async def change(request: Request) -> Response:
        form = await csrf_form(request)
        return PlainTextResponse(f"changed {form.get('what')}")

    return Starlette(
        routes=[Route("/", show), Route("/change", change, methods=["POST"])],
        middleware=[Middleware(CSRFCookie)],
    )


@pytest.fixture
def csrf_client() -> Iterator[TestClient]:
    with TestClient(_csrf_app(), base_url="http://127.0.0.1:8765") as http:
        yield http


def test_the_token_shown_on_the_first_page_is_accepted(csrf_client: TestClient):
    first = csrf_client.get("/")
    assert "atlas_csrf=" in first.headers["set-cookie"]
    assert "HttpOnly; SameSite=Strict; Path=/" in first.headers["set-cookie"]
    response = csrf_client.post("/change", data={"csrf_token": first.text, "what": "x"})
    assert (response.status_code, response.text) == (200, "changed x")


def test_the_token_may_come_in_a_header(csrf_client: TestClient):
    token = csrf_client.get("/").text
    response = csrf_client.post("/change", data={"what": "y"}, headers={"X-CSRF-Token": token})
    assert response.status_code == 200


def test_a_token_of_another_browser_is_refused(csrf_client: TestClient):
    with TestClient(_csrf_app(), base_url="http://127.0.0.1:8765") as other:
        foreign = other.get("/").text
    csrf_client.get("/")
    response = csrf_client.post("/change", data={"csrf_token": foreign})
    assert response.status_code == 403


def test_a_token_without_its_cookie_is_refused(csrf_client: TestClient):
    token = csrf_client.get("/").text
    csrf_client.cookies.clear()
    assert csrf_client.post("/change", data={"csrf_token": token}).status_code == 403


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        pytest.param("http://127.0.0.1:8765", 200, id="same"),
        pytest.param("http://evil.example", 403, id="other-site"),
        pytest.param("http://127.0.0.1:9999", 403, id="other-port"),
        pytest.param("null", 403, id="null"),
    ],
)
def test_a_post_from_another_origin_is_refused(csrf_client: TestClient, origin: str, status: int):
    token = csrf_client.get("/").text
    response = csrf_client.post("/change", data={"csrf_token": token}, headers={"Origin": origin})
    assert response.status_code == status


# --- headers ----------------------------------------------------------------------------------

SERVER_TIMING = re.compile(r"^app;dur=(\d+\.\d)$")


@pytest.mark.parametrize("path", ["/", "/no-such-page", "/static/app.css"])
def test_every_response_has_the_security_headers(client: httpx.Client, path: str):
    headers = client.get(path).headers
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["x-frame-options"] == "DENY"
    timing = SERVER_TIMING.match(headers["server-timing"])
    assert timing is not None and float(timing[1]) >= 0


def test_pages_are_not_cached_and_static_files_may_be(client: httpx.Client):
    assert client.get("/").headers["cache-control"] == "no-store"
    static = client.get("/static/app.css")
    assert "no-store" not in static.headers.get("cache-control", "")
    assert static.headers["etag"]


def test_the_token_refusal_has_the_headers_too(token_url: str):
    headers = httpx.get(token_url + "/").headers
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert SERVER_TIMING.match(headers["server-timing"])


# --- error pages --------------------------------------------------------------------------------

PLANTED = "<script>alert(1)</script><img src=x onerror=alert(2)>"
ERRORS = [
    pytest.param(SessionNotFound(f"No session {PLANTED}."), 404, id="not-found"),
    pytest.param(InvalidFilter(f"min_reward {PLANTED} is not a number"), 400, id="filter"),
    pytest.param(PermissionDenied(f"role lacks UPDATE {PLANTED}"), 403, id="permission"),
    pytest.param(DatabaseUnavailable(f"refused {PLANTED}"), 503, id="unavailable"),
]


@pytest.mark.parametrize(("error", "status"), ERRORS)
def test_library_errors_become_pages_with_the_message_escaped(
    module_db_url: str, error: Exception, status: int
):
    def fail(request: Request) -> Response:
        raise error

    app = create_app(UISettings(database_url=module_db_url))
    app.router.routes.insert(0, Route("/fail", fail))
    with TestClient(app, base_url="http://127.0.0.1:8765") as http:
        response = http.get("/fail")
    assert response.status_code == status
    assert "<script>alert" not in response.text and "<img src=x" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert response.headers["content-type"].startswith("text/html")


# --- settings and the bind rule -----------------------------------------------------------------


def test_the_settings_repr_hides_the_token_and_the_password():
    settings = UISettings(database_url="postgresql://atlas:hunter2@db/atlas", token=TOKEN)
    shown = repr(settings)
    assert "hunter2" not in shown and TOKEN not in shown
    assert "postgresql://atlas:***@db/atlas" in shown and "token='***'" in shown


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        pytest.param("127.0.0.1", True, id="v4"),
        pytest.param("127.1.2.3", True, id="v4-range"),
        pytest.param("::1", True, id="v6"),
        pytest.param("[::1]", True, id="v6-brackets"),
        pytest.param("localhost", True, id="name"),
        pytest.param("LocalHost.", True, id="name-case-dot"),
        pytest.param("0.0.0.0", False, id="any-v4"),
        pytest.param("::", False, id="any-v6"),
        pytest.param("192.168.1.5", False, id="lan"),
        pytest.param("localhost.evil.example", False, id="lookalike"),
        pytest.param("", False, id="empty"),
    ],
)
def test_is_loopback(host: str, loopback: bool):
    assert is_loopback(host) is loopback


def test_a_non_loopback_bind_needs_a_token():
    with pytest.raises(UsageError, match=r"^--host 0\.0\.0\.0 is not a loopback address"):
        check_bind("0.0.0.0", None)
    with pytest.raises(UsageError, match="pass --token TOKEN or set ATLAS_UI_TOKEN"):
        check_bind("192.168.1.5", "")
    check_bind("0.0.0.0", TOKEN)
    check_bind("127.0.0.1", None)


# --- template filters and escaping --------------------------------------------------------------


def test_html_templates_escape_and_strings_too():
    assert templates.env.autoescape("page.html") is True  # type: ignore[operator]
    assert templates.env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        pytest.param(datetime(2026, 11, 30, 12, 34, 56), "2026-11-30 12:34:56 UTC", id="naive"),
        pytest.param("infinity", "infinity", id="text"),
        pytest.param(None, "–", id="none"),
    ],
)
def test_ts(value: datetime | str | None, shown: str):
    assert format_ts(value) == shown


def test_ts_converts_to_utc():
    local = datetime(2026, 11, 30, 14, 34, 56, tzinfo=timezone(timedelta(hours=2)))
    assert format_ts(local) == "2026-11-30 12:34:56 UTC"


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0.8249, "0.82"), (1, "1.00"), (None, "–"), (float("nan"), "–"), (float("inf"), "–")],
)
def test_reward(value: float | None, shown: str):
    assert format_reward(value) == shown


def test_json_is_indented_and_never_fails():
    assert format_json({"a": [1, 2]}) == '{\n  "a": [\n    1,\n    2\n  ]\n}'
    assert format_json({1: Decimal("0.5")}) == '{\n  "1": "0.5"\n}'
    assert format_json({"<script>": 1}) == '{\n  "<script>": 1\n}'  # escaped where shown
