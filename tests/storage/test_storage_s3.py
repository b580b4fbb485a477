"""What only the S3 backend can get wrong: the server, the bucket, multipart uploads, the loop."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from storage_support import ACCESS_KEY, REGION, SECRET_KEY, SESSION, Backend, make_s3

from pid.storage import S3Storage, Storage, StorageUnavailable, artifact_key, diagram_prefix
from pid.storage.s3 import MIN_PART_SIZE

pytestmark = pytest.mark.timeout(30)

KEY = artifact_key(uuid.UUID(int=42), "original.png")


def unused_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, read, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def check(storage: S3Storage) -> None:
    async def body(_: Storage) -> None:
        await storage.check()

    Backend("s3", lambda: storage).run(body)


def test_check_names_a_missing_bucket(s3_endpoint: str) -> None:
    with pytest.raises(StorageUnavailable) as caught:
        check(make_s3(s3_endpoint, "no-such-bucket-here"))
    message = str(caught.value)
    assert caught.value.backend == "s3"
    assert message.startswith("s3 storage unavailable: ")
    assert "bucket 'no-such-bucket-here' does not exist" in message
    assert s3_endpoint in message


def test_check_names_an_endpoint_where_nothing_listens() -> None:
    endpoint = f"http://127.0.0.1:{unused_port()}"
    with pytest.raises(StorageUnavailable) as caught:
        check(make_s3(endpoint, "any-bucket", max_attempts=1))
    assert caught.value.backend == "s3"
    assert f"cannot reach {endpoint}" in str(caught.value)


def test_check_gives_up_after_its_timeout() -> None:
    # With retries and backoff a dead endpoint could keep /readyz waiting for seconds.
    endpoint = f"http://127.0.0.1:{unused_port()}"
    started = time.monotonic()
    with pytest.raises(StorageUnavailable, match=r"no answer from .* within 0\.3 s"):
        check(make_s3(endpoint, "any-bucket", max_attempts=10, check_timeout=0.3))
    assert time.monotonic() - started < 3


def test_operations_on_a_missing_bucket_say_so(s3_endpoint: str) -> None:
    async def body(storage: Storage) -> None:
        with pytest.raises(StorageUnavailable, match="does not exist"):
            await storage.get_bytes(KEY)
        with pytest.raises(StorageUnavailable, match="does not exist"):
            await storage.put_bytes(KEY, b"x")

    Backend("s3", lambda: make_s3(s3_endpoint, "another-missing-bucket")).run(body)


def test_ensure_bucket_is_idempotent(s3_endpoint: str) -> None:
    bucket = f"test-{uuid.uuid4().hex[:20]}"

    async def body(storage: Storage) -> None:
        assert isinstance(storage, S3Storage)
        await storage.ensure_bucket()
        await storage.ensure_bucket()
        await storage.check()

    Backend("s3", lambda: make_s3(s3_endpoint, bucket)).run(body)


async def unfinished_uploads(endpoint: str, bucket: str) -> list[str]:
    async with SESSION.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    ) as client:
        response = await client.list_multipart_uploads(Bucket=bucket)
        return [upload["Key"] for upload in response.get("Uploads", [])]


def test_a_failed_multipart_write_is_aborted(s3_backend: Backend, s3_endpoint: str) -> None:
    assert s3_backend.bucket is not None
    bucket = s3_backend.bucket

    async def failing_source() -> AsyncIterator[bytes]:
        yield bytes(MIN_PART_SIZE + 1)  # one whole part goes up before the failure
        raise OSError("disk went away")

    async def body(storage: Storage) -> list[str]:
        with pytest.raises(OSError, match="disk went away"):
            await storage.put_stream(KEY, failing_source())
        return await unfinished_uploads(s3_endpoint, bucket)

    assert s3_backend.run(body) == []


def test_a_large_write_goes_up_in_parts(s3_backend: Backend, s3_endpoint: str) -> None:
    # Seen from the server: while the source is paused after its first part, an unfinished
    # multipart upload exists; afterwards none does and the object is whole.
    assert s3_backend.bucket is not None
    bucket = s3_backend.bucket
    data = bytes(range(256)) * (MIN_PART_SIZE // 128)
    during: list[list[str]] = []

    async def source() -> AsyncIterator[bytes]:
        yield data[:MIN_PART_SIZE]
        during.append(await unfinished_uploads(s3_endpoint, bucket))
        yield data[MIN_PART_SIZE:]

    async def body(storage: Storage) -> bytes:
        await storage.put_stream(KEY, source())
        assert await unfinished_uploads(s3_endpoint, bucket) == []
        return await storage.get_bytes(KEY)

    assert s3_backend.run(body) == data
    assert during == [[KEY]]


def test_storage_stays_on_the_loop_it_first_used(s3_backend: Backend) -> None:
    storage = s3_backend.make()

    async def use_then_close() -> None:
        await storage.exists(KEY)
        await storage.close()

    async def main() -> None:
        await storage.exists(KEY)  # the client now belongs to this loop
        with pytest.raises(RuntimeError, match="event loop"):
            await asyncio.to_thread(asyncio.run, storage.exists(KEY))
        await storage.close()
        # Once closed, another loop may open its own client.
        await asyncio.to_thread(asyncio.run, use_then_close())

    asyncio.run(main())


def test_repr_shows_no_credentials(s3_endpoint: str) -> None:
    shown = repr(make_s3(s3_endpoint, "some-bucket"))
    assert "some-bucket" in shown
    assert SECRET_KEY not in shown
    assert ACCESS_KEY not in shown


def test_part_size_below_the_s3_minimum_is_refused(s3_endpoint: str) -> None:
    with pytest.raises(ValueError, match="part_size"):
        make_s3(s3_endpoint, "some-bucket", part_size=MIN_PART_SIZE - 1)


def test_delete_prefix_deletes_in_batches(
    s3_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # S3 takes 1000 keys per DeleteObjects; a smaller batch exercises the same slicing with
    # a short last batch, without writing thousands of objects.
    monkeypatch.setattr("pid.storage.s3._DELETE_BATCH", 7)
    uid = uuid.UUID(int=43)

    async def body(storage: Storage) -> tuple[int, int]:
        await asyncio.gather(
            *(storage.put_bytes(artifact_key(uid, f"tile-{i:02d}.png"), b"t") for i in range(20))
        )
        removed = await storage.delete_prefix(diagram_prefix(uid))
        return removed, len(await storage.list())

    assert s3_backend.run(body) == (20, 0)
