"""What the Beat-driven cleanups decide and do: purge of deleted diagrams, retention of
intermediate artifacts, and stale reviews. The tasks in pid.tasks.maintenance only take the
lock, call one of these and log the counts.

Each takes a session factory rather than one session: every diagram is handled in a
transaction of its own, so one that fails leaves the others done.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pid.core.artifacts import KEPT_ARTIFACTS
from pid.core.statuses import RESTING_STATUSES, REVIEW_STATUSES, DiagramStatus
from pid.db.engine import database_now
from pid.db.models import Artifact
from pid.db.repositories import ArtifactRepository, DiagramRepository, StageRunRepository
from pid.storage import Storage, diagram_prefix

Sessions = async_sessionmaker[AsyncSession]


async def purge_deleted(sessions: Sessions, storage: Storage) -> dict[str, int]:
    """Remove deleted diagrams: their stored objects, then their rows.

    Idempotent: a diagram half purged (objects gone, row left) is finished by the next run.
    """
    async with sessions() as session:
        uids = await DiagramRepository(session).uids_with_status([DiagramStatus.deleted])
    diagrams = objects = 0
    for uid in uids:
        # Objects first: a row is only removed once nothing of it is left in storage.
        objects += await storage.delete_prefix(diagram_prefix(uid))
        async with sessions() as session:
            if await DiagramRepository(session).delete(uid):
                diagrams += 1
            await session.commit()
    return {"diagrams": diagrams, "objects": objects}


async def expire_intermediates(sessions: Sessions, storage: Storage, days: float) -> dict[str, int]:
    """Remove intermediate artifacts older than `days` of diagrams at rest.

    The original, the supplied symbols and the outputs (KEPT_ARTIFACTS) are kept. Each
    removal holds the diagram's row lock, the one a new run takes first, so no stage writes a
    file while it is removed.
    """
    async with sessions() as session:
        now = await database_now(session)
        expired = await ArtifactRepository(session).expired(
            KEPT_ARTIFACTS, RESTING_STATUSES, now - timedelta(days=days)
        )
    removed = freed = 0
    for artifact in expired:
        if await _remove_if_resting(sessions, storage, artifact):
            removed, freed = removed + 1, freed + artifact.size
    return {"artifacts": removed, "bytes": freed}


async def _remove_if_resting(sessions: Sessions, storage: Storage, artifact: Artifact) -> bool:
    async with sessions() as session:
        diagram = await DiagramRepository(session).get(artifact.diagram_id, for_update=True)
        if diagram is None or diagram.status not in RESTING_STATUSES:
            return False
        if await StageRunRepository(session).active(diagram.id):
            return False
        if not await ArtifactRepository(session).delete_if_unchanged(artifact):
            return False
        # The object goes before the commit: if removing it fails, the row stays and the
        # next run tries again.
        await storage.delete(artifact.storage_key)
        await session.commit()
        return True


@dataclass(frozen=True)
class StaleReview:
    uid: uuid.UUID
    status: DiagramStatus
    hours: float


async def stale_reviews(sessions: Sessions, hours: float) -> list[StaleReview]:
    """Diagrams waiting at a review gate for longer than `hours`, longest first. Nothing is
    moved: the review is a person's to finish."""
    async with sessions() as session:
        now = await database_now(session)
        waiting = await DiagramRepository(session).waiting_since(
            REVIEW_STATUSES, now - timedelta(hours=hours)
        )
    return [
        StaleReview(d.uid, d.status, (now - d.updated_at).total_seconds() / 3600) for d in waiting
    ]
