"""Flower (`make flower`): the pools and stages by name and state, behind the settings' basic
auth."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pid.settings import settings_or_exit


def flower() -> None:
    """Start Flower on the settings' port, behind basic auth; refuse without a password."""
    settings = settings_or_exit()
    if settings.flower_password is None:
        sys.exit("error: set PID_FLOWER_PASSWORD (and PID_FLOWER_USER) before starting Flower")
    auth = f"{settings.flower_user}:{settings.flower_password.get_secret_value()}"
    celery = str(Path(sys.executable).parent / "celery")
    # The password goes through Flower's environment, not its command line, which any local
    # user can read; the broker (with its password) comes from pid.tasks.app.
    os.execve(
        celery,
        [celery, "-A", "pid.tasks.app", "flower", f"--port={settings.flower_port}"],
        os.environ | {"FLOWER_BASIC_AUTH": auth},
    )


if __name__ == "__main__":
    flower()
