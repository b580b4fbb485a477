"""Queries over diagrams, stage runs and artifacts.

Each repository wraps an `AsyncSession` owned by the caller: repositories flush when they must
read back generated values, but never commit or roll back, so one unit of work (an API request,
a task's transition) can span several repositories and commit once.

State changes that race with other workers are single statements (``UPDATE ... WHERE ...
RETURNING``, ``INSERT ... ON CONFLICT``), so the database decides who wins without a separate
read; their results overwrite any copy of the row already in the session.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert, ReturningUpdate

from pid.core.statuses import MOVABLE_STATUSES, DiagramStatus, StageRunState
from pid.db.models import Artifact, Base, Diagram, StageRun

ModelT = TypeVar("ModelT", bound=Base)

#: Start and end times of a stage run. statement_timestamp() rather than now(): now() is the
#: start of the transaction, which would make a run's duration wrong whenever the claim and the
#: outcome share a longer transaction.
_now = func.statement_timestamp

#: States from which a delivery may start a stage run.
CLAIMABLE_STATES = (StageRunState.queued, StageRunState.failed)
#: States of a stage run that still has work ahead of it.
ACTIVE_STATES = (StageRunState.queued, StageRunState.running)

#: Options that make ORM rows returned by a DML statement replace the session's copies.
_REFRESH = {"populate_existing": True}


class Repository:
    """Base of the repositories: holds the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _first(self, statement: Select[ModelT]) -> ModelT | None:
        """The first row of `statement`, refreshed from the database, or None."""
        result = await self.session.scalars(statement, execution_options=_REFRESH)
        return result.first()

    async def _all(self, statement: Select[ModelT]) -> Sequence[ModelT]:
        """Every row of `statement`, refreshed from the database."""
        result = await self.session.scalars(statement, execution_options=_REFRESH)
        return result.all()

    async def _returning_one(
        self,
        statement: ReturningInsert[ModelT] | ReturningUpdate[ModelT],
    ) -> ModelT | None:
        """The row a DML statement with RETURNING wrote, or None when it matched nothing."""
        result = await self.session.scalars(statement, execution_options=_REFRESH)
        return result.one_or_none()


