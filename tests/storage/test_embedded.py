"""The embedded server: started on demand in $ATLAS_HOME, reused, used by default, stopped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import platformdirs
import psycopg
import pytest

from atlas.errors import EmbeddedServerError
from atlas.storage.database import Database
from atlas.storage.embedded import (
    EmbeddedServer,
    atlas_home,
    embedded_server,
    ensure_embedded,
    stop_embedded,
)
from atlas.storage.migrate import schema_status


def test_atlas_home_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATLAS_HOME", str(tmp_path / "here"))
    assert atlas_home() == tmp_path / "here"


@pytest.mark.parametrize(
    ("data_dir", "home"),
    [
        pytest.param(
            "/home/u/.local/share/arc-atlas", "/home/u/.local/share/arc-atlas", id="linux"
        ),
        pytest.param(
            "/Users/u/Library/Application Support/arc-atlas", "~/.arc-atlas", id="macos-space"
        ),
    ],
)
def test_default_home_has_no_space(
    monkeypatch: pytest.MonkeyPatch, data_dir: str, home: str
) -> None:
    monkeypatch.delenv("ATLAS_HOME", raising=False)
    monkeypatch.setattr(platformdirs, "user_data_dir", lambda *args, **kwargs: data_dir)
    assert atlas_home() == Path(home).expanduser()


def test_socket_folder_is_escaped_in_the_url() -> None:
    server = EmbeddedServer(Path("/d"), 1, Path("/tmp/a b&c"), 5433)
    assert server.url() == "postgresql://postgres@/atlas?host=/tmp/a%20b%26c&port=5433"
    assert psycopg.conninfo.conninfo_to_dict(server.url())["host"] == "/tmp/a b&c"


def test_nothing_runs_in_a_fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATLAS_HOME", str(tmp_path))
    assert embedded_server() is None
    assert stop_embedded() is False


def test_home_with_a_space_is_refused_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATLAS_HOME", str(tmp_path / "atlas home"))
    with pytest.raises(EmbeddedServerError, match=r"contains a space.*Set ATLAS_HOME"):
        ensure_embedded()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh ATLAS_HOME whose server, if any, is stopped afterwards."""
    monkeypatch.setenv("ATLAS_HOME", str(tmp_path))
    try:
        yield tmp_path
    finally:
        stop_embedded()


def test_embedded_lifecycle(home: Path) -> None:
    url = ensure_embedded()
    server = embedded_server()
    assert server is not None and server.pgdata == home / "pgdata"
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("atlas",)

    assert ensure_embedded() == url
    assert embedded_server() == server  # reused, not restarted

    with Database.open() as db, db.connection() as conn:
        assert (db.settings.embedded, db.settings.url) == (True, url)
        assert schema_status(conn).up_to_date

    assert stop_embedded() is True
    assert embedded_server() is None
    assert stop_embedded() is False


def test_embedded_restarts_after_a_stop_in_the_same_process(home: Path) -> None:
    ensure_embedded()
    first = embedded_server()
    stop_embedded()
    url = ensure_embedded()
    second = embedded_server()
    assert first is not None and second is not None and second.pid != first.pid
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
