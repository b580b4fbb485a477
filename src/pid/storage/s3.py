"""The S3 backend over aioboto3: AWS S3 or any S3-compatible server (MinIO, Ceph, moto).

One client per storage object, opened lazily on the running loop and closed by `close()`: an
aiohttp connection pool belongs to the loop that made it, so a storage object must stay on one
loop (a worker's long-lived loop, or the API's).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import logging
from collections.abc import AsyncGenerator, AsyncIterable, Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING, cast

from aiobotocore.config import AioConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

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

if TYPE_CHECKING:
    import aioboto3
    from types_aiobotocore_s3.client import S3Client
    from types_aiobotocore_s3.literals import BucketLocationConstraintType
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef

logger = logging.getLogger(__name__)

# S3 refuses parts below 5 MiB (except the last one).
MIN_PART_SIZE = 5 * 1024 * 1024
DEFAULT_PART_SIZE = 8 * 1024 * 1024
# DeleteObjects takes at most 1000 keys per request.
_DELETE_BATCH = 1000

# Error codes S3 answers for a missing object: GetObject says NoSuchKey, HEAD has no body and
# so only the status code.
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
_NO_BUCKET_CODES = frozenset({"NoSuchBucket", "NotFound", "404"})
_NO_ACCESS_CODES = frozenset(
    {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}
)
# Failures that mean the server was not reached or would not let us in at all.
_UNREACHABLE = (BotoConnectionError, HTTPClientError, NoCredentialsError, PartialCredentialsError)


@dataclass(slots=True)
class _Upload:
    """A multipart upload in progress and the parts it has so far."""

    key: str
    upload_id: str
    parts: list[CompletedPartTypeDef] = field(default_factory=list)


class S3Storage(Storage):
    """Objects in one S3 bucket, keys used as they are.

    Parameters
    ----------
    session
        The process's `aioboto3.Session`; this object opens one client from it.
    bucket, endpoint_url, region
        Where objects live; `endpoint_url=None` means AWS itself.
    access_key_id, secret_access_key
        Explicit credentials; both `None` uses boto's default chain (environment, profile,
        instance role).
    part_size
        Streams and files up to this size go up in one PUT; larger ones as a multipart upload
        in parts of this size (at least 5 MiB). Memory held per upload is about one part.
    connect_timeout, read_timeout, max_attempts
        Limits on every request, so that no call waits forever on a dead server.
    check_timeout
        Upper bound in seconds on `check()`, retries included.

    Notes
    -----
    A write that fails mid-way aborts its multipart upload. A process killed mid-upload leaves
    the parts behind (never a visible object); a bucket lifecycle rule such as
    AbortIncompleteMultipartUpload after one day clears them.
    """

    backend = "s3"

    def __init__(
        self,
        session: aioboto3.Session,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_attempts: int = 3,
        check_timeout: float = 5.0,
    ) -> None:
        if not bucket:
            raise ValueError("S3Storage needs a bucket name")
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes, not {part_size}")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        self.part_size = part_size
        self.check_timeout = check_timeout
        self._session = session
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self._config = AioConfig(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            # S3-compatible servers on a plain host:port rarely serve bucket subdomains.
            s3={"addressing_style": "path"} if endpoint_url else None,
        )
        self._stack = AsyncExitStack()
        self._s3: S3Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        # Never the credentials.
        return f"S3Storage(bucket={self.bucket!r}, endpoint={self._where})"

    @property
    def _where(self) -> str:
        return self.endpoint_url or f"AWS S3 ({self.region or 'default region'})"

    # --- writes -----------------------------------------------------------------------------

    async def put_bytes(self, key: str, data: bytes) -> StoredObject:
        # One PUT whatever the size (S3 takes up to 5 GiB): the bytes are in memory already.
        validate_key(key)
        client = await self._client()
        digest = await asyncio.to_thread(_sha256_hex, data)
        with self._errors(f"write {key!r}", key=None):
            await client.put_object(Bucket=self.bucket, Key=key, Body=data)
        return StoredObject(key=key, size=len(data), sha256=digest)

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes]) -> StoredObject:
        validate_key(key)
        client = await self._client()
        digest = hashlib.sha256()
        size = 0
        pending = bytearray()
        upload: _Upload | None = None
        try:
            async for chunk in chunks:
                # hashlib releases the GIL on large buffers, so this runs truly off the loop.
                await asyncio.to_thread(digest.update, chunk)
                size += len(chunk)
                pending += chunk
                while len(pending) >= self.part_size:
                    upload = upload or await self._start_upload(client, key)
                    await self._upload_part(client, upload, bytes(pending[: self.part_size]))
                    del pending[: self.part_size]
            await self._finish_write(client, key, upload, bytes(pending))
        except BaseException:
            if upload is not None:
                await self._abort_upload(client, upload)
            raise
        return StoredObject(key=key, size=size, sha256=digest.hexdigest())

    # --- reads ------------------------------------------------------------------------------

    async def get_bytes(self, key: str) -> bytes:
        validate_key(key)
        client = await self._client()
        with self._errors(f"read {key!r}", key=key):
            response = await client.get_object(Bucket=self.bucket, Key=key)
            body = response["Body"]
            async with body:
                data: bytes = await body.read()
        return data

    async def stream(
        self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncGenerator[bytes, None]:
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, not {chunk_size}")
        validate_key(key)
        client = await self._client()
        with self._errors(f"read {key!r}", key=key):
            response = await client.get_object(Bucket=self.bucket, Key=key)
        body = response["Body"]
        # Leaving this block (end, error, or the consumer closing early) releases the
        # connection back to the pool or closes it.
        async with body:
            pending = bytearray()
            while True:
                # The socket hands over whatever has arrived; gather full chunks so that both
                # backends yield the same chunk sizes.
                with self._errors(f"read {key!r}", key=key):
                    piece: bytes = await body.read(chunk_size - len(pending))
                if not piece:
                    break
                pending += piece
                if len(pending) == chunk_size:
                    yield bytes(pending)
                    pending.clear()
            if pending:
                yield bytes(pending)

    # --- metadata and removal ---------------------------------------------------------------

    async def exists(self, key: str) -> bool:
        try:
            await self.size(key)
        except ObjectNotFound:
            return False
        return True

    async def size(self, key: str) -> int:
        validate_key(key)
        client = await self._client()
        with self._errors(f"inspect {key!r}", key=key):
            response = await client.head_object(Bucket=self.bucket, Key=key)
        return response["ContentLength"]

    async def delete(self, key: str) -> None:
        # S3 answers 204 for a missing key too, which is the idempotence we want.
        validate_key(key)
        client = await self._client()
        with self._errors(f"delete {key!r}", key=None):
            await client.delete_object(Bucket=self.bucket, Key=key)

    async def delete_prefix(self, prefix: str) -> int:
        validate_prefix(prefix)
        if not prefix:
            raise InvalidKey("delete_prefix needs a non-empty prefix")
        client = await self._client()
        removed = 0
        # Listing continues after the last key returned, so deleting a page before asking for
        # the next one skips nothing.
        with self._errors(f"delete under {prefix!r}", key=None):
            async for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            ):
                keys = [item["Key"] for item in page.get("Contents", [])]
                for start in range(0, len(keys), _DELETE_BATCH):
                    removed += await self._delete_batch(client, keys[start : start + _DELETE_BATCH])
        return removed

    async def list(self, prefix: str = "") -> builtins.list[ObjectInfo]:
        validate_prefix(prefix)
        client = await self._client()
        infos: builtins.list[ObjectInfo] = []
        with self._errors(f"list {prefix!r}", key=None):
            async for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            ):
                infos.extend(
                    ObjectInfo(
                        key=item["Key"],
                        size=item["Size"],
                        last_modified=item["LastModified"].astimezone(UTC),
                    )
                    for item in page.get("Contents", [])
                )
        return sorted(infos, key=lambda info: info.key)

    # --- lifecycle --------------------------------------------------------------------------

    async def check(self) -> None:
        try:
            client = await self._client()
            async with asyncio.timeout(self.check_timeout):
                await client.head_bucket(Bucket=self.bucket)
        except TimeoutError as exc:
            raise StorageUnavailable(
                self.backend, f"no answer from {self._where} within {self.check_timeout:g} s"
            ) from exc
        except ClientError as exc:
            raise StorageUnavailable(self.backend, self._bucket_problem(exc)) from exc
        except (BotoCoreError, ValueError) as exc:
            # ValueError: botocore's answer to a malformed endpoint URL.
            raise StorageUnavailable(self.backend, f"cannot reach {self._where}: {exc}") from exc

    async def ensure_bucket(self) -> None:
        """Create the bucket unless it exists (for tests and local S3-compatible servers)."""
        client = await self._client()
        with self._errors(f"create bucket {self.bucket!r}", key=None):
            try:
                await client.head_bucket(Bucket=self.bucket)
                return
            except ClientError as exc:
                if _code(exc) not in _NO_BUCKET_CODES:
                    raise
            try:
                await self._create_bucket(client)
            except ClientError as exc:
                # Another process won the race: the bucket is there, which is all we need.
                if _code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise

    async def close(self) -> None:
        stack, self._stack = self._stack, AsyncExitStack()
        self._s3 = None
        self._loop = None
        # An asyncio.Lock that was ever waited on belongs to that loop; the next one needs its own.
        self._lock = asyncio.Lock()
        await stack.aclose()

    # --- helpers ----------------------------------------------------------------------------

    async def _client(self) -> S3Client:
        """The client, opened on first use on the running loop."""
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:
            raise RuntimeError(
                "S3Storage is bound to the event loop it was first used on; "
                "make one per loop or close() it first"
            )
        if self._s3 is None:
            async with self._lock:
                if self._s3 is None:
                    self._s3 = await self._stack.enter_async_context(
                        self._session.client(
                            "s3",
                            endpoint_url=self.endpoint_url,
                            region_name=self.region,
                            aws_access_key_id=self._access_key_id,
                            aws_secret_access_key=self._secret_access_key,
                            config=self._config,
                        )
                    )
                    self._loop = loop
        return self._s3

    @contextlib.contextmanager
    def _errors(self, action: str, *, key: str | None) -> Iterator[None]:
        """Turn botocore's errors into this package's; `key` set: a 404 is ObjectNotFound."""
        try:
            yield
        except ClientError as exc:
            raise self._translate(exc, action, key) from exc
        except _UNREACHABLE as exc:
            raise StorageUnavailable(self.backend, f"cannot reach {self._where}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"s3 storage: cannot {action}: {exc}") from exc

    def _translate(self, exc: ClientError, action: str, key: str | None) -> StorageError:
        code = _code(exc)
        if key is not None and code in _NOT_FOUND_CODES:
            return ObjectNotFound(key)
        if code == "NoSuchBucket" or code in _NO_ACCESS_CODES:
            return StorageUnavailable(self.backend, self._bucket_problem(exc))
        message = exc.response.get("Error", {}).get("Message", "")
        return StorageError(
            f"s3 storage: cannot {action} (bucket {self.bucket!r} at {self._where}): "
            f"{code} {message}".rstrip()
        )

    def _bucket_problem(self, exc: ClientError) -> str:
        code = _code(exc)
        if code in _NO_BUCKET_CODES:
            return f"bucket {self.bucket!r} does not exist at {self._where}"
        if code in _NO_ACCESS_CODES:
            return f"access to bucket {self.bucket!r} at {self._where} denied ({code})"
        return f"bucket {self.bucket!r} at {self._where} answered {code}"

    async def _create_bucket(self, client: S3Client) -> None:
        # us-east-1 is the one region that refuses an explicit LocationConstraint.
        if self.region and self.region != "us-east-1":
            await client.create_bucket(
                Bucket=self.bucket,
                # The stubs list AWS's regions only; S3-compatible servers name their own.
                CreateBucketConfiguration={
                    "LocationConstraint": cast("BucketLocationConstraintType", self.region)
                },
            )
        else:
            await client.create_bucket(Bucket=self.bucket)

    async def _finish_write(
        self, client: S3Client, key: str, upload: _Upload | None, rest: bytes
    ) -> None:
        """Send what is left: the whole object in one PUT, or the last part and completion."""
        if upload is None:
            with self._errors(f"write {key!r}", key=None):
                await client.put_object(Bucket=self.bucket, Key=key, Body=rest)
            return
        if rest:
            await self._upload_part(client, upload, rest)
        with self._errors(f"write {key!r}", key=None):
            await client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload.upload_id,
                MultipartUpload={"Parts": upload.parts},
            )

    async def _start_upload(self, client: S3Client, key: str) -> _Upload:
        with self._errors(f"write {key!r}", key=None):
            response = await client.create_multipart_upload(Bucket=self.bucket, Key=key)
        return _Upload(key=key, upload_id=response["UploadId"])

    async def _upload_part(self, client: S3Client, upload: _Upload, data: bytes) -> None:
        number = len(upload.parts) + 1
        with self._errors(f"write {upload.key!r}", key=None):
            response = await client.upload_part(
                Bucket=self.bucket,
                Key=upload.key,
                UploadId=upload.upload_id,
                PartNumber=number,
                Body=data,
            )
        upload.parts.append({"ETag": response["ETag"], "PartNumber": number})

    async def _abort_upload(self, client: S3Client, upload: _Upload) -> None:
        """Drop an unfinished upload's parts; never masks the error that led here."""
        try:
            await client.abort_multipart_upload(
                Bucket=self.bucket, Key=upload.key, UploadId=upload.upload_id
            )
        except Exception:
            logger.warning(
                "could not abort multipart upload of %r in bucket %r; "
                "its parts stay until a lifecycle rule removes them",
                upload.key,
                self.bucket,
                exc_info=True,
            )

    async def _delete_batch(self, client: S3Client, keys: Sequence[str]) -> int:
        response = await client.delete_objects(
            Bucket=self.bucket,
            Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
        )
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise StorageError(
                f"s3 storage: {len(errors)} of {len(keys)} deletions failed in bucket "
                f"{self.bucket!r}, first {first.get('Key')!r}: "
                f"{first.get('Code')} {first.get('Message')}"
            )
        return len(keys)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
