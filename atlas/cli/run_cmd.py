"""``arc-atlas run``, ``arc-atlas quickstart`` and ``arc-atlas env init``."""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from atlas import core
from atlas.config import config_from_mapping, load_config, resolve_database_url
from atlas.errors import ConfigError, OutputError, SessionFailed, UsageError
from atlas.runtime.demo import DEMO_CONFIG, DEMO_TASKS
from atlas.storage import SessionWriter
from atlas.training_data import export_jsonl

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    if not args.config:
        raise UsageError(
            "arc-atlas run needs --config FILE naming the agents to run: write one with "
            "`arc-atlas env init`, or try the demo agents with `arc-atlas quickstart`."
        )
    config = load_config(args.config)
    result = core.run(
        args.task, config=config, stream_progress=args.stream, database_url=args.database_url
    )
    if result.status != "succeeded":
        raise SessionFailed(
            f"Session {result.session_id} failed: {result.error}", session_id=result.session_id
        )
    print(result.final_answer)
    score = (result.session_reward or {}).get("score")
    print(
        f"session {result.session_id}: {result.status}, reward {score}, "
        f"review {result.review_status}, learning key {result.learning_key}",
        file=sys.stderr,
    )
    return 0


def _quickstart(args: argparse.Namespace) -> int:
    if not 1 <= args.tasks <= len(DEMO_TASKS):
        raise UsageError(f"--tasks must be between 1 and {len(DEMO_TASKS)} (the demo tasks).")
    config_path = getattr(args, "config", None)
    target = resolve_database_url(
        args.database_url, load_config(config_path) if config_path else None
    )
    config = config_from_mapping(
        _demo_config(shared=not target.is_embedded), source="the demo configuration"
    )
    tasks = list(DEMO_TASKS)[: args.tasks]
    print("Running the demo agents (deterministic, offline; labelled [demo]):", file=sys.stderr)
    ids = []
    for task in tasks:
        result = core.run(task, config=config, stream_progress=args.stream, database_url=target.url)
        score = (result.session_reward or {}).get("score")
        print(
            f"  session {result.session_id} {result.status:9s} reward {score} "
            f"({result.metadata.get('mode', '-')} mode): {task}",
            file=sys.stderr,
        )
        ids.append(result.session_id)
    summary = export_jsonl(
        args.output, target.url, session_ids=ids, include_all_review_statuses=True
    )
    if not target.is_embedded:
        print(
            "These are demo sessions (metadata.demo: true), left pending for review in a "
            "database that is not the embedded one: training exports skip them unless approved.",
            file=sys.stderr,
        )
    print(
        f"Exported {summary.sessions} sessions to {args.output}.\n\nTry next:\n"
        f"  arc-atlas ui           # browse, review and chart them in your browser\n"
        f"  arc-atlas review sessions --status all --limit 10\n"
        f"  arc-atlas db status\n"
        f'  python -c "from trainers.runtime_dataset import load_runtime_traces, '
        f"sessions_to_rl_records; print(len(sessions_to_rl_records("
        f"load_runtime_traces('{args.output}'))), 'RL records')\"\n"
        f"  arc-atlas env init     # write a config for your own agent",
        file=sys.stderr,
    )
    return 0


def _demo_config(*, shared: bool) -> dict[str, Any]:
    """The demo configuration, its sessions labelled demo data (``metadata.demo: true``).

    On the embedded database, arc-atlas's own scratch space, they are
    approved as they finish so the first export has something in it. On any
    other database (``shared``) they wait for a review: a database that feeds
    real training exports must not take demo sessions through the gate.
    """
    config = dict(DEMO_CONFIG)
    config["metadata"] = {**DEMO_CONFIG["metadata"], "demo": True}
    if shared:
        config["runtime_safety"] = {"review": {"require_approval": True}}
    return config


_SKIP = {".git", ".venv", "venv", "node_modules", "site-packages", "__pycache__", "build", "dist"}
_HINTS = ("agent", "respond", "handle", "chat", "complete", "generate", "invoke", "run", "answer")


def _python_files(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _SKIP and not d.startswith(".")]
        for name in files:
            if name.endswith(".py"):
                yield Path(folder) / name


def discover(root: Path) -> tuple[list[dict[str, Any]], int]:
    """Functions and classes that look like agent entry points, best first; files scanned."""
    found: list[dict[str, Any]] = []
    scanned = 0
    for file in _python_files(root):
        scanned += 1
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        module = ".".join(file.relative_to(root).with_suffix("").parts)
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = node.name
                hits = [h for h in _HINTS if h in name.lower()]
                if not hits or name.startswith("_") or module.startswith(("test", "tests.")):
                    continue
                score = len(hits) * 2 + (1 if "agent" in name.lower() else 0)
                score += 1 if isinstance(node, ast.AsyncFunctionDef) else 0
                found.append({
                    "import_path": f"{module}:{name}",
                    "kind": "class" if isinstance(node, ast.ClassDef) else "function",
                    "file": str(file.relative_to(root)),
                    "line": node.lineno,
                    "score": score,
                })  # fmt: skip
    found.sort(key=lambda c: (-c["score"], c["import_path"]))
    return found, scanned


