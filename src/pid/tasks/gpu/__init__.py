"""Tasks of the gpu queue: one model per GPU, one child process, models loaded once there."""

from __future__ import annotations

from typing import Any

from celery.signals import worker_process_init

from pid.pipeline.stages import load_models
from pid.settings import get_settings
from pid.tasks.app import app
from pid.tasks.stage_tasks import register_stage_tasks

TASKS = register_stage_tasks(app, "gpu", get_settings())


@worker_process_init.connect
def _load_models(**_: Any) -> None:
    """Load the models in each gpu child as it starts, never in the parent."""
    load_models(get_settings())
