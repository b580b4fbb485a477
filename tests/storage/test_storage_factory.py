"""create_storage: the settings choose and configure the backend."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from storage_support import ACCESS_KEY, REGION, SECRET_KEY, SESSION, Backend

from pid.settings import Settings
from pid.storage import (
    LocalStorage,
    S3Storage,
    Storage,
    StorageUnavailable,
    artifact_key,
    create_storage,
)

pytestmark = pytest.mark.timeout(30)

KEY = artifact_key(uuid.UUID(int=9), "graph.json")


def settings(**values: Any) -> Settings:
    # Validated from the given values and defaults only, whatever PID_* the environment holds.
    return Settings.model_validate(values)


def test_local_backend_uses_the_data_dir(tmp_path: Path) -> None:
    storage = create_storage(settings(storage_backend="local", data_dir=tmp_path / "data"))

    assert isinstance(storage, LocalStorage)
    assert storage.root == (tmp_path / "data").resolve()

    async def body(storage: Storage) -> None:
        await storage.put_bytes(KEY, b"{}")

    Backend("local", lambda: storage).run(body)
    assert (tmp_path / "data" / KEY).read_bytes() == b"{}"


def test_s3_backend_uses_the_given_session_and_credentials(s3_endpoint: str) -> None:
    bucket = f"test-{uuid.uuid4().hex[:20]}"
    config = settings(
        storage_backend="s3",
        s3_bucket=bucket,
        s3_endpoint_url=s3_endpoint,
        s3_region=REGION,
        s3_access_key_id=ACCESS_KEY,
        s3_secret_access_key=SECRET_KEY,
    )
    storage = create_storage(config, session=SESSION)

    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.endpoint_url, storage.region) == (bucket, s3_endpoint, REGION)
    assert SECRET_KEY not in repr(storage)

    async def body(storage: Storage) -> bytes:
        assert isinstance(storage, S3Storage)
        await storage.ensure_bucket()
        await storage.put_bytes(KEY, b"{}")
        return await storage.get_bytes(KEY)

    assert Backend("s3", lambda: storage).run(body) == b"{}"


def test_s3_backend_makes_a_session_when_none_is_given(s3_endpoint: str) -> None:
    config = settings(
        storage_backend="s3",
        s3_bucket="no-such-bucket-for-factory",
        s3_endpoint_url=s3_endpoint,
        s3_access_key_id=ACCESS_KEY,
        s3_secret_access_key=SECRET_KEY,
    )
    storage = create_storage(config)
    assert isinstance(storage, S3Storage)

    async def body(storage: Storage) -> bytes:
        return await storage.get_bytes(KEY)

    # The server's answer about its bucket proves the session made a working client.
    with pytest.raises(StorageUnavailable, match="'no-such-bucket-for-factory' does not exist"):
        Backend("s3", lambda: storage).run(body)
