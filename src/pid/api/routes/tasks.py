"""/api/v1/tasks: what Celery's result backend knows of a task."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Path

from pid.api.schemas import TaskOut
from pid.tasks.results import task_state

router = APIRouter(prefix="/tasks", tags=["tasks"])

#: Celery task ids are UUIDs; anything much longer is not one of ours.
MAX_TASK_ID_LENGTH = 255


# A plain `def`: the result backend is read with blocking calls, so FastAPI runs this in its
# thread pool rather than on the event loop.
@router.get("/{task_id}")
def get_task(task_id: Annotated[str, Path(max_length=MAX_TASK_ID_LENGTH)]) -> TaskOut:
    """The task's state; unknown ids read as PENDING, as Celery cannot tell them apart."""
    return TaskOut(**asdict(task_state(task_id)))
