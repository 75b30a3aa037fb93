"""``arc-atlas ui``: the refusals are one line and exit 2; the server starts, answers and stops."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from atlas.cli.main import main

SECRET = "hunter2-never-shown"
_URL_VARIABLES = ("ATLAS_DATABASE_URL", "STORAGE__DATABASE_URL", "DATABASE_URL")
START_TIMEOUT = 60.0


@pytest.fixture(autouse=True)
def _no_token_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATLAS_UI_TOKEN", raising=False)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A port on 127.0.0.1 that another program is listening on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _with_password(url: str) -> str:
    """``url`` with a password the test server ignores (trust), to check it is never shown."""
    return psycopg.conninfo.make_conninfo(url, password=SECRET)


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    return err.rstrip("\n")


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::"])
def test_a_non_loopback_host_without_a_token_is_refused(capsys, host: str):
    assert main(["ui", "--host", host]) == 2
    assert _error(capsys) == (
        f"Error: --host {host} is not a loopback address, so anyone who can reach it could "
        "read and review sessions: pass --token TOKEN or set ATLAS_UI_TOKEN."
    )


def test_an_empty_host_is_refused(capsys):
    assert main(["ui", "--host", " ", "--token", "t"]) == 2
    assert _error(capsys) == "Error: --host is empty: give an address such as 127.0.0.1."


def test_a_dry_run_checks_everything_prints_the_url_and_serves_nothing(capsys, db_url: str):
    port = _free_port()
    url = _with_password(db_url)
    assert main(["ui", "--dry-run", "--port", str(port), "--database-url", url]) == 0
    out, err = capsys.readouterr()
    assert out == f"arc-atlas ui: http://127.0.0.1:{port}/\n"
    assert err.endswith("dry run: all set, not serving.\n") and SECRET not in err
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # released again


def test_an_empty_token_counts_as_none(capsys, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ATLAS_UI_TOKEN", "")
    assert main(["ui", "--host", "0.0.0.0"]) == 2
    assert "is not a loopback address" in _error(capsys)


@pytest.mark.parametrize(
    ("port", "problem"),
    [
        pytest.param("0", "port 0 is out of range: give 1 to 65535", id="zero"),
        pytest.param("70000", "port 70000 is out of range: give 1 to 65535", id="too-big"),
        pytest.param("-1", "port -1 is out of range: give 1 to 65535", id="negative"),
        pytest.param("http", "invalid port 'http': give a number", id="text"),
    ],
)
def test_a_port_out_of_range_is_refused(capsys, port: str, problem: str):
    assert main(["ui", f"--port={port}"]) == 2
    assert _error(capsys) == f"Error: argument --port: {problem} (see `arc-atlas ui --help`)."


def test_a_port_in_use_is_refused(capsys, db_url: str, listener: socket.socket):
    port = listener.getsockname()[1]
    assert main(["ui", "--port", str(port), "--database-url", db_url]) == 2
    assert _error(capsys) == f"Error: port {port} on 127.0.0.1 is in use: pass --port."


def test_an_unreachable_database_is_one_line_without_the_password(capsys):
    url = f"postgresql://atlas:{SECRET}@127.0.0.1:1/atlas"
    assert main(["ui", "--port", str(_free_port()), "--database-url", url]) == 2
    line = _error(capsys)
    assert line.startswith("Error: Database at postgresql://atlas:***@127.0.0.1:1/atlas ")
    assert SECRET not in line


def _start(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("ATLAS_DATABASE_URL", "STORAGE__DATABASE_URL", "DATABASE_URL", "ATLAS_UI_TOKEN")
    }
    environ["ATLAS_HOME"] = str(tmp_path / "atlas-home")
    environ.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "atlas.cli", "ui", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )


def _first_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT)
    if not ready:
        process.kill()
        process.communicate()
        pytest.fail("arc-atlas ui printed no URL")
    return process.stdout.readline().rstrip("\n")


def _stop(process: subprocess.Popen[str], signum: int) -> tuple[str, str]:
    process.send_signal(signum)
    try:
        return process.communicate(timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise


def test_the_server_prints_its_url_answers_and_stops_on_ctrl_c(tmp_path: Path, db_url: str):
    port = _free_port()
    process = _start(tmp_path, "--port", str(port), "--database-url", _with_password(db_url))
    try:
        assert _first_line(process) == f"arc-atlas ui: http://127.0.0.1:{port}/"
        # The socket listens before the URL is printed: no polling needed.
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=START_TIMEOUT)
        assert page.status_code == 200 and "<!doctype html>" in page.text.lower()
    finally:
        out, err = _stop(process, signal.SIGINT)
    assert process.returncode == 0
    assert out == ""
    assert "Ctrl-C to stop" in err and err.endswith("arc-atlas ui: stopped.\n")
    assert "Traceback" not in err
    assert SECRET not in err and "***" in err


def test_a_token_from_the_environment_allows_any_host_and_guards_every_request(
    tmp_path: Path, db_url: str
):
    port = _free_port()
    token = "tok-" + "x" * 20
    process = _start(
        tmp_path, "--host", "0.0.0.0", "--port", str(port), "--database-url", db_url,
        env={"ATLAS_UI_TOKEN": token},
    )  # fmt: skip
    try:
        assert _first_line(process) == f"arc-atlas ui: http://0.0.0.0:{port}/?token={token}"
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(base + "/", timeout=START_TIMEOUT).status_code == 401
        assert httpx.get(base + "/static/app.css").status_code == 401
        bearer = {"Authorization": f"Bearer {token}"}
        assert httpx.get(base + "/", headers=bearer).status_code == 200
    finally:
        _, err = _stop(process, signal.SIGTERM)
    # SIGTERM ends it as it ends every command (exit 143), after a clean shutdown.
    assert process.returncode == 143
    assert err.endswith("Error: terminated (SIGTERM); no partial output was left behind.\n")
    assert "Traceback" not in err
