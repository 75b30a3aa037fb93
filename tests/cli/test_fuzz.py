"""Every command and subcommand, each option given a hostile value, against a real database.

The commands are read from the argparse parser, so a new command or option
is fuzzed without touching this file. Each run must exit 0, 1 or 2, print no
traceback, and leave no file behind when it fails (no ``.partial`` ever). A
fixed table covers the classic hostile values; a small Hypothesis budget adds
arbitrary ones.
"""

from __future__ import annotations

import argparse
import io
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from atlas.cli.main import build_parser, main
from atlas.runtime.demo import DEMO_CONFIG
from atlas.storage.synthetic import seed_sessions

HOSTILE = {
    "negative": "-1",
    "zero": "0",
    "bigint": str(2**63),
    "huge": str(10**400),
    "nan": "nan",
    "inf": "inf",
    "empty": "",
    "nul": "\x00",
    "long": "a" * 10_000,
    "bogus": "bogus",
    "missing-path": "{work}/no/such/folder/file.jsonl",
    "unwritable": "/proc/arc-atlas-fuzz/file.jsonl",
    "dash": "-",
}


def _leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """(command words, parser) for each command that runs something."""
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers:
        yield path, parser
        return
    for name, sub in subparsers[0].choices.items():
        yield from _leaves(sub, (*path, name))


