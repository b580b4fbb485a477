"""The Celery application: four queues, routed by the package a task lives in.

Start workers with `make celery-all` (or one pool: `make celery-gpu`, ...). Tasks are JSON only,
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

from pid.settings import Settings, settings_or_exit

QUEUES = ("gpu", "cpu", "io", "maintenance")


def route_by_package(
    name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **extra: Any
) -> dict[str, str] | None:
    """pid.tasks.<queue>.… goes to <queue>."""
    parts = name.split(".")
    if len(parts) > 2 and parts[:2] == ["pid", "tasks"] and parts[2] in QUEUES:
        return {"queue": parts[2]}
    return None


def delivery_conf(settings: Settings) -> dict[str, Any]:
    """How messages are serialised, delivered and acknowledged: every pool's settings.

    The service benchmark starts its workers with these too, so its figures are the pools'.
    """
    transport = {"visibility_timeout": settings.visibility_timeout}
    return {
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_track_started": True,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "broker_connection_retry_on_startup": True,
        "result_expires": settings.result_expires,
        "broker_transport_options": transport,
        "result_backend_transport_options": transport,
    }


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
        task_routes=(route_by_package,),
        worker_hijack_root_logger=False,
        imports=(
            "pid.tasks.gpu.stages",
            "pid.tasks.cpu.stages",
            "pid.tasks.io.stages",
            *MAINTENANCE_MODULES,
        ),
        beat_schedule=beat_schedule(settings),
    )
    return app


app = create_celery()


@worker_process_shutdown.connect
def _close_child_runtime(**_: Any) -> None:
    """A prefork child disposes its engine, storage and HTTP client on its own loop."""
    from pid.runtime import close_runtime

    close_runtime()


@worker_shutdown.connect
def _close_worker_runtime(**_: Any) -> None:
    """The threads pool's process (and a solo worker) dispose theirs at shutdown."""
    from pid.runtime import close_runtime

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
