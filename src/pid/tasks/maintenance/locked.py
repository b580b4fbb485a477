"""How every maintenance task runs: under a Redis lock, on the runtime's loop, with counts.

The lock has a TTL, so a run killed while holding it frees it on its own; a run that finds it
taken skips instead of racing the one in progress. Each task returns what it did as counts and
logs them on one line.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

import redis
from redis.exceptions import LockError

from pid.tasks.runtime import Runtime, get_runtime

log = logging.getLogger("pid.maintenance")

Counts = dict[str, int]


def lock_name(task: str) -> str:
    return f"pid:lock:maintenance:{task}"


def run_locked(task: str, work: Callable[[Runtime], Awaitable[Counts]]) -> Counts:
    """Run `work` if no other run of `task` holds its lock; its counts, or {"skipped": 1}."""
    runtime = get_runtime()
    ttl = runtime.settings.maintenance_lock_ttl
    client = redis.Redis.from_url(runtime.settings.broker_url)
    try:
        lock = client.lock(lock_name(task), timeout=ttl, blocking=False)
        if not lock.acquire():
            log.info("%s: another run holds the lock, skipped", task)
            return {"skipped": 1}
        try:
            counts = runtime.run(lambda: work(runtime), timeout=ttl)
        finally:
            # An expired lock may already be another run's: never release that one.
            with contextlib.suppress(LockError):
                lock.release()
    finally:
        client.close()
    log.info("%s: %s", task, ", ".join(f"{name} {count}" for name, count in counts.items()))
    return counts
