"""A real worker fleet for service tests: one worker per pool on real Redis and PostgreSQL.

The fleet uses its own throwaway database, its own Redis database numbers and its own storage
folder, so it never touches a developer's data. Workers are real `celery worker` processes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "db"))
from fleet_support import Fleet
from pg import make_test_database

BROKER_DB, RESULT_DB = 11, 12
POOLS = (
    ("gpu", ["-P", "prefork", "-c", "1"]),
    ("cpu", ["-P", "prefork", "-c", "2", "--max-tasks-per-child", "50"]),
    ("io", ["-P", "threads", "-c", "8"]),
)


def _flush_redis(broker: str) -> None:
    import redis

    redis.Redis.from_url(broker).flushdb()


def _wait_ready(app: object, names: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0)  # type: ignore[attr-defined]
        seen = {name.split("@")[0] for reply in replies for name in reply}
        if set(names) <= seen:
            return
        time.sleep(0.5)
    raise RuntimeError(f"workers {names} did not answer within {timeout} s")


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("fleet")
    with make_test_database() as database_url:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PID_")},
            "PID_DATABASE_URL": database_url,
            "PID_BROKER_URL": f"redis://127.0.0.1:6379/{BROKER_DB}",
            "PID_RESULT_BACKEND": f"redis://127.0.0.1:6379/{RESULT_DB}",
            "PID_DATA_DIR": str(root / "data"),
            "PID_TMP_DIR": str(root / "tmp"),
            "PID_STAGE_MAX_ATTEMPTS": "3",
        }
        _flush_redis(env["PID_BROKER_URL"])
        os.environ.update({k: v for k, v in env.items() if k.startswith("PID_")})
        from pid.settings import get_settings

        get_settings.cache_clear()
        workers = []
        for name, options in POOLS:
            log = root / f"{name}.log"
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "pid.tasks.app", "worker",
                     "-Q", name, "-n", f"{name}@%h", "-E", "--loglevel", "INFO",
                     "--without-mingle", "--without-gossip", *options],
                    env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
        try:
            from pid.tasks.app import create_celery

            _wait_ready(create_celery(), [n for n, _ in POOLS], timeout=90.0)
            yield Fleet(env, root / "data", root, database_url)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()
            for key in [k for k in os.environ if k.startswith("PID_")]:
                del os.environ[key]
            get_settings.cache_clear()
            asyncio.set_event_loop_policy(None)
