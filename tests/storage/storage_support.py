"""Helpers shared by the storage tests: the backend under test and S3 storage on moto."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aioboto3

from pid.storage import S3Storage, Storage
from pid.storage.s3 import MIN_PART_SIZE

T = TypeVar("T")
Body = Callable[[Storage], Coroutine[Any, Any, T]]

# moto accepts any credentials; explicit ones keep boto away from the machine's own.
ACCESS_KEY = "testing-access"
SECRET_KEY = "testing-secret-do-not-print"
REGION = "us-east-1"

# One session for the test process, as a worker keeps one per process: a session caches the
# parsed S3 service model, which makes each new client cheap.
SESSION = aioboto3.Session()


@dataclass(frozen=True)
class Backend:
    """One backend under test: how to make a storage object, and where its data lives."""

    name: str
    make: Callable[[], Storage]
    root: Path | None = None  # the local backend's folder
    bucket: str | None = None  # the S3 backend's bucket

    def run(self, body: Body[T]) -> T:
        """Run `body(storage)` in a new event loop and close the storage afterwards."""

        async def main() -> T:
            async with self.make() as storage:
                return await body(storage)

        return asyncio.run(main())


def make_s3(
    endpoint: str, bucket: str, *, part_size: int = MIN_PART_SIZE, **options: Any
) -> S3Storage:
    """An S3Storage on `endpoint` with the smallest part size S3 allows.

    The small part size makes a multi-MB test file take the multipart path.
    """
    return S3Storage(
        SESSION,
        bucket=bucket,
        endpoint_url=endpoint,
        region=REGION,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        part_size=part_size,
        **options,
    )


def new_bucket(endpoint: str) -> str:
    """Create a bucket with a fresh name on `endpoint` and return its name."""
    bucket = f"test-{uuid.uuid4().hex[:20]}"

    async def create() -> None:
        async with make_s3(endpoint, bucket) as storage:
            await storage.ensure_bucket()

    asyncio.run(create())
    return bucket
