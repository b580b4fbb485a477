"""Stale reviews: diagrams waiting for a person longer than `stale_review_hours`, reported.

Each is logged with its uid, status and wait; /metrics shows how many there are. Nothing is
deleted or moved: the review is a person's to finish.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func, select

from pid.celery_app import app
from pid.db.models import REVIEW_STATUSES
from pid.db.repositories import DiagramRepository
from pid.runtime import Runtime
from pid.tasks.maintenance.locked import Counts, run_locked

log = logging.getLogger("pid.maintenance")


@app.task(name="pid.tasks.maintenance.reviews.report_stale_reviews")
def report_stale_reviews() -> Counts:
    return run_locked("report_stale_reviews", _report)


async def _report(runtime: Runtime) -> Counts:
    async with runtime.sessions() as session:
        now = await session.scalar(select(func.statement_timestamp()))
        assert now is not None
        cutoff = now - timedelta(hours=runtime.settings.stale_review_hours)
        waiting = await DiagramRepository(session).waiting_since(REVIEW_STATUSES, cutoff)
    for diagram in waiting:
        hours = (now - diagram.updated_at).total_seconds() / 3600
        log.warning("stale review: diagram %s in %s for %.1f h", diagram.uid, diagram.status, hours)
    return {"stale_reviews": len(waiting)}
