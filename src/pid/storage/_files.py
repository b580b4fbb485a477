"""Local-file helpers shared by both backends: atomic replacement and chunked reading.

Everything here is blocking; async callers run it through `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from pid.core.files import FILE_MODE, fsync_dir

# Temporary files are named ".<name>.<random>.part" beside their destination. Keys may not have
# a segment that starts with ".", so a temporary file can never be mistaken for an object.
TEMP_PREFIX = "."
TEMP_SUFFIX = ".part"

# Readable by the other service users that share a data folder; mkstemp's 0600 would hide
# objects written by a worker from the API process running as another user.
_OBJECT_MODE = FILE_MODE

# A concurrent `delete_prefix` may remove the folder between `mkdir` and `mkstemp`.
_CREATE_ATTEMPTS = 3


class AtomicFileWriter:
    """Write a file beside `dest`, then fsync and rename it over `dest` in one step.

    Readers of `dest` see its old content or the whole new content: `os.replace` within one
    folder is atomic on POSIX. The SHA-256 and size of what was written are kept as it goes.
    """

    def __init__(self, dest: Path, temp: Path, handle: BinaryIO) -> None:
        self.dest = dest
        self.temp = temp
        self._handle = handle
        self._hash = hashlib.sha256()
        self.size = 0

    @classmethod
    def open(cls, dest: Path) -> AtomicFileWriter:
        """Create the temporary file (and `dest`'s folders) for a new write to `dest`."""
        fd, name = _make_temp(dest)
        try:
            os.fchmod(fd, _OBJECT_MODE)
            handle = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            Path(name).unlink(missing_ok=True)
            raise
        return cls(dest, Path(name), handle)

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the bytes written so far."""
        return self._hash.hexdigest()

    def write(self, chunk: bytes) -> None:
        """Append `chunk`."""
        self._handle.write(chunk)
        self._hash.update(chunk)
        self.size += len(chunk)

    def commit(self) -> None:
        """Make the write durable and visible at `dest`; on failure, abort it."""
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self.temp.replace(self.dest)
        except BaseException:
            self.abort()
            raise
        # The rename itself lives in the folder's entry; without this a crash could forget it.
        fsync_dir(self.dest.parent)

    def abort(self) -> None:
        """Drop the temporary file; `dest` keeps what it had. Safe to call more than once."""
        with contextlib.suppress(OSError):
            self._handle.close()
        self.temp.unlink(missing_ok=True)


async def iter_file(path: Path, chunk_size: int) -> AsyncIterator[bytes]:
    """Yield the file at `path` in chunks of at most `chunk_size` bytes, reading off the loop."""
    handle = await asyncio.to_thread(_open_for_reading, path)
    try:
        while chunk := await asyncio.to_thread(handle.read, chunk_size):
            yield chunk
    finally:
        # Synchronous: closing a regular file does not block, and an async generator that is
        # finalised without `aclose()` may not await here.
        handle.close()


def is_temp_name(name: str) -> bool:
    """Whether a file name is one of `AtomicFileWriter`'s temporary files."""
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


def temp_target(name: str) -> str:
    """The file name a temporary file ".<name>.<random>.part" is being written to."""
    return name[len(TEMP_PREFIX) : -len(TEMP_SUFFIX)].rpartition(".")[0]


def _open_for_reading(path: Path) -> BinaryIO:
    return path.open("rb")


def _make_temp(dest: Path) -> tuple[int, str]:
    for _ in range(_CREATE_ATTEMPTS - 1):
        dest.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            return _mkstemp_beside(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    return _mkstemp_beside(dest)


def _mkstemp_beside(dest: Path) -> tuple[int, str]:
    return tempfile.mkstemp(
        dir=dest.parent, prefix=f"{TEMP_PREFIX}{dest.name}.", suffix=TEMP_SUFFIX
    )
