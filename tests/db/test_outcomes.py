"""A stage run's end is recorded only by the claim that still holds the run: a worker whose claim
was taken over (a redelivery, or the reaper's new attempt) changes nothing when it ends late."""

from __future__ import annotations

from pg import MakeDiagram
from sqlalchemy.ext.asyncio import AsyncSession

from pid.core.statuses import DiagramStatus
from pid.db.models import StageRun
from pid.db.repositories import ArtifactRepository, DiagramRepository, StageRunRepository
from pid.pipeline.outcomes import Recorded, record_failure, record_success
from pid.pipeline.stages import STAGES, StageOutcome
from pid.settings import Settings
from pid.storage import StoredObject

SEGMENT = STAGES["segment"]
MASK = StoredObject(key="diagrams/x/pipe_mask.png", size=10, sha256="a" * 64)


async def _taken_over(
    session: AsyncSession, make_diagram: MakeDiagram
) -> tuple[StageRun, StageRun]:
    """The segment run as its first claim saw it, and as the redelivery that took it over
    holds it."""
    diagram = await make_diagram(session)
    runs = StageRunRepository(session)
    await runs.queue(diagram.id, ["segment", "skeletonize"], {"segment": "t1"})
    first = await runs.claim(diagram.id, "segment", "t1", max_attempts=3)
    assert first is not None and first.attempt == 1
    second = await runs.reclaim_running(diagram.id, "segment", "t1", max_attempts=3)
    assert second is not None and second.attempt == 2
    # The first claim's row as its worker holds it in memory: attempt 1.
    stale = StageRun(**{c.key: getattr(second, c.key) for c in StageRun.__table__.columns})
    stale.attempt = 1
    return stale, second


async def _state(session: AsyncSession, diagram_id: int) -> dict[str, tuple[str, int]]:
    runs = await StageRunRepository(session).for_diagram(diagram_id)
    return {run.stage: (run.state.value, run.attempt) for run in runs}


async def test_a_late_success_of_a_taken_over_claim_records_nothing(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    stale, current = await _taken_over(session, make_diagram)
    diagram = await DiagramRepository(session).get(stale.diagram_id)
    assert diagram is not None

    outcome = StageOutcome("succeeded", {"pipe_pixels": 1})
    recorded = await record_success(
        session, diagram.uid, SEGMENT, stale, outcome, [("pipe_mask.png", MASK)], Settings()
    )

    assert recorded is Recorded.stale
    assert await _state(session, diagram.id) == {
        "segment": ("running", 2), "skeletonize": ("queued", 0),
    }  # fmt: skip
    assert await ArtifactRepository(session).list(diagram.id) == []
    await session.refresh(diagram)
    assert diagram.status is DiagramStatus.uploaded

    # The claim that holds the run records its end and moves the diagram on.
    recorded = await record_success(
        session, diagram.uid, SEGMENT, current, outcome, [("pipe_mask.png", MASK)], Settings()
    )
    assert recorded is Recorded.moved_on
    assert (await _state(session, diagram.id))["segment"] == ("succeeded", 2)
    assert [a.name for a in await ArtifactRepository(session).list(diagram.id)] == ["pipe_mask.png"]
    await session.refresh(diagram)
    assert diagram.status is DiagramStatus.segmented


async def test_a_late_failure_of_a_taken_over_claim_stops_nothing(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    stale, current = await _taken_over(session, make_diagram)
    diagram = await DiagramRepository(session).get(stale.diagram_id)
    assert diagram is not None

    recorded = await record_failure(session, diagram.uid, SEGMENT, stale, "out of memory")

    assert recorded is Recorded.stale
    assert await _state(session, diagram.id) == {
        "segment": ("running", 2), "skeletonize": ("queued", 0),
    }  # fmt: skip
    await session.refresh(diagram)
    assert (diagram.status, diagram.error_message) == (DiagramStatus.uploaded, None)

    # The claim that holds the run fails it, and the chain after it.
    recorded = await record_failure(session, diagram.uid, SEGMENT, current, "out of memory")
    assert recorded is Recorded.stopped
    assert await _state(session, diagram.id) == {
        "segment": ("failed", 2), "skeletonize": ("failed", 0),
    }  # fmt: skip
    await session.refresh(diagram)
    assert (diagram.status, diagram.error_stage) == (DiagramStatus.error, "segment")
