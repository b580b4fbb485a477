"""Task names: every stage task is `pid.tasks.<queue>.<stage>` (pid.tasks.cpu.build_graph),
registered in the package of its queue from the stage table (pid.tasks.stage_tasks)."""

from __future__ import annotations

from pid.pipeline.stages import STAGES


def task_name(stage_name: str) -> str:
    """The Celery task that runs `stage_name`."""
    return f"pid.tasks.{STAGES[stage_name].queue}.{stage_name}"
