"""How a claimed stage run's end is recorded: its run row, its artifact rows, the diagram's status.

Every record starts with the fenced update of the run (its task id and attempt must still be
this claim's). A worker whose claim was taken over (the message redelivered after a lost
connection, or the reaper's new attempt) records nothing, so a late success cannot move the
diagram on and a late failure cannot stop the chain its successor is running. The caller
commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from pid.core.statuses import MOVABLE_STATUSES, DiagramStatus, StageRunState
from pid.db.models import StageRun
from pid.db.repositories import ArtifactRepository, DiagramRepository, StageRunRepository
from pid.pipeline.stages import Stage, StageOutcome
from pid.pipeline.status import status_after
from pid.settings import Settings
from pid.storage import StoredObject


class Recorded(StrEnum):
    moved_on = "moved on"  # the chain goes on to the next stage
    stopped = "stopped"  # recorded; the chain stops (a gate, a cancel, a delete)
    stale = "stale"  # this claim is no longer the run's: nothing was recorded


async def record_success(
    session: AsyncSession,
    uid: uuid.UUID,
    stage: Stage,
    run: StageRun,
    outcome: StageOutcome,
    stored: Sequence[tuple[str, StoredObject]],
    settings: Settings,
) -> Recorded:
    """Record that `run` ended with `outcome` and wrote `stored` (artifact name, object)."""
    state = StageRunState(outcome.state)
    runs = StageRunRepository(session)
    if await runs.succeed(run, outcome.summary, outcome.provenance, state=state) is None:
        return Recorded.stale
    artifacts = ArtifactRepository(session)
    for name, obj in stored:
        await artifacts.upsert(run.diagram_id, name, obj.key, obj.size, obj.sha256)
    status, go_on = status_after(stage, settings)
    moved = await DiagramRepository(session).set_status(uid, status, only_from=MOVABLE_STATUSES)
    return Recorded.moved_on if go_on and moved is not None else Recorded.stopped


async def record_failure(
    session: AsyncSession, uid: uuid.UUID, stage: Stage, run: StageRun, message: str
) -> Recorded:
    """Record that `run` failed with `message`: the diagram goes to error and the stages
    queued after it will not run."""
    if await StageRunRepository(session).fail(run, message) is None:
        return Recorded.stale
    await fail_chain(session, uid, run.diagram_id, stage.name, message)
    return Recorded.stopped


async def fail_chain(
    session: AsyncSession, uid: uuid.UUID, diagram_id: int, stage_name: str, message: str
) -> None:
    """The chain stops at `stage_name`, which failed with `message`: the runs queued after it
    are failed as not run, and the diagram goes to error naming the stage (unless it was
    cancelled or deleted meanwhile). The caller has failed the stage's own run."""
    await StageRunRepository(session).fail_queued(diagram_id, f"not run: {stage_name} failed")
    await DiagramRepository(session).set_status(
        uid, DiagramStatus.error, stage_name, message, only_from=MOVABLE_STATUSES
    )
