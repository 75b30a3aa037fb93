"""Run tasks: ``atlas.core.run(task, config_path, stream_progress=True)`` and ``arun``.

Each run is one session, persisted as it happens to the configured database
(the ``storage:`` block, ``ATLAS_DATABASE_URL``, or the embedded one)::

    from atlas import core

    result = core.run(task="Summarize the latest Atlas SDK updates",
                      config_path="atlas.yaml", stream_progress=True)
    print(result.final_answer, result.session_id)
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from atlas.config.loader import load_config
from atlas.config.models import AtlasConfig
from atlas.errors import ConfigError
from atlas.runtime.adapters import build_adapter
from atlas.runtime.orchestrator import (
    JudgeSpec,
    Reporter,
    RunResult,
    RuntimeParts,
    RuntimeSettings,
    run_session,
)
from atlas.runtime.progress import ConsoleReporter
from atlas.storage.writer import AsyncSessionWriter
from atlas.training_data.review_gate import approval_switched_off

__all__ = ["RunResult", "arun", "build_parts", "run", "settings_from_config"]


def _approval_required(config: AtlasConfig, environ: Mapping[str, str]) -> bool:
    if approval_switched_off(environ):
        return False
    return config.runtime_safety.review.require_approval


def settings_from_config(
    config: AtlasConfig, environ: Mapping[str, str] | None = None
) -> RuntimeSettings:
    """The runtime's settings from a validated configuration."""
    env = os.environ if environ is None else environ
    meta = config.metadata
    extra = {k: v for k, v in (meta.model_extra or {}).items()}
    return RuntimeSettings(
        mode=config.orchestration.mode,
        max_retries=config.orchestration.max_retries,
        step_timeout_seconds=config.orchestration.step_timeout_seconds,
        parallelism=config.orchestration.parallelism,
        variance_threshold=config.rim.variance_threshold,
        learning_enabled=config.learning.enabled,
        learning_update=config.learning.update_enabled,
        history_limit=config.learning.history_limit,
        drift=config.runtime_safety.drift,
        require_approval=_approval_required(config, env),
        learning_key=meta.learning_key,
        tags=tuple(meta.tags),
        tenant=meta.tenant,
        extra_metadata=extra,
    )


def build_parts(config: AtlasConfig) -> RuntimeParts:
    """Adapters for the Student, the Teacher and the judges (nothing is called yet)."""
    if config.agent is None:
        raise ConfigError(
            "The configuration has no agent block: add `agent:` with a type "
            "(python, http_api, openai or litellm), or try `arc-atlas quickstart`."
        )

    def judges(entries: Any) -> tuple[JudgeSpec, ...]:
        return tuple(
            JudgeSpec(j.identifier, build_adapter(j.adapter), tuple(j.principles)) for j in entries
        )

    return RuntimeParts(
        student=build_adapter(config.agent),
        teacher=build_adapter(config.teacher) if config.teacher is not None else None,
        judges=judges(config.rim.judges),
        large_judges=judges(config.rim.large_judges),
    )


async def _close(parts: RuntimeParts) -> None:
    adapters: list[Any] = [parts.student, parts.teacher]
    adapters += [j.adapter for j in (*parts.judges, *parts.large_judges)]
    for adapter in adapters:
        close = getattr(adapter, "aclose", None)
        if close is not None:
            await close()


async def arun(
    task: str,
    config_path: str | os.PathLike[str] | None = None,
    *,
    config: AtlasConfig | None = None,
    stream_progress: bool = False,
    database_url: str | None = None,
    parts: RuntimeParts | None = None,
    reporter: Reporter | None = None,
) -> RunResult:
    """Run ``task`` once and return the result (the asyncio entry point).

    ``config_path`` (or ``config``) gives the agents and the storage; ``parts``
    replaces the configured agents with ready adapters. A failing agent does
    not raise: the session is stored as failed and the result says why.
    Raises :class:`~atlas.errors.ConfigError` for a bad configuration and
    :class:`~atlas.errors.DatabaseUnavailable` when nothing can be stored.
    """
    if not isinstance(task, str) or not task.strip():
        raise ConfigError("The task is empty: pass the text of the task to run.")
    if config is None:
        config = load_config(config_path) if config_path is not None else AtlasConfig()
    runtime_parts = parts or build_parts(config)
    settings = settings_from_config(config)
    if reporter is None and stream_progress:
        reporter = ConsoleReporter(force=True)
    try:
        async with await AsyncSessionWriter.open(database_url, config=config) as writer:
            return await run_session(task, runtime_parts, settings, writer, reporter)
    finally:
        if parts is None:
            await _close(runtime_parts)


def run(
    task: str,
    config_path: str | os.PathLike[str] | None = None,
    *,
    config: AtlasConfig | None = None,
    stream_progress: bool = False,
    database_url: str | None = None,
    parts: RuntimeParts | None = None,
    reporter: Reporter | None = None,
) -> RunResult:
    """Run ``task`` once (synchronous); see :func:`arun` for the arguments.

    Works inside a running event loop too (a notebook): the run then happens
    on a worker thread with its own loop, and this call waits for it.
    """
    session = arun(
        task,
        config_path,
        config=config,
        stream_progress=stream_progress,
        database_url=database_url,
        parts=parts,
        reporter=reporter,
    )
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(session)
    # asyncio.run cannot nest in a running loop; a thread of its own can run one.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="atlas-run") as pool:
        return pool.submit(asyncio.run, session).result()
