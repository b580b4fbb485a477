"""Stages on the gpu queue: one model per GPU, one child process, models loaded once there."""

from __future__ import annotations

from typing import Any

from celery import Task
from celery.signals import worker_process_init

from pid.celery_app import app
from pid.settings import get_settings
from pid.tasks.runner import execute_stage

_settings = get_settings()
LIMITS: dict[str, Any] = {
    "bind": True,
    "soft_time_limit": _settings.gpu_soft_time_limit,
    "time_limit": _settings.gpu_time_limit,
    "max_retries": _settings.task_max_retries,
}


@worker_process_init.connect
def _load_models(**_: Any) -> None:
    """Load the detector in each gpu child as it starts, never in the parent."""
    settings = get_settings()
    if settings.detect_weights is not None and settings.detect_weights.is_file():
        from pid.pipeline.stages import loaded_detector

        loaded_detector(settings.detect_weights, settings.detect_confidence, settings.device)


@app.task(name="pid.tasks.gpu.stages.detect", **LIMITS)
def detect(self: Task[Any, Any], uid: str) -> dict[str, Any]:
    return execute_stage(self, uid, "detect")


@app.task(name="pid.tasks.gpu.stages.segment", **LIMITS)
def segment(self: Task[Any, Any], uid: str) -> dict[str, Any]:
    return execute_stage(self, uid, "segment")


@app.task(name="pid.tasks.gpu.stages.classify", **LIMITS)
def classify(self: Task[Any, Any], uid: str) -> dict[str, Any]:
    return execute_stage(self, uid, "classify")
