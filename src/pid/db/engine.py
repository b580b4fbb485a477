"""The async engine and session factory.

There is deliberately no module-level engine: an asyncpg connection belongs to the event loop it
was opened on, so each worker process (and the API) builds its own engine on its own loop and
disposes of it there at shutdown.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import QueuePool, func, select
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def create_engine(
    url: str,
    *,
    pool_size: int = 5,
    max_overflow: int = 10,
    pool_timeout: float = 30.0,
    pool_recycle: int = 1800,
    pool_pre_ping: bool = True,
    echo: bool = False,
    **kwargs: Any,
) -> AsyncEngine:
    """A pooled async engine for `url` (``postgresql+asyncpg://...``).

    Parameters
    ----------
    url
        SQLAlchemy URL of the database.
    pool_size, max_overflow, pool_timeout
        Connections kept open, extra connections allowed under load, and seconds to wait for a
        free one before giving up.
    pool_recycle
        Seconds after which a connection is replaced, so that server-side idle timeouts and
        restarted proxies in between never hand out a dead connection.
    pool_pre_ping
        Test a connection before handing it out, so a restarted server costs one reconnect
        instead of one failed task.
    echo
        Log every statement (debugging only).
    **kwargs
        Passed on to `sqlalchemy.ext.asyncio.create_async_engine` (``poolclass``,
        ``connect_args``, ...). With a ``poolclass`` that is not a queue pool (``NullPool`` for
        a one-shot script) the sizing options are left out, since such pools refuse them.
    """
    pool_class = kwargs.get("poolclass")
    if pool_class is None or issubclass(pool_class, QueuePool):
        kwargs.update(pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout)
    return create_async_engine(
        url, pool_recycle=pool_recycle, pool_pre_ping=pool_pre_ping, echo=echo, **kwargs
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on `engine` whose objects stay readable after commit.

    ``expire_on_commit=False`` because an expired attribute would need a lazy load, which an
    async session cannot do implicitly; callers read the rows they just wrote after the commit
    (to enqueue tasks, to answer a request).
    """
    return async_sessionmaker(engine, expire_on_commit=False)


async def database_now(session: AsyncSession) -> datetime:
    """The database's clock, the one that stamped every created_at, updated_at and run time:
    compared against those, a worker's own clock could be skewed."""
    now: datetime | None = await session.scalar(select(func.statement_timestamp()))
    assert now is not None
    return now
