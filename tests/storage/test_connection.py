"""Connecting: start-up settings, and driver errors turned into one clear, password-free line."""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from storage_servers import PasswordServer

from atlas.config import AtlasConfig, ResolvedURL, StorageConfig
from atlas.errors import ConfigError, DatabaseUnavailable, StatementTimeout
from atlas.storage.connection import (
    ConnectionSettings,
    connect,
    describe_connect_error,
    translate_errors,
)
from atlas.storage.database import Database


@pytest.mark.parametrize(
    ("url", "seconds", "options"),
    [
        pytest.param("postgresql://h/db", 1.5, "-c statement_timeout=1500", id="seconds-to-ms"),
        pytest.param("postgresql://h/db", 0, "-c statement_timeout=0", id="zero-is-none"),
        pytest.param(
            "postgresql://h/db?options=-c%20search_path%3Datlas",
            30,
            "-c search_path=atlas -c statement_timeout=30000",
            id="url-options-kept",
        ),
    ],
)
def test_statement_timeout_goes_in_startup_options(url: str, seconds: float, options: str) -> None:
    kwargs = ConnectionSettings(url, statement_timeout_seconds=seconds).connect_kwargs()
    assert kwargs["options"] == options
    assert (kwargs["application_name"], kwargs["autocommit"]) == ("arc-atlas", True)


@pytest.mark.parametrize(
    ("seconds", "libpq"),
    [pytest.param(0.2, 1, id="at-least-one"), pytest.param(7.6, 8, id="rounded")],
)
def test_connect_timeout_is_whole_seconds(seconds: float, libpq: int) -> None:
    settings = ConnectionSettings("postgresql://h/db", connect_timeout_seconds=seconds)
    assert settings.connect_kwargs()["connect_timeout"] == libpq


def test_invalid_url_is_a_config_error_without_password() -> None:
    settings = ConnectionSettings("postgresql://u:secret@h/db?nonsense=1")
    with pytest.raises(ConfigError) as caught:
        settings.connect_kwargs()
    assert "secret" not in str(caught.value)
    assert "postgresql://u:***@h/db?nonsense=1 is not valid" in str(caught.value)


def test_settings_from_config() -> None:
    storage = StorageConfig(min_connections=2, max_connections=9, statement_timeout_seconds=4)
    settings = ConnectionSettings.from_config(ResolvedURL("postgresql://h/db", "X"), storage)
    assert (settings.source, settings.min_connections, settings.max_connections) == ("X", 2, 9)
    assert settings.statement_timeout_seconds == 4


def test_settings_need_a_real_url() -> None:
    with pytest.raises(ValueError, match="embedded"):
        ConnectionSettings.from_config(ResolvedURL(None, "embedded"), AtlasConfig().storage)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        pytest.param(
            'FATAL:  password authentication failed for user "u"',
            "rejected the credentials",
            id="password",
        ),
        pytest.param(
            'FATAL:  database "nope" does not exist', "does not exist on that server", id="database"
        ),
        pytest.param(
            'FATAL:  role "database_reader" does not exist',
            "has no such user (role)",
            id="role-named-like-a-database",
        ),
        pytest.param(
            'connection to server at "h", port 1 failed: Connection refused',
            "refused the connection",
            id="refused",
        ),
        pytest.param("timeout expired", "did not answer in time", id="timeout"),
        pytest.param(
            'could not translate host name "nohost" to address', "cannot be resolved", id="dns"
        ),
        pytest.param(
            "FATAL:  sorry, too many clients already", "no free connection slots", id="slots"
        ),
        pytest.param(
            "SSL SYSCALL error: EOF\nmore", "is unavailable: SSL SYSCALL error: EOF.", id="other"
        ),
    ],
)
def test_describe_connect_error(raw: str, says: str) -> None:
    message = describe_connect_error(psycopg.OperationalError(raw), "postgresql://u:***@h/db")
    assert message.startswith("Database at postgresql://u:***@h/db ")
    assert says in message


def test_unreachable_server() -> None:
    with pytest.raises(DatabaseUnavailable) as caught:
        Database.open("postgresql://x:secret@127.0.0.1:1/db")
    message = str(caught.value)
    assert "refused" in message and "***" in message
    assert "secret" not in message


def test_missing_database(server_url: str) -> None:
    missing = make_conninfo(server_url, dbname=f"atlas_missing_{uuid.uuid4().hex[:8]}")
    with pytest.raises(DatabaseUnavailable, match="does not exist on that server: create it"):
        Database.open(missing)


@pytest.mark.parametrize(
    "form", [pytest.param("url", id="url"), pytest.param("keywords", id="keywords")]
)
def test_wrong_password(password_server: PasswordServer, form: str) -> None:
    wrong = "Wr0ng#Secr3t?x"
    url = password_server.url(wrong) if form == "url" else password_server.keywords(wrong)
    with pytest.raises(DatabaseUnavailable) as caught:
        Database.open(url)
    message = str(caught.value)
    assert "rejected the credentials (password authentication failed)" in message
    assert "Wr0ng" not in message and "Secr3t" not in message
    assert "***" in message


def test_right_password_connects(password_server: PasswordServer) -> None:
    settings = ConnectionSettings(password_server.url(password_server.password))
    with connect(settings) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("atlas",)


def test_statement_timeout_is_translated(db_url: str) -> None:
    with Database.open(db_url, statement_timeout_seconds=0.1) as db:
        with pytest.raises(StatementTimeout) as caught, db.connection() as conn:
            conn.execute("SELECT pg_sleep(5)")
        with db.connection() as conn:  # the pool hands out a working connection afterwards
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert "ran past statement_timeout_seconds" in str(caught.value)


def _cancel_when_running(url: str, pid: int) -> None:
    """Cancel backend ``pid`` as soon as it runs pg_sleep (polling, bounded by a deadline)."""
    deadline = time.monotonic() + 20
    with psycopg.connect(url, autocommit=True) as other:
        while time.monotonic() < deadline:
            running = other.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active' "
                "AND query LIKE 'SELECT pg_sleep%%'",
                (pid,),
            ).fetchone()
            if running:
                other.execute("SELECT pg_cancel_backend(%s)", (pid,))
                return


def test_a_cancelled_query_is_not_called_a_timeout(db_url: str) -> None:
    with connect(ConnectionSettings(db_url)) as conn:
        canceller = threading.Thread(
            target=_cancel_when_running, args=(db_url, conn.info.backend_pid)
        )
        canceller.start()
        with pytest.raises(DatabaseUnavailable, match="was cancelled"), translate_errors("db"):
            conn.execute("SELECT pg_sleep(30)")
        canceller.join()


def test_query_errors_pass_through_untranslated(db_url: str) -> None:
    with (
        connect(ConnectionSettings(db_url)) as conn,
        pytest.raises(psycopg.errors.UndefinedTable),
        translate_errors("db"),
    ):
        conn.execute("SELECT * FROM no_such_table")
