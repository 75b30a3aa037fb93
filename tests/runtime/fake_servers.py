"""Real HTTP servers on 127.0.0.1 for the adapter tests, scripted reply by reply.

``serve(Reply(...), Reply(...))`` starts a threaded ``http.server`` on a free
port and answers the n-th request with the n-th reply (the last one repeats).
Every request is recorded. A reply can also hang until the server stops, or
drop the connection without answering. Leaving the ``with`` block releases
hanging handlers and stops the server; nothing waits on a clock.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from atlas.runtime.adapters import Adapter, Completion

MESSAGES: list[dict[str, str]] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is 2 + 2?"},
]

# How long a hanging handler may wait for the test to finish, so a broken test
# cannot leave a thread behind for ever.
_HANG_LIMIT_SECONDS = 10.0


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a status, headers and a JSON (or raw text) body."""

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    hang: bool = False
    drop: bool = False

    def encoded(self) -> bytes:
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass(frozen=True)
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FakeServer(ThreadingHTTPServer):
    """The server: ``url`` to call, ``received`` to inspect."""

    daemon_threads = True

    def __init__(self, replies: Sequence[Reply]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.replies = list(replies) or [Reply()]
        self.received: list[Received] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def next_reply(self, request: Received) -> Reply:
        with self._lock:
            self.received.append(request)
            return self.replies[min(len(self.received), len(self.replies)) - 1]


class _Handler(BaseHTTPRequestHandler):
    server: FakeServer
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = Received(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length),
        )
        reply = self.server.next_reply(request)
        self.close_connection = True
        if reply.drop:
            return  # the socket closes without a status line
        if reply.hang:
            self.server.stopping.wait(_HANG_LIMIT_SECONDS)
            return
        body = reply.encoded()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_PUT = do_PATCH = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean


@contextmanager
def serve(*replies: Reply) -> Iterator[FakeServer]:
    """Run a scripted server for the duration of the ``with`` block."""
    server = FakeServer(replies)
    # A short poll interval: shutdown() waits for the serving loop to look up.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join()


def chat_reply(content: str, **usage: int) -> Reply:
    """A chat-completions reply with one choice, as an OpenAI-compatible server sends it."""
    body = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
    }
    return Reply(body=body)


def complete(
    adapter: Adapter,
    messages: Sequence[Mapping[str, str]] = MESSAGES,
    metadata: Mapping[str, Any] | None = None,
) -> Completion:
    """Run one ``complete`` call in a fresh event loop and close the adapter in it."""

    async def call() -> Completion:
        try:
            return await adapter.complete(messages, metadata=metadata)
        finally:
            await adapter.aclose()

    return asyncio.run(call())


class RecordingSleep:
    """Stands in for ``asyncio.sleep`` between retries: records the delay, waits for nothing."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
