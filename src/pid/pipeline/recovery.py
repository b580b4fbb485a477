"""Finding stage runs that nothing will move on, and sending them again (the reaper's logic).

A killed worker fires no handler, and a broker that restarts empty forgets its messages, so
the database alone says what was meant to happen: the queued and running stage runs of a
diagram are its chain. Each diagram's chain has a head, its first run not yet done:

- a head `running` past its pool's hard time limit plus grace, or whose message the broker no
  longer holds, was lost with its worker: it is queued again (its attempt counter rose when it
  was claimed), or, once it has used every attempt, fails with "worker lost";
- a head `queued` (or failed and waiting for a retry) whose message the broker does not hold
  and that has not moved for `orphan_after` seconds is a chain broken between stages: it is
  sent again, with the runs queued after it.

Runs sent again get new task ids, so a late copy of an old message finds the id changed and
does nothing. Every change is a conditional UPDATE on the run's state and task id, so a worker
claiming the same run at the same moment either wins or finds it gone. The caller commits,
then sends the returned messages (enqueue after commit); if sending fails, the runs are still
orphans and the next pass sends them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from pid.core.statuses import DiagramStatus, StageRunState
from pid.db.engine import database_now
from pid.db.models import StageRun
from pid.db.repositories import StageRunRepository
from pid.pipeline.outcomes import fail_chain
from pid.pipeline.ports import Message
from pid.pipeline.stages import STAGES
from pid.settings import Settings

#: A run released by a transient error waits for its retry message in this state.
RETRYING_PREFIX = "retrying:"
WORKER_LOST = "worker lost"


@dataclass
class Recovery:
    """What one pass found and did, as counts, and the messages to send after the commit."""

    requeued: int = 0  # running runs lost with their worker, queued again
    worker_lost: int = 0  # lost runs out of attempts, failed
    resent: int = 0  # chains broken between stages, sent again
    ended: int = 0  # runs of cancelled diagrams lost with their worker, failed
    #: One chain of messages per diagram, each to be sent as one Celery chain.
    chains: list[list[Message]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "requeued": self.requeued,
            "worker_lost": self.worker_lost,
            "resent": self.resent,
            "ended": self.ended,
        }


def pool_time_limit(queue: str, settings: Settings) -> float:
    """The hard time limit of a stage on `queue`: Celery's on prefork pools, the asyncio
    timeout on the threads pool."""
    if queue == "gpu":
        return settings.gpu_time_limit
    if queue == "cpu":
        return settings.cpu_time_limit
    return settings.io_timeout


async def recover(
    session: AsyncSession,
    settings: Settings,
    held_task_ids: set[str],
    now: datetime | None = None,
) -> Recovery:
    """One pass over every diagram whose chain is not finished; the caller commits.

    `held_task_ids` must be read from the broker before this pass reads the database, so a
    message sent in between belongs to a run too young to count as orphaned. `now` defaults to
    the database's clock, the one every run's times were written with.
    """
    if now is None:
        now = await database_now(session)
    recovery = Recovery()
    scene = _Scene(session, settings, held_task_ids, now)
    for uid, chain_runs in (await StageRunRepository(session).unfinished_chains()).items():
        head = chain_head(chain_runs)
        if head is None:
            continue
        try:
            # One savepoint per diagram: a run moved by a worker meanwhile undoes this
            # diagram's changes only.
            async with session.begin_nested():
                await _recover_chain(scene, uid, chain_runs, head, recovery)
        except _MovedMeanwhileError:
            continue
    recovery.ended = await _end_lost_at_rest(scene)
    return recovery


async def _end_lost_at_rest(scene: _Scene) -> int:
    """Fail the runs left running in cancelled diagrams whose worker was lost. Nothing is
    sent again: the diagram was stopped on purpose. Without this such a run would stay
    running for good, and every later run of the diagram would be refused as a conflict."""
    runs = StageRunRepository(scene.session)
    ended = 0
    for run in await runs.running_at_rest([DiagramStatus.cancelled]):
        if not _lost(run, scene.settings, scene.held, scene.now):
            continue
        error = f"{DiagramStatus.cancelled.value}: {WORKER_LOST}"
        if await runs.fail_running(run.diagram_id, run.stage, error, task_id=run.task_id):
            ended += 1
    return ended


class _MovedMeanwhileError(Exception):
    """A worker changed a run between the read and the update."""


@dataclass(frozen=True)
class _Scene:
    """What one pass reads by: the session, the settings, the broker's ids and the time."""

    session: AsyncSession
    settings: Settings
    held: set[str]
    now: datetime


