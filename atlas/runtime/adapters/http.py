"""The ``http_api`` adapter, and the retrying HTTP client it shares with the OpenAI adapter.

The pure parts come first and do no I/O: payload templating, finding the
answer in a reply, retry delays, ``Retry-After`` and error excerpts. The I/O
is one class, :class:`RetryingClient`, over an ``httpx.AsyncClient``.

Retries: a reply whose status is in ``retry_on`` (429 and 5xx by default), a
connection error and a timeout are retried up to ``max_retries`` times, after
``Retry-After`` when the server sends it, otherwise after an exponential
backoff (``retry_backoff_seconds`` × 2^n); both waits are capped at
:data:`MAX_RETRY_DELAY_SECONDS`.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from atlas.config.adapters import HTTPAdapterConfig
from atlas.errors import ConfigError
from atlas.runtime.adapters.base import (
    AdapterError,
    Completion,
    one_line,
    parse_usage,
    render_prompt,
)

__all__ = [
    "DEFAULT_PAYLOAD",
    "MAX_RETRY_DELAY_SECONDS",
    "HTTPAdapter",
    "RetryingClient",
    "Sleep",
    "api_key_from_env",
    "display_url",
    "error_excerpt",
    "extract_result",
    "mask_secret",
    "parse_retry_after",
    "render_payload",
    "retry_delay",
]

MAX_RETRY_DELAY_SECONDS = 30.0
"""No wait between two tries is longer than this, whatever ``Retry-After`` asks for."""

DEFAULT_PAYLOAD: Mapping[str, str] = {
    "prompt": "{prompt}",
    "messages": "{messages}",
    "metadata": "{metadata}",
}
"""What ``http_api`` sends when the config has no ``payload`` template."""

Sleep = Callable[[float], Awaitable[None]]

# Worth another try: the network or the server hiccuped. Other transport errors
# (a malformed URL, a proxy refusing us) would fail the same way again.
_TRANSIENT = (
    asyncio.TimeoutError,
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)

_PLACEHOLDER = re.compile(r"\{(prompt|messages|metadata)\}")
_EXCERPT_CHARS = 200


# -- pure parts ------------------------------------------------------------------------------


def render_payload(
    template: Any, prompt: str, messages: list[dict[str, str]], metadata: dict[str, Any]
) -> Any:
    """Fill a JSON template: ``"{prompt}"``, ``"{messages}"`` and ``"{metadata}"`` become values.

    A string that is exactly a placeholder becomes the value itself (a list for
    messages, an object for metadata); a placeholder inside a longer string is
    replaced by the value's text (JSON for messages and metadata). Keys are
    left alone; lists and objects are filled recursively.
    """
    values: dict[str, Any] = {"prompt": prompt, "messages": messages, "metadata": metadata}
    if isinstance(template, str):
        whole = _PLACEHOLDER.fullmatch(template)
        if whole:
            return values[whole.group(1)]
        return _PLACEHOLDER.sub(lambda m: _as_text(values[m.group(1)]), template)
    if isinstance(template, Mapping):
        return {k: render_payload(v, prompt, messages, metadata) for k, v in template.items()}
    if isinstance(template, (list, tuple)):
        return [render_payload(v, prompt, messages, metadata) for v in template]
    return template


def extract_result(body: Any, path: str | None) -> str:
    """The answer in a reply: the value at dotted ``path``, or by default the body or its text key.

    Without a path the body itself is the answer when it is a string, else its
    ``"output"`` or ``"text"`` key. Numbers in the path index lists
    (``choices.0.message.content``). A non-string value is returned as JSON.
    Raises :class:`LookupError` describing where the path stopped.
    """
    if path is None:
        if isinstance(body, str):
            return body
        if isinstance(body, Mapping):
            for key in ("output", "text"):
                if body.get(key) is not None:
                    return _as_text(body[key])
        raise LookupError(
            f"the reply has no 'output' or 'text' ({_shape(body)}); set result_path to the answer"
        )
    node = body
    for depth, segment in enumerate(path.split(".")):
        if isinstance(node, Mapping) and segment in node:
            node = node[segment]
        elif isinstance(node, list) and _is_index(segment, len(node)):
            node = node[int(segment)]
        else:
            where = ".".join(path.split(".")[:depth]) or "the top level"
            raise LookupError(
                f"the reply has no {path!r}: {segment!r} is missing at {where} ({_shape(node)})"
            )
    if node is None:
        raise LookupError(f"the reply's {path!r} is null")
    return _as_text(node)


def retry_delay(
    failures: int,
    backoff: float,
    retry_after: float | None = None,
    cap: float = MAX_RETRY_DELAY_SECONDS,
) -> float:
    """Seconds to wait after the ``failures``-th failed try (1-based).

    ``retry_after`` (from the server) wins over the exponential backoff
    ``backoff × 2^(failures-1)``; either is capped at ``cap``.
    """
    if retry_after is not None:
        return min(max(retry_after, 0.0), cap)
    return float(min(backoff * 2 ** (failures - 1), cap))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header: delay-seconds or an HTTP date.

    Fractional seconds are accepted too. Returns ``None`` for a missing or
    unreadable header; a date in the past gives ``0.0``.
    """
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)  # HTTP dates are GMT
    return max((when - (now or datetime.now(timezone.utc))).total_seconds(), 0.0)


