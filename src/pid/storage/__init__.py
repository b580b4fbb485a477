"""Artifact storage: one async interface, a local-folder backend (default) and an S3 backend.

Every artifact of a diagram is stored under `artifact_key(uid, name)`; the API, the tasks and
the maintenance jobs reach storage only through `Storage`, made by `create_storage`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, assert_never

import aioboto3

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
from pid.storage.keys import artifact_key, diagram_prefix, validate_key, validate_prefix
from pid.storage.local import LocalStorage
from pid.storage.s3 import S3Storage

if TYPE_CHECKING:
    from pid.settings import Settings

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "InvalidKey",
    "LocalStorage",
    "ObjectInfo",
    "ObjectNotFound",
    "S3Storage",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "StoredObject",
    "artifact_key",
    "create_storage",
    "diagram_prefix",
    "validate_key",
    "validate_prefix",
]


def create_storage(settings: Settings, *, session: aioboto3.Session | None = None) -> Storage:
    """The backend that `settings.storage_backend` names, configured from `settings`.

    `session` is the process's aioboto3 session for the S3 backend (a worker keeps one per
    process); without one a new session is made. The local backend ignores it.
    """
    match settings.storage_backend:
        case "local":
            return LocalStorage(settings.data_dir)
        case "s3":
            return _s3_storage(settings, session)
        case unknown:
            assert_never(unknown)


def _s3_storage(settings: Settings, session: aioboto3.Session | None) -> S3Storage:
    secret = settings.s3_secret_access_key
    return S3Storage(
        session if session is not None else aioboto3.Session(),
        bucket=settings.s3_bucket,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=secret.get_secret_value() if secret is not None else None,
    )
