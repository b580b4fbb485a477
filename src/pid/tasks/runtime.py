"""One asyncio event loop per worker process, for database, storage and HTTP work.

Celery tasks are synchronous; the io pool runs them in threads and the prefork pools in
children. Each process gets one long-lived loop in a daemon thread, created on first use (so
never in a prefork parent), and on it one pooled async engine, one httpx client and one
storage object (with its aioboto3 session). Tasks hand it coroutines, each wrapped in
asyncio.timeout because the threads pool enforces no Celery time limits. `close_runtime`
disposes everything on that same loop at worker shutdown.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import aioboto3
import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pid.db.engine import create_engine, create_sessionmaker
from pid.settings import Settings, get_settings
from pid.storage import Storage, create_storage

T = TypeVar("T")


@dataclass
class Runtime:
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    storage: Storage
    http: httpx.AsyncClient
    pid: int

    def run(self, make: Callable[[], Awaitable[T]], timeout: float | None = None) -> T:
        """Run a coroutine on this process's loop and wait for it, within `timeout` seconds."""
        limit = self.settings.io_timeout if timeout is None else timeout

        async def bounded() -> T:
            async with asyncio.timeout(limit):
                return await make()

        future = asyncio.run_coroutine_threadsafe(bounded(), self.loop)
        try:
            return future.result()
        except BaseException:
            # Interrupted while waiting (Celery's soft time limit is raised in this thread):
            # the coroutine must not go on to commit or write after the task has ended.
            future.cancel()
            raise


_lock = threading.Lock()
_runtime: Runtime | None = None


def _start(settings: Settings) -> Runtime:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="pid-runtime", daemon=True)
    thread.start()

    async def build() -> tuple[AsyncEngine, Storage, httpx.AsyncClient]:
        engine = create_engine(settings.database_url, pool_size=5, max_overflow=5)
        session = aioboto3.Session() if settings.storage_backend == "s3" else None
        storage = create_storage(settings, session=session)
        return engine, storage, httpx.AsyncClient(timeout=30.0)

    engine, storage, http = asyncio.run_coroutine_threadsafe(build(), loop).result()
    return Runtime(
        loop, thread, settings, engine, create_sessionmaker(engine), storage, http, os.getpid()
    )


def get_runtime() -> Runtime:
    """This process's runtime; a forked child builds its own instead of using the parent's."""
    global _runtime
    with _lock:
        if _runtime is None or _runtime.pid != os.getpid():
            _runtime = _start(get_settings())
        return _runtime


def close_runtime() -> None:
    """Dispose the engine, storage and HTTP client on their loop, then stop the loop."""
    global _runtime
    with _lock:
        runtime, _runtime = _runtime, None
    if runtime is None or runtime.pid != os.getpid():
        return

    async def dispose() -> None:
        await runtime.http.aclose()
        await runtime.storage.close()
        await runtime.engine.dispose()

    try:
        runtime.run(dispose, timeout=30.0)
    finally:
        runtime.loop.call_soon_threadsafe(runtime.loop.stop)
        runtime.thread.join(timeout=10.0)
