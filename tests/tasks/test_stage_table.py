"""The stage table against what Celery runs: every row is a registered task on its queue, and
the chain, the statuses and the gates agree with it. A mismatch fails here, not in a run."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from celery import Celery

from pid.core.artifacts import KEPT_ARTIFACTS
from pid.core.statuses import DiagramStatus
from pid.pipeline.ports import QUEUES
from pid.pipeline.stages import CHAIN, STAGES, chain, chain_order
from pid.pipeline.status import GATE_NEXT, status_after, status_before
from pid.settings import Settings
from pid.tasks.app import STAGE_TASK_PACKAGES, create_celery, task_routes
from pid.tasks.names import task_name


@pytest.fixture(scope="module")
def app() -> Celery:
    celery = create_celery()
    celery.loader.import_default_modules()
    return celery


def _stage_tasks(app: Celery) -> dict[str, Any]:
    return {
        name: task
        for name, task in app.tasks.items()
        if name.startswith("pid.tasks.") and not name.startswith("pid.tasks.maintenance.")
    }


def test_every_stage_is_one_registered_task_on_its_queue(app: Celery) -> None:
    registered = _stage_tasks(app)
    assert sorted(registered) == sorted(task_name(name) for name in STAGES)
    for name, stage in STAGES.items():
        task = registered[task_name(name)]
        assert task.name == f"pid.tasks.{stage.queue}.{name}"
        assert f"pid.tasks.{stage.queue}" in STAGE_TASK_PACKAGES
        route = app.amqp.router.route({}, task.name)["queue"]
        assert route.name == stage.queue, name
        assert stage.queue in QUEUES


def test_stage_tasks_carry_their_pools_time_limits(app: Celery) -> None:
    settings = Settings()
    registered = _stage_tasks(app)
    for name, stage in STAGES.items():
        task = registered[task_name(name)]
        assert task.max_retries == settings.task_max_retries
        if stage.queue == "cpu":
            assert (task.soft_time_limit, task.time_limit) == (
                settings.cpu_soft_time_limit,
                settings.cpu_time_limit,
            )
        elif stage.queue == "gpu":
            assert (task.soft_time_limit, task.time_limit) == (
                settings.gpu_soft_time_limit,
                settings.gpu_time_limit,
            )
        else:
            assert task.soft_time_limit is None and task.time_limit is None


def test_routes_come_from_the_table() -> None:
    routes = task_routes()
    for name, stage in STAGES.items():
        assert routes[task_name(name)] == {"queue": stage.queue}
    assert routes["pid.tasks.maintenance.*"] == {"queue": "maintenance"}


def test_the_chain_and_the_statuses_follow_the_table() -> None:
    assert set(CHAIN) <= set(STAGES)
    replacing = [s for s in STAGES.values() if s.replaces]
    assert set(STAGES) == set(CHAIN) | {s.name for s in replacing}
    for stage in replacing:
        assert stage.replaces in CHAIN
        assert chain_order(stage.name).count(stage.name) == 1
        assert STAGES[stage.replaces].status_after == stage.status_after
    # Each stage's status is a diagram status, and statuses only move forward along the chain.
    statuses = list(DiagramStatus)
    after = [statuses.index(STAGES[name].status_after) for name in CHAIN]
    assert after == sorted(after)
    assert status_before(STAGES[CHAIN[0]]) == DiagramStatus.uploaded
    for earlier, later in itertools.pairwise(CHAIN):
        assert status_before(STAGES[later]) == STAGES[earlier].status_after
    assert STAGES[CHAIN[-1]].status_after == DiagramStatus.completed


def test_every_input_is_made_by_an_earlier_stage_or_comes_with_the_upload() -> None:
    made = {"original.png"}
    for stage in chain():
        assert set(stage.inputs) <= made, stage.name
        made |= set(stage.outputs)
    assert set(KEPT_ARTIFACTS) - made <= {"symbols.json", "validated_graph.json"}


def test_gates_wait_in_review_statuses_and_continue_into_the_chain() -> None:
    # The CVAT gate is refused by the settings until the CVAT loop exists; set it as a person
    # would once it does.
    settings = Settings(gate_mask=True, gate_graph=True).model_copy(update={"gate_cvat": True})
    gated = [s for s in STAGES.values() if s.gate is not None]
    assert {s.name for s in gated} == {"cvat_upload", "skeletonize", "build_graph"}
    for stage in gated:
        assert stage.gate is not None
        assert status_after(stage, settings) == (stage.gate.status, False)
        assert status_after(stage, Settings()) == (stage.status_after, True)
    for status, next_stage in GATE_NEXT.items():
        assert next_stage in CHAIN
        gate_stage = CHAIN[CHAIN.index(next_stage) - 1]
        assert STAGES[gate_stage].gate is not None
        assert STAGES[gate_stage].gate.status == status  # type: ignore[union-attr]
