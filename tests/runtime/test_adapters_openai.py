"""The openai / litellm adapter against a local server that speaks chat completions."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fake_servers import MESSAGES, RecordingSleep, Reply, chat_reply, complete, serve

from atlas.config.adapters import OpenAIAdapterConfig, parse_adapter_config
from atlas.errors import ConfigError
from atlas.runtime.adapters import AdapterError, OpenAIAdapter, build_adapter
from atlas.runtime.adapters.openai import parse_chat_completion

KEY = "sk-test-0123456789abcdef"


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATLAS_TEST_LLM_KEY", KEY)


def adapter(url: str, sleep: RecordingSleep | None = None, **settings: Any) -> OpenAIAdapter:
    settings = {"model": "gpt-test", "api_key_env": "ATLAS_TEST_LLM_KEY", **settings}
    config = OpenAIAdapterConfig(type="openai", base_url=f"{url}/v1", **settings)
    return OpenAIAdapter(config) if sleep is None else OpenAIAdapter(config, sleep=sleep)


def test_request_body_and_authorization_as_received() -> None:
    settings: dict[str, Any] = {"temperature": 0.3, "max_tokens": 64}
    with serve(chat_reply("4")) as server:
        llm = adapter(server.url, extra_body={"seed": 7, "top_p": 0.9}, **settings)
        complete(llm, metadata={"step": 1})
    request = server.received[0]
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.json() == {
        "model": "gpt-test",
        "messages": MESSAGES,
        "temperature": 0.3,
        "max_tokens": 64,
        "seed": 7,
        "top_p": 0.9,
    }


def test_content_and_usage_are_parsed() -> None:
    reply = chat_reply("4", prompt_tokens=12, completion_tokens=1, total_tokens=13)
    with serve(reply) as server:
        completion = complete(adapter(server.url))
    assert completion.text == "4"
    assert completion.usage == {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13}
    assert (completion.raw, completion.attempts) == (reply.body, 1)


def test_max_tokens_is_left_out_unless_set() -> None:
    with serve(chat_reply("4")) as server:
        complete(adapter(server.url))
    assert "max_tokens" not in server.received[0].json()


def test_429_is_retried_after_retry_after() -> None:
    sleep = RecordingSleep()
    limited = Reply(429, {"error": {"message": "Rate limit reached"}}, headers={"Retry-After": "1"})
    with serve(limited, chat_reply("4")) as server:
        completion = complete(adapter(server.url, sleep))
    assert (completion.text, completion.attempts, sleep.delays) == ("4", 2, [1.0])


def test_401_carries_the_provider_message_with_the_key_masked() -> None:
    refusal = Reply(401, {"error": {"message": f"Incorrect API key provided: {KEY}."}})
    with serve(refusal) as server, pytest.raises(AdapterError) as caught:
        complete(adapter(server.url))
    assert str(caught.value) == (
        f"The openai:gpt-test adapter got HTTP 401 from {server.url}/v1/chat/completions: "
        "Incorrect API key provided: ***. Check that ATLAS_TEST_LLM_KEY holds a valid key "
        "for this server."
    )
    assert (caught.value.status, len(server.received)) == (401, 1)


def test_400_error_message_is_reported() -> None:
    invalid = Reply(400, {"error": {"message": "max_tokens is too large", "type": "invalid"}})
    message = re.escape("got HTTP 400 from ") + r".*: max_tokens is too large\.$"
    with serve(invalid) as server, pytest.raises(AdapterError, match=message):
        complete(adapter(server.url))


def test_giving_up_on_5xx_never_shows_the_key() -> None:
    sleep = RecordingSleep()
    echo = Reply(502, f"bad gateway for Authorization: Bearer {KEY}")
    with serve(echo) as server, pytest.raises(AdapterError) as caught:
        complete(adapter(server.url, sleep, max_retries=1))
    assert KEY not in str(caught.value)
    assert "after 2 tries" in str(caught.value) and "Bearer ***" in str(caught.value)


@pytest.mark.parametrize(
    ("value", "state"),
    [pytest.param(None, "not set", id="unset"), pytest.param("  ", "empty", id="empty")],
)
def test_missing_key_variable_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, value: str | None, state: str
) -> None:
    if value is None:
        monkeypatch.delenv("ATLAS_TEST_LLM_KEY")
    else:
        monkeypatch.setenv("ATLAS_TEST_LLM_KEY", value)
    with pytest.raises(ConfigError) as caught:
        adapter("http://127.0.0.1:9")
    assert f"ATLAS_TEST_LLM_KEY, which is {state}: export ATLAS_TEST_LLM_KEY=" in str(caught.value)


def test_local_server_without_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with serve(chat_reply("4")) as server:
        complete(adapter(server.url, api_key_env=None))
    assert "authorization" not in server.received[0].headers


def test_litellm_uses_the_same_protocol() -> None:
    block = {"type": "litellm", "model": "claude", "api_key_env": None}
    with serve(chat_reply("4")) as server:
        config = parse_adapter_config({**block, "base_url": server.url}, where="teacher")
        llm = build_adapter(config)
        assert (llm.name, complete(llm).text) == ("litellm:claude", "4")
    assert server.received[0].path == "/chat/completions"


@pytest.mark.parametrize(
    ("block", "message"),
    [
        pytest.param(
            {"type": "litellm", "model": "m"}, "teacher.base_url: Field required", id="litellm-url"
        ),
        pytest.param(
            {"type": "openai", "model": ""},
            "teacher.model: String should have at least 1",
            id="model",
        ),
        pytest.param(
            {"type": "openai", "model": "m", "api_key": KEY}, "api_key is not allowed", id="api-key"
        ),
        pytest.param(
            {"type": "openai", "model": "m", "api_key_env": KEY},
            "the NAME of an environment variable",
            id="key-as-name",
        ),
    ],
)
def test_config_errors_never_show_the_key(block: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_adapter_config(block, where="teacher")
    assert KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        pytest.param({"choices": []}, "the reply has no choices", id="no-choices"),
        pytest.param(
            {"error": {"message": "quota"}},
            "the provider reported an error: quota",
            id="error-in-200",
        ),
        pytest.param(
            {"choices": [{"message": {"refusal": "no"}}]}, "the model refused: no", id="refusal"
        ),
        pytest.param(
            {"choices": [{"message": {"tool_calls": []}, "finish_reason": "tool_calls"}]},
            "no text content (finish_reason='tool_calls')",
            id="tool-calls",
        ),
    ],
)
def test_replies_without_text(reply: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_chat_completion(reply)


def test_content_parts_are_joined() -> None:
    parts = [{"type": "text", "text": "4"}, {"type": "text", "text": "2"}]
    assert parse_chat_completion({"choices": [{"message": {"content": parts}}]}) == "42"


def test_non_json_reply_is_an_adapter_error() -> None:
    with serve(Reply(200, "<html>gateway</html>")) as server, pytest.raises(AdapterError) as caught:
        complete(adapter(server.url))
    assert str(caught.value).endswith("/v1/chat/completions: it is not JSON.")
