"""Fixtures of the interop tier: the real atlas-sdk 0.1.16 client against arc-atlas.

The tier runs only when selected with ``-m interop`` (``.ci/run`` does that
once per CI run); otherwise its tests are deselected, so the ordinary passes
neither build the sdk's virtualenv (see ``interop_sdk.py``) nor need PyPI.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from interop_data import sessions
from interop_sdk import Sdk, SdkDatabase, environ, sdk_virtualenv
from psycopg import sql


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the tier unless the marker expression names it (``-m interop``)."""
    if "interop" in (config.option.markexpr or ""):
        return
    keep = [item for item in items if item.get_closest_marker("interop") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


@pytest.fixture(scope="session")
def sdk_python() -> Path:
    """The python of the atlas-sdk virtualenv."""
    return sdk_virtualenv()


@pytest.fixture(scope="session")
def sdk(sdk_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Sdk:
    """The atlas-sdk client."""
    return Sdk(sdk_python, tmp_path_factory.mktemp("sdk-cwd"))


@pytest.fixture(scope="session")
def arc_atlas(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., str]:
    """Run ``arc-atlas ARGS...`` in a subprocess; returns stdout, fails the test on exit != 0."""
    home = tmp_path_factory.mktemp("arc-atlas")

    def run(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "atlas.cli", *args],
            capture_output=True,
            text=True,
            env=environ(home),
            timeout=300,
        )
        assert result.returncode == 0, f"arc-atlas {args[:2]} failed:\n{result.stderr}"
        return result.stdout

    return run


@pytest.fixture(scope="session")
def new_database(url_for: Callable[[str], str], server_url: str) -> Iterator[Callable[[], str]]:
    """Make an empty database on the test server (dropped at the end of the run)."""
    names: list[str] = []

    def make() -> str:
        name = f"atlas_interop_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        names.append(name)
        return url_for(name)

    yield make
    with psycopg.connect(server_url, autocommit=True) as admin:
        for name in names:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _round_timestamps(url: str) -> None:
    """Give every stored timestamp a fraction of a second that ends in zeros (0.1 s steps).

    NOW() ends in a zero one time in ten; fixing it makes the exports' text
    for such instants (``.100000`` against PostgreSQL's ``.1``) always show.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        for table, columns in (
            ("sessions", ("created_at", "completed_at")),
            ("trajectory_events", ("created_at",)),
        ):
            for column in columns:
                name = sql.Identifier(column)
                conn.execute(
                    sql.SQL(
                        "UPDATE {} SET {} = date_trunc('second', {}) + make_interval(secs => 0.1)"
                    ).format(sql.Identifier(table), name, name)
                )


@pytest.fixture(scope="session")
def sdk_db(
    sdk: Sdk,
    arc_atlas: Callable[..., str],
    new_database: Callable[[], str],
    tmp_path_factory: pytest.TempPathFactory,
) -> SdkDatabase:
    """Every spec of ``interop_data`` written by atlas-sdk into its own schema, then upgraded."""
    url = new_database()
    specs = sessions()
    ids = sdk.write(url, specs)
    _round_timestamps(url)
    before = tmp_path_factory.mktemp("sdk-export-before") / "sdk.jsonl"
    sdk.export(url, before)
    arc_atlas("db", "upgrade", "--database-url", url)
    return SdkDatabase(url, specs, ids, before)


@pytest.fixture(scope="session")
def sdk_export(sdk: Sdk, sdk_db: SdkDatabase, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """atlas-sdk's JSONL export of ``sdk_db``."""
    out = tmp_path_factory.mktemp("sdk-export") / "sdk.jsonl"
    sdk.export(sdk_db.url, out)
    return out


@pytest.fixture(scope="session")
def our_export(
    arc_atlas: Callable[..., str], sdk_db: SdkDatabase, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """arc-atlas's JSONL export of ``sdk_db``."""
    out = tmp_path_factory.mktemp("our-export") / "ours.jsonl"
    arc_atlas("export", "--database-url", sdk_db.url, "-o", str(out), "--include-all-statuses")
    return out
