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

from pid.db.models import MOVABLE_STATUSES, DiagramStatus, StageRun, StageRunState
from pid.db.repositories import ArtifactRepository, DiagramRepository, StageRunRepository
from pid.pipeline.stages import Stage, StageOutcome
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
    status, go_on = status_after(stage, outcome, settings)
    moved = await DiagramRepository(session).set_status(uid, status, only_from=MOVABLE_STATUSES)
    return Recorded.moved_on if go_on and moved is not None else Recorded.stopped


async def record_failure(
    session: AsyncSession, uid: uuid.UUID, stage: Stage, run: StageRun, message: str
) -> Recorded:
    """Record that `run` failed with `message`: the diagram goes to error and the stages
    queued after it will not run."""
    runs = StageRunRepository(session)
    if await runs.fail(run, message) is None:
        return Recorded.stale
    await runs.fail_queued(run.diagram_id, f"not run: {stage.name} failed")
    await DiagramRepository(session).set_status(
        uid, DiagramStatus.error, stage.name, message, only_from=MOVABLE_STATUSES
    )
    return Recorded.stopped


def status_after(
    stage: Stage, outcome: StageOutcome, settings: Settings
) -> tuple[DiagramStatus, bool]:
    """The diagram's status once `stage` ended with `outcome`, and whether the chain goes on."""
    if stage.gate is not None and getattr(settings, stage.gate[0]):
        return DiagramStatus(stage.gate[1]), False
    if stage.name == "cvat_upload" and outcome.state == "skipped":
        return DiagramStatus.detected, True
    return DiagramStatus(stage.status_after), True