async def _recover_chain(
    scene: _Scene,
    uid: uuid.UUID,
    chain_runs: Sequence[StageRun],
    head: StageRun,
    recovery: Recovery,
) -> None:
    session, settings, held, now = scene.session, scene.settings, scene.held, scene.now
    runs = StageRunRepository(session)
    if head.state != StageRunState.running:
        if _orphaned(head, chain_runs, settings, held, now):
            recovery.chains.append(await _resend(runs, uid, chain_runs, head))
            recovery.resent += 1
        return
    if not _lost(head, settings, held, now):
        return
    if head.attempt < settings.stage_max_attempts:
        recovery.chains.append(await _resend(runs, uid, chain_runs, head))
        recovery.requeued += 1
        return
    failed = await runs.fail_running(head.diagram_id, head.stage, WORKER_LOST, task_id=head.task_id)
    if failed is None:
        raise _MovedMeanwhileError
    await fail_chain(session, uid, head.diagram_id, head.stage, WORKER_LOST)
    recovery.worker_lost += 1


def chain_head(chain_runs: Sequence[StageRun]) -> StageRun | None:
    """The first run, in stage order, that is queued, running or waiting for a retry."""
    pending = [run for run in chain_runs if _pending(run)]
    return min(pending, key=lambda run: _position(run.stage), default=None)


def _pending(run: StageRun) -> bool:
    if run.state in (StageRunState.queued, StageRunState.running):
        return True
    return run.state == StageRunState.failed and (run.error or "").startswith(RETRYING_PREFIX)


def _position(stage: str) -> int:
    names = list(STAGES)
    return names.index(stage) if stage in STAGES else len(names)


def _lost(run: StageRun, settings: Settings, held: set[str], now: datetime) -> bool:
    started = run.started_at or run.queued_at
    limit = pool_time_limit(STAGES[run.stage].queue, settings) + settings.reaper_grace
    if started < now - timedelta(seconds=limit):
        return True
    message_gone = run.task_id not in held
    return message_gone and started < now - timedelta(seconds=settings.orphan_after)


def _orphaned(
    head: StageRun,
    chain_runs: Sequence[StageRun],
    settings: Settings,
    held: set[str],
    now: datetime,
) -> bool:
    if head.task_id in held:
        return False
    # The chain last moved when its head was queued or when any of its runs last finished.
    moments = [head.queued_at, *(run.finished_at for run in chain_runs if run.finished_at)]
    return max(moments) < now - timedelta(seconds=settings.orphan_after)


async def _resend(
    runs: StageRunRepository, uid: uuid.UUID, chain_runs: Sequence[StageRun], head: StageRun
) -> list[Message]:
    """Give the head and the runs queued after it new task ids; their messages, in order."""
    following = sorted(
        (r for r in chain_runs if r.state == StageRunState.queued and r is not head),
        key=lambda r: _position(r.stage),
    )
    messages: list[Message] = []
    for run in (head, *following):
        task_id = str(uuid.uuid4())
        if not await runs.requeue(run, task_id):
            raise _MovedMeanwhileError
        stage = STAGES[run.stage]
        messages.append(Message(stage.name, stage.queue, task_id, str(uid)))
    return messages
