"""Run the real ``arc-atlas`` entry point in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(tmp_path: Path) -> Run:
    """Call ``arc-atlas ARGS...``; returns the completed process (text mode).

    ``ATLAS_HOME`` points at an empty folder so no test can touch the
    developer's own embedded database by accident.
    """

    def run(
        *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        environ = {
            k: v
            for k, v in os.environ.items()
            if k not in ("ATLAS_DATABASE_URL", "STORAGE__DATABASE_URL", "DATABASE_URL")
        }
        environ["ATLAS_HOME"] = str(tmp_path / "atlas-home")
        environ.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "atlas.cli", *args],
            capture_output=True,
            text=True,
            env=environ,
            cwd=cwd,
            timeout=120,
        )

    return run
