"""The CLI's one error boundary: one ``Error:`` line and the documented exit code.

In-process through :func:`atlas.cli.main.main`; the subprocess tests at the
end cover what only a real process shows (a signal during imports, psycopg's
log lines on a real stderr).
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql

import atlas.cli
from atlas.cli import main as cli_main
from atlas.cli import run_cmd
from atlas.cli.main import Terminated, exit_code_for, main
from atlas.errors import ConfigError, MissingExtra, SessionFailed, SessionNotFound
from atlas.runtime.demo import DEMO_CONFIG, DEMO_TASKS
from atlas.storage.synthetic import seed_sessions


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        pytest.param(ConfigError("Bad key."), (2, "Error: Bad key."), id="atlas-error"),
        pytest.param(
            SessionNotFound("Session 9 is not in the database."),
            (1, "Error: Session 9 is not in the database."),
            id="session-not-found",
        ),
        pytest.param(
            SessionFailed("Session 3 failed: boom."),
            (1, "Error: Session 3 failed: boom."),
            id="session-failed",
        ),
        pytest.param(
            OSError(errno.ENOSPC, "No space left on device", "/d/x.parquet"),
            (
                2,
                "Error: No space left on device (/d/x.parquet): free some space or "
                "write elsewhere.",
            ),
            id="disk-full",
        ),
        pytest.param(
            PermissionError(errno.EACCES, "Permission denied", "/ro/x"),
            (
                2,
                "Error: Permission denied (/ro/x): choose a path you may write, or fix "
                "its permissions.",
            ),
            id="unwritable",
        ),
        pytest.param(
            KeyboardInterrupt(),
            (130, "Error: interrupted (Ctrl-C); no partial output was left behind."),
            id="ctrl-c",
        ),
        pytest.param(
            Terminated(),
            (143, "Error: terminated (SIGTERM); no partial output was left behind."),
            id="sigterm",
        ),
    ],
)
def test_expected_failures_have_a_line_and_a_code(exc: BaseException, expected: Any) -> None:
    assert exit_code_for(exc) == expected


def test_a_missing_train_module_names_the_extra() -> None:
    code, line = exit_code_for(ModuleNotFoundError("No module named 'pyarrow'", name="pyarrow"))  # type: ignore[misc]
    assert (code, line) == (2, f"Error: {MissingExtra.for_module('pyarrow')}")
    assert "[train]" in line


@pytest.mark.parametrize(
    "exc",
    [
        pytest.param(RuntimeError("bug"), id="runtime-error"),
        pytest.param(ModuleNotFoundError("x", name="no_such_module"), id="other-module"),
        pytest.param(OSError(errno.EBADF, "Bad file descriptor"), id="bad-fd"),
        pytest.param(TypeError("bug"), id="type-error"),
    ],
)
def test_unexpected_exceptions_are_not_known(exc: BaseException) -> None:
    assert exit_code_for(exc) is None


def test_an_unexpected_exception_keeps_its_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(root: Path) -> Any:
        raise RuntimeError("a bug in arc-atlas")

    monkeypatch.setattr(run_cmd, "discover", broken)
    with pytest.raises(RuntimeError, match="a bug in arc-atlas"):
        main(["env", "init", "--path", str(tmp_path), "--output", str(tmp_path / "a.yaml")])


def test_run_without_config_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "run", "--task", "hello") == (
        2,
        "",
        "Error: arc-atlas run needs --config FILE naming the agents to run: write one with "
        "`arc-atlas env init`, or try the demo agents with `arc-atlas quickstart`.\n",
    )


def test_a_failed_run_is_one_error_line_with_exit_1(
    capsys: pytest.CaptureFixture[str],
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "boom_agent.py").write_text(
        "def agent(prompt, metadata=None):\n    raise RuntimeError('the agent broke')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    config = dict(DEMO_CONFIG, agent={"type": "python", "import_path": "boom_agent:agent"})
    (tmp_path / "atlas.yaml").write_text(yaml.safe_dump(config))
    code, out, err = _run(
        capsys,
        "run",
        "--config",
        str(tmp_path / "atlas.yaml"),
        "--task",
        "t",
        "--database-url",
        db_url,
    )
    assert (code, out) == (1, "")
    assert err.startswith("Error: Session 1 failed: ") and err.count("\n") == 1


@pytest.mark.parametrize("tasks", ["-1", "0", str(len(DEMO_TASKS) + 1)])
def test_quickstart_tasks_out_of_range_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tasks: str
) -> None:
    assert _run(capsys, "quickstart", "--tasks", tasks) == (
        2,
        "",
        f"Error: --tasks must be between 1 and {len(DEMO_TASKS)} (the demo tasks).\n",
    )


def test_a_nul_byte_in_an_argument_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "export", "--output", "a\x00b") == (
        2,
        "",
        "Error: Argument 'a\\x00b' contains a NUL byte (\\x00).\n",
    )


def test_ctrl_c_while_the_commands_load_exits_130(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Interrupting:
        def find_spec(self, name: str, *args: object) -> None:
            if name == "atlas.cli.db":
                raise KeyboardInterrupt

    monkeypatch.delitem(sys.modules, "atlas.cli.db")
    monkeypatch.delattr(atlas.cli, "db")
    monkeypatch.setattr(sys, "meta_path", [Interrupting(), *sys.meta_path])
    assert _run(capsys, "db", "status") == (
        130,
        "",
        "Error: interrupted (Ctrl-C); no partial output was left behind.\n",
    )


def test_sigterm_during_a_command_exits_143_and_leaves_no_file(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    db_url: str,
) -> None:
    def terminated(root: Path) -> Any:
        os.kill(os.getpid(), signal.SIGTERM)
        return [], 0

    monkeypatch.setattr(run_cmd, "discover", terminated)
    code, _, err = _run(
        capsys,
        "env",
        "init",
        "--path",
        str(tmp_path / "."),
        "--output",
        str(tmp_path / "atlas.yaml"),
        "--database-url",
        db_url,
    )
    assert (code, err) == (143, "Error: terminated (SIGTERM); no partial output was left behind.\n")
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is not cli_main._on_sigterm


def test_env_init_leaves_no_config_when_the_database_is_down(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = _run(
        capsys,
        "env",
        "init",
        "--path",
        str(tmp_path),
        "--output",
        str(tmp_path / "atlas.yaml"),
        "--database-url",
        "postgresql://nobody@127.0.0.1:1/none",
    )
    assert code == 2 and err.startswith("Error: ") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_env_init_to_stdout_writes_the_config_there(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = _run(capsys, "env", "init", "--output", "-", "--database-url", db_url)
    assert code == 0 and yaml.safe_load(out)["metadata"]["source"] == "arc-atlas env init"
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_output_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, db_url: str
) -> None:
    code, _, err = _run(
        capsys,
        "env",
        "init",
        "--path",
        str(tmp_path),
        "--output",
        str(tmp_path / "missing" / "atlas.yaml"),
        "--database-url",
        db_url,
    )
    assert (code, err) == (
        2,
        f"Error: Cannot write {tmp_path / 'missing' / 'atlas.yaml'} (No such file or directory): "
        "choose another --output.\n",
    )


# --- a role that may only read -------------------------------------------------------------


@pytest.fixture
def reader_url(reviewed_url: str) -> Iterator[str]:
    """A role with CONNECT and SELECT only, on the reviewed database."""
    role = f"atlas_reader_{uuid.uuid4().hex[:8]}"
    name = sql.Identifier(role)
    with psycopg.connect(reviewed_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(name))
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(name))
    yield psycopg.conninfo.make_conninfo(reviewed_url, user=role)
    with psycopg.connect(reviewed_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(name))
        conn.execute(sql.SQL("DROP ROLE {}").format(name))


@pytest.mark.parametrize(
    ("argv", "refused"),
    [
        pytest.param(["review", "approve", "2"], "UPDATE on TABLE sessions", id="review-approve"),
        pytest.param(["db", "recover", "--older-than", "1s"], "UPDATE on TABLE sessions",
                     id="db-recover"),
        pytest.param(["db", "seed-demo", "--sessions", "1"], "USAGE on SEQUENCE sessions_id_seq",
                     id="seed-needs-the-sequence"),
        pytest.param(["db", "upgrade"], "CREATE on SCHEMA public", id="upgrade-needs-create"),
    ],
)  # fmt: skip
def test_a_read_only_role_gets_one_permission_line(
    capsys: pytest.CaptureFixture[str], reader_url: str, argv: list[str], refused: str
) -> None:
    privilege, _, target = refused.partition(" on ")
    code, out, err = _run(capsys, *argv, "--database-url", reader_url)
    role = psycopg.conninfo.conninfo_to_dict(reader_url)["user"]
    assert (code, out, err.count("\n")) == (2, "", 1)
    assert f"refused {privilege} on {target.lower()}: role {role} lacks that privilege." in err
    assert err.rstrip().endswith(f"or have the owner run GRANT {privilege} ON {target} TO {role}.")


# --- the server goes away mid-command ------------------------------------------------------


@pytest.fixture
def dying_url(db_url: str) -> str:
    """Sessions whose reading connection is terminated mid-export, as a server restart does."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_sessions(conn, 3, seed=1)
        conn.execute(
            "CREATE FUNCTION die() RETURNS bool LANGUAGE sql VOLATILE "
            "AS $$ SELECT pg_terminate_backend(pg_backend_pid()) $$"
        )
        conn.execute("ALTER TABLE sessions RENAME TO sessions_real")
        conn.execute("CREATE VIEW sessions AS SELECT * FROM sessions_real WHERE die()")
    return db_url


