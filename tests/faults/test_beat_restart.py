"""Beat stopped and started again: maintenance resumes, with no duplicate or overlapping runs.

While beat is down nothing reaps, so a run whose messages never reached the broker waits;
once beat is back the reaper sends it and it completes.
"""

from __future__ import annotations

import time

from faults_support import (
    ORPHAN_AFTER,
    REAPER_INTERVAL,
    DiagramRow,
    Drawings,
    Site,
    beat_sends,
    counts_of,
    gaps,
    maintenance_runs,
    settle,
    wait_until,
)

#: How long beat stays stopped, in reaper intervals.
STOPPED_INTERVALS = 3


def _reap_times(site: Site) -> list[float]:
    return [run.at for run in maintenance_runs(site.fleet, "reap")]


def _wait_for_reaps(site: Site, count: int, since: float, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len([t for t in _reap_times(site) if t >= since]) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} reaper runs within {timeout} s\n{site.fleet.tails()}")


def test_beat_stopped_and_started_resumes_maintenance_without_duplicates(
    site: Site, drawings: Drawings
) -> None:
    started = time.time()
    _wait_for_reaps(site, 3, started - 60, timeout=30.0)
    stopped_at = time.time()
    site.fleet.stop_beat()

    # With beat down: one diagram runs as usual, one is queued with its messages lost.
    running = site.client.upload(drawings.medium)
    orphan = site.client.upload(drawings.medium, auto_run=False)
    site.client.run_without_messages(orphan)
    time.sleep(max(STOPPED_INTERVALS * REAPER_INTERVAL, ORPHAN_AFTER + REAPER_INTERVAL))

    def orphan_waiting(rows: dict[str, DiagramRow]) -> DiagramRow | None:
        return rows[orphan] if rows[orphan].runs["detect"].state == "queued" else None

    wait_until(site.probe, orphan_waiting, 5.0, "the orphaned run still queued with beat down")
    restarted_at = time.time()
    site.fleet.start_beat()  # the same schedule file
    tally = settle(site.probe, [running, orphan], 90.0)
    _wait_for_reaps(site, 3, restarted_at, timeout=30.0)

    reaps = maintenance_runs(site.fleet, "reap")
    times = [run.at for run in reaps]
    # A run sent just before the stop may still run right after it.
    before = [t for t in times if t < stopped_at + REAPER_INTERVAL]
    while_stopped = [t for t in times if stopped_at + REAPER_INTERVAL <= t < restarted_at]
    after = [t for t in times if t >= restarted_at]
    skipped = [run for run in reaps if "another run holds the lock" in run.what]
    resent = sum(counts_of(run).get("resent", 0) for run in reaps if run.at >= restarted_at)
    sends = beat_sends(site.fleet, "reap")
    closest_run = min(gaps(times))
    closest_send = min(gaps(sends))
    print(tally.line("beat stopped and started"))
    print(
        f"  reap ran {len(before)} times before the stop, {len(while_stopped)} in "
        f"{restarted_at - stopped_at:.1f} s stopped, {len(after)} after the start (resent "
        f"{resent}); closest runs {closest_run:.2f} s apart, closest sends "
        f"{closest_send:.2f} s; {len(skipped)} skipped for the lock"
    )
    diagnostics = f"{tally.describe()}\n{site.fleet.tails()}"
    assert len(tally.completed) == 2, diagnostics
    assert len(before) >= 3 and len(after) >= 3, diagnostics
    assert while_stopped == [], diagnostics
    assert resent >= 1, diagnostics  # the orphan's chain, sent once beat was back
    # No duplicates: never two runs (or two sends) within half an interval, and never a run
    # that found another one holding the lock.
    assert closest_run >= REAPER_INTERVAL / 2, diagnostics
    assert closest_send >= REAPER_INTERVAL / 2, diagnostics
    assert skipped == [], diagnostics
