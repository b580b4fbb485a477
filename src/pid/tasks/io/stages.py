"""Stages on the io queue: a threads pool, its waits done on the process's event loop.

The threads pool enforces no Celery time limits; every hand-off to the loop is bounded by
asyncio.timeout (pid.runtime).
"""

from __future__ import annotations

from typing import Any

from celery import Task

from pid.celery_app import app
from pid.settings import get_settings
from pid.tasks.runner import execute_stage

LIMITS: dict[str, Any] = {"bind": True, "max_retries": get_settings().task_max_retries}


@app.task(name="pid.tasks.io.stages.cvat_upload", **LIMITS)
def cvat_upload(self: Task[Any, Any], uid: str) -> dict[str, Any]:
    return execute_stage(self, uid, "cvat_upload")


@app.task(name="pid.tasks.io.stages.cvat_fetch", **LIMITS)
def cvat_fetch(self: Task[Any, Any], uid: str) -> dict[str, Any]:
    return execute_stage(self, uid, "cvat_fetch")
