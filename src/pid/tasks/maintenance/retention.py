"""Retention: intermediate artifacts of resting diagrams, older than `retention_days`, removed.

The original, the supplied symbols and the outputs (graph, overlay, exports) are kept. Only
diagrams at rest (completed, error, cancelled) with nothing queued or running are touched, and
each removal holds the diagram's row lock, the one a new run takes first, so no stage writes a
file while it is removed. A run that later needs a removed file is refused by name.
Off unless `retention_days` is set.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from pid.celery_app import app
from pid.db.models import RESTING_STATUSES, Artifact
from pid.db.repositories import ArtifactRepository, DiagramRepository, StageRunRepository
from pid.pipeline.stages import KEPT_ARTIFACTS
from pid.runtime import Runtime
from pid.tasks.maintenance.locked import Counts, run_locked


@app.task(name="pid.tasks.maintenance.retention.expire_intermediates")
def expire_intermediates() -> Counts:
    return run_locked("expire_intermediates", _expire)


async def _expire(runtime: Runtime) -> Counts:
    days = runtime.settings.retention_days
    if days is None:
        return {"artifacts": 0, "bytes": 0}
    async with runtime.sessions() as session:
        now = await session.scalar(select(func.statement_timestamp()))
        assert now is not None
        expired = await ArtifactRepository(session).expired(
            KEPT_ARTIFACTS, RESTING_STATUSES, now - timedelta(days=days)
        )
    removed = freed = 0
    for artifact in expired:
        if await _remove(runtime, artifact):
            removed, freed = removed + 1, freed + artifact.size
    return {"artifacts": removed, "bytes": freed}


async def _remove(runtime: Runtime, artifact: Artifact) -> bool:
    async with runtime.sessions() as session:
        diagram = await DiagramRepository(session).get(artifact.diagram_id, for_update=True)
        if diagram is None or diagram.status not in RESTING_STATUSES:
            return False
        if await StageRunRepository(session).active(diagram.id):
            return False
        if not await ArtifactRepository(session).delete_if_unchanged(artifact):
            return False
        # The object goes before the commit: if removing it fails, the row stays and the
        # next run tries again.
        await runtime.storage.delete(artifact.storage_key)
        await session.commit()
        return True
