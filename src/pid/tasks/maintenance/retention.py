"""Retention of intermediate artifacts (pid.pipeline.maintenance.expire_intermediates).

Off unless `retention_days` is set. A run that later needs a removed file is refused by name.
"""

from __future__ import annotations

from pid.pipeline import maintenance
from pid.tasks.app import app
from pid.tasks.maintenance.locked import Counts, run_locked
from pid.tasks.runtime import Runtime


@app.task(name="pid.tasks.maintenance.retention.expire_intermediates")
def expire_intermediates() -> Counts:
    return run_locked("expire_intermediates", _expire)


async def _expire(runtime: Runtime) -> Counts:
    days = runtime.settings.retention_days
    if days is None:
        return {"artifacts": 0, "bytes": 0}
    return await maintenance.expire_intermediates(runtime.sessions, runtime.storage, days)
