"""The reaper's decisions (pid.pipeline.recovery) against PostgreSQL: lost runs, broken chains."""

from __future__ import annotations

from datetime import timedelta

from pg import MakeDiagram
from sqlalchemy.ext.asyncio import AsyncSession

from pid.core.statuses import DiagramStatus, StageRunState
from pid.db.engine import database_now
from pid.db.models import Diagram, StageRun
from pid.db.repositories import DiagramRepository, StageRunRepository
from pid.pipeline.recovery import Recovery, recover
from pid.settings import Settings

TAIL = ["skeletonize", "classify", "build_graph", "export"]
SETTINGS = Settings(
    _env_file=None,  # type: ignore[call-arg]
    cpu_soft_time_limit=50,
    cpu_time_limit=60,
    reaper_grace=10,
    orphan_after=30,
    stage_max_attempts=3,
)


async def _chain(
    session: AsyncSession, make_diagram: MakeDiagram
) -> tuple[Diagram, list[StageRun]]:
    """A diagram whose tail of the chain is queued under task ids t-<stage>."""
    diagram = await make_diagram(session)
    await DiagramRepository(session).set_status(diagram.uid, DiagramStatus.segmented)
    runs = await StageRunRepository(session).queue(
        diagram.id, TAIL, {stage: f"t-{stage}" for stage in TAIL}
    )
    return diagram, list(runs)


async def _start_head(session: AsyncSession, diagram: Diagram, attempts: int) -> StageRun:
    runs = StageRunRepository(session)
    run = None
    for _ in range(attempts):  # each delivery of the same message claims it once more
        run = await runs.reclaim_running(diagram.id, "skeletonize", "t-skeletonize", 9) or (
            await runs.claim(diagram.id, "skeletonize", "t-skeletonize", 9)
        )
    assert run is not None and run.attempt == attempts
    return run


async def _runs(session: AsyncSession, diagram: Diagram) -> dict[str, StageRun]:
    return {r.stage: r for r in await StageRunRepository(session).for_diagram(diagram.id)}


async def _pass(session: AsyncSession, held: set[str], after_s: float) -> Recovery:
    return await recover(
        session, SETTINGS, held, await database_now(session) + timedelta(seconds=after_s)
    )


