"""The python adapter: functions and classes, sync and async, what they return and raise.

The agents are defined in this module and imported by ``__name__``, as a user's
own module would be imported by its path.
"""

from __future__ import annotations

import asyncio
import re
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from fake_servers import MESSAGES, complete

import atlas.runtime.adapters
from atlas.config.adapters import PythonAdapterConfig, parse_adapter_config
from atlas.errors import ConfigError
from atlas.runtime.adapters import (
    AdapterError,
    Completion,
    PythonAdapter,
    build_adapter,
    render_prompt,
)

PROMPT = "You are terse.\n\nWhat is 2 + 2?"


def adapter_for(attribute: str, **kwargs: Any) -> PythonAdapter:
    config = PythonAdapterConfig(
        type="python", import_path=f"{__name__}:{attribute}", kwargs=kwargs
    )
    return PythonAdapter(config)


# -- agents ----------------------------------------------------------------------------------


def echo(prompt: str, metadata: dict[str, Any]) -> str:
    return f"{prompt}|{sorted(metadata.items())}"


async def async_echo(prompt: str, metadata: dict[str, Any]) -> str:
    await asyncio.sleep(0)
    return f"async:{prompt}"


def prompt_only(prompt: str) -> str:
    return prompt.upper()


def with_messages(prompt: str, metadata: dict[str, Any], *, messages: list[dict[str, str]]) -> str:
    return ",".join(m["role"] for m in messages)


def with_kwargs(prompt: str, metadata: dict[str, Any], *, suffix: str) -> str:
    return prompt[-6:] + suffix


def returns(prompt: str, metadata: dict[str, Any]) -> Any:
    return metadata["value"]


def broken(prompt: str, metadata: dict[str, Any]) -> str:
    raise RuntimeError("the model\nexploded")


def no_arguments() -> str:
    return "never called"


def off_loop(prompt: str, metadata: dict[str, Any]) -> str:
    """Waits for a coroutine to run: it can only run if this call is off the event loop."""
    released = metadata["released"].wait(5)
    return "ran in a thread" if released else "blocked the loop"


class CallableAgent:
    def __init__(self, greeting: str = "hi") -> None:
        self.greeting = greeting

    def __call__(self, prompt: str, metadata: dict[str, Any]) -> str:
        return f"{self.greeting} from __call__"

    def complete(self, prompt: str, metadata: dict[str, Any]) -> str:
        return "complete should lose to __call__"


class CompleteAgent:
    def complete(self, prompt: str, metadata: dict[str, Any]) -> str:
        return "from complete"

    def run(self, prompt: str, metadata: dict[str, Any]) -> str:
        return "run should lose to complete"


class RunAgent:
    async def run(self, prompt: str, metadata: dict[str, Any]) -> str:
        return "from async run"


class GenerateAgent:
    def generate(self, prompt: str, metadata: dict[str, Any]) -> str:
        return "from generate"


class CountingAgent:
    instances = 0

    def __init__(self) -> None:
        CountingAgent.instances += 1

    def __call__(self, prompt: str, metadata: dict[str, Any]) -> str:
        return str(CountingAgent.instances)


class ClosingAgent:
    closed = False

    def __call__(self, prompt: str, metadata: dict[str, Any]) -> str:
        return "ok"

    async def aclose(self) -> None:
        ClosingAgent.closed = True


class FailingInit:
    def __init__(self) -> None:
        raise ValueError("missing model weights")


class NoEntryPoint:
    pass


NOT_CALLABLE = 42


# -- tests -----------------------------------------------------------------------------------


def test_sync_function_gets_rendered_prompt_and_metadata() -> None:
    completion = complete(adapter_for("echo"), metadata={"task": "t1"})
    assert completion.text == f"{PROMPT}|[('task', 't1')]"
    assert completion.attempts == 1


def test_async_function_is_awaited() -> None:
    assert complete(adapter_for("async_echo")).text == f"async:{PROMPT}"


def test_sync_function_runs_off_the_event_loop() -> None:
    released = threading.Event()

    async def scenario() -> str:
        adapter = adapter_for("off_loop")
        call = asyncio.ensure_future(adapter.complete(MESSAGES, metadata={"released": released}))
        await asyncio.sleep(0)  # yield once so the call starts; this coroutine then runs beside it
        released.set()
        completion: Completion = await call
        return completion.text

    assert asyncio.run(scenario()) == "ran in a thread"


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        pytest.param("CallableAgent", "hello from __call__", id="__call__-first"),
        pytest.param("CompleteAgent", "from complete", id="complete-before-run"),
        pytest.param("RunAgent", "from async run", id="async-run"),
        pytest.param("GenerateAgent", "from generate", id="generate"),
    ],
)
def test_class_entry_point_lookup_order(attribute: str, expected: str) -> None:
    kwargs = {"greeting": "hello"} if attribute == "CallableAgent" else {}
    assert complete(adapter_for(attribute, **kwargs)).text == expected


def test_class_is_instantiated_once() -> None:
    CountingAgent.instances = 0
    adapter = adapter_for("CountingAgent")
    texts = [complete(adapter).text for _ in range(3)]
    assert (CountingAgent.instances, texts) == (1, ["1", "1", "1"])