def _starter_config(entry: str | None) -> dict[str, Any]:
    config: dict[str, Any] = {key: value for key, value in DEMO_CONFIG.items()}
    if entry:
        config["agent"] = {"type": "python", "import_path": entry}
    config["runtime_safety"] = {"review": {"require_approval": True}}
    config["metadata"] = {"tags": [], "source": "arc-atlas env init"}
    config["orchestration"] = {"mode": "adaptive", "max_retries": 2, "parallelism": 4}
    return config


def _env_init(args: argparse.Namespace) -> int:
    root = Path(args.path).resolve()
    if not root.is_dir():
        raise ConfigError(f"Project folder {root} does not exist.")
    to_stdout = args.output == "-"
    target = Path(args.output)
    if not to_stdout and target.exists() and not args.force:
        raise ConfigError(f"{target} already exists: pass --force to replace it.")
    candidates, scanned = discover(root)
    chosen = candidates[0]["import_path"] if candidates else None
    config = _starter_config(chosen)
    header = (
        "# Written by `arc-atlas env init`. The teacher and judges are the offline demo\n"
        "# agents: replace them with models (type: openai, model: ..., api_key_env: ...).\n"
    )
    if not chosen:
        header += "# No agent entry point was found: `agent` runs the demo Student.\n"
    text = header + yaml.safe_dump(config, sort_keys=False)
    where = "stdout" if to_stdout else str(target)
    # The file appears only once the discovery is recorded: a failed run
    # (database down, disk full) leaves no config behind to be mistaken for one.
    with _staged(None if to_stdout else target, text) as commit:
        with SessionWriter.open(args.database_url, min_connections=1, max_connections=1) as writer:
            run_id = writer.record_discovery_run(
                project_root=str(root),
                task=args.task,
                payload={"candidates": candidates[:20], "chosen": chosen, "config": where},
                metadata={"files_scanned": scanned, "python": platform.python_version()},
            )
        commit()
    if to_stdout:
        sys.stdout.write(text)
    print(f"Wrote {where} (agent: {chosen or 'demo Student'}); discovery run {run_id}.",
          file=sys.stderr)  # fmt: skip
    for candidate in candidates[:5]:
        print(f"  {candidate['import_path']}  ({candidate['kind']}, {candidate['file']}:"
              f"{candidate['line']})", file=sys.stderr if to_stdout else sys.stdout)  # fmt: skip
    return 0


@contextlib.contextmanager
def _staged(target: Path | None, text: str) -> Iterator[Callable[[], None]]:
    """Write ``text`` beside ``target`` now; the caller's ``commit()`` moves it into place.

    Without a commit (an exception, Ctrl-C) the staged file is removed. With
    ``target`` None nothing is written and ``commit`` does nothing.
    """
    if target is None:
        yield lambda: None
        return
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    except OSError as exc:
        raise OutputError(
            f"Cannot write {target} ({exc.strerror}): choose another --output."
        ) from None
    staged = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        yield lambda: os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)


def register(
    commands: Any, add_connection_options: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Add ``run``, ``quickstart`` and ``env``."""
    run = commands.add_parser("run", help="run one task through the configured agents")
    add_connection_options(run)
    run.add_argument("--task", required=True, help="the task text")
    run.add_argument("--stream", action="store_true", help="show the run live on stderr")
    run.set_defaults(handler=_run)

    quick = commands.add_parser(
        "quickstart", help="run demo tasks with offline demo agents, then export them"
    )
    add_connection_options(quick)
    quick.add_argument("--tasks", type=int, default=len(DEMO_TASKS), metavar="N")
    quick.add_argument("--output", "-o", default="traces/quickstart.jsonl", metavar="FILE")
    quick.add_argument("--stream", action="store_true", help="show each run live on stderr")
    quick.set_defaults(handler=_quickstart)

    env = commands.add_parser("env", help="set up arc-atlas for a project")
    env_sub = env.add_subparsers(dest="env_command", metavar="ENV_COMMAND", required=True)
    init = env_sub.add_parser(
        "init", help="find agent entry points, write a starter config, record the discovery"
    )
    add_connection_options(init)
    init.add_argument("--path", default=".", help="project folder (default: here)")
    init.add_argument("--output", "-o", default="atlas.yaml", metavar="FILE")
    init.add_argument("--task", help="a sample task, recorded with the discovery")
    init.add_argument("--force", action="store_true", help="replace an existing config")
    init.set_defaults(handler=_env_init)
