"""The one interface every artifact goes through, its records and its errors.

Both backends share the behaviour written here: writes are atomic (a reader sees the old object
or the new one, never a part), large files move in chunks, and a missing key raises
`ObjectNotFound` whichever backend holds it.
"""

from __future__ import annotations

import abc
import asyncio
import builtins
import contextlib
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from pid.storage._files import AtomicFileWriter, iter_file

# 1 MiB: large enough that per-chunk overhead (a thread hop, an HTTP frame) is negligible,
# small enough that a few hundred concurrent streams stay within a worker's memory.
DEFAULT_CHUNK_SIZE = 1024 * 1024


class StorageError(Exception):
    """A storage operation failed; the message names the backend, the key and the reason."""


# The names below are the interface the API and tasks catch; they read as conditions, which is
# why they do not carry an "Error" suffix.
class ObjectNotFound(StorageError):  # noqa: N818
    """No object is stored under `key`."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no object stored at key {key!r}")
        self.key = key


class InvalidKey(StorageError, ValueError):  # noqa: N818
    """A key or prefix that could escape its namespace or that the backends disagree on."""


class StorageUnavailable(StorageError):  # noqa: N818
    """The backend cannot be reached or used at all (bad endpoint, missing bucket, no access)."""

    def __init__(self, backend: str, reason: str) -> None:
        super().__init__(f"{backend} storage unavailable: {reason}")
        self.backend = backend
        self.reason = reason


@dataclass(frozen=True, slots=True)
class StoredObject:
    """An object as written or read in full: its key, size in bytes and SHA-256 (hex)."""

    key: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One entry of a listing; `last_modified` is timezone-aware (UTC)."""

    key: str
    size: int
    last_modified: datetime


class Storage(abc.ABC):
    """Async object storage keyed by '/'-separated strings (see `pid.storage.keys`).

    Subclasses implement the primitive operations; whole-bytes and whole-file writes and file
    downloads are built here on top of `put_stream` and `stream`, so both backends share one
    atomicity and chunking story (a backend may override them with something cheaper). Use it
    as an async context manager or call `close()`.

    Errors: `InvalidKey` for a key no backend accepts, `ObjectNotFound` for a missing object,
    `StorageUnavailable` when the backend cannot be reached or used, `StorageError` for any
    other failure of the backend. Errors raised by the caller's own data (a chunk iterable, a
    source file) propagate unchanged.
    """

    #: Names the backend in error messages ("local", "s3").
    backend: ClassVar[str]

    # --- writes -----------------------------------------------------------------------------

    @abc.abstractmethod
    async def put_stream(self, key: str, chunks: AsyncIterable[bytes]) -> StoredObject:
        """Store the concatenated chunks under `key`, replacing any object there, atomically.

        If the iterable raises, nothing is stored and any object already at `key` is kept;
        the iterable's exception propagates unchanged.
        """

    async def put_bytes(self, key: str, data: bytes) -> StoredObject:
        """Store `data` under `key`, replacing any object there, atomically."""
        return await self.put_stream(key, _single_chunk(data))

    async def put_file(self, key: str, path: Path) -> StoredObject:
        """Store the local file at `path` under `key`, reading it in chunks.

        A missing or unreadable source raises the `OSError` that `open` raised.
        """
        return await self.put_stream(key, iter_file(path, DEFAULT_CHUNK_SIZE))

    # --- reads ------------------------------------------------------------------------------

    @abc.abstractmethod
    async def get_bytes(self, key: str) -> bytes:
        """The whole object at `key`; `ObjectNotFound` if there is none."""

    @abc.abstractmethod
    def stream(
        self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncGenerator[bytes, None]:
        """The object at `key` in chunks of `chunk_size` bytes (the last one may be shorter).

        The object is opened on the first iteration, so `ObjectNotFound` is raised there; a
        caller that must answer 404 before it starts a response checks `exists()` first.
        A caller that stops early closes the generator (`aclose()`, or `contextlib.aclosing`)
        to release the file or the connection at once rather than at garbage collection.
        """

    async def get_file(self, key: str, path: Path) -> StoredObject:
        """Download the object at `key` to `path`, atomically, creating parent folders.

        `path` holds either its previous content or the whole object, never a part; on any
        failure no temporary file is left beside it.
        """
        writer = await asyncio.to_thread(AtomicFileWriter.open, path)
        try:
            # aclosing: a failed local write must release the download's connection now.
            async with contextlib.aclosing(self.stream(key)) as chunks:
                async for chunk in chunks:
                    await asyncio.to_thread(writer.write, chunk)
            await asyncio.to_thread(writer.commit)
        except BaseException:
            # Synchronous on purpose: it must also run when the task is being cancelled, and
            # closing a descriptor and unlinking one file does not stall the loop.
            writer.abort()
            raise
        return StoredObject(key=key, size=writer.size, sha256=writer.sha256)

    # --- metadata and removal ---------------------------------------------------------------

    @abc.abstractmethod
    async def exists(self, key: str) -> bool:
        """Whether an object is stored at `key`."""

    @abc.abstractmethod
    async def size(self, key: str) -> int:
        """Size in bytes of the object at `key`; `ObjectNotFound` if there is none."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the object at `key`; removing a missing object is not an error."""

    @abc.abstractmethod
    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key starts with `prefix`; return how many were removed.

        An empty prefix is refused (`InvalidKey`): wiping a whole bucket is never a side effect.
        """

    @abc.abstractmethod
    async def list(self, prefix: str = "") -> builtins.list[ObjectInfo]:
        """Every object whose key starts with `prefix` (plain string prefix), sorted by key."""

    # --- lifecycle --------------------------------------------------------------------------

    @abc.abstractmethod
    async def check(self) -> None:
        """Raise `StorageUnavailable` unless the backend can be used right now."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections; safe to call more than once."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def _single_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data
