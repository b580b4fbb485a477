"""Fixtures of the API tests: a live server over real HTTP, PostgreSQL, Redis and a data folder.

One uvicorn server (in a thread, on a free port) serves `create_app(settings)` for the whole
session, on a throwaway database migrated to head and a temporary local storage folder. Its
chains go through Celery to Redis database 7, where no worker consumes them, so a test can see
exactly which messages a request sent. Tests talk to it with a synchronous httpx client.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from api_support import (
    API,
    TEST_BROKER_URL,
    NothingChanges,
    Upload,
    app_with_test_broker,
    make_celery,
    make_settings,
    make_test_database,
    png_bytes,
    serve,
    snapshot,
)
from celery import Celery

from pid.api.app import create_app
from pid.settings import Settings


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh database migrated to head, dropped after the session."""
    with make_test_database() as url:
        yield url


@pytest.fixture(scope="session")
def broker() -> Iterator[redis.Redis]:
    """The test broker's Redis database, emptied before and after the session."""
    client = redis.Redis.from_url(TEST_BROKER_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def celery(broker: redis.Redis) -> Iterator[Celery]:
    app = make_celery()
    yield app
    app.close()


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(database_url, tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def base_url(settings: Settings, celery: Celery) -> Iterator[str]:
    """The session's server."""
    with serve(app_with_test_broker(create_app(settings), celery)) as url:
        yield url


@pytest.fixture(scope="session")
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10.0) as session_client:
        yield session_client


@pytest.fixture
def nothing_changes(settings: Settings, broker: redis.Redis) -> NothingChanges:
    """``with nothing_changes(): ...`` fails unless the block left the database, the stored
    files and the queued messages exactly as they were."""

    @contextmanager
    def unchanged() -> Iterator[None]:
        before = snapshot(settings, broker)
        yield
        after = snapshot(settings, broker)
        assert after.rows == before.rows, "rows were added or removed"
        assert after.files == before.files, "stored files changed"
        assert after.queued == before.queued, "messages were queued"

    return unchanged


@pytest.fixture
def upload(client: httpx.Client) -> Upload:
    """``upload(data=..., filename=..., symbols=..., auto_run=...)``: POST a drawing."""

    def post(
        data: bytes | None = None,
        filename: str = "sheet.png",
        symbols: bytes | None = None,
        auto_run: bool | str | None = None,
        **request: Any,
    ) -> httpx.Response:
        files: dict[str, Any] = {"file": (filename, png_bytes() if data is None else data)}
        if symbols is not None:
            files["symbols"] = ("symbols.json", symbols, "application/json")
        form = {} if auto_run is None else {"auto_run": str(auto_run).lower()}
        return client.post(f"{API}/diagrams", files=files, data=form, **request)

    return post


@pytest.fixture
def diagram(upload: Upload) -> str:
    """The uid of a freshly uploaded 96 x 64 drawing, not run."""
    response = upload()
    assert response.status_code == 201, response.text
    uid: str = response.json()["uids"][0]
    return uid


@pytest.fixture
def data_dir(settings: Settings) -> Path:
    return Path(settings.data_dir)
