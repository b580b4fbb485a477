"""The reaper: stage runs lost with their worker, and chains broken between stages.

The decisions are pid.pipeline.recovery's; this task reads what the broker holds, lets
recovery update the runs, commits, and only then sends the chains again.
"""

from __future__ import annotations

import asyncio

import redis

from pid.pipeline.ports import QUEUES
from pid.pipeline.recovery import recover
from pid.tasks.app import app
from pid.tasks.broker import held_task_ids
from pid.tasks.enqueue import enqueue_to
from pid.tasks.maintenance.locked import Counts, run_locked
from pid.tasks.runtime import Runtime

#: Seconds between the two reads of what the broker holds.
HELD_READ_GAP_S = 0.2


@app.task(name="pid.tasks.maintenance.reaper.reap")
def reap() -> Counts:
    return run_locked("reap", _reap)


async def _reap(runtime: Runtime) -> Counts:
    # The broker first: a message sent after this read belongs to a run too young to reap.
    # Two reads a moment apart: a worker takes a message off its queue list a few
    # milliseconds before it records it as unacked, and a message between the two is in
    # neither; it cannot be missed by both reads.
    held = await asyncio.to_thread(_held, runtime.settings.broker_url)
    await asyncio.sleep(HELD_READ_GAP_S)
    held |= await asyncio.to_thread(_held, runtime.settings.broker_url)
    async with runtime.sessions() as session:
        recovery = await recover(session, runtime.settings, held)
        await session.commit()
    send = enqueue_to(app)
    for chain in recovery.chains:
        await asyncio.to_thread(send, chain)
    return recovery.counts()


def _held(broker_url: str) -> set[str]:
    with redis.Redis.from_url(broker_url) as client:
        return held_task_ids(client, QUEUES)
