"""Stages on the cpu queue: numpy and OpenCV work in prefork children."""

from __future__ import annotations

from typing import Any

from celery import Task

from pid.celery_app import app
from pid.settings import get_settings
from pid.tasks.runner import execute_stage

_settings = get_settings()
LIMITS: dict[str, Any] = {
    "bind": True,
    "soft_time_limit": _settings.cpu_soft_time_limit,
    "time_limit": _settings.cpu_time_limit,
    "max_retries": _settings.task_max_retries,
}


@app.task(name="pid.tasks.cpu.stages.skeletonize", **LIMITS)
def skeletonize(self: Task[Any, Any], uid: str) -> dict[str, Any]:
    return execute_stage(self, uid, "skeletonize")


@app.task(name="pid.tasks.cpu.stages.skeletonize_simple", **LIMITS)
def skeletonize_simple(self: Task[Any, Any], uid: str) -> dict[str, Any]:
    return execute_stage(self, uid, "skeletonize_simple")


@app.task(name="pid.tasks.cpu.stages.build_graph", **LIMITS)
def build_graph(self: Task[Any, Any], uid: str) -> dict[str, Any]:
    return execute_stage(self, uid, "build_graph")


@app.task(name="pid.tasks.cpu.stages.export", **LIMITS)
def export(self: Task[Any, Any], uid: str) -> dict[str, Any]:
    return execute_stage(self, uid, "export")
