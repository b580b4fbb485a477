"""How every pool's messages are serialised, delivered and acknowledged."""

from __future__ import annotations

from typing import Any

from pid.settings import Settings


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
