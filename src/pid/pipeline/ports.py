"""What the pipeline needs from a task queue, without naming one.

The service and the reaper decide which stage runs to send; `pid.tasks.enqueue` sends them
through Celery. Tests hand in their own (a broker of their own, or one that drops everything).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

#: The queues of the stage table, one per worker pool; maintenance is fed by beat.
StageQueue = Literal["gpu", "cpu", "io"]
QUEUES: tuple[str, ...] = ("gpu", "cpu", "io", "maintenance")


@dataclass(frozen=True, slots=True)
class Message:
    """One stage run to send: the stage, its queue, the task id its run records, the diagram."""

    stage: str
    queue: StageQueue
    task_id: str
    diagram_uid: str


class QueueUnavailableError(RuntimeError):
    """The task queue could not be reached: what an Enqueue or a Revoke raises then."""


#: Send messages as one chain, in order: each runs once the one before it has succeeded.
Enqueue = Callable[[Sequence[Message]], None]
#: Withdraw the messages with these task ids from the queues (a cancel or a delete).
Revoke = Callable[[Sequence[str]], None]
