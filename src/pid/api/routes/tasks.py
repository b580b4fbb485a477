"""/api/v1/tasks: what Celery's result backend knows of a task."""

from __future__ import annotations

from typing import Annotated, Any

from celery import states
from celery.result import AsyncResult
from fastapi import APIRouter, Path

from pid.api.schemas import TaskOut
from pid.tasks.enqueue import service_app

router = APIRouter(prefix="/tasks", tags=["tasks"])

#: Celery task ids are UUIDs; anything much longer is not one of ours.
MAX_TASK_ID_LENGTH = 255


# A plain `def`: AsyncResult reads the result backend with blocking calls, so FastAPI runs this
# in its thread pool rather than on the event loop.
@router.get("/{task_id}")
def get_task(task_id: Annotated[str, Path(max_length=MAX_TASK_ID_LENGTH)]) -> TaskOut:
    """The task's state; unknown ids read as PENDING, as Celery cannot tell them apart."""
    result: AsyncResult[Any] = AsyncResult(task_id, app=service_app())
    state = result.state
    info = result.info
    return TaskOut(
        task_id=task_id,
        state=state,
        ready=state in states.READY_STATES,
        info=info if isinstance(info, dict) else None,
        error=str(info) if state == states.FAILURE else None,
    )
