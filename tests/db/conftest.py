"""Fixtures for tests against a real PostgreSQL: one migrated database per test session.

Tests may be ``async def``: they run on one session-wide event loop (`loop_runner`), the loop the
engine's pooled connections belong to. Most tests use `session`, whose transaction is rolled
back afterwards; tests that need several connections to see each other's commits use
`sessions` and leave the tables emptied.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any, TypeVar

import pytest
from pg import MakeDiagram, make_test_database
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pid.db.engine import create_engine, create_sessionmaker
from pid.db.models import Diagram
from pid.db.repositories import DiagramRepository

T = TypeVar("T")


@pytest.fixture(scope="session", autouse=True)
def loop_runner() -> Iterator[asyncio.Runner]:
    """The event loop of every coroutine test and async fixture step in this folder."""
    with asyncio.Runner() as runner:
        yield runner


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests to completion on `loop_runner`'s loop."""
    test = pyfuncitem.obj
    if not inspect.iscoroutinefunction(test):
        return None
    runner = pyfuncitem.funcargs["loop_runner"]
    assert isinstance(runner, asyncio.Runner)
    names = inspect.signature(test).parameters
    runner.run(test(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """URL of a fresh database migrated to head, dropped after the session."""
    with make_test_database() as url:
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str, loop_runner: asyncio.Runner) -> Iterator[AsyncEngine]:
    """A pooled engine on the test database, disposed on the loop its connections use."""
    engine = create_engine(database_url, pool_size=4, max_overflow=4)
    yield engine
    loop_runner.run(engine.dispose())


@pytest.fixture
def session(engine: AsyncEngine, loop_runner: asyncio.Runner) -> Iterator[AsyncSession]:
    """A session inside a transaction that is rolled back after the test.

    Repositories never commit, so everything a test writes through them disappears.
    """
    with entered_on(loop_runner, rolled_back_session(engine)) as session:
        yield session


@asynccontextmanager
async def rolled_back_session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session on one connection whose outer transaction is always rolled back."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(bind=connection, expire_on_commit=False)
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()


@contextmanager
def entered_on(runner: asyncio.Runner, manager: AbstractAsyncContextManager[T]) -> Iterator[T]:
    """Enter and exit an async context manager from synchronous code, on `runner`'s loop."""
    value = runner.run(manager.__aenter__())
    try:
        yield value
    finally:
        runner.run(manager.__aexit__(None, None, None))


@pytest.fixture
def sessions(
    engine: AsyncEngine, loop_runner: asyncio.Runner
) -> Iterator[async_sessionmaker[AsyncSession]]:
    """Independent sessions that commit for real; every table is emptied after the test."""
    yield create_sessionmaker(engine)
    loop_runner.run(_empty_tables(engine))


async def _empty_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE diagrams, stage_runs, artifacts CASCADE"))


@pytest.fixture
def make_diagram() -> MakeDiagram:
    """Create a diagram through the repository, with plausible defaults for every field."""

    async def make(session: AsyncSession, **fields: Any) -> Diagram:
        defaults: dict[str, Any] = {
            "original_name": f"sheet-{uuid.uuid4().hex[:8]}.png",
            "sha256": "0" * 64,
            "width": 4000,
            "height": 3000,
        }
        return await DiagramRepository(session).create(**(defaults | fields))

    return make
