"""docs/cli.md stays in step with the parser: every command and flag is in it, none is stale."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from atlas.cli.main import build_parser

DOC = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
# Flags written in the reference (`--flag`, also inside a table cell).
DOCUMENTED_FLAGS = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", DOC))


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(build_parser()))


def _long_flags(parser: argparse.ArgumentParser) -> set[str]:
    return {
        flag
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction)
        for flag in action.option_strings
        if flag.startswith("--") and action.help != argparse.SUPPRESS
    }


@pytest.mark.parametrize(
    ("path", "parser"), [pytest.param(p, s, id=" ".join(p) or "arc-atlas") for p, s in COMMANDS]
)
def test_every_flag_of_every_command_is_documented(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    missing = _long_flags(parser) - DOCUMENTED_FLAGS
    assert not missing, f"docs/cli.md does not mention {sorted(missing)} of {' '.join(path)}"


@pytest.mark.parametrize("path", [pytest.param(p, id=" ".join(p)) for p, _ in COMMANDS if p])
def test_every_command_is_documented(path: tuple[str, ...]) -> None:
    assert f"`{path[-1]}" in DOC or f" {path[-1]}" in DOC, " ".join(path)


def test_no_documented_flag_is_stale() -> None:
    known = set().union(*(_long_flags(parser) for _, parser in COMMANDS)) | {"--help"}
    stale = DOCUMENTED_FLAGS - known
    assert not stale, f"docs/cli.md documents flags no command has: {sorted(stale)}"