def test_a_dropped_connection_prints_no_driver_noise(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    dying_url: str,
    tmp_path: Path,
) -> None:
    code, _, err = _run(
        capsys, "export", "-o", str(tmp_path / "o.jsonl"), "--database-url", dying_url
    )
    assert (code, err.count("\n"), list(tmp_path.iterdir())) == (2, 1, [])
    # The server's FATAL line or the closed socket, whichever the client reads first.
    assert err.startswith("Error: Database at ")
    assert "terminating connection" in err or "server closed the connection" in err
    assert [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")] == []


def test_the_noise_filter_is_removed_after_the_command(
    capsys: pytest.CaptureFixture[str], dying_url: str, tmp_path: Path
) -> None:
    _run(capsys, "export", "-o", str(tmp_path / "out.jsonl"), "--database-url", dying_url)
    assert [logging.getLogger(name).filters for name in cli_main._DRIVER_LOGGERS] == [[], [], []]


# --- real processes ------------------------------------------------------------------------

_INTERRUPT_ON_IMPORT = """
import os, signal, sys
class Interrupt:
    def find_spec(self, name, *args):
        if name == "psycopg":
            os.kill(os.getpid(), signal.SIGINT)
sys.meta_path.insert(0, Interrupt())
sys.argv = ["arc-atlas", "db", "status"]
from atlas.cli.main import run
run()
"""


def test_sigint_while_importing_exits_130_without_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _INTERRUPT_ON_IMPORT], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stderr) == (
        130,
        "Error: interrupted (Ctrl-C); no partial output was left behind.\n",
    )


