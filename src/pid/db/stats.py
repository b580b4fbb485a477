"""Counts over diagrams and stage runs for /metrics, read from the tables at scrape time.

The tables are the one record every worker writes to, whatever machine it runs on, so figures
read here are the service's own rather than one process's. Queries only: the caller owns the
session and its transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import ColumnElement, Select, func, select

from pid.core.statuses import DiagramStatus, StageRunState
from pid.db.models import Diagram, StageRun
from pid.db.repositories import Repository

K = TypeVar("K")

#: States whose duration_s is a stage's whole run (queued and running runs have none yet).
FINISHED_STATES = (StageRunState.succeeded, StageRunState.skipped, StageRunState.failed)


@dataclass(frozen=True, slots=True)
class DurationCounts:
    """Durations of one stage's finished runs, as a cumulative histogram.

    `cumulative[i]` counts runs that took at most `bounds[i]` seconds (the bounds the query
    was given, ascending); `count` counts them all and `sum_s` adds their durations.
    """

    cumulative: tuple[int, ...]
    count: int
    sum_s: float


class StatsRepository(Repository):
    """Aggregates for monitoring; each method is one query."""

    async def stage_durations(self, bounds: Sequence[float]) -> dict[str, DurationCounts]:
        """Each stage's finished runs that have a duration, bucketed by the ascending upper
        `bounds` (seconds), by stage; stages without such runs are left out."""
        # One pass over the table: one filtered count per bound, instead of a query per bucket.
        buckets = [func.count().filter(StageRun.duration_s <= bound) for bound in bounds]
        statement = (
            select(StageRun.stage, func.count(), func.sum(StageRun.duration_s), *buckets)
            .where(StageRun.state.in_(FINISHED_STATES), StageRun.duration_s.is_not(None))
            .group_by(StageRun.stage)
        )
        rows = await self.session.execute(statement)
        return {
            stage: DurationCounts(tuple(cumulative), count, float(total or 0.0))
            for stage, count, total, *cumulative in rows
        }

    async def diagrams_by_status(self) -> dict[DiagramStatus, int]:
        """How many diagrams are in each status, every status present (zero when none)."""
        statement = select(Diagram.status, func.count()).group_by(Diagram.status)
        return _with_zeros(tuple(DiagramStatus), await self._counts(statement))

    async def stage_runs_by_state(self) -> dict[tuple[str, StageRunState], int]:
        """How many stage runs are in each (stage, state) that has any."""
        statement = select(StageRun.stage, StageRun.state, func.count()).group_by(
            StageRun.stage, StageRun.state
        )
        rows = await self.session.execute(statement)
        return {(stage, state): count for stage, state, count in rows}

    async def failed_stage_runs(self, *, retrying_prefix: str) -> dict[str, int]:
        """Failed runs by stage, leaving out those whose error starts with `retrying_prefix`
        (released by a transient error, they wait for their retry message)."""
        waiting_for_retry = StageRun.error.startswith(retrying_prefix, autoescape=True)
        statement = (
            select(StageRun.stage, func.count())
            .where(
                StageRun.state == StageRunState.failed,
                # A failed run always has an error, but a NULL one must still count as failed.
                StageRun.error.is_(None) | ~waiting_for_retry,
            )
            .group_by(StageRun.stage)
        )
        return await self._counts(statement)

    async def diagrams_in_error(self) -> dict[str | None, int]:
        """Diagrams in status error by the stage that failed (None when none was recorded)."""
        statement = (
            select(Diagram.error_stage, func.count())
            .where(Diagram.status == DiagramStatus.error)
            .group_by(Diagram.error_stage)
        )
        return await self._counts(statement)

    async def stale_reviews(
        self, statuses: Collection[DiagramStatus], older_than: timedelta
    ) -> dict[DiagramStatus, int]:
        """Diagrams in each of `statuses` unchanged for longer than `older_than`, every one of
        `statuses` present (zero when none).

        The cutoff is taken from the database's clock, the one updated_at was written with.
        """
        cutoff: ColumnElement[object] = func.statement_timestamp() - older_than
        statement = (
            select(Diagram.status, func.count())
            .where(Diagram.status.in_(list(statuses)), Diagram.updated_at < cutoff)
            .group_by(Diagram.status)
        )
        return _with_zeros(statuses, await self._counts(statement))

    async def _counts(self, statement: Select[K, int]) -> dict[K, int]:
        """The (key, count) rows of `statement` as a mapping."""
        rows = await self.session.execute(statement)
        return dict(rows.all())


def _with_zeros(keys: Collection[K], counts: dict[K, int]) -> dict[K, int]:
    """`counts` for exactly `keys`, zero for a key it lacks (a series that reads 0 instead of
    disappearing, so an alert on it does not go silent)."""
    return {key: counts.get(key, 0) for key in keys}
