"""Adapters: how the runtime talks to the Student agent, the Teacher and the reward judges.

Every adapter has the same two coroutines, ``complete(messages, metadata=...)``
returning a :class:`Completion` and ``aclose()``, and is built from its config
block by :func:`build_adapter`::

    adapter = build_adapter(parse_adapter_config({"type": "openai", "model": "gpt-4o-mini"}))
    completion = await adapter.complete([{"role": "user", "content": "2 + 2?"}])
    await adapter.aclose()

=============  ===================  ================================================
``type``       class                talks to
=============  ===================  ================================================
``python``     :class:`PythonAdapter`  a function or class in this process
``http_api``   :class:`HTTPAdapter`    a JSON endpoint (payload template, result path)
``openai``     :class:`OpenAIAdapter`  an OpenAI-compatible chat-completions server
``litellm``    :class:`OpenAIAdapter`  a LiteLLM proxy (the same protocol)
=============  ===================  ================================================
"""

from atlas.config.adapters import AdapterConfig, HTTPAdapterConfig, PythonAdapterConfig
from atlas.runtime.adapters.base import Adapter, AdapterError, Completion, render_prompt
from atlas.runtime.adapters.http import HTTPAdapter
from atlas.runtime.adapters.openai import OpenAIAdapter
from atlas.runtime.adapters.python import PythonAdapter

__all__ = [
    "Adapter",
    "AdapterError",
    "Completion",
    "HTTPAdapter",
    "OpenAIAdapter",
    "PythonAdapter",
    "build_adapter",
    "render_prompt",
]


def build_adapter(config: AdapterConfig) -> Adapter:
    """Create the adapter a validated config block describes.

    Nothing is sent yet. Raises :class:`~atlas.errors.ConfigError` when the
    block cannot work as given: a Python import path that does not resolve,
    a class that cannot be created, an API key variable that is not set.
    """
    if isinstance(config, PythonAdapterConfig):
        return PythonAdapter(config)
    if isinstance(config, HTTPAdapterConfig):
        return HTTPAdapter(config)
    return OpenAIAdapter(config)
