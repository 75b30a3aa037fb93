"""The ``python`` adapter: bring your own agent as a function or a class.

``import_path`` names the target as ``package.module:attribute`` (or
``package.module.attribute``). What gets called:

* a function, sync or async, is called as ``fn(prompt, metadata, **kwargs)``;
* a class is instantiated once as ``cls(**kwargs)`` when the adapter is built, and
  the first of these the instance has is called: ``__call__``, then ``complete``,
  then ``run``, then ``generate``;
* any other object (a module-level instance, say) is looked up the same way.

``prompt`` is the messages rendered by :func:`render_prompt`; a callable with a
single positional parameter gets the prompt alone, and one with a parameter
named ``messages`` also gets the messages. It may return a ``str``, a mapping
with ``"text"``, ``"output"`` or ``"content"`` (and optionally ``"usage"``), or
an object with a ``.text`` attribute. Sync callables run in a worker thread so a
slow agent never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from atlas.config.adapters import PythonAdapterConfig
from atlas.errors import ConfigError
from atlas.runtime.adapters.base import (
    AdapterError,
    Completion,
    one_line,
    parse_usage,
    render_prompt,
)

__all__ = ["ENTRY_POINTS", "PythonAdapter", "completion_parts", "load_target"]

ENTRY_POINTS: tuple[str, ...] = ("__call__", "complete", "run", "generate")
"""The names tried, in order, on a class instance (or other object) to find what to call."""

_TEXT_KEYS = ("text", "output", "content")


def load_target(import_path: str) -> Any:
    """Import the object ``import_path`` names (``package.module:attr`` or ``package.module.attr``).

    Raises :class:`ConfigError` naming the path when the module cannot be
    imported (the import's own error is chained) or has no such attribute.
    """
    if ":" in import_path:
        module_name, _, attributes = import_path.partition(":")
    else:
        module_name, _, attributes = import_path.rpartition(".")
    if not module_name or not attributes:
        raise ConfigError(
            f"Python adapter import path {import_path!r} must look like 'package.module:attribute'."
        )
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        # Not only ImportError: the user's module may fail while it is imported.
        raise ConfigError(
            f"Python adapter import path {import_path!r}: importing {module_name!r} failed with "
            f"{type(exc).__name__}: {one_line(str(exc))}. Check that the module is installed "
            "and on sys.path."
        ) from exc
    for attribute in attributes.split("."):
        try:
            target = getattr(target, attribute)
        except AttributeError:
            raise ConfigError(
                f"Python adapter import path {import_path!r}: {module_name!r} has no attribute "
                f"{attributes!r}; check the name after the colon."
            ) from None
    return target


def completion_parts(result: Any) -> tuple[str, dict[str, int], Any]:
    """Split what an agent returned into ``(text, usage, raw)``.

    Raises :class:`ValueError` saying what was returned when it is none of a
    ``str``, a mapping with a text key, or an object with a ``.text`` string.
    """
    if isinstance(result, str):
        return result, {}, None
    if isinstance(result, Mapping):
        for key in _TEXT_KEYS:
            value = result.get(key)
            if isinstance(value, str):
                raw = dict(result) if _is_json(result) else None
                return value, parse_usage(result.get("usage")), raw
        keys = ", ".join(map(str, result)) or "none"
        raise ValueError(
            f"returned a mapping without a string 'text', 'output' or 'content' (keys: {keys})"
        )
    text = getattr(result, "text", None)
    if isinstance(text, str):
        return text, parse_usage(getattr(result, "usage", None)), None
    raise ValueError(
        f"returned {type(result).__name__}; return a str, a dict with 'text', 'output' "
        "or 'content', or an object with a .text attribute"
    )


class PythonAdapter:
    """Calls a Python function or class in this process (see the module docstring).

    Building it imports the target and, for a class, creates the instance:
    :class:`ConfigError` when the path is wrong, the class cannot be created or
    the callable cannot take ``(prompt, metadata)``. :meth:`complete` raises
    :class:`AdapterError` naming the import path when the agent raises or
    returns something unusable; the agent's exception is chained.
    """

    def __init__(self, config: PythonAdapterConfig) -> None:
        self.config = config
        self.name = f"python:{config.import_path}"
        target = load_target(config.import_path)
        self._call_kwargs: dict[str, Any] = dict(config.kwargs)
        self._instance: Any = None
        if inspect.isclass(target):
            self._instance = self._instantiate(target)
            self._call_kwargs = {}
            target = self._instance
        self._function = self._entry_point(target)
        self._positional, self._wants_messages = self._call_shape(self._function)
        self._is_async = _is_coroutine_function(self._function)

    async def complete(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> Completion:
        """Call the agent with the rendered prompt and return its answer."""
        started = time.perf_counter()
        message_list = [dict(m) for m in messages]
        args = (render_prompt(message_list), dict(metadata or {}))[: self._positional]
        kwargs = dict(self._call_kwargs)
        if self._wants_messages:
            kwargs["messages"] = message_list
        try:
            if self._is_async:
                result = self._function(*args, **kwargs)
            else:
                result = await asyncio.to_thread(self._function, *args, **kwargs)
            if inspect.isawaitable(result):
                # Also covers sync-looking callables (decorated, partial) that return coroutines.
                result = await result
        except Exception as exc:
            raise AdapterError(
                f"Python adapter {self.config.import_path} raised "
                f"{type(exc).__name__}: {one_line(str(exc))}",
                adapter=self.name,
            ) from exc
        try:
            text, usage, raw = completion_parts(result)
        except ValueError as exc:
            raise AdapterError(
                f"Python adapter {self.config.import_path} {exc}.", adapter=self.name
            ) from None
        latency_ms = (time.perf_counter() - started) * 1000
        return Completion(text=text, usage=usage, raw=raw, latency_ms=latency_ms)

    async def aclose(self) -> None:
        """Close the instance this adapter created, if it has ``aclose()`` or ``close()``."""
        for method_name in ("aclose", "close"):
            method = getattr(self._instance, method_name, None)
            if callable(method):
                outcome = method()
                if inspect.isawaitable(outcome):
                    await outcome
                return

    def _instantiate(self, cls: type[Any]) -> Any:
        try:
            return cls(**self.config.kwargs)
        except Exception as exc:
            raise ConfigError(
                f"Python adapter {self.config.import_path}: creating the instance failed with "
                f"{type(exc).__name__}: {one_line(str(exc))}; check kwargs."
            ) from exc

    def _entry_point(self, target: Any) -> Callable[..., Any]:
        for method_name in ENTRY_POINTS:
            if method_name == "__call__":
                if callable(target):
                    return target  # type: ignore[no-any-return]
                continue
            method = getattr(target, method_name, None)
            if callable(method):
                return method  # type: ignore[no-any-return]
        raise ConfigError(
            f"Python adapter {self.config.import_path} points at an object of type "
            f"{type(target).__name__} with nothing to call: give a function, or a class "
            f"with one of {', '.join(ENTRY_POINTS)}."
        )

    def _call_shape(self, function: Callable[..., Any]) -> tuple[int, bool]:
        """How many positionals to pass (1 or 2) and whether to pass ``messages=``."""
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):
            return 2, False  # builtins without a signature: assume the documented call
        parameters = signature.parameters
        wants_messages = "messages" in parameters and parameters["messages"].kind in (
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            inspect.Parameter.KEYWORD_ONLY,
        )
        positional = [
            p
            for p in parameters.values()
            if p.name != "messages"
            and p.kind
            in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        ]
        variadic = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters.values())
        count = 2 if variadic or len(positional) >= 2 else len(positional)
        # Bind placeholders now so that a callable with the wrong shape fails when
        # the adapter is built, not in the middle of a session.
        probe_kwargs = dict(self._call_kwargs)
        if wants_messages:
            probe_kwargs["messages"] = []
        try:
            if count == 0:
                raise TypeError("takes no positional argument")
            signature.bind(*("", {})[:count], **probe_kwargs)
        except TypeError as exc:
            raise ConfigError(
                f"Python adapter {self.config.import_path} cannot be called as "
                f"(prompt, metadata): {exc}; accept those two arguments."
            ) from None
        return count, wants_messages


def _is_coroutine_function(function: Any) -> bool:
    # An instance with ``async def __call__`` is not itself a coroutine function.
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        getattr(function, "__call__", None)  # noqa: B004 - the method itself is inspected
    )


def _is_json(value: Any) -> bool:
    """Whether ``value`` is made only of JSON types, so telemetry can store it as is."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_json(item) for item in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False
