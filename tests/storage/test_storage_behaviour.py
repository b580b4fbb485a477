"""The behaviour every backend owes its callers, run against the local folder and S3 alike."""

from __future__ import annotations

import asyncio
import hashlib
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from storage_support import Backend

from pid.storage import (
    InvalidKey,
    ObjectNotFound,
    Storage,
    StoredObject,
    artifact_key,
    diagram_prefix,
)
from pid.storage.s3 import MIN_PART_SIZE

pytestmark = pytest.mark.timeout(60)

UID = uuid.UUID("12345678-1234-5678-1234-567812345678")
OTHER_UID = uuid.UUID("87654321-4321-8765-4321-876543218765")
KEY = artifact_key(UID, "graph.json")


class SourceFailedError(Exception):
    """Raised by a test's data source part-way through a write."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def leftover_temp_files(root: Path | None) -> list[Path]:
    """Temporary files a local write left behind (none expected after any write ends)."""
    if root is None or not root.exists():
        return []
    return [path for path in root.rglob("*") if path.name.startswith(".")]


def test_bytes_round_trip(backend: Backend) -> None:
    data = b'{"nodes": [], "links": []}'

    async def body(storage: Storage) -> None:
        stored = await storage.put_bytes(KEY, data)
        assert stored == StoredObject(key=KEY, size=len(data), sha256=sha256(data))
        assert await storage.get_bytes(KEY) == data
        assert await storage.exists(KEY)
        assert await storage.size(KEY) == len(data)

    backend.run(body)


def test_empty_object_round_trip(backend: Backend, tmp_path: Path) -> None:
    async def body(storage: Storage) -> None:
        stored = await storage.put_bytes(KEY, b"")
        assert stored.size == 0
        assert stored.sha256 == sha256(b"")
        assert await storage.get_bytes(KEY) == b""
        assert [chunk async for chunk in storage.stream(KEY)] == []
        downloaded = await storage.get_file(KEY, tmp_path / "empty.json")
        assert downloaded.size == 0
        assert (tmp_path / "empty.json").read_bytes() == b""

    backend.run(body)


def test_multi_megabyte_file_round_trip(backend: Backend, tmp_path: Path) -> None:
    # Over two S3 parts (the tests' part size is the 5 MiB minimum) plus a short last part.
    data = random_bytes(2 * MIN_PART_SIZE + 123_457, seed=1)
    source = tmp_path / "upload" / "original.png"
    source.parent.mkdir()
    source.write_bytes(data)
    target = tmp_path / "download" / "nested" / "original.png"
    key = artifact_key(UID, "original.png")

    async def body(storage: Storage) -> tuple[StoredObject, StoredObject]:
        uploaded = await storage.put_file(key, source)
        downloaded = await storage.get_file(key, target)
        return uploaded, downloaded

    uploaded, downloaded = backend.run(body)

    expected = StoredObject(key=key, size=len(data), sha256=sha256(data))
    assert uploaded == expected
    assert downloaded == expected
    assert sha256(target.read_bytes()) == sha256(data)
    assert sorted(path.name for path in target.parent.iterdir()) == ["original.png"]


def test_put_stream_round_trip_with_uneven_chunks(backend: Backend) -> None:
    data = random_bytes(MIN_PART_SIZE + 777, seed=2)

    async def body(storage: Storage) -> tuple[StoredObject, bytes]:
        stored = await storage.put_stream(KEY, chunks_of(data, 1_000_003))
        return stored, await storage.get_bytes(KEY)

    stored, read_back = backend.run(body)

    assert stored == StoredObject(key=KEY, size=len(data), sha256=sha256(data))
    assert read_back == data


def test_overwrite_replaces_the_whole_object(backend: Backend) -> None:
    async def body(storage: Storage) -> None:
        await storage.put_bytes(KEY, b"first version, longer than the second")
        await storage.put_bytes(KEY, b"second")
        assert await storage.get_bytes(KEY) == b"second"
        assert await storage.size(KEY) == len(b"second")
        assert [info.key for info in await storage.list(diagram_prefix(UID))] == [KEY]

    backend.run(body)


@pytest.mark.parametrize(
    "written_before_failure",
    [1000, MIN_PART_SIZE + 1000],
    ids=["single-request", "multipart"],
)
def test_failed_write_keeps_the_old_object_and_leaves_nothing(
    backend: Backend, written_before_failure: int
) -> None:
    old = b"old content"
    fresh_key = artifact_key(UID, "skeleton.png")

    async def failing_source() -> AsyncIterator[bytes]:
        yield random_bytes(written_before_failure, seed=3)
        raise SourceFailedError("source broke mid-way")

    async def body(storage: Storage) -> None:
        await storage.put_bytes(KEY, old)
        with pytest.raises(SourceFailedError):
            await storage.put_stream(KEY, failing_source())
        with pytest.raises(SourceFailedError):
            await storage.put_stream(fresh_key, failing_source())
        assert await storage.get_bytes(KEY) == old
        assert not await storage.exists(fresh_key)
        assert [info.key for info in await storage.list("")] == [KEY]

    backend.run(body)
    assert leftover_temp_files(backend.root) == []


def test_readers_see_the_old_object_while_a_write_is_under_way(backend: Backend) -> None:
    old = b"old content"
    new = random_bytes(MIN_PART_SIZE + 10, seed=4)
    fresh_key = artifact_key(UID, "junctions.json")
    seen_mid_write: list[object] = []

    async def body(storage: Storage) -> None:
        async def source() -> AsyncIterator[bytes]:
            yield new[: MIN_PART_SIZE + 5]
            # Part of the new object has been handed over (on S3 a whole part was sent).
            seen_mid_write.append(await storage.get_bytes(KEY))
            seen_mid_write.append(await storage.exists(fresh_key))
            yield new[MIN_PART_SIZE + 5 :]

        await storage.put_bytes(KEY, old)
        await storage.put_stream(KEY, source())
        await storage.put_stream(fresh_key, chunks_of(b"{}", 1))
        assert await storage.get_bytes(KEY) == new

    backend.run(body)
    assert seen_mid_write == [old, False]


def test_put_file_from_a_missing_source_stores_nothing(backend: Backend, tmp_path: Path) -> None:
    async def body(storage: Storage) -> None:
        with pytest.raises(FileNotFoundError):
            await storage.put_file(KEY, tmp_path / "no-such-file.png")
        assert not await storage.exists(KEY)

    backend.run(body)
    assert leftover_temp_files(backend.root) == []


def test_missing_key_raises_object_not_found_everywhere(backend: Backend, tmp_path: Path) -> None:
    target = tmp_path / "out" / "graph.json"

    async def body(storage: Storage) -> None:
        await storage.put_bytes(artifact_key(UID, "other.json"), b"{}")
        assert not await storage.exists(KEY)
        for attempt in (
            storage.get_bytes(KEY),
            storage.size(KEY),
            storage.get_file(KEY, target),
            anext(aiter(storage.stream(KEY))),
        ):
            with pytest.raises(ObjectNotFound) as caught:
                await attempt
            assert caught.value.key == KEY
            assert KEY in str(caught.value)

    backend.run(body)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []  # no temporary file either


def test_delete_is_idempotent(backend: Backend) -> None:
    async def body(storage: Storage) -> None:
        await storage.put_bytes(KEY, b"x")
        await storage.delete(KEY)
        assert not await storage.exists(KEY)
        await storage.delete(KEY)
        await storage.delete(artifact_key(OTHER_UID, "never-written.png"))

    backend.run(body)


def test_list_and_delete_prefix(backend: Backend) -> None:
    names = {"original.png": b"png", "graph.json": b"{}", "output.dexpi.xml": b"<x/>"}
    before = datetime.now(UTC) - timedelta(minutes=5)

    async def body(storage: Storage) -> None:
        for name, data in names.items():
            await storage.put_bytes(artifact_key(UID, name), data)
        await storage.put_bytes(artifact_key(OTHER_UID, "original.png"), b"other")

        listed = await storage.list(diagram_prefix(UID))
        assert [info.key for info in listed] == sorted(artifact_key(UID, n) for n in names)
        assert {info.key: info.size for info in listed} == {
            artifact_key(UID, name): len(data) for name, data in names.items()
        }
        for info in listed:
            assert info.last_modified.utcoffset() == timedelta(0)
            assert before <= info.last_modified <= datetime.now(UTC) + timedelta(minutes=5)

        assert len(await storage.list()) == 4
        assert len(await storage.list("diagrams/")) == 4
        # A plain string prefix, not a folder: part of a uid matches that diagram only.
        partial = await storage.list(f"diagrams/{str(UID)[:6]}")
        assert {info.key for info in partial} == {artifact_key(UID, n) for n in names}
        assert await storage.list("diagrams/none-such/") == []

        assert await storage.delete_prefix(diagram_prefix(UID)) == 3
        assert await storage.delete_prefix(diagram_prefix(UID)) == 0
        assert await storage.list(diagram_prefix(UID)) == []
        assert await storage.get_bytes(artifact_key(OTHER_UID, "original.png")) == b"other"

    backend.run(body)


def test_delete_prefix_removes_every_object_under_it(backend: Backend) -> None:
    count = 40

    async def body(storage: Storage) -> None:
        await asyncio.gather(
            *(
                storage.put_bytes(artifact_key(UID, f"tile-{index:03d}.png"), b"t")
                for index in range(count)
            )
        )
        assert len(await storage.list(diagram_prefix(UID))) == count
        assert await storage.delete_prefix(diagram_prefix(UID)) == count
        assert await storage.list() == []

    backend.run(body)


def test_delete_prefix_refuses_the_empty_prefix(backend: Backend) -> None:
    async def body(storage: Storage) -> None:
        await storage.put_bytes(KEY, b"keep me")
        with pytest.raises(InvalidKey):
            await storage.delete_prefix("")
        assert await storage.exists(KEY)

    backend.run(body)


def test_stream_yields_chunks_that_reassemble(backend: Backend) -> None:
    chunk_size = 64 * 1024
    data = random_bytes(5 * chunk_size // 2, seed=5)

    async def body(storage: Storage) -> list[bytes]:
        await storage.put_bytes(KEY, data)
        return [chunk async for chunk in storage.stream(KEY, chunk_size=chunk_size)]

    chunks = backend.run(body)

    assert [len(chunk) for chunk in chunks] == [chunk_size, chunk_size, chunk_size // 2]
    assert b"".join(chunks) == data


def test_streams_closed_early_release_their_resources(backend: Backend) -> None:
    # More early-closed streams than aiobotocore's pool has connections (10): a leak would
    # leave the last reads waiting for a free connection until the timeout below.
    data = random_bytes(512 * 1024, seed=6)

    async def body(storage: Storage) -> None:
        await storage.put_bytes(KEY, data)
        async with asyncio.timeout(20):
            for _ in range(15):
                stream = storage.stream(KEY, chunk_size=1024)
                assert await anext(aiter(stream)) == data[:1024]
                await stream.aclose()
            assert await storage.get_bytes(KEY) == data

    backend.run(body)


def test_stream_refuses_a_non_positive_chunk_size(backend: Backend) -> None:
    async def body(storage: Storage) -> None:
        await storage.put_bytes(KEY, b"x")
        with pytest.raises(ValueError, match="chunk_size"):
            await anext(aiter(storage.stream(KEY, chunk_size=0)))

    backend.run(body)


BAD_KEYS = [
    "",
    "/diagrams/a.png",
    "diagrams/../a.png",
    "..",
    "diagrams/./a.png",
    "diagrams\\a.png",
    "diagrams//a.png",
    "diagrams/",
    ".hidden",
    "diagrams/a\x00.png",
    "diagrams/a\n.png",
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_every_operation_refuses_bad_keys(backend: Backend, key: str, tmp_path: Path) -> None:
    async def body(storage: Storage) -> None:
        for attempt in (
            storage.put_bytes(key, b"x"),
            storage.put_stream(key, chunks_of(b"x", 1)),
            storage.get_bytes(key),
            storage.get_file(key, tmp_path / "out.bin"),
            storage.exists(key),
            storage.size(key),
            storage.delete(key),
            anext(aiter(storage.stream(key))),
        ):
            with pytest.raises(InvalidKey):
                await attempt
        assert await storage.list() == []

    backend.run(body)


@pytest.mark.parametrize("prefix", ["/diagrams", "../", "diagrams//", "a\\b", "diagrams/.x"])
def test_listing_refuses_bad_prefixes(backend: Backend, prefix: str) -> None:
    async def body(storage: Storage) -> None:
        with pytest.raises(InvalidKey):
            await storage.list(prefix)
        with pytest.raises(InvalidKey):
            await storage.delete_prefix(prefix)

    backend.run(body)


def test_check_passes_on_a_usable_backend(backend: Backend) -> None:
    async def body(storage: Storage) -> None:
        await storage.check()

    backend.run(body)
