"""What the service tests share: the fleet their fixture starts, and how a test drives it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy.pool import NullPool

from pid.core.statuses import StageRunState
from pid.db.engine import create_engine, create_sessionmaker
from pid.pipeline.ports import Message
from pid.pipeline.service import DiagramDetail, DiagramService
from pid.settings import get_settings
from pid.storage import LocalStorage
from pid.tasks.enqueue import enqueue_to, revoke_with

T = TypeVar("T")


@dataclass
class Fleet:
    env: dict[str, str]
    data_dir: Path
    log_dir: Path
    database_url: str


def enqueue(messages: Sequence[Message]) -> None:
    from pid.tasks.app import create_celery

    enqueue_to(create_celery())(messages)


def revoke(task_ids: Sequence[str]) -> None:
    from pid.tasks.app import create_celery

    revoke_with(create_celery())(task_ids)


def call(fleet: Fleet, work: Callable[[DiagramService], Awaitable[T]]) -> T:
    async def main() -> T:
        engine = create_engine(fleet.database_url, poolclass=NullPool)
        storage = LocalStorage(fleet.data_dir)
        try:
            async with create_sessionmaker(engine)() as session:
                service = DiagramService(session, storage, get_settings(), enqueue, revoke)
                return await work(service)
        finally:
            await storage.close()
            await engine.dispose()

    return asyncio.run(main())


def wait_idle(fleet: Fleet, uid: uuid.UUID, timeout: float = 180.0) -> DiagramDetail:
    """The diagram once nothing of it is queued or running any more."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        detail = call(fleet, lambda s: s.detail(uid))
        active = [
            r for r in detail.runs if r.state in (StageRunState.queued, StageRunState.running)
        ]
        if detail.runs and not active:
            return detail
        time.sleep(0.5)
    logs = "\n".join(p.read_text()[-1500:] for p in fleet.log_dir.glob("*.log"))
    raise AssertionError(f"diagram {uid} did not finish: {detail.diagram.status}\n{logs}")


def upload(fleet: Fleet, sheet: Path, auto_run: bool = False) -> uuid.UUID:
    data = (sheet / "original.png").read_bytes()
    symbols = (sheet / "symbols.coco.json").read_bytes()
    diagrams = call(fleet, lambda s: s.upload(data, "sheet.png", symbols, auto_run))
    return diagrams[0].uid
