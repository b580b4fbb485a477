"""What the API process holds open for its lifetime: one engine, one storage, one Redis client.

They are made once by the app's lifespan, on the server's event loop (asyncpg connections and
aioboto3 clients belong to the loop that opened them), shared by every request, and closed on
that same loop at shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import aioboto3
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pid.db.engine import create_engine, create_sessionmaker
from pid.settings import Settings
from pid.storage import Storage, create_storage

#: Seconds a readiness probe waits for each dependency; a probe must answer well within the
#: orchestrator's own probe timeout, so a hung dependency counts as a failed one.
PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class Resources:
    """The process-wide objects every request shares."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    storage: Storage
    #: Used by /readyz only: the broker is reached through Celery everywhere else.
    redis: Redis


@asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    """Create the shared objects for `settings`; dispose of them on exit, in reverse order.

    Nothing here connects yet (the engine, the S3 client and Redis connect on first use), so
    the API starts even while a dependency is down and /readyz reports which one.
    """
    async with AsyncExitStack() as stack:
        engine = create_engine(settings.database_url)
        stack.push_async_callback(engine.dispose)
        # One aioboto3 session for the process: it holds the credential resolution that
        # every S3 client made from it reuses.
        storage = create_storage(settings, session=aioboto3.Session())
        stack.push_async_callback(storage.close)
        redis = Redis.from_url(
            settings.broker_url,
            socket_connect_timeout=PROBE_TIMEOUT_S,
            socket_timeout=PROBE_TIMEOUT_S,
        )
        stack.push_async_callback(redis.aclose)
        yield Resources(
            settings=settings,
            engine=engine,
            sessions=create_sessionmaker(engine),
            storage=storage,
            redis=redis,
        )
