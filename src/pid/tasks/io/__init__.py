"""Tasks of the io queue: a threads pool, its waits done on the process's event loop.

The threads pool enforces no Celery time limits; every hand-off to the loop is bounded by
asyncio.timeout (pid.tasks.runtime).
"""

from __future__ import annotations

from pid.settings import get_settings
from pid.tasks.app import app
from pid.tasks.stage_tasks import register_stage_tasks

TASKS = register_stage_tasks(app, "io", get_settings())
