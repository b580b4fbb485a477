"""kill -9 of pool children mid-stage: every diagram still completes, no stage runs twice at
once, and a diagram that kills its worker every time ends in error instead of looping."""

from __future__ import annotations

import threading
import time

from faults_support import (
    MAX_ATTEMPTS,
    REAPER_INTERVAL,
    DiagramRow,
    Drawings,
    Kill,
    Probe,
    ProbeError,
    RunRow,
    Site,
    Tally,
    logged_overlap,
    logged_start,
    maintenance_runs,
    settle,
    stage_events,
    wait_until,
)

from pid.pipeline.stages import STAGES

SETTLE_TIMEOUT = 120.0


def _stages_of(pool: str) -> tuple[str, ...]:
    return tuple(name for name, stage in STAGES.items() if stage.queue == pool)


def _running_and_started(site: Site, uid: str, pool: str) -> RunRow:
    """The diagram's run on `pool` that is running its first attempt and has logged its start,
    so the pool's only child is inside that stage right now."""

    def find(rows: dict[str, DiagramRow]) -> RunRow | None:
        row = rows.get(uid)
        for run in row.runs.values() if row else ():
            if (
                run.state == "running"
                and run.attempt == 1
                and run.stage in _stages_of(pool)
                and run.task_id is not None
                and logged_start(site.fleet, pool, run.stage, uid, run.task_id, run.attempt)
            ):
                return run
        return None

    return wait_until(site.probe, find, 60.0, f"a {pool} stage of {uid} to be running")


def _kill_mid_stage_and_settle(site: Site, drawings: Drawings, pool: str) -> None:
    label = f"kill -9 {pool} child"
    # The large drawing's stages run long enough to be caught mid-run; it goes first so its
    # stages are the first on each pool.
    target = site.client.upload(drawings.large)
    uids = [target, *(site.client.upload(drawings.medium) for _ in range(3))]
    run = _running_and_started(site, target, pool)
    kill = site.fleet.kill_children(pool, stage=run.stage, uid=target, attempt=run.attempt)
    assert kill.pids, f"the {pool} worker had no child to kill"

    tally = settle(site.probe, uids, SETTLE_TIMEOUT)
    overlap = logged_overlap(site.fleet)
    restarted = _restart_delay(site, kill)
    killed_run = tally.rows[target].runs[run.stage]
    # The same task id: the broker handed the rejected message out again; a new one: the
    # reaper sent the run again.
    how = "redelivered" if killed_run.task_id == run.task_id else "sent again by the reaper"
    print(tally.line(label))
    print(
        f"  {run.stage} of {target} killed at attempt {run.attempt} (pids {list(kill.pids)}), "
        f"{how}, started again {restarted:.2f} s later; {overlap.line()}"
    )
    diagnostics = f"{tally.describe()}\n{site.fleet.tails()}"
    assert len(tally.completed) == len(uids), diagnostics
    assert not overlap.problems, "\n".join(overlap.problems) + "\n" + diagnostics
    assert overlap.killed == 1, diagnostics
    assert killed_run.attempt == 2, diagnostics  # the killed attempt, then the one that finished
    others = [r for row in tally.rows.values() for r in row.runs.values() if r is not killed_run]
    assert all(r.attempt == 1 for r in others), diagnostics


def _restart_delay(site: Site, kill: Kill) -> float:
    """Seconds from the kill to the killed stage's next start, from the pool's log."""
    later = [
        e.at - kill.at
        for e in stage_events(site.fleet)
        if e.kind == "started" and e.uid == kill.uid and e.stage == kill.stage and e.at > kill.at
    ]
    return min(later, default=float("nan"))


def test_kill_9_of_the_cpu_child_mid_stage_loses_no_diagram(site: Site, drawings: Drawings) -> None:
    _kill_mid_stage_and_settle(site, drawings, "cpu")


def test_kill_9_of_the_gpu_child_mid_stage_loses_no_diagram(site: Site, drawings: Drawings) -> None:
    _kill_mid_stage_and_settle(site, drawings, "gpu")


