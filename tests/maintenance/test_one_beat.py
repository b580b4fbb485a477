"""Exactly one beat: a second one started with the same pid file refuses to run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from maintenance_support import REDIS_URL


def _beat(tmp_path: Path, name: str) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "pid.tasks.app", "beat", "--loglevel", "INFO",
        "--schedule", str(tmp_path / f"{name}-schedule"), "--pidfile", str(tmp_path / "beat.pid"),
    ]  # fmt: skip


def test_a_second_beat_with_the_same_pid_file_exits_and_the_first_keeps_running(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PID_")}
    env |= {"PID_BROKER_URL": REDIS_URL, "PID_RESULT_BACKEND": REDIS_URL}
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(_beat(tmp_path, "first"), env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "beat.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (tmp_path / "beat.pid").read_text().strip() == str(first.pid)

        second = subprocess.run(
            _beat(tmp_path, "second"), env=env, capture_output=True, text=True, timeout=60
        )

        assert second.returncode != 0
        assert "already exists" in second.stderr + second.stdout
        assert first.poll() is None
    finally:
        first.terminate()
        first.wait(timeout=30)
        log.close()
