"""pid.tasks.broker reads what the Redis broker holds, as kombu lays it out, from a real Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis
from celery import Celery
from maintenance_support import REDIS_URL

from pid.tasks.broker import UNACKED_KEY, held_task_ids, queue_lengths

QUEUES = ("gpu", "cpu", "io", "maintenance")


@pytest.fixture
def broker() -> Iterator[tuple[Celery, redis.Redis]]:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    app = Celery("pid-broker-tests", broker=REDIS_URL, set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"])
    try:
        yield app, client
    finally:
        app.close()
        client.flushdb()
        client.close()


def test_waiting_messages_are_counted_and_their_ids_found_at_every_priority(
    broker: tuple[Celery, redis.Redis],
) -> None:
    app, client = broker
    plain = [app.send_task("pid.tasks.cpu.skeletonize", queue="cpu").id for _ in range(3)]
    urgent = app.send_task("pid.tasks.gpu.segment", queue="gpu", priority=9).id

    assert queue_lengths(client, QUEUES) == {"gpu": 1, "cpu": 3, "io": 0, "maintenance": 0}
    assert held_task_ids(client, QUEUES) == {*plain, urgent}


def test_a_delivered_unacknowledged_message_is_held_and_a_consumed_one_is_not(
    broker: tuple[Celery, redis.Redis],
) -> None:
    app, client = broker
    running = app.send_task("pid.tasks.io.cvat_fetch", queue="io").id
    finished = app.send_task("pid.tasks.io.cvat_upload", queue="io").id
    # A worker takes both off the list; one is still running (unacked), one was acked.
    messages = {json.loads(raw)["headers"]["id"]: raw for raw in client.lrange("io", 0, -1)}
    client.delete("io")
    client.hset(UNACKED_KEY, "tag-1", json.dumps([json.loads(messages[running]), "", "io"]))
    client.hset(UNACKED_KEY, "tag-2", "not json")  # never taken for a message

    assert held_task_ids(client, QUEUES) == {running}
    assert finished not in held_task_ids(client, QUEUES)
    assert queue_lengths(client, QUEUES)["io"] == 0
