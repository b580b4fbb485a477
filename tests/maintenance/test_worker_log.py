"""A worker started with --logfile (as `make celery-all` starts every pool) logs to that file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from maintenance_support import Site

from pid.tasks.app import create_celery


def test_a_worker_logs_its_tasks_and_their_counts_to_its_log_file(
    site: Site, tmp_path: Path
) -> None:
    log = tmp_path / "maintenance.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "pid.tasks.app", "worker", "-Q", "maintenance",
         "-P", "solo", "-n", "maintenance-log@%h", "--without-mingle", "--without-gossip",
         "--loglevel", "INFO", "--logfile", str(log)],
        env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    app = create_celery()
    try:
        result = app.send_task("pid.tasks.maintenance.purge.purge_deleted", queue="maintenance")
        assert result.get(timeout=90) == {"diagrams": 0, "objects": 0}
        # The worker logs the task's success just after storing its result: wait for both.
        expected = [
            "pid.maintenance: purge_deleted: diagrams 0, objects 0",
            f"Task pid.tasks.maintenance.purge.purge_deleted[{result.id}] succeeded",
        ]
        deadline = time.monotonic() + 20
        while not all(line in log.read_text() for line in expected):
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        app.close()
