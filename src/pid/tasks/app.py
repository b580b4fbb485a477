"""The Celery application: four queues, each stage routed to its queue by the stage table.

Start workers with `make celery-all` (or one pool: `make celery-gpu`, ...), or by hand with
`celery -A pid.tasks.app worker -Q cpu ...`. Tasks are JSON only,
acknowledged late with a prefetch of one, so a killed worker's message goes back to the queue;
the broker's visibility timeout is above the longest time limit, so a slow task is never
handed to a second worker while it still runs.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import setup_logging, worker_process_shutdown, worker_shutdown
from kombu import Queue

from pid.pipeline.ports import QUEUES
from pid.pipeline.stages import STAGES
from pid.settings import Settings, settings_or_exit
from pid.tasks.delivery import delivery_conf
from pid.tasks.names import task_name
from pid.tasks.runtime import close_runtime

#: The packages whose import registers every task: the stage tasks of each queue (from the
#: stage table) and the beat-driven maintenance jobs.
STAGE_TASK_PACKAGES = ("pid.tasks.gpu", "pid.tasks.cpu", "pid.tasks.io")


def task_routes() -> dict[str, dict[str, str]]:
    """Each stage's task to the queue its row names; each maintenance job to maintenance."""
    routes: dict[str, dict[str, str]] = {
        task_name(name): {"queue": stage.queue} for name, stage in STAGES.items()
    }
    routes["pid.tasks.maintenance.*"] = {"queue": "maintenance"}
    return routes


MAINTENANCE_MODULES = (
    "pid.tasks.maintenance.reaper",
    "pid.tasks.maintenance.purge",
    "pid.tasks.maintenance.retention",
    "pid.tasks.maintenance.scratch",
    "pid.tasks.maintenance.reviews",
)


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every maintenance task at its interval from settings.

    Each entry expires after one interval, so runs held back while no maintenance worker was
    up do not all run at once when one comes back: the next tick sends a fresh one.
    """
    every = {
        "reap": ("reaper.reap", settings.reaper_interval),
        "purge-deleted-diagrams": ("purge.purge_deleted", settings.purge_interval),
        "expire-intermediates": ("retention.expire_intermediates", settings.retention_interval),
        "remove-old-scratch": ("scratch.remove_old_scratch", settings.tmp_cleanup_interval),
        "report-stale-reviews": ("reviews.report_stale_reviews", settings.stale_review_interval),
    }
    return {
        name: {
            "task": f"pid.tasks.maintenance.{task}",
            "schedule": interval,
            "options": {"queue": "maintenance", "expires": interval},
        }
        for name, (task, interval) in every.items()
    }


def create_celery() -> Celery:
    # Workers, beat and Flower all start by importing this module.
    settings = settings_or_exit()
    app = Celery("pid")
    app.conf.update(
        broker_url=settings.broker_url,
        result_backend=settings.result_backend,
        **delivery_conf(settings),
        task_queues=[Queue(name) for name in QUEUES],
        task_default_queue="cpu",
        task_routes=task_routes(),
        worker_hijack_root_logger=False,
        imports=(*STAGE_TASK_PACKAGES, *MAINTENANCE_MODULES),
        beat_schedule=beat_schedule(settings),
    )
    return app


app = create_celery()


@worker_process_shutdown.connect
def _close_child_runtime(**_: Any) -> None:
    """A prefork child disposes its engine, storage and HTTP client on its own loop."""
    close_runtime()


@worker_shutdown.connect
def _close_worker_runtime(**_: Any) -> None:
    """The threads pool's process (and a solo worker) dispose theirs at shutdown."""
    close_runtime()


#: One line per record: time, level, process, logger, message.
LOG_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"


@setup_logging.connect
def _log_lines(loglevel: int | str | None = None, logfile: str | None = None, **_: Any) -> None:
    """One line per record, stage starts and ends included (pid.tasks.runner logs them), to
    the worker's --logfile when it has one (`make celery-all` gives each pool one under
    var/log), else to stderr.

    Connecting this signal tells Celery not to set up logging itself, so the log file is
    honoured here.
    """
    handler = logging.FileHandler(logfile) if logfile else logging.StreamHandler()
    logging.basicConfig(
        level=loglevel or logging.INFO, format=LOG_FORMAT, handlers=[handler], force=True
    )
