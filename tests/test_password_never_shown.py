"""A password never appears: not in CLI output, exception text, log records or ``db url``.

Every URL form below carries the same sentinel secret. The well-formed ones
point at the test server with a role that does not exist (or at a closed
port), so the connection really fails there; the malformed ones must fail
before any connection with one ``Error:`` line naming the problem.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from psycopg.conninfo import conninfo_to_dict

from atlas.cli.main import main
from atlas.errors import AtlasError, ConfigError
from atlas.storage import AsyncDatabase, Database, SessionWriter, mask_url, resolve_settings
from atlas.training_data import get_training_sessions

SECRET = "S3cr3t-Sentinel"

# {H} is the test server's host, {P} its port; "nobody" is a role it lacks.
MALFORMED = [
    pytest.param("postgresql+psycopg://u:{S}@{H}:{P}/db", id="sqlalchemy-scheme"),
    pytest.param("mysql://u:{S}@{H}:{P}/db", id="other-scheme"),
    pytest.param("postgresql:/u:{S}@{H}", id="one-slash"),
    pytest.param("postgresql:u:{S}@{H}", id="no-slash"),
    pytest.param("postgresql://u:{S}%zz@{H}:{P}/db", id="bad-percent-escape"),
    pytest.param("u:{S}@{H}:{P}/db", id="no-scheme"),
    pytest.param("postgresql://u:{S}@x@{H}:{P}/db", id="raw-at"),
    pytest.param("postgresql://u:{S}/x@{H}:{P}/db", id="raw-slash"),
    pytest.param("postgresql://u:{S}@[::1/db", id="unclosed-ipv6"),
    pytest.param("postgresql://u:{S}@{H}:{P}/db?nonsense=1", id="unknown-query-key"),
    pytest.param("host={H} password='{S} x", id="dsn-unterminated-quote"),
]
WELL_FORMED = [
    pytest.param("postgresql://nobody:{S}@{H}:{P}/db", id="plain"),
    pytest.param("postgres://nobody:{S}%40%3A%2F@{H}:{P}/db", id="escaped-at-colon-slash"),
    pytest.param("postgresql://nobody:{S}:x@{H}:{P}/db", id="raw-colon"),
    pytest.param("postgresql://nobody:{S}@{H}:{P},127.0.0.1:1/db", id="multi-host"),
    pytest.param("postgresql://{H}:{P}/db?user=nobody&password={S}", id="query-password"),
    pytest.param("host={RH} port={P} user=nobody password={S} dbname=db", id="dsn"),
    pytest.param("host={RH} port={P} user=nobody password='{S} x' dbname=db", id="dsn-quoted"),
    pytest.param("postgresql://nobody:{S}@127.0.0.1:1/db", id="closed-port"),
]
ALL_FORMS = MALFORMED + WELL_FORMED


@pytest.fixture
def fill(server_url: str) -> Callable[[str], str]:
    """Put the sentinel and the test server's address into a URL template."""
    parts = conninfo_to_dict(server_url)
    host = str(parts.get("host") or "127.0.0.1")
    port = str(parts.get("port") or "5432")
    return lambda template: template.format(S=SECRET, H=quote(host, safe=""), RH=host, P=port)


