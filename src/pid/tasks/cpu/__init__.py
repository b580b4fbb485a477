"""Tasks of the cpu queue: numpy and OpenCV stages in prefork children (one per core)."""

from __future__ import annotations

from pid.settings import get_settings
from pid.tasks.app import app
from pid.tasks.stage_tasks import register_stage_tasks

TASKS = register_stage_tasks(app, "cpu", get_settings())