async def test_a_run_past_its_limit_is_requeued_with_the_rest_of_its_chain(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    diagram, _ = await _chain(session, make_diagram)
    await _start_head(session, diagram, attempts=1)
    held = {"t-skeletonize"}  # a worker killed outright leaves its message unacked

    assert (await _pass(session, held, after_s=60 + 9)).counts()["requeued"] == 0
    recovery = await _pass(session, held, after_s=60 + 11)

    assert recovery.counts() == {"requeued": 1, "worker_lost": 0, "resent": 0, "ended": 0}
    runs = await _runs(session, diagram)
    assert [runs[s].state for s in TAIL] == [StageRunState.queued] * 4
    assert runs["skeletonize"].attempt == 1  # the next claim makes it 2
    [chain] = recovery.chains
    assert [(m.stage, m.queue) for m in chain] == [
        ("skeletonize", "cpu"), ("classify", "gpu"), ("build_graph", "cpu"), ("export", "cpu")
    ]  # fmt: skip
    assert [m.task_id for m in chain] == [runs[s].task_id for s in TAIL]
    assert not {runs[s].task_id for s in TAIL} & {f"t-{s}" for s in TAIL}
    assert {m.diagram_uid for m in chain} == {str(diagram.uid)}


async def test_a_running_run_whose_message_is_gone_is_requeued_once_old_enough(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    diagram, _ = await _chain(session, make_diagram)
    await _start_head(session, diagram, attempts=1)

    assert (await _pass(session, {"t-skeletonize"}, after_s=45)).chains == []
    assert (await _pass(session, set(), after_s=20)).chains == []  # within orphan_after
    recovery = await _pass(session, set(), after_s=45)
    assert recovery.counts()["requeued"] == 1


async def test_a_run_out_of_attempts_fails_as_worker_lost_and_stops_its_chain(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    diagram, _ = await _chain(session, make_diagram)
    await _start_head(session, diagram, attempts=3)

    recovery = await _pass(session, set(), after_s=100)

    assert recovery.counts() == {"requeued": 0, "worker_lost": 1, "resent": 0, "ended": 0}
    assert recovery.chains == []
    runs = await _runs(session, diagram)
    assert (runs["skeletonize"].state, runs["skeletonize"].error) == (
        StageRunState.failed, "worker lost"
    )  # fmt: skip
    assert {runs[s].state for s in TAIL[1:]} == {StageRunState.failed}
    found = await DiagramRepository(session).get(diagram.id)
    assert found is not None
    assert (found.status, found.error_stage, found.error_message) == (
        DiagramStatus.error, "skeletonize", "worker lost"
    )  # fmt: skip
    # Nothing more happens on later passes: the diagram is in error.
    assert (await _pass(session, set(), after_s=1000)).counts() == recovery.counts() | {
        "worker_lost": 0
    }


async def test_a_queued_head_without_a_message_is_resent_after_orphan_after(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    await _chain(session, make_diagram)

    assert (await _pass(session, {"t-skeletonize"}, after_s=600)).chains == []
    assert (await _pass(session, set(), after_s=29)).chains == []
    recovery = await _pass(session, set(), after_s=31)

    assert recovery.counts() == {"requeued": 0, "worker_lost": 0, "resent": 1, "ended": 0}
    assert [m.stage for m in recovery.chains[0]] == TAIL


async def test_a_chain_broken_after_a_stage_finished_is_resent_from_the_next_stage(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    diagram, _ = await _chain(session, make_diagram)
    runs = StageRunRepository(session)
    head = await _start_head(session, diagram, attempts=1)
    await runs.succeed(head, {"branches": 1})

    recovery = await _pass(session, set(), after_s=31)

    assert [m.stage for m in recovery.chains[0]] == TAIL[1:]
    after = await _runs(session, diagram)
    assert after["skeletonize"].state is StageRunState.succeeded


async def test_a_run_waiting_for_its_retry_is_resent_when_the_retry_message_is_gone(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    diagram, _ = await _chain(session, make_diagram)
    head = await _start_head(session, diagram, attempts=1)
    await StageRunRepository(session).fail(head, "retrying: storage unavailable")

    assert (await _pass(session, {"t-skeletonize"}, after_s=60)).chains == []
    recovery = await _pass(session, set(), after_s=60)

    assert [m.stage for m in recovery.chains[0]] == TAIL
    runs = await _runs(session, diagram)
    assert (runs["skeletonize"].state, runs["skeletonize"].attempt) == (StageRunState.queued, 1)


async def test_diagrams_at_rest_and_plain_failures_are_left_alone(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    cancelled, _ = await _chain(session, make_diagram)
    await DiagramRepository(session).set_status(cancelled.uid, DiagramStatus.cancelled)
    failed, _ = await _chain(session, make_diagram)
    head = await _start_head(session, failed, attempts=1)
    await StageRunRepository(session).fail(head, "mask size differs from the drawing's")
    await StageRunRepository(session).fail_queued(failed.id, "not run: skeletonize failed")

    recovery = await _pass(session, set(), after_s=10_000)

    assert recovery.chains == []
    assert recovery.counts() == {"requeued": 0, "worker_lost": 0, "resent": 0, "ended": 0}


async def test_a_run_left_running_by_a_cancel_ends_once_its_worker_is_lost(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    diagram, _ = await _chain(session, make_diagram)
    await _start_head(session, diagram, attempts=1)
    # Cancel fails what is queued; the running stage goes on, or its worker dies.
    await StageRunRepository(session).fail_queued(diagram.id, "cancelled")
    await DiagramRepository(session).set_status(diagram.uid, DiagramStatus.cancelled)

    # Its message still held and within its limit: it may still end by itself.
    assert (await _pass(session, {"t-skeletonize"}, after_s=60)).ended == 0
    recovery = await _pass(session, set(), after_s=60)

    assert recovery.chains == []  # cancelled: nothing is sent again
    assert recovery.counts() == {"requeued": 0, "worker_lost": 0, "resent": 0, "ended": 1}
    head = (await _runs(session, diagram))["skeletonize"]
    assert (head.state, head.error) == (StageRunState.failed, "cancelled: worker lost")
    assert await StageRunRepository(session).active(diagram.id) == []
    await session.refresh(diagram)
    assert diagram.status is DiagramStatus.cancelled


async def test_a_run_a_worker_moved_meanwhile_is_not_requeued(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    diagram, _ = await _chain(session, make_diagram)
    runs = StageRunRepository(session)
    [read] = [r for r in await runs.for_diagram(diagram.id) if r.stage == "skeletonize"]
    stale = StageRun(id=read.id, state=read.state, task_id=read.task_id)
    await _start_head(session, diagram, attempts=1)  # a worker claims it after the read

    assert await runs.requeue(stale, "t-new") is None
    assert (await _runs(session, diagram))["skeletonize"].task_id == "t-skeletonize"
