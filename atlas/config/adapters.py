"""Pydantic models for the adapters to the Student agent, the Teacher and the reward judges.

One adapter block looks like one of these, chosen by ``type``::

    agent:
      type: python                       # an import path to a function or class
      import_path: my_agent.main:answer
      kwargs: {temperature: 0.2}

    agent:
      type: http_api                     # POST JSON to an endpoint, read the answer back
      endpoint: https://agents.example.com/run
      result_path: output.text

    teacher:
      type: openai                       # any OpenAI-compatible chat-completions endpoint
      model: gpt-4o-mini
      api_key_env: OPENAI_API_KEY        # the NAME of the variable holding the key

API keys are never written in the file: a block names the environment variable
that holds the key, and a key-like value where a variable name belongs is
refused without repeating it in the error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from atlas.errors import ConfigError

__all__ = [
    "ADAPTER_TYPES",
    "DEFAULT_RETRY_ON",
    "AdapterConfig",
    "HTTPAdapterConfig",
    "LiteLLMAdapterConfig",
    "OpenAIAdapterConfig",
    "PythonAdapterConfig",
    "parse_adapter_config",
]

ADAPTER_TYPES: tuple[str, ...] = ("python", "http_api", "openai", "litellm")

DEFAULT_RETRY_ON: tuple[int, ...] = (429, 500, 502, 503, 504)

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_IMPORT_PATH = re.compile(rf"{_IDENTIFIER}(\.{_IDENTIFIER})*(:{_IDENTIFIER}(\.{_IDENTIFIER})*)?")
_ENV_NAME = re.compile(_IDENTIFIER)


def _check_http_url(url: str, field: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{field} must be an http:// or https:// URL")


class _AdapterSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PythonAdapterConfig(_AdapterSection):
    """``type: python``: call a function or a class from an importable module.

    ``import_path`` is ``package.module:attribute`` (or ``package.module.attribute``).
    A class is instantiated once with ``kwargs``; a function gets ``kwargs`` as extra
    keyword arguments on every call.
    """

    type: Literal["python"]
    import_path: str = Field(description="package.module:attribute")
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _import_path_shape(self) -> PythonAdapterConfig:
        path = self.import_path
        if not _IMPORT_PATH.fullmatch(path) or ("." not in path and ":" not in path):
            raise ValueError(
                "import_path must look like 'package.module:attribute' "
                "(a module, a colon, then the function or class)"
            )
        return self


class _NetworkSettings(_AdapterSection):
    """Timeouts, retries and the API key variable, shared by the adapters that call HTTP."""

    api_key_env: str | None = None
    timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    max_retries: int = Field(default=3, ge=0, le=20)
    retry_backoff_seconds: float = Field(default=0.5, ge=0, le=60)
    retry_on: tuple[int, ...] = DEFAULT_RETRY_ON

    @model_validator(mode="before")
    @classmethod
    def _no_secrets_in_file(cls, data: Any) -> Any:
        # Runs on the raw mapping so that the error carries the mapping, not the
        # key: the config loader shows scalar inputs in its messages.
        if not isinstance(data, Mapping):
            return data
        if "api_key" in data:
            raise ValueError(
                "api_key is not allowed: keep the key in an environment variable "
                "and put that variable's name in api_key_env"
            )
        name = data.get("api_key_env")
        if isinstance(name, str) and not _ENV_NAME.fullmatch(name):
            raise ValueError(
                "api_key_env must be the NAME of an environment variable "
                "(letters, digits, underscores, e.g. OPENAI_API_KEY), not the key itself"
            )
        return data

    @model_validator(mode="after")
    def _retry_on_statuses(self) -> _NetworkSettings:
        if not all(400 <= code <= 599 for code in self.retry_on):
            raise ValueError("retry_on must list HTTP error statuses between 400 and 599")
        return self


class HTTPAdapterConfig(_NetworkSettings):
    """``type: http_api``: send the prompt as JSON to an endpoint and read the answer back.

    ``payload`` is a JSON template: the strings ``"{prompt}"``, ``"{messages}"`` and
    ``"{metadata}"`` are replaced by the values (inside longer strings, by their
    text). ``result_path`` is a dotted path into the JSON reply
    (``choices.0.message.content``). With ``api_key_env`` set, the key is sent as
    ``Authorization: Bearer <key>``, or as the bare key in ``api_key_header``.
    """

    type: Literal["http_api"]
    endpoint: str
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    payload: Any = None
    result_path: str | None = None
    api_key_header: str = "Authorization"

    @model_validator(mode="after")
    def _endpoint_is_http(self) -> HTTPAdapterConfig:
        _check_http_url(self.endpoint, "endpoint")
        if self.result_path is not None and "" in self.result_path.split("."):
            raise ValueError("result_path must be dot-separated keys, e.g. output.text")
        return self


class _ChatModelSettings(_NetworkSettings):
    model: str = Field(min_length=1)
    api_key_env: str | None = "OPENAI_API_KEY"
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    extra_body: dict[str, Any] = Field(default_factory=dict)


class OpenAIAdapterConfig(_ChatModelSettings):
    """``type: openai``: a chat model behind the OpenAI chat-completions API.

    ``base_url`` may point at any compatible server (vLLM, Ollama, a gateway);
    set ``api_key_env: null`` for a local server that needs no key.
    """

    type: Literal["openai"]
    base_url: str = "https://api.openai.com/v1"

    @model_validator(mode="after")
    def _base_url_is_http(self) -> OpenAIAdapterConfig:
        _check_http_url(self.base_url, "base_url")
        return self


class LiteLLMAdapterConfig(_ChatModelSettings):
    """``type: litellm``: a model behind a LiteLLM proxy, which speaks the OpenAI protocol.

    ``base_url`` is required: the proxy's address, e.g. ``http://localhost:4000``.
    """

    type: Literal["litellm"]
    base_url: str

    @model_validator(mode="after")
    def _base_url_is_http(self) -> LiteLLMAdapterConfig:
        _check_http_url(self.base_url, "base_url")
        return self


AdapterConfig = Annotated[
    PythonAdapterConfig | HTTPAdapterConfig | OpenAIAdapterConfig | LiteLLMAdapterConfig,
    Field(discriminator="type"),
]
"""Any one adapter block, told apart by its ``type`` key."""

_ADAPTER_CONFIG: TypeAdapter[AdapterConfig] = TypeAdapter(AdapterConfig)


def parse_adapter_config(data: Mapping[str, Any], *, where: str = "agent") -> AdapterConfig:
    """Validate one adapter block (``where`` names it in errors, e.g. ``teacher``).

    Raises :class:`ConfigError` with one line per problem, naming each key.
    Values are never repeated in the message, so a misplaced key stays private.
    """
    try:
        return _ADAPTER_CONFIG.validate_python(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, data, where)) from None


def _describe(exc: ValidationError, data: Mapping[str, Any], where: str) -> str:
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        if loc and loc[0] == data.get("type"):
            loc = loc[1:]  # pydantic puts the union tag first
        key = ".".join([where, *loc])
        if error["type"] == "union_tag_not_found":
            problems.append(f"{key}.type: missing; use one of {', '.join(ADAPTER_TYPES)}")
        elif error["type"] == "union_tag_invalid":
            problems.append(f"{key}.type: unknown; use one of {', '.join(ADAPTER_TYPES)}")
        elif error["type"] == "extra_forbidden":
            problems.append(f"{key}: unknown key")
        else:
            problems.append(f"{key}: {error['msg'].removeprefix('Value error, ')}")
    return "Adapter configuration is invalid: " + "; ".join(problems) + "."
