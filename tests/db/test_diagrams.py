"""DiagramRepository against PostgreSQL: creation, listing, transitions, locking, deletion."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from pg import MakeDiagram
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pid.core.statuses import DiagramStatus
from pid.db.repositories import ArtifactRepository, DiagramRepository, StageRunRepository


async def test_create_fills_defaults_and_get_by_uid(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    diagram = await make_diagram(session, page=2, page_count=3, dpi=300.0, has_symbols=True)
    repo = DiagramRepository(session)

    found = await repo.get_by_uid(diagram.uid)
    assert found is not None
    assert found.id == diagram.id
    assert (found.page, found.page_count, found.dpi, found.has_symbols) == (2, 3, 300.0, True)
    assert found.status is DiagramStatus.uploaded
    assert found.error_stage is None
    assert found.created_at.tzinfo is not None
    assert found.updated_at == found.created_at
    assert await repo.get(diagram.id) is found
    assert await repo.get_by_uid(uuid.uuid4()) is None


async def test_list_filters_by_status_and_pages_with_totals(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    repo = DiagramRepository(session)
    created = [await make_diagram(session) for _ in range(5)]
    for diagram in created[:3]:
        await repo.set_status(diagram.uid, DiagramStatus.detected)

    everything, total = await repo.list(limit=2)
    assert total == 5
    assert [d.id for d in everything] == [created[4].id, created[3].id]

    detected, total = await repo.list(status=DiagramStatus.detected, limit=2, offset=2)
    assert total == 3
    assert [d.id for d in detected] == [created[0].id]

    beyond, total = await repo.list(status=DiagramStatus.detected, limit=2, offset=10)
    assert (list(beyond), total) == ([], 3)

    _, total = await repo.list(status=[DiagramStatus.uploaded, DiagramStatus.detected])
    assert total == 5
    assert await repo.count_by_status() == {DiagramStatus.uploaded: 2, DiagramStatus.detected: 3}


async def test_set_status_records_and_clears_the_error(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    repo = DiagramRepository(session)
    diagram = await make_diagram(session)

    failed = await repo.set_status(diagram.uid, DiagramStatus.error, "segment", "out of memory")
    assert failed is diagram
    assert (diagram.status, diagram.error_stage, diagram.error_message) == (
        DiagramStatus.error,
        "segment",
        "out of memory",
    )

    resumed = await repo.set_status(diagram.uid, DiagramStatus.segmented)
    assert resumed is not None
    assert (resumed.status, resumed.error_stage, resumed.error_message) == (
        DiagramStatus.segmented,
        None,
        None,
    )
    assert await repo.set_status(uuid.uuid4(), DiagramStatus.detected) is None


async def test_set_status_only_from_refuses_other_statuses(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    repo = DiagramRepository(session)
    diagram = await make_diagram(session)
    await repo.set_status(diagram.uid, DiagramStatus.completed)

    refused = await repo.set_status(
        diagram.uid, DiagramStatus.cancelled, only_from=[DiagramStatus.uploaded]
    )
    assert refused is None
    assert diagram.status is DiagramStatus.completed

    allowed = await repo.set_status(
        diagram.uid, DiagramStatus.deleted, only_from=[DiagramStatus.completed]
    )
    assert allowed is not None
    assert allowed.status is DiagramStatus.deleted


async def test_updated_at_follows_changes(
    sessions: async_sessionmaker[AsyncSession], make_diagram: MakeDiagram
) -> None:
    async with sessions.begin() as session:
        diagram = await make_diagram(session)
    async with sessions.begin() as session:
        changed = await DiagramRepository(session).set_status(diagram.uid, DiagramStatus.detected)
    assert changed is not None
    assert changed.updated_at > diagram.created_at
    assert changed.created_at == diagram.created_at


async def test_uids_with_status(session: AsyncSession, make_diagram: MakeDiagram) -> None:
    repo = DiagramRepository(session)
    deleted = await make_diagram(session)
    cancelled = await make_diagram(session)
    await make_diagram(session)
    await repo.set_status(deleted.uid, DiagramStatus.deleted)
    await repo.set_status(cancelled.uid, DiagramStatus.cancelled)

    statuses = [DiagramStatus.deleted, DiagramStatus.cancelled]
    assert set(await repo.uids_with_status(statuses)) == {deleted.uid, cancelled.uid}
    assert len(await repo.uids_with_status(statuses, limit=1)) == 1
    earlier = deleted.created_at - timedelta(seconds=1)
    assert await repo.uids_with_status(statuses, updated_before=earlier) == []


async def test_unknown_status_is_refused_by_the_database(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    diagram = await make_diagram(session)
    with pytest.raises(IntegrityError, match="ck_diagrams_status"):
        async with session.begin_nested():
            await session.execute(
                text("UPDATE diagrams SET status = 'finished' WHERE id = :id"), {"id": diagram.id}
            )


async def test_every_status_is_accepted(session: AsyncSession, make_diagram: MakeDiagram) -> None:
    repo = DiagramRepository(session)
    diagram = await make_diagram(session)
    for status in DiagramStatus:
        changed = await repo.set_status(diagram.uid, status)
        assert changed is not None
        assert changed.status is status


async def test_get_for_update_serialises_transactions(
    sessions: async_sessionmaker[AsyncSession], make_diagram: MakeDiagram
) -> None:
    async with sessions.begin() as session:
        uid = (await make_diagram(session)).uid

    async def second_locker() -> DiagramStatus:
        async with sessions.begin() as session:
            locked = await DiagramRepository(session).get_for_update(uid)
            assert locked is not None
            return locked.status

    async with sessions.begin() as first:
        assert await DiagramRepository(first).get_for_update(uid) is not None
        waiting = asyncio.create_task(second_locker())
        await asyncio.sleep(0.3)
        assert not waiting.done(), "the second lock must wait for the first transaction"
        await DiagramRepository(first).set_status(uid, DiagramStatus.cancelled)
    # The waiter reads the row as committed by the first transaction.
    assert await asyncio.wait_for(waiting, timeout=5) is DiagramStatus.cancelled


async def test_delete_cascades_to_runs_and_artifacts(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    diagrams = DiagramRepository(session)
    runs = StageRunRepository(session)
    artifacts = ArtifactRepository(session)
    doomed = await make_diagram(session)
    kept = await make_diagram(session)
    for diagram in (doomed, kept):
        await runs.queue(diagram.id, ["detect", "segment"])
        await artifacts.upsert(diagram.id, "original.png", f"diagrams/{diagram.uid}/o", 1, "a" * 64)

    assert await diagrams.delete(doomed.uid) is True
    assert await diagrams.delete(doomed.uid) is False

    assert await diagrams.get_by_uid(doomed.uid) is None
    assert await runs.for_diagram(doomed.id) == []
    assert await artifacts.list(doomed.id) == []
    assert len(await runs.for_diagram(kept.id)) == 2
    assert len(await artifacts.list(kept.id)) == 1
