"""What the Redis broker holds: messages waiting per queue and messages delivered, not yet acked.

Read straight from Redis with kombu's key layout, so the answer is the broker's own and holds
however many machines the workers run on. A message waits in the list named after its queue
(one more list per priority step); a delivered message stays in the `unacked` hash until its
task acknowledges it (acks_late: after the task ends), so a message of a running task is there.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import redis

#: kombu's Redis transport: separator between a queue's name and a priority step, the steps
#: and the hash of delivered messages.
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)
UNACKED_KEY = "unacked"


def queue_keys(queue: str) -> list[str]:
    """The Redis lists that hold the waiting messages of `queue`, one per priority step."""
    return [queue] + [f"{queue}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS[1:]]


def queue_lengths(client: redis.Redis, queues: Iterable[str]) -> dict[str, int]:
    """Messages waiting in each queue."""
    pipe = client.pipeline(transaction=False)
    names = list(queues)
    for queue in names:
        for key in queue_keys(queue):
            pipe.llen(key)
    counts = iter(pipe.execute())
    return {queue: sum(next(counts) for _ in queue_keys(queue)) for queue in names}


def held_task_ids(client: redis.Redis, queues: Iterable[str]) -> set[str]:
    """Task ids of every message the broker holds: waiting in `queues` or delivered, unacked.

    A task id missing here has no message that could still run it.
    """
    messages: list[Any] = []
    for queue in queues:
        for key in queue_keys(queue):
            messages.extend(_parse(raw) for raw in client.lrange(key, 0, -1))
    for raw in client.hvals(UNACKED_KEY):
        entry = _parse(raw)  # [message, exchange, routing key]
        messages.append(entry[0] if isinstance(entry, list) and entry else None)
    return {task_id for task_id in map(_task_id, messages) if task_id is not None}


def _parse(raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _task_id(message: Any) -> str | None:
    headers = message.get("headers") if isinstance(message, dict) else None
    task_id = headers.get("id") if isinstance(headers, dict) else None
    return task_id if isinstance(task_id, str) else None
