"""Purge of deleted diagrams: their stored objects, then their rows.

Idempotent: a diagram half purged (objects gone, row left) is finished by the next run.
"""

from __future__ import annotations

from pid.celery_app import app
from pid.db.models import DiagramStatus
from pid.db.repositories import DiagramRepository
from pid.runtime import Runtime
from pid.storage import diagram_prefix
from pid.tasks.maintenance.locked import Counts, run_locked


@app.task(name="pid.tasks.maintenance.purge.purge_deleted")
def purge_deleted() -> Counts:
    return run_locked("purge_deleted", _purge)


async def _purge(runtime: Runtime) -> Counts:
    async with runtime.sessions() as session:
        uids = await DiagramRepository(session).uids_with_status([DiagramStatus.deleted])
    diagrams = objects = 0
    for uid in uids:
        # Objects first: a row is only removed once nothing of it is left in storage.
        objects += await runtime.storage.delete_prefix(diagram_prefix(uid))
        async with runtime.sessions() as session:
            if await DiagramRepository(session).delete(uid):
                diagrams += 1
            await session.commit()
    return {"diagrams": diagrams, "objects": objects}