def test_the_console_entry_point_imports_no_driver_before_the_boundary() -> None:
    code = (
        "import sys, atlas.cli.main\n"
        "print(sorted(m for m in ('psycopg', 'pydantic', 'yaml') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout == "[]\n", result.stderr


def test_a_dropped_connection_prints_one_line_on_a_real_stderr(cli: Any, dying_url: str) -> None:
    result = cli("export", "--output", "-", "--database-url", dying_url)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: Database at ")


def test_a_control_character_in_a_value_keeps_the_error_on_one_line() -> None:
    assert exit_code_for(ConfigError("Database URL a\rb\nc is not valid.")) == (
        2,
        "Error: Database URL a\\rb\\nc is not valid.",
    )


_FILE_SIZE_LIMIT = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails with EFBIG instead of a kill
resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
sys.argv = ["arc-atlas", *sys.argv[1:]]
from atlas.cli.main import run
run()
"""


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        pytest.param("jsonl", "out.jsonl", id="jsonl"),
        pytest.param("parquet", "out.parquet", id="parquet"),
    ],
)
def test_a_disk_that_refuses_more_bytes_is_one_line_and_no_file(
    reviewed_url: str, tmp_path: Path, fmt: str, name: str
) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    target = tmp_path / "out" / name
    result = subprocess.run(
        [sys.executable, "-c", _FILE_SIZE_LIMIT, "export", "--include-all-statuses",
         "--format", fmt, "--output", str(target), "--database-url", reviewed_url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert (result.returncode, result.stderr.count("\n")) == (2, 1), result.stderr
    assert result.stderr.startswith(f"Error: Could not write {target} (File too large)")
    assert list(target.parent.iterdir()) == []


def test_no_arguments_prints_the_help_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys)
    assert (code, err) == (0, "") and out.startswith("usage: arc-atlas")


def test_the_console_entry_point_exits_with_the_code(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["arc-atlas", "quickstart", "--tasks", "0"])
    with pytest.raises(SystemExit) as caught:
        cli_main.run()
    assert caught.value.code == 2
    assert capsys.readouterr().err.startswith("Error: --tasks must be between 1 and ")


def test_a_second_ctrl_c_while_reporting_the_first_still_exits_130(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def interrupted(argv: object = None) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_main, "main", interrupted)
    with pytest.raises(SystemExit) as caught:
        cli_main.run()
    assert caught.value.code == 130
