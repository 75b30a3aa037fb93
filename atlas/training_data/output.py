"""Writing an export safely: a temporary file beside the target, renamed when complete.

An interrupted, failed or killed export never leaves a file under the target
name: data goes to ``.<name>.<pid>@<host>.<random>.partial`` in the same
directory (so the final rename is atomic on the same file system), and only
:meth:`commit` moves it into place. Compression follows the target's
extension, at a level checked against it before any file is created.

A run killed outright (``kill -9``, a power cut) cannot remove its temporary
file, so the next export to the same target does, but only when it is clearly
stale: the process named in it is gone from this host, or (for a file from
another host, or named before the pid was recorded) nothing has written to it
for :data:`STALE_AFTER_SECONDS`. A temporary file of a live export is never
touched, whoever owns it.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import io
import logging
import lzma
import os
import re
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any, NamedTuple

from atlas.errors import InvalidFilter, OutputError

__all__ = [
    "COMPRESSIONS",
    "STALE_AFTER_SECONDS",
    "Compression",
    "OutputError",
    "SafeOutput",
    "check_compression_level",
    "compression_for",
    "open_decompressed",
    "place_file",
    "remove_stale_partials",
    "stage_file",
]

_log = logging.getLogger(__name__)


class Compression(NamedTuple):
    """A compression arc-atlas writes: its name, default level and the levels it accepts."""

    name: str
    default_level: int
    levels: range


# Output extension -> compression; everything else is written as it is.
COMPRESSIONS: dict[str, Compression] = {
    ".gz": Compression("gzip", 6, range(0, 10)),
    ".xz": Compression("xz", 3, range(0, 10)),
    ".zst": Compression("zstd", 3, range(1, 23)),
}
# A temporary file of another host (whose pid cannot be checked here), or one
# with no pid in its name, is stale once nothing has written to it for this
# long: a live export writes every few seconds, and a day leaves a wide margin.
STALE_AFTER_SECONDS = 24 * 3600


def compression_for(path: str) -> str | None:
    """``gzip`` / ``xz`` / ``zstd`` from the file name's extension, or None for plain text."""
    found = COMPRESSIONS.get(Path(path).suffix.lower())
    return found.name if found else None


def check_compression_level(path: str, level: Any) -> int | None:
    """The level to compress ``path`` (``-`` = stdout) at: ``level`` checked, or the default.

    gzip and xz take 0-9, zstd 1-22; 0 means 0 (no compression), not the
    default. Raises :class:`~atlas.errors.InvalidFilter` (parameter
    ``compression_level``) for a level out of range, or for any level when the
    output is not compressed (plain text, stdout): a level that would be
    ignored is a mistake to report, not to drop.
    """
    found = None if path == "-" else COMPRESSIONS.get(Path(path).suffix.lower())
    if level is None:
        return found.default_level if found else None
    where = "stdout" if path == "-" else Path(path).name
    if found is None:
        raise InvalidFilter(
            f"compression_level applies only to .gz, .xz and .zst outputs; {where} is "
            "written uncompressed: leave it out, or name the output e.g. out.jsonl.gz.",
            parameter="compression_level",
        )
    if isinstance(level, bool) or not isinstance(level, int) or level not in found.levels:
        low, high = found.levels[0], found.levels[-1]
        raise InvalidFilter(
            f"compression_level {level!r} is out of range for {found.name} ({where}): "
            f"use {low} to {high}.",
            parameter="compression_level",
        )
    return level


def open_decompressed(path: Path) -> IO[bytes]:
    """``path`` opened for reading, decompressed by its extension as outputs are compressed.

    Raises ``FileNotFoundError`` like :func:`open`.
    """
    kind = compression_for(str(path))
    if kind == "gzip":
        return io.BufferedReader(gzip.GzipFile(path, "rb"))
    if kind == "xz":
        return lzma.open(path, "rb")
    if kind == "zstd":
        import zstandard

        raw = path.open("rb")
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True))
    return path.open("rb")


def _compressor(raw: IO[bytes], kind: str | None, level: int | None) -> IO[bytes]:
    if kind is None or level is None:
        return raw
    if kind == "gzip":
        gz: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=level, mtime=0)  # type: ignore[assignment]
        return gz
    if kind == "xz":
        return lzma.LZMAFile(raw, mode="wb", preset=level)
    try:
        import zstandard
    except ImportError:  # pragma: no cover - a declared dependency
        raise OutputError(
            "Writing .zst needs the zstandard package: pip install zstandard."
        ) from None
    writer: IO[bytes] = zstandard.ZstdCompressor(level=level).stream_writer(raw, closefd=False)
    return writer


