"""Maintenance tasks called in this process against real PostgreSQL, Redis and storage.

Each test calls a task's function as a worker would (lock, runtime loop, counts), on a
throwaway database, Redis database 15 and a temporary storage folder.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

sys.path.insert(0, str(Path(__file__).parents[1] / "db"))
from maintenance_support import REDIS_URL, Site
from pg import make_test_database

from pid.settings import get_settings
from pid.tasks.runtime import close_runtime, get_runtime


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("maintenance")
    with make_test_database() as database_url:
        env = {
            "PID_DATABASE_URL": database_url,
            "PID_BROKER_URL": REDIS_URL,
            "PID_RESULT_BACKEND": REDIS_URL,
            "PID_DATA_DIR": str(root / "data"),
            "PID_TMP_DIR": str(root / "tmp"),
            "PID_RETENTION_DAYS": "1",
            "PID_STALE_REVIEW_HOURS": "2",
        }
        saved = {k: v for k, v in os.environ.items() if k.startswith("PID_")}
        for key in saved:
            del os.environ[key]
        os.environ.update(env)
        get_settings.cache_clear()
        close_runtime()
        client = redis.Redis.from_url(REDIS_URL)
        client.flushdb()
        try:
            yield Site(get_runtime(), client, root / "data", root / "tmp")
        finally:
            close_runtime()
            client.flushdb()
            client.close()
            for key in env:
                del os.environ[key]
            os.environ.update(saved)
            get_settings.cache_clear()
