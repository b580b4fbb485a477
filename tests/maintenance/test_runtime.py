"""The worker's runtime loop: a task interrupted while it waits (as Celery's soft time limit
interrupts it, with a signal in the waiting thread) leaves nothing running behind it."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

import pytest
from maintenance_support import Site


class SoftLimitError(Exception):
    """Raised by the signal handler, as Celery raises SoftTimeLimitExceeded."""


@pytest.fixture
def alarm_interrupts() -> Iterator[None]:
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise SoftLimitError()

    previous = signal.signal(signal.SIGALRM, interrupt)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def test_an_interrupted_wait_cancels_the_work_on_the_loop(
    site: Site, alarm_interrupts: None
) -> None:
    finished = threading.Event()

    async def work() -> None:
        await asyncio.sleep(1.0)
        finished.set()  # stands for the commit a timed-out stage must not make

    signal.setitimer(signal.ITIMER_REAL, 0.2)
    with pytest.raises(SoftLimitError):
        site.runtime.run(work, timeout=30)
    time.sleep(1.5)
    assert not finished.is_set()

    async def answer() -> int:
        return 42

    assert site.runtime.run(answer) == 42  # the loop goes on serving the next task
