"""A whole session over the OpenAI chat-completions protocol, against a real local server.

The server answers like a small model would: it reads what each role was
asked (plan, review, step, validation, verdict, answer, playbook) and replies
in kind, so Student, Teacher and judges all go through the openai adapter.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from atlas import core
from atlas.config import config_from_mapping
from atlas.training_data import get_session_by_id

KEY = "sk-test-0123456789"


def _answer(messages: list[dict[str, str]]) -> str:
    system, user = messages[0]["content"], messages[-1]["content"]
    if "reward judge" in system:
        return 'Verdict: {"score": 0.8, "rationale": "covers the task"}'
    if '"steps": [{"id": 1' in user:
        return json.dumps({"steps": [
            {"id": 1, "description": "look up the facts", "tool": "search",
             "tool_params": {"q": "facts"}, "depends_on": []},
            {"id": 2, "description": "write it up", "depends_on": [1]},
        ]})  # fmt: skip
    if "Proposed plan:" in user:
        return '{"approved": true, "notes": "fine"}'
    if '"valid": true|false' in user:
        return '{"valid": true, "rationale": "ok"}'
    if "student_learning" in user:
        return '{"student_learning": "check facts", "teacher_learning": "ask for sources"}'
    if "Final answer:" in user:
        return "The answer, from the model."
    return "Step done by the model."


class _Model(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, self.headers.get("Authorization"), body))  # type: ignore[attr-defined]
        text = _answer(body["messages"])
        reply = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }  # fmt: skip
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def model_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Model)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _openai(server: ThreadingHTTPServer, model: str) -> dict[str, Any]:
    host, port = server.server_address[:2]
    return {"type": "openai", "model": model, "base_url": f"http://{host}:{port}/v1",
            "api_key_env": "ATLAS_TEST_MODEL_KEY", "max_retries": 0}  # fmt: skip


def test_a_session_through_the_openai_protocol(db_url, model_server, monkeypatch):
    monkeypatch.setenv("ATLAS_TEST_MODEL_KEY", KEY)
    config = config_from_mapping({
        "agent": _openai(model_server, "student-model"),
        "teacher": _openai(model_server, "teacher-model"),
        "rim": {"judges": [{"identifier": "process",
                            "adapter": _openai(model_server, "judge-model")}]},
        "orchestration": {"mode": "coach"},
    })  # fmt: skip
    result = core.run("Explain the outage", config=config, database_url=db_url)
    assert result.status == "succeeded", result.error
    assert result.final_answer == "The answer, from the model."
    trace = get_session_by_id(result.session_id, db_url)
    assert [s.description for s in trace.steps] == ["look up the facts", "write it up"]
    assert trace.session_reward["score"] == 0.8
    assert trace.steps[0].reward.judges[0].rationale == "covers the task"
    assert trace.session_metadata["token_usage"]["total_tokens"] > 0
    requests = model_server.requests  # type: ignore[attr-defined]
    assert {path for path, _, _ in requests} == {"/v1/chat/completions"}
    assert {auth for _, auth, _ in requests} == {f"Bearer {KEY}"}
    models = {body["model"] for _, _, body in requests}
    assert models == {"student-model", "teacher-model", "judge-model"}
    assert KEY not in json.dumps(trace.to_dict())