class PoisonWatcher(threading.Thread):
    """Kills the pool child whenever it runs `stage` of the poison diagram: each attempt of it
    dies, as with a drawing that crashes its worker every time."""

    def __init__(self, site: Site, uid: str, stage: str) -> None:
        super().__init__(name="poison-watcher", daemon=True)
        self.site, self.uid, self.stage = site, uid, stage
        self.pool = STAGES[stage].queue
        self.kills: list[Kill] = []
        self.halt = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        probe = Probe(self.site.postgres.dsn)
        killed: set[int] = set()
        try:
            while not self.halt.is_set():
                try:
                    run = probe.diagrams()[self.uid].runs.get(self.stage)
                except (ProbeError, KeyError):
                    run = None
                if (
                    run is not None
                    and run.state == "running"
                    and run.attempt not in killed
                    and run.task_id is not None
                    and logged_start(
                        self.site.fleet, self.pool, self.stage, self.uid, run.task_id, run.attempt
                    )
                ):
                    self.kills.append(
                        self.site.fleet.kill_children(
                            self.pool, stage=self.stage, uid=self.uid, attempt=run.attempt
                        )
                    )
                    killed.add(run.attempt)
                time.sleep(0.02)
        except BaseException as exc:  # shown by the test, not lost in the thread
            self.failure = exc
        finally:
            probe.close()


def test_a_diagram_that_kills_its_worker_every_time_ends_in_error_and_stays_there(
    site: Site, drawings: Drawings
) -> None:
    label = "poison diagram (segment killed every attempt)"
    # The poison is uploaded without running, so the watcher is on before its first attempt.
    poison = site.client.upload(drawings.medium, auto_run=False)
    watcher = PoisonWatcher(site, poison, "segment")
    watcher.start()
    try:
        site.client.run(poison)
        others = [site.client.upload(drawings.medium) for _ in range(3)]
        uids = [poison, *others]

        def poison_in_error(rows: dict[str, DiagramRow]) -> DiagramRow | None:
            return rows[poison] if rows[poison].status == "error" else None

        wait_until(site.probe, poison_in_error, SETTLE_TIMEOUT, "the poison diagram in error")
        failed_at = time.time()
        settle(site.probe, others, SETTLE_TIMEOUT)
        # Several reaper passes with the poison in error: nothing may pick it up again.
        reaps_before = len(maintenance_runs(site.fleet, "reap"))
        time.sleep(3 * REAPER_INTERVAL)
    finally:
        watcher.halt.set()
        watcher.join(timeout=10)
    assert watcher.failure is None, repr(watcher.failure)

    rows = site.probe.diagrams()
    tally = Tally({uid: rows[uid] for uid in uids}, frozenset([poison]))
    overlap = logged_overlap(site.fleet)
    reaps_after = len(maintenance_runs(site.fleet, "reap")) - reaps_before
    later_starts = [e for e in stage_events(site.fleet) if e.uid == poison and e.at > failed_at]
    print(tally.line(label))
    print(
        f"  {len(watcher.kills)} kills of the gpu child, poison: {rows[poison].describe()}; "
        f"{reaps_after} reaper passes after the error; {overlap.line()}"
    )
    diagnostics = f"{tally.describe()}\n{site.fleet.tails()}"
    diagram = rows[poison]
    segment = diagram.runs["segment"]
    assert (diagram.status, diagram.error_stage, diagram.error_message) == (
        "error", "segment", "worker lost",
    ), diagnostics  # fmt: skip
    assert (segment.state, segment.attempt, segment.error) == (
        "failed", MAX_ATTEMPTS, "worker lost",
    ), diagnostics  # fmt: skip
    assert [k.attempt for k in watcher.kills] == list(range(1, MAX_ATTEMPTS + 1)), diagnostics
    assert sorted(tally.completed) == sorted(others), diagnostics
    assert not overlap.problems, "\n".join(overlap.problems) + "\n" + diagnostics
    assert overlap.killed == MAX_ATTEMPTS, diagnostics
    # No loop: the reaper kept running, and nothing of the poison started again.
    assert reaps_after >= 2, diagnostics
    assert not later_starts, diagnostics
    assert site.probe.diagrams()[poison] == diagram, diagnostics

    assert tally.lost == [], diagnostics
    # At rest means nothing of it still queued, so it can be run again once its cause is fixed.
    assert not diagram.active, diagnostics
    assert tally.stuck == [], diagnostics