def _valued_options(parser: argparse.ArgumentParser) -> list[str]:
    """Each option that takes a value, and each positional (as its dest)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.nargs == 0:
            continue
        found.append(
            action.option_strings[-1 if action.option_strings[0] == "-o" else 0]
            if action.option_strings
            else action.dest
        )
    return found


COMMANDS = dict(_leaves(build_parser()))


def _base(command: tuple[str, ...]) -> dict[str, str]:
    """Values that make each command do real but quick work; a fuzzed option replaces its own."""
    return {
        ("export",): {"--output": "{work}/out.jsonl"},
        ("review", "show"): {"session_id_arg": "1"},
        ("review", "approve"): {"ids": "1"},
        ("review", "quarantine"): {"ids": "2"},
        ("run",): {"--config": "{config}", "--task": "Summarize the fuzz run."},
        ("quickstart",): {"--tasks": "1", "--output": "{work}/quick.jsonl"},
        ("env", "init"): {"--path": "{work}/project", "--output": "{work}/atlas.yaml"},
        ("db", "recover"): {"--older-than": "1h", "--dry-run": ""},
        ("db", "seed-demo"): {"--sessions": "1"},
        ("db", "upgrade"): {"--dry-run": ""},
        # Without --dry-run, a valid value would start a server that never returns.
        ("ui",): {"--dry-run": ""},
    }.get(command, {})


def _argv(command: tuple[str, ...], values: dict[str, str]) -> list[str]:
    parser = COMMANDS[command]
    positional = {a.dest for a in parser._actions if not a.option_strings}
    argv = list(command)
    for name, value in values.items():
        if name in positional:
            argv.append(value)
        elif value == "" and name in ("--dry-run",):
            argv.append(name)
        else:
            argv.append(f"{name}={value}" if value.startswith("-") else name)
            if not value.startswith("-"):
                argv.append(value)
    return argv


# Cases known to fail, each with the file to fix (xfail, strict: they must
# be removed from here once fixed). None at present.
KNOWN: dict[tuple[str, str, str], str] = {}


@dataclass
class World:
    """The database, the working folder and the demo config every case uses."""

    url: str
    work: Path
    config: Path


@pytest.fixture(scope="module")
def world(
    server_url: str, _template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """One database for the module (seeded, reviewed), and an empty working folder."""
    name = f"atlas_fuzz_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(_template)
            )
        )
    url = psycopg.conninfo.make_conninfo(server_url, dbname=name)
    with psycopg.connect(url, autocommit=True) as conn:
        seed_sessions(conn, 6, seed=3)
    base = tmp_path_factory.mktemp("fuzz")
    config = base / "demo.yaml"
    config.write_text(yaml.safe_dump(DEMO_CONFIG))
    (base / "home").mkdir()
    work = base / "work"
    (work / "project").mkdir(parents=True)
    (work / "project" / "agent.py").write_text("def run_agent(task):\n    return task\n")
    yield World(url, work, config)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


def invoke(world: World, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """Run ``main(argv)`` in-process; return the exit code and everything printed."""
    monkeypatch.setenv("ATLAS_DATABASE_URL", world.url)
    monkeypatch.setenv("ATLAS_HOME", str(world.work.parent / "home"))
    monkeypatch.chdir(world.work)
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace")
    err = io.StringIO()
    before = _files(world.work)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    try:
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's --help and --version only
            code = int(exc.code or 0)
    finally:
        monkeypatch.setattr(sys, "stdout", sys.__stdout__)
        monkeypatch.setattr(sys, "stderr", sys.__stderr__)
    out.flush()
    printed = out.buffer.getvalue().decode("utf-8", "replace") + err.getvalue()  # type: ignore[attr-defined]
    created = _files(world.work) - before
    for path in sorted(created, reverse=True):  # files before their folders
        path.rmdir() if path.is_dir() else path.unlink()
    leftovers = [p for p in created if code != 0 or p.name.endswith(".partial")]
    assert leftovers == [], f"{argv[:3]} left {leftovers}"
    return code, printed


def _check(world: World, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, printed = invoke(world, argv, monkeypatch)
    assert "Traceback" not in printed, printed[-2000:]
    assert code in (0, 1, 2), (code, printed[-2000:])
    if code == 2:
        assert printed.rstrip("\n").splitlines()[-1].startswith("Error: "), printed[-2000:]


# Export writes through different code per format and compression: each
# option is fuzzed once per writer.
EXPORT_WRITERS = {
    "gz": {"--output": "{work}/out.jsonl.gz"},
    "parquet": {"--format": "parquet", "--output": "{work}/out.parquet"},
}


def _cases() -> Iterator[object]:
    for command, parser in COMMANDS.items():
        variants = {"": {}, **(EXPORT_WRITERS if command == ("export",) else {})}
        for variant, extra in variants.items():
            for option in _valued_options(parser):
                for label, value in HOSTILE.items():
                    key = (" ".join(command), option, label)
                    marks = (
                        [pytest.mark.xfail(reason=KNOWN[key], strict=True)] if key in KNOWN else []
                    )
                    case_id = "|".join((*key, variant) if variant else key)
                    yield pytest.param(command, extra, option, value, id=case_id, marks=marks)


def _fill(value: str, world: World) -> str:
    return value.replace("{work}", str(world.work)).replace("{config}", str(world.config))


@pytest.mark.parametrize(("command", "writer", "option", "value"), list(_cases()))
def test_hostile_value(
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    command: tuple[str, ...],
    writer: dict[str, str],
    option: str,
    value: str,
) -> None:
    values = {name: _fill(v, world) for name, v in {**_base(command), **writer}.items()}
    values[option] = _fill(value, world)
    _check(world, _argv(command, values), monkeypatch)


# Options given before the command word (`arc-atlas --database-url X db status`), and the
# default command (`arc-atlas --output FILE` is an export).
_ROOT_OPTIONS = [
    a.option_strings[0]
    for a in build_parser()._actions
    if a.option_strings and a.nargs != 0 and not isinstance(a, argparse._HelpAction)
]


@pytest.mark.parametrize("label", list(HOSTILE))
@pytest.mark.parametrize(
    "argv",
    [
        *([option, "{value}", "db", "status"] for option in _ROOT_OPTIONS),
        ["--output", "{value}"],
    ],
    ids=lambda argv: " ".join(argv).replace(" {value}", "") if isinstance(argv, list) else argv,
)
def test_hostile_value_before_the_command(
    world: World, monkeypatch: pytest.MonkeyPatch, argv: list[str], label: str
) -> None:
    value = _fill(HOSTILE[label], world)
    filled = [value if word == "{value}" else word for word in argv]
    if value.startswith("-"):  # `--opt=-1`, or argparse reads -1 as an option
        at = filled.index(value)
        filled[at - 1 : at + 1] = [f"{filled[at - 1]}={value}"]
    _check(world, filled, monkeypatch)


@pytest.mark.parametrize("command", list(COMMANDS), ids=" ".join)
def test_help_exits_0(
    world: World, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    assert invoke(world, [*command, "--help"], monkeypatch)[0] == 0


_VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=40),
    st.sampled_from(["APPROVED", " pending", "all", "*", "2024-02-30", "1d", "99999999999d"]),
)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_arbitrary_values(
    world: World, monkeypatch: pytest.MonkeyPatch, data: st.DataObject
) -> None:
    command = data.draw(
        st.sampled_from([c for c in COMMANDS if c not in (("run",), ("quickstart",))])
    )
    known = {(c, o) for c, o, _ in KNOWN}
    options = [o for o in _valued_options(COMMANDS[command]) if (" ".join(command), o) not in known]
    option = data.draw(st.sampled_from(options))
    values = {name: _fill(v, world) for name, v in _base(command).items()}
    values[option] = data.draw(_VALUES)
    _check(world, _argv(command, values), monkeypatch)
