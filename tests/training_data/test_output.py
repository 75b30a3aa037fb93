"""SafeOutput: compression levels checked per extension, and stale temporary files removed."""

from __future__ import annotations

import errno
import gzip
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from atlas.errors import InvalidFilter
from atlas.training_data.output import (
    STALE_AFTER_SECONDS,
    SafeOutput,
    check_compression_level,
    remove_stale_partials,
)

PAYLOAD = b'{"task": "the same line again"}\n' * 2000


@pytest.mark.parametrize(
    ("name", "level", "expected"),
    [
        pytest.param("o.jsonl.gz", None, 6, id="gzip-default"),
        pytest.param("o.jsonl.gz", 0, 0, id="gzip-0-is-0"),
        pytest.param("o.jsonl.gz", 9, 9, id="gzip-9"),
        pytest.param("o.jsonl.xz", 0, 0, id="xz-0"),
        pytest.param("o.jsonl.xz", None, 3, id="xz-default"),
        pytest.param("o.jsonl.zst", 22, 22, id="zstd-22"),
        pytest.param("o.jsonl.ZST", 1, 1, id="zstd-upper-case-extension"),
        pytest.param("o.jsonl", None, None, id="plain"),
        pytest.param("-", None, None, id="stdout"),
    ],
)
def test_levels_each_compression_takes(name, level, expected):
    assert check_compression_level(name, level) == expected


UNCOMPRESSED = (
    "compression_level applies only to .gz, .xz and .zst outputs; {} is written uncompressed: "
    "leave it out, or name the output e.g. out.jsonl.gz."
)


def _range(level: object, kind: str, name: str, low: int, high: int) -> str:
    return f"compression_level {level} is out of range for {kind} ({name}): use {low} to {high}."


@pytest.mark.parametrize(
    ("name", "level", "message"),
    [
        pytest.param("o.gz", 99, _range(99, "gzip", "o.gz", 0, 9), id="gzip-99"),
        pytest.param("o.gz", -1, _range(-1, "gzip", "o.gz", 0, 9), id="gzip-negative"),
        pytest.param("o.xz", 10, _range(10, "xz", "o.xz", 0, 9), id="xz-10"),
        pytest.param("o.zst", 0, _range(0, "zstd", "o.zst", 1, 22), id="zstd-0"),
        pytest.param("o.zst", 23, _range(23, "zstd", "o.zst", 1, 22), id="zstd-23"),
        pytest.param("o.gz", True, _range(True, "gzip", "o.gz", 0, 9), id="bool"),
        pytest.param("o.jsonl", 3, UNCOMPRESSED.format("o.jsonl"), id="plain"),
        pytest.param("-", 3, UNCOMPRESSED.format("stdout"), id="stdout"),
    ],
)
def test_a_level_the_output_cannot_take_is_refused(name, level, message):
    with pytest.raises(InvalidFilter) as caught:
        check_compression_level(name, level)
    assert str(caught.value) == message
    assert caught.value.parameter == "compression_level"


@pytest.mark.parametrize("name", ["o.jsonl.gz", "o.jsonl.xz", "o.jsonl.zst", "o.jsonl"])
def test_a_refused_level_leaves_no_file_behind(tmp_path, name):
    with pytest.raises(InvalidFilter):
        SafeOutput(str(tmp_path / name), compression_level=99)
    assert list(tmp_path.iterdir()) == []


def test_gzip_level_0_stores_without_compressing(tmp_path):
    sizes = {}
    for level in (0, 6):
        target = tmp_path / f"l{level}.jsonl.gz"
        with SafeOutput(str(target), compression_level=level) as out:
            out.write(PAYLOAD)
        assert gzip.decompress(target.read_bytes()) == PAYLOAD
        sizes[level] = target.stat().st_size
    assert sizes[0] > len(PAYLOAD) > 10 * sizes[6]


def _orphan(target: Path) -> Path:
    """A temporary file left by a real export process killed with SIGKILL."""
    code = (
        "import os, signal, sys\n"
        "from atlas.training_data.output import SafeOutput\n"
        "out = SafeOutput(sys.argv[1])\n"
        "out.write(b'half a session')\n"
        "out.stream.flush()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(target)], timeout=60)
    assert result.returncode == -signal.SIGKILL
    (left,) = target.parent.glob(f".{target.name}.*.partial")
    return left


def test_a_later_export_removes_the_file_of_a_killed_one(tmp_path):
    target = tmp_path / "out.jsonl"
    orphan = _orphan(target)
    with SafeOutput(str(target)) as out:
        out.write(b"{}\n")
    assert not orphan.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def _partial(target: Path, middle: str, age: float = 0) -> Path:
    path = target.parent / f".{target.name}.{middle}.partial"
    path.write_bytes(b"x")
    if age:
        moment = time.time() - age
        os.utime(path, (moment, moment))
    return path


def test_a_live_exports_file_is_kept(tmp_path):
    target = tmp_path / "out.jsonl"
    live = _partial(target, f"{os.getpid()}@{socket.gethostname()}.abcd1234")
    assert remove_stale_partials(target) == []
    assert live.exists()


@pytest.mark.parametrize(
    ("middle", "age", "removed"),
    [
        pytest.param("7@other-host.abcd1234", 60, False, id="other-host-recent"),
        pytest.param("7@other-host.abcd1234", STALE_AFTER_SECONDS + 60, True, id="other-host-old"),
        pytest.param("abcd1234", 60, False, id="no-pid-recent"),
        pytest.param("abcd1234", STALE_AFTER_SECONDS + 60, True, id="no-pid-old"),
    ],
)
def test_files_whose_owner_cannot_be_checked_go_by_age(tmp_path, middle, age, removed):
    target = tmp_path / "out.jsonl"
    path = _partial(target, middle, age)
    assert remove_stale_partials(target) == ([path] if removed else [])


def test_other_targets_files_are_left_alone(tmp_path):
    dead = _orphan(tmp_path / "out.jsonl.gz")
    old = _partial(tmp_path / "other.jsonl", "abcd1234", STALE_AFTER_SECONDS + 60)
    assert remove_stale_partials(tmp_path / "out.jsonl") == []
    assert dead.exists() and old.exists()


@pytest.mark.parametrize(
    ("code", "fix"),
    [
        pytest.param(errno.ENOSPC, "free some space or choose another --output", id="full"),
        pytest.param(errno.EACCES, "check the folder's permissions", id="denied"),
        pytest.param(errno.EIO, "choose another --output", id="other"),
    ],
)
def test_a_write_error_says_what_fixes_it(tmp_path: Path, code: int, fix: str) -> None:
    output = SafeOutput(str(tmp_path / "x.jsonl"))
    error = output._failed(OSError(code, os.strerror(code)))
    output.abort()
    assert fix in str(error) and "nothing was left under that name" in str(error)


def test_a_closed_pipe_says_the_reader_closed_it() -> None:
    error = SafeOutput("-")._failed(BrokenPipeError(errno.EPIPE, "Broken pipe"))
    assert str(error).startswith("The reader of stdout closed it (broken pipe)")