def test_aclose_closes_the_instance_it_created() -> None:
    ClosingAgent.closed = False
    complete(adapter_for("ClosingAgent"))
    assert ClosingAgent.closed


@pytest.mark.parametrize(
    ("attribute", "kwargs", "expected"),
    [
        pytest.param("prompt_only", {}, PROMPT.upper(), id="prompt-only"),
        pytest.param("with_messages", {}, "system,user", id="messages-keyword"),
        pytest.param("with_kwargs", {"suffix": "!"}, "2 + 2?!", id="config-kwargs"),
    ],
)
def test_call_shapes(attribute: str, kwargs: dict[str, Any], expected: str) -> None:
    assert complete(adapter_for(attribute, **kwargs)).text == expected


@pytest.mark.parametrize(
    ("value", "text", "usage"),
    [
        pytest.param("plain", "plain", {}, id="str"),
        pytest.param(
            {"text": "t", "usage": {"total_tokens": 7}}, "t", {"total_tokens": 7}, id="text"
        ),
        pytest.param({"output": "o"}, "o", {}, id="output"),
        pytest.param({"content": "c", "text": None}, "c", {}, id="content"),
        pytest.param(
            SimpleNamespace(text="obj", usage={"prompt_tokens": 3}),
            "obj",
            {"prompt_tokens": 3},
            id="object",
        ),
    ],
)
def test_return_shapes(value: Any, text: str, usage: dict[str, int]) -> None:
    completion = complete(adapter_for("returns"), metadata={"value": value})
    assert (completion.text, completion.usage) == (text, usage)


def test_json_dict_return_is_kept_as_raw() -> None:
    value = {"output": "o", "trace": [1, 2]}
    assert complete(adapter_for("returns"), metadata={"value": value}).raw == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(42, "returned int; return a str", id="int"),
        pytest.param(
            {"answer": "x"},
            "without a string 'text', 'output' or 'content' (keys: answer)",
            id="dict",
        ),
    ],
)
def test_unusable_return_is_an_adapter_error(value: Any, message: str) -> None:
    with pytest.raises(AdapterError, match=re.escape(message)):
        complete(adapter_for("returns"), metadata={"value": value})


def test_exception_is_wrapped_naming_the_import_path() -> None:
    with pytest.raises(AdapterError) as caught:
        complete(adapter_for("broken"))
    assert str(caught.value) == (
        f"Python adapter {__name__}:broken raised RuntimeError: the model exploded"
    )
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert caught.value.adapter == f"python:{__name__}:broken"


def test_dotted_import_path_is_accepted() -> None:
    config = PythonAdapterConfig(type="python", import_path=f"{__name__}.prompt_only")
    assert complete(build_adapter(config)).text == PROMPT.upper()


@pytest.mark.parametrize(
    ("import_path", "message"),
    [
        pytest.param(
            "no_such_module_xyz:agent",
            "importing 'no_such_module_xyz' failed with ModuleNotFoundError",
            id="module",
        ),
        pytest.param(f"{__name__}:missing", "has no attribute 'missing'", id="attribute"),
        pytest.param(
            f"{__name__}:NOT_CALLABLE",
            "an object of type int with nothing to call",
            id="not-callable",
        ),
        pytest.param(
            f"{__name__}:NoEntryPoint",
            "one of __call__, complete, run, generate",
            id="no-entry-point",
        ),
        pytest.param(
            f"{__name__}:FailingInit",
            "creating the instance failed with ValueError: missing model weights",
            id="init-fails",
        ),
        pytest.param(
            f"{__name__}:no_arguments", "cannot be called as (prompt, metadata)", id="signature"
        ),
    ],
)
def test_bad_targets_are_config_errors(import_path: str, message: str) -> None:
    config = PythonAdapterConfig(type="python", import_path=import_path)
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        build_adapter(config)
    assert import_path in str(caught.value)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        pytest.param(
            {"type": "python", "import_path": "no colon"},
            "agent: import_path must look like",
            id="shape",
        ),
        pytest.param({"type": "python"}, "agent.import_path: Field required", id="missing"),
        pytest.param(
            {"type": "python", "import_path": "m:f", "kwarg": 1},
            "agent.kwarg: unknown key",
            id="extra",
        ),
        pytest.param(
            {"type": "pyton", "import_path": "m:f"},
            "agent.type: unknown; use one of python, http_api",
            id="type",
        ),
        pytest.param({"import_path": "m:f"}, "agent.type: missing", id="no-type"),
    ],
)
def test_config_errors_name_the_key(block: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_adapter_config(block)


@pytest.mark.parametrize(
    ("messages", "prompt"),
    [
        pytest.param(MESSAGES, PROMPT, id="system-then-user"),
        pytest.param([{"role": "user", "content": "hi"}], "hi", id="user-only"),
        pytest.param(
            [{"role": "system", "content": ""}, {"role": "user", "content": "hi"}],
            "hi",
            id="empty-system",
        ),
    ],
)
def test_render_prompt(messages: list[dict[str, str]], prompt: str) -> None:
    assert render_prompt(messages) == prompt


def test_all_is_sorted_and_resolvable() -> None:
    names = atlas.runtime.adapters.__all__
    assert names == sorted(names, key=lambda n: (0 if n[0].isupper() else 1, n))
    assert all(hasattr(atlas.runtime.adapters, name) for name in names)