class DiagramRepository(Repository):
    """Diagrams by uid: creation, listing, status transitions and deletion."""

    async def create(
        self,
        *,
        original_name: str,
        sha256: str,
        width: int,
        height: int,
        page: int = 1,
        page_count: int = 1,
        dpi: float | None = None,
        has_symbols: bool = False,
        uid: uuid.UUID | None = None,
    ) -> Diagram:
        """Insert a diagram in status `uploaded` and flush it, so its id and times are set."""
        diagram = Diagram(
            uid=uid or uuid.uuid4(),
            original_name=original_name,
            sha256=sha256,
            width=width,
            height=height,
            page=page,
            page_count=page_count,
            dpi=dpi,
            has_symbols=has_symbols,
            status=DiagramStatus.uploaded,
        )
        self.session.add(diagram)
        await self.session.flush()
        return diagram

    async def get(self, diagram_id: int, *, for_update: bool = False) -> Diagram | None:
        """The diagram with primary key `diagram_id` (row-locked until the caller's
        transaction ends when `for_update`), or None."""
        statement = select(Diagram).where(Diagram.id == diagram_id)
        return await self._first(statement.with_for_update() if for_update else statement)

    async def get_by_uid(self, uid: uuid.UUID) -> Diagram | None:
        """The diagram with public id `uid`, or None."""
        return await self._first(select(Diagram).where(Diagram.uid == uid))

    async def get_for_update(self, uid: uuid.UUID) -> Diagram | None:
        """The diagram `uid`, row-locked until the caller's transaction ends, or None.

        Submissions, resumes and cancellations of one diagram take this lock first, so they
        see each other's stage runs instead of queueing the same stage twice.
        """
        return await self._first(select(Diagram).where(Diagram.uid == uid).with_for_update())

    async def list(
        self,
        *,
        status: DiagramStatus | Collection[DiagramStatus] | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[Sequence[Diagram], int]:
        """One page of diagrams, newest first, and the number of diagrams matching the filter.

        `status` keeps the diagrams in that status (or in any of several).
        """
        conditions = []
        if status is not None:
            statuses = [status] if isinstance(status, DiagramStatus) else list(status)
            conditions.append(Diagram.status.in_(statuses))
        total = await self.session.scalar(
            select(func.count()).select_from(Diagram).where(*conditions)
        )
        page = (
            select(Diagram)
            .where(*conditions)
            .order_by(Diagram.created_at.desc(), Diagram.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return await self._all(page), total or 0

    async def count_by_status(self) -> dict[DiagramStatus, int]:
        """How many diagrams are in each status (statuses with none are left out)."""
        rows = await self.session.execute(
            select(Diagram.status, func.count()).group_by(Diagram.status)
        )
        return dict(rows.all())

    async def set_status(
        self,
        uid: uuid.UUID,
        status: DiagramStatus,
        error_stage: str | None = None,
        error_message: str | None = None,
        *,
        only_from: Collection[DiagramStatus] | None = None,
    ) -> Diagram | None:
        """Move diagram `uid` to `status`, recording (or clearing) the error fields.

        With `only_from`, the change happens only while the diagram is in one of those
        statuses, as one statement, so two racing transitions cannot both apply. Returns the
        updated diagram, or None when `uid` is unknown or not in an allowed status.
        """
        statement = (
            update(Diagram)
            .where(Diagram.uid == uid)
            .values(status=status, error_stage=error_stage, error_message=error_message)
        )
        if only_from is not None:
            statement = statement.where(Diagram.status.in_(list(only_from)))
        return await self._returning_one(statement.returning(Diagram))

    async def waiting_since(
        self, statuses: Collection[DiagramStatus], updated_before: datetime
    ) -> Sequence[Diagram]:
        """Diagrams in any of `statuses` unchanged since before `updated_before`, longest
        waiting first (reviews left waiting)."""
        statement = (
            select(Diagram)
            .where(Diagram.status.in_(list(statuses)), Diagram.updated_at < updated_before)
            .order_by(Diagram.updated_at, Diagram.id)
        )
        return await self._all(statement)

    async def uids_with_status(
        self,
        statuses: Collection[DiagramStatus],
        *,
        updated_before: datetime | None = None,
        limit: int | None = None,
    ) -> Sequence[uuid.UUID]:
        """Uids of diagrams in any of `statuses`, least recently changed first.

        `updated_before` keeps those unchanged since that time (cleanup of deleted or stale
        diagrams).
        """
        statement = select(Diagram.uid).where(Diagram.status.in_(list(statuses)))
        if updated_before is not None:
            statement = statement.where(Diagram.updated_at < updated_before)
        statement = statement.order_by(Diagram.updated_at, Diagram.id).limit(limit)
        return (await self.session.scalars(statement)).all()

    async def delete(self, uid: uuid.UUID) -> bool:
        """Delete diagram `uid` with its stage runs and artifact rows; False if it was absent.

        The stored files are not touched: the caller removes them from storage.
        """
        statement = delete(Diagram).where(Diagram.uid == uid).returning(Diagram.id)
        deleted = await self.session.scalar(statement)
        return deleted is not None


class StageRunRepository(Repository):
    """Stage runs: one row per (diagram, stage), claimed atomically by the deliveries."""

    async def get(self, diagram_id: int, stage: str) -> StageRun | None:
        """The run of `stage` for the diagram, or None if the stage was never queued."""
        return await self._first(
            select(StageRun).where(StageRun.diagram_id == diagram_id, StageRun.stage == stage)
        )

    async def for_diagram(
        self, diagram_id: int, order: Sequence[str] | None = None
    ) -> Sequence[StageRun]:
        """Every run of the diagram, in chain `order` when given (unknown stages last), else
        in the order they were first queued."""
        statement = select(StageRun).where(StageRun.diagram_id == diagram_id)
        if order:
            position = {stage: index for index, stage in enumerate(order)}
            statement = statement.order_by(
                case(position, value=StageRun.stage, else_=len(position))
            )
        return await self._all(statement.order_by(StageRun.id))

    async def active(self, diagram_id: int) -> Sequence[StageRun]:
        """The diagram's runs that are queued or running."""
        statement = (
            select(StageRun)
            .where(StageRun.diagram_id == diagram_id, StageRun.state.in_(ACTIVE_STATES))
            .order_by(StageRun.id)
        )
        return await self._all(statement)

    async def stale_running(self, started_before: datetime) -> Sequence[StageRun]:
        """Runs still `running` that started before `started_before` (for the reaper: a
        killed worker reports nothing)."""
        statement = (
            select(StageRun)
            .where(StageRun.state == StageRunState.running, StageRun.started_at < started_before)
            .order_by(StageRun.started_at)
        )
        return await self._all(statement)

    async def unfinished_chains(self) -> dict[uuid.UUID, list[StageRun]]:
        """Every run of each diagram that may still move and has a run queued, running or
        failed (a failed run may be waiting for its retry), by diagram uid."""
        pending = (
            select(StageRun.diagram_id)
            .where(StageRun.state.in_((*ACTIVE_STATES, StageRunState.failed)))
            .distinct()
        )
        statement = (
            select(Diagram.uid, StageRun)
            .join(Diagram, Diagram.id == StageRun.diagram_id)
            .where(Diagram.status.in_(MOVABLE_STATUSES), StageRun.diagram_id.in_(pending))
            .order_by(StageRun.id)
        )
        chains: dict[uuid.UUID, list[StageRun]] = {}
        for uid, run in await self.session.execute(statement, execution_options=_REFRESH):
            chains.setdefault(uid, []).append(run)
        return chains

    async def running_at_rest(self, statuses: Collection[DiagramStatus]) -> Sequence[StageRun]:
        """Runs still `running` in diagrams in any of `statuses`: a stage that was running when
        its diagram was cancelled goes on, and its end is recorded; one whose worker died
        meanwhile ends nowhere else."""
        statement = (
            select(StageRun)
            .join(Diagram, Diagram.id == StageRun.diagram_id)
            .where(Diagram.status.in_(list(statuses)), StageRun.state == StageRunState.running)
            .order_by(StageRun.id)
        )
        return await self._all(statement)

    async def requeue(self, run: StageRun, task_id: str) -> StageRun | None:
        """Queue `run` again under a new `task_id`, keeping its attempt count, if it is still
        in the state and under the task id it was read with; None if a worker moved it."""
        statement = (
            update(StageRun)
            .where(
                StageRun.id == run.id,
                StageRun.state == run.state,
                StageRun.task_id.is_not_distinct_from(run.task_id),
            )
            .values(
                state=StageRunState.queued,
                task_id=task_id,
                queued_at=_now(),
                started_at=None,
                finished_at=None,
                duration_s=None,
            )
            .returning(StageRun)
        )
        return await self._returning_one(statement)

    async def queue(
        self,
        diagram_id: int,
        stages: Sequence[str],
        task_ids: Mapping[str, str] | None = None,
    ) -> Sequence[StageRun]:
        """Create or reset the runs of exactly `stages` to `queued`, attempt 0.

        A reset clears the task id (unless `task_ids` names one), times, error, result and
        provenance of the previous run; other stages' runs are untouched. Callers serialise
        queueing per diagram with `DiagramRepository.get_for_update`. Returns the runs in the
        order of `stages`.
        """
        # A stage named twice would make ON CONFLICT touch its row twice, which PostgreSQL refuses.
        stages = list(dict.fromkeys(stages))
        if not stages:
            return []
        task_ids = task_ids or {}
        rows = [
            {"diagram_id": diagram_id, "stage": stage, "task_id": task_ids.get(stage)}
            for stage in stages
        ]
        statement = insert(StageRun).values(rows)
        statement = statement.on_conflict_do_update(
            index_elements=[StageRun.diagram_id, StageRun.stage],
            set_={
                "task_id": statement.excluded.task_id,
                "state": StageRunState.queued,
                "attempt": 0,
                "queued_at": _now(),
                "started_at": None,
                "finished_at": None,
                "duration_s": None,
                "error": None,
                "provenance": None,
                "result": None,
            },
        )
        result = await self.session.scalars(
            statement.returning(StageRun), execution_options=_REFRESH
        )
        position = {stage: index for index, stage in enumerate(stages)}
        return sorted(result.all(), key=lambda run: position[run.stage])

    async def claim(
        self, diagram_id: int, stage: str, task_id: str, max_attempts: int
    ) -> StageRun | None:
        """Start the run of `stage` for delivery `task_id`, or None if it may not start.

        One statement takes a queued (or failed, for a retry) run with attempts left to
        `running`; a concurrent claim of the same run blocks on the row lock, then finds it
        running and gets None. So a redelivered message never runs a stage twice at once.
        The caller commits right away so other deliveries see the claim.
        """
        statement = self._start(diagram_id, stage, task_id, max_attempts).where(
            StageRun.state.in_(CLAIMABLE_STATES)
        )
        return await self._returning_one(statement)

    async def reclaim_running(
        self, diagram_id: int, stage: str, task_id: str, max_attempts: int
    ) -> StageRun | None:
        """Restart a run left `running` by delivery `task_id` itself, or return None.

        For a message redelivered after its worker died mid-stage: the row still says
        running under the same task id, which no other message can hold. Counts as a new
        attempt, so a stage that kills its worker every time stops at `max_attempts`.
        """
        statement = self._start(diagram_id, stage, task_id, max_attempts).where(
            StageRun.state == StageRunState.running, StageRun.task_id == task_id
        )
        return await self._returning_one(statement)

    async def succeed(
        self,
        run: StageRun,
        result: dict[str, Any] | None = None,
        provenance: dict[str, Any] | None = None,
        *,
        state: StageRunState = StageRunState.succeeded,
    ) -> StageRun | None:
        """Record that the claimed `run` finished (succeeded, or skipped when the stage found
        nothing to do); None if the run is no longer this claim."""
        values = {"state": state, "result": result, "provenance": provenance}
        return await self._returning_one(self._finish(run, values))

    async def fail(self, run: StageRun, error: str) -> StageRun | None:
        """Record that the claimed `run` failed with `error`; None if it is no longer this
        claim. A failed run may be claimed again while attempts are left."""
        values = {"state": StageRunState.failed, "error": error}
        return await self._returning_one(self._finish(run, values))

    async def fail_running(
        self, diagram_id: int, stage: str, error: str, *, task_id: str | None = None
    ) -> StageRun | None:
        """Fail the run of `stage` if it is running (under `task_id`, when given).

        For code that holds no claimed row: an errback run in the parent after a hard time
        limit, or the reaper. Returns None when there was nothing running to fail.
        """
        statement = (
            update(StageRun)
            .where(
                StageRun.diagram_id == diagram_id,
                StageRun.stage == stage,
                StageRun.state == StageRunState.running,
            )
            .values(state=StageRunState.failed, error=error, **_finish_times())
        )
        if task_id is not None:
            statement = statement.where(StageRun.task_id == task_id)
        return await self._returning_one(statement.returning(StageRun))

    async def fail_queued(self, diagram_id: int, error: str) -> int:
        """Fail every queued run of the diagram (a cancel); returns how many."""
        statement = (
            update(StageRun)
            .where(StageRun.diagram_id == diagram_id, StageRun.state == StageRunState.queued)
            .values(state=StageRunState.failed, error=error, **_finish_times())
        )
        result = await self.session.execute(statement.returning(StageRun.id))
        return len(result.all())

    async def skip(self, diagram_id: int, stage: str, reason: str) -> StageRun | None:
        """Mark `stage` skipped (creating its row if needed), with `reason` in the result.

        A running run is left alone (None is returned): skipping must not hide work in
        progress.
        """
        statement = insert(StageRun).values(
            diagram_id=diagram_id,
            stage=stage,
            state=StageRunState.skipped,
            finished_at=_now(),
            result={"reason": reason},
        )
        statement = statement.on_conflict_do_update(
            index_elements=[StageRun.diagram_id, StageRun.stage],
            set_={
                "state": StageRunState.skipped,
                "started_at": None,
                "finished_at": _now(),
                "duration_s": None,
                "error": None,
                "provenance": None,
                "result": statement.excluded.result,
            },
            where=StageRun.state != StageRunState.running,
        )
        return await self._returning_one(statement.returning(StageRun))

    @staticmethod
    def _start(
        diagram_id: int, stage: str, task_id: str, max_attempts: int
    ) -> ReturningUpdate[StageRun]:
        """UPDATE that starts the run for `task_id`; callers add the allowed prior states."""
        return (
            update(StageRun)
            .where(
                StageRun.diagram_id == diagram_id,
                StageRun.stage == stage,
                StageRun.attempt < max_attempts,
            )
            .values(
                state=StageRunState.running,
                task_id=task_id,
                attempt=StageRun.attempt + 1,
                started_at=_now(),
                finished_at=None,
                duration_s=None,
                error=None,
            )
            .returning(StageRun)
        )

    @staticmethod
    def _finish(run: StageRun, values: dict[str, Any]) -> ReturningUpdate[StageRun]:
        """UPDATE that ends `run` with `values`, only if it is still the same claim.

        The (task id, attempt) pair fences off a stale worker: after a reclaim, a re-queue or
        the reaper, the row's attempt or task id differs and the late outcome changes nothing.
        """
        return (
            update(StageRun)
            .where(
                StageRun.id == run.id,
                StageRun.state == StageRunState.running,
                StageRun.task_id == run.task_id,
                StageRun.attempt == run.attempt,
            )
            .values(**values, **_finish_times())
            .returning(StageRun)
        )


def _finish_times() -> dict[str, Any]:
    """SET values for the end of a run: finished_at, and its duration since started_at."""
    finished = _now()
    return {
        "finished_at": finished,
        "duration_s": func.extract("epoch", finished - StageRun.started_at),
    }


class ArtifactRepository(Repository):
    """Artifact rows: which stored file holds which artifact of a diagram."""

    async def upsert(
        self, diagram_id: int, name: str, storage_key: str, size: int, sha256: str
    ) -> Artifact:
        """Record artifact `name` of the diagram, replacing the previous version's row."""
        statement = insert(Artifact).values(
            diagram_id=diagram_id, name=name, storage_key=storage_key, size=size, sha256=sha256
        )
        statement = statement.on_conflict_do_update(
            index_elements=[Artifact.diagram_id, Artifact.name],
            set_={
                "storage_key": statement.excluded.storage_key,
                "size": statement.excluded.size,
                "sha256": statement.excluded.sha256,
                "created_at": func.now(),
            },
        )
        artifact = await self._returning_one(statement.returning(Artifact))
        # ON CONFLICT DO UPDATE without a WHERE always returns the row.
        assert artifact is not None
        return artifact

    async def get(self, diagram_id: int, name: str) -> Artifact | None:
        """Artifact `name` of the diagram, or None."""
        return await self._first(
            select(Artifact).where(Artifact.diagram_id == diagram_id, Artifact.name == name)
        )

    async def list(self, diagram_id: int) -> Sequence[Artifact]:
        """Every artifact of the diagram, by name."""
        statement = select(Artifact).where(Artifact.diagram_id == diagram_id)
        return await self._all(statement.order_by(Artifact.name))

    async def expired(
        self,
        kept: Collection[str],
        statuses: Collection[DiagramStatus],
        created_before: datetime,
    ) -> Sequence[Artifact]:
        """Artifacts not named in `kept`, written before `created_before`, of diagrams in any
        of `statuses`, oldest first (retention of intermediate files)."""
        statement = (
            select(Artifact)
            .join(Diagram, Diagram.id == Artifact.diagram_id)
            .where(
                Artifact.name.not_in(list(kept)),
                Artifact.created_at < created_before,
                Diagram.status.in_(list(statuses)),
            )
            .order_by(Artifact.created_at, Artifact.id)
        )
        return await self._all(statement)

    async def delete_if_unchanged(self, artifact: Artifact) -> bool:
        """Delete `artifact`'s row if no stage has written a newer version since it was read."""
        statement = delete(Artifact).where(
            Artifact.id == artifact.id, Artifact.created_at == artifact.created_at
        )
        deleted = await self.session.scalars(statement.returning(Artifact.id))
        return bool(deleted.all())

    async def delete_for_diagram(self, diagram_id: int) -> int:
        """Delete the diagram's artifact rows; returns how many there were."""
        statement = delete(Artifact).where(Artifact.diagram_id == diagram_id)
        deleted = await self.session.scalars(statement.returning(Artifact.id))
        return len(deleted.all())
