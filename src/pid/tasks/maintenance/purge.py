"""Purge of deleted diagrams (pid.pipeline.maintenance.purge_deleted)."""

from __future__ import annotations

from pid.pipeline import maintenance
from pid.tasks.app import app
from pid.tasks.maintenance.locked import Counts, run_locked
from pid.tasks.runtime import Runtime


@app.task(name="pid.tasks.maintenance.purge.purge_deleted")
def purge_deleted() -> Counts:
    return run_locked("purge_deleted", _purge)


async def _purge(runtime: Runtime) -> Counts:
    return await maintenance.purge_deleted(runtime.sessions, runtime.storage)
