"""StageRunRepository against PostgreSQL: queueing, atomic claims, outcomes and fencing."""

from __future__ import annotations

import asyncio

import pytest
from pg import MakeDiagram
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pid.core.statuses import StageRunState
from pid.db.models import StageRun
from pid.db.repositories import StageRunRepository

CHAIN = ["detect", "cvat_upload", "cvat_fetch", "segment", "skeletonize", "export"]
MAX_ATTEMPTS = 3


async def claimed(
    runs: StageRunRepository, diagram_id: int, stage: str, task_id: str = "task-1"
) -> StageRun:
    """Claim `stage`, failing the test if the claim is refused."""
    run = await runs.claim(diagram_id, stage, task_id, MAX_ATTEMPTS)
    assert run is not None, f"claim of {stage} refused"
    return run


async def test_queue_creates_rows_for_exactly_the_given_stages(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    runs = StageRunRepository(session)
    diagram = await make_diagram(session)

    queued = await runs.queue(diagram.id, ["segment", "detect"], {"detect": "t-detect"})

    assert [run.stage for run in queued] == ["segment", "detect"]
    assert all(run.state is StageRunState.queued and run.attempt == 0 for run in queued)
    assert [run.task_id for run in queued] == [None, "t-detect"]
    assert await runs.get(diagram.id, "export") is None
    assert await runs.queue(diagram.id, []) == []
    (twice,) = await runs.queue(diagram.id, ["export", "export"])
    assert twice.stage == "export"


async def test_claim_starts_a_queued_run(session: AsyncSession, make_diagram: MakeDiagram) -> None:
    runs = StageRunRepository(session)
    diagram = await make_diagram(session)
    await runs.queue(diagram.id, ["detect"])

    run = await claimed(runs, diagram.id, "detect", "task-9")

    assert (run.state, run.task_id, run.attempt) == (StageRunState.running, "task-9", 1)
    assert run.started_at is not None
    assert run.finished_at is None
    assert await runs.claim(diagram.id, "detect", "task-9", MAX_ATTEMPTS) is None
    assert await runs.claim(diagram.id, "never-queued", "task-9", MAX_ATTEMPTS) is None


async def test_concurrent_claims_of_one_run_have_one_winner(
    sessions: async_sessionmaker[AsyncSession], make_diagram: MakeDiagram
) -> None:
    async with sessions.begin() as session:
        diagram = await make_diagram(session)
        await StageRunRepository(session).queue(diagram.id, ["segment"])

    async def claim(task_id: str) -> StageRun | None:
        async with sessions.begin() as session:
            run = await StageRunRepository(session).claim(
                diagram.id, "segment", task_id, MAX_ATTEMPTS
            )
            # Hold the transaction open so the other claim is in flight before this commits.
            await asyncio.sleep(0.2)
            return run

    results = await asyncio.gather(claim("delivery-a"), claim("delivery-b"))

    winners = [run for run in results if run is not None]
    assert len(winners) == 1
    async with sessions() as session:
        row = await StageRunRepository(session).get(diagram.id, "segment")
    assert row is not None
    assert (row.state, row.attempt, row.task_id) == (
        StageRunState.running,
        1,
        winners[0].task_id,
    )


async def test_claim_refuses_a_succeeded_run(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    runs = StageRunRepository(session)
    diagram = await make_diagram(session)
    await runs.queue(diagram.id, ["detect"])
    assert await runs.succeed(await claimed(runs, diagram.id, "detect"), {"boxes": 12}) is not None

    assert await runs.claim(diagram.id, "detect", "redelivered", MAX_ATTEMPTS) is None
    run = await runs.get(diagram.id, "detect")
    assert run is not None
    assert (run.state, run.attempt) == (StageRunState.succeeded, 1)


async def test_failed_run_is_retried_until_the_attempt_limit(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    runs = StageRunRepository(session)
    diagram = await make_diagram(session)
    await runs.queue(diagram.id, ["segment"])

    for attempt in range(1, MAX_ATTEMPTS + 1):
        run = await claimed(runs, diagram.id, "segment", f"task-{attempt}")
        assert run.attempt == attempt
        assert await runs.fail(run, f"boom {attempt}") is not None

    assert await runs.claim(diagram.id, "segment", "task-late", MAX_ATTEMPTS) is None
    last = await runs.get(diagram.id, "segment")
    assert last is not None
    assert (last.state, last.attempt, last.error) == (StageRunState.failed, MAX_ATTEMPTS, "boom 3")


async def test_queue_resets_a_failed_run(session: AsyncSession, make_diagram: MakeDiagram) -> None:
    runs = StageRunRepository(session)
    diagram = await make_diagram(session)
    await runs.queue(diagram.id, ["detect", "segment"])
    detect = await runs.succeed(await claimed(runs, diagram.id, "detect"), {"boxes": 3})
    assert detect is not None
    for attempt in range(MAX_ATTEMPTS):
        await runs.fail(await claimed(runs, diagram.id, "segment", f"t{attempt}"), "no memory")

    (reset,) = await runs.queue(diagram.id, ["segment"], {"segment": "resume-1"})

    assert (reset.state, reset.attempt, reset.task_id) == (StageRunState.queued, 0, "resume-1")
    assert (reset.error, reset.started_at, reset.finished_at, reset.duration_s) == (
        None,
        None,
        None,
        None,
    )
    untouched = await runs.get(diagram.id, "detect")
    assert untouched is not None
    assert (untouched.state, untouched.result) == (StageRunState.succeeded, {"boxes": 3})
    assert (await claimed(runs, diagram.id, "segment", "resume-1")).attempt == 1


async def test_succeed_records_result_provenance_and_duration(
    sessions: async_sessionmaker[AsyncSession], make_diagram: MakeDiagram
) -> None:
    async with sessions.begin() as session:
        diagram = await make_diagram(session)
        await StageRunRepository(session).queue(diagram.id, ["skeletonize"])
    async with sessions.begin() as session:
        run = await claimed(StageRunRepository(session), diagram.id, "skeletonize")
    await asyncio.sleep(0.05)
    provenance = {"method": "classical", "code_version": "0.1.0", "settings": {"k": 3}}
    async with sessions.begin() as session:
        done = await StageRunRepository(session).succeed(run, {"pixels": 1234}, provenance)

    assert done is not None
    assert done.state is StageRunState.succeeded
    assert (done.result, done.provenance) == ({"pixels": 1234}, provenance)
    assert done.started_at is not None
    assert done.finished_at is not None
    assert done.duration_s is not None
    assert done.duration_s >= 0.05
    expected = (done.finished_at - done.started_at).total_seconds()
    assert done.duration_s == pytest.approx(expected)


async def test_outcome_of_a_superseded_claim_changes_nothing(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    runs = StageRunRepository(session)
    diagram = await make_diagram(session)
    await runs.queue(diagram.id, ["classify"])
    first = await claimed(runs, diagram.id, "classify", "task-1")
    stale_attempt = first.attempt
    # The same message is redelivered after its worker is presumed dead.
    again = await runs.reclaim_running(diagram.id, "classify", "task-1", MAX_ATTEMPTS)
    assert again is not None
    assert again.attempt == stale_attempt + 1

    stale = StageRun(id=first.id, task_id="task-1", attempt=stale_attempt)
    assert await runs.succeed(stale, {"late": True}) is None
    assert await runs.fail(stale, "late failure") is None
    current = await runs.get(diagram.id, "classify")
    assert current is not None
    assert (current.state, current.attempt, current.result) == (StageRunState.running, 2, None)


async def test_reclaim_running_needs_the_same_task_and_attempts_left(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    runs = StageRunRepository(session)
    diagram = await make_diagram(session)
    await runs.queue(diagram.id, ["build_graph", "export"])

    assert await runs.reclaim_running(diagram.id, "build_graph", "task-1", MAX_ATTEMPTS) is None
    await claimed(runs, diagram.id, "build_graph", "task-1")
    assert await runs.reclaim_running(diagram.id, "build_graph", "other", MAX_ATTEMPTS) is None
    for attempt in range(2, MAX_ATTEMPTS + 1):
        run = await runs.reclaim_running(diagram.id, "build_graph", "task-1", MAX_ATTEMPTS)
        assert run is not None
        assert run.attempt == attempt
    assert await runs.reclaim_running(diagram.id, "build_graph", "task-1", MAX_ATTEMPTS) is None

    done = await runs.succeed(await claimed(runs, diagram.id, "export", "task-2"))
    assert done is not None
    assert await runs.reclaim_running(diagram.id, "export", "task-2", MAX_ATTEMPTS) is None


async def test_fail_running_without_the_claimed_row(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    runs = StageRunRepository(session)
    diagram = await make_diagram(session)
    await runs.queue(diagram.id, ["detect", "segment"])
    await claimed(runs, diagram.id, "detect", "task-1")

    assert await runs.fail_running(diagram.id, "detect", "killed", task_id="other") is None
    failed = await runs.fail_running(diagram.id, "detect", "time limit", task_id="task-1")
    assert failed is not None
    assert (failed.state, failed.error) == (StageRunState.failed, "time limit")
    assert failed.duration_s is not None
    assert await runs.fail_running(diagram.id, "segment", "not running") is None


async def test_skip_creates_or_overwrites_but_spares_a_running_run(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    runs = StageRunRepository(session)
    diagram = await make_diagram(session)
    await runs.queue(diagram.id, ["cvat_upload", "segment"])
    await claimed(runs, diagram.id, "segment")

    fresh = await runs.skip(diagram.id, "skeletonize_simple", "no corrected mask")
    overwritten = await runs.skip(diagram.id, "cvat_upload", "review gate off")
    spared = await runs.skip(diagram.id, "segment", "too late")

    assert fresh is not None
    assert (fresh.state, fresh.result) == (StageRunState.skipped, {"reason": "no corrected mask"})
    assert overwritten is not None
    assert (overwritten.state, overwritten.result) == (
        StageRunState.skipped,
        {"reason": "review gate off"},
    )
    assert spared is None
    running = await runs.get(diagram.id, "segment")
    assert running is not None
    assert running.state is StageRunState.running
    assert await runs.claim(diagram.id, "cvat_upload", "task-x", MAX_ATTEMPTS) is None


async def test_for_diagram_follows_the_chain_and_active_lists_pending_runs(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    runs = StageRunRepository(session)
    diagram = await make_diagram(session)
    other = await make_diagram(session)
    await runs.queue(diagram.id, ["export", "custom", "segment", "detect"])
    await runs.queue(other.id, ["detect"])
    await runs.succeed(await claimed(runs, diagram.id, "detect"))
    await claimed(runs, diagram.id, "segment")

    in_chain = await runs.for_diagram(diagram.id, CHAIN)
    assert [run.stage for run in in_chain] == ["detect", "segment", "export", "custom"]
    by_id = await runs.for_diagram(diagram.id)
    assert [run.stage for run in by_id] == ["export", "custom", "segment", "detect"]
    active = await runs.active(diagram.id)
    assert {(run.stage, run.state) for run in active} == {
        ("export", StageRunState.queued),
        ("custom", StageRunState.queued),
        ("segment", StageRunState.running),
    }


async def test_stale_running_finds_runs_started_before_a_cutoff(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    runs = StageRunRepository(session)
    diagram = await make_diagram(session)
    await runs.queue(diagram.id, ["detect", "segment"])
    run = await claimed(runs, diagram.id, "detect")
    assert run.started_at is not None

    assert await runs.stale_running(run.started_at) == []
    cutoff = await session.scalar(text("SELECT clock_timestamp()"))
    assert [stale.stage for stale in await runs.stale_running(cutoff)] == ["detect"]


async def test_unknown_state_and_duplicate_stage_are_refused(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    diagram = await make_diagram(session)
    with pytest.raises(IntegrityError, match="ck_stage_runs_state"):
        async with session.begin_nested():
            await session.execute(
                text("INSERT INTO stage_runs (diagram_id, stage, state) VALUES (:d, 'x', 'done')"),
                {"d": diagram.id},
            )
    with pytest.raises(IntegrityError, match="uq_stage_runs_diagram_id_stage"):
        async with session.begin_nested():
            await session.execute(
                text("INSERT INTO stage_runs (diagram_id, stage) VALUES (:d, 'x'), (:d, 'x')"),
                {"d": diagram.id},
            )
