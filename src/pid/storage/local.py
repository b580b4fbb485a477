"""The local-folder backend: one file per object under a root folder (the default backend).

Every filesystem call runs in a worker thread (`asyncio.to_thread`) so that the event loop
serving HTTP requests or worker hand-offs never waits on the disk.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import stat
import tempfile
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, ParamSpec, TypeVar

from pid.storage._files import (
    TEMP_PREFIX,
    TEMP_SUFFIX,
    AtomicFileWriter,
    is_temp_name,
    temp_target,
)
from pid.storage.base import (
    DEFAULT_CHUNK_SIZE,
    InvalidKey,
    ObjectInfo,
    ObjectNotFound,
    Storage,
    StorageError,
    StorageUnavailable,
    StoredObject,
)
from pid.storage.keys import validate_key, validate_prefix

P = ParamSpec("P")
T = TypeVar("T")

# What opening or stat-ing a key's path raises when no object is stored there: nothing at the
# path, a file where a folder was expected, or a folder where the object would be.
_NOT_AN_OBJECT = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


@dataclass(frozen=True, slots=True)
class _Entry:
    """A file found under a prefix: an object (`key` set) or a leftover temporary file."""

    path: Path
    key: str | None
    info: os.stat_result


class LocalStorage(Storage):
    """Objects as files under `root`; key "a/b.png" is the file `root/a/b.png`.

    Folders are created on write and removed by `delete_prefix` once empty. Writes go to a
    hidden temporary file in the destination folder and are renamed into place.
    """

    backend = "local"

    def __init__(self, root: Path) -> None:
        # Resolved once so that the traversal guard compares real paths.
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"LocalStorage(root={str(self.root)!r})"

    # --- writes -----------------------------------------------------------------------------

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes]) -> StoredObject:
        validate_key(key)
        writer = await self._io("write", key, self._open_writer, key)
        try:
            # Only the writer's calls are translated: an error raised by `chunks` (for example
            # an unreadable source file) is the caller's and propagates unchanged.
            async for chunk in chunks:
                await self._io("write", key, writer.write, chunk)
            await self._io("write", key, writer.commit)
        except BaseException:
            # Synchronous so that it also runs under cancellation; unlinking one file is quick.
            writer.abort()
            raise
        return StoredObject(key=key, size=writer.size, sha256=writer.sha256)

    # --- reads ------------------------------------------------------------------------------

    async def get_bytes(self, key: str) -> bytes:
        validate_key(key)
        return await self._io("read", key, self._read_bytes, key)

    async def stream(
        self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncGenerator[bytes, None]:
        _check_chunk_size(chunk_size)
        validate_key(key)
        handle = await self._io("read", key, self._open_object, key)
        try:
            while chunk := await self._io("read", key, handle.read, chunk_size):
                yield chunk
        finally:
            # Synchronous: a generator finalised without `aclose()` cannot await here.
            handle.close()

    # --- metadata and removal ---------------------------------------------------------------

    async def exists(self, key: str) -> bool:
        validate_key(key)
        return await self._io("inspect", key, self._exists, key)

    async def size(self, key: str) -> int:
        validate_key(key)
        return await self._io("inspect", key, self._size, key)

    async def delete(self, key: str) -> None:
        validate_key(key)
        await self._io("delete", key, self._delete, key)

    async def delete_prefix(self, prefix: str) -> int:
        validate_prefix(prefix)
        if not prefix:
            raise InvalidKey("delete_prefix needs a non-empty prefix")
        return await self._io("delete under", prefix, self._delete_prefix, prefix)

    async def list(self, prefix: str = "") -> builtins.list[ObjectInfo]:
        validate_prefix(prefix)
        return await self._io("list", prefix, self._list, prefix)

    # --- lifecycle --------------------------------------------------------------------------

    async def check(self) -> None:
        await asyncio.to_thread(self._check)

    async def close(self) -> None:
        """Nothing to release: every file is closed by the call that opened it."""

    # --- blocking parts, run in threads -----------------------------------------------------

    async def _io(
        self, action: str, key: str, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `fn` in a thread; an `OSError` becomes a `StorageError` naming the key."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except OSError as exc:
            raise StorageError(
                f"local storage: cannot {action} {key!r} under {self.root}: {exc}"
            ) from exc

    def _resolve(self, relative: str) -> Path:
        """The real path of `relative` (already validated), refused if it leaves the root."""
        path = (self.root / relative).resolve()
        # Validation already forbids "..", so this catches symbolic links that point out.
        if not path.is_relative_to(self.root):
            raise InvalidKey(f"local storage: {relative!r} resolves outside {self.root}")
        return path

    def _object_path(self, key: str) -> Path:
        path = self._resolve(key)
        if path == self.root:
            raise InvalidKey(f"local storage: key {key!r} resolves to the root folder")
        return path

    def _open_writer(self, key: str) -> AtomicFileWriter:
        return AtomicFileWriter.open(self._object_path(key))

    def _open_object(self, key: str) -> BinaryIO:
        try:
            return self._object_path(key).open("rb")
        except _NOT_AN_OBJECT:
            raise ObjectNotFound(key) from None

    def _read_bytes(self, key: str) -> bytes:
        with self._open_object(key) as handle:
            return handle.read()

    def _exists(self, key: str) -> bool:
        return self._object_path(key).is_file()

    def _size(self, key: str) -> int:
        try:
            info = self._object_path(key).stat()
        except _NOT_AN_OBJECT:
            raise ObjectNotFound(key) from None
        if not stat.S_ISREG(info.st_mode):
            raise ObjectNotFound(key)
        return info.st_size

    def _delete(self, key: str) -> None:
        with contextlib.suppress(*_NOT_AN_OBJECT):
            self._object_path(key).unlink()

    def _list(self, prefix: str) -> builtins.list[ObjectInfo]:
        infos = [
            ObjectInfo(
                key=entry.key,
                size=entry.info.st_size,
                last_modified=datetime.fromtimestamp(entry.info.st_mtime, tz=UTC),
            )
            for entry in self._walk(prefix)
            if entry.key is not None
        ]
        return sorted(infos, key=lambda info: info.key)

    def _delete_prefix(self, prefix: str) -> int:
        # Collected first: removing files while os.walk is still reading a folder is fragile.
        entries = builtins.list(self._walk(prefix))
        removed = 0
        for entry in entries:
            try:
                entry.path.unlink()
            except FileNotFoundError:
                continue  # removed by someone else meanwhile
            # Temporary files are removed too (a crashed write leaves one behind), but only
            # objects are counted.
            if entry.key is not None:
                removed += 1
        self._remove_empty_folders(prefix)
        return removed

    def _walk(self, prefix: str) -> Iterator[_Entry]:
        """Regular files whose key starts with `prefix`, plus temporary files among them.

        Only the folder that holds the prefix's last segment is walked, and only subfolders
        whose key could start with the prefix are entered. Symbolic links are skipped.
        """
        base_key = prefix.rpartition("/")[0]
        base = self._resolve(base_key) if base_key else self.root
        if not base.is_dir():
            return
        for folder, subfolders, files in os.walk(base):
            folder_key = _key_of(self.root, Path(folder))
            subfolders[:] = [
                name
                for name in subfolders
                if not name.startswith(".") and f"{_join(folder_key, name)}/".startswith(prefix)
            ]
            for name in files:
                entry = _entry(Path(folder) / name, folder_key, prefix)
                if entry is not None:
                    yield entry

    def _remove_empty_folders(self, prefix: str) -> None:
        """Remove folders that lie wholly under `prefix` and hold nothing any more."""
        base_key = prefix.rpartition("/")[0]
        base = self._resolve(base_key) if base_key else self.root
        if not base.is_dir():
            return
        for folder, _, _ in os.walk(base, topdown=False):
            path = Path(folder)
            if path != self.root and f"{_key_of(self.root, path)}/".startswith(prefix):
                # Not empty (a concurrent write, a file we may not touch) is fine: keep it.
                with contextlib.suppress(OSError):
                    path.rmdir()

    def _check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            # A real write proves more than os.access (read-only mounts, full quota).
            with tempfile.TemporaryFile(dir=self.root, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX):
                pass
        except OSError as exc:
            raise StorageUnavailable(
                self.backend, f"cannot write to {self.root}: {exc.strerror or exc}"
            ) from exc


def _key_of(root: Path, folder: Path) -> str:
    """The key path of `folder` relative to `root` ("" for the root itself)."""
    relative = folder.relative_to(root).as_posix()
    return "" if relative == "." else relative


def _join(folder_key: str, name: str) -> str:
    return f"{folder_key}/{name}" if folder_key else name


def _entry(path: Path, folder_key: str, prefix: str) -> _Entry | None:
    """The entry for file `path` in folder `folder_key`, if it falls under `prefix`.

    A temporary file falls under the prefix when the key it is being written to does.
    """
    name = path.name
    if is_temp_name(name):
        key, is_object = _join(folder_key, temp_target(name)), False
    elif name.startswith("."):
        return None  # not something this backend wrote
    else:
        key, is_object = _join(folder_key, name), True
    if not key.startswith(prefix):
        return None
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None  # removed since its folder was read
    if not stat.S_ISREG(info.st_mode):
        return None
    return _Entry(path=path, key=key if is_object else None, info=info)


def _check_chunk_size(chunk_size: int) -> None:
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, not {chunk_size}")
