"""GET /api/v1/tasks/{id} while the result backend is down: a JSON 503, not a 500.

The route reads the process's Celery app (pid.tasks.app, built from the environment), so
this test serves the API in a process of its own whose result backend is a closed port.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_support import API, SERVER_TIMEOUT_S, assert_error, closed_port


@pytest.fixture(scope="module")
def server_without_backend(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    port = closed_port()  # nothing listens there yet: the server takes it
    dead = f"redis://127.0.0.1:{closed_port()}/0"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PID_")} | {
        "PID_DATABASE_URL": database_url,
        "PID_DATA_DIR": str(tmp_path_factory.mktemp("backend-down")),
        "PID_BROKER_URL": dead,
        "PID_RESULT_BACKEND": dead,
        "PID_API_PORT": str(port),
    }
    log = tmp_path_factory.mktemp("backend-down-log") / "api.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "pid.api"], env=env, stdout=output, stderr=subprocess.STDOUT
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_answering(url, process, log)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=SERVER_TIMEOUT_S)


def _wait_answering(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API exited: {log.read_text()[-2000:]}")
        try:
            httpx.get(f"{url}/healthz", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"the API did not answer within 60 s: {log.read_text()[-2000:]}")


def test_a_task_lookup_with_the_result_backend_down_is_a_json_503(
    server_without_backend: str,
) -> None:
    response = httpx.get(f"{server_without_backend}{API}/tasks/{uuid.uuid4()}", timeout=30)

    assert_error(response, 503, "result backend is unavailable")