@pytest.fixture(autouse=True)
def _no_other_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    # Only the URL under test may be in force: never the embedded server.
    for name in ("ATLAS_DATABASE_URL", "STORAGE__DATABASE_URL", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    yield


def assert_hidden(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text


def exception_texts(exc: BaseException) -> list[str]:
    """``str`` and ``repr`` of an exception and of every exception chained to it."""
    texts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:
        texts += [str(seen), repr(seen)]
        seen = seen.__cause__ or seen.__context__
    return texts


def log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [caplog.text] + [r.getMessage() + (r.exc_text or "") for r in caplog.records]


# ---- the library -----------------------------------------------------------

LIBRARY_CALLS = [
    pytest.param(lambda url: asyncio.run(AsyncDatabase.open(url)), id="AsyncDatabase.open"),
    pytest.param(lambda url: Database.open(url).close(), id="Database.open"),
    pytest.param(lambda url: SessionWriter.open(url).close(), id="SessionWriter.open"),
    pytest.param(lambda url: get_training_sessions(url), id="get_training_sessions"),
]


@pytest.mark.parametrize("call", LIBRARY_CALLS)
@pytest.mark.parametrize("template", ALL_FORMS)
def test_library_errors_hide_the_password(
    fill: Callable[[str], str],
    template: str,
    call: Callable[[str], object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AtlasError) as caught:
        call(fill(template))
    assert_hidden(*exception_texts(caught.value), *log_texts(caplog))


@pytest.mark.parametrize("template", MALFORMED)
def test_malformed_url_is_a_config_error_before_connecting(
    fill: Callable[[str], str], template: str
) -> None:
    with pytest.raises(ConfigError, match=r"^Database URL .* is not valid: .+\.$"):
        resolve_settings(fill(template))


@pytest.mark.parametrize("template", ALL_FORMS)
def test_settings_repr_hides_the_password(fill: Callable[[str], str], template: str) -> None:
    from atlas.config import StorageConfig, resolve_database_url
    from atlas.storage import ConnectionSettings

    url = fill(template)
    shown = [repr(ConnectionSettings(url)), repr(StorageConfig(database_url=url))]
    try:
        shown.append(repr(resolve_database_url(url)))
    except ConfigError as exc:
        shown += exception_texts(exc)
    assert_hidden(mask_url(url), *shown)


# ---- the CLI, in process ----------------------------------------------------

COMMANDS = [
    pytest.param(["export", "--output", "out.jsonl"], id="export"),
    pytest.param(["review", "sessions"], id="review-sessions"),
    pytest.param(["review", "approve", "1"], id="review-approve"),
    pytest.param(["db", "status"], id="db-status"),
    pytest.param(["db", "upgrade"], id="db-upgrade"),
    pytest.param(["db", "upgrade", "--dry-run"], id="db-upgrade-dry-run"),
    pytest.param(["db", "recover", "--older-than", "1h"], id="db-recover"),
    pytest.param(["db", "seed-demo", "--sessions", "1"], id="db-seed-demo"),
    pytest.param(["quickstart", "--tasks", "1"], id="quickstart"),
    pytest.param(["ui", "--dry-run"], id="ui"),
]


def error_lines(err: str) -> list[str]:
    # quickstart says what it is about to do before it connects
    return [line for line in err.splitlines() if line.startswith("Error: ")]


def run_cli(
    argv: list[str], capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> tuple[int, str, str]:
    caplog.set_level(logging.DEBUG)
    code = main(argv)
    out, err = capsys.readouterr()
    assert_hidden(out, err, *log_texts(caplog))
    return code, out, err


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("template", ALL_FORMS)
def test_cli_commands_hide_the_password(
    fill: Callable[[str], str],
    template: str,
    command: list[str],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    code, _, err = run_cli([*command, "--database-url", fill(template)], capsys, caplog)
    assert (code, len(error_lines(err))) == (2, 1)


@pytest.mark.parametrize("template", MALFORMED)
def test_cli_malformed_url_is_one_error_line(
    fill: Callable[[str], str],
    template: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = fill(template)
    code, out, err = run_cli(["db", "status", "--database-url", url], capsys, caplog)
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1
    assert err.startswith(f"Error: Database URL {mask_url(url)} is not valid: ")


@pytest.mark.parametrize("template", WELL_FORMED)
def test_db_url_prints_the_url_masked(
    fill: Callable[[str], str],
    template: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = fill(template)
    code, out, err = run_cli(["db", "url", "--source", "--database-url", url], capsys, caplog)
    assert (code, out, err) == (0, mask_url(url) + "\n", "# from --database-url\n")


@pytest.mark.parametrize("template", MALFORMED)
def test_db_url_refuses_a_malformed_url(
    fill: Callable[[str], str],
    template: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    code, out, err = run_cli(["db", "url", "--source", "--database-url", fill(template)],
                             capsys, caplog)  # fmt: skip
    assert (code, out) == (2, "")
    assert err.startswith("Error: Database URL ")


# ---- ${PW} expanded from a config file -------------------------------------

PASSWORDS = [
    pytest.param(SECRET, id="plain"),
    pytest.param(SECRET + "%zz", id="bad-escape"),
    pytest.param(SECRET + "@x", id="raw-at"),
    pytest.param(SECRET + "/x", id="raw-slash"),
]


# quickstart reads no --config (it runs the demo configuration), so it is left out here.
CONFIG_COMMANDS = [c for c in COMMANDS if c.id != "quickstart"]


@pytest.mark.parametrize("command", [*CONFIG_COMMANDS, pytest.param(["db", "url"], id="db-url")])
@pytest.mark.parametrize("password", PASSWORDS)
def test_password_from_the_environment_via_config(
    fill: Callable[[str], str],
    password: str,
    command: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("ATLAS_TEST_PW", password)
    url = fill("postgresql://nobody:${{ATLAS_TEST_PW}}@{H}:{P}/db")
    config = tmp_path / "atlas.yaml"
    config.write_text(f"storage:\n  database_url: {url}\n")
    code, _, err = run_cli([*command, "--config", str(config)], capsys, caplog)
    if command != ["db", "url"] or password != SECRET:
        assert (code, len(error_lines(err))) == (2, 1)
