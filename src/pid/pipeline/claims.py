"""Whether a delivery of a stage's message may run the stage: the claim, and the attempt limit.

A message can arrive for a diagram cancelled meanwhile, for an earlier submission (its task id
is no longer the run's), for a stage already done (a redelivery after the worker had finished),
or after its run has used every attempt (a worker that dies on it each time). `claim_stage`
decides which, in one transaction, and claims the run with one conditional UPDATE when it may
run, so two deliveries never run a stage at once.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from pid.core.statuses import DiagramStatus, StageRunState
from pid.db.models import StageRun
from pid.db.repositories import DiagramRepository, StageRunRepository
from pid.pipeline.outcomes import fail_chain
from pid.pipeline.recovery import WORKER_LOST
from pid.pipeline.stages import Stage


class ClaimKind(enum.StrEnum):
    claimed = "claimed"  # this delivery runs the stage
    done = "done"  # the stage already ended well: the chain goes on without redoing it
    stopped = "stopped"  # nothing to run: the chain stops here


@dataclass(frozen=True, slots=True)
class Claim:
    kind: ClaimKind
    run: StageRun | None = None
    reason: str = ""


async def claim_stage(
    session: AsyncSession, uid: uuid.UUID, stage: Stage, task_id: str, max_attempts: int
) -> Claim:
    """Claim the run of `stage` for the delivery `task_id`; commits what it changes."""
    diagrams, runs = DiagramRepository(session), StageRunRepository(session)
    diagram = await diagrams.get_by_uid(uid)
    if diagram is None or diagram.status in (DiagramStatus.cancelled, DiagramStatus.deleted):
        return Claim(ClaimKind.stopped, reason="diagram cancelled, deleted or unknown")
    current = await runs.get(diagram.id, stage.name)
    if current is None or (current.task_id and current.task_id != task_id):
        return Claim(ClaimKind.stopped, reason="message of an earlier submission")
    if current.state in (StageRunState.succeeded, StageRunState.skipped):
        return Claim(ClaimKind.done)
    run = await runs.claim(diagram.id, stage.name, task_id, max_attempts)
    if run is None:
        run = await runs.reclaim_running(diagram.id, stage.name, task_id, max_attempts)
    if run is not None:
        await session.commit()
        return Claim(ClaimKind.claimed, run)
    if current.attempt >= max_attempts:
        # As the reaper does: the chain stops here, so nothing of it may stay queued (nor this
        # run, when the reaper had queued it again at the limit).
        await runs.fail_running(diagram.id, stage.name, WORKER_LOST, task_id=task_id)
        await fail_chain(session, uid, diagram.id, stage.name, WORKER_LOST)
        await session.commit()
        return Claim(ClaimKind.stopped, reason="attempt limit reached: worker lost")
    return Claim(ClaimKind.stopped, reason=f"run is {current.state}")
