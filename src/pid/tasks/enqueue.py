"""The pipeline's ports (pid.pipeline.ports) over Celery: enqueue as a chain, revoke.

`enqueue_to(app)` and `revoke_with(app)` work with any app (the tests' own brokers);
`service_enqueue` and `service_revoke` with the service's app, pid.tasks.app.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import kombu.exceptions
from celery import Celery
from celery import chain as celery_chain

from pid.pipeline.ports import Enqueue, Message, QueueUnavailableError, Revoke
from pid.tasks.names import task_name


def enqueue_to(app: Celery) -> Enqueue:
    """An Enqueue sending through `app`: the stages as one chain of immutable signatures,
    each given only the diagram's uid."""

    def enqueue(messages: Sequence[Message]) -> None:
        signatures = [
            app.signature(
                task_name(m.stage),
                args=(m.diagram_uid,),
                immutable=True,
                task_id=m.task_id,
                queue=m.queue,
            )
            for m in messages
        ]
        with _broker_errors():
            celery_chain(*signatures).apply_async()

    return enqueue


def revoke_with(app: Celery) -> Revoke:
    """A Revoke through `app`'s control channel (every worker drops those task ids)."""

    def revoke(task_ids: Sequence[str]) -> None:
        if task_ids:
            with _broker_errors():
                app.control.revoke(list(task_ids))

    return revoke


@contextmanager
def _broker_errors() -> Iterator[None]:
    """kombu's connection errors as the port's own, so no caller above needs to know kombu."""
    try:
        yield
    except kombu.exceptions.OperationalError as exc:
        raise QueueUnavailableError(str(exc)) from exc


def service_app() -> Celery:
    """The service's Celery app, pid.tasks.app."""
    # Imported on first use, not with this module: pid.tasks.app builds the app from the
    # process's settings when imported, which a process that never sends does not need.
    from pid.tasks.app import app

    return app


def service_enqueue(messages: Sequence[Message]) -> None:
    """Send through the service's Celery app."""
    enqueue_to(service_app())(messages)


def service_revoke(task_ids: Sequence[str]) -> None:
    """Revoke through the service's Celery app."""
    revoke_with(service_app())(task_ids)
