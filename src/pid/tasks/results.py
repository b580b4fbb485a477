"""What Celery's result backend knows of a task, without Celery's types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery import states
from celery.result import AsyncResult

from pid.tasks.enqueue import service_app


@dataclass(frozen=True, slots=True)
class TaskState:
    task_id: str
    #: PENDING (also for unknown ids: Celery cannot tell them apart), STARTED, RETRY, SUCCESS,
    #: FAILURE or REVOKED.
    state: str
    ready: bool
    info: dict[str, Any] | None
    error: str | None


def task_state(task_id: str) -> TaskState:
    """The state of `task_id` in the service's result backend (blocking reads)."""
    result: AsyncResult[Any] = AsyncResult(task_id, app=service_app())
    state = result.state
    info = result.info
    return TaskState(
        task_id=task_id,
        state=state,
        ready=state in states.READY_STATES,
        info=info if isinstance(info, dict) else None,
        error=str(info) if state == states.FAILURE else None,
    )