def _temp_pattern(target: Path) -> re.Pattern[str]:
    """Names of ``target``'s temporary files: group ``pid``/``host`` when recorded."""
    return re.compile(
        rf"\.{re.escape(target.name)}\.(?:(?P<pid>\d+)@(?P<host>[^/]+)\.)?[a-z0-9_]+\.partial"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    except OverflowError:  # not a pid this system can have
        return False
    return True


def remove_stale_partials(target: Path, *, now: float | None = None) -> list[Path]:
    """Remove temporary files of earlier exports to ``target`` that are clearly stale.

    Stale means: named with a pid on this host that no longer runs, or
    (another host's, or with no pid) untouched for :data:`STALE_AFTER_SECONDS`.
    A pid reused by a new process keeps its file until that age. Files that
    vanish or cannot be removed meanwhile are skipped. Returns those removed.
    """
    directory = target.parent if str(target.parent) else Path(".")
    pattern = _temp_pattern(target)
    host = socket.gethostname()
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        matches = [(p, pattern.fullmatch(p.name)) for p in directory.iterdir()]
    except OSError:
        return removed
    for path, match in matches:
        if match is None:
            continue
        try:
            if match["pid"] and match["host"] == host:
                stale = not _alive(int(match["pid"]))
            else:
                stale = now - path.stat().st_mtime > STALE_AFTER_SECONDS
            if stale:
                path.unlink()
                removed.append(path)
                _log.info("Removed %s, left by an export that did not finish.", path)
        except OSError:
            continue  # removed by someone else, or not ours to remove
    return removed


def stage_file(target: Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``target`` and fsync it; :func:`place_file`
    moves it into place. A failure removes the temporary file."""
    handle, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return Path(temp)


def place_file(staged: Path, target: Path) -> None:
    """Replace ``target`` with a file :func:`stage_file` wrote, in one rename."""
    try:
        os.replace(staged, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(staged)
        raise


class SafeOutput:
    """A binary output stream for ``path`` (``-`` = stdout) that appears only when committed.

    Raises at construction, before any file is created and so before the
    caller does any work: :class:`~atlas.errors.InvalidFilter` for a
    compression level the output cannot take (see :func:`check_compression_level`),
    :class:`OutputError` when the directory cannot be created or written.
    Stale temporary files of earlier exports to ``path`` are removed first
    (see :func:`remove_stale_partials`).
    """

    def __init__(self, path: str, *, compression_level: int | None = None):
        level = check_compression_level(path, compression_level)
        self.path = path
        self.to_stdout = path == "-"
        self.kind = None if self.to_stdout else compression_for(path)
        self._temp: Path | None = None
        self._raw: IO[bytes]
        if self.to_stdout:
            self._raw = sys.stdout.buffer
        else:
            if not Path(path).is_dir():
                remove_stale_partials(Path(path))
            self._raw = self._open_temp(Path(path))
        self.stream = self._raw
        try:
            self.stream = _compressor(self._raw, self.kind, level)
        except BaseException:
            self.abort()
            raise
        self.bytes_written = 0

    def _open_temp(self, target: Path) -> IO[bytes]:
        directory = target.parent if str(target.parent) else Path(".")
        if target.is_dir():
            raise OutputError(f"Output {target} is a directory: give a file name.")
        try:
            # The seeds write to traces/my-session.jsonl: create the folder as needed.
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"Cannot create output directory {directory} ({exc.strerror}): "
                "choose another --output."
            ) from None
        try:
            # The pid and host let a later export tell a killed run's file from a live one's.
            owner = f"{os.getpid()}@{socket.gethostname()}"
            fd, name = tempfile.mkstemp(
                prefix=f".{target.name}.{owner}.", suffix=".partial", dir=directory
            )
        except OSError as exc:
            raise OutputError(
                f"Cannot write to {directory} ({exc.strerror}): choose another --output."
            ) from None
        self._temp = Path(name)
        return os.fdopen(fd, "wb", buffering=1 << 20)

    def write(self, data: bytes) -> None:
        """Write uncompressed bytes; raises :class:`OutputError` when the disk refuses."""
        self.write_all([data])

    def write_all(self, parts: list[bytes]) -> None:
        """Write several chunks without joining them first."""
        try:
            for part in parts:
                self.stream.write(part)
        except OSError as exc:
            raise self._failed(exc) from exc
        self.bytes_written += sum(map(len, parts))

    def _failed(self, exc: OSError) -> OutputError:
        if exc.errno == errno.EPIPE:
            return OutputError(
                "The reader of stdout closed it (broken pipe), so the export stopped: "
                "what it received is incomplete."
            )
        where = "stdout" if self.to_stdout else self.path
        if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            fix = "free some space or choose another --output"
        elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            fix = "check the folder's permissions or choose another --output"
        else:
            fix = "choose another --output"
        left = "" if self.to_stdout else "; nothing was left under that name"
        return OutputError(f"Could not write {where} ({exc.strerror or exc}): {fix}{left}.")

    def commit(self) -> None:
        """Finish compression, flush to disk, and move the file into place."""
        try:
            if self.stream is not self._raw:
                self.stream.close()
            self._raw.flush()
            if self.to_stdout:
                return
            os.fsync(self._raw.fileno())
            self._raw.close()
        except OSError as exc:
            raise self._failed(exc) from exc
        assert self._temp is not None
        # Match the permissions a plainly created file would get (mkstemp uses 0600).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self._temp, 0o666 & ~umask)
        os.replace(self._temp, self.path)
        self._temp = None

    def abort(self) -> None:
        """Throw the partial output away (safe to call more than once)."""
        if self.to_stdout:
            return
        for closer in (self.stream, self._raw):
            with contextlib.suppress(Exception):  # best effort while discarding
                closer.close()
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)
            self._temp = None

    def __enter__(self) -> SafeOutput:
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()
