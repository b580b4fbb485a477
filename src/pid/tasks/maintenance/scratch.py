"""Scratch folders of workers on this machine, older than `tmp_max_age_hours`, removed.

A worker removes its scratch folder when a stage ends; one killed mid-stage leaves it behind.
The age limit is checked against the stage time limits at start-up, so a folder still in use
is never that old. Each machine's maintenance worker cleans its own `tmp_dir`.
"""

from __future__ import annotations

import asyncio
import time

from pid.core.files import remove_older_than
from pid.tasks.app import app
from pid.tasks.maintenance.locked import Counts, run_locked
from pid.tasks.runtime import Runtime


@app.task(name="pid.tasks.maintenance.scratch.remove_old_scratch")
def remove_old_scratch() -> Counts:
    return run_locked("remove_old_scratch", _remove)


async def _remove(runtime: Runtime) -> Counts:
    settings = runtime.settings
    cutoff = time.time() - settings.tmp_max_age_hours * 3600
    removed = await asyncio.to_thread(remove_older_than, settings.tmp_dir, cutoff)
    return {"entries": removed}
