"""How every stage task runs: claim, load, call the stage function, save, record.

The stage function is the one in pid.pipeline.stages that `pid run` calls too; this module only
moves its artifacts between storage and a scratch folder and keeps the database's state.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from celery import Task
from celery.exceptions import Ignore, SoftTimeLimitExceeded
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from pid.db.models import StageRun
from pid.db.repositories import StageRunRepository
from pid.pipeline.claims import Claim, ClaimKind, claim_stage
from pid.pipeline.outcomes import Recorded, record_failure, record_success
from pid.pipeline.recovery import RETRYING_PREFIX
from pid.pipeline.stages import STAGES, Stage, StageConfig, StageOutcome
from pid.storage import ObjectNotFound, StorageError, artifact_key
from pid.tasks.runtime import Runtime, get_runtime

log = logging.getLogger("pid.stages")

#: Logged when a run ended after its claim was taken over; its outcome was not recorded.
STALE = "ended after its claim was taken over; outcome not recorded"

#: Errors of the services around a stage (not of the stage's own work): retried with backoff.
TRANSIENT = (StorageError, OperationalError, InterfaceError, ConnectionError, TimeoutError)


def execute_stage(task: Task[Any, Any], uid_text: str, stage_name: str) -> dict[str, Any]:
    """Run one stage of one diagram for this delivery of its message."""
    stage, uid = STAGES[stage_name], uuid.UUID(uid_text)
    runtime = get_runtime()
    task_id = str(task.request.id)
    claim = _with_retry(task, runtime, lambda: _claim(runtime, uid, stage, task_id))
    if claim.kind is ClaimKind.done:
        log.info("stage %s of %s task %s: already done, chain goes on", stage.name, uid, task_id)
        return {"stage": stage.name, "state": "already done"}
    if claim.kind is ClaimKind.stopped or claim.run is None:
        log.info("stage %s of %s task %s: not run (%s)", stage.name, uid, task_id, claim.reason)
        raise Ignore()
    run = claim.run
    log.info("stage %s of %s task %s: started (attempt %d)", stage.name, uid, task_id, run.attempt)
    started = time.perf_counter()
    config = StageConfig.from_settings(runtime.settings)
    runtime.settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=runtime.settings.tmp_dir, prefix="stage-") as tmp:
        folder = Path(tmp)
        _with_retry(task, runtime, lambda: _download(runtime, uid, stage, folder), run)
        try:
            outcome = stage.run(folder, config)
        except (Exception, SoftTimeLimitExceeded) as exc:
            # Named as the stage table names it, not by the scratch folder it was in.
            message = _message(exc).replace(f"{folder}/", "")
            recorded = runtime.run(lambda: _record_failure(runtime, uid, stage, run, message))
            if recorded is Recorded.stale:
                log.info("stage %s of %s task %s: %s", stage.name, uid, task_id, STALE)
                raise Ignore() from exc
            log.info("stage %s of %s task %s: failed: %s", stage.name, uid, task_id, message)
            raise
        recorded = _with_retry(
            task, runtime, lambda: _save(runtime, uid, stage, folder, run, outcome), run
        )
    took = time.perf_counter() - started
    if recorded is Recorded.stale:
        log.info("stage %s of %s task %s: %s", stage.name, uid, task_id, STALE)
        raise Ignore()
    log.info("stage %s of %s task %s: %s in %.2f s", stage.name, uid, task_id, outcome.state, took)
    if recorded is Recorded.stopped:
        raise Ignore()  # cancelled, deleted or waiting at a gate: the chain stops here
    return {"stage": stage.name, "state": outcome.state, **outcome.summary}


def _message(exc: BaseException) -> str:
    if isinstance(exc, SoftTimeLimitExceeded):
        return "time limit exceeded"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:2000]


def _with_retry(
    task: Task[Any, Any], runtime: Runtime, work: Any, run: StageRun | None = None
) -> Any:
    """Run database/storage work; a transient error retries the task with backoff."""
    try:
        return runtime.run(work)
    except Exception as exc:
        if not _transient(exc):
            if isinstance(exc, DBAPIError):
                raise RuntimeError(_message(exc)) from exc
            raise
        reason = _message(exc)
        if run is not None:
            # If even this fails, the reaper finds the run.
            with contextlib.suppress(Exception):
                runtime.run(lambda: _release(runtime, run, reason))
        retries = int(task.request.retries or 0)
        raise task.retry(exc=exc, countdown=min(2**retries, 60)) from exc


def _transient(exc: BaseException) -> bool:
    """An error of the services around a stage, or a database error that cost its
    connection (the server restarted under it): worth retrying."""
    if isinstance(exc, TRANSIENT):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


async def _claim(runtime: Runtime, uid: uuid.UUID, stage: Stage, task_id: str) -> Claim:
    async with runtime.sessions() as session:
        return await claim_stage(session, uid, stage, task_id, runtime.settings.stage_max_attempts)


async def _download(runtime: Runtime, uid: uuid.UUID, stage: Stage, folder: Path) -> None:
    for name in (*stage.inputs, *stage.optional_inputs):
        try:
            await runtime.storage.get_file(artifact_key(uid, name), folder / name)
        except ObjectNotFound:
            if name in stage.inputs:
                raise FileNotFoundError(f"artifact {name} of diagram {uid} is missing") from None


async def _save(
    runtime: Runtime,
    uid: uuid.UUID,
    stage: Stage,
    folder: Path,
    run: StageRun,
    outcome: StageOutcome,
) -> Recorded:
    """Store the outputs, then record them, the run and the diagram's status."""
    stored = []
    for name in stage.outputs:
        if (folder / name).is_file():
            stored.append(
                (name, await runtime.storage.put_file(artifact_key(uid, name), folder / name))
            )
    async with runtime.sessions() as session:
        recorded = await record_success(session, uid, stage, run, outcome, stored, runtime.settings)
        await session.commit()
        return recorded


async def _record_failure(
    runtime: Runtime, uid: uuid.UUID, stage: Stage, run: StageRun, message: str
) -> Recorded:
    async with runtime.sessions() as session:
        recorded = await record_failure(session, uid, stage, run, message)
        await session.commit()
        return recorded


async def _release(runtime: Runtime, run: StageRun, message: str) -> None:
    """Give a claimed run back (failed, attempts left) so the retried message can claim it."""
    async with runtime.sessions() as session:
        await StageRunRepository(session).fail(run, f"{RETRYING_PREFIX} {message}")
        await session.commit()
