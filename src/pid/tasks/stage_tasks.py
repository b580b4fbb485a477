"""One Celery task per row of the stage table, registered in the package of its queue.

A stage task only hands its delivery to the runner (claim, load, call the stage function,
save, record); its name, queue and time limits all come from the table and the settings, so
adding a stage to the table adds its task.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from celery import Celery, Task

from pid.pipeline.ports import StageQueue
from pid.pipeline.stages import STAGES
from pid.settings import Settings
from pid.tasks.names import task_name
from pid.tasks.runner import execute_stage


def time_limits(queue: StageQueue, settings: Settings) -> dict[str, Any]:
    """Celery's soft and hard limits of a prefork pool; none on the threads pool (io), whose
    every hand-off to the event loop is bounded by asyncio.timeout instead."""
    if queue == "gpu":
        return {
            "soft_time_limit": settings.gpu_soft_time_limit,
            "time_limit": settings.gpu_time_limit,
        }
    if queue == "cpu":
        return {
            "soft_time_limit": settings.cpu_soft_time_limit,
            "time_limit": settings.cpu_time_limit,
        }
    return {}


def register_stage_tasks(
    app: Celery, queue: StageQueue, settings: Settings
) -> dict[str, Task[Any, Any]]:
    """Register the task of every stage on `queue`; the tasks by stage name."""
    options: dict[str, Any] = {
        "bind": True,
        "max_retries": settings.task_max_retries,
        **time_limits(queue, settings),
    }
    # Options built from settings, so the stubs' overloads cannot see their literal types.
    task = cast(Callable[..., Callable[[Callable[..., Any]], Task[Any, Any]]], app.task)
    return {
        stage.name: task(name=task_name(stage.name), **options)(_stage_task(stage.name))
        for stage in STAGES.values()
        if stage.queue == queue
    }


def _stage_task(stage_name: str) -> Callable[[Task[Any, Any], str], dict[str, Any]]:
    def run_stage(self: Task[Any, Any], uid: str) -> dict[str, Any]:
        return execute_stage(self, uid, stage_name)

    run_stage.__name__ = run_stage.__qualname__ = stage_name
    run_stage.__doc__ = f"Run stage {stage_name} of the diagram `uid` (pid.pipeline.stages)."
    return run_stage
