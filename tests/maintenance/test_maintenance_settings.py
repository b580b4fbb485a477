"""Impossible maintenance settings are refused at start-up, naming the field."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pid.settings import SettingsError, get_settings


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PID_REAPER_INTERVAL": "-5"}, "PID_REAPER_INTERVAL"),
        ({"PID_PURGE_INTERVAL": "0"}, "PID_PURGE_INTERVAL"),
        ({"PID_ORPHAN_AFTER": "-1"}, "PID_ORPHAN_AFTER"),
        ({"PID_REAPER_GRACE": "-1"}, "PID_REAPER_GRACE"),
        ({"PID_RETENTION_DAYS": "-2"}, "PID_RETENTION_DAYS"),
        ({"PID_MAINTENANCE_LOCK_TTL": "0"}, "PID_MAINTENANCE_LOCK_TTL"),
        # Shorter than the longest stage time limit (960 s by default).
        ({"PID_RETENTION_DAYS": "0.005"}, "retention_days"),
        ({"PID_TMP_MAX_AGE_HOURS": "0.2"}, "tmp_max_age_hours"),
        ({"PID_RETENTION_DAYS": "0.05", "PID_CPU_TIME_LIMIT": "9000"}, "retention_days"),
    ],
)
def test_impossible_values_are_refused_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError, match=named) as refused:
            get_settings()
    finally:
        get_settings.cache_clear()
    assert "\n" not in str(refused.value)


def test_a_long_enough_retention_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PID_RETENTION_DAYS", "0.02")  # 1728 s, above the 960 s limit
    get_settings.cache_clear()
    try:
        assert get_settings().retention_days == 0.02
    finally:
        get_settings.cache_clear()


CELERY = ["-m", "celery", "-A", "pid.tasks.app"]


@pytest.mark.parametrize(
    "command",
    [[*CELERY, "worker", "-Q", "maintenance"], [*CELERY, "beat"], ["-m", "pid.api"]],
    ids=["worker", "beat", "api"],
)
def test_a_service_with_an_impossible_setting_exits_with_one_line(command: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PID_")}
    env["PID_STALE_REVIEW_INTERVAL"] = "-60"
    done = subprocess.run(
        [sys.executable, *command], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("pid: invalid setting PID_STALE_REVIEW_INTERVAL")
    assert "Traceback" not in done.stderr
