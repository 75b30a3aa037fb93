"""The http_api adapter against a real local server, and its pure parts on their own."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import pytest
from fake_servers import MESSAGES, RecordingSleep, Reply, complete, serve

from atlas.config.adapters import HTTPAdapterConfig, parse_adapter_config
from atlas.errors import ConfigError
from atlas.runtime.adapters import AdapterError, HTTPAdapter
from atlas.runtime.adapters.http import (
    extract_result,
    parse_retry_after,
    render_payload,
    retry_delay,
)

PROMPT = "You are terse.\n\nWhat is 2 + 2?"


def adapter(url: str, sleep: RecordingSleep | None = None, **settings: Any) -> HTTPAdapter:
    config = HTTPAdapterConfig(type="http_api", endpoint=f"{url}/run", **settings)
    return HTTPAdapter(config) if sleep is None else HTTPAdapter(config, sleep=sleep)


def test_default_payload_carries_prompt_messages_and_metadata() -> None:
    with serve(Reply(body={"output": "4"})) as server:
        completion = complete(adapter(server.url), metadata={"task_id": 7})
    assert completion.text == "4"
    assert server.received[0].json() == {
        "prompt": PROMPT,
        "messages": MESSAGES,
        "metadata": {"task_id": 7},
    }


def test_payload_template_headers_and_method_reach_the_server() -> None:
    template = {"input": {"question": "Q: {prompt}", "history": "{messages}"}, "mode": "fast"}
    with serve(Reply(body={"text": "4"})) as server:
        complete(adapter(server.url, payload=template, method="PUT", headers={"X-Team": "a"}))
    request = server.received[0]
    assert (request.method, request.path, request.headers["x-team"]) == ("PUT", "/run", "a")
    assert request.json() == {
        "input": {"question": f"Q: {PROMPT}", "history": MESSAGES},
        "mode": "fast",
    }


def test_result_path_and_usage_are_read_from_the_reply() -> None:
    reply = Reply(body={"choices": [{"message": {"content": "4"}}], "usage": {"total_tokens": 9}})
    with serve(reply) as server:
        completion = complete(adapter(server.url, result_path="choices.0.message.content"))
    assert (completion.text, completion.usage, completion.raw) == (
        "4",
        {"total_tokens": 9},
        reply.body,
    )


def test_api_key_is_sent_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_TOKEN", "tok-123")
    with serve(Reply(body="ok")) as server:
        complete(adapter(server.url, api_key_env="AGENT_TOKEN", api_key_header="X-Api-Key"))
    assert server.received[0].headers["x-api-key"] == "tok-123"


def test_retries_after_500_then_succeeds() -> None:
    with serve(Reply(500, {"error": "busy"}), Reply(body={"output": "4"})) as server:
        completion = complete(adapter(server.url, retry_backoff_seconds=0))
    assert (completion.text, completion.attempts, len(server.received)) == ("4", 2, 2)


def test_retries_after_a_dropped_connection() -> None:
    sleep = RecordingSleep()
    with serve(Reply(drop=True), Reply(body={"output": "4"})) as server:
        completion = complete(adapter(server.url, sleep, retry_backoff_seconds=0.25))
    assert (completion.text, completion.attempts, sleep.delays) == ("4", 2, [0.25])


@pytest.mark.parametrize(
    ("retry_after", "delay"),
    [
        pytest.param("2", 2.0, id="seconds"),
        pytest.param("0.05", 0.05, id="fractional"),
        pytest.param("86400", 30.0, id="capped"),
        pytest.param("soon", 0.5, id="unreadable-falls-back-to-backoff"),
    ],
)
def test_retry_after_is_honoured(retry_after: str, delay: float) -> None:
    sleep = RecordingSleep()
    busy = Reply(429, {"error": "slow down"}, headers={"Retry-After": retry_after})
    with serve(busy, Reply(body={"output": "4"})) as server:
        completion = complete(adapter(server.url, sleep))
    assert (completion.attempts, sleep.delays) == (2, [delay])


def test_gives_up_after_max_retries_with_status_and_excerpt() -> None:
    sleep = RecordingSleep()
    overloaded = Reply(503, {"error": {"message": "overloaded,\n try later"}})
    with serve(overloaded) as server, pytest.raises(AdapterError) as caught:
        complete(adapter(server.url, sleep, max_retries=2))
    assert str(caught.value) == (
        f"The http_api:{server.url}/run adapter got HTTP 503 after 3 tries from "
        f"{server.url}/run: overloaded, try later."
    )
    assert (caught.value.status, caught.value.attempts, sleep.delays) == (503, 3, [0.5, 1.0])


def test_client_errors_are_not_retried() -> None:
    invalid = Reply(422, {"detail": "prompt too long"})
    with (
        serve(invalid) as server,
        pytest.raises(AdapterError, match=r"422 from .*: prompt too long\.$"),
    ):
        complete(adapter(server.url))
    assert len(server.received) == 1


def test_timeout_is_an_adapter_error() -> None:
    timed_out = r"request to .*/run timed out after 0\.2 s\.$"
    with serve(Reply(hang=True)) as server, pytest.raises(AdapterError, match=timed_out):
        complete(adapter(server.url, timeout_seconds=0.2, max_retries=0))


def test_unreadable_reply_names_the_path() -> None:
    unreadable = re.escape("no 'output.text': 'text' is missing at output (keys: answer)")
    reply = Reply(body={"output": {"answer": "4"}})
    with serve(reply) as server, pytest.raises(AdapterError, match=unreadable):
        complete(adapter(server.url, result_path="output.text"))


def test_missing_api_key_variable_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENT_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="export AGENT_TOKEN=<your key>"):
        adapter("http://127.0.0.1:9", api_key_env="AGENT_TOKEN")


def test_name_leaves_out_query_and_credentials() -> None:
    config = HTTPAdapterConfig(type="http_api", endpoint="https://u:pw@h.example/run?token=s3")
    assert HTTPAdapter(config).name == "http_api:https://h.example/run"


# -- pure parts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param("{prompt}", "P", id="whole-prompt"),
        pytest.param("{metadata}", {"k": 1}, id="whole-metadata"),
        pytest.param("say {prompt} with {metadata}", 'say P with {"k": 1}', id="embedded"),
        pytest.param(
            ["{messages}", 3, None], [[{"role": "user", "content": "P"}], 3, None], id="list"
        ),
        pytest.param({"{prompt}": "{x}"}, {"{prompt}": "{x}"}, id="keys-and-others-untouched"),
    ],
)
def test_render_payload(template: Any, expected: Any) -> None:
    messages = [{"role": "user", "content": "P"}]
    assert render_payload(template, "P", messages, {"k": 1}) == expected


def test_render_payload_does_not_substitute_inside_the_prompt() -> None:
    assert render_payload("a {prompt} b", "{metadata}", [], {"k": 1}) == "a {metadata} b"


@pytest.mark.parametrize(
    ("body", "path", "text"),
    [
        pytest.param("plain", None, "plain", id="string-body"),
        pytest.param({"output": "o", "text": "t"}, None, "o", id="output-first"),
        pytest.param({"text": "t"}, None, "t", id="text"),
        pytest.param({"a": {"b": [{"c": "deep"}]}}, "a.b.0.c", "deep", id="nested"),
        pytest.param({"a": [1, 2, 3]}, "a.-1", "3", id="negative-index"),
        pytest.param({"a": {"b": 1}}, "a", '{"b": 1}', id="object-as-json"),
    ],
)
def test_extract_result(body: Any, path: str | None, text: str) -> None:
    assert extract_result(body, path) == text


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        pytest.param({"answer": 1}, None, "no 'output' or 'text' (keys: answer)", id="default"),
        pytest.param({"a": [1]}, "a.1", "'1' is missing at a (a list of 1)", id="index"),
        pytest.param({"a": None}, "a", "'a' is null", id="null"),
    ],
)
def test_extract_result_errors(body: Any, path: str | None, message: str) -> None:
    with pytest.raises(LookupError, match=re.escape(message)):
        extract_result(body, path)


@pytest.mark.parametrize(
    ("failures", "retry_after", "delay"),
    [
        pytest.param(1, None, 0.5, id="first"),
        pytest.param(3, None, 2.0, id="doubling"),
        pytest.param(10, None, 30.0, id="capped"),
        pytest.param(3, 0.1, 0.1, id="retry-after-wins"),
    ],
)
def test_retry_delay(failures: int, retry_after: float | None, delay: float) -> None:
    assert retry_delay(failures, 0.5, retry_after) == delay


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        pytest.param("120", 120.0, id="seconds"),
        pytest.param("Wed, 01 Jan 2025 00:01:00 GMT", 60.0, id="http-date"),
        pytest.param("Tue, 31 Dec 2024 00:00:00 GMT", 0.0, id="past-date"),
        pytest.param("-5", 0.0, id="negative"),
        pytest.param("nan", None, id="nan"),
        pytest.param("later", None, id="garbage"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    now = datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert parse_retry_after(header, now) == seconds


@pytest.mark.parametrize(
    ("block", "message"),
    [
        pytest.param(
            {"endpoint": "ftp://x/run"}, "endpoint must be an http:// or https:// URL", id="scheme"
        ),
        pytest.param(
            {"endpoint": "http://x", "api_key": "s3cret"}, "api_key is not allowed", id="api-key"
        ),
        pytest.param(
            {"endpoint": "http://x", "retry_on": [200]},
            "retry_on must list HTTP error",
            id="retry-on",
        ),
        pytest.param(
            {"endpoint": "http://x", "result_path": "a..b"}, "result_path must be", id="path"
        ),
    ],
)
def test_config_errors(block: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_adapter_config({"type": "http_api", **block})
    assert "s3cret" not in str(caught.value)


def test_refused_connection_is_retried_then_reported() -> None:
    with serve() as server:
        url = server.url  # stopped on leaving the block: nothing listens there any more
    sleep = RecordingSleep()
    with pytest.raises(
        AdapterError,
        match=r"/run after 2 tries could not connect \(.*\): is the server running there\?$",
    ):
        complete(adapter(url, sleep, max_retries=1))
    assert sleep.delays == [0.5]
