"""Operations helpers the Makefile calls: Flower with the settings' basic auth."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pid.settings import SettingsError, get_settings


def flower() -> None:
    """Start Flower on the settings' port, behind basic auth; refuse without a password."""
    try:
        settings = get_settings()
    except SettingsError as exc:
        sys.exit(f"pid: {exc}")
    if settings.flower_password is None:
        sys.exit("error: set PID_FLOWER_PASSWORD (and PID_FLOWER_USER) before starting Flower")
    auth = f"{settings.flower_user}:{settings.flower_password.get_secret_value()}"
    celery = str(Path(sys.executable).parent / "celery")
    os.execv(
        celery,
        [celery, "-A", "pid.celery_app", "flower", f"--port={settings.flower_port}",
         f"--basic-auth={auth}", f"--broker={settings.broker_url}"],
    )  # fmt: skip


if __name__ == "__main__":
    flower()
