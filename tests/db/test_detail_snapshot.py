"""DiagramService.detail reads the diagram and its runs at one moment of the database."""

from __future__ import annotations

from pathlib import Path

from pg import MakeDiagram
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pid.core.statuses import DiagramStatus
from pid.db.repositories import DiagramRepository, StageRunRepository
from pid.pipeline.service import DiagramService
from pid.settings import Settings
from pid.storage import LocalStorage


def _refuse(messages: object) -> None:
    raise AssertionError("detail sends nothing")


async def test_a_commit_between_reads_of_detail_is_not_half_seen(
    sessions: async_sessionmaker[AsyncSession], make_diagram: MakeDiagram, tmp_path: Path
) -> None:
    async with sessions() as setup:
        diagram = await make_diagram(setup)
        await StageRunRepository(setup).queue(diagram.id, ["export"])
        await setup.commit()

    async with sessions() as reader, sessions() as writer:
        service = DiagramService(reader, LocalStorage(tmp_path), Settings(), _refuse, _refuse)
        before = await service.detail(diagram.uid)
        assert before.diagram.status is DiagramStatus.uploaded

        # A stage finishing now commits its run and the diagram's status together.
        await writer.execute(text("UPDATE stage_runs SET state = 'succeeded'"))
        await DiagramRepository(writer).set_status(diagram.uid, DiagramStatus.completed)
        await writer.commit()

        # The reader's later statements still see the moment its first one saw.
        runs = await StageRunRepository(reader).for_diagram(diagram.id)
        assert [run.state.value for run in runs] == ["queued"]
        await reader.rollback()
        after = await service.detail(diagram.uid)
        assert after.diagram.status is DiagramStatus.completed
        assert [run.state.value for run in after.runs] == ["succeeded"]
