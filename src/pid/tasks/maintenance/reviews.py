"""Stale reviews (pid.pipeline.maintenance.stale_reviews): each logged with its uid, status
and wait; /metrics shows how many there are. Nothing is moved."""

from __future__ import annotations

import logging

from pid.pipeline import maintenance
from pid.tasks.app import app
from pid.tasks.maintenance.locked import Counts, run_locked
from pid.tasks.runtime import Runtime

log = logging.getLogger("pid.maintenance")


@app.task(name="pid.tasks.maintenance.reviews.report_stale_reviews")
def report_stale_reviews() -> Counts:
    return run_locked("report_stale_reviews", _report)


async def _report(runtime: Runtime) -> Counts:
    waiting = await maintenance.stale_reviews(runtime.sessions, runtime.settings.stale_review_hours)
    for review in waiting:
        log.warning(
            "stale review: diagram %s in %s for %.1f h", review.uid, review.status, review.hours
        )
    return {"stale_reviews": len(waiting)}
