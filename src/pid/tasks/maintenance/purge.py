"""Purge of deleted diagrams (pid.pipeline.maintenance.purge_deleted)."""

from __future__ import annotations

from pid.celery_app import app
from pid.pipeline import maintenance
from pid.runtime import Runtime
from pid.tasks.maintenance.locked import Counts, run_locked


@app.task(name="pid.tasks.maintenance.purge.purge_deleted")
def purge_deleted() -> Counts:
    return run_locked("purge_deleted", _purge)


async def _purge(runtime: Runtime) -> Counts:
    return await maintenance.purge_deleted(runtime.sessions, runtime.storage)
