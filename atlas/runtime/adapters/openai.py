"""The ``openai`` and ``litellm`` adapters: any OpenAI-compatible chat-completions endpoint.

One request per call: ``POST {base_url}/chat/completions`` with the model, the
messages, ``temperature``, ``max_tokens`` when set and ``extra_body`` merged
in last, and ``Authorization: Bearer <key>`` with the key read from the
environment variable ``api_key_env`` names. Retries follow
:class:`~atlas.runtime.adapters.http.RetryingClient`. ``metadata`` is not sent:
the chat-completions API has no place for it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from atlas.config.adapters import LiteLLMAdapterConfig, OpenAIAdapterConfig
from atlas.runtime.adapters.base import AdapterError, Completion, one_line, parse_usage
from atlas.runtime.adapters.http import RetryingClient, Sleep, api_key_from_env, mask_secret

__all__ = ["OpenAIAdapter", "chat_request_body", "parse_chat_completion"]


def chat_request_body(
    config: OpenAIAdapterConfig | LiteLLMAdapterConfig, messages: Sequence[Mapping[str, str]]
) -> dict[str, Any]:
    """The JSON body of a chat-completions request for ``messages``."""
    body: dict[str, Any] = {
        "model": config.model,
        "messages": [dict(m) for m in messages],
        "temperature": config.temperature,
    }
    if config.max_tokens is not None:
        body["max_tokens"] = config.max_tokens
    # Last, so that a provider-specific option can override a default above.
    body.update(config.extra_body)
    return body


def parse_chat_completion(reply: Any) -> str:
    """The text of the first choice of a chat-completions reply.

    Content given as a list of parts is joined. Raises :class:`ValueError`
    describing the reply when it holds no text (an error object, a refusal,
    tool calls only).
    """
    if not isinstance(reply, Mapping):
        raise ValueError(f"the reply is a JSON {type(reply).__name__}, not an object")
    choices = reply.get("choices")
    if not isinstance(choices, list) or not choices:
        error = reply.get("error")
        if isinstance(error, Mapping) and error.get("message"):
            raise ValueError(f"the provider reported an error: {one_line(str(error['message']))}")
        raise ValueError("the reply has no choices")
    first = choices[0] if isinstance(choices[0], Mapping) else {}
    message = first.get("message")
    content = message.get("content") if isinstance(message, Mapping) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, Mapping)]
        return "".join(p for p in parts if isinstance(p, str))
    if isinstance(message, Mapping) and message.get("refusal"):
        raise ValueError(f"the model refused: {one_line(str(message['refusal']))}")
    raise ValueError(
        f"the first choice has no text content (finish_reason={first.get('finish_reason')!r})"
    )


class OpenAIAdapter:
    """Calls a chat model over the OpenAI chat-completions protocol (``openai`` and ``litellm``).

    Building raises :class:`ConfigError` naming the variable to export when
    ``api_key_env`` is set but the variable is unset or empty. :meth:`complete`
    raises :class:`AdapterError` carrying the provider's own error message
    (e.g. for 401 or 400), with the key masked, or when the reply has no text.
    """

    def __init__(
        self,
        config: OpenAIAdapterConfig | LiteLLMAdapterConfig,
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.config = config
        self.name = f"{config.type}:{config.model}"
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        key = None
        if config.api_key_env is not None:
            key = api_key_from_env(config.api_key_env, self.name)
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if key is not None:
            self._headers["Authorization"] = f"Bearer {key}"
        self._key = key
        self._client = RetryingClient.for_adapter(self.name, config, secret=key, sleep=sleep)

    async def complete(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> Completion:
        """Ask the model to answer ``messages``; ``metadata`` is accepted and not sent."""
        started = time.perf_counter()
        body = json.dumps(chat_request_body(self.config, messages)).encode()
        response, attempts = await self._client.send(
            "POST", self.url, headers=self._headers, body=body
        )
        if not response.is_success:
            raise self._client.status_error(response, attempts, self._hint(response.status_code))
        try:
            reply = response.json()
            text = parse_chat_completion(reply)
        except ValueError as exc:
            detail = str(exc) if not isinstance(exc, json.JSONDecodeError) else "it is not JSON"
            raise AdapterError(
                mask_secret(
                    f"The {self.name} adapter got a reply it could not read from {self.url}: "
                    f"{detail}.",
                    self._key,
                ),
                adapter=self.name,
                status=response.status_code,
                attempts=attempts,
            ) from None
        latency_ms = (time.perf_counter() - started) * 1000
        return Completion(
            text=text,
            usage=parse_usage(reply.get("usage")),
            raw=reply,
            latency_ms=latency_ms,
            attempts=attempts,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    def _hint(self, status: int) -> str:
        if status in (401, 403):
            if self.config.api_key_env is None:
                return "The server wants an API key: set api_key_env to the variable holding it"
            return f"Check that {self.config.api_key_env} holds a valid key for this server"
        if status == 404:
            return "Check base_url and the model name"
        return ""
