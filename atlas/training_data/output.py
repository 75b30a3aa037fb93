"""Writing an export safely: a temporary file beside the target, renamed when complete.

An interrupted, failed or killed export never leaves a file under the target
name: data goes to ``.<name>.<random>.partial`` in the same directory (so the
final rename is atomic on the same file system), and only :meth:`commit`
moves it into place. Compression follows the target's extension.
"""

from __future__ import annotations

import contextlib
import gzip
import lzma
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

from atlas.errors import OutputError

__all__ = ["COMPRESSIONS", "OutputError", "SafeOutput", "compression_for"]

# extension -> (name, default level)
COMPRESSIONS: dict[str, tuple[str, int]] = {
    ".gz": ("gzip", 6),
    ".xz": ("xz", 3),
    ".zst": ("zstd", 3),
}


def compression_for(path: str) -> str | None:
    """``gzip`` / ``xz`` / ``zstd`` from the file name's extension, or None for plain text."""
    suffix = Path(path).suffix.lower()
    found = COMPRESSIONS.get(suffix)
    return found[0] if found else None


def _compressor(raw: IO[bytes], kind: str | None, level: int | None) -> IO[bytes]:
    if kind is None:
        return raw
    if kind == "gzip":
        gz: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=level or 6, mtime=0)  # type: ignore[assignment]
        return gz
    if kind == "xz":
        return lzma.LZMAFile(raw, mode="wb", preset=3 if level is None else level)
    try:
        import zstandard
    except ImportError:  # pragma: no cover - a declared dependency
        raise OutputError(
            "Writing .zst needs the zstandard package: pip install zstandard."
        ) from None
    writer: IO[bytes] = zstandard.ZstdCompressor(level=level or 3).stream_writer(raw, closefd=False)
    return writer


class SafeOutput:
    """A binary output stream for ``path`` (``-`` = stdout) that appears only when committed.

    Raises :class:`OutputError` at construction when the directory is missing
    or not writable, so callers can fail before doing any work.
    """

    def __init__(self, path: str, *, compression_level: int | None = None):
        self.path = path
        self.to_stdout = path == "-"
        self.kind = None if self.to_stdout else compression_for(path)
        self._temp: Path | None = None
        self._raw: IO[bytes]
        if self.to_stdout:
            self._raw = sys.stdout.buffer
        else:
            self._raw = self._open_temp(Path(path))
        self.stream = _compressor(self._raw, self.kind, compression_level)
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
            fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=directory)
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
        where = "stdout" if self.to_stdout else self.path
        return OutputError(
            f"Could not write {where} ({exc.strerror or exc}): free some space or choose "
            "another --output; nothing was left under that name."
        )

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
