"""The atlas-sdk 0.1.16 client for the interop tier: its virtualenv and subprocess calls.

atlas-sdk imports as ``atlas`` too, so it lives in its own virtualenv
(``$ATLAS_SDK_VENV``, or ``.cache/atlas-sdk-0.1.16`` in the checkout, built
once and reused while it holds that version) and is driven through
subprocesses: ``sdk_driver.py`` for its writer and readers, ``python -m
atlas.cli.export`` for its exporter.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atlas.storage.synthetic_sdk import ATLAS_SDK_SCHEMA

SDK_VERSION = "0.1.16"
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DRIVER = HERE / "sdk_driver.py"
# Variables that would point either client at another database or review gate.
_AMBIENT = (
    "ATLAS_DATABASE_URL",
    "STORAGE__DATABASE_URL",
    "DATABASE_URL",
    "ATLAS_REVIEW_REQUIRE_APPROVAL",
    "ATLAS_REVIEW_DEFAULT_EXPORT_STATUSES",
    "PYTHONPATH",
)


def environ(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _AMBIENT}
    # litellm (an sdk dependency) otherwise fetches a price list at import time.
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["ATLAS_HOME"] = str(tmp / "atlas-home")
    return env


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _storage_dir(python: Path) -> Path:
    """atlas/runtime/storage inside the virtualenv (found without importing atlas)."""
    purelib = subprocess.run(
        [str(python), "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Path(purelib) / "atlas" / "runtime" / "storage"


def _installed_version(python: Path) -> str | None:
    if not python.exists():
        return None
    result = subprocess.run(
        [str(python), "-I", "-c", "import importlib.metadata as m; print(m.version('arc-atlas'))"],
        capture_output=True,
        text=True,
    )
    return result.stdout.strip() if result.returncode == 0 else None


def _build(venv: Path) -> None:
    for command in (
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         f"arc-atlas=={SDK_VERSION}"],
    ):  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")


def sdk_virtualenv() -> Path:
    """The python of a virtualenv holding atlas-sdk 0.1.16, built when missing or stale.

    The 0.1.16 distribution lacks its ``schema.sql``; the layout it describes
    (:data:`atlas.storage.synthetic_sdk.ATLAS_SDK_SCHEMA`, seed 002's tables) is
    put in its place so ``Database.connect()`` works as in a source install.
    """
    venv = Path(os.environ.get("ATLAS_SDK_VENV") or REPO / ".cache" / f"atlas-sdk-{SDK_VERSION}")
    venv.parent.mkdir(parents=True, exist_ok=True)
    # Concurrent test runs share the folder: one builds, the others wait.
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_version(_python(venv)) != SDK_VERSION:
            _build(venv)
        schema = _storage_dir(_python(venv)) / "schema.sql"
        if not schema.exists():
            schema.write_text(ATLAS_SDK_SCHEMA, encoding="utf-8")
    return _python(venv)


@dataclass(frozen=True)
class Sdk:
    """The atlas-sdk client, one subprocess per call."""

    python: Path
    workdir: Path

    def _run(self, *args: str, stdin: str = "") -> str:
        # -I (isolated): neither the working folder nor PYTHONPATH goes on sys.path,
        # so the checkout's own `atlas` package cannot shadow the sdk's.
        result = subprocess.run(
            [str(self.python), "-I", *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.workdir,
            env=environ(self.workdir),
            timeout=300,
        )
        assert result.returncode == 0, f"atlas-sdk {args[:3]} failed:\n{result.stderr}"
        return result.stdout

    def _drive(self, command: str, request: dict[str, Any]) -> Any:
        return json.loads(self._run(str(DRIVER), command, stdin=json.dumps(request)))

    def write(self, url: str, specs: list[dict[str, Any]]) -> list[int]:
        """Store ``specs`` with the sdk's ``Database``; their session ids, in order."""
        ids: list[int] = self._drive("write", {"database_url": url, "sessions": specs})[
            "session_ids"
        ]
        return ids

    def read(self, url: str, session_ids: list[int]) -> dict[str, Any]:
        """What each public reader of the sdk returns (see ``sdk_driver.read``)."""
        result: dict[str, Any] = self._drive(
            "read", {"database_url": url, "session_ids": session_ids}
        )
        return result

    def export(self, url: str, output: Path) -> list[dict[str, Any]]:
        """Run the sdk's exporter over every review status; the JSONL records."""
        self._run(
            "-m", "atlas.cli.export", "--database-url", url, "--output", str(output),
            "--include-all-statuses", "--quiet",
        )  # fmt: skip
        return read_jsonl(output)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every record of a JSONL file."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@dataclass(frozen=True)
class SdkDatabase:
    """A database atlas-sdk created and wrote, then upgraded by ``arc-atlas db upgrade``."""

    url: str
    specs: list[dict[str, Any]]
    ids: list[int]
    # atlas-sdk's own export, taken before the upgrade touched anything.
    sdk_export_before_upgrade: Path

    def spec(self, task: str) -> dict[str, Any]:
        """The spec of the session with this task."""
        return next(s for s in self.specs if s["task"] == task)


def by_task(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Records keyed by their (unique) task."""
    return {record["task"]: record for record in records}