def error_excerpt(body: str) -> str:
    """A short, one-line account of an error reply: the provider's message when it has one.

    Understands ``{"error": {"message": ...}}`` (OpenAI), ``{"error": "..."}``,
    ``{"detail": ...}`` and ``{"message": ...}``; otherwise the start of the body.
    """
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, Mapping):
        error = data.get("error")
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return one_line(error["message"], _EXCERPT_CHARS)
        for candidate in (error, data.get("detail"), data.get("message")):
            if isinstance(candidate, str) and candidate.strip():
                return one_line(candidate, _EXCERPT_CHARS)
    return one_line(body, _EXCERPT_CHARS) or "(empty body)"


def mask_secret(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced by ``***``."""
    return text.replace(secret, "***") if secret else text


def display_url(url: str) -> str:
    """``url`` without user info, query or fragment, which may carry tokens."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def api_key_from_env(variable: str, adapter: str) -> str:
    """The API key held by environment variable ``variable``.

    Raises :class:`ConfigError` saying which variable to export when it is
    unset or empty.
    """
    value = os.environ.get(variable, "").strip()
    if not value:
        state = "empty" if variable in os.environ else "not set"
        raise ConfigError(
            f"The {adapter} adapter reads its API key from the environment variable "
            f"{variable}, which is {state}: export {variable}=<your key>, or set api_key_env "
            "to the variable that holds it (null for a server that needs no key)."
        )
    return value


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _is_index(segment: str, length: int) -> bool:
    return segment.lstrip("-").isdigit() and -length <= int(segment) < length


def _shape(node: Any) -> str:
    if isinstance(node, Mapping):
        keys = ", ".join(map(str, list(node)[:10])) or "none"
        return f"keys: {keys}"
    if isinstance(node, list):
        return f"a list of {len(node)}"
    return f"found {type(node).__name__}"


# -- I/O -------------------------------------------------------------------------------------


class RetryingClient:
    """Sends HTTP requests with retries on transient failures (see the module docstring).

    :meth:`send` returns the final reply, whatever its status, with the number
    of tries; it raises :class:`AdapterError` only when no reply came (connection
    errors, timeouts) after the last try. ``timeout`` bounds each try as a whole.
    ``secret`` is masked out of every message. ``sleep`` waits between tries
    (tests pass a recorder).
    """

    def __init__(
        self,
        adapter: str,
        *,
        timeout: float,
        max_retries: int,
        backoff: float,
        retry_on: Collection[int],
        secret: str | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.adapter = adapter
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.retry_on = frozenset(retry_on)
        self._secret = secret
        self._sleep = sleep
        self._http: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def for_adapter(
        cls, adapter: str, config: Any, *, secret: str | None, sleep: Sleep = asyncio.sleep
    ) -> RetryingClient:
        """A client with an adapter block's timeout and retry settings (http_api, openai)."""
        return cls(
            adapter,
            timeout=config.timeout_seconds,
            max_retries=config.max_retries,
            backoff=config.retry_backoff_seconds,
            retry_on=config.retry_on,
            secret=secret,
            sleep=sleep,
        )

    async def send(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes
    ) -> tuple[httpx.Response, int]:
        """Send until a final reply arrives; return it and how many tries it took."""
        failures = 0
        while True:
            try:
                response = await asyncio.wait_for(
                    self._client().request(method, url, headers=headers, content=body),
                    self.timeout,
                )
            except (httpx.TransportError, asyncio.TimeoutError) as exc:
                if failures >= self.max_retries or not isinstance(exc, _TRANSIENT):
                    raise self._transport_error(exc, url, failures + 1) from exc
                delay = retry_delay(failures + 1, self.backoff)
            else:
                if response.status_code not in self.retry_on or failures >= self.max_retries:
                    return response, failures + 1
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                delay = retry_delay(failures + 1, self.backoff, retry_after)
            failures += 1
            await self._sleep(delay)

    def status_error(self, response: httpx.Response, attempts: int, hint: str = "") -> AdapterError:
        """The error for a final non-2xx ``response``, with the provider's message masked."""
        tries = f" after {attempts} tries" if attempts > 1 else ""
        excerpt = mask_secret(error_excerpt(response.text), self._secret)
        where = display_url(str(response.request.url))
        sentences = [
            f"The {self.adapter} adapter got HTTP {response.status_code}{tries} from {where}: "
            + excerpt,
            hint,
        ]
        return AdapterError(
            ". ".join(s.rstrip(".") for s in sentences if s) + ".",
            adapter=self.adapter,
            status=response.status_code,
            attempts=attempts,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._http is not None:
            client, self._http = self._http, None
            await client.aclose()

    def _client(self) -> httpx.AsyncClient:
        # An httpx client's connections belong to the event loop that opened them:
        # a caller that runs each session in a new loop (asyncio.run) gets a new pool.
        loop = asyncio.get_running_loop()
        if self._http is None or self._loop is not loop:
            self._http = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
            self._loop = loop
        return self._http

    def _transport_error(self, exc: Exception, url: str, attempts: int) -> AdapterError:
        if isinstance(exc, (asyncio.TimeoutError, httpx.TimeoutException)):
            problem = f"timed out after {self.timeout:g} s"
        elif isinstance(exc, httpx.ConnectError):
            problem = f"could not connect ({one_line(str(exc))}): is the server running there?"
        else:
            problem = f"failed: {type(exc).__name__}: {one_line(str(exc)) or 'no details'}"
        tries = f" after {attempts} tries" if attempts > 1 else ""
        return AdapterError(
            mask_secret(
                f"The {self.adapter} adapter's request to {display_url(url)}{tries} {problem}"
                + ("" if problem.endswith("?") else "."),
                self._secret,
            ),
            adapter=self.adapter,
            attempts=attempts,
        )


class HTTPAdapter:
    """Sends the prompt as JSON to an HTTP endpoint and reads the answer from the reply.

    The payload is ``config.payload`` filled by :func:`render_payload` (default
    :data:`DEFAULT_PAYLOAD`); the answer is found by :func:`extract_result`, and
    token counts are read from a top-level ``"usage"`` object when present.
    Building raises :class:`ConfigError` when ``api_key_env`` names an unset
    variable; :meth:`complete` raises :class:`AdapterError` for a failed request,
    an error status (after retries) or a reply without the answer.
    """

    def __init__(self, config: HTTPAdapterConfig, *, sleep: Sleep = asyncio.sleep) -> None:
        self.config = config
        self.name = f"http_api:{display_url(config.endpoint)}"
        key = api_key_from_env(config.api_key_env, self.name) if config.api_key_env else None
        self._headers = {"Accept": "application/json", **config.headers}
        self._headers["Content-Type"] = "application/json"
        if key is not None:
            bearer = config.api_key_header.lower() == "authorization"
            self._headers[config.api_key_header] = f"Bearer {key}" if bearer else key
        self._client = RetryingClient.for_adapter(self.name, config, secret=key, sleep=sleep)

    async def complete(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> Completion:
        """POST the filled payload and return the answer found in the reply."""
        started = time.perf_counter()
        message_list = [dict(m) for m in messages]
        template = DEFAULT_PAYLOAD if self.config.payload is None else self.config.payload
        payload = render_payload(
            template, render_prompt(message_list), message_list, dict(metadata or {})
        )
        # default=str: metadata may carry datetimes or UUIDs, which json cannot encode.
        body = json.dumps(payload, default=str).encode()
        response, attempts = await self._client.send(
            self.config.method, self.config.endpoint, headers=self._headers, body=body
        )
        if not response.is_success:
            raise self._client.status_error(response, attempts)
        reply: Any
        try:
            reply = response.json()
        except ValueError:
            reply = response.text  # a plain-text answer
        try:
            text = extract_result(reply, self.config.result_path)
        except LookupError as exc:
            raise AdapterError(
                f"The {self.name} adapter got a reply it could not read: {exc}.",
                adapter=self.name,
                status=response.status_code,
                attempts=attempts,
            ) from None
        usage = parse_usage(reply.get("usage")) if isinstance(reply, Mapping) else {}
        latency_ms = (time.perf_counter() - started) * 1000
        return Completion(
            text=text, usage=usage, raw=reply, latency_ms=latency_ms, attempts=attempts
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
