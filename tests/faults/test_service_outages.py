"""Redis and PostgreSQL going away mid-run: every diagram still completes.

Redis comes back empty (no persistence), so every message it held is gone and the reaper must
send the broken chains again. PostgreSQL's outage makes stages fail to record their work;
those deliveries are retried, not lost.
"""

from __future__ import annotations

import re
import time

from faults_support import (
    DiagramRow,
    Drawings,
    RunRow,
    Site,
    counts_of,
    logged_overlap,
    logged_start,
    maintenance_runs,
    settle,
    wait_until,
)

SETTLE_TIMEOUT = 150.0
#: How long each server stays away.
OUTAGE = 3.0


def _upload_and_catch_running(site: Site, drawings: Drawings) -> tuple[list[str], RunRow]:
    """Four diagrams on their way; returns once the large one's segment is running."""
    target = site.client.upload(drawings.large)
    uids = [target, *(site.client.upload(drawings.medium) for _ in range(3))]

    def segment_started(rows: dict[str, DiagramRow]) -> RunRow | None:
        run = rows[target].runs.get("segment")
        started = (
            run is not None
            and run.state == "running"
            and run.task_id is not None
            and logged_start(site.fleet, "gpu", "segment", target, run.task_id, run.attempt)
        )
        return run if started else None

    run = wait_until(site.probe, segment_started, 60.0, "the large diagram's segment to run")
    return uids, run


def _reaped_since(site: Site, since: float) -> dict[str, int]:
    totals: dict[str, int] = {}
    for run in maintenance_runs(site.fleet, "reap"):
        if run.at >= since:
            for name, count in counts_of(run).items():
                totals[name] = totals.get(name, 0) + count
    return totals


def test_a_redis_outage_mid_run_loses_no_diagram(site: Site, drawings: Drawings) -> None:
    uids, _ = _upload_and_catch_running(site, drawings)
    down_at = time.time()
    site.redis.kill()
    time.sleep(OUTAGE)
    site.redis.start()  # same port, empty
    tally = settle(site.probe, uids, SETTLE_TIMEOUT)
    reaped = _reaped_since(site, down_at)
    overlap = logged_overlap(site.fleet)
    print(tally.line(f"redis down {OUTAGE:.0f} s, back empty"))
    print(f"  reaper after the outage: {reaped}; {overlap.line()}")
    diagnostics = f"{tally.describe()}\n{site.fleet.tails()}"
    assert len(tally.completed) == len(uids), diagnostics
    # The messages waiting in Redis were gone: only the reaper could send them again.
    assert reaped.get("resent", 0) + reaped.get("requeued", 0) >= 1, diagnostics
    assert not overlap.problems, "\n".join(overlap.problems) + "\n" + diagnostics


def _wait_for_outcome(site: Site, pool: str, task_id: str, timeout: float) -> str:
    """The first line in which Celery reports how the delivery `task_id` ended."""
    outcome = re.compile(rf"^.*\[{task_id}\] (retry|raised|succeeded).*$", re.MULTILINE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = outcome.search(site.fleet.log(pool))
        if found:
            return found.group(0)
        time.sleep(0.1)
    raise AssertionError(f"no outcome of task {task_id} within {timeout} s")


def test_a_postgres_outage_mid_run_loses_no_diagram(site: Site, drawings: Drawings) -> None:
    uids, segment = _upload_and_catch_running(site, drawings)
    assert segment.task_id is not None
    down_at = time.time()
    site.postgres.stop("fast")  # every connection is cut
    # Down until the running segment has tried to record its end, and for OUTAGE at least.
    outcome = _wait_for_outcome(site, "gpu", segment.task_id, 60.0)
    time.sleep(max(0.0, down_at + OUTAGE - time.time()))
    site.postgres.start()
    tally = settle(site.probe, uids, SETTLE_TIMEOUT)
    reaped = _reaped_since(site, down_at)
    overlap = logged_overlap(site.fleet)
    print(tally.line(f"postgres down {OUTAGE:.0f} s (stop -m fast, start)"))
    print(f"  segment during the outage: {outcome.split(' celery.app.trace: ')[-1][:160]}")
    print(f"  reaper after the outage: {reaped}; {overlap.line()}")
    diagnostics = f"{tally.describe()}\n{site.fleet.tails()}"
    assert len(tally.completed) == len(uids), diagnostics
    assert not overlap.problems, "\n".join(overlap.problems) + "\n" + diagnostics
    # The segment running during the outage could not record its end: it was retried, or
    # sent again by the reaper.
    recovered = overlap.retried + reaped.get("resent", 0) + reaped.get("requeued", 0)
    assert recovered >= 1, diagnostics
